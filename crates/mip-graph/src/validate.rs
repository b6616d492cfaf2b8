//! Static checks that Argo CD's API would make but server-side apply bypasses
//! (`ValidateProject`: duplicate destinations, repositories, roles and policies; policy
//! format), the "deny by blacklist, never by an empty whitelist" rule, and permission checks:
//! every Application's repositories and destination must be permitted by its project.

use crate::DesiredObject;
use crate::model::Desired;
use mip_core::{Diagnostic, Diagnostics};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Glob match with `*` (any run of characters), as Argo CD matches repos and destinations.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn project_checks(p: &DesiredObject, d: &mut Diagnostics) {
    let name = &p.addr.name;
    let at = p.origin.clone();
    let err =
        |code: &str, msg: String| Diagnostic::error(at.clone(), code, format!("project `{name}`: {msg}"));
    let spec = p.manifest.get("spec").cloned().unwrap_or(Value::Null);
    for key in ["namespaceResourceWhitelist", "clusterResourceWhitelist"] {
        if spec.get(key).and_then(Value::as_array).is_some_and(Vec::is_empty) {
            d.push(err("empty-whitelist", format!("`{key}: []` denies nothing once Argo CD rewrites the project (empty lists are dropped)"))
                .with_hint("deny with a blacklist such as `[{group: '*', kind: '*'}]`"));
        }
    }
    let mut seen = BTreeSet::new();
    for r in strs(spec.get("sourceRepos")) {
        if !seen.insert(r.clone()) {
            d.push(err("duplicate", format!("source repository `{r}` listed twice")));
        }
    }
    let mut seen = BTreeSet::new();
    for dest in spec.get("destinations").and_then(Value::as_array).into_iter().flatten() {
        let key = (
            dest.get("server").and_then(Value::as_str).unwrap_or(""),
            dest.get("namespace").and_then(Value::as_str).unwrap_or(""),
        );
        if !seen.insert(key) {
            d.push(err("duplicate", format!("destination `{}` / `{}` listed twice", key.0, key.1)));
        }
    }
    let mut roles = BTreeSet::new();
    for role in spec.get("roles").and_then(Value::as_array).into_iter().flatten() {
        let rname = role.get("name").and_then(Value::as_str).unwrap_or("");
        if !roles.insert(rname.to_owned()) {
            d.push(err("duplicate", format!("role `{rname}` defined twice")));
        }
        let mut pols = BTreeSet::new();
        for pol in strs(role.get("policies")) {
            if !pols.insert(pol.clone()) {
                d.push(err("duplicate", format!("role `{rname}` lists policy `{pol}` twice")));
            }
            let parts: Vec<&str> = pol.split(',').map(str::trim).collect();
            let ok = parts.len() == 6
                && parts[0] == "p"
                && parts[1] == format!("proj:{name}:{rname}")
                && parts[4].starts_with(&format!("{name}/"))
                && matches!(parts[5], "allow" | "deny");
            if !ok {
                d.push(err("invalid-policy", format!("role `{rname}` has malformed policy `{pol}`"))
                    .with_hint(format!("expected `p, proj:{name}:{rname}, <resource>, <action>, {name}/<object>, allow|deny`")));
            }
        }
    }
}

fn app_sources(app: &DesiredObject) -> Vec<String> {
    let spec = app.manifest.get("spec");
    let mut v: Vec<String> = spec
        .and_then(|s| s.get("sources"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("repoURL").and_then(Value::as_str).map(str::to_owned))
        .collect();
    if let Some(r) = app.str_at("/spec/source/repoURL") {
        v.push(r.to_owned());
    }
    v
}

/// Runs every static check on a desired state.
pub fn validate(desired: &Desired) -> Diagnostics {
    let mut d = Diagnostics::new();
    let projects: BTreeMap<(&Option<String>, &Option<String>, &str), &DesiredObject> = desired
        .objects
        .values()
        .filter(|o| o.addr.group == "argoproj.io" && o.addr.kind == "AppProject")
        .map(|o| ((&o.addr.cluster, &o.addr.namespace, o.addr.name.as_str()), o))
        .collect();
    for p in projects.values() {
        project_checks(p, &mut d);
    }
    for app in
        desired.objects.values().filter(|o| o.addr.group == "argoproj.io" && o.addr.kind == "Application")
    {
        let Some(project) = app.str_at("/spec/project") else { continue };
        let at = app.origin.clone();
        let name = &app.addr.name;
        if project == crate::catalogue::DEFAULT_PROJECT {
            d.push(
                Diagnostic::error(
                    at,
                    "default-project",
                    format!("application `{name}` uses the `default` project"),
                )
                .with_hint("the `default` project is locked down; use a dedicated project"),
            );
            continue;
        }
        let Some(proj) = projects.get(&(&app.addr.cluster, &app.addr.namespace, project)) else {
            d.push(
                Diagnostic::error(
                    at,
                    "missing-project",
                    format!("application `{name}` references project `{project}`, which nothing creates"),
                )
                .with_hint(
                    "Argo CD would mark it `InvalidSpecError`; check the federation and project names",
                ),
            );
            continue;
        };
        let repos = strs(proj.manifest.pointer("/spec/sourceRepos"));
        for src in app_sources(app) {
            if !repos.iter().any(|r| glob_match(r, &src)) {
                d.push(
                    Diagnostic::error(at.clone(), "not-permitted", format!("application `{name}` sources repository `{src}`, which project `{project}` does not permit"))
                        .with_hint(format!("add `{src}` to `upstreamRepos`")),
                );
            }
        }
        let server = app.str_at("/spec/destination/server").unwrap_or("");
        let ns = app.str_at("/spec/destination/namespace").unwrap_or("");
        let permitted =
            proj.manifest.pointer("/spec/destinations").and_then(Value::as_array).into_iter().flatten().any(
                |dest| {
                    let s = dest.get("server").and_then(Value::as_str).unwrap_or("");
                    let n = dest.get("namespace").and_then(Value::as_str).unwrap_or("");
                    glob_match(s, server) && glob_match(n, ns)
                },
            );
        if !permitted {
            d.push(
                Diagnostic::error(at, "not-permitted", format!("application `{name}`: destination server `{server}` and namespace `{ns}` do not match any destination of project `{project}`"))
                    .with_hint("use a namespace the project allows (static projects allow `federation-*` and `mip-common-*`)"),
            );
        }
    }
    d.sorted()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("federation-*", "federation-a"));
        assert!(glob_match("mip-common-*", "mip-common-datacatalog"));
        assert!(!glob_match("federation-*", "mip-common-x"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b", "a"));
        assert!(glob_match("https://kubernetes.default.svc", "https://kubernetes.default.svc"));
    }
}
