//! What the CLI gives the engine: the connection (`mip-kube`), the cluster state backend
//! registered beside the engine's local one, secret sources read from the environment, files
//! and the terminal, a confirmation prompt, and progress on stderr.
#![expect(clippy::print_stderr, reason = "progress and prompts go to stderr")]

use crate::cli::{ClusterArgs, ConnectArgs, LockArgs, LockedClusterArgs, StateArgs, StateBackendArg};
use crate::contract::{FailedItem, NoticeEvent, ProgressEvent, SkippedItem};
use crate::views;
use base64::Engine as _;
use mip_core::cluster::RequestCounts;
use mip_core::{Diagnostics, Sensitive, SensitiveSource};
use mip_engine::backend::{BackendKind, Backends, StateFlags, StateSpec};
use mip_engine::ops::Env;
use mip_engine::ops::Plan;
use mip_engine::seams::Readiness;
use mip_engine::seams::{
    Answer, Confirm, Connected, Connector, Event, Hook, Notice, Operation, SecretResolver, Skip, SourceError,
    Target,
};
use mip_kube::{ClusterBackend, ClusterStateConfig, ConnectOptions, KubeCluster};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Connects with `mip-kube` as the flags say.
pub struct KubeConnector(pub ConnectOptions);

impl KubeConnector {
    /// From the connection flags.
    pub fn new(args: &ConnectArgs) -> KubeConnector {
        KubeConnector(ConnectOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            timeout: args.request_timeout.max(Duration::from_millis(100)),
        })
    }
}

impl Connector for KubeConnector {
    type Cluster = KubeCluster;

    async fn connect(&self) -> Result<Connected<KubeCluster>, mip_core::cluster::ClusterError> {
        let cluster = KubeCluster::connect(self.0.clone()).await?;
        let context = Some(cluster.context_name().to_owned());
        Ok(Connected { cluster, context })
    }

    async fn connect_to(
        &self,
        target: &Target,
    ) -> Result<Connected<KubeCluster>, mip_core::cluster::ClusterError> {
        let options = ConnectOptions { context: Some(target.context.clone()), ..self.0.clone() };
        let cluster = KubeCluster::connect(options).await?;
        let context = Some(cluster.context_name().to_owned());
        Ok(Connected { cluster, context })
    }
}

/// The engine's backends plus the cluster one (`mip-kube`), reached through `connect`.
pub fn backends(connect: &ConnectOptions) -> Backends<KubeCluster> {
    let mut b = Backends::default();
    let connect = connect.clone();
    b.register(
        BackendKind::Cluster,
        Box::new(move |spec: &StateSpec, cluster: Option<&KubeCluster>| {
            let defaults = ClusterStateConfig::default();
            let config = ClusterStateConfig {
                namespace: spec.namespace.clone().unwrap_or(defaults.namespace),
                name: spec.cluster_name(spec.name.as_deref().unwrap_or(&defaults.name)),
                lock_ttl: spec.lock_ttl,
                chunk_bytes: spec.chunk_bytes.max(1),
                history_limit: spec.history_limit,
            };
            let backend = ClusterBackend::new(connect.clone(), config);
            Box::new(match cluster {
                Some(c) => backend.reading_through(c),
                None => backend,
            })
        }),
    );
    b
}

/// A backend kind as the flags name it.
pub fn kind(arg: StateBackendArg) -> BackendKind {
    match arg {
        StateBackendArg::Local => BackendKind::Local,
        StateBackendArg::Cluster => BackendKind::Cluster,
    }
}

/// The state and lock flags.
pub fn state_flags(args: &StateArgs, lock: &LockArgs) -> StateFlags {
    StateFlags {
        backend: args.state_backend.map(kind),
        dir: args.state_dir.clone(),
        namespace: args.state_namespace.clone(),
        name: args.state_name.clone(),
        lock_ttl: lock.lock_ttl.max(Duration::from_secs(1)),
        lock_timeout: lock.lock_timeout,
        chunk_bytes: args.state_chunk_bytes,
        history_limit: args.history_limit,
    }
}

