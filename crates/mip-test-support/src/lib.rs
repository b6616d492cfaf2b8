//! Test support for `mip`: a real Kubernetes control plane for integration tests.
//!
//! [`TestCluster`] runs **etcd**, **kube-apiserver** and **kube-controller-manager** (only the
//! namespace, garbage-collector and ServiceAccount token controllers) as local processes on free 127.0.0.1 ports,
//! installs Argo CD's three CRDs (`Application`, `AppProject`, `ApplicationSet`) and creates the
//! Argo CD namespace (`argocd-mip-team` by default). By default it does not run Argo CD, a
//! scheduler or a kubelet: pods never start, but everything `mip` talks to (CRDs, validation,
//! server-side apply, namespace deletion, foreground deletion / ownerReferences) behaves like a
//! real cluster, because it is one. There are no mocks. Two opt-in tiers add the rest: Argo CD
//! ([`ArgoCd`]) and workloads ([`TestClusterOptions::workloads`]).
//!
//! # Where the binaries come from
//!
//! `tools/testcluster/build.sh` builds them from Go modules pinned in `tools/testcluster/`
//! (Kubernetes v1.34, etcd v3.6) into a cache outside the work tree, keyed by the sha256 of
//! the go.mod/go.sum files and `go version`. The harness calls it on first use, so a plain
//! `cargo test` works on a fresh machine (the first build takes 5-10 minutes on 2 cores; afterwards it is
//! a cache hit costing milliseconds). The CRDs come from the pinned `github.com/argoproj/argo-cd/v3`
//! module in the Go module cache. Nothing upstream is committed. See `docs/testcluster.md`.
//!
//! # Sharing model
//!
//! [`TestCluster::shared`] starts one cluster per test binary, lazily, the first time a test
//! asks for it (about 5-10 s); every later test in that binary reuses it. Tests isolate
//! themselves with [`TestCluster::fresh_namespace`], which creates a namespace with a unique
//! name. Cluster-scoped objects (the CRDs, the Argo CD namespace) are shared: tests must not
//! delete them. [`TestCluster::start`] gives a dedicated cluster, stopped when dropped, for
//! tests that need one to themselves.
//!
//! # Lifetime and cleanup
//!
//! Rust never drops statics, and `PR_SET_PDEATHSIG` fires when the spawning *thread* exits
//! (test threads exit all the time) and would need `unsafe` `pre_exec`, which this workspace
//! forbids. So each cluster has a **watchdog**: a tiny `sh` loop, in its own process group,
//! that polls the test process every 0.2 s and, once it is gone (normal exit, panic, or
//! `kill -9`), SIGKILLs the components' process group and removes the data dir. Dropping a
//! [`TestCluster`] does the same at once. The components run in a process group of their own,
//! so a Ctrl-C in a terminal hits only the test process; the watchdog cleans up after it.
//!
//! # The Argo CD tier (opt-in)
//!
//! [`ArgoCd::start`] adds the real Argo CD application-controller, applicationset-controller
//! and repo-server (plus Redis) to a cluster, with a local Git repository (served as `file://`
//! and over loopback HTTPS) as their source; see the [`argocd`] module. Its binaries are built by `build.sh argocd-bin-dir` on
//! first use (cached like the control plane's).
//!
//! # The workload tier (opt-in)
//!
//! `TestClusterOptions { workloads: Some(WorkloadOptions::default()), .. }` (or
//! [`TestCluster::shared_with_workloads`]) makes pods run, without containers: kube-controller-manager
//! gets the workload controllers (deployment, replicaset, statefulset, job, the PersistentVolume
//! binder, …), and **kube-scheduler** and **kwok** (a kubelet simulator: Nodes become Ready, pods
//! bound to them Running and Ready, Job pods Succeeded) join the cluster's process group. Three
//! Nodes labelled as the MIP charts' `nodeSelector`s ask (`master: "true"`, `worker: "true"` ×2)
//! are Ready when the start returns, and claims of the default or the charts' StorageClasses
//! bind (kwok plays their provisioner; nothing touches the disk). So Deployments, StatefulSets
//! and Jobs become available/complete as on a real cluster. The tier adds well under a second to
//! the start; its binaries come from `build.sh kwok-bin-dir` (cached). See the [`workloads`]
//! module.
//!
//! # Faults
//!
//! [`TestCluster::kill_apiserver`], [`TestCluster::start_apiserver`] and
//! [`TestCluster::restart_apiserver`] stop and start kube-apiserver on the same port against the
//! same etcd (what a control-plane upgrade or crash does to a client);
//! [`TestClusterOptions::apiserver_args`] adds flags (throttling, compaction);
//! [`TestCluster::toxiproxy`] puts a [`Toxiproxy`] in front of the API server, and
//! [`TestCluster::kubeconfig_via`] writes a kubeconfig that goes through it. Use a dedicated
//! cluster ([`TestCluster::start`]) for anything that stops or slows the API server for everyone.
//!
//! # Failures
//!
//! A cluster that fails to start panics (never skips) with the reason and the tail of each
//! component's log. [`TestCluster::try_start`] returns the same as a [`StartError`].
//!
//! # Example
//!
//! ```no_run
//! use kube::api::{Api, PostParams};
//! use k8s_openapi::api::core::v1::ConfigMap;
//!
//! # async fn example() -> Result<(), kube::Error> {
//! let cluster = mip_test_support::TestCluster::shared();
//! let namespace = cluster.fresh_namespace("my-test").await;
//! let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &namespace);
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("demo".into());
//! configmaps.create(&PostParams::default(), &cm).await?;
//! # Ok(())
//! # }
//! ```

