//! The opt-in workload tier: on simulated Nodes (kwok) placed by the real kube-scheduler, a
//! Deployment's pods become Ready, a StatefulSet's claim binds and its pod becomes Ready, a Job
//! completes; and a pod no Node matches stays Pending.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use mip_test_support::{
    FIELD_MANAGER, TestCluster, TestClusterOptions, WorkloadOptions, pid_alive, workloads,
};
use serde_json::json;

/// Bound for anything the controllers, the scheduler and kwok do asynchronously.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Polls `check` every 250 ms until it returns `Ok`; after [`TIMEOUT`] panics with `what`, the
/// last `Err` (the state that was wrong) and the cluster's log tails.
async fn eventually<T, E: Debug, F, Fut>(cluster: &TestCluster, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(state) if started.elapsed() > TIMEOUT => {
                panic!("timed out after {TIMEOUT:?}: {what}; last state: {state:?}\n{}", cluster.log_tails())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn labels(name: &str) -> serde_json::Value {
    json!({"app": name})
}

/// A pod template with one container (never run: kwok only reports it running).
fn pod_template(name: &str, node_selector: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"labels": labels(name)},
        "spec": {
            "nodeSelector": node_selector,
            "containers": [{"name": "main", "image": "registry.invalid/never-pulled:1"}],
        },
    })
}

async fn apply<K>(api: &Api<K>, name: &str, object: &serde_json::Value) -> K
where
    K: Clone + Debug + k8s_openapi::serde::de::DeserializeOwned,
{
    api.patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(object))
        .await
        .unwrap_or_else(|error| panic!("apply `{name}`: {error}"))
}

fn pod_is_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|status| status.conditions.as_ref()).is_some_and(|conditions| {
        conditions.iter().any(|condition| condition.type_ == "Ready" && condition.status == "True")
    })
}

/// `(name, node, phase)` of the pods labelled `app=<name>`.
async fn pod_summary(pods: &Api<Pod>, app: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let list = pods.list(&ListParams::default().labels(&format!("app={app}"))).await.expect("list pods");
    list.items
        .into_iter()
        .map(|pod| {
            (
                pod.metadata.name.unwrap_or_default(),
                pod.spec.and_then(|spec| spec.node_name),
                pod.status.and_then(|status| status.phase),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_simulated_nodes_are_ready_with_the_chart_labels() {
    let cluster = TestCluster::shared_with_workloads();
    assert_eq!(cluster.nodes(), ["mip-master", "mip-worker-1", "mip-worker-2"]);
    let names: Vec<&str> = cluster.component_pids().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]);
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client().await);
    let master = nodes.list(&ListParams::default().labels("master=true")).await.expect("list nodes");
    let workers = nodes.list(&ListParams::default().labels("worker=true")).await.expect("list nodes");
    assert_eq!(master.items.len(), 1, "{master:?}");
    assert_eq!(workers.items.len(), 2, "{workers:?}");
    for node in master.items.iter().chain(&workers.items) {
        assert!(workloads::is_ready(node), "{node:?}");
    }
}

#[tokio::test]
async fn a_deployment_gets_its_replicas_ready_on_the_selected_nodes() {
    let cluster = TestCluster::shared_with_workloads();
    let namespace = cluster.fresh_namespace("workload-deployment").await;
    let client = cluster.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let name = "web";
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels(name)},
            "template": pod_template(name, json!({"worker": "true"})),
        },
    });
    apply(&deployments, name, &deployment).await;

    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    eventually(cluster, "the Deployment reports 2 ready replicas", || async {
        let current = deployments.get(name).await.map_err(|error| error.to_string())?;
        let status = current.status.clone().unwrap_or_default();
        if status.ready_replicas == Some(2) && status.available_replicas == Some(2) {
            Ok(())
        } else {
            Err(format!("{status:?}; pods {:?}", pod_summary(&pods, name).await))
        }
    })
    .await;

    let summary = pod_summary(&pods, name).await;
    assert_eq!(summary.len(), 2, "{summary:?}");
    for (pod, node, phase) in &summary {
        assert!(node.as_deref().is_some_and(|node| node.starts_with("mip-worker-")), "{pod} on {node:?}");
        assert_eq!(phase.as_deref(), Some("Running"), "{pod}");
    }
}