/// Everything a command's [`Env`] borrows, built from its flags.
pub struct Parts {
    /// The connector.
    pub connector: KubeConnector,
    /// The backends.
    pub backends: Backends<KubeCluster>,
    /// The state flags.
    pub state: StateFlags,
    /// The progress hook.
    pub progress: Arc<Progress>,
}

impl Parts {
    /// From the cluster and state flags of a command that takes no lock (the lock settings
    /// keep their defaults, unused).
    pub fn new(args: &ClusterArgs) -> Parts {
        Parts::with_lock(args, &LockArgs::default())
    }

    /// From the cluster, state and lock flags of a command that writes under the lock.
    pub fn locking(args: &LockedClusterArgs) -> Parts {
        Parts::with_lock(&args.cluster, &args.lock)
    }

    fn with_lock(args: &ClusterArgs, lock: &LockArgs) -> Parts {
        let connector = KubeConnector::new(&args.connect);
        let backends = backends(&connector.0);
        Parts {
            connector,
            backends,
            state: state_flags(&args.state, lock),
            progress: Arc::new(Progress::default()),
        }
    }

    /// The engine's environment.
    pub fn env(&self) -> Env<'_, KubeConnector> {
        Env::new(&self.connector, &self.backends, &self.state, Arc::clone(&self.progress) as Arc<dyn Hook>)
    }
}

/// The async runtime of a command (two workers: the machine mip runs on is often small).
///
/// # Errors
/// When the runtime cannot start.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// Reads secret values: env, file (relative to the inventory), or a hidden prompt.
pub struct Resolver {
    /// The inventory's directory.
    pub base: PathBuf,
}

impl SecretResolver for Resolver {
    fn resolve(&self, source: &SensitiveSource) -> Result<Sensitive, SourceError> {
        let value = self.resolve_inner(source)?;
        if views::verbosity() >= 2 {
            // Proof of what was used without showing it: length and a salted hash.
            let hash =
                mip_core::canonical::salted_hash("mip-verbose-log", &source.to_string(), value.expose());
            views::note(&format!("  secret from {source}: {} bytes, {hash}", value.len()));
        }
        Ok(value)
    }
}

impl Resolver {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, SourceError> {
        let p = self.base.join(path);
        std::fs::read(&p)
            .map_err(|e| SourceError::File { path: p.display().to_string(), reason: e.to_string() })
    }

    fn resolve_inner(&self, source: &SensitiveSource) -> Result<Sensitive, SourceError> {
        match source {
            SensitiveSource::Env(name) => {
                std::env::var(name).map(Sensitive::new).map_err(|_| SourceError::EnvNotSet(name.clone()))
            }
            SensitiveSource::File(path) => {
                let bytes = self.read_file(path)?;
                String::from_utf8(bytes).map(Sensitive::new).map_err(|_| SourceError::File {
                    path: self.base.join(path).display().to_string(),
                    reason: "not UTF-8 text".to_owned(),
                })
            }
            SensitiveSource::Prompt(text) => {
                if !std::io::stdin().is_terminal() {
                    return Err(SourceError::NeedsTerminal(text.clone()));
                }
                rpassword::prompt_password(format!("{text}: "))
                    .map(Sensitive::new)
                    .map_err(|e| SourceError::Prompt(e.to_string()))
            }
            SensitiveSource::Generated => Err(SourceError::Generated),
            SensitiveSource::ClusterConfig { token, client_certificate, client_key, ca_file } => {
                let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
                let ca = ca_file.as_ref().map(|path| self.read_file(path)).transpose()?.map(|pem| b64(&pem));
                let token = token.as_ref().map(|t| self.resolve(t)).transpose()?;
                let client = match (client_certificate, client_key) {
                    (Some(cert), Some(key)) => Some((
                        b64(self.resolve(cert)?.expose().as_bytes()),
                        Sensitive::new(b64(self.resolve(key)?.expose().as_bytes())),
                    )),
                    _ => None,
                };
                let client = client.as_ref().map(|(cert, key)| (cert.as_str(), key));
                Ok(mip_core::argo_cluster_config(token.as_ref(), client, ca.as_deref()))
            }
            SensitiveSource::ServiceAccountToken { .. } | SensitiveSource::SecretKey { .. } => {
                Err(SourceError::FromCluster)
            }
        }
    }
}

