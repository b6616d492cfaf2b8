//! `mip doctor`: reads the cluster and names each known Argo CD failure mode with its fix.
//!
//! The detection is a pure function, [`diagnose`], over live objects ([`LiveObjects`]) and what
//! the inventory requires ([`Expectations`]), so every failure mode is unit-tested without a
//! cluster; [`read`] fetches the objects with one LIST per Argo CD kind in the Argo CD namespace
//! (plus the required Secrets one by one, keeping only their key *names*: no value leaves this
//! module, or is even kept in it).
//!
//! Failure modes (`../shared/research/argocd-facts.md` §5-§6), each a [`Finding::code`]:
//! - `missing-project`: an Application (or an ApplicationSet's template) references a project
//!   that does not exist; Argo CD marks it `InvalidSpecError` and never syncs it.
//! - `repo-not-permitted` / `destination-not-permitted`: the project does not permit a source
//!   repository or the destination (Argo CD's glob matching, `!` deny patterns included).
//! - `missing-secret` / `missing-secret-keys`: a Secret the inventory's apps read is absent or
//!   lacks keys; the pods wait in `CreateContainerConfigError`.
//! - `sync-failed`: the last sync failed on the current revision; automated sync does not retry
//!   it (`Skipping auto-sync: failed previous sync attempt`), even with self-heal.
//! - `stuck-deletion`: an object is being deleted but finalizers hold it.
//! - `appset-error`: an ApplicationSet reports `ErrorOccurred=True`.
//! - `default-project-loosened`: the `default` project permits sources or destinations again.

use crate::live::{LiveError, read_live};
use crate::ops::Loaded;
use mip_core::ObjectRef;
use mip_core::cluster::{Cluster, ClusterError, KindRef};
use mip_graph::glob_match;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Version of the JSON report.
pub const FORMAT_VERSION: &str = "1";

/// Deletions held longer than this are errors, shorter ones warnings (a finalizer at work).
pub const STUCK_AFTER_SECS: u64 = 120;

/// The Secrets whose absence stalls the MIP apps (names only are ever checked).
pub const WATCHED_SECRETS: [&str; 3] = ["keycloak-credentials", "mip-secret", "datacatalog-secrets"];

const ARGO_API: &str = "argoproj.io/v1alpha1";

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something is broken and will not heal by itself.
    Error,
    /// Something is wrong or may be transient.
    Warning,
}

impl Severity {
    /// Lowercase name, as in the text and JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One failure mode found on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// Stable kebab-case name of the failure mode (see the module docs).
    pub code: &'static str,
    /// The object.
    pub address: ObjectRef,
    /// What is wrong.
    pub what: String,
    /// How to fix it.
    pub fix: String,
}

/// The whole report (`mip doctor --output json`). Fields are added, never renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// [`FORMAT_VERSION`].
    pub format_version: &'static str,
    /// The Argo CD namespace examined.
    pub argocd_namespace: String,
    /// Whether nothing was found.
    pub healthy: bool,
    /// How many objects of each kind were examined.
    pub checked: BTreeMap<String, usize>,
    /// The findings, sorted by severity, address and code.
    pub findings: Vec<Finding>,
}

/// A Secret the inventory's apps need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredSecret {
    /// Its address.
    pub addr: ObjectRef,
    /// The keys the apps read.
    pub keys: BTreeSet<String>,
}

/// What the inventory requires of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expectations {
    /// Where Argo CD's objects live.
    pub argocd_namespace: String,
    /// Whether the `default` project must be locked down (`defaultProject: lock-down`).
    pub lock_down_default: bool,
    /// Secrets on the cluster mip talks to (Secrets on remote clusters are not checked).
    pub secrets: Vec<RequiredSecret>,
    /// Namespaces mip creates (checked for stuck deletions).
    pub namespaces: BTreeSet<ObjectRef>,
}

/// The live objects the diagnosis looks at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveObjects {
    /// AppProjects in the Argo CD namespace.
    pub projects: Vec<Value>,
    /// Applications in the Argo CD namespace.
    pub applications: Vec<Value>,
    /// ApplicationSets in the Argo CD namespace.
    pub application_sets: Vec<Value>,
    /// The key names of each required Secret that exists (never a value).
    pub secret_keys: BTreeMap<ObjectRef, BTreeSet<String>>,
    /// The namespaces of [`Expectations::namespaces`] that exist.
    pub namespaces: Vec<Value>,
}

