//! The Kubernetes API client of mip: [`KubeCluster`] implements
//! [`mip_core::cluster::Cluster`] with `kube`, and is the only crate that names `kube` or
//! `k8s-openapi` (the CLI injects it into the engine). Its [`state`] module keeps mip's state in
//! the cluster ([`ClusterStore`], a `mip_state::StateStore` locked by a Lease).
//!
//! # Why it looks like this
//!
//! - **Objects are JSON, requests are raw.** Manifests arrive as `serde_json::Value` and are sent
//!   as they are (a Secret's `stringData` included); responses come back as `Value` without a
//!   round trip through typed structs, so no field the server sends is lost or reformatted.
//!   Items of a LIST get the `apiVersion` and `kind` the server leaves out for built-in kinds.
//! - **Few requests.** One client (one connection pool) for the life of the [`KubeCluster`];
//!   discovery fetches only the group-versions mip uses, once (a kind missing from the cache,
//!   say one whose CRD mip has just applied, is looked up again);
//!   [`list`](Cluster::list) is one request per 500 objects. [`KubeCluster::requests`] counts every
//!   request, discovery included, so the engine can prove a plan wrote nothing and benchmarks can
//!   compare with kubectl.
//! - **Server-side apply, forced only when asked.** Field manager [`FIELD_MANAGER`] and strict
//!   field validation. Without [`ApplyOptions::force`] a field another manager (Argo CD's
//!   `argocd-controller`) set to a different value is a [`ClusterError::Conflict`] naming that
//!   manager, never silently taken over (taking it would start a tug of war with Argo CD's
//!   self-heal); an unknown field is an error instead of being dropped with a warning (which
//!   would look like endless drift).
//! - **Bounded waiting.** Connect, read and write timeouts are all [`ConnectOptions::timeout`],
//!   so an unreachable API server (or proxy) is a [`ClusterError::Unreachable`] within about that
//!   time, never a hang. [`KubeCluster::connect`] itself sends nothing.
//! - **Transient failures are retried** within that same timeout (a restarting API server, a
//!   connection reset mid-response, 503/504), and a 429 as long as the server's `Retry-After`
//!   says (up to six timeouts); a throttling server lowers the write concurrency (AIMD, FIFO).
//!   A LIST whose continue token expired is read again whole. See the `retry` module;
//!   [`KubeCluster::retries`] counts it all.
//! - **No secret in an error or a log.** Errors carry the server's message (for Secrets with the
//!   values it quotes back redacted), never a request body; this crate logs nothing, and
//!   [`KubeCluster`]'s `Debug` shows only the context, server and proxy.
//!
//! # Proxies
//!
//! kube 5 reads the proxy from the kubeconfig cluster's `proxy-url`, else from `HTTPS_PROXY` /
//! `https_proxy`, but then checks `NO_PROXY` against the *proxy's* host instead of the API
//! server's: with the usual `NO_PROXY=localhost,127.0.0.1`, a tunnel such as
//! `HTTPS_PROXY=socks5://127.0.0.1:1080` (`ssh -D 1080`) would be dropped without a word. So
//! mip chooses the proxy itself:
//!
//! 1. the cluster's `proxy-url` in the kubeconfig, always (as kubectl does);
//! 2. otherwise `HTTPS_PROXY`/`https_proxy` for an `https://` server (`HTTP_PROXY`/`http_proxy`
//!    for `http://`), unless `NO_PROXY`/`no_proxy` (`*`, names, `.domain` suffixes, IPs, CIDRs,
//!    optional `:port`) matches the API server's host.
//!
//! Schemes: `socks5://` (and `socks5h://`, the same thing here: the proxy resolves names),
//! `http://` and `https://` (CONNECT tunnels). [`KubeCluster::proxy_url`] says which one is in
//! use, and [`ClusterError::Unreachable`] names it.
//!
//! # Example
//!
//! ```no_run
//! use mip_core::{ObjectRef, cluster::{ApplyOptions, Cluster, KindRef}};
//! use mip_kube::{ConnectOptions, KubeCluster};
//!
//! # async fn example() -> Result<(), mip_core::cluster::ClusterError> {
//! let cluster = KubeCluster::connect(ConnectOptions {
//!     context: Some("mip-prod".into()),
//!     ..ConnectOptions::default()
//! })
//! .await?;
//! let kind = KindRef { group: "argoproj.io".into(), version: "v1alpha1".into(), kind: "AppProject".into() };
//! let projects = cluster.list(&kind, Some("argocd"), None).await?;
//! let addr = ObjectRef::new("v1", "ConfigMap", Some("argocd"), "mip-marker");
//! let manifest = serde_json::json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "mip-marker", "namespace": "argocd"},
//!     "data": {"projects": projects.len().to_string()},
//! });
//! cluster.apply(&addr, &manifest, ApplyOptions { dry_run: true, force: false }).await?;
//! println!("{} requests", cluster.requests().reads);
//! # Ok(())
//! # }
//! ```

