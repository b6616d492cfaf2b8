//! The live commands: plan (against the cluster), apply, drift, destroy, state. Each parses
//! its flags, calls `mip_engine`, and renders; exit codes come from [`ExitStatus`].
#![expect(clippy::print_stderr, reason = "progress and prompts go to stderr")]

use crate::cli::{
    ClusterArgs, InventoryArgs, OutputFormat, StateBackendArg, StateCommand, StateInventoryArgs,
};
use crate::exit::ExitStatus;
use crate::store::{self, Backend, Store};
use crate::views;
use anyhow::Context;
use mip_core::{ObjectRef, Sensitive, SensitiveSource};
use mip_engine::live::{self, ApplyEvent, ApplyOpts, Hook, LiveError, SecretResolver};
use mip_engine::ops::Loaded;
use mip_kube::KubeCluster;
use mip_plan::Plan;
use mip_state::StateStore;
use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Renders a live error with its hint and maps it to an exit code.
pub fn fail(e: &LiveError) -> ExitStatus {
    let hint = e.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default();
    views::note(&format!("error: {e}{hint}"));
    match e {
        LiveError::WrongCluster { .. } => ExitStatus::SafetyRefusal,
        LiveError::OtherState { .. } | LiveError::Stale { .. } => ExitStatus::StalePlan,
        LiveError::State(mip_state::Error::LockHeld(_) | mip_state::Error::LockLost { .. }) => {
            ExitStatus::LockHeld
        }
        _ => ExitStatus::Error,
    }
}

pub(crate) fn connect(rt: &tokio::runtime::Runtime, args: &ClusterArgs) -> Result<KubeCluster, ExitStatus> {
    rt.block_on(KubeCluster::connect(store::connect_options(args))).map_err(|e| fail(&LiveError::Cluster(e)))
}

pub(crate) fn guard(loaded: &Loaded, cluster: &KubeCluster) -> Result<(), ExitStatus> {
    use mip_core::cluster::Cluster;
    live::check_guard(loaded, &cluster.server_url(), Some(cluster.context_name())).map_err(|e| fail(&e))
}

/// Reads secret values: env, file (relative to the inventory), or a hidden prompt.
struct Resolver {
    base: PathBuf,
}

impl SecretResolver for Resolver {
    fn resolve(&self, source: &SensitiveSource) -> Result<Sensitive, String> {
        let value = self.resolve_inner(source)?;
        if views::verbosity() >= 2 {
            // Proof of what was used without showing it: length and a salted hash.
            let hash =
                mip_core::canonical::salted_hash("mip-verbose-log", &source.to_string(), value.expose());
            eprintln!("  secret from {source}: {} bytes, {hash}", value.len());
        }
        Ok(value)
    }
}

impl Resolver {
    fn resolve_inner(&self, source: &SensitiveSource) -> Result<Sensitive, String> {
        match source {
            SensitiveSource::Env(name) => std::env::var(name)
                .map(Sensitive::new)
                .map_err(|_| format!("environment variable `{name}` is not set")),
            SensitiveSource::File(path) => {
                let p = self.base.join(path);
                std::fs::read_to_string(&p)
                    .map(Sensitive::new)
                    .map_err(|e| format!("cannot read `{}`: {e}", p.display()))
            }
            SensitiveSource::Prompt(text) => {
                if !std::io::stdin().is_terminal() {
                    return Err(format!(
                        "prompt `{text}` needs a terminal; use `env` or `file` in unattended runs"
                    ));
                }
                rpassword::prompt_password(format!("{text}: "))
                    .map(Sensitive::new)
                    .map_err(|e| format!("prompt failed: {e}"))
            }
            SensitiveSource::Generated => Err("generated values are made by the engine".into()),
            SensitiveSource::ClusterConfig { token, ca_file } => {
                let token = self.resolve(token)?;
                let mut tls = serde_json::json!({ "insecure": false });
                if let Some(path) = ca_file {
                    let p = self.base.join(path);
                    let pem = std::fs::read(&p)
                        .map_err(|e| format!("cannot read CA file `{}`: {e}", p.display()))?;
                    tls["caData"] = serde_json::Value::String(base64_encode(&pem));
                }
                let config = serde_json::json!({ "bearerToken": token.expose(), "tlsClientConfig": tls });
                Ok(Sensitive::new(config.to_string()))
            }
        }
    }
}

