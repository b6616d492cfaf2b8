//! `mip federation add|remove` and `mip cluster add|remove`: in-place edits of the inventory,
//! their plan consequences on stderr, the removal confirmation and every refusal (nothing
//! written).

use crate::*;

const INFRA: &str = "examples/mip-infra/mip.yaml";

/// A copy of the reference inventory (with its prerequisite files) in a temp dir.
fn infra_copy() -> (tempfile::TempDir, String, Vec<u8>) {
    let original = std::fs::read(root().join(INFRA)).expect("example");
    let (dir, path) = temp_inventory(&String::from_utf8(original.clone()).expect("utf-8"));
    std::fs::create_dir_all(dir.path().join("rbac")).expect("rbac");
    for f in std::fs::read_dir(root().join("examples/mip-infra/rbac")).expect("rbac dir").flatten() {
        std::fs::copy(f.path(), dir.path().join("rbac").join(f.file_name())).expect("copy");
    }
    (dir, path.display().to_string(), original)
}

#[test]
fn federation_add_then_remove_round_trips_the_file_and_names_the_consequences() {
    let (_dir, inv, original) = infra_copy();
    let add = mip(&[
        "federation",
        "add",
        "federation-B",
        "--kind",
        "local",
        "--app",
        "exareme2",
        "--app",
        "mip-stack",
        "-i",
        &inv,
    ]);
    assert_eq!(code(&add), 0, "{}", stderr(&add));
    let edited = std::fs::read_to_string(&inv).expect("read");
    let expected = String::from_utf8(original.clone()).expect("utf-8").replace(
        "        values: [customizations/mip-stack-values.yaml]\n\nprerequisites:",
        "        values: [customizations/mip-stack-values.yaml]\n  - name: federation-B\n    kind: local\n    apps:\n      - name: exareme2\n      - name: mip-stack\n\nprerequisites:",
    );
    assert_eq!(edited, expected, "only the new federation is added; comments and layout are kept");
    let err = stderr(&add);
    assert!(err.contains("Argo CD will generate"), "{err}");
    assert!(
        err.contains(" <= argoproj.io/v1alpha1/AppProject/argocd-mip-team/mip-argo-project-federation-b"),
        "{err}"
    );
    assert!(
        err.contains(" <= argoproj.io/v1alpha1/Application/argocd-mip-team/federation-b-mip-stack"),
        "{err}"
    );
    assert!(err.contains("  + v1/Secret/federation-b/mip-secret"), "{err}");
    assert!(stdout(&add).is_empty());
    // The edited inventory is valid and plans the new federation.
    let plan = mip(&["plan", "--offline", "-i", &inv]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("<= argoproj.io/v1alpha1/Application/argocd-mip-team/federation-b-exareme2")
    );

    let rm = mip(&["federation", "remove", "federation-B", "--yes", "-i", &inv]);
    assert_eq!(code(&rm), 0, "{}", stderr(&rm));
    assert_eq!(std::fs::read(&inv).expect("read"), original, "add then remove must give the original bytes");
}

#[test]
fn removal_without_confirmation_is_a_safety_refusal_that_writes_nothing() {
    let (_dir, inv, original) = infra_copy();
    // stdin is not a terminal here, and there is no `--yes`.
    let o = mip(&["federation", "remove", "federation-A", "-i", &inv]);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("Argo CD will DELETE"), "{err}");
    assert!(
        err.contains("  - argoproj.io/v1alpha1/Application/argocd-mip-team/federation-a-mip-stack"),
        "{err}"
    );
    assert!(
        err.contains("  - argoproj.io/v1alpha1/AppProject/argocd-mip-team/mip-argo-project-federation-a"),
        "{err}"
    );
    assert!(
        err.contains("  - v1/Namespace/federation-a")
            && err.contains("everything in the namespace goes with it"),
        "{err}"
    );
    assert!(err.contains("pass `--yes`") && err.contains("nothing was written"), "{err}");
    assert_eq!(std::fs::read(&inv).expect("read"), original);
    // With `--yes` it goes, with its lines only.
    let o = mip(&["federation", "remove", "federation-a", "--yes", "-i", &inv]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&inv).expect("read");
    assert!(!text.contains("  - name: federation-A") && text.contains("  - name: federation-Z"), "{text}");
    assert!(text.starts_with("# The MIP team platform"), "comments are kept");
}

#[test]
fn invalid_edits_are_refused_with_diagnostics_and_write_nothing() {
    let (_dir, inv, original) = infra_copy();
    let cases: [(&[&str], &str); 5] = [
        (&["federation", "add", "FEDERATION-a", "--kind", "local"], "duplicate federation `FEDERATION-a`"),
        (
            &["federation", "add", "federation-B", "--kind", "local", "--cluster", "nowhere"],
            "undeclared cluster `nowhere`",
        ),
        (&["federation", "remove", "federation-Q", "--yes"], "no federation named `federation-Q`"),
        (
            &["cluster", "remove", "in-cluster", "--yes"],
            "cluster `in-cluster` is still used by federation(s) `federation-A`, `federation-Z`",
        ),
        (
            &["cluster", "add", "again", "--server", "https://kubernetes.default.svc"],
            "uses the in-cluster server",
        ),
    ];
    for (args, message) in cases {
        let mut all = args.to_vec();
        all.extend(["-i", &inv]);
        let o = mip(&all);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert_eq!(std::fs::read(&inv).expect("read"), original, "{args:?} wrote the file");
    }
}