pub mod argocd;
pub mod binaries;
pub mod dev;
pub mod helm_repo;
pub mod inventory;
mod kubectl;
pub mod mip;
mod pki;
pub mod platform;
mod process;
pub mod toxiproxy;
pub mod workloads;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use argocd::{ArgoCd, ArgoCdOptions};
pub use inventory::{App, Cluster, Federation, Inventory, Secret};
pub use kubectl::run_piped;
pub use mip::Mip;

/// A fresh CA and a serving certificate for `127.0.0.1` and `localhost`, as PEM (CA
/// certificate, certificate, key): for test servers that speak TLS (a Pushgateway behind its
/// `--web.config.file`).
///
/// # Panics
/// When the key generation fails.
pub fn localhost_tls() -> (String, String, String) {
    let pki = pki::Pki::generate().expect("test PKI");
    (pki.ca_cert, pki.serving_cert, pki.serving_key)
}
pub use process::pid_alive;
pub use toxiproxy::{Toxic, Toxiproxy};
pub use workloads::{SimulatedNode, WorkloadOptions};

use crate::pki::Pki;
use crate::process::{Component, free_port, log_tails, pids, spawn_watchdog, stop_all, wait_for_port};

/// Field manager for everything the harness applies.
pub const FIELD_MANAGER: &str = "mip-test-support";
/// The Argo CD namespace created by default (the one `mip` examples use).
pub const DEFAULT_ARGOCD_NAMESPACE: &str = "argocd-mip-team";
/// Name of the cluster, user and context in the generated kubeconfig.
pub const CONTEXT: &str = "mip-test";
/// The Argo CD CRD files installed, in `build.sh crds-dir`.
pub const CRD_FILES: [&str; 3] = ["appproject-crd.yaml", "application-crd.yaml", "applicationset-crd.yaml"];

/// How long the apiserver may take to report `/readyz` ok; generous for 2 loaded cores.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the CRDs may take to become Established and served.
const CRD_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of each component log quoted when startup fails.
const LOG_TAIL_LINES: usize = 25;

/// Options for [`TestCluster::start`]. `Default` is what [`TestCluster::shared`] uses.
#[derive(Debug, Clone)]
pub struct TestClusterOptions {
    /// The Argo CD namespace to create.
    pub argocd_namespace: String,
    /// Where to keep etcd data, certificates, the kubeconfig and logs. `None`: a fresh temp
    /// dir. Either way the directory is **removed** when the cluster stops.
    pub data_dir: Option<PathBuf>,
    /// The bin dir with the four binaries. `None`: [`binaries::bin_dir`] (build if needed).
    pub bin_dir: Option<PathBuf>,
    /// The dir with the Argo CD CRD files. `None`: [`binaries::crds_dir`].
    pub crds_dir: Option<PathBuf>,
    /// The process whose death stops the cluster. `None`: this process.
    pub watch_pid: Option<u32>,
    /// Extra kube-apiserver flags, after the harness's own (a later flag wins): e.g.
    /// `--max-mutating-requests-inflight=1` to make it throttle, `--etcd-compaction-interval=1s`
    /// to expire LIST continue tokens.
    pub apiserver_args: Vec<String>,
    /// The opt-in workload tier (kube-scheduler, kwok, the workload controllers and simulated
    /// Nodes; see [`workloads`]). `None` (the default): no pod ever runs.
    pub workloads: Option<WorkloadOptions>,
}

