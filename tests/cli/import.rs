//! `mip import DIR [--out FILE]`: an inventory from a checkout in the reference layout, valid and
//! renderable; the report on stderr; a directory that is no checkout is one error, nothing written.

use crate::*;

const DEPLOY: &str = "https://example.org/mip-deployments.git";
const INFRA: &str = "https://example.org/mip-infra.git";

fn checkout(dir: &std::path::Path) {
    let write = |rel: &str, text: String| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "base/mip-infrastructure/mip-infrastructure.yaml",
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {{name: mip-infrastructure, namespace: argocd-mip-team}}\nspec:\n  generators:\n    - matrix:\n        generators:\n          - git: {{repoURL: '{DEPLOY}', revision: main, directories: [{{path: 'deployments/local/federations/*'}}]}}\n          - list: {{elements: [{{cluster: 'https://kubernetes.default.svc'}}]}}\n    - matrix:\n        generators:\n          - git: {{repoURL: '{INFRA}', revision: main, directories: [{{path: common/nginx-ingress}}]}}\n          - list: {{elements: [{{cluster: 'https://kubernetes.default.svc'}}]}}\n  template: {{metadata: {{name: x}}, spec: {{project: p, destination: {{server: s}}}}}}\n"
        ),
    );
    write(
        "deployments/shared-apps/exareme2/exareme2.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: exareme2}\nspec:\n  sources: [{repoURL: 'https://github.com/madgik/exareme2', targetRevision: c1d4eb3d9d90edcf868a3a6395cc37b19c934e66, path: kubernetes}]\n".to_owned(),
    );
    write(
        "deployments/local/federations/Lyon/kustomization.yaml",
        "namespace: argocd-mip-team\nresources: [../../../shared-apps/exareme2, network-policies.yaml]\n"
            .to_owned(),
    );
    write("deployments/local/federations/Lyon/network-policies.yaml", "kind: NetworkPolicy\n".to_owned());
}

