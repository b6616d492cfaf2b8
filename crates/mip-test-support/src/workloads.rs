//! The opt-in workload tier: Nodes that run pods, without containers.
//!
//! A default [`TestCluster`](crate::TestCluster) never runs a pod: there is no scheduler and no
//! kubelet, so a Deployment gets no ReplicaSet and Argo CD never sees it Healthy. With
//! [`TestClusterOptions::workloads`](crate::TestClusterOptions::workloads) set, the cluster
//! also runs:
//!
//! - **kube-controller-manager** with the workload controllers ([`CONTROLLERS`]: deployment,
//!   replicaset, statefulset, daemonset, job, cronjob, endpoints, endpointslice, the
//!   PersistentVolume binder and the PVC/PV protection controllers, …) on top of the default
//!   three;
//! - **kube-scheduler**, from the same Kubernetes module as the API server (admin kubeconfig,
//!   no leader election, serving only on a free loopback port);
//! - **kwok** (`sigs.k8s.io/kwok`), which plays the kubelet of every Node
//!   (`--manage-all-nodes`): its Stage objects (kwok's own `node-initialize`, `pod-ready`,
//!   `pod-complete`, `pod-delete`, in the bin dir's `kwok-stages.yaml`) make a Node `Ready`, a
//!   pod bound to a Node `Running` and Ready, a Job's pod `Succeeded`, and a deleted pod gone.
//!   No container runtime, no image is pulled, nothing is executed. Two Stages of mip's own
//!   ([`VOLUME_STAGES`]) play a volume provisioner (see *Volumes* below), two more
//!   ([`NETWORK_STAGES`]) a load-balancer and an ingress controller: a `LoadBalancer` Service and
//!   an Ingress get an address in their status, which Argo CD's health checks wait for;
//! - the [`SimulatedNode`]s of [`WorkloadOptions::nodes`], created through the API with generous
//!   capacity ([`NODE_CAPACITY`]) and the labels MIP charts' `nodeSelector`s ask for
//!   ([`default_nodes`]), and waited for until kwok reports them `Ready`.
//!
//! The API server runs without the `TaintNodesByCondition` admission plugin: it taints every new
//! Node `node.kubernetes.io/not-ready:NoSchedule`, and only the node lifecycle controller takes
//! that taint off, which is not run (it would need kwok's heartbeats, and evicts pods when they
//! lag behind on a loaded machine).
//!
//! # Volumes
//!
//! PersistentVolumeClaims bind through the real PersistentVolume binder of the controller
//! manager. The charts' own static PVs (`k8s-local-storage` in mip-deployment) bind by selector
//! and class as in production. Claims of the [`WorkloadOptions::storage_classes`] (by default
//! `standard`, the default class, and `ceph-corbo-cephfs-retain`, the class MIP charts use on
//! managed clusters) are provisioned dynamically: the classes name the external provisioner
//! [`PROVISIONER`], the binder marks such a claim for it, and kwok, with the Stages in
//! [`VOLUME_STAGES`], acts as that provisioner: it creates a PV pre-bound to the claim (which the
//! binder then binds) and deletes the PV once the binder has released it. The PVs are API objects
//! only (a `hostPath` that nothing creates), so nothing is written to disk and nothing outlives the
//! cluster. (The controller manager's in-tree `--enable-hostpath-provisioner` would do the same
//! but makes a real directory under `/tmp/hostpath_pv/` per claim, left behind when a cluster is
//! killed.)
//!
//! Everything runs in the cluster's process group, is stopped with it, and logs to
//! `<data dir>/logs/{kube-scheduler,kwok}.log`. A component that exits or a Node that does not
//! become Ready fails the start.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::FIELD_MANAGER;
use crate::process::Component;

/// The controllers kube-controller-manager runs in the workload tier (Kubernetes 1.34 names;
/// `kube-controller-manager --help` lists them). The default cluster runs only the first three.
pub const CONTROLLERS: [&str; 18] = [
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-token-controller",
    "deployment-controller",
    "replicaset-controller",
    "replicationcontroller-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "disruption-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller",
    "pod-garbage-collector-controller",
];

/// `status.capacity` (and `allocatable`) of every simulated Node: far more than any test chart
/// asks for, so that resource requests never keep a pod Pending.
pub const NODE_CAPACITY: [(&str, &str); 4] =
    [("cpu", "64"), ("memory", "256Gi"), ("pods", "250"), ("ephemeral-storage", "1Ti")];

