//! Loading: the inventory file (and its prerequisite files) read, parsed, resolved into the
//! desired state, ordered into the DAG and validated; the offline plan over it.

use crate::Error;
use mip_core::{Diagnostic, Diagnostics, Location, canonical};
use mip_graph::{Dag, Desired, Manifest, ResolveOptions};
use mip_inventory::Inventory;
use mip_plan::{Mode, Plan, PlanInput, PriorState};
use std::path::{Path, PathBuf};

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Path of the inventory file.
    pub inventory: PathBuf,
    /// `--revision BRANCH` override.
    pub revision: Option<String>,
}

/// A valid inventory resolved into an ordered desired state.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Path as given.
    pub path: String,
    /// `sha256:` of the inventory bytes.
    pub digest: String,
    /// The inventory.
    pub inventory: Inventory,
    /// The desired state.
    pub desired: Desired,
    /// Its DAG.
    pub dag: Dag,
    /// Warnings (no errors).
    pub warnings: Diagnostics,
}

impl Loaded {
    /// Frees the models of the Argo-owned objects (the fields mip checks in validation and
    /// orders the graph by, both done by [`load`]): a plan needs only their addresses. At
    /// 10 000 federations that is about 100 MB of a 500 MB offline plan. Call it only before
    /// planning; `validate`, `render` and `doctor` read the models.
    pub fn release_argo_models(&mut self) {
        for o in self.desired.objects.values_mut() {
            o.model = None;
        }
    }
}

/// Reads a file the inventory names (a prerequisite), given its path relative to the
/// inventory: from the file system next to the inventory, or from the same Git revision.
pub trait ReadRelative {
    /// How the file is named in messages.
    fn shown(&self, relative: &str) -> String;
    /// Its text.
    ///
    /// # Errors
    /// Why it cannot be read.
    fn read(&self, relative: &str) -> std::io::Result<String>;
}

/// Files next to the inventory on disk.
struct NextTo<'a>(&'a Path);

impl ReadRelative for NextTo<'_> {
    fn shown(&self, relative: &str) -> String {
        self.0.join(relative).display().to_string()
    }
    fn read(&self, relative: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.0.join(relative))
    }
}

fn read_prerequisites(inv: &Inventory, files: &dyn ReadRelative, diags: &mut Diagnostics) -> Vec<Manifest> {
    let mut out = Vec::new();
    for p in &inv.prerequisites {
        let shown = files.shown(&p.file.value);
        match files.read(&p.file.value) {
            Err(e) => diags.push(
                Diagnostic::error(
                    Some(p.file.at.clone()),
                    "missing-file",
                    format!("cannot read prerequisite `{shown}`: {e}"),
                )
                .with_hint("paths are relative to the inventory file"),
            ),
            Ok(text) => match mip_inventory::yaml::parse_stream(&shown, &text) {
                Err(d) => diags.push(d),
                Ok(docs) => {
                    for doc in docs {
                        let at = Location { file: shown.clone(), line: doc.line, column: doc.column };
                        out.push(Manifest { at, value: doc.to_json() });
                    }
                }
            },
        }
    }
    out
}

fn invalid(path: &str, diagnostics: Diagnostics) -> Error {
    Error::Invalid { path: path.to_owned(), diagnostics }
}

/// Reads only the inventory's `state:` section (the state commands need nothing else from
/// it): `None` when the file does not exist.
///
/// # Errors
/// [`Error::ReadInventory`], or [`Error::Invalid`] when the file does not parse.
pub fn state_settings(inventory: &Path) -> Result<Option<mip_inventory::StateSettings>, Error> {
    if !inventory.is_file() {
        return Ok(None);
    }
    let path = inventory.display().to_string();
    let text = std::fs::read_to_string(inventory)
        .map_err(|source| Error::ReadInventory { path: path.clone(), source })?;
    let parsed = mip_inventory::parse(&path, &text).map_err(|d| invalid(&path, d))?;
    Ok(parsed.inventory.state)
}

/// From how many desired objects validation and the DAG are built side by side (see
/// [`load_bytes`]): 1 000 federations make about 9 000.
const SIDE_BY_SIDE_FROM: usize = 20_000;