#[test]
fn import_prints_an_inventory_that_validates_and_reports_the_rest() {
    let dir = tempfile::tempdir().expect("tmp");
    checkout(dir.path());
    let tree = dir.path().to_str().expect("utf8");
    let o = mip(&["import", tree]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("  - name: Lyon\n    kind: local\n    apps:\n      - name: exareme2\n"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("note: federation `Lyon`: resource `deployments/local/federations/Lyon/network-policies.yaml` is not expressed"), "{}", stderr(&o));
    let out = dir.path().join("mip.yaml");
    let o = mip(&["import", tree, "--out", out.to_str().expect("utf8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    assert!(!stderr(&o).contains("deprecated"), "{}", stderr(&o));
    // `-o FILE` still writes the file, with a note: everywhere else `-o` is a format.
    let old = dir.path().join("old.yaml");
    let o = mip(&["import", tree, "-o", old.to_str().expect("utf8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).lines().any(|l| l == "note: `mip import -o FILE` is deprecated: use `--out FILE`"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&old).expect("old"), std::fs::read(&out).expect("out"));
    let inv = out.to_str().expect("utf8");
    let o = mip(&["validate", "-i", inv]);
    assert_eq!(code(&o), 0, "the imported inventory is valid: {}", stderr(&o));
    // The checkout's files that mip's render would change are kept (`tree.keep`), so
    // rendering into the checkout itself writes nothing and changes nothing Argo CD reads.
    let inventory = std::fs::read_to_string(&out).expect("inventory");
    assert!(
        inventory.contains("tree:\n  keep:\n")
            && inventory.contains("    - deployments/local/federations/Lyon/kustomization.yaml\n"),
        "{inventory}"
    );
    let before =
        std::fs::read_to_string(dir.path().join("deployments/local/federations/Lyon/kustomization.yaml"))
            .expect("read");
    let o = mip(&["render", tree, "-i", inv]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("deployments/local/federations/Lyon/kustomization.yaml"))
            .expect("read"),
        before,
        "a kept file is never rewritten"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("deployments/local/federations/Lyon/network-policies.yaml"))
            .expect("kept"),
        "kind: NetworkPolicy\n"
    );
    let o = mip(&["render", tree, "-i", inv, "--check"]);
    assert_eq!(code(&o), 0, "the taken-over checkout is up to date: {}\n{}", stdout(&o), stderr(&o));
    // Dropping a keep entry hands the path to mip: then it is in the way until `--adopt`
    // takes it over, showing what changes first.
    let unkept = inventory.replace("    - deployments/local/federations/Lyon/kustomization.yaml\n", "");
    std::fs::write(&out, unkept).expect("write");
    let o = mip(&["render", tree, "-i", inv]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Lyon/kustomization.yaml` exists but was not generated by mip")
            && stderr(&o).contains("`--adopt` takes the file over"),
        "{}",
        stderr(&o)
    );
    let o = mip(&["render", tree, "-i", inv, "--adopt"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("--- a/deployments/local/federations/Lyon/kustomization.yaml\n+++ b/deployments/local/federations/Lyon/kustomization.yaml\n"), "{}", stdout(&o));
    let k = std::fs::read_to_string(dir.path().join("deployments/local/federations/Lyon/kustomization.yaml"))
        .expect("read");
    assert!(k.starts_with("# generated by mip"), "{k}");
    let o = mip(&["render", tree, "-i", inv, "--check"]);
    assert_eq!(code(&o), 0, "after adopting, the checkout is mip's tree: {}\n{}", stdout(&o), stderr(&o));
}

#[test]
fn import_of_a_directory_without_a_tree_is_one_error_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("README.md"), "# not a checkout\n").expect("write");
    let out = dir.path().join("mip.yaml");
    let o = mip(&["import", dir.path().to_str().expect("utf8"), "--out", out.to_str().expect("utf8")]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("has a git generator over `deployments/`")
            && stderr(&o).contains("hint: point `mip import` at the root of a mip-infra checkout"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    let o = mip(&["import", "/nonexistent/mip-infra"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("cannot read checkout `/nonexistent/mip-infra`"), "{}", stderr(&o));
}

#[test]
fn init_writes_a_starter_that_validates_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("mip.yaml");
    let f = file.to_str().expect("utf8");
    // No inventory: the error points to `mip init`.
    let o = mip_cmd().args(["plan", "--offline"]).dir(dir.path()).run();
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("cannot read inventory `mip.yaml`")
            && stderr(&o).contains("hint: write one with `mip init`"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    let o = mip(&[
        "init",
        f,
        "--infra-repo",
        "https://example.org/infra.git",
        "--deployments-repo",
        "git@example.org:t/deploy.git",
        "--federation",
        "Lyon",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&file).expect("written");
    assert!(text.contains("# the Git branch every repository is deployed from"), "commented: {text}");
    assert!(
        text.contains("  - name: Lyon ") && text.contains("sshPrivateKey: {file: ./argocd-remote-key}"),
        "{text}"
    );
    assert!(stderr(&o).contains("next: `mip validate -i"), "{}", stderr(&o));
    std::fs::write(dir.path().join("argocd-remote-key"), "key").expect("key");
    assert_eq!(code(&mip(&["validate", "-i", f])), 0);
    // Never over an existing file without --force; a bad answer writes nothing.
    let o = mip(&["init", f, "--federation", "Other"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("cannot write inventory") && stderr(&o).contains("`--force` overwrites it"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), text);
    let bad = dir.path().join("bad.yaml");
    let o = mip(&["init", bad.to_str().expect("utf8"), "--argocd-namespace", "Not_A_Namespace"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("error[invalid-name]") || stderr(&o).contains("error["), "{}", stderr(&o));
    assert!(!bad.exists(), "nothing written");
    // --from-tree: the import of a checkout.
    let tree = dir.path().join("checkout");
    checkout(&tree);
    let imported = dir.path().join("imported.yaml");
    let o = mip(&["init", imported.to_str().expect("utf8"), "--from-tree", tree.to_str().expect("utf8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(std::fs::read_to_string(&imported).expect("written").contains("  - name: Lyon\n"));
}
