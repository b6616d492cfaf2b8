//! Cross-reference checks on a decoded inventory: duplicates, dangling references and
//! requirements that span sections. Pure; every problem is reported.

use crate::model::*;
use mip_core::{Diagnostic, Diagnostics, Location};
use std::collections::BTreeMap;

fn duplicate(at: &Location, first: &Location, what: &str, name: &str, hint: &str) -> Diagnostic {
    Diagnostic::error(
        Some(at.clone()),
        "duplicate",
        format!("duplicate {what} `{name}` (first declared at {first})"),
    )
    .with_hint(hint.to_owned())
}

/// Reports values that repeat under a key function, naming the first occurrence.
fn check_unique<'a>(
    diags: &mut Diagnostics,
    items: impl IntoIterator<Item = (String, &'a Location, String)>,
    what: &str,
    hint: &str,
) {
    let mut seen: BTreeMap<String, &Location> = BTreeMap::new();
    for (key, at, shown) in items {
        match seen.get(&key) {
            Some(first) => diags.push(duplicate(at, first, what, &shown, hint)),
            None => {
                seen.insert(key, at);
            }
        }
    }
}

/// Runs every cross-reference check.
pub fn check(inv: &Inventory) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_clusters(&mut d, inv);
    check_names(&mut d, inv);
    check_federations(&mut d, inv);
    check_common_apps(&mut d, inv);
    check_hybrid(&mut d, inv);
    check_mirrors(&mut d, inv);
    d
}

/// Every upstream repository the inventory's apps read (their sources and the Helm chart
/// repositories of the files they render), normalised.
pub fn upstreams_in_use(inv: &Inventory) -> std::collections::BTreeSet<String> {
    let mut defs: Vec<&crate::apps::AppDef> = Vec::new();
    for f in &inv.federations {
        for a in &f.apps {
            defs.extend(a.definition.as_ref().or_else(|| inv.app_def(a.kind.value.as_str())));
        }
    }
    for a in &inv.common_apps {
        defs.extend(inv.app_def(a.kind.value.as_str()));
    }
    defs.iter().flat_map(|d| d.upstream_urls()).map(|u| crate::normalize_repo_url(&u)).collect()
}

/// `mirrors:`: each upstream once; a mirror of something nothing reads is a warning (a typo,
/// or an app that was removed).
fn check_mirrors(d: &mut Diagnostics, inv: &Inventory) {
    // Most inventories have none: then walking every federation's apps is wasted.
    if inv.mirrors.is_empty() {
        return;
    }
    check_unique(
        d,
        inv.mirrors.iter().map(|m| {
            (crate::normalize_repo_url(&m.upstream.value), &m.upstream.at, m.upstream.value.clone())
        }),
        "mirror of",
        "map each upstream repository to one mirror",
    );
    let used = upstreams_in_use(inv);
    let listed: std::collections::BTreeSet<String> =
        inv.upstream_repos.iter().map(|u| crate::normalize_repo_url(&u.value)).collect();
    for m in &inv.mirrors {
        let key = crate::normalize_repo_url(&m.upstream.value);
        if !used.contains(&key) && !listed.contains(&key) {
            d.push(
                Diagnostic::warning(
                    Some(m.upstream.at.clone()),
                    "unused-mirror",
                    format!(
                        "mirror of `{}`: no app of this inventory reads that repository",
                        m.upstream.value
                    ),
                )
                .with_hint("check the URL against `mip apps show APP`, or remove the entry"),
            );
        }
    }
}