/// What the loaded inventory requires.
pub fn expectations(loaded: &Loaded) -> Expectations {
    let secrets = loaded
        .desired
        .mip_owned()
        .filter(|o| o.addr.cluster.is_none() && o.addr.group.is_empty() && o.addr.kind == "Secret")
        .filter(|o| WATCHED_SECRETS.contains(&o.addr.name.as_str()))
        .map(|o| {
            let mut keys: BTreeSet<String> = o.sensitive.keys().cloned().collect();
            if let Some(data) = o.manifest.get("stringData").and_then(Value::as_object) {
                keys.extend(data.keys().cloned());
            }
            RequiredSecret { addr: o.addr.clone(), keys }
        })
        .collect();
    let namespaces = loaded
        .desired
        .mip_owned()
        .filter(|o| o.addr.cluster.is_none() && o.addr.group.is_empty() && o.addr.kind == "Namespace")
        .map(|o| o.addr.clone())
        .collect();
    Expectations {
        argocd_namespace: loaded.inventory.argocd.namespace.value.clone(),
        lock_down_default: loaded.inventory.argocd.default_project
            == mip_inventory::DefaultProjectPolicy::LockDown,
        secrets,
        namespaces,
    }
}

fn argo_kind(kind: &str) -> KindRef {
    KindRef { group: "argoproj.io".into(), version: "v1alpha1".into(), kind: kind.into() }
}

