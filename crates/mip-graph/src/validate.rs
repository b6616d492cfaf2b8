//! Static checks that Argo CD's API would make but server-side apply bypasses
//! (`ValidateProject`: duplicate destinations, repositories, roles and policies; policy
//! format), the "deny by blacklist, never by an empty whitelist" rule, and permission checks:
//! every Application's repositories and destination must be permitted by its project
//! (decided by [`crate::permit`], as Argo CD decides it).

use crate::DesiredObject;
use crate::Lookup;
use crate::model::{ArgoModel, Desired};
use crate::permit::{Destination, Permissions, app_sources};
use mip_core::{Diagnostic, Diagnostics};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// `ValidateProject`'s duplicate source repositories and destinations.
fn duplicates<'a>(
    repos: impl Iterator<Item = &'a str>,
    dests: impl Iterator<Item = (&'a str, &'a str)>,
    err: &dyn Fn(&str, String) -> Diagnostic,
    d: &mut Diagnostics,
) {
    let mut seen = BTreeSet::new();
    for r in repos {
        if !seen.insert(r) {
            d.push(err("duplicate", format!("source repository `{r}` listed twice")));
        }
    }
    let mut seen = BTreeSet::new();
    for key in dests {
        if !seen.insert(key) {
            d.push(err("duplicate", format!("destination `{}` / `{}` listed twice", key.0, key.1)));
        }
    }
}

