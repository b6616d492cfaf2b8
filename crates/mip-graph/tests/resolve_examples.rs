//! Resolution of the shipped examples, checked against the names the reference mip-infra
//! setup really produces (research/argocd-facts.md §7), and the ordering invariants.

use mip_core::{ObjectRef, Owner};
use mip_graph::{Dag, Desired, Manifest, ResolveOptions, Step, resolve};
use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(Path::parent).expect("workspace root")
}

fn load(example: &str, revision: Option<&str>) -> Desired {
    let path = root().join("examples").join(example).join("mip.yaml");
    let text = std::fs::read_to_string(&path).expect("example exists");
    let inv = mip_inventory::parse("mip.yaml", &text).expect("example is valid").inventory;
    let mut docs = Vec::new();
    for p in &inv.prerequisites {
        let f = path.parent().expect("dir").join(&p.file.value);
        let t = std::fs::read_to_string(&f).expect("prerequisite exists");
        for d in mip_inventory::yaml::parse_stream("p.yaml", &t).expect("valid yaml") {
            docs.push(Manifest { at: d.location("p.yaml"), value: d.to_json() });
        }
    }
    resolve(&inv, &docs, &ResolveOptions { revision: revision.map(str::to_owned) }).expect("resolves")
}

fn names(d: &Desired, owner: Owner, kind: &str) -> BTreeSet<String> {
    d.objects
        .values()
        .filter(|o| o.owner == owner && o.addr.kind == kind)
        .map(|o| o.addr.name.clone())
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn mip_infra_objects_match_the_reference_names() {
    let d = load("mip-infra", None);
    assert_eq!(names(&d, Owner::Mip, "AppProject"), set(&["default", "mip-argo-project-infrastructure"]));
    assert_eq!(names(&d, Owner::Mip, "Application"), set(&["main-argo-projects", "main-infra-clusterset"]));
    assert_eq!(
        names(&d, Owner::Mip, "Secret"),
        set(&["mip-repo-deployments", "keycloak-credentials", "mip-secret", "datacatalog-secrets"])
    );
    assert_eq!(
        names(&d, Owner::Mip, "Namespace"),
        set(&["federation-a", "federation-z", "mip-common-datacatalog", "ingress-nginx"])
    );
    assert_eq!(
        names(&d, Owner::ArgoCd, "AppProject"),
        set(&[
            "mip-argo-project-federations",
            "mip-argo-project-shared-apps",
            "mip-argo-project-common",
            "mip-argo-project-security",
            "mip-argo-project-submariner",
            "mip-argo-project-federation-a",
            "mip-argo-project-federation-z",
        ])
    );
    assert_eq!(
        names(&d, Owner::ArgoCd, "ApplicationSet"),
        set(&[
            "mip-argo-projects",
            "mip-argo-projects-of-federations",
            "mip-infrastructure",
            "federation-network-policies",
            "common-network-policies",
        ])
    );
    let apps = names(&d, Owner::ArgoCd, "Application");
    for expected in [
        "argo-project-federation-a-local-app",
        "argo-project-federation-z-hybrid-app",
        "mip-argo-project-federations-app",
        "deployments-local-a",
        "deployments-hybrid-z-mip-infrastructure",
        "federation-a-exareme2",
        "federation-a-mip-stack",
        "federation-a-exareme2-overlay",
        "common-datacatalog",
        "datacatalog",
        "common-nginx-ingress",
        "nginx-public-ingress",
        "common-submariner",
        "submariner-broker",
        "submariner-operator",
        "common-security",
        "netpol-federation-a-local",
        "netpol-federation-z-hybrid",
        "netpol-mip-common-datacatalog",
        "netpol-mip-common-security",
    ] {
        assert!(apps.contains(expected), "missing expected Application `{expected}`; have {apps:?}");
    }
}

#[test]
fn projects_namespaces_and_destinations_match_the_reference() {
    let d = load("mip-infra", None);
    let app = |n: &str| {
        let a = ObjectRef::new("argoproj.io/v1alpha1", "Application", Some("argocd-mip-team"), n);
        d.objects.get(&a).unwrap_or_else(|| panic!("no app {n}")).clone()
    };
    let dl = app("deployments-local-a");
    assert_eq!(dl.str_at("/spec/project"), Some("mip-argo-project-federation-a"));
    assert_eq!(dl.str_at("/spec/destination/namespace"), Some("argocd-mip-team"));
    let ex = app("federation-a-exareme2");
    assert_eq!(ex.str_at("/spec/project"), Some("mip-argo-project-federation-a"));
    assert_eq!(ex.str_at("/spec/destination/namespace"), Some("federation-a"));
    assert_eq!(ex.generated_by.as_ref().map(|g| g.name.as_str()), Some("deployments-local-a"));
    assert_eq!(app("common-datacatalog").str_at("/spec/project"), Some("mip-argo-project-infrastructure"));
    let dc = app("datacatalog");
    assert_eq!(dc.str_at("/spec/project"), Some("mip-argo-project-common"));
    assert_eq!(dc.str_at("/spec/destination/namespace"), Some("mip-common-datacatalog"));
    let np = app("netpol-federation-a-local");
    assert_eq!(np.str_at("/spec/project"), Some("mip-argo-project-security"));
    assert_eq!(np.str_at("/spec/destination/namespace"), Some("federation-a"));
    // Root applications point at the infra repo paths the rendered tree's `base/` provides.
    let root = d.objects.values().find(|o| o.addr.name == "main-argo-projects").expect("root");
    assert_eq!(root.str_at("/spec/source/path"), Some("base"));
    assert_eq!(root.str_at("/spec/project"), Some("mip-argo-project-infrastructure"));
    let infra = d.objects.values().find(|o| o.addr.name == "main-infra-clusterset").expect("root");
    assert_eq!(infra.str_at("/spec/source/path"), Some("base/mip-infrastructure"));
    // Secrets are in the namespaces the charts read them from, with every key and no value.
    let mip_secret = d
        .objects
        .values()
        .find(|o| o.addr.to_string() == "v1/Secret/federation-a/mip-secret")
        .expect("secret");
    // Every key the mip-infra README's `gen_secrets.sh` sets, each generated as it does
    // (database user names included), so adopting a Secret it made renames nothing; no value
    // in the desired state.
    let data = mip_secret.manifest["stringData"].as_object().expect("map");
    assert_eq!(data.len(), 10);
    assert_eq!(mip_secret.sensitive.len(), 10);
    assert!(mip_secret.sensitive.values().all(|s| *s == mip_core::SensitiveSource::Generated));
    assert!(mip_secret.sensitive.keys().all(|k| data[k] == ""));
    let dcs = d
        .objects
        .values()
        .find(|o| o.addr.to_string() == "v1/Secret/mip-common-datacatalog/datacatalog-secrets")
        .expect("secret");
    let keys: Vec<&String> = dcs.sensitive.keys().collect();
    assert_eq!(keys, ["db.password", "db.user", "keycloak.client-id", "keycloak.client-secret"]);
}

#[test]
fn the_default_project_is_locked_down_by_blacklist() {
    let d = load("mip-infra", None);
    let p = d.objects.values().find(|o| o.addr.name == "default").expect("default project");
    assert_eq!(p.owner, Owner::Mip);
    assert_eq!(p.step, Step::DefaultProject);
    assert_eq!(p.manifest["spec"]["namespaceResourceBlacklist"][0]["kind"], "*");
    assert_eq!(p.manifest["spec"]["clusterResourceBlacklist"][0]["group"], "*");
    assert!(
        p.manifest["spec"].get("namespaceResourceWhitelist").is_none(),
        "never deny with an empty whitelist"
    );
}

#[test]
fn minimal_example_is_small_and_complete() {
    let d = load("minimal", None);
    assert_eq!(names(&d, Owner::Mip, "Namespace"), set(&["federation-a"]));
    assert!(names(&d, Owner::Mip, "Secret").is_empty(), "exareme2 alone needs no secrets");
    let apps = names(&d, Owner::ArgoCd, "Application");
    assert!(apps.contains("federation-a-exareme2"));
    assert!(!apps.contains("federation-a-mip-stack"));
    assert!(mip_graph::validate(&d).is_empty(), "{:?}", mip_graph::validate(&d));
}

#[test]
fn branch_revision_prefixes_roots_and_repoints_every_revision() {
    let d = load("mip-infra", Some("feature/New_thing"));
    assert_eq!(d.prefix, "feature-new-thing-");
    let roots = names(&d, Owner::Mip, "Application");
    assert_eq!(roots, set(&["feature-new-thing-argo-projects", "feature-new-thing-infra-clusterset"]));
    for o in d.mip_owned() {
        if let Some(rev) = o.str_at("/spec/source/targetRevision") {
            assert_eq!(rev, "feature/New_thing", "{}", o.addr);
        }
    }
}

#[test]
fn examples_pass_static_checks() {
    let d = load("mip-infra", None);
    let diags = mip_graph::validate(&d);
    assert!(!diags.has_errors(), "{:#?}", diags);
}

#[test]
fn ordering_invariants_hold_for_the_examples() {
    for ex in ["mip-infra", "minimal"] {
        let d = load(ex, None);
        let dag = Dag::build(&d.objects).expect("acyclic");
        let pos = |a: &ObjectRef| dag.order().position(|x| x == a).expect("in order");
        for e in dag.edges() {
            assert!(pos(&e.from) < pos(&e.to), "{ex}: edge {} -> {} ({}) violated", e.from, e.to, e.rule);
        }
        let by_name = |n: &str| d.objects.values().find(|o| o.addr.name == n).map(|o| pos(&o.addr)).expect(n);
        // default lock-down -> bootstrap project -> argo-projects -> federation project -> infra
        assert!(by_name("default") < by_name("mip-argo-project-infrastructure"));
        assert!(by_name("mip-argo-project-infrastructure") < by_name("main-argo-projects"));
        assert!(by_name("main-argo-projects") < by_name("mip-argo-project-federation-a"));
        assert!(by_name("mip-argo-project-federation-a") < by_name("main-infra-clusterset"));
        assert!(by_name("main-infra-clusterset") < by_name("federation-a-exareme2"));
        // Namespaces before namespaced objects; every secret before the infrastructure root.
        for o in d.mip_owned() {
            if let Some(ns) = &o.addr.namespace
                && let Some(n) = d.objects.values().find(|x| x.addr.kind == "Namespace" && &x.addr.name == ns)
            {
                assert!(pos(&n.addr) < pos(&o.addr), "{} before its namespace", o.addr);
            }
            if o.addr.kind == "Secret" {
                assert!(pos(&o.addr) < by_name("main-infra-clusterset"), "{} after infra", o.addr);
            }
        }
    }
}

/// The expected Applications carry what Argo CD will deploy: every source with its revision
/// (upstream charts at the catalogue's pin, mip's repositories at the inventory's revision),
/// the project, the destination and the sync wave, so a plan shows an upgrade.
#[test]
fn expected_applications_carry_sources_revisions_and_waves() {
    let d = load("mip-infra", None);
    let app = |name: &str| {
        d.objects
            .values()
            .find(|o| o.addr.kind == "Application" && o.addr.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let ex = app("federation-a-exareme2");
    assert_eq!(ex.str_at("/spec/sources/0/repoURL"), Some("https://github.com/madgik/exareme2"));
    assert_eq!(ex.str_at("/spec/sources/0/targetRevision"), Some("c1d4eb3d9d90edcf868a3a6395cc37b19c934e66"));
    assert_eq!(ex.str_at("/spec/sources/1/targetRevision"), Some("main"));
    assert_eq!(ex.str_at("/spec/sources/1/ref"), Some("values"));
    assert_eq!(ex.str_at("/metadata/annotations/argocd.argoproj.io~1sync-wave"), Some("1"));
    let overlay = app("federation-a-exareme2-overlay");
    assert_eq!(
        overlay.str_at("/spec/sources/0/path"),
        Some("deployments/local/federations/federation-A/customizations/overlays/exareme2")
    );
    let branch = load("mip-infra", Some("feature/x"));
    let dc = branch
        .objects
        .values()
        .find(|o| o.addr.name == "datacatalog" && o.addr.kind == "Application")
        .expect("dc");
    assert_eq!(
        dc.str_at("/spec/sources/0/targetRevision"),
        Some("1ada3bb89efc651a53c16f57c0b210a78e096fff"),
        "upstream pins stay"
    );
    assert_eq!(
        dc.str_at("/spec/sources/1/targetRevision"),
        Some("feature/x"),
        "own repositories follow --revision"
    );
}

const REMOTE: &str = "apiVersion: mip.ebrains.eu/v1alpha1
kind: Inventory
argocd: {namespace: argocd}
revision: main
repositories:
  infra: {url: 'https://example.org/infra.git'}
  deployments: {url: 'https://example.org/deploy.git'}
upstreamRepos: ['https://github.com/madgik/exareme2']
clusters:
  - {name: hospital, server: 'https://10.0.0.5:6443', bearerToken: {env: T}}
commonApps:
  - name: security
federations:
  - {name: federation-H, kind: local, cluster: hospital, apps: [{name: exareme2}]}
";

#[test]
fn static_projects_permit_the_clusters_federations_deploy_to() {
    let inv = mip_inventory::parse("mip.yaml", REMOTE).expect("valid").inventory;
    let desired = resolve(&inv, &[], &ResolveOptions::default()).expect("resolves");
    let checks = mip_graph::validate(&desired);
    assert!(!checks.has_errors(), "{checks:?}");
    let security =
        ObjectRef::new("argoproj.io/v1alpha1", "AppProject", Some("argocd"), "mip-argo-project-security");
    let dests = desired.objects[&security].body()["spec"]["destinations"].to_string();
    assert!(dests.contains("https://10.0.0.5:6443") && dests.contains("federation-*"), "{dests}");
}

#[test]
fn a_destination_refused_for_its_server_names_the_server() {
    let inv = mip_inventory::parse("mip.yaml", REMOTE).expect("valid").inventory;
    let mut desired = resolve(&inv, &[], &ResolveOptions::default()).expect("resolves");
    // An Application sent to a server no federation uses: the namespace is allowed, the server not.
    let app = desired
        .objects
        .values_mut()
        .find(|o| {
            o.owner == Owner::ArgoCd && o.addr.kind == "Application" && o.addr.name.starts_with("netpol-")
        })
        .expect("a network-policy Application");
    // The model is typed: the server is set on it (the JSON manifest of an Argo-owned object is null).
    let Some(mip_graph::ArgoModel::App(m)) = app.model.as_mut().map(std::sync::Arc::make_mut) else {
        panic!("an Application model")
    };
    m.server = "https://10.9.9.9:6443".to_owned();
    let checks = mip_graph::validate(&desired);
    let text = format!("{checks:?}");
    assert!(text.contains("does not permit destination server `https://10.9.9.9:6443`"), "{text}");
    assert!(text.contains("declare the cluster"), "{text}");
}

/// The inventory with the second cluster's credentials replaced by `auth` (YAML flow fields).
fn remote_with(auth: &str, extra: &str) -> Desired {
    let text = REMOTE
        .replace("bearerToken: {env: T}", auth)
        .replace("commonApps:\n", &format!("commonApps:\n{extra}"));
    let inv = mip_inventory::parse("mip.yaml", &text).expect("valid").inventory;
    resolve(&inv, &[], &ResolveOptions::default()).expect("resolves")
}

fn on_hospital(api: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjectRef {
    ObjectRef::new(api, kind, ns, name).on_cluster(Some("hospital"))
}

fn has_edge(edges: &[mip_graph::Edge], from: &ObjectRef, to: &ObjectRef, rule: mip_graph::Rule) -> bool {
    edges.iter().any(|e| &e.from == from && &e.to == to && e.rule == rule)
}

#[test]
fn a_registered_cluster_gets_argo_cds_account_bound_only_in_its_namespaces() {
    let d = remote_with("context: hospital", "");
    let sa = on_hospital("v1", "ServiceAccount", Some("kube-system"), "mip-argocd-manager");
    let token = on_hospital("v1", "Secret", Some("kube-system"), "mip-argocd-manager-token");
    let binding = on_hospital(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        Some("federation-h"),
        "mip-argocd-manager",
    );
    let role = on_hospital("rbac.authorization.k8s.io/v1", "ClusterRole", None, "mip-argocd-manager");
    let secret = ObjectRef::new("v1", "Secret", Some("argocd"), "mip-cluster-hospital");
    for a in [&sa, &token, &binding, &role, &secret] {
        assert!(d.objects.contains_key(a), "{a} missing");
    }
    assert!(!d.objects.keys().any(|a| a.kind == "ClusterRoleBinding"), "least privilege by default");
    let cluster_secret = &d.objects[&secret];
    assert_eq!(cluster_secret.str_at("/stringData/namespaces"), Some("federation-h"));
    assert_eq!(cluster_secret.str_at("/stringData/clusterResources"), Some("false"));
    assert_eq!(
        cluster_secret.sensitive["config"],
        mip_core::SensitiveSource::ServiceAccountToken { secret: token.clone() }
    );
    // The token comes after its account, the cluster Secret after the token.
    let edges = mip_graph::rule_edges(&d.objects);
    assert!(has_edge(&edges, &sa, &token, mip_graph::Rule::AccountFirst));
    assert!(has_edge(&edges, &token, &secret, mip_graph::Rule::SourceFirst));
    assert!(has_edge(&edges, &role, &binding, mip_graph::Rule::RoleFirst));
    Dag::build(&d.objects).expect("no cycle");

    // Cluster-wide only when asked; then Argo CD is not told to stay in namespaces.
    let admin = remote_with("context: hospital, register: {clusterAdmin: true}", "");
    assert!(admin.objects.contains_key(&on_hospital(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        None,
        "mip-argocd-manager"
    )));
    assert!(!admin.objects.contains_key(&binding));
    assert_eq!(admin.objects[&secret].str_at("/stringData/namespaces"), None);
}

#[test]
fn a_cluster_mip_cannot_write_to_takes_a_token_or_a_client_certificate() {
    let cert = remote_with("clientCertificate: {file: h.crt}, clientKey: {env: HKEY}, caFile: ca.pem", "");
    let secret = ObjectRef::new("v1", "Secret", Some("argocd"), "mip-cluster-hospital");
    let mip_core::SensitiveSource::ClusterConfig { token, client_certificate, client_key, ca_file } =
        &cert.objects[&secret].sensitive["config"]
    else {
        panic!("a cluster config")
    };
    assert!(token.is_none());
    assert_eq!(client_certificate.as_deref(), Some(&mip_core::SensitiveSource::File("h.crt".into())));
    assert_eq!(client_key.as_deref(), Some(&mip_core::SensitiveSource::Env("HKEY".into())));
    assert_eq!(ca_file.as_deref(), Some("ca.pem"));
    assert!(!cert.objects.keys().any(|a| a.kind == "ServiceAccount"), "nothing written on that cluster");
}

#[test]
fn a_hybrid_remote_node_gets_the_submariner_join_after_argo_cd_deployed_the_broker() {
    let text = REMOTE
        .replace("bearerToken: {env: T}", "context: hospital")
        .replace("commonApps:\n", "commonApps:\n  - name: submariner\n")
        .replace(
            "  - {name: federation-H, kind: local, cluster: hospital, apps: [{name: exareme2}]}",
            "  - {name: federation-Z, kind: hybrid, remoteClusters: [hospital], apps: [{name: exareme2}]}",
        );
    let inv = mip_inventory::parse("mip.yaml", &text).expect("valid").inventory;
    let d = resolve(&inv, &[], &ResolveOptions::default()).expect("resolves");
    let join = on_hospital("v1", "Secret", Some("submariner-operator"), "submariner-broker-join");
    let o = &d.objects[&join];
    assert_eq!(o.step, Step::RemoteNodes);
    let keys: Vec<&str> = o.sensitive.keys().map(String::as_str).collect();
    assert_eq!(keys, ["broker-ca", "broker-token", "ipsec-psk"]);
    let broker = ObjectRef::new("argoproj.io/v1alpha1", "Application", Some("argocd"), "submariner-broker");
    let operator =
        ObjectRef::new("argoproj.io/v1alpha1", "Application", Some("argocd"), "submariner-operator");
    let edges = mip_graph::rule_edges(&d.objects);
    assert!(
        has_edge(&edges, &broker, &join, mip_graph::Rule::SourceFirst),
        "token, CA and PSK from the broker"
    );
    assert!(!has_edge(&edges, &operator, &join, mip_graph::Rule::SourceFirst), "{edges:?}");
    let source = |key: &str| match &o.sensitive[key] {
        mip_core::SensitiveSource::SecretKey { secret, .. } => secret.to_string(),
        other => panic!("{other:?}"),
    };
    // The names mip-infra's broker hook reads, by default.
    assert_eq!(
        source("broker-token"),
        "v1/Secret/submariner-k8s-broker/submariner-broker-submariner-k8s-broker-client-token"
    );
    assert_eq!(source("ipsec-psk"), "v1/Secret/submariner-k8s-broker/submariner-ipsec-psk");
    // Overridden in the inventory: the PSK from the operator's namespace, after the operator.
    let moved = text.replace(
        "commonApps:\n",
        "apps: {submariner: {joinSecrets: {psk: submariner-operator/my-psk}}}\ncommonApps:\n",
    );
    let inv2 = mip_inventory::parse("mip.yaml", &moved).expect("valid").inventory;
    let d2 = resolve(&inv2, &[], &ResolveOptions::default()).expect("resolves");
    let edges2 = mip_graph::rule_edges(&d2.objects);
    assert!(has_edge(&edges2, &operator, &join, mip_graph::Rule::SourceFirst), "PSK from the operator");
    match &d2.objects[&join].sensitive["ipsec-psk"] {
        mip_core::SensitiveSource::SecretKey { secret, .. } => {
            assert_eq!(secret.to_string(), "v1/Secret/submariner-operator/my-psk")
        }
        other => panic!("{other:?}"),
    }
    // The remote node's namespace is one the registration binds Argo CD in.
    assert!(d.objects.contains_key(&on_hospital(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        Some("submariner-operator"),
        "mip-argocd-manager"
    )));
    Dag::build(&d.objects).expect("no cycle");
}

fn docs(file: &str, text: &str) -> Vec<Manifest> {
    mip_inventory::yaml::parse_stream(file, text)
        .expect("valid yaml")
        .iter()
        .map(|d| Manifest { at: d.location(file), value: d.to_json() })
        .collect()
}

#[test]
fn an_object_declared_twice_in_prerequisites_is_the_later_one_with_a_warning_naming_both() {
    let inv = mip_inventory::parse(
        "mip.yaml",
        &std::fs::read_to_string(root().join("examples/minimal/mip.yaml")).expect("example"),
    )
    .expect("valid")
    .inventory;
    let role = |verbs: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: routeagent}}\nrules: [{{apiGroups: [''], resources: [pods], verbs: [{verbs}]}}]\n"
        )
    };
    let text = format!("{}---\n{}", role("get"), role("get, list"));
    let d = resolve(&inv, &docs("rbac.yaml", &text), &ResolveOptions::default())
        .expect("kubectl apply accepts it");
    let addr = ObjectRef::new("rbac.authorization.k8s.io/v1", "ClusterRole", None, "routeagent");
    assert_eq!(
        d.objects[&addr].manifest["rules"][0]["verbs"],
        serde_json::json!(["get", "list"]),
        "the later one wins"
    );
    let w: Vec<String> = d.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [
            "rbac.yaml:6:1: warning[duplicate-object]: object `rbac.authorization.k8s.io/v1/ClusterRole/routeagent` is declared again (first at rbac.yaml:1:1); the later one is applied, as `kubectl apply` would (hint: remove one of the two documents)"
        ]
    );
    // A prerequisite that redeclares an object mip itself makes is still an error.
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: federation-a}\n";
    let err = resolve(&inv, &docs("ns.yaml", ns), &ResolveOptions::default()).expect_err("two owners");
    assert!(err.iter().any(|d| d.to_string().contains("error[duplicate-object]")), "{err:?}");
}