/// Asks on the terminal; only `yes` is accepted.
pub struct TerminalConfirm;

impl Confirm for TerminalConfirm {
    fn confirm(&self, question: &str) -> Answer {
        if !std::io::stdin().is_terminal() {
            return Answer::CannotAsk;
        }
        eprint!("{question} Only `yes` is accepted: ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(_) if line.trim() == "yes" => Answer::Yes,
            _ => Answer::No,
        }
    }

    fn asks_a_person(&self) -> bool {
        std::io::stdin().is_terminal()
    }
}

/// `--auto-approve`, or the terminal.
pub fn confirmation(auto_approve: bool) -> Box<dyn Confirm> {
    if auto_approve { Box::new(mip_engine::seams::AutoApprove) } else { Box::new(TerminalConfirm) }
}

/// Progress on stderr: a progress bar (indicatif) on a terminal at the default verbosity, else
/// one line per finished change, for logs and CI. Failures and skips are always lines of their
/// own. Only addresses are shown, never a value.
#[derive(Default)]
pub struct Progress {
    /// JSON lines on stdout instead of text on stderr.
    json: std::sync::atomic::AtomicBool,
    multi: indicatif::MultiProgress,
    bar: Mutex<Option<indicatif::ProgressBar>>,
    awaited: Mutex<std::collections::BTreeMap<mip_core::ObjectRef, indicatif::ProgressBar>>,
}