#[tokio::test]
async fn a_statefulset_claim_binds_and_its_pod_becomes_ready() {
    let cluster = TestCluster::shared_with_workloads();
    let namespace = cluster.fresh_namespace("workload-statefulset").await;
    let client = cluster.client().await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let name = "db";
    let statefulset = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": labels(name)},
            "template": pod_template(name, json!({"master": "true"})),
            // No storageClassName: the default class (`standard`) provisions it.
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "4Gi"}}},
            }],
        },
    });
    apply(&statefulsets, name, &statefulset).await;

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let claim_name = format!("data-{name}-0");
    let claim = eventually(cluster, &format!("PVC `{claim_name}` is Bound"), || async {
        match claims.get_opt(&claim_name).await.map_err(|error| error.to_string())? {
            Some(claim)
                if claim.status.as_ref().and_then(|status| status.phase.as_deref()) == Some("Bound") =>
            {
                Ok(claim)
            }
            other => Err(format!("{:?}", other.map(|claim| claim.status))),
        }
    })
    .await;
    let spec = claim.spec.expect("claim spec");
    assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
    let volume_name = spec.volume_name.expect("a Bound claim names its volume");
    let volume = Api::<PersistentVolume>::all(client.clone()).get(&volume_name).await.expect("get the PV");
    let provisioned_by =
        volume.metadata.annotations.unwrap_or_default().remove("pv.kubernetes.io/provisioned-by");
    assert_eq!(provisioned_by.as_deref(), Some(workloads::PROVISIONER));
    let volume_spec = volume.spec.expect("PV spec");
    assert_eq!(volume_spec.capacity.unwrap_or_default()["storage"].0, "4Gi");

    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let pod_name = format!("{name}-0");
    eventually(cluster, &format!("pod `{pod_name}` is Ready on the master Node"), || async {
        match pods.get_opt(&pod_name).await.map_err(|error| error.to_string())? {
            Some(pod) if pod_is_ready(&pod) => Ok(pod),
            other => {
                Err(format!("{:?}", other.map(|pod| (pod.spec.and_then(|spec| spec.node_name), pod.status))))
            }
        }
    })
    .await;
    eventually(cluster, "the StatefulSet reports 1 ready replica", || async {
        let status =
            statefulsets.get(name).await.map_err(|error| error.to_string())?.status.unwrap_or_default();
        if status.ready_replicas == Some(1) { Ok(()) } else { Err(format!("{status:?}")) }
    })
    .await;
    let pod = pods.get(&pod_name).await.expect("get pod");
    assert_eq!(pod.spec.and_then(|spec| spec.node_name).as_deref(), Some("mip-master"));
}

#[tokio::test]
async fn a_claim_of_a_chart_storage_class_binds_and_its_volume_goes_with_it() {
    let cluster = TestCluster::shared_with_workloads();
    let namespace = cluster.fresh_namespace("workload-claim").await;
    let client = cluster.client().await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    // What exareme2 and mip-deployment ask for on a managed cluster.
    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "csvs"},
        "spec": {
            "storageClassName": "ceph-corbo-cephfs-retain",
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "100Mi"}},
        },
    });
    apply(&claims, "csvs", &claim).await;
    let volume_name = eventually(cluster, "PVC `csvs` is Bound", || async {
        let current = claims.get("csvs").await.map_err(|error| error.to_string())?;
        let bound = current.status.as_ref().and_then(|status| status.phase.as_deref()) == Some("Bound");
        match current.spec.and_then(|spec| spec.volume_name) {
            Some(volume) if bound => Ok(volume),
            _ => Err(format!("{:?}", current.status)),
        }
    })
    .await;
    let volumes: Api<PersistentVolume> = Api::all(client);
    let volume = volumes.get(&volume_name).await.expect("get the PV");
    let spec = volume.spec.expect("PV spec");
    assert_eq!(spec.storage_class_name.as_deref(), Some("ceph-corbo-cephfs-retain"));
    assert_eq!(spec.access_modes.unwrap_or_default(), ["ReadWriteMany"]);

    claims.delete("csvs", &DeleteParams::default()).await.expect("delete the claim");
    eventually(cluster, &format!("the released PV `{volume_name}` is deleted"), || async {
        match volumes.get_opt(&volume_name).await.map_err(|error| error.to_string())? {
            None => Ok(()),
            Some(volume) => Err(format!("{:?}", volume.status)),
        }
    })
    .await;
}

