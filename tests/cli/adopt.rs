//! Taking over a platform bootstrapped by hand, as the mip-infra README does it (the test plays
//! every manual step with server-side apply under the managers those tools use): the
//! federation's namespace made by Argo CD, the bootstrap project made with `argocd proj create`,
//! the root Application made with `argocd app create`, and the Secrets `gen_secrets.sh` makes
//! (every `mip-secret` key a random value, the Keycloak client from the operator). `mip plan`
//! adopts each of them and changes no value; `mip apply` keeps every value; the plan is then
//! empty.

use crate::live::{CLIENT_ID, CLIENT_SECRET, kubectl, kubectl_apply, run, setup};
use crate::*;
use std::collections::BTreeMap;

const MIP_SECRET_KEYS: [&str; 10] = [
    "gateway-db.DB_ADMIN_USER",
    "gateway-db.DB_ADMIN_PASSWORD",
    "portalbackend-db.DB_ADMIN_USER",
    "portalbackend-db.DB_ADMIN_PASSWORD",
    "portalbackend-db.PORTAL_DB_USER",
    "portalbackend-db.PORTAL_DB_PASSWORD",
    "keycloak-db.POSTGRES_USER",
    "keycloak-db.POSTGRES_PASSWORD",
    "keycloak.KEYCLOAK_USER",
    "keycloak.KEYCLOAK_PASSWORD",
];

/// 24 alphanumerics, as `gen_secrets.sh` makes them (`tr -dc A-Za-z0-9 </dev/urandom | head -c 24`).
fn random_value(i: usize) -> String {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed ^ ((i as u128 + 1) * 0x9E37_79B9_7F4A_7C15);
    (0..24)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            char::from(alphabet[((x >> 64) % 62) as usize])
        })
        .collect()
}

fn data(ns: &str, name: &str) -> BTreeMap<String, String> {
    let o = kubectl(&["get", "secret", "-n", ns, name, "-o", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("str").to_owned()))
        .collect()
}

fn labels(ns: &str, name: &str) -> serde_json::Value {
    let o = kubectl(&["get", "secret", "-n", ns, name, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v["metadata"]["labels"].clone()
}

#[test]
fn a_hand_bootstrapped_platform_is_adopted_without_changing_a_value() {
    let e = setup("adopt");
    let (ns, fed) = (&e.argocd, &e.fed);
    // The README's manual steps, each under the field manager of the tool that does it.
    kubectl_apply(
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": fed}}).to_string(),
        "argocd-controller",
    );
    kubectl_apply(
        &serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "mip-argo-project-infrastructure", "namespace": ns},
            "spec": {"description": "Core infrastructure project (bootstrap)",
                     "sourceRepos": ["https://example.org/mip-infra.git"],
                     "destinations": [{"namespace": ns, "server": "https://kubernetes.default.svc"}],
                     "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}})
        .to_string(),
        "argocd-server",
    );
    kubectl_apply(
        &serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "main-argo-projects", "namespace": ns},
            "spec": {"project": "mip-argo-project-infrastructure",
                     "source": {"repoURL": "https://example.org/mip-infra.git", "path": "base", "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
                     "syncPolicy": {"syncOptions": ["CreateNamespace=true"]}}})
        .to_string(),
        "argocd-server",
    );
    let generated: BTreeMap<&str, String> =
        MIP_SECRET_KEYS.iter().enumerate().map(|(i, k)| (*k, random_value(i))).collect();
    // As gen_secrets.sh does it: `kubectl create secret generic … --from-literal`.
    let create = |name: &str, pairs: Vec<(String, String)>| {
        let mut args: Vec<String> =
            vec!["create".into(), "secret".into(), "generic".into(), name.into(), "-n".into(), fed.clone()];
        args.extend(pairs.iter().map(|(k, v)| format!("--from-literal={k}={v}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = kubectl(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    create("mip-secret", generated.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
    create(
        "keycloak-credentials",
        vec![("client-id".into(), CLIENT_ID.into()), ("client-secret".into(), CLIENT_SECRET.into())],
    );
    let before = (data(fed, "mip-secret"), data(fed, "keycloak-credentials"));

    // The plan adopts each object it finds, and changes no value.
    let o = run(&e, &["plan", "--output", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let change = |addr: &str| {
        plan["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|c| c["address"] == addr)
            .cloned()
            .unwrap_or_else(|| panic!("{addr}: {plan}"))
    };
    for addr in [
        format!("v1/Namespace/{fed}"),
        format!("v1/Secret/{fed}/mip-secret"),
        format!("v1/Secret/{fed}/keycloak-credentials"),
        format!("argoproj.io/v1alpha1/AppProject/{ns}/mip-argo-project-infrastructure"),
        format!("argoproj.io/v1alpha1/Application/{ns}/main-argo-projects"),
    ] {
        let c = change(&addr);
        assert_eq!(c["action"], "update", "{addr}: {c}");
        assert!(c["reason"].as_str().expect("reason").contains("(adopt)"), "{addr}: {c}");
    }
    let secret = change(&format!("v1/Secret/{fed}/mip-secret"));
    let diff = secret["diff"].as_str().unwrap_or_default();
    // Only mip's label is added: no key added or removed, no value.
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---")
        })
        .collect();
    assert!(!changed.is_empty(), "{diff}");
    for l in &changed {
        assert!(!MIP_SECRET_KEYS.iter().any(|k| l.contains(k)) && !l.contains("value"), "{l} in {diff}");
    }
    let text = stdout(&run(&e, &["plan"]));
    assert!(!text.contains("sensitive, generated on first apply"), "nothing is generated: {text}");

    let o = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&o), 0, "apply: {}\n{}", stdout(&o), stderr(&o));
    assert_eq!(data(fed, "mip-secret"), before.0, "a value of mip-secret changed");
    assert_eq!(data(fed, "keycloak-credentials"), before.1, "a value of keycloak-credentials changed");
    assert_eq!(labels(fed, "mip-secret")[MANAGED_BY_LABEL], MANAGED_BY_VALUE, "adopted");
    let o = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&o), 0, "nothing left to do: {}\n{}", stdout(&o), stderr(&o));
    // And the values stay through a re-apply.
    let o = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(data(fed, "mip-secret"), before.0);
    for (k, v) in &generated {
        let text = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!text.contains(v.as_str()), "the value of `{k}` leaked");
    }
}