#[test]
fn mirrors_replace_upstream_sources_everywhere_mip_renders_and_expects() {
    let base = std::fs::read_to_string(root().join("examples/mip-infra/mip.yaml")).expect("example");
    let mirrored = format!(
        "{base}mirrors:\n  - {{upstream: https://github.com/madgik/exareme2, mirror: 'http://git.hospital.local/exareme2.git'}}\n  - {{upstream: 'https://submariner-io.github.io/submariner-charts/charts', mirror: 'http://charts.hospital.local/submariner'}}\n"
    );
    let parsed = mip_inventory::parse("mip.yaml", &mirrored).expect("valid");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let inv = parsed.inventory;
    let d = resolve(&inv, &[], &ResolveOptions::default()).expect("resolves");
    assert!(
        mip_graph::validate(&d).is_empty(),
        "the projects permit the mirror: {:?}",
        mip_graph::validate(&d)
    );
    let app = d.objects.values().find(|o| o.addr.name == "federation-a-exareme2").expect("expected");
    assert_eq!(app.str_at("/spec/sources/0/repoURL"), Some("http://git.hospital.local/exareme2.git"));
    // The projects' sourceRepos: the mirror instead of the upstream (never both).
    let project =
        d.objects.values().find(|o| o.addr.name == "mip-argo-project-federations").expect("project");
    let body = project.body();
    let repos: Vec<&str> =
        body["spec"]["sourceRepos"].as_array().expect("repos").iter().filter_map(|v| v.as_str()).collect();
    assert!(repos.contains(&"http://git.hospital.local/exareme2.git"), "{repos:?}");
    assert!(!repos.contains(&"https://github.com/madgik/exareme2"), "{repos:?}");
    // A mirror of something nothing reads is a warning at its line.
    let unused = format!(
        "{base}mirrors:\n  - {{upstream: https://example.org/nothing.git, mirror: 'http://m.local/x.git'}}\n"
    );
    let w: Vec<String> = mip_inventory::parse("mip.yaml", &unused)
        .expect("valid")
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        w.iter().any(|w| w.contains("warning[unused-mirror]: mirror of `https://example.org/nothing.git`")),
        "{w:?}"
    );
}

#[test]
fn a_mirror_in_the_gitops_repository_at_another_revision_is_refused_as_argo_cd_refuses_it() {
    let base = std::fs::read_to_string(root().join("examples/minimal/mip.yaml")).expect("example");
    let inv = mip_inventory::parse("mip.yaml", &base).expect("valid").inventory;
    let deploy = inv.repositories.deployments.url.value.clone();
    let text =
        format!("{base}mirrors:\n  - {{upstream: https://github.com/madgik/exareme2, mirror: '{deploy}'}}\n");
    let inv = mip_inventory::parse("mip.yaml", &text).expect("valid").inventory;
    let d = resolve(&inv, &[], &ResolveOptions::default()).expect("resolves");
    let found: Vec<String> = mip_graph::validate(&d).iter().map(ToString::to_string).collect();
    assert!(
        found
            .iter()
            .any(|f| f.contains("error[same-repository-twice]: application `federation-a-exareme2` reads")),
        "{found:#?}"
    );
}