impl Default for TestClusterOptions {
    fn default() -> Self {
        TestClusterOptions {
            argocd_namespace: DEFAULT_ARGOCD_NAMESPACE.to_owned(),
            data_dir: None,
            bin_dir: None,
            crds_dir: None,
            watch_pid: None,
            apiserver_args: Vec::new(),
            workloads: None,
        }
    }
}

/// Why a cluster did not start, with the tail of every component log.
#[derive(Debug, thiserror::Error)]
#[error("test cluster failed to start: {reason}\n{logs}")]
pub struct StartError {
    /// The first thing that went wrong, with its causes.
    pub reason: String,
    /// The last lines of each component's log.
    pub logs: String,
}

/// A running control plane. See the [crate docs](crate) for the design.
pub struct TestCluster {
    server_url: String,
    kubeconfig_path: PathBuf,
    bin_dir: PathBuf,
    data_dir: PathBuf,
    argocd_namespace: String,
    startup: Duration,
    components: Vec<Component>,
    watchdog: Option<Child>,
    /// The kube-apiserver's flags, to start it again the same way ([`TestCluster::start_apiserver`]).
    apiserver_args: Vec<String>,
    /// The workload tier's bin dir, when it runs.
    kwok_bin_dir: Option<PathBuf>,
    /// The names of the simulated Nodes (empty without the workload tier).
    nodes: Vec<String>,
}

static SHARED: OnceLock<Result<TestCluster, String>> = OnceLock::new();
static SHARED_WITH_WORKLOADS: OnceLock<Result<TestCluster, String>> = OnceLock::new();

