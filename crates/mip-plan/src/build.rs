//! Desired state + prior state → plan. Pure.

use crate::model::*;
use mip_core::{Action, ObjectRef, Owner, canonical};
use mip_graph::{Dag, Desired, DesiredObject};

/// The fingerprint of a desired object: sha256 over its manifest and the *sources* of its
/// sensitive keys (never values), so a changed source is a change and a value is never hashed
/// unsalted.
pub fn fingerprint(o: &DesiredObject) -> String {
    // Hashed from the parts (the digest of `{"manifest": …, "sensitive": …}`), not from a copy
    // of the manifest in a new document.
    let sensitive = serde_json::to_value(&o.sensitive).unwrap_or_default();
    canonical::digest_object(vec![("manifest", &o.manifest), ("sensitive", &sensitive)]).unwrap_or_default()
}

/// The fingerprints of the objects mip applies, by position in the desired map, computed on up
/// to four threads: each is a canonical walk of the manifest and a sha256, 30 000 of them at
/// 10 000 federations, about half of building a plan. The result does not depend on the split.
fn fingerprints(by_position: &[&DesiredObject]) -> Vec<Option<String>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // A thread takes at least 2 048 objects: below that it costs more than it saves.
    fingerprints_split(by_position, cores.min(4), 2048)
}

/// [`fingerprints`] on at most `threads` threads, each with at least `per_thread` objects.
fn fingerprints_split(
    by_position: &[&DesiredObject],
    threads: usize,
    per_thread: usize,
) -> Vec<Option<String>> {
    let threads = threads.min(by_position.len().div_ceil(per_thread.max(1))).max(1);
    let chunk = by_position.len().div_ceil(threads).max(1);
    let mut out = vec![None; by_position.len()];
    let one = |objects: &[&DesiredObject], slots: &mut [Option<String>]| {
        for (o, slot) in objects.iter().zip(slots) {
            if o.owner != Owner::ArgoCd {
                *slot = Some(fingerprint(o));
            }
        }
    };
    if threads == 1 {
        one(by_position, &mut out);
        return out;
    }
    std::thread::scope(|scope| {
        for (objects, slots) in by_position.chunks(chunk).zip(out.chunks_mut(chunk)) {
            scope.spawn(move || one(objects, slots));
        }
    });
    out
}

/// The fingerprint of `o`, found at `position` when `o` is the object there.
fn fingerprint_at(
    fingerprints: &mut [Option<String>],
    by_position: &[&DesiredObject],
    position: usize,
    o: &DesiredObject,
) -> String {
    let at = by_position.get(position).is_some_and(|p| std::ptr::eq(*p, o));
    at.then(|| fingerprints.get_mut(position).and_then(Option::take))
        .flatten()
        .unwrap_or_else(|| fingerprint(o))
}

/// Inputs of [`plan`] besides the desired state.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// Inventory path as given.
    pub inventory: &'a str,
    /// sha256 of its bytes.
    pub inventory_digest: String,
    /// Offline or live.
    pub mode: Mode,
    /// mip's version.
    pub mip_version: &'a str,
}

/// Plans against the prior state only (the offline plan): an object absent from state is
/// created, a changed fingerprint is an update, a managed object no longer desired is
/// deleted, and every Argo-owned object is awaited.
pub fn plan(desired: &Desired, dag: &Dag, prior: &PriorState, input: &PlanInput<'_>) -> Plan {
    let mut changes = Vec::new();
    let mut keys = KeyLists::default();
    let mut expected = Vec::new();
    let mut summary = Summary::default();
    let by_position: Vec<&DesiredObject> = desired.objects.values().collect();
    let mut fingerprints = fingerprints(&by_position);
    for (position, addr) in dag.order_nodes() {
        let o = object_at(desired, &by_position, position, addr);
        if o.owner == Owner::ArgoCd {
            summary.await_argo += 1;
            expected.push(expectation(o, Action::Await, false));
            continue;
        }
        let fp = fingerprint_at(&mut fingerprints, &by_position, position, o);
        let (action, reason) = match prior.managed.get(addr) {
            None => (Action::Create, "not in state".to_owned()),
            Some(old) if *old == fp => (Action::NoOp, "unchanged since last apply".to_owned()),
            Some(_) => (Action::Update, "configuration changed since last apply".to_owned()),
        };
        count(&mut summary, action);
        changes.push(change_of(o, dag.dependencies_at(position), action, reason, fp, &mut keys));
    }
    for addr in no_longer_desired(desired, prior) {
        summary.delete += 1;
        changes.push(deletion(addr, "no longer in the inventory", prior.managed[addr].clone(), None));
    }
    assemble(desired, prior, input, changes, expected, summary)
}