/// Standard base64 with padding (for the CA certificate in a cluster Secret's config).
fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Apply progress on stderr: a progress bar (indicatif) on a terminal at the default
/// verbosity, else one line per finished change, for logs and CI. Failures and skips are always
/// lines of their own. Only addresses are shown, never a value.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Progress over `writes` changes.
    fn new(writes: usize) -> Arc<Progress> {
        let bar = (writes > 0 && std::io::stderr().is_terminal() && views::verbosity() == 0).then(|| {
            let bar = indicatif::ProgressBar::new(writes as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Arc::new(Progress { bar })
    }

    /// Removes the bar before the summary is printed.
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Hook for Progress {
    fn event(&self, e: ApplyEvent) {
        match e {
            ApplyEvent::Start(a, action) if views::verbosity() >= 1 => {
                self.line(format!("{:>3} {a}: {action}…", action.symbol()))
            }
            ApplyEvent::Start(..) => {}
            ApplyEvent::Done(a, action) => match &self.bar {
                Some(bar) => {
                    bar.inc(1);
                    bar.set_message(format!("{} {a}", action.symbol()));
                }
                None => eprintln!("{:>3} {a}: {action} done", action.symbol()),
            },
            ApplyEvent::Failed(a, err) => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.line(format!("  ! {a}: failed: {err}"));
            }
            ApplyEvent::Skipped(a, because) => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.line(format!("  - {a}: skipped (depends on failed `{because}`)"));
            }
            ApplyEvent::Waiting(n) if n > 0 => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("waiting for {n} object(s) from Argo CD"));
                }
                self.line(format!("  … waiting for {n} object(s) from Argo CD"));
            }
            ApplyEvent::Waiting(_) => self.line("  ✓ every expected Argo CD object exists".to_owned()),
        }
    }
}