impl TestCluster {
    /// The cluster shared by every test in this test binary, started on first use.
    ///
    /// # Panics
    ///
    /// If the cluster cannot start (every caller panics with the same reason and log tails).
    pub fn shared() -> &'static TestCluster {
        let shared = SHARED.get_or_init(|| {
            TestCluster::try_start(TestClusterOptions::default()).map_err(|error| error.to_string())
        });
        match shared {
            Ok(cluster) => cluster,
            Err(error) => panic!("{error}"),
        }
    }

    /// The cluster with the [workload tier](workloads) (default [`WorkloadOptions`]) shared by
    /// every test in this test binary that asks for it, started on first use. It is another
    /// cluster than [`TestCluster::shared`]'s.
    ///
    /// # Panics
    ///
    /// If the cluster cannot start (every caller panics with the same reason and log tails).
    pub fn shared_with_workloads() -> &'static TestCluster {
        let shared = SHARED_WITH_WORKLOADS.get_or_init(|| {
            let options = TestClusterOptions {
                workloads: Some(WorkloadOptions::default()),
                ..TestClusterOptions::default()
            };
            TestCluster::try_start(options).map_err(|error| error.to_string())
        });
        match shared {
            Ok(cluster) => cluster,
            Err(error) => panic!("{error}"),
        }
    }

    /// Starts a dedicated cluster, stopped (processes killed, data dir removed) on drop.
    ///
    /// # Panics
    ///
    /// If the cluster cannot start, with the reason and the tail of each component log.
    pub fn start(options: TestClusterOptions) -> TestCluster {
        match TestCluster::try_start(options) {
            Ok(cluster) => cluster,
            Err(error) => panic!("{error}"),
        }
    }

    /// Like [`TestCluster::start`], returning the failure instead of panicking.
    ///
    /// Blocking: call it from a plain thread or from inside a test's runtime (it runs its own
    /// async work on a private thread).
    pub fn try_start(options: TestClusterOptions) -> Result<TestCluster, StartError> {
        let mut attempt = 1;
        loop {
            match TestCluster::start_once(&options) {
                // Ports are picked free and released before the components bind them, so a
                // parallel test process can take one in between: then try again, with new ports.
                Err(error) if attempt < 3 && error.logs.contains("address already in use") => {
                    let _ = writeln_stderr(&format!(
                        "mip-test-support: port clash on attempt {attempt}, retrying: {}",
                        error.reason
                    ));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn start_once(options: &TestClusterOptions) -> Result<TestCluster, StartError> {
        let started = Instant::now();
        let Prepared { bin_dir, crds_dir, data_dir, kwok_bin_dir } = prepare(options)
            .map_err(|error| StartError { reason: format!("{error:#}"), logs: String::new() })?;
        let prepared = started.elapsed();
        let mut cluster = TestCluster {
            server_url: String::new(),
            kubeconfig_path: data_dir.join("kubeconfig"),
            bin_dir,
            data_dir,
            argocd_namespace: options.argocd_namespace.clone(),
            startup: Duration::ZERO,
            components: Vec::new(),
            watchdog: None,
            apiserver_args: Vec::new(),
            kwok_bin_dir,
            nodes: Vec::new(),
        };
        // On error `cluster` is dropped after the logs are read: processes die, the dir goes.
        let phases = match cluster.boot(options, &crds_dir) {
            Ok(phases) => phases,
            Err(error) => {
                return Err(StartError { reason: format!("{error:#}"), logs: cluster.log_tails() });
            }
        };
        cluster.startup = started.elapsed();
        let workloads = match phases.workloads {
            Some(took) => {
                format!(", workload tier {:.1}s ({} Nodes Ready)", took.as_secs_f64(), cluster.nodes.len())
            }
            None => String::new(),
        };
        let _ = writeln_stderr(&format!(
            "mip-test-support: test cluster ready at {} in {:.1}s (binaries {:.1}s, \
             /readyz {:.1}s, CRDs + namespace {:.1}s{workloads}; data dir `{}`)",
            cluster.server_url,
            cluster.startup.as_secs_f64(),
            prepared.as_secs_f64(),
            phases.readyz.as_secs_f64(),
            phases.crds.as_secs_f64(),
            cluster.data_dir.display()
        ));
        Ok(cluster)
    }

    /// Starts the components; returns how long `/readyz`, then the CRDs + namespace (and, in
    /// parallel with those, the workload tier's Nodes) took.
    fn boot(&mut self, options: &TestClusterOptions, crds_dir: &Path) -> Result<Phases> {
        let started = Instant::now();
        let crds_dir = crds_dir.to_owned();
        let crds = std::thread::spawn(move || read_crds(&crds_dir));
        let pki = Pki::generate().context("failed to generate certificates")?;
        let dir = self.data_dir.clone();
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("failed to create `{}`", logs.display()))?;
        for (file, content) in [
            ("ca.crt", &pki.ca_cert),
            ("apiserver.crt", &pki.serving_cert),
            ("apiserver.key", &pki.serving_key),
            ("admin.crt", &pki.admin_cert),
            ("admin.key", &pki.admin_key),
            ("service-account.key", &pki.service_account_key),
            ("service-account.pub", &pki.service_account_public_key),
        ] {
            write(&dir.join(file), content)?;
        }

        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let apiserver_port = free_port()?;
        self.server_url = format!("https://127.0.0.1:{apiserver_port}");
        write(&self.kubeconfig_path, &kubeconfig_yaml(&self.server_url, &pki))?;

        let etcd = Component::spawn(
            "etcd",
            &self.bin_dir.join("etcd"),
            &etcd_args(&dir, etcd_port, etcd_peer_port),
            &logs,
            None,
        )?;
        let group = etcd.child.id();
        self.components.push(etcd);
        let watched = options.watch_pid.unwrap_or_else(std::process::id);
        self.watchdog = Some(spawn_watchdog(watched, group, &dir)?);

        self.wait_for_port("etcd", etcd_port)?;
        let mut apiserver_args = apiserver_args(&dir, etcd_port, apiserver_port, options.workloads.is_some());
        apiserver_args.extend(options.apiserver_args.iter().cloned());
        self.apiserver_args.clone_from(&apiserver_args);
        let apiserver = Component::spawn(
            "kube-apiserver",
            &self.bin_dir.join("kube-apiserver"),
            &apiserver_args,
            &logs,
            Some(group),
        )?;
        self.components.push(apiserver);
        // It waits for the apiserver by itself; starting it now overlaps the two startups.
        let controller_manager_args =
            controller_manager_args(&self.kubeconfig_path, &dir, options.workloads.is_some());
        let controller_manager = Component::spawn(
            "kube-controller-manager",
            &self.bin_dir.join("kube-controller-manager"),
            &controller_manager_args,
            &logs,
            Some(group),
        )?;
        self.components.push(controller_manager);
        // The workload tier's processes wait for the apiserver by themselves, too.
        // (`kwok_bin_dir` is set exactly when the tier is asked for.)
        let ports = match &self.kwok_bin_dir {
            Some(kwok_bin_dir) => {
                let ports = workloads::Ports { scheduler: free_port()?, kwok: free_port()? };
                workloads::spawn(
                    kwok_bin_dir,
                    &self.kubeconfig_path,
                    &dir,
                    &ports,
                    group,
                    &mut self.components,
                )?;
                Some(ports)
            }
            None => None,
        };

        let kubeconfig = self.kubeconfig_path.clone();
        let namespace = options.argocd_namespace.clone();
        let components = &mut self.components;
        let phases = block_on_private_thread(
            "startup",
            settle(&kubeconfig, components, crds, &namespace, options.workloads.as_ref(), started),
        )?;
        if let (Some(ports), Some(workloads)) = (ports, &options.workloads) {
            // Normally long open by now (the Nodes were Ready): proof that both got past startup.
            self.wait_for_port("kube-scheduler", ports.scheduler)?;
            self.wait_for_port("kwok", ports.kwok)?;
            self.nodes = workloads.nodes.iter().map(|node| node.name.clone()).collect();
        }
        Ok(phases)
    }

    fn wait_for_port(&mut self, name: &str, port: u16) -> Result<()> {
        wait_for_port(&mut self.components, name, port, Duration::from_secs(30))
    }

    /// The apiserver URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The admin kubeconfig (context [`CONTEXT`], client certificate in `system:masters`,
    /// certificates embedded). Usable by kube-rs, kubectl and Go clients.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The dir with `etcd`, `kube-apiserver`, `kube-controller-manager` and `kubectl`.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The dir with `kwok`, `kube-scheduler` and `kwok-stages.yaml`, when the
    /// [workload tier](workloads) runs.
    pub fn kwok_bin_dir(&self) -> Option<&Path> {
        self.kwok_bin_dir.as_deref()
    }

    /// The names of the simulated Nodes, all Ready when the cluster started (empty without the
    /// [workload tier](workloads)).
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The data dir (etcd data, certificates, kubeconfig, `logs/<component>.log`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The Argo CD namespace created at startup.
    pub fn argocd_namespace(&self) -> &str {
        &self.argocd_namespace
    }

    /// How long [`TestCluster::start`] took, build check included.
    pub fn startup_duration(&self) -> Duration {
        self.startup
    }

    /// `(component name, pid)` of every control-plane process (with the workload tier, also
    /// `kube-scheduler` and `kwok`).
    pub fn component_pids(&self) -> Vec<(&'static str, u32)> {
        pids(&self.components)
    }

    /// The watchdog's pid.
    pub fn watchdog_pid(&self) -> Option<u32> {
        self.watchdog.as_ref().map(Child::id)
    }

    /// A kube client for this cluster, TLS verified against the cluster's CA. Create it inside
    /// the runtime that uses it (each `#[tokio::test]` has its own).
    ///
    /// # Panics
    ///
    /// If the kubeconfig cannot be loaded (a harness bug).
    pub async fn client(&self) -> kube::Client {
        match client_from(&self.kubeconfig_path).await {
            Ok(client) => client,
            Err(error) => panic!("failed to build a kube client for {}: {error:#}", self.server_url),
        }
    }

    /// Creates a namespace named `<prefix>-<random>-<n>`, unique in this cluster, and returns
    /// its name. `prefix` is cut to keep the name a valid DNS label.
    ///
    /// # Panics
    ///
    /// If the namespace cannot be created.
    pub async fn fresh_namespace(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        let client = self.client().await;
        if let Err(error) = apply_namespace(&client, &name).await {
            panic!("failed to create namespace `{name}`: {error:#}");
        }
        name
    }

    /// A `kubectl` command (the one built with the cluster) with `KUBECONFIG` set.
    pub fn kubectl(&self) -> std::process::Command {
        let mut command = std::process::Command::new(self.bin_dir.join("kubectl"));
        command.env("KUBECONFIG", &self.kubeconfig_path);
        command
    }

    /// Kills kube-apiserver with `SIGKILL` (what a crash or a node losing power does; a
    /// control-plane upgrade restarts it the same way from the client's point of view). etcd
    /// keeps running with every object; [`TestCluster::start_apiserver`] brings the server back
    /// on the same port.
    ///
    /// # Panics
    /// If there is no kube-apiserver component (a harness bug).
    pub fn kill_apiserver(&mut self) {
        let Some(apiserver) = self.components.iter_mut().find(|c| c.name == "kube-apiserver") else {
            panic!("the cluster has no kube-apiserver");
        };
        apiserver.stop();
    }

    /// Starts kube-apiserver again with the same flags (same port, same etcd, same
    /// certificates) and waits until `/readyz` says ok; returns how long that took.
    ///
    /// # Errors
    /// If it does not start or get ready within the startup timeout, with the log tails.
    pub fn start_apiserver(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let logs = self.data_dir.join("logs");
        let group = self.components.first().map(|etcd| etcd.child.id());
        let apiserver = Component::spawn(
            "kube-apiserver",
            &self.bin_dir.join("kube-apiserver"),
            &self.apiserver_args,
            &logs,
            group,
        )?;
        match self.components.iter_mut().find(|c| c.name == "kube-apiserver") {
            Some(slot) => *slot = apiserver,
            None => self.components.push(apiserver),
        }
        let kubeconfig = self.kubeconfig_path.clone();
        let components = &mut self.components;
        let ready = block_on_private_thread("readiness", wait_ready(&kubeconfig, components));
        match ready {
            Ok(()) => Ok(started.elapsed()),
            Err(error) => bail!("{error:#}\n{}", self.log_tails()),
        }
    }

    /// [`TestCluster::kill_apiserver`] then [`TestCluster::start_apiserver`].
    ///
    /// # Errors
    /// As [`TestCluster::start_apiserver`].
    pub fn restart_apiserver(&mut self) -> Result<Duration> {
        self.kill_apiserver();
        self.start_apiserver()
    }

    /// A copy of the admin kubeconfig that reaches the API server at `server_url` instead
    /// (e.g. through a [`Toxiproxy`] listener on another loopback port; the serving
    /// certificate names 127.0.0.1, so TLS still verifies).
    ///
    /// # Errors
    /// If the kubeconfig cannot be read or written.
    pub fn kubeconfig_via(&self, server_url: &str, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(&self.kubeconfig_path)
            .with_context(|| format!("failed to read `{}`", self.kubeconfig_path.display()))?;
        let text =
            text.replace(&format!("server: {}\n", self.server_url), &format!("server: {server_url}\n"));
        write(path, &text)
    }

    /// Starts a Toxiproxy server in front of this cluster's API server (in the cluster's
    /// process group, so the watchdog stops it with the cluster); see [`toxiproxy`].
    ///
    /// # Errors
    /// If the binary cannot be built or the server does not come up.
    pub fn toxiproxy(&self) -> Result<Toxiproxy> {
        let group = self.components.first().map(|etcd| etcd.child.id());
        let upstream = self.server_url.trim_start_matches("https://").to_owned();
        Toxiproxy::start(&upstream, &self.data_dir.join("logs"), group)
    }

    /// The last lines of each component's log.
    pub fn log_tails(&self) -> String {
        log_tails(&self.components, LOG_TAIL_LINES)
    }

    /// Stops the cluster now (the same as dropping it).
    pub fn stop(self) {}
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        stop_all(&mut self.components, self.watchdog.take(), &self.data_dir);
    }
}

/// What [`prepare`] resolves.
struct Prepared {
    bin_dir: PathBuf,
    crds_dir: PathBuf,
    data_dir: PathBuf,
    /// The workload tier's bin dir, when the tier is asked for.
    kwok_bin_dir: Option<PathBuf>,
}

/// How long the phases of a start took.
struct Phases {
    /// From the start of the boot until `/readyz` said ok.
    readyz: Duration,
    /// From `/readyz` until the CRDs were served and the namespace created.
    crds: Duration,
    /// From `/readyz` until every simulated Node was Ready (at the same time as `crds`).
    workloads: Option<Duration>,
}

/// Resolves the bin dirs, the CRD dir and a fresh data dir.
fn prepare(options: &TestClusterOptions) -> Result<Prepared> {
    let bin_dir = match &options.bin_dir {
        Some(dir) => dir.clone(),
        None => binaries::bin_dir()?,
    };
    let kwok_bin_dir = match &options.workloads {
        None => None,
        Some(WorkloadOptions { bin_dir: Some(dir), .. }) => Some(dir.clone()),
        Some(WorkloadOptions { bin_dir: None, .. }) => Some(binaries::kwok_bin_dir()?),
    };
    let crds_dir = match &options.crds_dir {
        Some(dir) => dir.clone(),
        None => binaries::crds_dir()?,
    };
    let data_dir = match &options.data_dir {
        Some(dir) => {
            if dir.exists() {
                std::fs::remove_dir_all(dir)
                    .with_context(|| format!("failed to clear `{}`", dir.display()))?;
            }
            std::fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
            dir.clone()
        }
        None => tempfile::Builder::new()
            .prefix("mip-testcluster-")
            .tempdir()
            .context("failed to create a temp dir")?
            .keep(),
    };
    Ok(Prepared { bin_dir, crds_dir, data_dir, kwok_bin_dir })
}

/// Waits for `/readyz`, installs the CRDs and creates the Argo CD namespace and, at the same
/// time, the workload tier's StorageClasses and Nodes (waiting until they are Ready).
async fn settle(
    kubeconfig: &Path,
    components: &mut [Component],
    crds: std::thread::JoinHandle<Result<Vec<Crd>>>,
    namespace: &str,
    workloads: Option<&WorkloadOptions>,
    started: Instant,
) -> Result<Phases> {
    wait_ready(kubeconfig, components).await?;
    let client = client_from(kubeconfig).await?;
    let ready = started.elapsed();
    let crds = crds.join().unwrap_or_else(|_| bail!("the CRD reader panicked"))?;
    let control_plane = async {
        install_crds(&client, crds).await?;
        apply_namespace(&client, namespace).await?;
        anyhow::Ok(started.elapsed() - ready)
    };
    let tier = async {
        match workloads {
            Some(options) => {
                workloads::install(&client, options, components).await?;
                anyhow::Ok(Some(started.elapsed() - ready))
            }
            None => anyhow::Ok(None),
        }
    };
    let (crds, workloads) = tokio::try_join!(control_plane, tier)?;
    Ok(Phases { readyz: ready, crds, workloads })
}

/// Runs `future` on a current-thread runtime of its own, on a scoped thread: callable from plain
/// threads and from inside a test's runtime alike (blocking inside a runtime would panic).
pub(crate) fn block_on_private_thread<T: Send>(
    what: &str,
    future: impl std::future::Future<Output = Result<T>> + Send,
) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("failed to build a tokio runtime")?;
                runtime.block_on(future)
            })
            .join()
            .unwrap_or_else(|_| bail!("the {what} thread panicked"))
    })
}

