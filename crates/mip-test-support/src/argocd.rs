//! The opt-in Argo CD tier: the real application-controller, applicationset-controller and
//! repo-server (built from the `github.com/argoproj/argo-cd/v3` module) plus Redis, running as
//! local processes against a [`TestCluster`], with a local Git repository as their source.
//!
//! What the harness does in place of Argo CD's manifests and `argocd-server`:
//!
//! - writes `argocd-cm` (mip-infra's settings: label tracking with key
//!   `argocd.argoproj.io/instanceTracking`, `kustomize.buildOptions: --enable-helm`, …),
//!   `argocd-secret` (a random `server.secretkey`) and `argocd-cmd-params-cm` (informational:
//!   the processes get the same values as flags), all labelled `app.kubernetes.io/part-of:
//!   argocd` as Argo CD's settings informer requires;
//! - creates the permissive `default` AppProject, as `argocd-server` does at startup (field
//!   manager `argocd-server`);
//! - maps the in-cluster destination `https://kubernetes.default.svc` to the test cluster with
//!   `ARGOCD_FAKE_IN_CLUSTER=true` + `KUBECONFIG` (what Argo CD's own `Procfile` does for local
//!   runs: `Cluster.RawRestConfig` then reads the kubeconfig instead of the pod's service
//!   account), so trees render with the real in-cluster URL;
//! - serves a Git repository both as a `file://` URL (the repo-server clones it like any
//!   remote; Argo CD's own e2e tests use `file://` repositories) and as
//!   `https://127.0.0.1:<port>/repo` (what mip inventories accept): git's own
//!   `git-http-backend` behind a small TLS front (`mip-git-https-server` in the `argocd`
//!   binary) using the test cluster's serving certificate; its CA is put where the repo-server
//!   looks for per-host certificates (`$ARGOCD_TLS_DATA_PATH/127.0.0.1`).
//!
//! On a cluster without the [workload tier](crate::workloads) workloads never become healthy
//! (no scheduler, no kubelet): use ConfigMaps, Services and the like in test sources, and assert
//! sync status.
//!
//! Processes: Redis leads a process group of its own that the three Argo CD components join;
//! a watchdog (the same as the cluster's) kills the group and removes the data dir when the
//! test process dies, and `Drop` does the same at once.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::process::{Component, free_port, log_tails, pids, spawn_watchdog, stop_all, wait_for_port};
use crate::{FIELD_MANAGER, StartError, TestCluster, binaries, client_from, writeln_stderr};

/// Lines of each component log quoted when something fails.
const LOG_TAIL_LINES: usize = 40;
/// How long a component may take to listen after it starts (2 loaded cores, Go binaries of
/// 150 MB: the first start after a build is slow while the page cache fills).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(120);

/// Options for [`ArgoCd::start`].
#[derive(Debug, Clone)]
pub struct ArgoCdOptions {
    /// The application controller's resync period (`--app-resync`, jitter 0), and the
    /// ApplicationSet controller's requeue period. Argo CD's default is 120 s (+ 60 s jitter).
    pub resync: Duration,
    /// Extra `argocd-cm` entries, on top of (and overriding) [`default_argocd_cm`].
    pub argocd_cm: BTreeMap<String, String>,
    /// The dir with [`binaries::ARGOCD_BINARIES`]. `None`: [`binaries::argocd_bin_dir`]
    /// (builds when not cached).
    pub bin_dir: Option<PathBuf>,
    /// The process whose death stops Argo CD. `None`: this process.
    pub watch_pid: Option<u32>,
}

impl Default for ArgoCdOptions {
    fn default() -> Self {
        ArgoCdOptions {
            resync: Duration::from_secs(10),
            argocd_cm: BTreeMap::new(),
            bin_dir: None,
            watch_pid: None,
        }
    }
}

