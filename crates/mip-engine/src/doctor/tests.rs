//! Every failure mode, without a cluster.

use super::checks::parse_time;
use super::*;
use mip_graph::permit::source_permitted;
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
        clusters: BTreeMap::from([(
            "mip-cluster-hospital".to_owned(),
            ClusterSecret { server: "https://10.0.0.5:6443".into(), has_credentials: true },
        )]),
    }
}

fn codes(live: &LiveObjects) -> Vec<(&'static str, String)> {
    diagnose(&exp(), live, NOW).into_iter().map(|f| (f.code.as_str(), f.address.name.clone())).collect()
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
    live.projects.push(project(
        "mip-federation-b",
        &["https://github.com/madgik/*"],
        json!([{"server": "https://kubernetes.default.svc", "namespace": "federation-a"}]),
    ));
    live.applications = vec![
        // Project `mip-federation-b` has no deny rule: in Argo CD a deny rule that does not
        // match counts as an allowing match, so `mip-federation-a` would permit this repository.
        app("other-repo", "mip-federation-b", "https://github.com/evil/chart", "federation-a"),
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
        f.iter().any(|x| x.what.contains("namespace `kube-system`") && x.fix.contains("spec.destinations")),
        "{f:?}"
    );
}

#[test]
fn missing_secrets_and_keys_are_named_without_values() {
    let mut live = healthy();
    live.secret_keys.clear();
    let f = diagnose(&exp(), &live, NOW);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].code, Code::MissingSecret);
    assert!(f[0].fix.contains("mip apply"));
    let mut live = healthy();
    live.secret_keys.insert(exp().secrets[0].addr.clone(), BTreeSet::from(["client-id".to_owned()]));
    let f = diagnose(&exp(), &live, NOW);
    assert_eq!((f[0].code, f[0].what.contains("`client-secret`")), (Code::MissingSecretKeys, true), "{f:?}");
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
    assert!(f[0].fix.contains("argocd app sync") && f[0].fix.contains("\"revision\":\"abc123\""), "{f:?}");
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
        (Code::StuckDeletion, Severity::Error, "going")
    );
    assert!(
        f[0].what.contains("for 3600 s") && f[0].what.contains("`resources-finalizer.argocd.argoproj.io`"),
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
    assert_eq!(f[0].code, Code::AppsetError);
    assert!(f[0].what.contains("ApplicationValidationError") && f[0].what.contains("mip-x"), "{f:?}");
    assert!(f[0].fix.contains("application-set-refresh"), "{f:?}");
}

#[test]
fn a_loosened_default_project_unless_unmanaged() {
    let mut live = healthy();
    live.projects[0] = json!({"metadata": {"name": "default", "namespace": NS}, "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]}});
    let f = diagnose(&exp(), &live, NOW);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].code, Code::DefaultProjectLoosened);
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
    assert!(source_permitted(
        &["https://github.com/madgik/exareme2"],
        "https://github.com/madgik/exareme2.git"
    ));
    assert!(source_permitted(&["*"], "git@github.com:x/y.git"));
    assert!(!source_permitted::<&str>(&[], "https://x"));
    assert!(!source_permitted(&["*", "!https://bad/*"], "https://bad/repo"));
}

#[test]
fn argo_cd_conditions_are_named_in_its_own_words() {
    let mut live = healthy();
    live.applications[0]["status"]["conditions"] = json!([
        { "type": "InvalidSpecError", "message": "application repo https://evil.example is not permitted in project 'p'" },
        { "type": "SharedResourceWarning", "message": "not an error" },
    ]);
    let found = diagnose(&exp(), &live, NOW);
    let f: Vec<&Finding> = found.iter().filter(|f| f.code == Code::ArgoCondition).collect();
    assert_eq!(f.len(), 1, "{found:?}");
    assert!(
        f[0].what.contains("`InvalidSpecError`: application repo https://evil.example is not permitted"),
        "{}",
        f[0].what
    );
}

#[test]
fn codes_serialise_as_their_kebab_case_names() {
    let mut live = healthy();
    live.secret_keys.clear();
    let json = serde_json::to_value(report(&exp(), &live, NOW)).expect("serialises");
    assert_eq!(json["findings"][0]["code"], "missing-secret");
    assert_eq!(Code::AppsetError.to_string(), "appset-error");
}

#[test]
fn out_of_sync_and_degraded_applications_are_explained() {
    let mut live = healthy();
    let rev = live.applications[0]["spec"]["source"]["targetRevision"].clone();
    live.applications[0]["status"] = json!({
        "sync": {"status": "OutOfSync", "comparedTo": {"source": {"targetRevision": rev}}},
        "health": {"status": "Degraded", "message": "a resource is degraded"},
        "resources": [
            {"kind": "Deployment", "name": "exareme2-controller", "health": {"status": "Degraded", "message": "Deployment exceeded its progress deadline"}},
            {"kind": "Service", "name": "exareme2", "health": {"status": "Healthy"}}
        ]
    });
    let found = diagnose(&exp(), &live, NOW);
    let out_of_sync = found.iter().find(|f| f.code == Code::OutOfSync).expect("out-of-sync explained");
    assert!(out_of_sync.fix.contains("argocd app"), "{}", out_of_sync.fix);
    let degraded = found.iter().find(|f| f.code == Code::Degraded).expect("degraded explained");
    assert_eq!(
        degraded.what,
        "Degraded: Deployment/exareme2-controller (Deployment exceeded its progress deadline)"
    );
    // Compared with an older revision: a refresh is pending, not drift.
    live.applications[0]["status"]["sync"]["comparedTo"]["source"]["targetRevision"] = json!("old-branch");
    assert!(diagnose(&exp(), &live, NOW).iter().all(|f| f.code != Code::OutOfSync));
}

#[test]
fn a_cluster_secret_without_credentials_is_named_with_its_server() {
    let mut live = healthy();
    let config = |c: serde_json::Value| {
        use base64::Engine;
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        json!({"metadata": {"name": "c"}, "data": {"server": b64("https://10.0.0.5:6443"), "config": b64(&c.to_string())}})
    };
    // Read as the doctor reads them: the config is parsed and dropped at once.
    assert!(
        super::read::cluster_secret(&config(json!({"bearerToken": "t", "tlsClientConfig": {}})))
            .has_credentials
    );
    assert!(
        super::read::cluster_secret(&config(json!({"tlsClientConfig": {"certData": "Yw=="}})))
            .has_credentials
    );
    let empty = super::read::cluster_secret(&config(json!({"tlsClientConfig": {"insecure": false}})));
    assert!(!empty.has_credentials);
    assert_eq!(empty.server, "https://10.0.0.5:6443");
    live.clusters.insert("mip-cluster-east".into(), empty);
    let findings = diagnose(&exp(), &live, NOW);
    let f = findings.iter().find(|f| f.code == Code::ClusterWithoutCredentials).expect("a finding");
    assert_eq!(f.address.to_string(), format!("v1/Secret/{NS}/mip-cluster-east"));
    assert!(f.what.contains("https://10.0.0.5:6443"), "{}", f.what);
    assert_eq!(codes(&live), vec![("cluster-without-credentials", "mip-cluster-east".to_owned())]);
}