/// Waits until `/readyz` answers ok (fails early when a component exits).
async fn wait_ready(kubeconfig: &Path, components: &mut [Component]) -> Result<()> {
    let client = client_from(kubeconfig).await?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        for component in components.iter_mut() {
            component.check_running()?;
        }
        let request = http::Request::get("/readyz").body(Vec::new()).context("failed to build a request")?;
        let answer = client.request_text(request).await;
        if matches!(&answer, Ok(body) if body.trim() == "ok") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("kube-apiserver is not ready after {READY_TIMEOUT:?}; last /readyz answer: {answer:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A CRD read from the Argo CD module: the document plus the names needed to wait for it.
struct Crd {
    name: String,
    group: String,
    plural: String,
    document: serde_json::Value,
}

/// Reads and parses the CRD files (~0.5 s for 1.4 MB of YAML in a debug build, so it runs on
/// its own thread while the apiserver starts).
fn read_crds(crds_dir: &Path) -> Result<Vec<Crd>> {
    let mut crds = Vec::new();
    for file in CRD_FILES {
        let path = crds_dir.join(file);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let document: serde_json::Value =
            serde_saphyr::from_str(&text).with_context(|| format!("failed to parse `{}`", path.display()))?;
        let field = |pointer: &str| {
            document
                .pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("`{}` has no `{pointer}`", path.display()))
        };
        crds.push(Crd {
            name: field("/metadata/name")?,
            group: field("/spec/group")?,
            plural: field("/spec/names/plural")?,
            document,
        });
    }
    Ok(crds)
}

/// Server-side applies the CRDs, all at once, and waits until each is Established and its
/// resource is served by discovery (a CRD can be Established a moment before discovery lists
/// it).
async fn install_crds(client: &kube::Client, crds: Vec<Crd>) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for crd in crds {
        tasks.spawn(install_crd(client.clone(), crd));
    }
    while let Some(result) = tasks.join_next().await {
        result.context("a CRD install task panicked")??;
    }
    Ok(())
}