/// With `MIP_STATS=1`, the API request counts go to stderr (benchmarks, zero-write checks).
pub(crate) fn stats(cluster: &KubeCluster) {
    use mip_core::cluster::Cluster;
    if std::env::var_os("MIP_STATS").is_some() || views::verbosity() >= 1 {
        let r = cluster.requests();
        eprintln!("api requests: {} reads, {} writes ({} dry runs)", r.reads, r.writes, r.dry_runs);
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// `mip plan` against the cluster.
pub fn plan(
    inv: &InventoryArgs,
    args: &ClusterArgs,
    loaded: &Loaded,
) -> anyhow::Result<Result<Plan, ExitStatus>> {
    let rt = runtime()?;
    let cluster = match connect(&rt, args) {
        Ok(c) => c,
        Err(code) => return Ok(Err(code)),
    };
    if let Err(code) = guard(loaded, &cluster) {
        return Ok(Err(code));
    }
    let backend = store::backend(args, loaded.inventory.state.as_ref());
    let snapshot = match backend.read(&rt, &cluster) {
        Ok(s) => s,
        Err(e) => return Ok(Err(fail(&LiveError::State(e)))),
    };
    let _ = inv;
    let plan = rt.block_on(live::plan_live(&cluster, loaded, snapshot.as_ref())).map_err(|e| fail(&e));
    stats(&cluster);
    Ok(plan)
}

fn confirm(question: &str) -> Result<bool, ExitStatus> {
    if !std::io::stdin().is_terminal() {
        views::note(
            "error: refusing to change the cluster without confirmation: stdin is not a terminal (hint: review the plan, then pass `--auto-approve`)",
        );
        return Err(ExitStatus::SafetyRefusal);
    }
    eprint!("{question} Only `yes` is accepted: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok(line.trim() == "yes")
}

/// Everything `mip apply` needs.
pub struct ApplyArgs<'a> {
    /// Saved plan.
    pub plan_file: Option<&'a Path>,
    /// Inventory.
    pub inv: &'a InventoryArgs,
    /// Cluster.
    pub cluster: &'a ClusterArgs,
    /// Skip confirmation.
    pub auto_approve: bool,
    /// Parallelism.
    pub parallelism: usize,
    /// Wait timeout.
    pub wait_timeout: u64,
    /// Secrets to rotate.
    pub rotate: &'a [String],
    /// Force conflicts.
    pub force_conflicts: bool,
}

/// `mip apply [PLAN]`.
pub fn apply(a: &ApplyArgs<'_>) -> anyhow::Result<ExitStatus> {
    let loaded = match crate::load(a.inv)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let rt = runtime()?;
    let cluster = match connect(&rt, a.cluster) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Err(code) = guard(&loaded, &cluster) {
        return Ok(code);
    }
    let mut rotate = BTreeSet::new();
    for r in a.rotate {
        match r.parse::<ObjectRef>() {
            Ok(addr) => {
                rotate.insert(addr);
            }
            Err(e) => {
                views::note(&format!(
                    "error: `--rotate`: {e} (hint: e.g. `v1/Secret/federation-a/mip-secret`)"
                ));
                return Ok(ExitStatus::Error);
            }
        }
    }
    let store = match store::backend(a.cluster, loaded.inventory.state.as_ref()).open("apply") {
        Ok(s) => Arc::new(s),
        Err(e) => return Ok(fail(&LiveError::State(e))),
    };
    let mut plan = match a.plan_file {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("failed to read plan file `{}`", path.display()))?;
            match mip_plan::planfile::from_bytes(&path.display().to_string(), &bytes) {
                Ok(p) => p,
                Err(e @ mip_plan::planfile::Error::Tampered { .. }) => {
                    views::note(&format!("error: {e} (hint: make a new plan with `mip plan -o FILE`)"));
                    return Ok(ExitStatus::StalePlan);
                }
                Err(e) => {
                    views::note(&format!("error: {e}"));
                    return Ok(ExitStatus::Error);
                }
            }
        }
        None => {
            let snapshot = store.snapshot().ok().filter(|s| s.serial > 0 || !s.managed.is_empty());
            match rt.block_on(live::plan_live(&cluster, &loaded, snapshot.as_ref())) {
                Ok(p) => {
                    views::stdout(&mip_plan::render::text(&p))?;
                    p
                }
                Err(e) => return Ok(fail(&e)),
            }
        }
    };
    if a.force_conflicts {
        for c in &mut plan.changes {
            c.force = true;
        }
    }
    if a.plan_file.is_some() && plan.inventory_digest != loaded.digest {
        views::note(&format!(
            "note: the inventory changed since the plan; applying the plan as saved (`{}`)",
            plan.inventory
        ));
    }
    let writes = plan.changes.iter().filter(|c| c.action.is_write()).count();
    let rotations = !rotate.is_empty();
    if writes == 0 && !rotations && (a.wait_timeout == 0 || plan.expected.iter().all(|e| e.present)) {
        views::note("No changes. Nothing to apply.");
        stats(&cluster);
        return Ok(ExitStatus::Success);
    }
    if !a.auto_approve {
        match confirm(&format!(
            "Apply {writes} change(s) to `{}`?",
            mip_core::cluster::Cluster::server_url(&cluster)
        )) {
            Ok(true) => {}
            Ok(false) => {
                views::note("Apply cancelled.");
                return Ok(ExitStatus::SafetyRefusal);
            }
            Err(code) => return Ok(code),
        }
    }
    let base = a.inv.inventory.parent().map(Path::to_path_buf).unwrap_or_default();
    let resolver = Resolver { base };
    let opts = ApplyOpts {
        parallelism: a.parallelism,
        wait_timeout: Duration::from_secs(a.wait_timeout),
        ..ApplyOpts::default()
    };
    let cluster = Arc::new(cluster);
    let progress = Progress::new(writes + rotate.len());
    let outcome = rt.block_on(live::apply(
        Arc::clone(&cluster),
        Arc::clone(&store),
        &plan,
        &resolver,
        &rotate,
        &opts,
        Arc::clone(&progress) as Arc<dyn Hook>,
    ));
    progress.finish();
    stats(&cluster);
    match outcome {
        Err(e) => Ok(fail(&e)),
        Ok(o) => {
            views::note(&format!(
                "Apply: {} done, {} failed, {} skipped, {} still expected from Argo CD; state serial {}.",
                o.applied.len(),
                o.failed.len(),
                o.skipped.len(),
                o.pending.len(),
                o.serial
            ));
            for p in &o.pending {
                views::note(&format!(
                    "  pending: {p} (Argo CD has not created it yet; check `mip doctor` or the Argo CD UI)"
                ));
            }
            // One line per missing permission, however many objects it refused.
            let mut shown = BTreeSet::new();
            for (_, f) in &o.forbidden {
                if let mip_core::cluster::ClusterError::Forbidden { verb, resource, namespace, .. } = f
                    && shown.insert((verb, resource, namespace))
                {
                    let hint = live::forbidden_hint(f).map(|h| format!(" (hint: {h})")).unwrap_or_default();
                    views::note(&format!("error: {f}{hint}"));
                }
            }
            // Every write refused for want of permissions changed nothing: an error, not a
            // partial apply.
            let refused =
                !o.forbidden.is_empty() && o.applied.is_empty() && o.forbidden.len() == o.failed.len();
            Ok(if o.complete() {
                ExitStatus::Success
            } else if refused {
                ExitStatus::Error
            } else {
                ExitStatus::PartialApply
            })
        }
    }
}