mod backend;
mod config;
mod discovery;
mod error;
mod retry;
pub mod state;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, GetParams, ListParams, Patch, PatchParams, ValidationDirective};
use kube::core::{DynamicObject, Request, Resource as _};
use mip_core::ObjectRef;
use mip_core::cluster::{ApplyOptions, Cluster, ClusterError, KindRef, RequestCounts};
use serde_json::Value;

pub use crate::backend::ClusterBackend;
use crate::discovery::{Kinds, Resource};
use crate::error::{Endpoint, Operation};
pub use crate::retry::RetryCounts;
pub use crate::state::{ClusterStateConfig, ClusterStore, read_state};

/// The field manager of every apply.
pub use mip_core::FIELD_MANAGER;

/// The default of [`ConnectOptions::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `Accept` header asking the API server for `PartialObjectMetadata` instead of the whole
/// object (honoured for the responses of writes too).
const METADATA_ONLY: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

/// Objects per LIST page.
const PAGE_SIZE: u32 = 500;

/// How to reach the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The kubeconfig file; `None` reads `KUBECONFIG` (several files merged, as kubectl does),
    /// else `~/.kube/config`, else in a pod its ServiceAccount (context `in-cluster`).
    pub kubeconfig: Option<PathBuf>,
    /// The context; `None` uses the kubeconfig's `current-context`.
    pub context: Option<String>,
    /// Bound on connecting (TCP, proxy handshake and TLS together) and on each wait for the
    /// server to send or accept data. Default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { kubeconfig: None, context: None, timeout: DEFAULT_TIMEOUT }
    }
}

#[derive(Default)]
struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
    dry_runs: AtomicU64,
}

/// A Kubernetes API server reached through one kubeconfig context. See the [crate docs](crate).
///
/// Cheap to share behind an `Arc` (or by reference): every method takes `&self` and requests may
/// run concurrently over the one connection pool.
pub struct KubeCluster {
    pub(crate) client: kube::Client,
    context: String,
    server: String,
    proxy: Option<String>,
    pub(crate) timeout: Duration,
    discovery: discovery::Cache,
    counters: Arc<Counters>,
    /// Retries and the adaptive write concurrency (shared with the state store's handle).
    pub(crate) limiter: Arc<retry::Limiter>,
}