/// Objects the state manages that the desired state no longer has, in deletion order: the
/// reverse of creation (dependents before what they depend on).
fn no_longer_desired<'a>(desired: &Desired, prior: &'a PriorState) -> Vec<&'a ObjectRef> {
    let mut gone: Vec<&ObjectRef> =
        prior.managed.keys().filter(|a| !desired.objects.contains_key(*a)).collect();
    gone.sort_by(|a, b| delete_rank(b).cmp(&delete_rank(a)).then_with(|| b.cmp(a)));
    gone
}

/// The deletion of an object mip managed.
pub fn deletion(
    addr: &ObjectRef,
    reason: &str,
    fingerprint: String,
    live_fingerprint: Option<String>,
) -> Change {
    Change {
        address: addr.clone(),
        action: Action::Delete,
        step: mip_graph::Step::Bootstrap,
        reason: reason.to_owned(),
        purpose: "previously managed by mip".to_owned(),
        depends_on: Vec::new(),
        sensitive: std::sync::Arc::default(),
        fingerprint,
        manifest: None,
        diff: None,
        live_fingerprint,
        force: false,
    }
}

/// A plan from its parts, with the header every plan carries.
pub fn assemble(
    desired: &Desired,
    prior: &PriorState,
    input: &PlanInput<'_>,
    changes: Vec<Change>,
    expected: Vec<Expectation>,
    summary: Summary,
) -> Plan {
    Plan {
        format_version: FORMAT_VERSION.to_owned(),
        mip_version: input.mip_version.to_owned(),
        mode: input.mode,
        inventory: input.inventory.to_owned(),
        inventory_digest: input.inventory_digest.clone(),
        revision: desired.revision.clone(),
        prefix: desired.prefix.clone(),
        state: prior.state.clone(),
        base: None,
        targets: Vec::new(),
        changes,
        expected,
        files: Vec::new(),
        summary,
    }
}

pub(crate) fn count(summary: &mut Summary, action: Action) {
    match action {
        Action::Create => summary.create += 1,
        Action::Update => summary.update += 1,
        _ => summary.no_op += 1,
    }
}

/// The object at `position` of the DAG's order: by position when the DAG was built from
/// `desired.objects` (one comparison confirms it), else by address.
fn object_at<'a>(
    desired: &'a Desired,
    by_position: &[&'a DesiredObject],
    position: usize,
    addr: &ObjectRef,
) -> &'a DesiredObject {
    match by_position.get(position) {
        Some(o) if *o.addr == *addr => o,
        _ => &desired.objects[addr],
    }
}

/// What a plan says of an object Argo CD generates.
pub(crate) fn expectation(o: &DesiredObject, action: Action, present: bool) -> Expectation {
    Expectation {
        address: (*o.addr).clone(),
        action,
        step: o.step,
        reason: o.reason.clone(),
        generated_by: o.generated_by.clone(),
        present,
        diff: None,
        model: o.model.as_ref().map(|m| crate::ExpectedModel::Typed(std::sync::Arc::clone(m))),
    }
}

/// The plan's list of a Secret's keys for each distinct key map of the desired state (which
/// shares one map between every federation's Secret of an app), built once and shared by the
/// changes: 20 000 Secrets at 10 000 federations name a handful of key sets.
#[derive(Default)]
pub(crate) struct KeyLists(std::collections::BTreeMap<usize, std::sync::Arc<[SensitiveKey]>>);

impl KeyLists {
    fn of(
        &mut self,
        keys: &std::sync::Arc<std::collections::BTreeMap<String, mip_core::SensitiveSource>>,
    ) -> std::sync::Arc<[SensitiveKey]> {
        // By identity: the maps live as long as the desired state this plan borrows.
        let list = self.0.entry(std::sync::Arc::as_ptr(keys).addr()).or_insert_with(|| {
            keys.iter().map(|(k, s)| SensitiveKey { key: k.clone(), source: s.clone() }).collect()
        });
        std::sync::Arc::clone(list)
    }
}