/// `mip drift`.
pub fn drift(inv: &InventoryArgs, args: &ClusterArgs, output: OutputFormat) -> anyhow::Result<ExitStatus> {
    let loaded = match crate::load(inv)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let plan = match plan(inv, args, &loaded)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let d = live::drift_of(&plan);
    let text = match output {
        OutputFormat::Json => {
            format!("{}\n", serde_json::to_string_pretty(&d).context("failed to serialise drift")?)
        }
        OutputFormat::Text | OutputFormat::Markdown => {
            let mut s = String::new();
            if d.is_empty() {
                s.push_str("No drift: the cluster matches the inventory.\n");
            } else {
                for c in &d.changes {
                    s.push_str(&format!("{:>3} {} ({})\n", c.action.symbol(), c.address, c.reason));
                    if let Some(diff) = &c.diff {
                        for l in diff.lines() {
                            s.push_str(&format!("      {l}\n"));
                        }
                    }
                }
                for m in &d.missing {
                    s.push_str(&format!(" <= {m} (expected from Argo CD, missing)\n"));
                }
                s.push_str(&format!(
                    "Drift: {} object(s) differ, {} missing; fingerprint {}\n",
                    d.changes.len(),
                    d.missing.len(),
                    d.fingerprint
                ));
            }
            s
        }
    };
    views::stdout(&text)?;
    Ok(if d.is_empty() { ExitStatus::Success } else { ExitStatus::Changes })
}

/// What a writing command needs: the loaded inventory, a runtime, a guarded connection and the
/// locked state store.
type Session = (Loaded, tokio::runtime::Runtime, KubeCluster, Store);

