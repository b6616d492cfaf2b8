//! Secrets and credentials against the real test cluster: rotation, create-if-absent, value
//! drift without showing the value, the exact Secrets Argo CD reads for repositories and
//! clusters, an unreadable key file failing before any write, and a canary over everything mip
//! writes at every verbosity, including a failing apply.

use crate::*;
use mip_test_support::TestCluster;
use mip_test_support::inventory::MIP_DEPLOYMENT;
use std::path::Path;

const KC_ID: &str = "CANARY-kc-id-51f0";
const KC_SECRET: &str = "CANARY-kc-secret-e2a7";
const SSH_KEY: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nCANARY-ssh-key-body-0b9d\n-----END OPENSSH PRIVATE KEY-----\n";
const TOKEN: &str = "CANARY-bearer-token-77c3";

struct Env {
    dir: tempfile::TempDir,
    argocd: String,
    fed: String,
}

fn setup(tag: &str) -> Env {
    let cluster = TestCluster::shared();
    let argocd = cluster.fresh_namespace_blocking(&format!("argocd-{tag}"));
    let fed = format!("fed-{tag}-{}", &argocd[argocd.len() - 4..]);
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("deploy-key"), SSH_KEY).expect("w");
    std::fs::write(dir.path().join("kc-secret"), KC_SECRET).expect("w");
    std::fs::write(
        dir.path().join("remote-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .expect("w");
    let inv = Inventory::new(&argocd)
        .repositories("https://example.org/mip-infra.git", "git@example.org:mip/mip-deployments.git")
        .deployments_ssh_key(Secret::file("deploy-key"))
        .upstream(MIP_DEPLOYMENT)
        .cluster(
            Cluster::new("remote-east", "https://10.1.2.3:6443")
                .bearer_token(Secret::env("MIP_TEST_TOKEN"))
                .ca_file("remote-ca.pem"),
        )
        .keycloak(Secret::env("MIP_TEST_KC_ID"), Secret::file("kc-secret"))
        .federation(Federation::local(&fed).apps(&["exareme2", "mip-stack"]))
        .to_yaml();
    std::fs::write(dir.path().join("mip.yaml"), inv).expect("w");
    Env { dir, argocd, fed }
}

impl Env {
    /// `mip` in the test's directory against the shared cluster, the value sources in the
    /// environment.
    fn mip(&self) -> Mip {
        mip_on(TestCluster::shared(), self.dir.path())
            .env("MIP_TEST_KC_ID", KC_ID)
            .env("MIP_TEST_TOKEN", TOKEN)
    }
}

fn decoded(secret: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    secret["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| (k.clone(), mip_plan::base64_decode(v.as_str().expect("s")).expect("b64")))
        .collect()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn collect(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.file_name().is_some_and(|n| n != "deploy-key" && n != "kc-secret")
            && let Ok(b) = std::fs::read(&p)
        {
            out.push((p.display().to_string(), b));
        }
    }
}

#[test]
fn credentials_rotation_value_drift_and_a_canary_over_everything() {
    let e = setup("sec");
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keep = |what: &str, o: &Output| {
        outputs.push((format!("{what}: stdout"), o.stdout.clone()));
        outputs.push((format!("{what}: stderr"), o.stderr.clone()));
    };

    // An unreadable key file is an error before anything is written.
    std::fs::rename(e.dir.path().join("deploy-key"), e.dir.path().join("deploy-key.away")).expect("mv");
    let o =
        e.mip().args(["apply", "--auto-approve", "--wait-timeout", "0", "-vvv"]).inventory("mip.yaml").run();
    keep("apply without key", &o);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("deploy-key"), "{}", stderr(&o));
    let none = TestCluster::shared().kubectl().args(["get", "namespace", &e.fed]).output().expect("kubectl");
    assert!(!none.status.success(), "something was written before the key file was read");
    std::fs::rename(e.dir.path().join("deploy-key.away"), e.dir.path().join("deploy-key")).expect("mv");

    let plan_file = e.dir.path().join("plan.mip").display().to_string();
    for fmt in ["text", "json", "markdown"] {
        let o =
            e.mip().args(["plan", "-vvv", "--output", fmt, "--out", &plan_file]).inventory("mip.yaml").run();
        keep(&format!("plan {fmt}"), &o);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let o = e
        .mip()
        .args(["apply", &plan_file, "--auto-approve", "--wait-timeout", "0", "-vvv"])
        .inventory("mip.yaml")
        .run();
    keep("apply", &o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("secret from env `MIP_TEST_KC_ID`: 17 bytes, sha256:"),
        "-vv shows length and hash: {}",
        stderr(&o)
    );

    // The Secrets Argo CD reads, with exactly its labels and keys.
    let repo =
        TestCluster::shared().kubectl_json(&["get", "secret", "-n", &e.argocd, "mip-repo-deployments"]);
    assert_eq!(repo["metadata"]["labels"]["argocd.argoproj.io/secret-type"], "repository");
    let r = decoded(&repo);
    assert_eq!(r.keys().map(String::as_str).collect::<Vec<_>>(), ["name", "sshPrivateKey", "type", "url"]);
    assert_eq!(r["sshPrivateKey"], SSH_KEY);
    assert_eq!(r["type"], "git");
    assert_eq!(r["url"], "git@example.org:mip/mip-deployments.git");
    assert!(!r.contains_key("project"), "repository credentials must be unscoped");
    let cl =
        TestCluster::shared().kubectl_json(&["get", "secret", "-n", &e.argocd, "mip-cluster-remote-east"]);
    assert_eq!(cl["metadata"]["labels"]["argocd.argoproj.io/secret-type"], "cluster");
    let c = decoded(&cl);
    assert_eq!(c["server"], "https://10.1.2.3:6443");
    assert_eq!(c["name"], "remote-east");
    let config: serde_json::Value = serde_json::from_str(&c["config"]).expect("config JSON");
    assert_eq!(config["bearerToken"], TOKEN);
    assert_eq!(config["tlsClientConfig"]["insecure"], false);
    assert!(config["tlsClientConfig"]["caData"].as_str().is_some_and(|s| !s.is_empty()));

    let before = decoded(&TestCluster::shared().kubectl_json(&["get", "secret", "-n", &e.fed, "mip-secret"]));
    let kc_before = decoded(&TestCluster::shared().kubectl_json(&[
        "get",
        "secret",
        "-n",
        &e.fed,
        "keycloak-credentials",
    ]));
    assert_eq!(kc_before["client-id"], KC_ID);
    assert_eq!(kc_before["client-secret"], KC_SECRET);

    // Create-if-absent: a re-apply keeps every value.
    let o =
        e.mip().args(["apply", "--auto-approve", "--wait-timeout", "0", "-vvv"]).inventory("mip.yaml").run();
    keep("re-apply", &o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        decoded(&TestCluster::shared().kubectl_json(&["get", "secret", "-n", &e.fed, "mip-secret"])),
        before
    );

    // --rotate regenerates exactly the generated values of the chosen Secret.
    let target = format!("v1/Secret/{}/mip-secret", e.fed);
    let o = e
        .mip()
        .args(["apply", "--auto-approve", "--wait-timeout", "0", "--rotate", &target, "-vvv"])
        .inventory("mip.yaml")
        .run();
    keep("rotate", &o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = decoded(&TestCluster::shared().kubectl_json(&["get", "secret", "-n", &e.fed, "mip-secret"]));
    for (k, v) in &before {
        // Every key of `mip-secret` is generated (gen_secrets.sh), so every key rotates.
        assert_ne!(&after[k], v, "`{k}` was not rotated");
        assert_eq!(after[k].len(), 24);
    }
    assert_eq!(
        decoded(&TestCluster::shared().kubectl_json(&[
            "get",
            "secret",
            "-n",
            &e.fed,
            "keycloak-credentials"
        ])),
        kc_before,
        "another Secret changed"
    );
    let o = e.mip().args(["drift"]).inventory("mip.yaml").run();
    assert_eq!(code(&o), 2, "only the Argo-owned objects are missing: {}", stdout(&o));

    // A value edited in the cluster is drift, named by key, never shown.
    let edited = "CANARY-edited-by-hand-33aa";
    let patch = format!("{{\"data\":{{\"client-secret\":\"{}\"}}}}", b64(edited));
    let p = TestCluster::shared()
        .kubectl()
        .args(["patch", "secret", "-n", &e.fed, "keycloak-credentials", "--type", "merge", "-p", &patch])
        .output()
        .expect("kubectl");
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let d = e.mip().args(["drift", "--output", "json", "-vvv"]).inventory("mip.yaml").run();
    keep("drift", &d);
    assert_eq!(code(&d), 2);
    let dj: serde_json::Value = serde_json::from_slice(&d.stdout).expect("json");
    let item = dj["changes"]
        .as_array()
        .expect("c")
        .iter()
        .find(|c| c["address"] == format!("v1/Secret/{}/keycloak-credentials", e.fed))
        .expect("secret drift");
    assert!(
        item["diff"]
            .as_str()
            .expect("diff")
            .contains("client-secret: value changed in the cluster (sensitive)"),
        "{item}"
    );

    // A failing apply (the value source is gone) leaks nothing either.
    let o = e
        .mip()
        .env_remove("MIP_TEST_KC_ID")
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "0", "-vvv"])
        .run();
    keep("failing apply", &o);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("environment variable `MIP_TEST_KC_ID` is not set"), "{}", stderr(&o));

    // The canary: no value, raw or base64, in any output, the plan file or the state.
    collect(e.dir.path(), &mut outputs);
    let mut values: Vec<String> =
        vec![KC_ID.into(), KC_SECRET.into(), TOKEN.into(), "CANARY-ssh-key-body-0b9d".into(), edited.into()];
    values.extend(before.values().chain(after.values()).cloned());
    for (what, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for v in &values {
            assert!(!text.contains(v.as_str()), "a secret value leaked into {what}");
            assert!(!text.contains(&b64(v)), "a base64 secret value leaked into {what}");
        }
    }
}
