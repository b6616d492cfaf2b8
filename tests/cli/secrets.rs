//! Canary: secret values given through the environment never reach any output or artifact.

use crate::*;

#[test]
fn secret_values_never_reach_outputs() {
    let canary = "CANARY-5f3a9c1e-do-not-print";
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("key");
    std::fs::write(
        &key,
        format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{canary}\n-----END OPENSSH PRIVATE KEY-----\n"),
    )
    .expect("w");
    let text = std::fs::read_to_string(root().join("examples/mip-infra/mip.yaml"))
        .expect("example")
        .replace("./argocd-remote-key", key.to_str().expect("utf8"))
        .replace(
            "rbac/nginx-public-rbac.yaml",
            root().join("examples/mip-infra/rbac/nginx-public-rbac.yaml").to_str().expect("utf8"),
        );
    let inv = dir.path().join("mip.yaml");
    std::fs::write(&inv, text).expect("w");
    let plan_file = dir.path().join("plan.mip");
    let env = [("MIP_KEYCLOAK_CLIENT_ID", canary)];
    let mut artifacts: Vec<(String, Vec<u8>)> = Vec::new();
    for fmt in ["text", "json", "markdown"] {
        let o = mip_env(
            &[
                "plan",
                "--offline",
                "-i",
                inv.to_str().expect("utf8"),
                "--output",
                fmt,
                "--out",
                plan_file.to_str().expect("utf8"),
            ],
            &env,
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        artifacts.push((format!("plan {fmt} stdout"), o.stdout));
        artifacts.push((format!("plan {fmt} stderr"), o.stderr));
        artifacts.push(("plan file".into(), std::fs::read(&plan_file).expect("plan file")));
    }
    for args in [vec!["validate", "--output", "json"], vec!["graph", "--format", "json"]] {
        let mut a = args.clone();
        a.extend(["-i", inv.to_str().expect("utf8")]);
        let o = mip_env(&a, &env);
        artifacts.push((format!("{args:?} stdout"), o.stdout));
        artifacts.push((format!("{args:?} stderr"), o.stderr));
    }
    for (what, bytes) in artifacts {
        let s = String::from_utf8_lossy(&bytes);
        assert!(!s.contains(canary), "secret canary leaked into {what}");
        assert!(!s.contains("BEGIN OPENSSH"), "key material leaked into {what}");
    }
}