impl Progress {
    fn bar(&self) -> Option<indicatif::ProgressBar> {
        self.bar.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn start(&self, writes: usize) {
        if writes == 0 || !std::io::stderr().is_terminal() || views::verbosity() > 0 || crate::logging::json()
        {
            return;
        }
        let bar = self.multi.add(indicatif::ProgressBar::new(writes as u64));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.bar.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar);
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(PoisonError::into_inner).take() {
            bar.finish_and_clear();
        }
        for (_, line) in std::mem::take(&mut *self.awaited.lock().unwrap_or_else(PoisonError::into_inner)) {
            line.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match self.bar() {
            Some(bar) => bar.println(text),
            None => views::note(&text),
        }
    }

    /// An object Argo CD reconciles changed state: on a terminal, its own line under the bar
    /// (replaced as it changes, ✓ once ready); in logs, one line per change.
    fn awaited(&self, a: &mip_core::ObjectRef, readiness: &Readiness) {
        let text = match readiness {
            Readiness::Ready => format!("  ✓ {a}: ready"),
            Readiness::Gone => format!("  ✓ {a}: removed by Argo CD"),
            Readiness::NotReady(why) => format!("  … {a}: {why}"),
        };
        let Some(bar) = self.bar() else {
            eprintln!("{text}");
            return;
        };
        let mut lines = self.awaited.lock().unwrap_or_else(PoisonError::into_inner);
        let line = lines.entry(a.clone()).or_insert_with(|| {
            let line = self.multi.insert_after(&bar, indicatif::ProgressBar::new_spinner());
            line.enable_steady_tick(Duration::from_millis(120));
            line
        });
        match readiness {
            Readiness::Ready | Readiness::Gone => line.finish_with_message(text),
            Readiness::NotReady(_) => line.set_message(text),
        }
    }

    fn tick(&self, message: Option<String>) {
        if let Some(bar) = self.bar() {
            bar.inc(1);
            if let Some(m) = message {
                bar.set_message(m);
            }
        }
    }
}

impl Progress {
    /// Progress as JSON lines on stdout (`apply --output json`).
    pub fn set_json(&self, json: bool) {
        self.json.store(json, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_json(&self) -> bool {
        self.json.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One JSON line on stdout (a closed pipe ends nothing: the apply goes on).
    fn emit(&self, event: &ProgressEvent) {
        match serde_json::to_string(event) {
            Ok(line) => {
                let _ = views::stdout(&format!("{line}\n"));
            }
            Err(e) => views::error(&format!("cannot write a progress event: {e}"), None),
        }
    }

    /// The last JSON line of an apply: what it did.
    pub fn outcome(&self, applied: &mip_engine::ops::apply::Applied) {
        use mip_engine::ops::apply::Applied;
        let event = match applied {
            Applied::NoChanges => ProgressEvent::Outcome {
                complete: true,
                applied: Vec::new(),
                failed: None,
                skipped: None,
                pending: None,
                serial: None,
                interrupted: None,
            },
            Applied::NotReady(pending) => ProgressEvent::Outcome {
                complete: false,
                applied: Vec::new(),
                failed: None,
                skipped: None,
                pending: Some(pending.clone()),
                serial: None,
                interrupted: None,
            },
            Applied::Ran(o) => ProgressEvent::Outcome {
                complete: o.complete(),
                applied: o.applied.clone(),
                failed: Some(
                    o.failed
                        .iter()
                        .map(|f| FailedItem { address: f.address.clone(), error: f.error.to_string() })
                        .collect(),
                ),
                skipped: Some(
                    o.skipped
                        .iter()
                        .map(|(a, why)| SkippedItem { address: a.clone(), skip: why.clone() })
                        .collect(),
                ),
                pending: Some(o.pending.clone()),
                serial: Some(o.serial),
                interrupted: Some(o.interrupted),
            },
        };
        self.emit(&event);
    }

    /// An event as one JSON line; `None` for what only a terminal shows.
    fn event_json(e: Event) -> Option<ProgressEvent> {
        Some(match e {
            Event::Writing(changes) => ProgressEvent::Writing { changes },
            Event::Start(address, action) => ProgressEvent::Start { address, action },
            Event::Done(address, action) => ProgressEvent::Done { address, action },
            Event::Failed(address, error) => ProgressEvent::Failed { address, error },
            Event::Skipped(address, skip) => ProgressEvent::Skipped { address, skip },
            Event::Ready(address, readiness) => ProgressEvent::Readiness { address, readiness },
            Event::Waiting(not_ready) => ProgressEvent::Waiting { not_ready },
            Event::Notice(Notice::InventoryChangedSincePlan { inventory }) => {
                ProgressEvent::Notice(NoticeEvent::InventoryChangedSincePlan { inventory })
            }
            Event::Notice(Notice::KeptProtected(address)) => {
                ProgressEvent::Notice(NoticeEvent::KeptProtected { address })
            }
            Event::Notice(Notice::NotWaiting(changes)) => {
                ProgressEvent::Notice(NoticeEvent::NotWaiting { changes })
            }
            Event::Finished => return None,
        })
    }
}

impl Hook for Progress {
    fn event(&self, e: Event) {
        if self.is_json() {
            if let Some(event) = Progress::event_json(e) {
                self.emit(&event);
            }
            return;
        }
        match e {
            Event::Writing(n) => self.start(n),
            Event::Finished => self.finish(),
            Event::Start(a, action) if views::verbosity() >= 1 => {
                self.line(format!("{:>3} {a}: {action}…", action.symbol()));
            }
            Event::Start(..) => {}
            Event::Done(a, action) => match self.bar() {
                Some(_) => self.tick(Some(format!("{} {a}", action.symbol()))),
                None => views::note(&format!("{:>3} {a}: {action} done", action.symbol())),
            },
            Event::Failed(a, err) => {
                self.tick(None);
                self.line(format!("  ! {a}: failed: {err}"));
            }
            Event::Skipped(a, why) => {
                self.tick(None);
                let why = match why {
                    Skip::DependencyFailed(because) => format!("depends on failed `{because}`"),
                    Skip::Interrupted => "interrupted before it started".to_owned(),
                    Skip::Unreachable => "its dependencies were never done".to_owned(),
                    Skip::GateNotReady(gate) => format!("waits for `{gate}`, not ready in time"),
                };
                self.line(format!("  - {a}: skipped ({why})"));
            }
            Event::Ready(a, readiness) => self.awaited(&a, &readiness),
            Event::Waiting(n) if n > 0 => {
                if let Some(bar) = self.bar() {
                    bar.set_message(format!("waiting for {n} object(s) in Argo CD"));
                }
            }
            Event::Waiting(_) => self.line("  ✓ everything Argo CD reconciles is ready".to_owned()),
            Event::Notice(Notice::NotWaiting(changes)) => views::note(&format!(
                "note: `--wait-timeout 0`: not waiting for Argo CD, so {} change(s) are written without the objects Argo CD generates that they depend on: {}",
                changes.len(),
                changes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            )),
            Event::Notice(Notice::InventoryChangedSincePlan { inventory }) => views::note(&format!(
                "note: the inventory changed since the plan; applying the plan as saved (`{inventory}`)"
            )),
            Event::Notice(Notice::KeptProtected(a)) => views::note(&format!(
                "  kept {a} (pass `--include-protected` to delete namespaces, AppProjects and CRDs)"
            )),
        }
    }

    fn warnings(&self, d: &Diagnostics) {
        views::diagnostics(d);
    }

    fn edit(&self, consequences: &mip_engine::ops::edit::Consequences) {
        crate::commands::edit::consequences(consequences);
    }

    fn plan(&self, plan: &Plan, operation: Operation) {
        match operation {
            Operation::Destroy => {
                for c in &plan.changes {
                    views::note(&format!("  - {} ({})", c.address, c.purpose));
                }
            }
            _ if self.is_json() => {
                self.emit(&ProgressEvent::Plan { summary: plan.summary.clone(), state: plan.state.clone() });
            }
            _ => {
                if let Err(e) =
                    views::stream_stdout(|mut w| mip_engine::ops::plan_views::write_text(plan, &mut w))
                {
                    views::error(&format!("cannot show the plan: {e}"), None);
                }
            }
        }
    }

    fn requests(&self, r: RequestCounts) {
        if std::env::var_os("MIP_STATS").is_some() || views::verbosity() >= 1 {
            views::note(&format!(
                "api requests: {} reads, {} writes ({} dry runs)",
                r.reads, r.writes, r.dry_runs
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_certificate_config_carries_certificate_key_and_ca_as_argo_cd_reads_them() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("c.crt"), "CERT-PEM").expect("write");
        std::fs::write(dir.path().join("c.key"), "KEY-PEM").expect("write");
        std::fs::write(dir.path().join("ca.pem"), "CA-PEM").expect("write");
        let resolver = Resolver { base: dir.path().to_owned() };
        let source = SensitiveSource::ClusterConfig {
            token: None,
            client_certificate: Some(Box::new(SensitiveSource::File("c.crt".into()))),
            client_key: Some(Box::new(SensitiveSource::File("c.key".into()))),
            ca_file: Some("ca.pem".into()),
        };
        let config: serde_json::Value =
            serde_json::from_str(resolver.resolve(&source).expect("resolved").expose()).expect("JSON");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(config["tlsClientConfig"]["certData"], b64("CERT-PEM"));
        assert_eq!(config["tlsClientConfig"]["keyData"], b64("KEY-PEM"));
        assert_eq!(config["tlsClientConfig"]["caData"], b64("CA-PEM"));
        assert!(config.get("bearerToken").is_none());
        let carried = SensitiveSource::ServiceAccountToken {
            secret: mip_core::ObjectRef::new("v1", "Secret", None, "t"),
        };
        assert!(matches!(resolver.resolve(&carried), Err(SourceError::FromCluster)), "the engine's job");
    }
}
