//! The shared test cluster behaves like a real cluster: verified TLS, Argo CD CRD validation,
//! the namespace controller and the garbage collector.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use mip_test_support::{FIELD_MANAGER, TestCluster};
use serde_json::json;

/// Bound for anything the controllers do asynchronously.
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(90);

fn argo_api(client: &kube::Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind);
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

/// Polls `check` every 200 ms until it returns true; panics with `what` after the timeout.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < CONTROLLER_TIMEOUT, "timed out after {CONTROLLER_TIMEOUT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn kube_client_connects_with_verified_tls() {
    let cluster = TestCluster::shared();
    let client = cluster.client().await;
    let version = client.apiserver_version().await.expect("GET /version");
    assert_eq!(version.git_version, "v1.34.4");
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "34"));
    assert!(cluster.server_url().starts_with("https://127.0.0.1:"), "{}", cluster.server_url());

    // Verification is on: without the cluster CA (system roots only) the handshake must fail.
    let kubeconfig = std::fs::read_to_string(cluster.kubeconfig_path()).expect("read kubeconfig");
    assert!(!kubeconfig.contains("insecure-skip-tls-verify"));
    let without_ca: String = kubeconfig
        .lines()
        .filter(|line| !line.contains("certificate-authority-data"))
        .map(|line| format!("{line}\n"))
        .collect();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&without_ca).expect("parse kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("load kubeconfig");
    let untrusting = kube::Client::try_from(config).expect("client");
    let error =
        untrusting.apiserver_version().await.expect_err("a server cert from an unknown CA must be refused");
    let message = format!("{error:?}");
    assert!(message.contains("UnknownIssuer") || message.contains("certificate"), "{message}");
}

#[tokio::test]
async fn argo_crds_accept_valid_objects_and_reject_invalid_ones() {
    let cluster = TestCluster::shared();
    let client = cluster.client().await;
    let namespace = cluster.argocd_namespace();
    let apply = PatchParams::apply(FIELD_MANAGER);
    let project_name = "crd-test-project";

    let project = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": project_name, "namespace": namespace},
        "spec": {
            "sourceRepos": ["https://example.invalid/repo.git"],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}]
        }
    });
    argo_api(&client, namespace, "AppProject")
        .patch(project_name, &apply, &Patch::Apply(&project))
        .await
        .expect("a valid AppProject is accepted");

    let applications = argo_api(&client, namespace, "Application");
    let mut application = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "crd-test-app", "namespace": namespace},
        "spec": {
            "project": project_name,
            "source": {"repoURL": "https://example.invalid/repo.git", "path": "base", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"}
        }
    });
    applications
        .patch("crd-test-app", &apply, &Patch::Apply(&application))
        .await
        .expect("a valid Application is accepted");

    application["metadata"]["name"] = json!("crd-test-app-no-destination");
    if let Some(spec) = application["spec"].as_object_mut() {
        spec.remove("destination");
    }
    let error = applications
        .patch("crd-test-app-no-destination", &apply, &Patch::Apply(&application))
        .await
        .expect_err("an Application without spec.destination must be rejected");
    let kube::Error::Api(status) = error else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status.message.contains("spec.destination") && status.message.contains("Required value"),
        "unexpected message: {}",
        status.message
    );
}

#[tokio::test]
async fn deleted_namespace_disappears() {
    let cluster = TestCluster::shared();
    let client = cluster.client().await;
    let name = cluster.fresh_namespace("ns-delete").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "content"}});
    configmaps
        .patch("content", &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&cm))
        .await
        .expect("create a ConfigMap in the namespace");

    let namespaces: Api<Namespace> = Api::all(client);
    namespaces.delete(&name, &DeleteParams::default()).await.expect("delete namespace");
    eventually(&format!("namespace `{name}` is removed by the namespace controller"), || async {
        matches!(namespaces.get_opt(&name).await, Ok(None))
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_takes_dependents() {
    let cluster = TestCluster::shared();
    let namespace = cluster.fresh_namespace("gc-foreground").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &namespace);
    let apply = PatchParams::apply(FIELD_MANAGER);

    let owner = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}});
    let owner = configmaps.patch("owner", &apply, &Patch::Apply(&owner)).await.expect("create owner");
    let owner_uid = owner.metadata.uid.expect("owner uid");
    let dependent = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid,
                "blockOwnerDeletion": true
            }]
        }
    });
    configmaps.patch("dependent", &apply, &Patch::Apply(&dependent)).await.expect("create dependent");

    let foreground =
        DeleteParams { propagation_policy: Some(PropagationPolicy::Foreground), ..DeleteParams::default() };
    configmaps.delete("owner", &foreground).await.expect("delete owner in the foreground");
    eventually("the garbage collector removes the dependent and then the owner", || async {
        matches!(
            (configmaps.get_opt("owner").await, configmaps.get_opt("dependent").await),
            (Ok(None), Ok(None))
        )
    })
    .await;
}