async fn install_crd(client: kube::Client, crd: Crd) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = &crd.name;
    let applied = api
        .patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&crd.document))
        .await
        .with_context(|| format!("failed to apply CRD `{name}`"))?;
    let version = applied
        .spec
        .versions
        .iter()
        .find(|version| version.served)
        .map(|version| format!("{}/{}", crd.group, version.name))
        .with_context(|| format!("CRD `{name}` serves no version"))?;
    let deadline = Instant::now() + CRD_TIMEOUT;
    loop {
        let current = api.get(name).await.with_context(|| format!("failed to get CRD `{name}`"))?;
        let established = current.status.and_then(|status| status.conditions).is_some_and(|conditions| {
            conditions.iter().any(|condition| condition.type_ == "Established" && condition.status == "True")
        });
        let served = established
            && client
                .list_api_group_resources(&version)
                .await
                .is_ok_and(|list| list.resources.iter().any(|resource| resource.name == crd.plural));
        if served {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("CRD `{name}` is not Established and served after {CRD_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn apply_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&namespace))
        .await
        .with_context(|| format!("failed to apply namespace `{name}`"))?;
    Ok(())
}

async fn client_from(kubeconfig: &Path) -> Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("failed to read kubeconfig `{}`", kubeconfig.display()))?;
    let options = KubeConfigOptions { context: Some(CONTEXT.to_owned()), ..KubeConfigOptions::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .context("failed to load the kubeconfig")?;
    kube::Client::try_from(config).context("failed to build a kube client")
}

fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let random = hasher.finish() & 0xff_ffff;
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(45)
        .collect();
    let prefix = prefix.trim_matches('-');
    let prefix = if prefix.is_empty() { "test" } else { prefix };
    format!("{prefix}-{random:06x}-{n}")
}