async fn list_or_empty<C: Cluster>(cluster: &C, kind: &str, ns: &str) -> Result<Vec<Value>, LiveError> {
    match cluster.list(&argo_kind(kind), Some(ns), None).await {
        Ok(items) => Ok(items),
        // Argo CD's CRDs are not installed: nothing of that kind exists.
        Err(ClusterError::UnknownKind { .. }) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The key names of a Secret object (`data` and `stringData`).
fn key_names(secret: &Value) -> BTreeSet<String> {
    ["data", "stringData"]
        .iter()
        .filter_map(|k| secret.get(*k).and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect()
}

/// Reads what [`diagnose`] needs: one LIST per Argo CD kind in the Argo CD namespace, one LIST
/// of namespaces, and one GET per required Secret (reduced to its key names at once).
///
/// # Errors
/// Cluster errors (a missing Argo CD CRD is not one: it means no objects of that kind).
pub async fn read<C: Cluster>(cluster: &C, exp: &Expectations) -> Result<LiveObjects, LiveError> {
    let ns = exp.argocd_namespace.as_str();
    let projects = list_or_empty(cluster, "AppProject", ns).await?;
    let applications = list_or_empty(cluster, "Application", ns).await?;
    let application_sets = list_or_empty(cluster, "ApplicationSet", ns).await?;
    let namespaces = read_live(cluster, &exp.namespaces).await?.into_values().collect();
    let mut secret_keys = BTreeMap::new();
    for s in &exp.secrets {
        if let Some(obj) = cluster.get(&s.addr).await? {
            secret_keys.insert(s.addr.clone(), key_names(&obj));
        }
    }
    Ok(LiveObjects { projects, applications, application_sets, secret_keys, namespaces })
}

/// Reads the cluster and diagnoses it.
///
/// # Errors
/// Cluster errors.
pub async fn doctor<C: Cluster>(cluster: &C, loaded: &Loaded) -> Result<Report, LiveError> {
    let exp = expectations(loaded);
    let live = read(cluster, &exp).await?;
    Ok(report(&exp, &live, now_unix()))
}

/// The report of a diagnosis.
pub fn report(exp: &Expectations, live: &LiveObjects, now_unix: u64) -> Report {
    let findings = diagnose(exp, live, now_unix);
    let checked = BTreeMap::from([
        ("AppProject".to_owned(), live.projects.len()),
        ("Application".to_owned(), live.applications.len()),
        ("ApplicationSet".to_owned(), live.application_sets.len()),
        ("Secret".to_owned(), exp.secrets.len()),
        ("Namespace".to_owned(), live.namespaces.len()),
    ]);
    Report {
        format_version: FORMAT_VERSION,
        argocd_namespace: exp.argocd_namespace.clone(),
        healthy: findings.is_empty(),
        checked,
        findings,
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn s<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn name_of(v: &Value) -> &str {
    s(v, "/metadata/name").unwrap_or("")
}

fn addr_of(kind: &str, v: &Value) -> ObjectRef {
    ObjectRef::new(ARGO_API, kind, s(v, "/metadata/namespace"), name_of(v))
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// A repository URL as Argo CD compares them: lowercase, without `.git` or a trailing `/`.
fn normalize_repo(url: &str) -> String {
    let u = url.trim().trim_end_matches('/').to_lowercase();
    u.strip_suffix(".git").map_or(u.clone(), str::to_owned)
}

/// Argo CD's `IsSourcePermitted`: some pattern matches and no `!` pattern does.
fn repo_permitted(patterns: &[&str], repo: &str) -> bool {
    let repo = normalize_repo(repo);
    let mut matched = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(deny) if glob_match(&normalize_repo(deny), &repo) => return false,
            Some(_) => {}
            None => matched |= glob_match(p, &repo) || glob_match(&normalize_repo(p), &repo),
        }
    }
    matched
}

/// A destination with Argo CD's `in-cluster` name and server filled in for each other.
fn destination(d: &Value) -> (String, String, String) {
    let mut server = d.get("server").and_then(Value::as_str).unwrap_or("").trim_end_matches('/').to_owned();
    let mut name = d.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
    let namespace = d.get("namespace").and_then(Value::as_str).unwrap_or("").to_owned();
    if server.is_empty() && name == mip_inventory::IN_CLUSTER {
        server = mip_core::IN_CLUSTER_SERVER.to_owned();
    }
    if name.is_empty() && server == mip_core::IN_CLUSTER_SERVER {
        name = mip_inventory::IN_CLUSTER.to_owned();
    }
    (server, name, namespace)
}

/// Argo CD's `IsDestinationPermitted`: server (or name) and namespace match an allowed
/// destination, and no `!` destination denies them.
fn destination_permitted(allowed: &[Value], dest: &Value) -> bool {
    let (server, name, namespace) = destination(dest);
    let glob = |pattern: &str, text: &str| match pattern.strip_prefix('!') {
        Some(p) => glob_match(p, text),
        None => glob_match(pattern, text),
    };
    let mut matched = false;
    for d in allowed {
        let ps = d.get("server").and_then(Value::as_str).unwrap_or("");
        let pn = d.get("name").and_then(Value::as_str).unwrap_or("");
        let pns = d.get("namespace").and_then(Value::as_str).unwrap_or("");
        let deny = ps.starts_with('!') || pn.starts_with('!') || pns.starts_with('!');
        let target = ((!ps.is_empty() && glob(ps, &server)) || (!pn.is_empty() && glob(pn, &name)))
            && glob(pns, &namespace);
        if deny && target {
            return false;
        }
        matched |= !deny && target;
    }
    matched
}

fn sources(app_spec: &Value) -> Vec<String> {
    let mut v: Vec<String> = app_spec
        .get("sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("repoURL").and_then(Value::as_str).map(str::to_owned))
        .collect();
    if let Some(r) = app_spec.pointer("/source/repoURL").and_then(Value::as_str) {
        v.push(r.to_owned());
    }
    v
}

/// The project an Application spec names (`default` when empty, as Argo CD reads it).
fn project_of(spec: &Value) -> &str {
    match spec.get("project").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => p,
        _ => "default",
    }
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as Kubernetes writes it.
fn parse_time(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Runs every check. Sorted by severity, address and code.
pub fn diagnose(exp: &Expectations, live: &LiveObjects, now_unix: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    let projects: BTreeMap<&str, &Value> = live.projects.iter().map(|p| (name_of(p), p)).collect();
    let ns = &exp.argocd_namespace;

    for app in &live.applications {
        check_application(app, &projects, ns, &mut out);
        check_application_conditions(app, &mut out);
    }
    for set in &live.application_sets {
        check_application_set(set, &projects, ns, &mut out);
    }
    for s in &exp.secrets {
        check_secret(s, live.secret_keys.get(&s.addr), &mut out);
    }
    if exp.lock_down_default
        && let Some(default) = projects.get("default")
    {
        check_default_project(default, &mut out);
    }
    let deletable = [
        ("AppProject", &live.projects),
        ("Application", &live.applications),
        ("ApplicationSet", &live.application_sets),
    ];
    for (kind, objects) in deletable {
        for o in objects.iter() {
            check_deletion(addr_of(kind, o), o, now_unix, &mut out);
        }
    }
    for n in &live.namespaces {
        check_deletion(ObjectRef::new("v1", "Namespace", None, name_of(n)), n, now_unix, &mut out);
    }
    out.sort_by(|a, b| (a.severity, &a.address, a.code).cmp(&(b.severity, &b.address, b.code)));
    out
}

/// The error conditions Argo CD itself reports on an Application, in its own words
/// (`status.conditions[]`: InvalidSpecError, ComparisonError, SyncError, …), with the fix for each.
fn check_application_conditions(app: &Value, out: &mut Vec<Finding>) {
    for c in app.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten() {
        let kind = c.get("type").and_then(Value::as_str).unwrap_or_default();
        let fix = match kind {
            "InvalidSpecError" => {
                "fix the Application or its project as the message says (projects come from Git: `mip render`, then commit); Argo CD does not sync an invalid spec"
            }
            "ComparisonError" => {
                "Argo CD cannot render the sources: check the repository URL, the revision, credentials (`mip-repo-*` Secrets) and that the chart or path exists"
            }
            "SyncError" => {
                "read the sync result in `status.operationState`; after fixing the cause, trigger a sync (a failed auto-sync is not retried on the same revision)"
            }
            "UnknownError" => "see the application controller's log for this Application",
            "DeletionError" => {
                "the deletion is blocked: often its project is already gone (recreate it) or a resource cannot be deleted"
            }
            _ => continue,
        };
        let message = c.get("message").and_then(Value::as_str).unwrap_or_default();
        out.push(Finding {
            severity: Severity::Error,
            code: "argo-condition",
            address: addr_of("Application", app),
            what: format!("Argo CD reports `{kind}`: {message}"),
            fix: fix.to_owned(),
        });
    }
}

fn missing_project_fix(project: &str, ns: &str) -> String {
    format!(
        "create AppProject `{project}` in `{ns}` first: let `argo-projects` sync (or run `mip apply`), then refresh the application; if the name is wrong, fix `spec.project`"
    )
}

fn check_application(app: &Value, projects: &BTreeMap<&str, &Value>, ns: &str, out: &mut Vec<Finding>) {
    let addr = addr_of("Application", app);
    let name = name_of(app);
    let spec = app.get("spec").cloned().unwrap_or(Value::Null);
    let project = project_of(&spec);
    match projects.get(project) {
        None => out.push(Finding {
            severity: Severity::Error,
            code: "missing-project",
            address: addr.clone(),
            what: format!("references project `{project}`, which does not exist (Argo CD marks it `InvalidSpecError` and never syncs it)"),
            fix: missing_project_fix(project, ns),
        }),
        Some(proj) => {
            let repos = strs(proj.pointer("/spec/sourceRepos"));
            for repo in sources(&spec) {
                if !repo_permitted(&repos, &repo) {
                    out.push(Finding {
                        severity: Severity::Error,
                        code: "repo-not-permitted",
                        address: addr.clone(),
                        what: format!("repository `{repo}` is not permitted in project `{project}`"),
                        fix: format!("add `{repo}` to `spec.sourceRepos` of AppProject `{project}` (for generated projects: the inventory's `upstreamRepos`, then `mip render`), then refresh the application"),
                    });
                }
            }
            if let Some(dest) = spec.get("destination") {
                let allowed: Vec<Value> = proj.pointer("/spec/destinations").and_then(Value::as_array).cloned().unwrap_or_default();
                if !destination_permitted(&allowed, dest) {
                    let (server, dname, dns) = destination(dest);
                    let target = if server.is_empty() { format!("cluster `{dname}`") } else { format!("server `{server}`") };
                    out.push(Finding {
                        severity: Severity::Error,
                        code: "destination-not-permitted",
                        address: addr.clone(),
                        what: format!("destination {target} and namespace `{dns}` do not match any destination allowed in project `{project}`"),
                        fix: format!("allow the destination in `spec.destinations` of AppProject `{project}`, or deploy to a namespace it allows (federation projects allow their own namespace)"),
                    });
                }
            }
        }
    }
    check_operation(&addr, name, app, out);
}

/// A failed sync on the current revision, which automated sync will not retry.
fn check_operation(addr: &ObjectRef, name: &str, app: &Value, out: &mut Vec<Finding>) {
    let Some(phase) = s(app, "/status/operationState/phase") else { return };
    if !matches!(phase, "Failed" | "Error") || app.get("operation").is_some_and(|o| !o.is_null()) {
        return;
    }
    let tried = s(app, "/status/operationState/syncResult/revision")
        .or_else(|| s(app, "/status/operationState/operation/sync/revision"));
    let current = s(app, "/status/sync/revision");
    if let (Some(t), Some(c)) = (tried, current)
        && !t.is_empty()
        && !c.is_empty()
        && t != c
    {
        // A new revision: automated sync tries it by itself.
        return;
    }
    let message = s(app, "/status/operationState/message").unwrap_or("no message");
    let ns = addr.namespace.as_deref().unwrap_or("");
    let revision = current.or(tried).unwrap_or("HEAD");
    out.push(Finding {
        severity: Severity::Error,
        code: "sync-failed",
        address: addr.clone(),
        what: format!("the last sync ended `{phase}` on revision `{revision}` ({message}); Argo CD does not retry a failed sync of the same revision, even with self-heal"),
        fix: format!(
            "fix the cause, then trigger a sync: `argocd app sync {ns}/{name}` or `kubectl -n {ns} patch application {name} --type merge -p '{{\"operation\":{{\"initiatedBy\":{{\"username\":\"mip\"}},\"sync\":{{\"revision\":\"{revision}\"}}}}}}'`"
        ),
    });
}

fn check_application_set(set: &Value, projects: &BTreeMap<&str, &Value>, ns: &str, out: &mut Vec<Finding>) {
    let addr = addr_of("ApplicationSet", set);
    let name = name_of(set);
    for c in set.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten() {
        if c.get("type").and_then(Value::as_str) != Some("ErrorOccurred")
            || c.get("status").and_then(Value::as_str) != Some("True")
        {
            continue;
        }
        let reason = c.get("reason").and_then(Value::as_str).unwrap_or("unknown");
        let message = c.get("message").and_then(Value::as_str).unwrap_or("no message");
        let cause = match reason {
            "ApplicationValidationError" => {
                "a generated Application is invalid (often: its project does not exist yet); create the project or fix the template's `spec.project`"
            }
            "RenderTemplateParamsError" | "ApplicationGenerationFromParamsError" => {
                "the template does not render with the generators' parameters; fix the template in Git"
            }
            _ => "fix the generators or the template in Git",
        };
        out.push(Finding {
            severity: Severity::Error,
            code: "appset-error",
            address: addr.clone(),
            what: format!("reports `ErrorOccurred` ({reason}): {message}"),
            fix: format!("{cause}; then `kubectl -n {ns} annotate applicationset {name} argocd.argoproj.io/application-set-refresh=true`"),
        });
    }
    let project = set.pointer("/spec/template/spec/project").and_then(Value::as_str).unwrap_or("");
    if !project.is_empty() && !project.contains("{{") && !projects.contains_key(project) {
        out.push(Finding {
            severity: Severity::Error,
            code: "missing-project",
            address: addr,
            what: format!("its template references project `{project}`, which does not exist (every Application it generates is invalid)"),
            fix: missing_project_fix(project, ns),
        });
    }
}

fn check_secret(required: &RequiredSecret, live: Option<&BTreeSet<String>>, out: &mut Vec<Finding>) {
    let name = &required.addr.name;
    let ns = required.addr.namespace.as_deref().unwrap_or("");
    match live {
        None => out.push(Finding {
            severity: Severity::Error,
            code: "missing-secret",
            address: required.addr.clone(),
            what: format!("Secret `{name}` does not exist; the apps that read it wait in `CreateContainerConfigError`"),
            fix: "run `mip apply` (it creates the Secret from the inventory's sources; generated values are made once)".into(),
        }),
        Some(keys) => {
            let missing: Vec<String> = required.keys.difference(keys).map(|k| format!("`{k}`")).collect();
            if !missing.is_empty() {
                out.push(Finding {
                    severity: Severity::Error,
                    code: "missing-secret-keys",
                    address: required.addr.clone(),
                    what: format!("Secret `{name}` in `{ns}` lacks key(s) {}", missing.join(", ")),
                    fix: "run `mip apply` to write the missing keys (existing generated values are kept)".into(),
                });
            }
        }
    }
}

fn check_default_project(p: &Value, out: &mut Vec<Finding>) {
    let mut loose = Vec::new();
    if !strs(p.pointer("/spec/sourceRepos")).is_empty() {
        loose.push("`sourceRepos` is not empty".to_owned());
    }
    if p.pointer("/spec/destinations").and_then(Value::as_array).is_some_and(|d| !d.is_empty()) {
        loose.push("`destinations` is not empty".to_owned());
    }
    let denies_all =
        p.pointer("/spec/namespaceResourceBlacklist").and_then(Value::as_array).is_some_and(|l| {
            l.iter().any(|e| {
                e.get("group").and_then(Value::as_str) == Some("*")
                    && e.get("kind").and_then(Value::as_str) == Some("*")
            })
        });
    if !denies_all {
        loose.push("`namespaceResourceBlacklist` does not deny `*/*`".to_owned());
    }
    if !loose.is_empty() {
        out.push(Finding {
            severity: Severity::Error,
            code: "default-project-loosened",
            address: addr_of("AppProject", p),
            what: format!("the `default` project is loosened: {} (any Application without a project can deploy anything)", loose.join(", ")),
            fix: "run `mip apply` to lock it down again (`sourceRepos: []`, `destinations: []`, blacklist `*/*`); find who loosened it in `metadata.managedFields`".into(),
        });
    }
}

fn check_deletion(addr: ObjectRef, o: &Value, now_unix: u64, out: &mut Vec<Finding>) {
    let Some(since) = s(o, "/metadata/deletionTimestamp") else { return };
    let finalizers = strs(o.pointer("/metadata/finalizers"));
    if finalizers.is_empty() {
        return;
    }
    let age = parse_time(since).map(|t| now_unix.saturating_sub(t));
    let severity =
        if age.is_some_and(|a| a < STUCK_AFTER_SECS) { Severity::Warning } else { Severity::Error };
    let listed = finalizers.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
    let held = age.map_or_else(|| format!("since {since}"), |a| format!("for {a} s"));
    let kind = addr.kind.to_lowercase();
    let ns_flag = addr.namespace.as_deref().map(|n| format!("-n {n} ")).unwrap_or_default();
    let argo = finalizers.iter().any(|f| f.contains("argocd.argoproj.io"));
    let cause = if argo {
        "Argo CD deletes the managed resources first: check the application controller runs and can reach the destination"
    } else if addr.kind == "Namespace" {
        "objects in the namespace still have finalizers (`kubectl get all,pvc -n NAME`), or an API service is unavailable"
    } else {
        "the controller that owns the finalizer must finish; if it no longer runs, nothing will"
    };
    out.push(Finding {
        severity,
        code: "stuck-deletion",
        address: addr.clone(),
        what: format!("being deleted {held}, held by finalizer(s) {listed}"),
        fix: format!(
            "{cause}; as a last resort remove the finalizers (what they guard is left behind): `kubectl {ns_flag}patch {kind} {} --type json -p '[{{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}}]'`",
            addr.name
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NS: &str = "argocd-mip-team";
    const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn exp() -> Expectations {
        Expectations {
            argocd_namespace: NS.into(),
            lock_down_default: true,
            secrets: vec![RequiredSecret {
                addr: ObjectRef::new("v1", "Secret", Some("federation-a"), "keycloak-credentials"),
                keys: BTreeSet::from(["client-id".to_owned(), "client-secret".to_owned()]),
            }],
            namespaces: BTreeSet::from([ObjectRef::new("v1", "Namespace", None, "federation-a")]),
        }
    }

    fn project(name: &str, repos: &[&str], dests: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": NS}, "spec": {"sourceRepos": repos, "destinations": dests}})
    }

    fn locked_default() -> Value {
        json!({"metadata": {"name": "default", "namespace": NS}, "spec": {"sourceRepos": [], "destinations": [], "namespaceResourceBlacklist": [{"group": "*", "kind": "*"}]}})
    }

    fn app(name: &str, project: &str, repo: &str, ns: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": NS}, "spec": {"project": project, "source": {"repoURL": repo, "path": "p"}, "destination": {"server": "https://kubernetes.default.svc", "namespace": ns}}})
    }

    fn healthy() -> LiveObjects {
        LiveObjects {
            projects: vec![
                locked_default(),
                project(
                    "mip-federation-a",
                    &["https://github.com/madgik/*", "!https://github.com/madgik/forbidden"],
                    json!([{"server": "https://kubernetes.default.svc", "namespace": "federation-a"}]),
                ),
            ],
            applications: vec![app(
                "federation-a-exareme2",
                "mip-federation-a",
                "https://github.com/madgik/exareme2.git",
                "federation-a",
            )],
            application_sets: vec![
                json!({"metadata": {"name": "deployments-local", "namespace": NS}, "spec": {"template": {"spec": {"project": "{{.project}}"}}}, "status": {"conditions": [{"type": "ErrorOccurred", "status": "False", "reason": "ApplicationSetUpToDate"}]}}),
            ],
            secret_keys: BTreeMap::from([(
                exp().secrets[0].addr.clone(),
                BTreeSet::from(["client-id".to_owned(), "client-secret".to_owned()]),
            )]),
            namespaces: vec![json!({"metadata": {"name": "federation-a"}})],
        }
    }

    fn codes(live: &LiveObjects) -> Vec<(&'static str, String)> {
        diagnose(&exp(), live, NOW).into_iter().map(|f| (f.code, f.address.name.clone())).collect()
    }

    #[test]
    fn a_healthy_setup_has_no_findings() {
        assert_eq!(diagnose(&exp(), &healthy(), NOW), Vec::new());
        assert!(report(&exp(), &healthy(), NOW).healthy);
    }

    #[test]
    fn missing_project_of_an_application_and_of_an_appset_template() {
        let mut live = healthy();
        live.applications.push(app("orphan", "nope", "https://github.com/madgik/exareme2", "federation-a"));
        live.application_sets.push(json!({"metadata": {"name": "fixed", "namespace": NS}, "spec": {"template": {"spec": {"project": "gone"}}}}));
        let f = diagnose(&exp(), &live, NOW);
        assert_eq!(
            codes(&live),
            vec![("missing-project", "orphan".to_owned()), ("missing-project", "fixed".to_owned())]
        );
        assert!(f[0].what.contains("`nope`") && f[0].fix.contains("argo-projects"), "{f:?}");
    }

    #[test]
    fn repositories_and_destinations_the_project_does_not_permit() {
        let mut live = healthy();
        live.applications = vec![
            app("other-repo", "mip-federation-a", "https://github.com/evil/chart", "federation-a"),
            app("denied-repo", "mip-federation-a", "https://github.com/madgik/forbidden", "federation-a"),
            app("other-ns", "mip-federation-a", "https://github.com/madgik/exareme2", "kube-system"),
            // Destination by name: `in-cluster` is the in-cluster server.
            json!({"metadata": {"name": "by-name", "namespace": NS}, "spec": {"project": "mip-federation-a", "source": {"repoURL": "https://github.com/madgik/exareme2"}, "destination": {"name": "in-cluster", "namespace": "federation-a"}}}),
        ];
        let found = codes(&live);
        assert_eq!(
            found,
            vec![
                ("repo-not-permitted", "denied-repo".to_owned()),
                ("destination-not-permitted", "other-ns".to_owned()),
                ("repo-not-permitted", "other-repo".to_owned()),
            ]
        );
        let f = diagnose(&exp(), &live, NOW);
        assert!(
            f.iter()
                .any(|x| x.what.contains("namespace `kube-system`") && x.fix.contains("spec.destinations")),
            "{f:?}"
        );
    }

    #[test]
    fn missing_secrets_and_keys_are_named_without_values() {
        let mut live = healthy();
        live.secret_keys.clear();
        let f = diagnose(&exp(), &live, NOW);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "missing-secret");
        assert!(f[0].fix.contains("mip apply"));
        let mut live = healthy();
        live.secret_keys.insert(exp().secrets[0].addr.clone(), BTreeSet::from(["client-id".to_owned()]));
        let f = diagnose(&exp(), &live, NOW);
        assert_eq!(
            (f[0].code, f[0].what.contains("`client-secret`")),
            ("missing-secret-keys", true),
            "{f:?}"
        );
    }

    #[test]
    fn a_failed_sync_on_the_current_revision_is_named_with_the_sync_fix() {
        let mut live = healthy();
        let mut a = app("stuck", "mip-federation-a", "https://github.com/madgik/exareme2", "federation-a");
        a["status"] = json!({"sync": {"status": "OutOfSync", "revision": "abc123"}, "operationState": {"phase": "Failed", "message": "one or more objects failed to apply", "syncResult": {"revision": "abc123"}}});
        live.applications.push(a.clone());
        // A new revision is retried by automated sync; a requested operation is under way.
        let mut newer = a.clone();
        newer["metadata"]["name"] = json!("newer");
        newer["status"]["sync"]["revision"] = json!("def456");
        live.applications.push(newer);
        let mut requested = a.clone();
        requested["metadata"]["name"] = json!("requested");
        requested["operation"] = json!({"sync": {"revision": "abc123"}});
        live.applications.push(requested);
        let f = diagnose(&exp(), &live, NOW);
        assert_eq!(codes(&live), vec![("sync-failed", "stuck".to_owned())]);
        assert!(f[0].what.contains("`Failed`") && f[0].what.contains("one or more objects failed"), "{f:?}");
        assert!(
            f[0].fix.contains("argocd app sync") && f[0].fix.contains("\"revision\":\"abc123\""),
            "{f:?}"
        );
    }

    #[test]
    fn deletions_held_by_finalizers() {
        let mut live = healthy();
        let mut a = app("going", "mip-federation-a", "https://github.com/madgik/exareme2", "federation-a");
        a["metadata"]["deletionTimestamp"] = json!("2025-12-31T23:00:00Z");
        a["metadata"]["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
        live.applications.push(a);
        live.namespaces[0]["metadata"]["deletionTimestamp"] = json!("2025-12-31T23:59:30Z");
        live.namespaces[0]["metadata"]["finalizers"] = json!(["example.org/hold"]);
        let f = diagnose(&exp(), &live, NOW);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(
            (f[0].code, f[0].severity, f[0].address.name.as_str()),
            ("stuck-deletion", Severity::Error, "going")
        );
        assert!(
            f[0].what.contains("for 3600 s")
                && f[0].what.contains("`resources-finalizer.argocd.argoproj.io`"),
            "{}",
            f[0].what
        );
        assert!(f[0].fix.contains("kubectl -n argocd-mip-team patch application going"), "{}", f[0].fix);
        assert_eq!(
            (f[1].severity, f[1].address.kind.as_str()),
            (Severity::Warning, "Namespace"),
            "recent: a warning"
        );
    }

    #[test]
    fn appset_error_conditions_with_reason_and_message() {
        let mut live = healthy();
        live.application_sets[0]["status"]["conditions"] = json!([
            {"type": "ErrorOccurred", "status": "True", "reason": "ApplicationValidationError", "message": "application references project mip-x which does not exist"},
            {"type": "ParametersGenerated", "status": "True"}
        ]);
        let f = diagnose(&exp(), &live, NOW);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "appset-error");
        assert!(f[0].what.contains("ApplicationValidationError") && f[0].what.contains("mip-x"), "{f:?}");
        assert!(f[0].fix.contains("application-set-refresh"), "{f:?}");
    }

    #[test]
    fn a_loosened_default_project_unless_unmanaged() {
        let mut live = healthy();
        live.projects[0] = json!({"metadata": {"name": "default", "namespace": NS}, "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]}});
        let f = diagnose(&exp(), &live, NOW);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "default-project-loosened");
        assert!(
            f[0].what.contains("`sourceRepos`")
                && f[0].what.contains("`destinations`")
                && f[0].what.contains("Blacklist"),
            "{f:?}"
        );
        let unmanaged = Expectations { lock_down_default: false, ..exp() };
        assert!(diagnose(&unmanaged, &live, NOW).is_empty());
    }

    #[test]
    fn timestamps_and_globs() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2026-01-01T00:00:00Z"), Some(NOW));
        assert_eq!(parse_time("garbage"), None);
        assert!(repo_permitted(
            &["https://github.com/madgik/exareme2"],
            "https://github.com/madgik/exareme2.git"
        ));
        assert!(repo_permitted(&["*"], "git@github.com:x/y.git"));
        assert!(!repo_permitted(&[], "https://x"));
        assert!(!repo_permitted(&["*", "!https://bad/*"], "https://bad/repo"));
    }

    #[test]
    fn argo_cd_conditions_are_named_in_its_own_words() {
        let mut live = healthy();
        live.applications[0]["status"]["conditions"] = json!([
            { "type": "InvalidSpecError", "message": "application repo https://evil.example is not permitted in project 'p'" },
            { "type": "SharedResourceWarning", "message": "not an error" },
        ]);
        let found = diagnose(&exp(), &live, NOW);
        let f: Vec<&Finding> = found.iter().filter(|f| f.code == "argo-condition").collect();
        assert_eq!(f.len(), 1, "{found:?}");
        assert!(
            f[0].what.contains("`InvalidSpecError`: application repo https://evil.example is not permitted"),
            "{}",
            f[0].what
        );
    }
}