fn session(
    inv: &InventoryArgs,
    args: &ClusterArgs,
    operation: &str,
) -> anyhow::Result<Result<Session, ExitStatus>> {
    let loaded = match crate::load(inv)? {
        Ok(l) => l,
        Err(code) => return Ok(Err(code)),
    };
    let rt = runtime()?;
    let cluster = match connect(&rt, args) {
        Ok(c) => c,
        Err(code) => return Ok(Err(code)),
    };
    if let Err(code) = guard(&loaded, &cluster) {
        return Ok(Err(code));
    }
    match store::backend(args, loaded.inventory.state.as_ref()).open(operation) {
        Ok(store) => Ok(Ok((loaded, rt, cluster, store))),
        Err(e) => Ok(Err(fail(&LiveError::State(e)))),
    }
}

/// `mip destroy`.
pub fn destroy(
    inv: &InventoryArgs,
    args: &ClusterArgs,
    auto_approve: bool,
    include_protected: bool,
) -> anyhow::Result<ExitStatus> {
    let (loaded, rt, cluster, store) = match session(inv, args, "destroy")? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let store = Arc::new(store);
    let snapshot = store.snapshot().context("failed to read the state")?;
    let addrs: BTreeSet<ObjectRef> = snapshot.managed.keys().cloned().collect();
    let live_objs = match rt.block_on(live::read_live(&cluster, &addrs)) {
        Ok(l) => l,
        Err(e) => return Ok(fail(&e)),
    };
    let plan = live::destroy_plan(&loaded, &snapshot, &live_objs, include_protected);
    for a in snapshot
        .managed
        .keys()
        .filter(|a| live::is_protected(a) && !include_protected && live_objs.contains_key(*a))
    {
        views::note(&format!(
            "  kept {a} (pass `--include-protected` to delete namespaces, AppProjects and CRDs)"
        ));
    }
    for c in &plan.changes {
        views::note(&format!("  - {} ({})", c.address, c.purpose));
    }
    if plan.changes.is_empty() {
        views::note("Nothing to destroy.");
        return Ok(ExitStatus::Success);
    }
    if !auto_approve {
        let q = format!(
            "Destroy {} object(s)? Argo CD will then delete what the root Applications generated, workloads and volumes included.",
            plan.changes.len()
        );
        match confirm(&q) {
            Ok(true) => {}
            Ok(false) => return Ok(ExitStatus::SafetyRefusal),
            Err(code) => return Ok(code),
        }
    }
    let resolver = Resolver { base: PathBuf::new() };
    let opts = ApplyOpts { wait_timeout: Duration::ZERO, ..ApplyOpts::default() };
    let progress = Progress::new(plan.changes.len());
    let outcome = rt.block_on(live::apply(
        Arc::new(cluster),
        Arc::clone(&store),
        &plan,
        &resolver,
        &BTreeSet::new(),
        &opts,
        Arc::clone(&progress) as Arc<dyn Hook>,
    ));
    progress.finish();
    match outcome {
        Err(e) => Ok(fail(&e)),
        Ok(o) => {
            for a in snapshot.managed.keys().filter(|a| mip_plan::adopts(a)) {
                let _ = store.record(a, None);
            }
            views::note(&format!("Destroy: {} deleted, {} failed.", o.applied.len(), o.failed.len()));
            Ok(if o.complete() { ExitStatus::Success } else { ExitStatus::PartialApply })
        }
    }
}

/// The inventory's `state:` section, when the file exists (state commands need nothing else
/// from it).
fn state_settings(
    inv: &StateInventoryArgs,
) -> anyhow::Result<Result<Option<mip_inventory::StateSettings>, ExitStatus>> {
    if !inv.inventory.is_file() {
        return Ok(Ok(None));
    }
    // Parsing is enough: resolution, prerequisites and the graph say nothing about the state.
    let shown = inv.inventory.display().to_string();
    let text = std::fs::read_to_string(&inv.inventory)
        .with_context(|| format!("failed to read the inventory `{shown}`"))?;
    match mip_inventory::parse(&shown, &text) {
        Ok(parsed) => Ok(Ok(parsed.inventory.state)),
        Err(diags) => {
            views::diagnostics(&diags);
            views::note(&format!("{} error(s) in `{shown}`; nothing was written", diags.error_count()));
            Ok(Err(ExitStatus::Error))
        }
    }
}

