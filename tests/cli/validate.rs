use crate::*;

#[test]
fn examples_are_valid() {
    for ex in ["examples/mip-infra/mip.yaml", "examples/minimal/mip.yaml"] {
        let o = mip(&["validate", "-i", ex]);
        assert_eq!(code(&o), 0, "{ex}: {}", stderr(&o));
        assert!(stdout(&o).contains("is valid"));
    }
    let (_d, p) = temp_inventory(MINIMAL);
    let o = mip(&["validate", "-i", p.to_str().expect("utf8"), "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["valid"], true);
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = MINIMAL
        .replace("kind: local", "kind: lokal")
        .replace("argocd: {namespace: argocd}", "argocd: {namespace: argocd, colour: blue}")
        + "  - {name: Federation-a, kind: local, cluster: nowhere}\n";
    let (_d, p) = temp_inventory(&text);
    let o = mip(&["validate", "-i", p.to_str().expect("utf8")]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains(
            "error[invalid-value]: `federations[0].kind` must be `local` or `hybrid`, found `lokal`"
        ),
        "{err}"
    );
    assert!(err.contains("error[unknown-key]: unknown key `argocd.colour`"), "{err}");
    assert!(err.contains("error[unknown-cluster]"), "{err}");
    assert!(err.contains("error[duplicate]: duplicate federation `Federation-a`"), "{err}");
    assert!(err.contains("nothing was written"));
}

#[test]
fn permission_checks_name_the_fix() {
    let text = MINIMAL.replace("upstreamRepos: ['https://github.com/madgik/exareme2']\n", "");
    let (_d, p) = temp_inventory(&text);
    let o = mip(&["validate", "-i", p.to_str().expect("utf8")]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("application `federation-a-exareme2` sources repository `https://github.com/madgik/exareme2`, which project `mip-argo-project-federation-a` does not permit (hint: add `https://github.com/madgik/exareme2` to `upstreamRepos`)"),
        "{err}"
    );
    assert!(err.contains("mip.yaml:9:53: error[not-permitted]"), "located at the app: {err}");
}

#[test]
fn prerequisite_problems_point_into_the_manifest() {
    let (dir, p) = temp_inventory(&(MINIMAL.to_owned() + "prerequisites:\n  - file: rbac.yaml\n"));
    std::fs::write(dir.path().join("rbac.yaml"), "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: x}\n").expect("w");
    let o = mip(&["validate", "-i", p.to_str().expect("utf8")]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("rbac.yaml:1:1: error[invalid-manifest]: `Role` `r` has no `metadata.namespace`"),
        "{err}"
    );
    assert!(
        err.contains("rbac.yaml:6:1: error[invalid-manifest]: Secret `s` in a prerequisite file"),
        "{err}"
    );
    let (_d2, p2) = temp_inventory(&(MINIMAL.to_owned() + "prerequisites:\n  - file: missing.yaml\n"));
    let o = mip(&["validate", "-i", p2.to_str().expect("utf8")]);
    assert!(stderr(&o).contains("error[missing-file]: cannot read prerequisite"), "{}", stderr(&o));
}