/// Cluster names and servers: unique, and the in-cluster entry where it belongs.
fn check_clusters(d: &mut Diagnostics, inv: &Inventory) {
    check_unique(
        d,
        inv.clusters
            .iter()
            .filter(|c| !c.implicit)
            .map(|c| (c.name.value.clone(), &c.name.at, c.name.value.clone())),
        "cluster",
        "cluster names must be unique",
    );
    check_unique(
        d,
        // The implicit in-cluster entry has no place in the file; a clash with it is reported
        // below as "uses the in-cluster server" instead.
        inv.clusters
            .iter()
            .filter(|c| !c.implicit)
            .map(|c| (c.server.value.trim_end_matches('/').to_owned(), &c.server.at, c.server.value.clone())),
        "cluster server",
        "Argo CD identifies clusters by server URL: declare each cluster once",
    );
    for c in &inv.clusters {
        if c.server.value.trim_end_matches('/') == mip_core::IN_CLUSTER_SERVER && c.name.value != IN_CLUSTER {
            d.push(
                Diagnostic::error(
                    Some(c.server.at.clone()),
                    "invalid-value",
                    format!(
                        "cluster `{}` uses the in-cluster server `{}`",
                        c.name.value,
                        mip_core::IN_CLUSTER_SERVER
                    ),
                )
                .with_hint(format!("name it `{IN_CLUSTER}`")),
            );
        }
        if c.name.value == IN_CLUSTER && c.server.value.trim_end_matches('/') != mip_core::IN_CLUSTER_SERVER {
            d.push(
                Diagnostic::error(
                    Some(c.server.at.clone()),
                    "invalid-value",
                    format!("cluster `{IN_CLUSTER}` must use server `{}`", mip_core::IN_CLUSTER_SERVER),
                )
                .with_hint("give a remote cluster another name".to_owned()),
            );
        }
        if c.name.value != IN_CLUSTER && c.credentials == ClusterCredentials::None {
            d.push(
                Diagnostic::error(
                    Some(c.name.at.clone()),
                    "missing-credential",
                    format!(
                        "cluster `{}` gives Argo CD no credentials: its cluster Secret would not connect",
                        c.name.value
                    ),
                )
                .with_hint(
                    "add `context: <kubeconfig context>` (mip registers the cluster, as `argocd cluster add` \
                     does), or `bearerToken`, or `clientCertificate` and `clientKey`"
                        .to_owned(),
                ),
            );
        }
    }
}

/// Federations, common apps, prerequisites and upstream repositories listed once each.
fn check_names(d: &mut Diagnostics, inv: &Inventory) {
    check_unique(
        d,
        inv.federations.iter().map(|f| (f.k8s_name(), &f.name.at, f.name.value.clone())),
        "federation",
        "federation names must differ after lowering (`federation-A` and `federation-a` are the same in Kubernetes)",
    );
    check_unique(
        d,
        inv.common_apps
            .iter()
            .map(|a| (a.kind.value.as_str().to_owned(), &a.kind.at, a.kind.value.as_str().to_owned())),
        "common app",
        "list each common app once",
    );
    check_unique(
        d,
        inv.prerequisites.iter().map(|p| (p.file.value.clone(), &p.file.at, p.file.value.clone())),
        "prerequisite",
        "list each manifest once",
    );
    check_unique(
        d,
        inv.upstream_repos.iter().map(|u| (u.value.clone(), &u.at, u.value.clone())),
        "upstream repository",
        "list each repository once",
    );
}

/// Whether an app without its own Keycloak credentials has none to fall back on.
fn needs_keycloak(inv: &Inventory, own: &Option<KeycloakCredentials>) -> bool {
    own.is_none() && inv.credentials.keycloak.is_none()
}

/// Each federation: its namespace, clusters, remote clusters, apps and credentials.
fn check_federations(d: &mut Diagnostics, inv: &Inventory) {
    let namespaces = common_app_namespaces(inv);
    for fed in &inv.federations {
        check_federation_namespace(d, inv, fed, &namespaces);
        check_federation_clusters(d, inv, fed);
        check_federation_apps(d, inv, fed);
    }
}

