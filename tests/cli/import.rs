//! `mip import DIR [-o FILE]`: an inventory from a checkout in the reference layout, valid and
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
    let o = mip(&["import", tree, "-o", out.to_str().expect("utf8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let inv = out.to_str().expect("utf8");
    let o = mip(&["validate", "-i", inv]);
    assert_eq!(code(&o), 0, "the imported inventory is valid: {}", stderr(&o));
    let rendered = dir.path().join("rendered");
    let o = mip(&["render", rendered.to_str().expect("utf8"), "-i", inv]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(rendered.join("deployments/local/federations/Lyon/kustomization.yaml").is_file());
}

#[test]
fn import_of_a_directory_without_a_tree_is_one_error_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("README.md"), "# not a checkout\n").expect("write");
    let out = dir.path().join("mip.yaml");
    let o = mip(&["import", dir.path().to_str().expect("utf8"), "-o", out.to_str().expect("utf8")]);
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