impl fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeCluster")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("proxy", &self.proxy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// Loads the kubeconfig, picks the context and builds the client. Sends no request: an
    /// unreachable server shows on the first call.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Other`] when the kubeconfig cannot be read or parsed, names no context,
    /// lacks the named one, or holds unusable credentials, certificates or proxy URL.
    pub async fn connect(opts: ConnectOptions) -> Result<KubeCluster, ClusterError> {
        let env = |name: &str| std::env::var(name).ok();
        let loaded = config::load(&opts, &env).await?;
        let client = kube::Client::try_from(loaded.config).map_err(|e| ClusterError::Other {
            operation: format!("build a client for context `{}`", loaded.context),
            message: error::chain(&e),
        })?;
        Ok(KubeCluster {
            client,
            context: loaded.context,
            server: loaded.server,
            proxy: loaded.proxy,
            timeout: opts.timeout,
            discovery: discovery::Cache::default(),
            counters: Arc::default(),
            limiter: Arc::default(),
        })
    }

    /// Another handle on the same client and request counters (for the state store).
    fn clone_for_state(&self) -> KubeCluster {
        KubeCluster {
            client: self.client.clone(),
            context: self.context.clone(),
            server: self.server.clone(),
            proxy: self.proxy.clone(),
            timeout: self.timeout,
            discovery: discovery::Cache::default(),
            counters: Arc::clone(&self.counters),
            limiter: Arc::clone(&self.limiter),
        }
    }

    /// The kubeconfig context in use.
    pub fn context_name(&self) -> &str {
        &self.context
    }

    /// The proxy in use, without credentials.
    pub fn proxy_url(&self) -> Option<&str> {
        self.proxy.as_deref()
    }

    /// The connect and read timeout, which is also each request's retry budget.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many attempts were repeated after transient failures (429s among them) and how low
    /// the adaptive write concurrency went; see the `retry` module.
    pub fn retries(&self) -> RetryCounts {
        self.limiter.counts()
    }

    /// Sends `request`, retrying transient failures within the timeout (honouring the
    /// server's `Retry-After`); a write first waits for a slot of the adaptive write limit.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: http::Request<Vec<u8>>,
        write: bool,
    ) -> Result<T, kube::Error> {
        let mut budget = retry::Budget::new(self.timeout);
        loop {
            // A write waits for its turn in the adaptive limit; that wait is not the request's
            // own time, so the budget leaves it out (the others it waits for are bounded too).
            let queued = Instant::now();
            let permit = if write { Some(self.limiter.acquire().await) } else { None };
            budget.exclude(queued.elapsed());
            let result = self.send_once(copy_request(&request)).await;
            drop(permit);
            match result {
                Ok(text) => {
                    if write {
                        self.limiter.succeeded();
                    }
                    return serde_json::from_slice(&text).map_err(kube::Error::SerdeError);
                }
                Err((error, retry_after)) if retry::transient(&error) => {
                    let throttled = retry::throttled(&error);
                    let Some(wait) = budget.next_wait(retry_after, throttled) else { return Err(error) };
                    self.limiter.retried(throttled, wait.min(retry::CALM_MAX));
                    tokio::time::sleep(wait).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// One attempt: the body of a success, or the error with the server's `Retry-After`.
    async fn send_once(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<Vec<u8>, (kube::Error, Option<Duration>)> {
        let response =
            self.client.send(request.map(kube::client::Body::from)).await.map_err(|e| (e, None))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|seconds| Duration::from_secs(seconds.min(60)));
        let body = response.into_body().collect_bytes().await.map_err(|e| (e, None))?;
        if status.is_client_error() || status.is_server_error() {
            // As kube does: the server's `Status`, or one made from a plain-text answer.
            let status = serde_json::from_slice::<kube::core::Status>(&body).unwrap_or_else(|_| {
                kube::core::Status::failure(String::from_utf8_lossy(&body).trim(), "")
                    .with_code(status.as_u16())
            });
            return Err((kube::Error::Api(status.boxed()), retry_after));
        }
        Ok(body.to_vec())
    }

    /// The server's version (`gitVersion` of `/version`, e.g. `v1.34.4`); one read. A cheap
    /// reachability and credentials check.
    ///
    /// # Errors
    ///
    /// As for any request: [`ClusterError::Unreachable`], [`ClusterError::Forbidden`], ….
    pub async fn server_version(&self) -> Result<String, ClusterError> {
        self.count_read();
        let op =
            Operation { verb: "get", resource: "/version".into(), namespace: None, addr: None, apply: false };
        let info = retry::with_retry(&self.limiter, self.timeout, || self.client.apiserver_version())
            .await
            .map_err(|e| self.error(e, &op))?;
        Ok(info.git_version)
    }

    fn endpoint(&self) -> Endpoint<'_> {
        Endpoint { server: &self.server, proxy: self.proxy.as_deref(), timeout: self.timeout }
    }

    fn error(&self, error: kube::Error, op: &Operation<'_>) -> ClusterError {
        error::map(error, op, &self.endpoint())
    }

    fn count_read(&self) {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn count_write(&self, dry_run: bool) {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        if dry_run {
            self.counters.dry_runs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The served resource of a kind, from the cache or one discovery request.
    async fn resource(&self, kind: &KindRef) -> Result<Resource, ClusterError> {
        let api_version = if kind.group.is_empty() {
            kind.version.clone()
        } else {
            format!("{}/{}", kind.group, kind.version)
        };
        let slot = self.discovery.slot(&api_version);
        let mut cached = slot.lock().await;
        if let Some(found) = cached.as_ref().and_then(|kinds| kinds.get(&kind.kind)) {
            return Ok(found.clone());
        }
        let kinds = self.discover(kind, &api_version).await?;
        let found = kinds.get(&kind.kind).cloned();
        *cached = Some(kinds);
        found.ok_or_else(|| ClusterError::UnknownKind { api_version, kind: kind.kind.clone() })
    }

    async fn discover(&self, kind: &KindRef, api_version: &str) -> Result<Arc<Kinds>, ClusterError> {
        self.count_read();
        let path = if kind.group.is_empty() {
            format!("/api/{api_version}")
        } else {
            format!("/apis/{api_version}")
        };
        let op = Operation { verb: "get", resource: path, namespace: None, addr: None, apply: false };
        let list = retry::with_retry(&self.limiter, self.timeout, || async {
            if kind.group.is_empty() {
                self.client.list_core_api_resources(&kind.version).await
            } else {
                self.client.list_api_group_resources(api_version).await
            }
        })
        .await;
        let list = match list {
            Ok(list) => list,
            // The group-version is not served (yet): no kinds.
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Arc::default()),
            Err(e) => return Err(self.error(e, &op)),
        };
        let resources = list.resources.iter().map(|r| (r.name.as_str(), r.kind.as_str(), r.namespaced));
        Ok(Arc::new(discovery::kinds(&kind.group, &kind.version, resources)))
    }

    /// The resource of an address, checked against its scope: a namespaced kind needs a
    /// namespace and a cluster-scoped one must not have one.
    async fn resource_of(&self, addr: &ObjectRef) -> Result<Resource, ClusterError> {
        let resource = self.resource(&KindRef::of(addr)).await?;
        if resource.namespaced != addr.namespace.is_some() {
            let message = if resource.namespaced {
                format!("`{}` is namespaced but the address has no namespace", addr.kind)
            } else {
                format!("`{}` is cluster-scoped but the address has a namespace", addr.kind)
            };
            return Err(ClusterError::Invalid { addr: addr.clone(), message });
        }
        Ok(resource)
    }

    fn request(resource: &Resource, namespace: Option<&str>) -> Request {
        Request::new(DynamicObject::url_path(&resource.api, namespace))
    }
}

/// A copy of a request, for another attempt (`http::Request` is not `Clone`).
fn copy_request(request: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// A request that could not be built (an invalid name or parameter), before anything was sent.
#[expect(clippy::result_large_err, reason = "`ClusterError` is mip-core's, returned by value by the trait")]
fn build<R>(built: Result<R, kube::core::request::Error>, op: &Operation<'_>) -> Result<R, ClusterError> {
    built.map_err(|e| {
        let message = error::chain(&e);
        match op.addr {
            Some(addr) => ClusterError::Invalid { addr: addr.clone(), message },
            None => ClusterError::Other { operation: format!("build the `{}` request", op.verb), message },
        }
    })
}

/// Checks that a manifest is the object its address names, so a mix-up in the engine cannot
/// apply one object under another's name. Only identity fields are read and quoted.
#[expect(clippy::result_large_err, reason = "`ClusterError` is mip-core's, returned by value by the trait")]
fn check_identity(addr: &ObjectRef, manifest: &Value) -> Result<(), ClusterError> {
    let field = |pointer: &str| manifest.pointer(pointer).and_then(Value::as_str);
    let api_version = addr.api_version();
    let mut wrong = Vec::new();
    if field("/apiVersion") != Some(api_version.as_str()) {
        wrong.push(format!("`apiVersion` is {:?}, expected `{api_version}`", field("/apiVersion")));
    }
    if field("/kind") != Some(addr.kind.as_str()) {
        wrong.push(format!("`kind` is {:?}, expected `{}`", field("/kind"), addr.kind));
    }
    if field("/metadata/name") != Some(addr.name.as_str()) {
        wrong.push(format!("`metadata.name` is {:?}, expected `{}`", field("/metadata/name"), addr.name));
    }
    if let Some(namespace) = field("/metadata/namespace")
        && Some(namespace) != addr.namespace.as_deref()
    {
        wrong.push(format!("`metadata.namespace` is `{namespace}`, expected {:?}", addr.namespace));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Invalid {
            addr: addr.clone(),
            message: format!("the manifest does not match its address: {}", wrong.join(", ")),
        })
    }
}

impl Cluster for KubeCluster {
    fn server_url(&self) -> String {
        self.server.clone()
    }

    async fn is_namespaced(&self, kind: &KindRef) -> Result<bool, ClusterError> {
        Ok(self.resource(kind).await?.namespaced)
    }

    async fn list(
        &self,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let resource = self.resource(kind).await?;
        // A namespace only narrows namespaced kinds.
        let namespace = namespace.filter(|_| resource.namespaced);
        let request = Self::request(&resource, namespace);
        let op = Operation { verb: "list", resource: resource.name(), namespace, addr: None, apply: false };
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if let Some(selector) = label_selector {
            params = params.labels(selector);
        }
        let mut items = Vec::new();
        let mut restarted = false;
        loop {
            let built = build(request.list(&params), &op)?;
            self.count_read();
            let mut page: Value = match self.send(built, false).await {
                Ok(page) => page,
                // The continue token expired (etcd compacted its revision while mip read the
                // pages): as client-go's pager does, read the whole list again in one request,
                // without a limit, so the result is one consistent snapshot.
                Err(kube::Error::Api(status))
                    if status.code == 410 && params.continue_token.is_some() && !restarted =>
                {
                    restarted = true;
                    self.limiter.list_restarted();
                    items.clear();
                    params = ListParams { limit: None, continue_token: None, ..params };
                    continue;
                }
                Err(e) => return Err(self.error(e, &op)),
            };
            if let Some(Value::Array(page_items)) = page.get_mut("items").map(Value::take) {
                items.extend(page_items.into_iter().map(|mut item| {
                    if let Some(object) = item.as_object_mut() {
                        object.entry("apiVersion").or_insert_with(|| resource.api.api_version.clone().into());
                        object.entry("kind").or_insert_with(|| resource.api.kind.clone().into());
                    }
                    item
                }));
            }
            match page.pointer("/metadata/continue").and_then(Value::as_str) {
                Some(token) if !token.is_empty() => params = params.continue_token(token),
                _ => return Ok(items),
            }
        }
    }

    async fn get(&self, addr: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let resource = self.resource_of(addr).await?;
        let namespace = addr.namespace.as_deref();
        let op = Operation::object("get", &resource, addr, false);
        let built = build(Self::request(&resource, namespace).get(&addr.name, &GetParams::default()), &op)?;
        self.count_read();
        match self.send::<Value>(built, false).await {
            Ok(object) => Ok(Some(object)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(e) => Err(self.error(e, &op)),
        }
    }

    async fn apply(
        &self,
        addr: &ObjectRef,
        manifest: &Value,
        opts: ApplyOptions,
    ) -> Result<Value, ClusterError> {
        check_identity(addr, manifest)?;
        let resource = self.resource_of(addr).await?;
        let namespace = addr.namespace.as_deref();
        let op = Operation::object("patch", &resource, addr, true);
        let mut params = PatchParams::apply(FIELD_MANAGER).validation(ValidationDirective::Strict);
        params.dry_run = opts.dry_run;
        params.force = opts.force;
        let mut built = build(
            Self::request(&resource, namespace).patch(&addr.name, &params, &Patch::Apply(manifest)),
            &op,
        )?;
        if !opts.dry_run {
            // Only the metadata comes back: the server encodes less, mip parses less, and a
            // Secret's values do not travel back at all.
            built.headers_mut().insert(http::header::ACCEPT, http::HeaderValue::from_static(METADATA_ONLY));
        }
        self.count_write(opts.dry_run);
        self.send::<Value>(built, true).await.map_err(|e| self.error(e, &op))
    }

    async fn annotate(
        &self,
        addr: &ObjectRef,
        manager: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, ClusterError> {
        let resource = self.resource_of(addr).await?;
        let namespace = addr.namespace.as_deref();
        let op = Operation::object("patch", &resource, addr, false);
        let params = PatchParams { field_manager: Some(manager.to_owned()), ..PatchParams::default() };
        let patch = serde_json::json!({ "metadata": { "annotations": { key: value } } });
        let built = build(
            Self::request(&resource, namespace).patch(&addr.name, &params, &Patch::Merge(&patch)),
            &op,
        )?;
        self.count_write(false);
        match self.send::<Value>(built, true).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(self.error(e, &op)),
        }
    }

    async fn delete(&self, addr: &ObjectRef) -> Result<bool, ClusterError> {
        let resource = self.resource_of(addr).await?;
        let namespace = addr.namespace.as_deref();
        let op = Operation::object("delete", &resource, addr, false);
        let built =
            build(Self::request(&resource, namespace).delete(&addr.name, &DeleteParams::foreground()), &op)?;
        self.count_write(false);
        match self.send::<Value>(built, true).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(self.error(e, &op)),
        }
    }

    fn requests(&self) -> RequestCounts {
        RequestCounts {
            reads: self.counters.reads.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            dry_runs: self.counters.dry_runs.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_mismatch_is_invalid_and_quotes_no_data() {
        let addr = ObjectRef::new("v1", "Secret", Some("ns"), "s");
        let ok = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "hunter2"}});
        assert!(check_identity(&addr, &ok).is_ok());
        let wrong = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t", "namespace": "other"}, "stringData": {"k": "hunter2"}});
        let error = check_identity(&addr, &wrong).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("`metadata.name` is Some(\"t\"), expected `s`"), "{error}");
        assert!(error.contains("`metadata.namespace` is `other`"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn default_timeout_is_ten_seconds() {
        assert_eq!(ConnectOptions::default().timeout, Duration::from_secs(10));
    }
}