/// The namespaces of the common apps: namespace → (where it is written, whose it is).
fn common_app_namespaces(inv: &Inventory) -> BTreeMap<String, (&Location, String)> {
    let mut namespaces: BTreeMap<String, (&Location, String)> = BTreeMap::new();
    for app in &inv.common_apps {
        if let Some(ns) = app.namespace() {
            let at = app.namespace.as_ref().map_or(&app.kind.at, |n| &n.at);
            namespaces.insert(ns, (at, format!("common app `{}`", app.kind.value)));
        }
    }
    namespaces
}

/// A federation's namespace is neither Argo CD's nor a common app's.
fn check_federation_namespace(
    d: &mut Diagnostics,
    inv: &Inventory,
    fed: &Federation,
    namespaces: &BTreeMap<String, (&Location, String)>,
) {
    let ns = fed.k8s_name();
    if ns == inv.argocd.namespace.value {
        d.push(
            Diagnostic::error(
                Some(fed.name.at.clone()),
                "namespace-clash",
                format!("federation `{}` would use the Argo CD namespace `{ns}`", fed.name.value),
            )
            .with_hint("rename the federation or the Argo CD namespace"),
        );
    } else if let Some((_, owner)) = namespaces.get(&ns) {
        d.push(
            Diagnostic::error(
                Some(fed.name.at.clone()),
                "namespace-clash",
                format!("federation `{}` would share namespace `{ns}` with {owner}", fed.name.value),
            )
            .with_hint("every federation needs a namespace of its own"),
        );
    }
}

/// A federation's cluster and remote clusters are declared; its remote clusters are listed
/// once each, are not its own, and belong to a hybrid federation.
fn check_federation_clusters(d: &mut Diagnostics, inv: &Inventory, fed: &Federation) {
    if inv.cluster(&fed.cluster.value).is_none() {
        d.push(dangling(&fed.cluster, inv, &format!("federation `{}`", fed.name.value)));
    }
    check_unique(
        d,
        fed.remote_clusters.iter().map(|r| (r.value.clone(), &r.at, r.value.clone())),
        &format!("remote cluster of federation `{}`:", fed.name.value),
        "list each remote cluster once",
    );
    for rc in &fed.remote_clusters {
        if inv.cluster(&rc.value).is_none() {
            d.push(dangling(rc, inv, &format!("federation `{}`", fed.name.value)));
        } else if rc.value == fed.cluster.value {
            d.push(
                Diagnostic::error(
                    Some(rc.at.clone()),
                    "invalid-value",
                    format!("federation `{}` lists its own cluster `{}` as remote", fed.name.value, rc.value),
                )
                .with_hint("remote clusters are the other clusters whose nodes join the federation"),
            );
        }
    }
    if fed.kind.value == FederationKind::Local
        && let Some(rc) = fed.remote_clusters.first()
    {
        d.push(
            Diagnostic::error(
                Some(rc.at.clone()),
                "invalid-value",
                format!("local federation `{}` cannot have remote clusters", fed.name.value),
            )
            .with_hint("use `kind: hybrid`".to_owned()),
        );
    }
}

/// A federation's apps are listed once each, with the apps they require, and with Keycloak
/// credentials when one needs them.
fn check_federation_apps(d: &mut Diagnostics, inv: &Inventory, fed: &Federation) {
    check_unique(
        d,
        fed.apps
            .iter()
            .map(|a| (a.kind.value.as_str().to_owned(), &a.kind.at, a.kind.value.as_str().to_owned())),
        &format!("app in federation `{}`:", fed.name.value),
        "list each app once",
    );
    for app in &fed.apps {
        let Some(def) = inv.app_def(app.kind.value.as_str()) else { continue };
        for req in def.requires.iter().filter(|r| !fed.runs(r)) {
            d.push(
                Diagnostic::error(
                    Some(app.kind.at.clone()),
                    "missing-app",
                    format!("federation `{}` has `{}` without `{req}`", fed.name.value, def.name),
                )
                .with_hint(format!("add `- name: {req}`")),
            );
        }
    }
    let keycloak_app = fed
        .apps
        .iter()
        .filter_map(|a| inv.app_def(a.kind.value.as_str()))
        .find(|def| uses_keycloak(def).is_some());
    if let (Some(def), true) = (keycloak_app, needs_keycloak(inv, &fed.keycloak)) {
        d.push(
            Diagnostic::error(
                Some(fed.name.at.clone()),
                "missing-credential",
                format!(
                    "federation `{}` runs `{}`, which needs Keycloak credentials",
                    fed.name.value, def.name
                ),
            )
            .with_hint("add `credentials.keycloak` or `keycloak` to the federation".to_owned()),
        );
    }
}