/// The backend of a state command: flags, else the inventory's `state:` section.
fn state_backend(
    inv: &StateInventoryArgs,
    args: &ClusterArgs,
) -> anyhow::Result<Result<Backend, ExitStatus>> {
    if args.state_backend.is_some() {
        return Ok(Ok(store::backend(args, None)));
    }
    Ok(state_settings(inv)?.map(|settings| store::backend(args, settings.as_ref())))
}

/// `mip state …`.
pub fn state(command: &StateCommand) -> anyhow::Result<ExitStatus> {
    let (inv, args) = match command {
        StateCommand::List { inv, cluster, .. }
        | StateCommand::History { inv, cluster }
        | StateCommand::Show { inv, cluster, .. } => (inv, cluster),
        StateCommand::Rm { address, inv, cluster } => return state_rm(address, inv, cluster),
        StateCommand::Rebuild { inv, cluster } => return state_rebuild(inv, cluster),
        StateCommand::Migrate { from, to, inv, cluster } => return state_migrate(*from, *to, inv, cluster),
    };
    let backend = match state_backend(inv, args)? {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    let rt = runtime()?;
    let want_history = matches!(command, StateCommand::History { .. });
    let (snapshot, history) = match backend.read_with_history(&rt, want_history) {
        Ok(Some(s)) => s,
        Ok(None) => {
            views::note(&format!("no state in {} (nothing applied yet)", backend.describe()));
            return Ok(ExitStatus::Success);
        }
        Err(e) => return Ok(fail(&LiveError::State(e))),
    };
    match command {
        StateCommand::List { output: OutputFormat::Json, .. } => {
            let managed: Vec<serde_json::Value> = snapshot
                .managed
                .iter()
                .map(|(a, e)| serde_json::json!({ "address": a, "fingerprint": e.fingerprint, "uid": e.uid, "serial": e.serial }))
                .collect();
            let doc = serde_json::json!({ "format_version": "1", "lineage": snapshot.lineage, "serial": snapshot.serial, "managed": managed });
            views::stdout(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        }
        StateCommand::List { .. } => {
            let mut s = format!("lineage {}, serial {}\n", snapshot.lineage, snapshot.serial);
            for a in snapshot.managed.keys() {
                s.push_str(&format!("{a}\n"));
            }
            views::stdout(&s)?;
        }
        StateCommand::Show { address, .. } => {
            let addr: ObjectRef = match address.parse() {
                Ok(a) => a,
                Err(e) => {
                    views::note(&format!("error: {e}"));
                    return Ok(ExitStatus::Error);
                }
            };
            match snapshot.managed.get(&addr) {
                Some(e) => {
                    let doc = serde_json::json!({ "address": addr, "fingerprint": e.fingerprint, "uid": e.uid, "serial": e.serial });
                    views::stdout(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
                }
                None => {
                    views::note(&format!("error: `{addr}` is not in the state (hint: `mip state list`)"));
                    return Ok(ExitStatus::Error);
                }
            }
        }
        StateCommand::History { .. } => {
            let mut s = String::new();
            for h in &history {
                s.push_str(&format!(
                    "{} serial {} {}: {}\n",
                    mip_state::rfc3339_utc(h.at_unix),
                    h.serial,
                    h.operation,
                    h.summary
                ));
            }
            views::stdout(&s)?;
        }
        StateCommand::Rm { .. } | StateCommand::Rebuild { .. } | StateCommand::Migrate { .. } => {}
    }
    Ok(ExitStatus::Success)
}

fn state_rm(address: &str, inv: &StateInventoryArgs, args: &ClusterArgs) -> anyhow::Result<ExitStatus> {
    let addr: ObjectRef = match address.parse() {
        Ok(a) => a,
        Err(e) => {
            views::note(&format!("error: {e}"));
            return Ok(ExitStatus::Error);
        }
    };
    let backend = match state_backend(inv, args)? {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    let store = match backend.open("state rm") {
        Ok(s) => s,
        Err(e) => return Ok(fail(&LiveError::State(e))),
    };
    if !store.snapshot().context("failed to read the state")?.managed.contains_key(&addr) {
        views::note(&format!("error: `{addr}` is not in the state (hint: `mip state list`)"));
        return Ok(ExitStatus::Error);
    }
    let serial = match store.record(&addr, None) {
        Ok(serial) => serial,
        Err(e) => return Ok(fail(&LiveError::State(e))),
    };
    views::note(&format!("forgot `{addr}` (it stays in the cluster); state serial {serial}"));
    Ok(ExitStatus::Success)
}

/// `mip state migrate --from A --to B`: copies everything into the empty destination, reads
/// it back and compares, and leaves the source as it was.
fn state_migrate(
    from: StateBackendArg,
    to: StateBackendArg,
    inv: &StateInventoryArgs,
    args: &ClusterArgs,
) -> anyhow::Result<ExitStatus> {
    if from == to {
        views::note(
            "error: `--from` and `--to` name the same backend (hint: `mip state migrate --from local --to cluster`, or the reverse)",
        );
        return Ok(ExitStatus::Error);
    }
    let settings = match state_settings(inv)? {
        Ok(settings) => settings,
        Err(code) => return Ok(code),
    };
    let source = store::backend_of(from, args, settings.as_ref());
    let destination = store::backend_of(to, args, settings.as_ref());
    let rt = runtime()?;
    match source.read_with_history(&rt, false) {
        Ok(Some(_)) => {}
        Ok(None) => {
            views::note(&format!(
                "error: nothing to migrate: no state in {} (hint: check `--from`, `--state-dir`, `--state-namespace` and `--state-name`)",
                source.describe()
            ));
            return Ok(ExitStatus::Error);
        }
        Err(e) => return Ok(fail(&LiveError::State(e))),
    }
    let opened = source.open("state migrate").and_then(|src| {
        let dst = destination.open("state migrate")?;
        Ok((src, dst))
    });
    let (src, dst) = match opened {
        Ok(stores) => stores,
        Err(e) => return Ok(fail(&LiveError::State(e))),
    };
    let snapshot = src.snapshot().context("failed to read the source state")?;
    let history = src.history().context("failed to read the source history")?;
    if let Err(e) = dst.import(&snapshot, &history) {
        return Ok(fail(&LiveError::State(e)));
    }
    // Read back what the destination holds now, through a fresh open after release.
    drop(dst);
    let copied = match destination.read_with_history(&rt, true) {
        Ok(copied) => copied,
        Err(e) => return Ok(fail(&LiveError::State(e))),
    };
    if copied.as_ref() != Some(&(snapshot.clone(), history.clone())) {
        views::note(&format!(
            "error: the state read back from {} differs from the source (hint: this is a bug in mip; the source {} is unchanged)",
            destination.describe(),
            source.describe()
        ));
        return Ok(ExitStatus::Error);
    }
    views::note(&format!(
        "migrated lineage {} serial {} ({} object(s), {} history entries) from {} to {}; the source is left as it was: remove it once you have checked",
        snapshot.lineage,
        snapshot.serial,
        snapshot.managed.len(),
        history.len(),
        source.describe(),
        destination.describe()
    ));
    drop(src);
    Ok(ExitStatus::Success)
}

fn state_rebuild(inv: &InventoryArgs, args: &ClusterArgs) -> anyhow::Result<ExitStatus> {
    let (loaded, rt, cluster, store) = match session(inv, args, "state rebuild")? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    match rt.block_on(live::rebuild_state(&cluster, &store, &loaded)) {
        Ok(n) => {
            views::note(&format!("rebuilt the state: {n} object(s) recorded from the cluster"));
            stats(&cluster);
            Ok(ExitStatus::Success)
        }
        Err(e) => Ok(fail(&e)),
    }
}