fn kubeconfig_yaml(server_url: &str, pki: &Pki) -> String {
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT}
  cluster:
    server: {server_url}
    certificate-authority-data: {ca}
users:
- name: {CONTEXT}-admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {CONTEXT}
  context:
    cluster: {CONTEXT}
    user: {CONTEXT}-admin
current-context: {CONTEXT}
",
        ca = b64(&pki.ca_cert),
        cert = b64(&pki.admin_cert),
        key = b64(&pki.admin_key),
    )
}

fn etcd_args(dir: &Path, port: u16, peer_port: u16) -> Vec<String> {
    let client_url = format!("http://127.0.0.1:{port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    vec![
        "--name=mip-test".into(),
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=mip-test={peer_url}"),
        // Test data is thrown away: skip fsync (much faster on slow disks).
        "--unsafe-no-fsync=true".into(),
        // The ApplicationSet CRD is ~1 MB; the 1.5 MiB default is too tight with managedFields.
        "--max-request-bytes=8388608".into(),
        "--log-level=warn".into(),
    ]
}

/// The kube-apiserver's flags; `workloads`: for the workload tier (Nodes get no `not-ready` taint).
fn apiserver_args(dir: &Path, etcd_port: u16, port: u16, workloads: bool) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    // No controller creates `default` ServiceAccounts here. With the workload tier, Nodes also
    // skip `TaintNodesByCondition` (see the `workloads` module).
    let disabled_admission = if workloads {
        "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"
    } else {
        "--disable-admission-plugins=ServiceAccount"
    };
    vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        "--bind-address=127.0.0.1".into(),
        // Loopback has no usable endpoints for the `kubernetes` Service: don't reconcile them.
        "--advertise-address=127.0.0.1".into(),
        "--endpoint-reconciler-type=none".into(),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", file("pki")),
        format!("--tls-cert-file={}", file("apiserver.crt")),
        format!("--tls-private-key-file={}", file("apiserver.key")),
        format!("--client-ca-file={}", file("ca.crt")),
        "--authorization-mode=RBAC".into(),
        format!("--service-account-issuer=https://127.0.0.1:{port}"),
        format!("--service-account-key-file={}", file("service-account.pub")),
        format!("--service-account-signing-key-file={}", file("service-account.key")),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        disabled_admission.into(),
        // Fewer bootstrap post-start hooks, faster /readyz.
        "--enable-priority-and-fairness=false".into(),
        "--profiling=false".into(),
    ]
}

