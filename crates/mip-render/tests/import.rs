//! `mip import` of a checkout in the reference mip-infra layout (written here: a local and a
//! hybrid federation, every built-in common app and one the catalogue does not know): the
//! inventory it prints is valid, resolves to the Applications the checkout makes Argo CD
//! generate (name, project, destination, upstream revision), and the report names what it
//! could not express.

use mip_graph::ResolveOptions;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

const INFRA: &str = "https://github.com/Medical-Informatics-Platform/mip-infra.git";
const DEPLOY: &str = "git@github.com:Medical-Informatics-Platform/mip-deployments.git";
/// Exareme2 at a commit other than the catalogue's: the import pins it.
const EXAREME2_REV: &str = "0a9f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7";

fn fixture() -> BTreeMap<PathBuf, String> {
    let shared = |app: &str, repo: &str, rev: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {app}\n  namespace: argocd-mip-team\nspec:\n  project: mip-argo-project-shared-apps\n  sources:\n    - repoURL: {repo}\n      targetRevision: {rev}\n      path: kubernetes\n      helm:\n        valueFiles: [values.yaml]\n    - repoURL: {DEPLOY}\n      targetRevision: main\n      ref: values\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: placeholder\n"
        )
    };
    let patch = |fed: &str, dir: &str, values: &str, extra: &str| {
        format!(
            "- op: replace\n  path: /spec/project\n  value: mip-argo-project-{fed}\n- op: replace\n  path: /spec/destination/namespace\n  value: {fed}\n- op: add\n  path: /spec/sources/0/helm/valueFiles/-\n  value: $values/{dir}/customizations/{values}\n{extra}"
        )
    };
    let common_app = |name: &str, project: &str, ns: &str, source: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd-mip-team\nspec:\n  project: {project}\n  {source}\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {ns}\n"
        )
    };
    let a = "deployments/local/federations/federation-A";
    let z = "deployments/hybrid/federations/federation-Z/mip-infrastructure";
    let files: Vec<(String, String)> = vec![
        ("base/argo-projects.yaml".into(), format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: argo-projects\n  namespace: argocd-mip-team\nspec:\n  goTemplate: true\n  generators:\n    - list:\n        elements:\n          - {{projectName: mip-argo-project-common, fileName: mip-common}}\n  template:\n    metadata:\n      name: '{{{{ .projectName }}}}-app'\n    spec:\n      project: mip-argo-project-infrastructure\n      source:\n        repoURL: {INFRA}\n        targetRevision: main\n        path: 'projects/static/{{{{ .fileName }}}}'\n      destination:\n        server: https://kubernetes.default.svc\n        namespace: argocd-mip-team\n")),
        ("base/mip-infrastructure/mip-infrastructure.yaml".into(), format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: mip-infrastructure\nspec:\n  goTemplate: true\n  generators:\n    - matrix:\n        generators:\n          - git:\n              repoURL: {DEPLOY}\n              revision: main\n              directories:\n                - path: deployments/local/federations/*\n                - path: deployments/hybrid/federations/*/mip-infrastructure\n          - list:\n              elements:\n                - {{cluster: https://kubernetes.default.svc, namespace: argocd-mip-team}}\n    - matrix:\n        generators:\n          - git:\n              repoURL: {INFRA}\n              revision: main\n              directories:\n                - path: common/datacatalog\n                - path: common/nginx-ingress\n                - path: common/security\n                - path: common/submariner\n                - path: common/monitoring\n          - list:\n              elements:\n                - {{cluster: https://kubernetes.default.svc, namespace: argocd-mip-team}}\n                - {{cluster: 'https://10.0.0.5:6443', namespace: argocd-mip-team}}\n  template:\n    metadata:\n      name: '{{{{ .path.path }}}}'\n    spec:\n      project: mip-argo-project-infrastructure\n      source:\n        repoURL: '{{{{ .repoURL }}}}'\n        targetRevision: main\n        path: '{{{{ .path.path }}}}'\n      destination:\n        server: '{{{{ .cluster }}}}'\n        namespace: argocd-mip-team\n")),
        ("base/mip-infrastructure/rbac/nginx-public-rbac.yaml".into(), "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: nginx-public\n  namespace: ingress-nginx\n".into()),
        ("projects/static/mip-common/mip-common.yaml".into(), format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: mip-argo-project-common\n  namespace: argocd-mip-team\nspec:\n  sourceRepos:\n    - {INFRA}\n    - {DEPLOY}\n    - https://github.com/madgik/exareme2\n    - https://github.com/HBPMedical/mip-deployment\n    - https://github.com/madgik/datacatalog\n")),
        ("deployments/shared-apps/exareme2/kustomization.yaml".into(), "resources: [exareme2.yaml]\n".into()),
        ("deployments/shared-apps/exareme2/exareme2.yaml".into(), shared("exareme2", "https://github.com/madgik/exareme2", EXAREME2_REV)),
        ("deployments/shared-apps/mip-stack/kustomization.yaml".into(), "resources: [mip-stack.yaml]\n".into()),
        ("deployments/shared-apps/mip-stack/mip-stack.yaml".into(), shared("mip-stack", "https://github.com/HBPMedical/mip-deployment", "f7c64415c48f56bdb25188721d5857a5d79e2547")),
        (format!("{a}/kustomization.yaml"), "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: argocd-mip-team\nnamePrefix: federation-a-\nresources:\n  - ../../../../deployments/shared-apps/exareme2\n  - ../../../../deployments/shared-apps/mip-stack\n  - customizations/exareme2-overlay-app.yaml\npatches:\n  - path: customizations/exareme2-kustomize.yaml\n    target: {kind: Application, name: exareme2}\n  - path: customizations/mip-stack-kustomize.yaml\n    target: {kind: Application, name: mip-stack}\n".into()),
        (format!("{a}/customizations/exareme2-kustomize.yaml"), patch("federation-a", a, "exareme2-values.yaml", "- op: add\n  path: /spec/ignoreDifferences\n  value: [{group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}]\n")),
        (format!("{a}/customizations/mip-stack-kustomize.yaml"), patch("federation-a", a, "mip-stack-values.yaml", "")),
        (format!("{a}/customizations/exareme2-values.yaml"), "{}\n".into()),
        (format!("{a}/customizations/mip-stack-values.yaml"), "{}\n".into()),
        (format!("{a}/customizations/exareme2-overlay-app.yaml"), format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: exareme2-overlay\n  namespace: argocd-mip-team\nspec:\n  project: mip-argo-project-federation-a\n  source:\n    repoURL: {DEPLOY}\n    targetRevision: main\n    path: {a}/customizations/overlays/exareme2\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: federation-a\n")),
        (format!("{a}/customizations/overlays/exareme2/kustomization.yaml"), "resources: [exareme2-pvc-patch.yaml]\n".into()),
        (format!("{a}/customizations/overlays/exareme2/exareme2-pvc-patch.yaml"), "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n".into()),
        (format!("{z}/kustomization.yaml"), "namespace: argocd-mip-team\nnamePrefix: federation-z-\nresources:\n  - ../../../../../deployments/shared-apps/exareme2\n  - network-policies.yaml\npatches:\n  - path: customizations/exareme2-kustomize.yaml\n    target: {kind: Application, name: exareme2}\n".into()),
        (format!("{z}/customizations/exareme2-kustomize.yaml"), patch("federation-z", z, "exareme2-values.yaml", "")),
        (format!("{z}/network-policies.yaml"), "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny\n".into()),
        ("common/datacatalog/kustomization.yaml".into(), "resources: [datacatalog.yaml]\n".into()),
        ("common/datacatalog/datacatalog.yaml".into(), common_app("datacatalog", "mip-argo-project-common", "mip-common-datacatalog", "sources:\n    - {repoURL: 'https://github.com/madgik/datacatalog', targetRevision: 1ada3bb89efc651a53c16f57c0b210a78e096fff, path: kubernetes}")),
        ("common/nginx-ingress/nginx-ingress.yaml".into(), common_app("nginx-public-ingress", "mip-argo-project-common", "ingress-nginx", &format!("source: {{repoURL: '{INFRA}', targetRevision: main, path: common/nginx-ingress/manifests}}"))),
        ("common/submariner/submariner.yaml".into(), format!(
            "{}---\n{}",
            common_app("submariner-broker", "mip-argo-project-submariner", "submariner-k8s-broker", &format!("source: {{repoURL: '{INFRA}', targetRevision: main, path: common/submariner/broker}}")),
            common_app("submariner-operator", "mip-argo-project-submariner", "submariner-operator", &format!("source: {{repoURL: '{INFRA}', targetRevision: main, path: common/submariner/operator}}"))
        )),
        ("common/security/netpol.yaml".into(), "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: common-network-policies\n  namespace: argocd-mip-team\nspec:\n  generators:\n    - list:\n        elements: [{commonNamespace: mip-common-datacatalog}]\n  template:\n    metadata: {name: 'netpol-{{ .commonNamespace }}'}\n    spec:\n      project: mip-argo-project-security\n      destination: {server: https://kubernetes.default.svc, namespace: '{{ .commonNamespace }}'}\n".into()),
        ("common/monitoring/monitoring.yaml".into(), common_app("prometheus", "mip-argo-project-common", "monitoring", "source: {repoURL: 'https://prometheus-community.github.io/helm-charts', targetRevision: 25.0.0, chart: prometheus}")),
    ];
    files.into_iter().map(|(p, t)| (PathBuf::from(p), t)).collect()
}

fn text(v: &Value, p: &str) -> String {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// `(project, destination namespace, upstream revision)` of each Application the checkout
/// makes Argo CD generate, for the federations' shared apps and the known common apps.
fn generated_by_fixture(files: &BTreeMap<PathBuf, String>) -> BTreeMap<String, (String, String, String)> {
    let docs = |p: &str| {
        mip_inventory::yaml::parse_stream(p, &files[&PathBuf::from(p)])
            .expect("yaml")
            .iter()
            .map(|d| d.to_json())
            .collect::<Vec<_>>()
    };
    let mut out = BTreeMap::new();
    for (fed, dir, apps) in [
        ("federation-a", "deployments/local/federations/federation-A", vec!["exareme2", "mip-stack"]),
        ("federation-z", "deployments/hybrid/federations/federation-Z/mip-infrastructure", vec!["exareme2"]),
    ] {
        for app in apps {
            let template = &docs(&format!("deployments/shared-apps/{app}/{app}.yaml"))[0];
            let ops = &docs(&format!("{dir}/customizations/{app}-kustomize.yaml"))[0];
            let op = |path: &str| {
                ops.as_array()
                    .expect("ops")
                    .iter()
                    .find(|o| o["path"] == path)
                    .map(|o| text(o, "/value"))
                    .unwrap_or_default()
            };
            out.insert(
                format!("{fed}-{app}"),
                (
                    op("/spec/project"),
                    op("/spec/destination/namespace"),
                    text(template, "/spec/sources/0/targetRevision"),
                ),
            );
        }
    }
    for file in [
        "common/datacatalog/datacatalog.yaml",
        "common/nginx-ingress/nginx-ingress.yaml",
        "common/submariner/submariner.yaml",
    ] {
        for d in docs(file) {
            let rev = if text(&d, "/spec/sources/0/repoURL").contains("datacatalog") {
                text(&d, "/spec/sources/0/targetRevision")
            } else {
                String::new()
            };
            out.insert(
                text(&d, "/metadata/name"),
                (text(&d, "/spec/project"), text(&d, "/spec/destination/namespace"), rev),
            );
        }
    }
    out
}

#[test]
fn import_of_a_reference_layout_checkout_renders_the_same_platform() {
    let files = fixture();
    let imported = mip_render::import::import(&files, "checkout").expect("imports");
    let inv = match mip_inventory::parse("mip.yaml", &imported.inventory) {
        Ok(p) => p.inventory,
        Err(d) => panic!(
            "{}\n{}",
            imported.inventory,
            d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        ),
    };
    assert_eq!(inv.argocd.namespace.value, "argocd-mip-team");
    assert_eq!(inv.repositories.infra.url.value, INFRA);
    assert_eq!(inv.repositories.deployments.url.value, DEPLOY);
    assert_eq!(
        inv.app_def("exareme2").map(|d| d.version()).as_deref(),
        Some(EXAREME2_REV),
        "{}",
        imported.inventory
    );
    let a = &inv.federations[0];
    assert_eq!((a.name.value.as_str(), a.kind.value.as_str()), ("federation-A", "local"));
    let apps: Vec<&str> = a.apps.iter().map(|x| x.kind.value.as_str()).collect();
    assert_eq!(apps, ["exareme2", "mip-stack", "exareme2-overlay"]);
    assert_eq!(a.apps[0].values[0].value, "customizations/exareme2-values.yaml");
    assert_eq!(
        a.apps[0].patches[0].value, "customizations/exareme2-kustomize.yaml",
        "the patch with more than mip sets is kept"
    );
    assert!(a.apps[1].patches.is_empty(), "a patch that only sets what mip sets is not kept");
    assert_eq!(a.apps[2].patches[0].value, "customizations/overlays/exareme2/exareme2-pvc-patch.yaml");
    let z = &inv.federations[1];
    assert_eq!((z.name.value.as_str(), z.kind.value.as_str()), ("federation-Z", "hybrid"));
    let common: Vec<&str> = inv.common_apps.iter().map(|c| c.kind.value.as_str()).collect();
    assert_eq!(common, ["datacatalog", "nginx-ingress", "security", "submariner"]);
    assert_eq!(
        inv.prerequisites[0].file.value,
        "checkout/base/mip-infrastructure/rbac/nginx-public-rbac.yaml"
    );

    // What mip expects Argo CD to generate from the imported inventory is what the checkout makes it generate.
    let desired = mip_graph::resolve(&inv, &[], &ResolveOptions::default()).expect("resolves");
    assert!(mip_graph::validate(&desired).is_empty(), "{:?}", mip_graph::validate(&desired));
    for (name, (project, ns, rev)) in generated_by_fixture(&files) {
        let o = desired
            .objects
            .values()
            .find(|o| o.addr.kind == "Application" && o.addr.name == name)
            .unwrap_or_else(|| panic!("{name} expected"));
        assert_eq!(o.str_at("/spec/project"), Some(project.as_str()), "{name}: project");
        assert_eq!(o.str_at("/spec/destination/namespace"), Some(ns.as_str()), "{name}: namespace");
        if !rev.is_empty() {
            assert_eq!(o.str_at("/spec/sources/0/targetRevision"), Some(rev.as_str()), "{name}: revision");
        }
    }
    // And its tree renders: every path of the whole tree either rendered (its documents are
    // the checkout's) or kept as the checkout has it.
    let whole = {
        let mut all = inv.clone();
        all.tree = Default::default();
        mip_render::render(&all, &ResolveOptions::default())
    };
    assert!(whole.len() > 30);
    let rendered = mip_render::render(&inv, &ResolveOptions::default());
    for (path, text) in &whole {
        let shown = path.display().to_string();
        match rendered.get(path) {
            Some(_) => assert!(
                files.get(path).is_some_and(|t| mip_render::takeover::same_effect(t, text)),
                "{shown} is rendered only where the checkout declares the same"
            ),
            None => assert!(inv.tree.keeps(&shown), "{shown} is kept"),
        }
    }
    assert!(!inv.tree.keep.is_empty());

    let report = imported.report.join("\n");
    for expected in [
        "common app `monitoring` has no definition",
        "resource `deployments/hybrid/federations/federation-Z/mip-infrastructure/network-policies.yaml` is not expressed",
        "patch `customizations/exareme2-kustomize.yaml` is kept as a patch file",
        "cluster `https://10.0.0.5:6443`",
        "repositories.deployments: an SSH URL",
        "credentials.keycloak",
    ] {
        assert!(report.contains(expected), "`{expected}` not reported:\n{report}");
    }
}

#[test]
fn a_directory_that_is_not_a_checkout_is_one_clear_error() {
    let mut files = BTreeMap::new();
    files.insert(PathBuf::from("README.md"), "# hello\n".to_owned());
    let e = mip_render::import::import(&files, "somewhere").expect_err("no tree");
    assert!(e.starts_with("no ApplicationSet under `somewhere` has a git generator"), "{e}");
}