/// Each common app: credentials, namespace and the common apps it requires.
fn check_common_apps(d: &mut Diagnostics, inv: &Inventory) {
    let argocd_ns = &inv.argocd.namespace.value;
    for app in &inv.common_apps {
        let Some(def) = inv.app_def(app.kind.value.as_str()) else { continue };
        if let (Some(secret), true) = (uses_keycloak(def), needs_keycloak(inv, &app.keycloak)) {
            d.push(
                Diagnostic::error(
                    Some(app.kind.at.clone()),
                    "missing-credential",
                    format!("common app `{}` needs Keycloak credentials (`{secret}`)", def.name),
                )
                .with_hint("add `credentials.keycloak` or `keycloak` to the app".to_owned()),
            );
        }
        if app.namespace().as_deref() == Some(argocd_ns.as_str()) {
            d.push(
                Diagnostic::error(
                    Some(app.kind.at.clone()),
                    "namespace-clash",
                    format!("common app `{}` would use the Argo CD namespace `{argocd_ns}`", def.name),
                )
                .with_hint(format!(
                    "keep the default `{}`",
                    def.namespace.as_deref().unwrap_or("namespace of its definition")
                )),
            );
        }
        for req in def.requires.iter().filter(|r| inv.common_app(CommonAppKind::new(r)).is_none()) {
            d.push(
                Diagnostic::error(
                    Some(app.kind.at.clone()),
                    "missing-app",
                    format!("common app `{}` needs common app `{req}`", def.name),
                )
                .with_hint(format!("add `- name: {req}` to `commonApps`")),
            );
        }
    }
}

/// Hybrid federations need Submariner.
fn check_hybrid(d: &mut Diagnostics, inv: &Inventory) {
    if inv.federations.iter().any(|f| f.kind.value == FederationKind::Hybrid)
        && inv.common_app(CommonAppKind::Submariner).is_none()
    {
        let first = inv
            .federations
            .iter()
            .find(|f| f.kind.value == FederationKind::Hybrid)
            .map(|f| f.kind.at.clone());
        d.push(
            Diagnostic::warning(
                first,
                "missing-app",
                "hybrid federations need the `submariner` common app to join remote nodes",
            )
            .with_hint("add `- name: submariner` to `commonApps`".to_owned()),
        );
    }
}

/// The first Secret of an app that takes Keycloak credentials.
fn uses_keycloak(def: &crate::apps::AppDef) -> Option<&str> {
    def.secrets
        .iter()
        .find(|(_, keys)| keys.values().any(crate::apps::KeySource::is_keycloak))
        .map(|(n, _)| n.as_str())
}

fn dangling(name: &Located<String>, inv: &Inventory, who: &str) -> Diagnostic {
    let known: Vec<&str> = inv.clusters.iter().map(|c| c.name.value.as_str()).collect();
    let hint = crate::names::closest(&name.value, &known).map_or_else(
        || format!("declared clusters: {}", known.join(", ")),
        |b| format!("did you mean `{b}`?"),
    );
    Diagnostic::error(
        Some(name.at.clone()),
        "unknown-cluster",
        format!("{who} names undeclared cluster `{}`", name.value),
    )
    .with_hint(hint)
}