#[tokio::test]
async fn a_job_completes() {
    let cluster = TestCluster::shared_with_workloads();
    let namespace = cluster.fresh_namespace("workload-job").await;
    let client = cluster.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let name = "migrate";
    let mut template = pod_template(name, json!({"worker": "true"}));
    template["spec"]["restartPolicy"] = json!("Never");
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": template},
    });
    apply(&jobs, name, &job).await;

    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let status = eventually(cluster, "the Job succeeds once and is Complete", || async {
        let status = jobs.get(name).await.map_err(|error| error.to_string())?.status.unwrap_or_default();
        let complete = status
            .conditions
            .iter()
            .flatten()
            .any(|condition| condition.type_ == "Complete" && condition.status == "True");
        if status.succeeded == Some(1) && complete {
            Ok(status)
        } else {
            Err(format!("{status:?}; pods {:?}", pod_summary(&pods, name).await))
        }
    })
    .await;
    assert_eq!(status.failed.unwrap_or(0), 0, "{status:?}");
}

#[tokio::test]
async fn a_pod_no_node_matches_stays_pending() {
    let cluster = TestCluster::shared_with_workloads();
    let namespace = cluster.fresh_namespace("workload-pending").await;
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, &namespace);
    let pod = |name: &str, selector: serde_json::Value| {
        let mut pod = pod_template(name, selector);
        pod["apiVersion"] = json!("v1");
        pod["kind"] = json!("Pod");
        pod["metadata"]["name"] = json!(name);
        pod
    };
    apply(&pods, "stranded", &pod("stranded", json!({"gpu": "true"}))).await;

    // The scheduler has looked at it and found no Node: a verdict, not the mere absence of one.
    eventually(cluster, "the scheduler marks `stranded` Unschedulable", || async {
        let current = pods.get("stranded").await.map_err(|error| error.to_string())?;
        let status = current.status.unwrap_or_default();
        let unschedulable = status.conditions.iter().flatten().any(|condition| {
            condition.type_ == "PodScheduled"
                && condition.status == "False"
                && condition.reason.as_deref() == Some("Unschedulable")
        });
        if unschedulable { Ok(()) } else { Err(format!("{status:?}")) }
    })
    .await;
    // A pod created afterwards with a matching selector runs: the tier works, yet the first
    // pod is still Pending on no Node.
    apply(&pods, "placed", &pod("placed", json!({"master": "true"}))).await;
    eventually(cluster, "`placed` is Ready", || async {
        let current = pods.get("placed").await.map_err(|error| error.to_string())?;
        if pod_is_ready(&current) { Ok(()) } else { Err(format!("{:?}", current.status)) }
    })
    .await;
    let stranded = pods.get("stranded").await.expect("get pod");
    assert_eq!(stranded.spec.and_then(|spec| spec.node_name), None);
    let status = stranded.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Pending"), "{status:?}");
    assert!(
        !status
            .conditions
            .iter()
            .flatten()
            .any(|condition| condition.type_ == "Ready" && condition.status == "True")
    );
}

#[test]
fn the_tier_stops_with_its_cluster() {
    let started = Instant::now();
    let cluster = TestCluster::start(TestClusterOptions {
        workloads: Some(WorkloadOptions::default()),
        ..TestClusterOptions::default()
    });
    eprintln!("workload tier: dedicated cluster started in {:.1}s", started.elapsed().as_secs_f64());
    let pids = cluster.component_pids();
    assert_eq!(pids.len(), 5, "{pids:?}");
    let logs = cluster.data_dir().join("logs");
    for log in ["kube-scheduler.log", "kwok.log"] {
        assert!(logs.join(log).is_file(), "no {log} in `{}`", logs.display());
    }
    let data_dir = cluster.data_dir().to_owned();
    drop(cluster);
    for (name, pid) in pids {
        assert!(!pid_alive(pid), "{name} (pid {pid}) survived the drop");
    }
    assert!(!data_dir.exists(), "`{}` survived the drop", data_dir.display());
}