/// The `argocd-cm` settings of mip-infra's install (`argo-setup/patches/patch-argocd-cm.yaml`).
pub fn default_argocd_cm() -> BTreeMap<String, String> {
    [
        ("application.resourceTrackingMethod", "label"),
        ("application.instanceLabelKey", "argocd.argoproj.io/instanceTracking"),
        ("resource.respectRBAC", "normal"),
        ("kustomize.buildOptions", "--enable-helm"),
        ("installationID", "mip-team-argo-cd"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// Running Argo CD controllers for one [`TestCluster`]. Stopped on drop.
pub struct ArgoCd {
    namespace: String,
    bin_dir: PathBuf,
    data_dir: PathBuf,
    repo_dir: PathBuf,
    git_port: u16,
    controller_metrics_port: u16,
    startup: Duration,
    components: Vec<Component>,
    watchdog: Option<Child>,
}

/// The local ports of one Argo CD's processes.
struct Ports {
    redis: u16,
    git: u16,
    repo: u16,
    repo_metrics: u16,
    controller_metrics: u16,
    /// The ApplicationSet controller's metrics, probes and webhook.
    appset: [u16; 3],
}

impl Ports {
    /// Free ports, one for each.
    fn free() -> Result<Ports> {
        Ok(Ports {
            redis: free_port()?,
            git: free_port()?,
            repo: free_port()?,
            repo_metrics: free_port()?,
            controller_metrics: free_port()?,
            appset: [free_port()?, free_port()?, free_port()?],
        })
    }
}

/// The data dir's subdirectories: logs, Argo CD's data paths, Redis's.
fn create_data_dirs(dir: &Path) -> Result<()> {
    for sub in ["logs", "tmp", "home", "tls", "ssh", "gnupg", "gpg", "plugins", "redis"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).with_context(|| format!("failed to create `{}`", path.display()))?;
    }
    Ok(())
}

/// An Argo CD component's arguments: the log level, then `extra`.
fn component_args(extra: &[String]) -> Vec<String> {
    let mut args = vec!["--loglevel".to_owned(), "info".to_owned()];
    args.extend_from_slice(extra);
    args
}

impl ArgoCd {
    /// Starts Redis, the repo-server, the application controller and the ApplicationSet
    /// controller against `cluster`, in its Argo CD namespace.
    ///
    /// # Panics
    ///
    /// If anything fails to start, with the reason and the tail of each component log.
    pub fn start(cluster: &TestCluster, options: ArgoCdOptions) -> ArgoCd {
        match ArgoCd::try_start(cluster, options) {
            Ok(argocd) => argocd,
            Err(error) => panic!("{error}"),
        }
    }

    /// Like [`ArgoCd::start`], returning the failure instead of panicking. Blocking.
    pub fn try_start(cluster: &TestCluster, options: ArgoCdOptions) -> Result<ArgoCd, StartError> {
        let mut attempt = 1;
        loop {
            match ArgoCd::start_once(cluster, &options) {
                // Ports are picked free and released before the components bind them, so
                // another process can take one in between: then try again, with new ports.
                Err(error) if attempt < 3 && error.logs.contains("address already in use") => {
                    let _ = writeln_stderr(&format!(
                        "mip-test-support: Argo CD port clash on attempt {attempt}, retrying: {}",
                        error.reason
                    ));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn start_once(cluster: &TestCluster, options: &ArgoCdOptions) -> Result<ArgoCd, StartError> {
        let no_logs =
            |error: anyhow::Error| StartError { reason: format!("Argo CD: {error:#}"), logs: String::new() };
        let started = Instant::now();
        let bin_dir = match &options.bin_dir {
            Some(dir) => dir.clone(),
            None => binaries::argocd_bin_dir().map_err(no_logs)?,
        };
        let redis = binaries::redis_server().map_err(no_logs)?;
        let data_dir = tempfile::Builder::new()
            .prefix("mip-argocd-")
            .tempdir()
            .context("failed to create a temp dir")
            .map_err(no_logs)?
            .keep();
        let mut argocd = ArgoCd {
            namespace: cluster.argocd_namespace().to_owned(),
            bin_dir,
            repo_dir: data_dir.join("repo"),
            data_dir,
            git_port: 0,
            controller_metrics_port: 0,
            startup: Duration::ZERO,
            components: Vec::new(),
            watchdog: None,
        };
        // On error `argocd` is dropped after the logs are read: processes die, the dir goes.
        if let Err(error) = argocd.boot(cluster, options, &redis) {
            return Err(StartError { reason: format!("Argo CD: {error:#}"), logs: argocd.log_tails() });
        }
        argocd.startup = started.elapsed();
        let _ = writeln_stderr(&format!(
            "mip-test-support: Argo CD up in {:.1}s ({})",
            argocd.startup.as_secs_f64(),
            argocd.data_dir.display()
        ));
        Ok(argocd)
    }

    fn boot(&mut self, cluster: &TestCluster, options: &ArgoCdOptions, redis: &Path) -> Result<()> {
        let dir = self.data_dir.clone();
        create_data_dirs(&dir)?;
        init_repo(&self.repo_dir, &dir.join("home"))?;
        let ports = Ports::free()?;
        self.git_port = ports.git;
        self.controller_metrics_port = ports.controller_metrics;
        let resync = options.resync.as_secs().max(1).to_string();
        self.write_settings(cluster, options, &ports, &resync)?;
        let group = self.start_redis(redis, ports.redis, options)?;
        self.start_git_server(cluster, group)?;
        let kubeconfig = cluster.kubeconfig_path().to_owned();
        self.start_repo_server(&ports, &kubeconfig, &resync, group)?;
        self.start_controller(&ports, &kubeconfig, &resync, group)?;
        self.start_applicationset_controller(&ports, &kubeconfig, &resync, group)?;
        self.wait_until_listening(&ports)
    }

    /// Writes Argo CD's settings (`argocd-cm`, the command parameters) into the cluster.
    fn write_settings(
        &self,
        cluster: &TestCluster,
        options: &ArgoCdOptions,
        ports: &Ports,
        resync: &str,
    ) -> Result<()> {
        let mut argocd_cm = default_argocd_cm();
        argocd_cm.extend(options.argocd_cm.clone());
        let params = [
            ("redis.server", format!("127.0.0.1:{}", ports.redis)),
            ("repo.server", format!("127.0.0.1:{}", ports.repo)),
            ("controller.repo.server.plaintext", "true".to_owned()),
            ("applicationsetcontroller.repo.server.plaintext", "true".to_owned()),
            ("reposerver.disable.tls", "true".to_owned()),
            ("timeout.reconciliation", format!("{resync}s")),
        ];
        let kubeconfig = cluster.kubeconfig_path().to_owned();
        let namespace = self.namespace.clone();
        crate::block_on_private_thread(
            "configuration",
            configure(&kubeconfig, &namespace, &argocd_cm, &params),
        )
    }

    /// Starts Redis, leader of the process group the other components join (returned), with
    /// the watchdog on the watched process; waits until it listens.
    fn start_redis(&mut self, redis: &Path, port: u16, options: &ArgoCdOptions) -> Result<u32> {
        let dir = &self.data_dir;
        let redis_component = Component::spawn(
            "redis",
            redis,
            &[
                "--bind".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                dir.join("redis").display().to_string(),
            ],
            &dir.join("logs"),
            None,
        )?;
        let group = redis_component.child.id();
        self.components.push(redis_component);
        let watched = options.watch_pid.unwrap_or_else(std::process::id);
        self.watchdog = Some(spawn_watchdog(watched, group, &self.data_dir)?);
        wait_for_port(&mut self.components, "redis", port, LISTEN_TIMEOUT)?;
        Ok(group)
    }

    /// The HTTPS front of the repository, with the cluster's serving certificate
    /// (SANs 127.0.0.1 and localhost); the repo-server trusts the cluster's CA for this host.
    fn start_git_server(&mut self, cluster: &TestCluster, group: u32) -> Result<()> {
        let dir = &self.data_dir;
        let cluster_dir = cluster.data_dir();
        std::fs::copy(cluster_dir.join("ca.crt"), dir.join("tls/127.0.0.1"))
            .context("failed to copy the cluster CA")?;
        let exec_path = run_git(dir, &dir.join("home"), &["--exec-path"])?;
        let git_server = Component::spawn_with_env(
            "git-https",
            &self.bin_dir.join("argocd"),
            &[
                format!("127.0.0.1:{}", self.git_port),
                dir.display().to_string(),
                cluster_dir.join("apiserver.crt").display().to_string(),
                cluster_dir.join("apiserver.key").display().to_string(),
                Path::new(&exec_path).join("git-http-backend").display().to_string(),
            ],
            &[
                ("ARGOCD_BINARY_NAME".into(), "mip-git-https-server".into()),
                ("HOME".into(), dir.join("home").into_os_string()),
                ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
                ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
            ],
            &dir.join("logs"),
            Some(group),
        )?;
        self.components.push(git_server);
        Ok(())
    }

    /// Starts the repo-server, reading Redis.
    fn start_repo_server(
        &mut self,
        ports: &Ports,
        kubeconfig: &Path,
        resync: &str,
        group: u32,
    ) -> Result<()> {
        let args = component_args(&[
            "--address".into(),
            "127.0.0.1".into(),
            "--port".into(),
            ports.repo.to_string(),
            "--metrics-address".into(),
            "127.0.0.1".into(),
            "--metrics-port".into(),
            ports.repo_metrics.to_string(),
            "--redis".into(),
            format!("127.0.0.1:{}", ports.redis),
            "--disable-tls".into(),
            // New commits must show up within a resync, not after the 3 min default.
            "--revision-cache-expiration".into(),
            format!("{resync}s"),
        ]);
        self.spawn_argocd("argocd-repo-server", &args, kubeconfig, resync, group)
    }

    /// Starts the application controller, reading Redis and the repo-server.
    fn start_controller(&mut self, ports: &Ports, kubeconfig: &Path, resync: &str, group: u32) -> Result<()> {
        let args = component_args(&[
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--namespace".into(),
            self.namespace.clone(),
            "--redis".into(),
            format!("127.0.0.1:{}", ports.redis),
            "--repo-server".into(),
            format!("127.0.0.1:{}", ports.repo),
            "--repo-server-plaintext".into(),
            "--metrics-port".into(),
            ports.controller_metrics.to_string(),
            "--app-resync".into(),
            resync.to_owned(),
            "--app-resync-jitter".into(),
            "0".into(),
            "--self-heal-timeout-seconds".into(),
            "2".into(),
        ]);
        self.spawn_argocd("argocd-application-controller", &args, kubeconfig, resync, group)
    }

    /// Starts the ApplicationSet controller, reading the repo-server.
    fn start_applicationset_controller(
        &mut self,
        ports: &Ports,
        kubeconfig: &Path,
        resync: &str,
        group: u32,
    ) -> Result<()> {
        let [appset_metrics, appset_probe, appset_webhook] = ports.appset;
        let args = component_args(&[
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--namespace".into(),
            self.namespace.clone(),
            "--argocd-repo-server".into(),
            format!("127.0.0.1:{}", ports.repo),
            "--repo-server-plaintext".into(),
            "--metrics-addr".into(),
            format!("127.0.0.1:{appset_metrics}"),
            "--probe-addr".into(),
            format!("127.0.0.1:{appset_probe}"),
            "--webhook-addr".into(),
            format!("127.0.0.1:{appset_webhook}"),
        ]);
        self.spawn_argocd("argocd-applicationset-controller", &args, kubeconfig, resync, group)
    }

    /// Spawns the Argo CD component `binary` (of the bin dir) into the process group, with
    /// its environment.
    fn spawn_argocd(
        &mut self,
        binary: &'static str,
        args: &[String],
        kubeconfig: &Path,
        resync: &str,
        group: u32,
    ) -> Result<()> {
        let env = self.component_env(binary, kubeconfig, resync);
        let component = Component::spawn_with_env(
            binary,
            &self.bin_dir.join(binary),
            args,
            &env,
            &self.data_dir.join("logs"),
            Some(group),
        )?;
        self.components.push(component);
        Ok(())
    }

    /// The environment of an Argo CD component: the fake in-cluster mapping, the bin dir
    /// first on `PATH`, and every data path under the data dir.
    fn component_env(&self, binary: &str, kubeconfig: &Path, resync: &str) -> Vec<(String, OsString)> {
        let dir = &self.data_dir;
        let path = std::env::join_paths(
            std::iter::once(self.bin_dir.clone())
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap_or_default();
        let sub = |name: &str| dir.join(name).into_os_string();
        vec![
            ("ARGOCD_BINARY_NAME".into(), binary.into()),
            ("ARGOCD_FAKE_IN_CLUSTER".into(), "true".into()),
            ("KUBECONFIG".into(), kubeconfig.to_owned().into_os_string()),
            ("PATH".into(), path),
            ("HOME".into(), sub("home")),
            ("TMPDIR".into(), sub("tmp")),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("ARGOCD_TLS_DATA_PATH".into(), sub("tls")),
            ("ARGOCD_SSH_DATA_PATH".into(), sub("ssh")),
            ("ARGOCD_GNUPGHOME".into(), sub("gnupg")),
            ("ARGOCD_GPG_DATA_PATH".into(), sub("gpg")),
            ("ARGOCD_GPG_ENABLED".into(), "false".into()),
            ("ARGOCD_PLUGINSOCKFILEPATH".into(), sub("plugins")),
            ("ARGOCD_ASK_PASS_SOCK".into(), dir.join("tmp/ask-pass.sock").into_os_string()),
            ("ARGOCD_APPLICATIONSET_CONTROLLER_REQUEUE_AFTER".into(), format!("{resync}s").into()),
        ]
    }

    /// Waits until the Git server, the repo-server and both controllers listen.
    fn wait_until_listening(&mut self, ports: &Ports) -> Result<()> {
        wait_for_port(&mut self.components, "git-https", ports.git, LISTEN_TIMEOUT)?;
        wait_for_port(&mut self.components, "argocd-repo-server", ports.repo, LISTEN_TIMEOUT)?;
        wait_for_port(
            &mut self.components,
            "argocd-application-controller (metrics)",
            ports.controller_metrics,
            LISTEN_TIMEOUT,
        )?;
        wait_for_port(
            &mut self.components,
            "argocd-applicationset-controller (probes)",
            ports.appset[1],
            LISTEN_TIMEOUT,
        )
    }

    /// The Git repository's HTTPS URL, `https://127.0.0.1:<port>/repo` (branch `main`), for
    /// Argo CD sources and generators and for inventories.
    pub fn repo_url(&self) -> String {
        format!("https://127.0.0.1:{}/repo", self.git_port)
    }

    /// The application controller's Prometheus metrics (text format), e.g. each cluster's
    /// `argocd_cluster_connection_status`; empty when they cannot be read.
    pub fn controller_metrics(&self) -> String {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.controller_metrics_port)) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        let mut response = String::new();
        if stream.write_all(request.as_bytes()).is_err() || stream.read_to_string(&mut response).is_err() {
            return String::new();
        }
        response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
    }

    /// The same repository as a `file://` URL (Argo CD accepts it; mip inventories do not).
    pub fn file_repo_url(&self) -> String {
        format!("file://{}", self.repo_dir.display())
    }

    /// The Git work tree behind [`ArgoCd::repo_url`].
    pub fn repo_dir(&self) -> &Path {
        &self.repo_dir
    }

    /// Runs `mip render tree` in `dir` (`mip`: the binary, its inventory and environment),
    /// commits the tree as [`ArgoCd::commit_tree`] does and returns the commit.
    ///
    /// # Panics
    ///
    /// If the render fails, or as [`ArgoCd::commit_tree`].
    pub fn render_and_commit(&self, mip: crate::Mip, dir: &Path, message: &str) -> String {
        let o = mip.args(["render", "tree"]).dir(dir).run();
        assert_eq!(o.status.code(), Some(0), "mip render: {}", String::from_utf8_lossy(&o.stderr));
        self.commit_tree(&dir.join("tree"), message)
    }

    /// Replaces the repository's tree (everything but `.git`) with a copy of `tree`, commits
    /// it on `main` and returns the commit SHA.
    ///
    /// # Panics
    ///
    /// If copying or `git` fails.
    pub fn commit_tree(&self, tree: &Path, message: &str) -> String {
        match commit_tree(&self.repo_dir, &self.data_dir.join("home"), tree, message) {
            Ok(sha) => sha,
            Err(error) => panic!("failed to commit `{}`: {error:#}", tree.display()),
        }
    }

    /// Another repository served beside [`ArgoCd::repo_url`], as a site serves its mirror of
    /// an upstream one: `<data dir>/<name>` (created on first use), its tree replaced by a copy
    /// of `tree` and committed on `main`. Returns its HTTPS URL and the commit SHA.
    ///
    /// # Panics
    ///
    /// If `name` is not a plain lowercase name (`[a-z0-9-]`, not `repo`), or copying or `git`
    /// fails.
    pub fn serve_repo(&self, name: &str, tree: &Path, message: &str) -> (String, String) {
        let plain = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        assert!(plain && name != "repo" && name != "home", "`{name}` cannot name a served repository");
        let dir = self.data_dir.join(name);
        let home = self.data_dir.join("home");
        if !dir.join(".git").is_dir()
            && let Err(error) = init_repo(&dir, &home)
        {
            panic!("failed to create repository `{name}`: {error:#}");
        }
        match commit_tree(&dir, &home, tree, message) {
            Ok(sha) => (format!("https://127.0.0.1:{}/{name}", self.git_port), sha),
            Err(error) => panic!("failed to commit `{}` to `{name}`: {error:#}", tree.display()),
        }
    }

    /// A static Helm chart repository of the packaged charts in `charts`, as a site serves its
    /// mirror of an upstream one (`<data dir>/<name>/`, indexed by the tier's `helm`; plain
    /// HTTP on loopback, see [`crate::helm_repo`]). Returns its URL.
    ///
    /// # Panics
    /// If `name` is not a plain lowercase name or the repository cannot be served.
    pub fn serve_helm_repo(&self, name: &str, charts: &Path) -> String {
        let plain = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        assert!(plain && name != "repo" && name != "home", "`{name}` cannot name a served repository");
        match crate::helm_repo::serve(charts, &self.data_dir.join(name), &self.bin_dir.join("helm")) {
            Ok(url) => url,
            Err(error) => panic!("failed to serve the Helm repository `{name}`: {error:#}"),
        }
    }

    /// The Argo CD namespace (the cluster's).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The dir with `argocd`, its component links, `helm` and `kustomize`.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The data dir (`logs/<component>.log`, the repository, Redis, temp dirs).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How long [`ArgoCd::start`] took, build check included.
    pub fn startup_duration(&self) -> Duration {
        self.startup
    }

    /// `(component name, pid)` of every process (Redis first, then the Git server, the
    /// repo-server and the two controllers).
    pub fn component_pids(&self) -> Vec<(&'static str, u32)> {
        pids(&self.components)
    }

    /// The watchdog's pid.
    pub fn watchdog_pid(&self) -> Option<u32> {
        self.watchdog.as_ref().map(Child::id)
    }

    /// Fails if a component has exited (with the log tails).
    pub fn check_running(&mut self) -> Result<()> {
        for component in &mut self.components {
            if let Err(error) = component.check_running() {
                bail!("{error:#}\n{}", self.log_tails());
            }
        }
        Ok(())
    }

    /// The last lines of each component's log.
    pub fn log_tails(&self) -> String {
        log_tails(&self.components, LOG_TAIL_LINES)
    }

    /// Stops Argo CD now (the same as dropping it).
    pub fn stop(self) {}
}

impl Drop for ArgoCd {
    fn drop(&mut self) {
        stop_all(&mut self.components, self.watchdog.take(), &self.data_dir);
    }
}

/// The `argoproj.io/v1alpha1` resource of `kind` (`Application`, `AppProject`, `ApplicationSet`).
pub fn argo_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind))
}

/// `status.sync.status` and `status.health.status` of an Application (`""` when unset).
pub fn application_status(app: &DynamicObject) -> (String, String) {
    let field = |pointer: &str| {
        app.data.pointer(pointer).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned()
    };
    (field("/status/sync/status"), field("/status/health/status"))
}

/// Writes Argo CD's settings and the `default` project.
async fn configure(
    kubeconfig: &Path,
    namespace: &str,
    argocd_cm: &BTreeMap<String, String>,
    params: &[(&str, String)],
) -> Result<()> {
    let client = client_from(kubeconfig).await?;
    let labels = serde_json::json!({"app.kubernetes.io/part-of": "argocd"});
    let apply = PatchParams::apply(FIELD_MANAGER);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for (name, data) in [
        ("argocd-cm", serde_json::to_value(argocd_cm)?),
        (
            "argocd-cmd-params-cm",
            params
                .iter()
                .map(|(key, value)| ((*key).to_owned(), serde_json::Value::from(value.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        ),
    ] {
        let cm = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels},
            "data": data,
        });
        configmaps
            .patch(name, &apply, &Patch::Apply(&cm))
            .await
            .with_context(|| format!("failed to apply ConfigMap `{name}`"))?;
    }
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "argocd-secret", "labels": labels},
        "stringData": {"server.secretkey": random_key()},
    });
    Api::<Secret>::namespaced(client.clone(), namespace)
        .patch("argocd-secret", &apply, &Patch::Apply(&secret))
        .await
        .context("failed to apply Secret `argocd-secret`")?;

    // What argocd-server's initializeDefaultProject creates when `default` is missing.
    let projects: Api<DynamicObject> = Api::namespaced_with(client, namespace, &argo_resource("AppProject"));
    let default: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }))?;
    let params = PostParams { field_manager: Some("argocd-server".to_owned()), ..PostParams::default() };
    match projects.create(&params, &default).await {
        Ok(_) => {}
        Err(kube::Error::Api(response)) if response.code == 409 => {}
        Err(error) => return Err(error).context("failed to create AppProject `default`"),
    }
    Ok(())
}