fn project_checks(p: &DesiredObject, d: &mut Diagnostics) {
    let name = &p.addr.name;
    let at = p.origin.clone();
    let err =
        |code: &str, msg: String| Diagnostic::error(at.clone(), code, format!("project `{name}`: {msg}"));
    // A project Argo CD generates: the repositories and destinations mip models.
    if let Some(ArgoModel::Project { source_repos, destinations }) = p.model.as_deref() {
        let repos = source_repos.iter().map(String::as_str);
        let dests = destinations.iter().map(|(server, ns)| (server.as_str(), ns.as_str()));
        return duplicates(repos, dests, &err, d);
    }
    let spec = p.manifest.get("spec").cloned().unwrap_or(Value::Null);
    for key in ["namespaceResourceWhitelist", "clusterResourceWhitelist"] {
        if spec.get(key).and_then(Value::as_array).is_some_and(Vec::is_empty) {
            d.push(err("empty-whitelist", format!("`{key}: []` denies nothing once Argo CD rewrites the project (empty lists are dropped)"))
                .with_hint("deny with a blacklist such as `[{group: '*', kind: '*'}]`"));
        }
    }
    let repos =
        spec.get("sourceRepos").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
    let dests = spec.get("destinations").and_then(Value::as_array).into_iter().flatten().map(|dest| {
        (
            dest.get("server").and_then(Value::as_str).unwrap_or(""),
            dest.get("namespace").and_then(Value::as_str).unwrap_or(""),
        )
    });
    duplicates(repos, dests, &err, d);
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

/// Argo CD refuses an Application whose sources read one repository at two revisions ("cannot
/// reference a different revision of the same repository"): e.g. a chart mirrored into the
/// GitOps repository itself, pinned to a commit, beside the `$values` ref at the branch.
fn same_repository_twice(app: &DesiredObject, d: &mut Diagnostics) {
    let sources: Vec<(&str, &str)> = match app.model.as_deref() {
        Some(ArgoModel::App(m)) => {
            m.sources.iter().map(|s| (s.repo_url.as_str(), s.target_revision.as_str())).collect()
        }
        _ => mip_core::canonical::at(&app.manifest, "/spec/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s["repoURL"].as_str()?, s["targetRevision"].as_str()?)))
            .collect(),
    };
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (url, rev) in sources {
        let key = mip_inventory::normalize_repo_url(url);
        match seen.get(&key) {
            Some(first) if *first != rev => {
                d.push(
                    Diagnostic::error(
                        app.origin.clone(),
                        "same-repository-twice",
                        format!(
                            "application `{}` reads `{url}` at `{first}` and at `{rev}`, which Argo CD refuses",
                            app.addr.name
                        ),
                    )
                    .with_hint("serve the upstream source (its `mirrors:` entry) from a repository of its own, or pin both to one revision"),
                );
                return;
            }
            _ => {
                seen.insert(key, rev);
            }
        }
    }
}

/// What a project permits: a modelled one's repositories and destinations, else its manifest's rules.
fn permissions(project: &DesiredObject) -> Permissions {
    match project.model.as_deref() {
        Some(ArgoModel::Project { source_repos, destinations }) => Permissions {
            source_repos: source_repos.to_vec(),
            destinations: destinations
                .iter()
                .map(|(server, ns)| Destination {
                    server: server.clone(),
                    name: String::new(),
                    namespace: ns.clone(),
                })
                .collect(),
            ..Permissions::of_project(&Value::Null)
        },
        _ => Permissions::of_project(&project.manifest),
    }
}

/// Runs every static check on a desired state.
pub fn validate(desired: &Desired) -> Diagnostics {
    let mut d = Diagnostics::new();
    let is_project = |o: &&DesiredObject| o.addr.is(mip_core::Kind::AppProject);
    for p in desired.objects.values().filter(is_project) {
        project_checks(p, &mut d);
    }
    // Hashed: every Application looks its project up (a B-tree compares strings per step).
    let projects: Lookup<(&Option<String>, &Option<String>, &str), &DesiredObject> = desired
        .objects
        .values()
        .filter(is_project)
        .map(|o| ((&o.addr.cluster, &o.addr.namespace, o.addr.name.as_str()), o))
        .collect();
    // Each project's rules read once, each pattern compiled once (see `permit::Memo`).
    let mut rules_of: Lookup<(&Option<String>, &Option<String>, &str), Permissions> = Lookup::default();
    let memo = crate::permit::Memo::default();
    for app in desired.objects.values().filter(|o| o.addr.is(mip_core::Kind::Application)) {
        let Some(project) = app.str_at("/spec/project") else { continue };
        let at = app.origin.clone();
        let name = &app.addr.name;
        same_repository_twice(app, &mut d);
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
        let rules = rules_of
            .entry((&app.addr.cluster, &app.addr.namespace, project))
            .or_insert_with(|| permissions(proj));
        let spec = app.manifest.get("spec").unwrap_or(&Value::Null);
        let (sources, dest) = match app.model.as_deref() {
            Some(ArgoModel::App(m)) => (
                m.sources.iter().map(|s| s.repo_url.as_str()).collect(),
                Destination { server: m.server.clone(), name: String::new(), namespace: m.namespace.clone() }
                    .resolved(),
            ),
            _ => (
                app_sources(spec),
                Destination::of_application(spec.get("destination").unwrap_or(&Value::Null)),
            ),
        };
        for src in sources {
            if !crate::permit::source_permitted_with(&rules.source_repos, src, &memo) {
                d.push(
                    Diagnostic::error(at.clone(), "not-permitted", format!("application `{name}` sources repository `{src}`, which project `{project}` does not permit"))
                        .with_hint(format!("add `{src}` to `upstreamRepos`")),
                );
            }
        }
        let server = app.str_at("/spec/destination/server").unwrap_or("");
        let ns = app.str_at("/spec/destination/namespace").unwrap_or("");
        let permitted = crate::permit::destination_permitted_with(&rules.destinations, &dest, &memo);
        if !permitted {
            // The namespace is allowed somewhere: then it is the server the project refuses.
            let namespace_allowed =
                rules.destinations.iter().any(|r| crate::permit::glob_match(&r.namespace, ns));
            let (what, hint) = if namespace_allowed {
                (
                    format!(
                        "application `{name}`: project `{project}` does not permit destination server `{server}` (namespace `{ns}` is allowed on other servers)"
                    ),
                    format!(
                        "the project permits only the clusters its apps deploy to: declare the cluster with server `{server}` in `clusters` and deploy a federation there, or correct the server"
                    ),
                )
            } else {
                (
                    format!("application `{name}`: destination server `{server}` and namespace `{ns}` do not match any destination of project `{project}`"),
                    "use a namespace the project allows (a static project's are its `namespaces` in `projects:`, plus those of its apps)".to_owned(),
                )
            };
            d.push(Diagnostic::error(at, "not-permitted", what).with_hint(hint));
        }
    }
    d.sorted()
}