#[test]
fn cluster_add_then_remove_round_trips_and_a_federation_can_use_it() {
    let (dir, inv) = temp_inventory(MINIMAL);
    let add = mip(&[
        "cluster",
        "add",
        "east",
        "--server",
        "https://east.example.org:6443",
        "--context",
        "east-ctx",
        "-i",
        inv.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&add), 0, "{}", stderr(&add));
    let text = std::fs::read_to_string(&inv).expect("read");
    assert!(text.ends_with("federations:\n  - {name: federation-A, kind: local, apps: [{name: exareme2}]}\n\nclusters:\n  - name: east\n    server: https://east.example.org:6443\n    context: east-ctx\n"), "{text}");
    assert!(stderr(&add).contains("  + v1/Secret/argocd/mip-cluster-east"), "{}", stderr(&add));
    let rm = mip(&["cluster", "remove", "east", "--yes", "-i", inv.to_str().expect("utf-8")]);
    assert_eq!(code(&rm), 0, "{}", stderr(&rm));
    assert_eq!(std::fs::read_to_string(&inv).expect("read"), MINIMAL);
    drop(dir);
}

#[test]
fn cluster_add_writes_the_credentials_argo_cd_gets() {
    // Registration with cluster-wide rights.
    let (dir, inv) = temp_inventory(MINIMAL);
    let path = inv.to_str().expect("utf-8");
    let add = mip(&[
        "cluster",
        "add",
        "east",
        "--server",
        "https://east.example.org:6443",
        "--context",
        "east",
        "--cluster-admin",
        "-i",
        path,
    ]);
    assert_eq!(code(&add), 0, "{}", stderr(&add));
    let text = std::fs::read_to_string(&inv).expect("read");
    assert!(text.ends_with("    context: east\n    register: {clusterAdmin: true}\n"), "{text}");
    assert!(
        stderr(&add).contains("+ east:rbac.authorization.k8s.io/v1/ClusterRoleBinding/mip-argocd-manager"),
        "{}",
        stderr(&add)
    );
    drop(dir);
    // A cluster mip cannot write to: a client certificate and the CA.
    let (dir, inv) = temp_inventory(MINIMAL);
    let path = inv.to_str().expect("utf-8");
    let add = mip(&[
        "cluster",
        "add",
        "west",
        "--server",
        "https://west.example.org:6443",
        "--client-certificate-file",
        "west.crt",
        "--client-key-file",
        "west.key",
        "--ca-file",
        "west-ca.pem",
        "-i",
        path,
    ]);
    assert_eq!(code(&add), 0, "{}", stderr(&add));
    let text = std::fs::read_to_string(&inv).expect("read");
    assert!(
        text.ends_with(
            "    clientCertificate: {file: \"west.crt\"}\n    clientKey: {file: \"west.key\"}\n    caFile: west-ca.pem\n"
        ),
        "{text}"
    );
    // Without any credentials the edit is refused, naming the cluster, and nothing is written.
    let before = std::fs::read(&inv).expect("read");
    let bare = mip(&["cluster", "add", "north", "--server", "https://north.example.org:6443", "-i", path]);
    assert_eq!(code(&bare), 1, "{}", stderr(&bare));
    assert!(stderr(&bare).contains("cluster `north` gives Argo CD no credentials"), "{}", stderr(&bare));
    assert_eq!(std::fs::read(&inv).expect("read"), before);
    drop(dir);
}

#[test]
fn render_option_re_renders_the_gitops_tree_after_the_edit() {
    let (dir, inv, _) = infra_copy();
    let tree = dir.path().join("tree").display().to_string();
    let add = mip(&[
        "federation",
        "add",
        "federation-B",
        "--kind",
        "local",
        "--app",
        "exareme2",
        "-i",
        &inv,
        "--render",
        &tree,
    ]);
    assert_eq!(code(&add), 0, "{}", stderr(&add));
    let kustomization = dir.path().join("tree/deployments/local/federations/federation-B/kustomization.yaml");
    assert!(kustomization.is_file(), "{}", stderr(&add));
    let rm = mip(&["federation", "remove", "federation-B", "--yes", "-i", &inv, "--render", &tree]);
    assert_eq!(code(&rm), 0, "{}", stderr(&rm));
    assert!(!kustomization.exists(), "the removed federation's files stay: {}", stderr(&rm));
    // The tree is up to date with the inventory once the files of the user's it names exist.
    crate::render::write_user_files(&dir.path().join("tree"));
    assert_eq!(code(&mip(&["render", &tree, "--check", "-i", &inv])), 0);
}