/// The change for one mip-owned object, with its dependencies from the DAG.
pub(crate) fn change_of(
    o: &DesiredObject,
    dependencies: Vec<(ObjectRef, mip_graph::Rule)>,
    action: Action,
    reason: String,
    fingerprint: String,
    keys: &mut KeyLists,
) -> Change {
    Change {
        address: (*o.addr).clone(),
        action,
        step: o.step,
        reason,
        purpose: o.reason.clone(),
        depends_on: dependencies
            .into_iter()
            .map(|(a, r)| Dependency { address: a, rule: r.as_str().to_owned() })
            .collect(),
        sensitive: keys.of(&o.sensitive),
        fingerprint,
        manifest: Some(o.manifest.clone()),
        diff: None,
        live_fingerprint: None,
        force: false,
    }
}

/// Creation rank of a kind for objects that are only known from state: namespaces and CRDs
/// are created first, so they are deleted last.
fn delete_rank(a: &ObjectRef) -> u8 {
    use mip_core::Kind;
    match a.known_kind() {
        Some(Kind::Namespace) => 0,
        Some(Kind::CustomResourceDefinition) => 1,
        Some(Kind::AppProject) => 2,
        Some(Kind::ClusterRole | Kind::Role | Kind::ServiceAccount) => 3,
        Some(Kind::Secret) => 4,
        _ => 5,
    }
}