/// Validates a desired state and builds its DAG. Both only read it: for a large one they run
/// side by side (each a sixth of a plan at 10 000 federations: 0.9x the wall time there).
/// Below [`SIDE_BY_SIDE_FROM`] the second thread's allocator heap costs more memory than the
/// time it saves (+15 MB at 1 000 federations for 0.94x). The caller reports validation's
/// errors before a cycle, whichever way they ran.
pub fn validate_and_order(desired: &Desired) -> (Diagnostics, Result<Dag, mip_graph::CycleError>) {
    if desired.objects.len() < SIDE_BY_SIDE_FROM {
        return (mip_graph::validate(desired), Dag::build(&desired.objects));
    }
    std::thread::scope(|s| {
        let dag = s.spawn(|| Dag::build(&desired.objects));
        let checks = mip_graph::validate(desired);
        (checks, dag.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// Reads, parses, resolves, orders and validates an inventory.
///
/// # Errors
/// [`Error::ReadInventory`], or [`Error::Invalid`] with every problem found.
pub fn load(opts: &LoadOptions) -> Result<Loaded, Error> {
    let path = opts.inventory.display().to_string();
    let bytes = std::fs::read(&opts.inventory)
        .map_err(|source| Error::ReadInventory { path: path.clone(), source })?;
    let base = opts.inventory.parent().map(Path::to_path_buf).unwrap_or_default();
    load_bytes(path, bytes, opts.revision.as_ref(), &NextTo(&base))
}

/// [`load`] of inventory bytes read elsewhere (e.g. from a Git revision), named `path` in
/// messages, with its prerequisites read through `files`.
///
/// # Errors
/// [`Error::Invalid`] with every problem found.
pub fn load_bytes(
    path: String,
    bytes: Vec<u8>,
    revision: Option<&String>,
    files: &dyn ReadRelative,
) -> Result<Loaded, Error> {
    let digest = format!("sha256:{}", canonical::sha256_hex(&bytes));
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let d = Diagnostic::error(
                Some(Location { file: path.clone(), line: 1, column: 1 }),
                "encoding",
                format!("the inventory is not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
            )
            .with_hint("save the file as UTF-8");
            return Err(invalid(&path, std::iter::once(d).collect()));
        }
    };
    let parsed = mip_inventory::parse(&path, &text).map_err(|d| invalid(&path, d))?;
    let inventory = parsed.inventory;
    let mut diags = Diagnostics::new();
    if let Some(rev) = revision
        && (rev.is_empty() || !mip_inventory::names::is_valid_revision(rev))
    {
        diags.push(
            Diagnostic::error(
                None,
                "invalid-revision",
                format!("`--revision {rev}` is not a valid Git branch"),
            )
            .with_hint("no spaces, `..`, `~^:?*[\\`, and no leading `-` or trailing `/`"),
        );
    }
    let prereqs = read_prerequisites(&inventory, files, &mut diags);
    if diags.has_errors() {
        return Err(invalid(&path, diags.sorted()));
    }
    let desired = mip_graph::resolve(&inventory, &prereqs, &ResolveOptions { revision: revision.cloned() })
        .map_err(|d| invalid(&path, d))?;
    let (checks, dag) = validate_and_order(&desired);
    if checks.has_errors() {
        return Err(invalid(&path, checks));
    }
    let dag = dag.map_err(|e| {
        let d = Diagnostic::error(None, "cycle", e.to_string())
            .with_hint("an ordering rule and a prerequisite contradict each other");
        invalid(&path, std::iter::once(d).collect())
    })?;
    let mut warnings = parsed.warnings;
    warnings.extend(desired.warnings.clone());
    warnings.extend(checks);
    Ok(Loaded { path, digest, inventory, desired, dag, warnings })
}

/// The offline plan: against the local state only (empty until mip has applied).
pub fn plan_offline(loaded: &Loaded) -> Plan {
    plan_against(loaded, &PriorState::default())
}

/// Plans against a given prior state.
pub fn plan_against(loaded: &Loaded, prior: &PriorState) -> Plan {
    let input = PlanInput {
        inventory: &loaded.path,
        inventory_digest: loaded.digest.clone(),
        mode: Mode::Offline,
        mip_version: env!("CARGO_PKG_VERSION"),
    };
    mip_plan::plan(&loaded.desired, &loaded.dag, prior, &input)
}

/// The prior state of a snapshot, for the offline plan.
pub fn prior_from(s: &mip_state::Snapshot) -> PriorState {
    PriorState {
        state: mip_plan::StateRef { lineage: Some(s.lineage.clone()), serial: s.serial },
        managed: s.managed.iter().map(|(a, e)| (a.clone(), e.fingerprint.clone())).collect(),
        secret_hashes: s
            .managed
            .iter()
            .filter(|(_, e)| !e.secret_hashes.is_empty())
            .map(|(a, e)| (a.clone(), e.secret_hashes.clone()))
            .collect(),
    }
}
