//! One check per failure mode, each appending [`Finding`]s.

use super::{ARGO_API, Code, Finding, RequiredSecret, STUCK_AFTER_SECS, Severity};
use mip_core::ObjectRef;
use mip_graph::permit::{Destination, Permissions, app_sources};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn s<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub(super) fn name_of(v: &Value) -> &str {
    s(v, "/metadata/name").unwrap_or("")
}

pub(super) fn addr_of(kind: &str, v: &Value) -> ObjectRef {
    ObjectRef::new(ARGO_API, kind, s(v, "/metadata/namespace"), name_of(v))
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The project an Application spec names (`default` when empty, as Argo CD reads it).
fn project_of(spec: &Value) -> &str {
    match spec.get("project").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => p,
        _ => "default",
    }
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as Kubernetes writes it.
pub(super) fn parse_time(t: &str) -> Option<u64> {
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

/// The error conditions Argo CD itself reports on an Application, in its own words
/// (`status.conditions[]`: InvalidSpecError, ComparisonError, SyncError, …), with the fix for each.
pub(super) fn check_application_conditions(app: &Value, out: &mut Vec<Finding>) {
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
            code: Code::ArgoCondition,
            address: addr_of("Application", app),
            what: format!("Argo CD reports `{kind}`: {message}"),
            fix: fix.to_owned(),
        });
    }
}

/// What `mip drift` reports on Argo CD's side, explained: an Application OutOfSync at the
/// revision it tracks (without a failed sync, which `sync-failed` covers), or Degraded, naming
/// the resources Argo CD found unhealthy.
pub(super) fn check_application_state(app: &Value, out: &mut Vec<Finding>) {
    let text = |p: &str| app.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let failed = matches!(text("/status/operationState/phase"), "Failed" | "Error");
    let current =
        text("/status/sync/comparedTo/source/targetRevision") == text("/spec/source/targetRevision");
    if current && !failed && text("/status/sync/status") == "OutOfSync" {
        let auto = app.pointer("/spec/syncPolicy/automated").is_some();
        out.push(Finding {
            severity: Severity::Warning,
            code: Code::OutOfSync,
            address: addr_of("Application", app),
            what: "OutOfSync with the revision it tracks".to_owned(),
            fix: if auto {
                "automated sync is on: something keeps changing the resources back (another controller or a mutating webhook); compare with `argocd app diff` and add an `ignoreDifferences` entry or stop the other writer".to_owned()
            } else {
                "sync it (`argocd app sync`), or turn on automated sync in its template; `argocd app diff` shows what differs".to_owned()
            },
        });
    }
    if text("/status/health/status") == "Degraded" {
        let unhealthy: Vec<String> = app
            .pointer("/status/resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.pointer("/health/status").and_then(Value::as_str) == Some("Degraded"))
            .map(|r| {
                let s = |p: &str| r.pointer(p).and_then(Value::as_str).unwrap_or_default();
                let msg = s("/health/message");
                let base = format!("{}/{}", s("/kind"), s("/name"));
                if msg.is_empty() { base } else { format!("{base} ({msg})") }
            })
            .collect();
        let message = text("/status/health/message");
        let what = match (unhealthy.is_empty(), message.is_empty()) {
            (false, _) => format!("Degraded: {}", unhealthy.join(", ")),
            (true, false) => format!("Degraded: {message}"),
            (true, true) => "Degraded".to_owned(),
        };
        out.push(Finding {
            severity: Severity::Error,
            code: Code::Degraded,
            address: addr_of("Application", app),
            what,
            fix: "look at the unhealthy resources' events and logs (`kubectl describe`, `kubectl logs`) in the destination namespace; fix the values or the image in Git, then let Argo CD sync".to_owned(),
        });
    }
}

fn missing_project_fix(project: &str, ns: &str) -> String {
    format!(
        "create AppProject `{project}` in `{ns}` first: let `argo-projects` sync (or run `mip apply`), then refresh the application; if the name is wrong, fix `spec.project`"
    )
}

pub(super) fn check_application(
    app: &Value,
    projects: &BTreeMap<&str, &Value>,
    ns: &str,
    out: &mut Vec<Finding>,
) {
    let addr = addr_of("Application", app);
    let name = name_of(app);
    let spec = app.get("spec").cloned().unwrap_or(Value::Null);
    let project = project_of(&spec);
    match projects.get(project) {
        None => out.push(Finding {
            severity: Severity::Error,
            code: Code::MissingProject,
            address: addr.clone(),
            what: format!("references project `{project}`, which does not exist (Argo CD marks it `InvalidSpecError` and never syncs it)"),
            fix: missing_project_fix(project, ns),
        }),
        Some(proj) => {
            let rules = Permissions::of_project(proj);
            for repo in app_sources(&spec) {
                if !rules.permits_source(repo) {
                    out.push(Finding {
                        severity: Severity::Error,
                        code: Code::RepoNotPermitted,
                        address: addr.clone(),
                        what: format!("repository `{repo}` is not permitted in project `{project}`"),
                        fix: format!("add `{repo}` to `spec.sourceRepos` of AppProject `{project}` (for generated projects: the inventory's `upstreamRepos`, then `mip render`), then refresh the application"),
                    });
                }
            }
            if let Some(dest) = spec.get("destination").map(Destination::of_application)
                && !rules.permits_destination(&dest)
            {
                let target = if dest.server.is_empty() {
                    format!("cluster `{}`", dest.name)
                } else {
                    format!("server `{}`", dest.server)
                };
                out.push(Finding {
                    severity: Severity::Error,
                    code: Code::DestinationNotPermitted,
                    address: addr.clone(),
                    what: format!("destination {target} and namespace `{}` do not match any destination allowed in project `{project}`", dest.namespace),
                    fix: format!("allow the destination in `spec.destinations` of AppProject `{project}`, or deploy to a namespace it allows (federation projects allow their own namespace)"),
                });
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
        code: Code::SyncFailed,
        address: addr.clone(),
        what: format!("the last sync ended `{phase}` on revision `{revision}` ({message}); Argo CD does not retry a failed sync of the same revision, even with self-heal"),
        fix: format!(
            "fix the cause, then trigger a sync: `argocd app sync {ns}/{name}` or `kubectl -n {ns} patch application {name} --type merge -p '{{\"operation\":{{\"initiatedBy\":{{\"username\":\"mip\"}},\"sync\":{{\"revision\":\"{revision}\"}}}}}}'`"
        ),
    });
}

pub(super) fn check_application_set(
    set: &Value,
    projects: &BTreeMap<&str, &Value>,
    ns: &str,
    out: &mut Vec<Finding>,
) {
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
            code: Code::AppsetError,
            address: addr.clone(),
            what: format!("reports `ErrorOccurred` ({reason}): {message}"),
            fix: format!("{cause}; then `kubectl -n {ns} annotate applicationset {name} argocd.argoproj.io/application-set-refresh=true`"),
        });
    }
    let project = set.pointer("/spec/template/spec/project").and_then(Value::as_str).unwrap_or("");
    if !project.is_empty() && !project.contains("{{") && !projects.contains_key(project) {
        out.push(Finding {
            severity: Severity::Error,
            code: Code::MissingProject,
            address: addr,
            what: format!("its template references project `{project}`, which does not exist (every Application it generates is invalid)"),
            fix: missing_project_fix(project, ns),
        });
    }
}