/// The provisioner of the tier's StorageClasses: not in-tree, so the PersistentVolume binder
/// leaves provisioning to an external provisioner, played by kwok ([`VOLUME_STAGES`]).
pub const PROVISIONER: &str = "mip.invalid/simulated-volume";

/// mip's kwok Stages for [`PROVISIONER`] (`mip-volume-provision`: a PV pre-bound to each claim
/// marked for it; `mip-volume-delete`: released PVs go), passed to kwok after its own Stages.
pub const VOLUME_STAGES: &str = include_str!("volume-stages.yaml");

/// mip's kwok Stages of a load-balancer and ingress controller (`mip-load-balancer`: a
/// `LoadBalancer` Service gets its address; `mip-ingress-address`: an Ingress gets one), so Argo
/// CD's health checks of both pass as on a cluster with those controllers.
pub const NETWORK_STAGES: &str = include_str!("network-stages.yaml");

/// The pod IP range kwok hands out (outside the cluster's Service range, 10.0.0.0/24).
pub const POD_CIDR: &str = "10.244.0.0/16";

/// How long the simulated Nodes may take to become Ready (kwok starts, then sees them).
const NODES_TIMEOUT: Duration = Duration::from_secs(90);

/// One Node created by the tier. The harness adds `kubernetes.io/hostname` (the name),
/// `kubernetes.io/os: linux` and `kubernetes.io/arch: amd64`, as a kubelet would: anti-affinity
/// rules with `topologyKey: kubernetes.io/hostname` need the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedNode {
    /// The Node's name.
    pub name: String,
    /// Its labels (on top of the ones the harness adds).
    pub labels: BTreeMap<String, String>,
}

impl SimulatedNode {
    /// A Node named `name` with `labels`.
    pub fn new(name: &str, labels: &[(&str, &str)]) -> SimulatedNode {
        SimulatedNode {
            name: name.to_owned(),
            labels: labels.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect(),
        }
    }
}

/// The Nodes MIP charts expect on an unmanaged cluster: one `master: "true"` Node (the
/// mip-deployment portal, keycloak and gateway, exareme2's controller, global worker and
/// aggregation server select it) and two `worker: "true"` Nodes (exareme2's local workers: a
/// StatefulSet of `localnodes: 2` replicas with required anti-affinity on
/// `kubernetes.io/hostname`). exareme2's SMPC players (`smpc_player: "true"`, off by default)
/// are not covered: add Nodes for them when a test enables SMPC.
pub fn default_nodes() -> Vec<SimulatedNode> {
    vec![
        SimulatedNode::new("mip-master", &[("master", "true")]),
        SimulatedNode::new("mip-worker-1", &[("worker", "true")]),
        SimulatedNode::new("mip-worker-2", &[("worker", "true")]),
    ]
}

/// The StorageClasses created by default: `standard` (the default class, for claims that name
/// none) and `ceph-corbo-cephfs-retain` (what the exareme2, mip-deployment and datacatalog
/// charts name on managed clusters).
pub const DEFAULT_STORAGE_CLASSES: [&str; 2] = ["standard", "ceph-corbo-cephfs-retain"];

/// Options of the workload tier (`TestClusterOptions { workloads: Some(…), .. }`).
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// The Nodes to create. Default: [`default_nodes`].
    pub nodes: Vec<SimulatedNode>,
    /// StorageClasses to create, all provisioned by [`PROVISIONER`]; the first is marked the
    /// default class. Default: [`DEFAULT_STORAGE_CLASSES`].
    pub storage_classes: Vec<String>,
    /// The dir with `kwok`, `kube-scheduler` and `kwok-stages.yaml`. `None`:
    /// [`binaries::kwok_bin_dir`](crate::binaries::kwok_bin_dir) (builds when not cached).
    pub bin_dir: Option<PathBuf>,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            nodes: default_nodes(),
            storage_classes: DEFAULT_STORAGE_CLASSES.iter().map(|class| (*class).to_owned()).collect(),
            bin_dir: None,
        }
    }
}

/// The ports the tier's processes serve on (loopback only).
pub(crate) struct Ports {
    pub scheduler: u16,
    pub kwok: u16,
}

/// `--controllers` of kube-controller-manager in the workload tier.
pub(crate) fn controllers_arg() -> String {
    format!("--controllers={}", CONTROLLERS.join(","))
}