/// 32 random alphanumerics (for `server.secretkey`; the test cluster is thrown away).
fn random_key() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    while out.len() < 32 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(out.len());
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

/// A `git` command on `repo`, isolated from the user's and the system's configuration.
fn git(repo: &Path, home: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(repo)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "mip-test-support")
        .env("GIT_AUTHOR_EMAIL", "mip-test-support@mip.invalid")
        .env("GIT_COMMITTER_NAME", "mip-test-support")
        .env("GIT_COMMITTER_EMAIL", "mip-test-support@mip.invalid")
        .stdin(Stdio::null());
    command
}

fn run_git(repo: &Path, home: &Path, args: &[&str]) -> Result<String> {
    let output = git(repo, home)
        .args(args)
        .output()
        .with_context(|| format!("failed to run `git {}` (is git installed?)", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "`git {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A repository with branch `main` and one commit (so that `HEAD` resolves).
fn init_repo(repo: &Path, home: &Path) -> Result<()> {
    std::fs::create_dir_all(repo).with_context(|| format!("failed to create `{}`", repo.display()))?;
    run_git(repo, home, &["init", "-q", "-b", "main"])?;
    std::fs::write(repo.join("README.md"), "test repository of mip-test-support\n")
        .context("failed to write README.md")?;
    run_git(repo, home, &["add", "-A"])?;
    run_git(repo, home, &["commit", "-q", "-m", "initial commit"])?;
    Ok(())
}

fn commit_tree(repo: &Path, home: &Path, tree: &Path, message: &str) -> Result<String> {
    for entry in std::fs::read_dir(repo).with_context(|| format!("failed to read `{}`", repo.display()))? {
        let path = entry?.path();
        if path.file_name().is_some_and(|name| name == ".git") {
            continue;
        }
        if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) }
            .with_context(|| format!("failed to remove `{}`", path.display()))?;
    }
    copy_dir(tree, repo)?;
    run_git(repo, home, &["add", "-A"])?;
    run_git(repo, home, &["commit", "-q", "--allow-empty", "-m", message])?;
    run_git(repo, home, &["rev-parse", "HEAD"])
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("failed to create `{}`", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("failed to read `{}`", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if entry.file_name() != ".git" {
                copy_dir(&entry.path(), &target)?;
            }
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("failed to copy `{}`", entry.path().display()))?;
        }
    }
    Ok(())
}