pub(super) fn check_secret(
    required: &RequiredSecret,
    live: Option<&BTreeSet<String>>,
    out: &mut Vec<Finding>,
) {
    let name = &required.addr.name;
    let ns = required.addr.namespace.as_deref().unwrap_or("");
    match live {
        None => out.push(Finding {
            severity: Severity::Error,
            code: Code::MissingSecret,
            address: required.addr.clone(),
            what: format!("Secret `{name}` does not exist; the apps that read it wait in `CreateContainerConfigError`"),
            fix: "run `mip apply` (it creates the Secret from the inventory's sources; generated values are made once)".into(),
        }),
        Some(keys) => {
            let missing: Vec<String> = required.keys.difference(keys).map(|k| format!("`{k}`")).collect();
            if !missing.is_empty() {
                out.push(Finding {
                    severity: Severity::Error,
                    code: Code::MissingSecretKeys,
                    address: required.addr.clone(),
                    what: format!("Secret `{name}` in `{ns}` lacks key(s) {}", missing.join(", ")),
                    fix: "run `mip apply` to write the missing keys (existing generated values are kept)".into(),
                });
            }
        }
    }
}

pub(super) fn check_default_project(p: &Value, out: &mut Vec<Finding>) {
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
            code: Code::DefaultProjectLoosened,
            address: addr_of("AppProject", p),
            what: format!("the `default` project is loosened: {} (any Application without a project can deploy anything)", loose.join(", ")),
            fix: "run `mip apply` to lock it down again (`sourceRepos: []`, `destinations: []`, blacklist `*/*`); find who loosened it in `metadata.managedFields`".into(),
        });
    }
}

pub(super) fn check_deletion(addr: ObjectRef, o: &Value, now_unix: u64, out: &mut Vec<Finding>) {
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
    } else if addr.is(mip_core::Kind::Namespace) {
        "objects in the namespace still have finalizers (`kubectl get all,pvc -n NAME`), or an API service is unavailable"
    } else {
        "the controller that owns the finalizer must finish; if it no longer runs, nothing will"
    };
    out.push(Finding {
        severity,
        code: Code::StuckDeletion,
        address: addr.clone(),
        what: format!("being deleted {held}, held by finalizer(s) {listed}"),
        fix: format!(
            "{cause}; as a last resort remove the finalizers (what they guard is left behind): `kubectl {ns_flag}patch {kind} {} --type json -p '[{{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}}]'`",
            addr.name
        ),
    });
}