/// Keys of a live Secret whose value no longer matches the salted hash recorded at the last
/// apply. Values are decoded in memory only to be hashed.
fn changed_secret_values(prior: &PriorState, addr: &ObjectRef, live: &serde_json::Value) -> Vec<String> {
    let (Some(hashes), Some(salt)) = (prior.secret_hashes.get(addr), prior.state.lineage.as_deref()) else {
        return Vec::new();
    };
    let data = live.get("data").and_then(serde_json::Value::as_object);
    hashes
        .iter()
        .filter(|(key, want)| {
            let now = data
                .and_then(|d| d.get(key.as_str()))
                .and_then(serde_json::Value::as_str)
                .and_then(base64_decode);
            now.is_none_or(|v| mip_core::canonical::salted_hash(salt, &format!("{addr}#{key}"), &v) != **want)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// Standard base64 (Kubernetes `data` values) as UTF-8 text, `None` if malformed or not text.
/// Whitespace is ignored and padding is optional.
pub fn base64_decode(s: &str) -> Option<String> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let compact: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    String::from_utf8(LENIENT.decode(compact).ok()?).ok()
}

/// What the engine read from the cluster for a live plan, and the diff of each mip-owned
/// object that exists, computed once: the engine decides from it which objects to confirm with
/// a server-side dry run, the plan its actions.
#[derive(Debug, Clone, Default)]
pub struct LiveView {
    /// Live objects by address (absent = does not exist).
    pub objects: std::collections::BTreeMap<ObjectRef, serde_json::Value>,
    /// The diff of every mip-owned desired object against its live counterpart.
    diffs: std::collections::BTreeMap<ObjectRef, crate::diff::ObjectDiff>,
    /// Argo CD objects in the cluster that the desired state does not have (read by the same
    /// LISTs): those generated from mip's tree are what Argo CD will delete.
    pub leftovers: std::collections::BTreeMap<ObjectRef, serde_json::Value>,
}

impl LiveView {
    /// The view of `objects`, each mip-owned object of `desired` diffed once.
    pub fn new(
        desired: &Desired,
        objects: std::collections::BTreeMap<ObjectRef, serde_json::Value>,
    ) -> LiveView {
        let diffs = desired
            .mip_owned()
            .filter_map(|o| {
                let live = objects.get(&o.addr)?;
                Some(((*o.addr).clone(), crate::diff::diff(&o.manifest, live, o.addr.is_secret())))
            })
            .collect();
        LiveView { objects, diffs, leftovers: std::collections::BTreeMap::new() }
    }

    /// The view with the Argo CD objects the desired state does not have.
    pub fn with_leftovers(
        mut self,
        leftovers: std::collections::BTreeMap<ObjectRef, serde_json::Value>,
    ) -> Self {
        self.leftovers = leftovers;
        self
    }

    /// The objects whose owned fields differ and that mip already manages (a Secret compares
    /// no values; an object mip does not own yet is an adoption): a server-side dry run may show
    /// the difference is only the server's normalisation. With their manifests.
    pub fn to_confirm(&self, desired: &Desired) -> Vec<(ObjectRef, std::sync::Arc<serde_json::Value>)> {
        desired
            .mip_owned()
            .filter(|o| !o.addr.is_secret() && self.diffs.get(&o.addr).is_some_and(|d| d.changed))
            .filter(|o| {
                self.objects
                    .get(&o.addr)
                    .is_some_and(|l| crate::diff::owned_fields(l, mip_core::FIELD_MANAGER).is_some())
            })
            .map(|o| ((*o.addr).clone(), std::sync::Arc::clone(&o.manifest)))
            .collect()
    }

    /// A dry run showed the object would not change: no change, whatever the diff said.
    pub fn confirm_unchanged(&mut self, addr: &ObjectRef) {
        if let Some(d) = self.diffs.get_mut(addr) {
            d.changed = false;
        }
    }
}

/// Whether mip adopts this object from another creator, taking ownership of the fields it
/// sets: only the `default` AppProject, which argocd-server creates on every start.
pub fn adopts(addr: &ObjectRef) -> bool {
    addr.is(mip_core::Kind::AppProject) && addr.name == mip_graph::catalogue::DEFAULT_PROJECT
}

/// Plans against the live cluster (and the state, for reasons): absent → create, owned fields
/// differ → update (drift when the inventory did not change since the last apply), equal →
/// no-op; a managed object no longer desired → delete if it still exists; Argo-owned objects
/// → await when missing.
pub fn plan_live(
    desired: &Desired,
    dag: &Dag,
    prior: &PriorState,
    live: &LiveView,
    input: &PlanInput<'_>,
) -> Plan {
    let mut changes = Vec::new();
    let mut keys = KeyLists::default();
    let mut expected = Vec::new();
    let mut summary = Summary::default();
    let by_position: Vec<&DesiredObject> = desired.objects.values().collect();
    let mut fingerprints = fingerprints(&by_position);
    for (position, addr) in dag.order_nodes() {
        let o = object_at(desired, &by_position, position, addr);
        let live_obj = live.objects.get(addr);
        if o.owner == Owner::ArgoCd {
            expected.push(argo_expectation(o, live_obj, &mut summary));
            continue;
        }
        let fp = fingerprint_at(&mut fingerprints, &by_position, position, o);
        let is_secret = addr.is_secret();
        let (action, reason, diff) = live_action(o, &fp, prior, live);
        count(&mut summary, action);
        changes.push(Change {
            diff,
            live_fingerprint: live_obj.map(|l| crate::diff::live_fingerprint(l, is_secret)),
            // Adopting an Argo CD object mip owns by design (the bootstrap project, a root
            // Application made with the argocd CLI) takes its fields over from that creator; a
            // Secret is never forced: a value another manager set that differs is a conflict.
            force: adopts(addr)
                || (addr.group == "argoproj.io"
                    && live_obj
                        .is_some_and(|l| crate::diff::owned_fields(l, mip_core::FIELD_MANAGER).is_none())),
            ..change_of(o, dag.dependencies_at(position), action, reason, fp, &mut keys)
        });
    }
    reissued(&mut changes, &mut summary, live);
    for e in removed_by_argo(desired, live) {
        summary.argo_delete += 1;
        expected.push(e);
    }
    for addr in no_longer_desired(desired, prior) {
        let Some(l) = live.objects.get(addr) else { continue };
        let is_secret = addr.is_secret();
        summary.delete += 1;
        let live_fp = Some(crate::diff::live_fingerprint(l, is_secret));
        changes.push(deletion(addr, "no longer in the inventory", prior.managed[addr].clone(), live_fp));
    }
    assemble(desired, prior, input, changes, expected, summary)
}

/// What a live plan says of an object Argo CD generates: awaited when absent, an update when
/// present but not as modelled (an upgraded revision, a moved destination: what Argo CD will
/// change once the rendered tree is in Git), else present as expected.
fn argo_expectation(
    o: &DesiredObject,
    live_obj: Option<&serde_json::Value>,
    summary: &mut Summary,
) -> Expectation {
    let present = live_obj.is_some();
    if !present {
        summary.await_argo += 1;
    }
    let mut e = expectation(o, if present { Action::NoOp } else { Action::Await }, present);
    // The model's JSON is built only to be compared, and dropped after.
    let diff = live_obj.and_then(|l| {
        let model = e.model.as_ref().map(crate::ExpectedModel::value);
        crate::argo::argo_diff(model.as_deref().unwrap_or(&o.manifest), l)
    });
    if diff.is_some() {
        summary.argo_update += 1;
        e.action = Action::Update;
        e.diff = diff;
    }
    e
}

/// The action, its reason and the diff for a mip-owned object against the cluster and the
/// state: create when absent (drift when the state has it), no-op when it matches, update
/// otherwise (a secret value changed, adoption, drift or a configuration change).
fn live_action(
    o: &DesiredObject,
    fp: &str,
    prior: &PriorState,
    live: &LiveView,
) -> (Action, String, Option<String>) {
    let addr = &*o.addr;
    let is_secret = addr.is_secret();
    let in_state = prior.managed.get(addr);
    let Some(l) = live.objects.get(addr) else {
        let why = if in_state.is_some() {
            "deleted in the cluster behind mip's back (drift)"
        } else {
            "not in the cluster"
        };
        return (Action::Create, why.to_owned(), None);
    };
    let d = live.diffs.get(addr).cloned().unwrap_or_else(|| crate::diff::diff(&o.manifest, l, is_secret));
    let changed_values = if is_secret { changed_secret_values(prior, addr, l) } else { Vec::new() };
    if !d.changed && !changed_values.is_empty() {
        let text = changed_values
            .iter()
            .map(|k| format!("~ {k}: value changed in the cluster (sensitive)\n"))
            .collect::<String>();
        (
            Action::Update,
            "a secret value was changed in the cluster (drift; values are never shown)".to_owned(),
            Some(text),
        )
    } else if !d.changed {
        (Action::NoOp, "matches the cluster".to_owned(), None)
    } else if crate::diff::owned_fields(l, mip_core::FIELD_MANAGER).is_none() {
        (Action::Update, "exists but is not managed by mip yet (adopt)".to_owned(), Some(d.text))
    } else if in_state.is_some_and(|s| s == fp) {
        (Action::Update, "changed in the cluster behind mip's back (drift)".to_owned(), Some(d.text))
    } else {
        (Action::Update, "configuration changed".to_owned(), Some(d.text))
    }
}

/// The generator Argo CD records on an object it made: the ApplicationSet that owns it, or the
/// Application its tracking label or annotation names (the label keys mip-infra and Argo CD
/// use by default, and annotation tracking `app:group/kind:namespace/name`).
fn generator_of(addr: &ObjectRef, live: &serde_json::Value) -> Option<ObjectRef> {
    let text = |p: &str| live.pointer(p).and_then(serde_json::Value::as_str);
    let ns = addr.namespace.as_deref();
    if let Some(owners) = live.pointer("/metadata/ownerReferences").and_then(serde_json::Value::as_array)
        && let Some(set) = owners.iter().find(|o| o["kind"] == "ApplicationSet")
    {
        let name = set["name"].as_str()?;
        return Some(
            ObjectRef::new("argoproj.io/v1alpha1", "ApplicationSet", ns, name)
                .on_cluster(addr.cluster.as_deref()),
        );
    }
    let app = text("/metadata/labels/argocd.argoproj.io~1instanceTracking")
        .or_else(|| text("/metadata/labels/app.kubernetes.io~1instance"))
        .or_else(|| {
            text("/metadata/annotations/argocd.argoproj.io~1tracking-id").and_then(|t| t.split(':').next())
        })?;
    // Apps in any namespace are tracked as `namespace_name`.
    let name = app.rsplit_once('_').map_or(app, |(_, n)| n);
    Some(ObjectRef::new("argoproj.io/v1alpha1", "Application", ns, name).on_cluster(addr.cluster.as_deref()))
}

/// What Argo CD will delete: objects it generated from mip's tree (their generator is desired,
/// or is itself being deleted) that the desired state no longer has.
fn removed_by_argo(desired: &Desired, live: &LiveView) -> Vec<Expectation> {
    let mut removed: std::collections::BTreeMap<&ObjectRef, ObjectRef> = std::collections::BTreeMap::new();
    loop {
        let before = removed.len();
        for (addr, l) in &live.leftovers {
            if removed.contains_key(addr) || desired.objects.contains_key(addr) {
                continue;
            }
            if let Some(g) = generator_of(addr, l)
                && (desired.objects.contains_key(&g) || removed.contains_key(&g))
            {
                removed.insert(addr, g);
            }
        }
        if removed.len() == before {
            break;
        }
    }
    removed
        .into_iter()
        .map(|(addr, g)| Expectation {
            address: addr.clone(),
            action: Action::Delete,
            step: mip_graph::Step::Infra,
            reason: format!("no longer in the tree: Argo CD deletes it (from {})", g.short()),
            generated_by: Some(g.into()),
            present: true,
            diff: None,
            model: None,
        })
        .collect()
}

/// A Secret whose value is read from another Secret mip writes (a registered cluster's token)
/// is written again when that Secret is (re)created or is missing: a new token is issued, and
/// the old value no longer authenticates. The value itself is known only at apply time.
fn reissued(changes: &mut [Change], summary: &mut Summary, live: &LiveView) {
    // Only Secrets mip writes: one another tool makes is read again with `mip apply --rotate`.
    // The few sources some change reads, with their own action (no map of every change: this
    // runs on every plan).
    let sources: std::collections::BTreeSet<&ObjectRef> =
        changes.iter().flat_map(|c| c.sensitive.iter().filter_map(|k| k.source.reads())).collect();
    if sources.is_empty() {
        return;
    }
    let managed: std::collections::BTreeMap<ObjectRef, Action> = changes
        .iter()
        .filter(|c| sources.contains(&c.address))
        .map(|c| (c.address.clone(), c.action))
        .collect();
    for c in changes.iter_mut().filter(|c| c.action == Action::NoOp) {
        let source = c.sensitive.iter().filter_map(|k| k.source.reads()).find(|s| {
            managed.get(*s).is_some_and(|a| *a == Action::Create || !live.objects.contains_key(*s))
        });
        if let Some(source) = source {
            c.reason = format!("`{source}` is issued anew: its value is carried again (known after apply)");
            let keys: Vec<&str> = c
                .sensitive
                .iter()
                .filter(|k| k.source.reads() == Some(source))
                .map(|k| k.key.as_str())
                .collect();
            c.diff = Some(keys.iter().map(|k| format!("~ {k}: (sensitive, known after apply)\n")).collect());
            c.action = Action::Update;
            summary.no_op -= 1;
            summary.update += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    /// However the objects are split between threads, each gets its own fingerprint, and the
    /// Argo CD ones none.
    #[test]
    fn fingerprints_do_not_depend_on_the_split() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mip-infra/mip.yaml");
        let text = std::fs::read_to_string(path).expect("example");
        let inv = mip_inventory::parse("mip.yaml", &text).expect("valid").inventory;
        let desired = mip_graph::resolve(&inv, &[], &Default::default()).expect("resolves");
        let objects: Vec<&super::DesiredObject> = desired.objects.values().collect();
        let one: Vec<Option<String>> = objects
            .iter()
            .map(|o| (o.owner != super::Owner::ArgoCd).then(|| super::fingerprint(o)))
            .collect();
        assert!(one.iter().filter(|f| f.is_some()).count() > 10);
        for (threads, per_thread) in [(1, 1), (2, 1), (3, 7), (4, 5), (4, usize::MAX)] {
            assert_eq!(
                super::fingerprints_split(&objects, threads, per_thread),
                one,
                "{threads} × {per_thread}"
            );
        }
    }

    #[test]
    fn base64_decodes_kubernetes_data_values() {
        assert_eq!(base64_decode("aHVudGVyMg==").as_deref(), Some("hunter2"));
        assert_eq!(base64_decode("aHVudGVyMg").as_deref(), Some("hunter2"), "padding is optional");
        assert_eq!(base64_decode("aHVu\ndGVy Mg==").as_deref(), Some("hunter2"), "whitespace is ignored");
        assert_eq!(base64_decode("").as_deref(), Some(""));
        assert_eq!(base64_decode("not base64!"), None);
        assert_eq!(base64_decode("//79"), None, "not UTF-8 text");
    }
}