/// Starts kube-scheduler and kwok in `group`. Both wait for the API server by themselves, so
/// they start together with it.
pub(crate) fn spawn(
    bin_dir: &Path,
    kubeconfig: &Path,
    data_dir: &Path,
    ports: &Ports,
    group: u32,
    components: &mut Vec<Component>,
) -> Result<()> {
    let logs = data_dir.join("logs");
    let scheduler_certs = data_dir.join("kube-scheduler");
    let kwok_home = data_dir.join("kwok-home");
    for dir in [&scheduler_certs, &kwok_home] {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    let scheduler = Component::spawn(
        "kube-scheduler",
        &bin_dir.join("kube-scheduler"),
        &[
            format!("--kubeconfig={}", kubeconfig.display()),
            "--leader-elect=false".into(),
            // Its health endpoints, on loopback with a self-signed certificate; the harness only
            // checks that the port opens.
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.scheduler),
            format!("--cert-dir={}", scheduler_certs.display()),
            "--profiling=false".into(),
        ],
        &logs,
        Some(group),
    )?;
    components.push(scheduler);
    let stages = bin_dir.join(crate::binaries::KWOK_STAGES_FILE);
    let volume_stages = data_dir.join("kwok-volume-stages.yaml");
    std::fs::write(&volume_stages, VOLUME_STAGES)
        .with_context(|| format!("failed to write `{}`", volume_stages.display()))?;
    let network_stages = data_dir.join("kwok-network-stages.yaml");
    std::fs::write(&network_stages, NETWORK_STAGES)
        .with_context(|| format!("failed to write `{}`", network_stages.display()))?;
    let kwok = Component::spawn_with_env(
        "kwok",
        &bin_dir.join("kwok"),
        &[
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--config={}", stages.display()),
            format!("--config={}", volume_stages.display()),
            format!("--config={}", network_stages.display()),
            "--manage-all-nodes=true".into(),
            format!("--server-address=127.0.0.1:{}", ports.kwok),
            format!("--cidr={POD_CIDR}"),
        ],
        // kwok also reads `~/.kwok/kwok.yaml` when it exists: not the user's.
        &[("HOME".to_owned(), OsString::from(kwok_home.as_os_str()))],
        &logs,
        Some(group),
    )?;
    components.push(kwok);
    Ok(())
}

/// Creates the StorageClasses and the Nodes, then waits until kwok reports every Node Ready
/// (failing early when a component exits).
pub(crate) async fn install(
    client: &kube::Client,
    options: &WorkloadOptions,
    components: &mut [Component],
) -> Result<()> {
    let classes: Api<StorageClass> = Api::all(client.clone());
    for (index, name) in options.storage_classes.iter().enumerate() {
        let default = if index == 0 { "true" } else { "false" };
        let class = serde_json::json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {
                "name": name,
                "annotations": {"storageclass.kubernetes.io/is-default-class": default},
            },
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        });
        classes
            .patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&class))
            .await
            .with_context(|| format!("failed to apply StorageClass `{name}`"))?;
    }

    let nodes: Api<Node> = Api::all(client.clone());
    let capacity: serde_json::Map<String, serde_json::Value> =
        NODE_CAPACITY.iter().map(|(resource, amount)| ((*resource).to_owned(), (*amount).into())).collect();
    for node in &options.nodes {
        let mut labels = node.labels.clone();
        for (key, value) in [
            ("kubernetes.io/hostname", node.name.as_str()),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
        ] {
            labels.entry(key.to_owned()).or_insert_with(|| value.to_owned());
        }
        // Status is accepted on create for Nodes (not on update); kwok keeps capacity and
        // allocatable and fills in conditions, addresses and nodeInfo.
        let object: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node.name, "labels": labels},
            "status": {"capacity": capacity, "allocatable": capacity},
        }))
        .context("failed to build a Node")?;
        let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
        nodes
            .create(&params, &object)
            .await
            .with_context(|| format!("failed to create Node `{}`", node.name))?;
    }

    let deadline = Instant::now() + NODES_TIMEOUT;
    loop {
        for component in components.iter_mut() {
            component.check_running()?;
        }
        let mut not_ready = Vec::new();
        for node in &options.nodes {
            let current =
                nodes.get(&node.name).await.with_context(|| format!("failed to get Node `{}`", node.name))?;
            if !is_ready(&current) {
                not_ready.push(node.name.as_str());
            }
        }
        if not_ready.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("Nodes {not_ready:?} are not Ready after {NODES_TIMEOUT:?} (kwok should make them Ready)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Node's `Ready` condition is `True`.
pub fn is_ready(node: &Node) -> bool {
    node.status.as_ref().and_then(|status| status.conditions.as_ref()).is_some_and(|conditions| {
        conditions.iter().any(|condition| condition.type_ == "Ready" && condition.status == "True")
    })
}