/// The controller manager's flags; `workloads`: with the workload tier's controllers
/// ([`workloads::CONTROLLERS`]).
fn controller_manager_args(kubeconfig: &Path, dir: &Path, workloads: bool) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    // The token controller fills `kubernetes.io/service-account-token` Secrets, as
    // `argocd cluster add` and mip's cluster registration expect of a real cluster.
    let controllers = if workloads {
        workloads::controllers_arg()
    } else {
        "--controllers=namespace-controller,garbage-collector-controller,serviceaccount-token-controller"
            .into()
    };
    vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        controllers,
        format!("--service-account-private-key-file={}", file("service-account.key")),
        format!("--root-ca-file={}", file("ca.crt")),
        "--leader-elect=false".into(),
        // No serving endpoint needed (and none to authenticate).
        "--secure-port=0".into(),
        "--use-service-account-credentials=false".into(),
    ]
}

fn write(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).with_context(|| format!("failed to write `{}`", path.display()))
}

/// Writes `reliability-figure: NAME = VALUE` to stderr: a measured figure of the reliability
/// tests, collected from their output (see `docs/reliability.md`).
pub fn figure(name: &str, value: impl std::fmt::Display) {
    let _ = writeln_stderr(&format!("reliability-figure: {name} = {value}"));
}

/// Progress goes straight to fd 2: the test harness captures only the print macros.
fn writeln_stderr(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{line}")
}
