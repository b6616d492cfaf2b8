//! `KubeCluster` against the real test cluster (kube-apiserver + etcd + Argo CD CRDs), plus
//! unreachable servers and proxies on loopback ports.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use mip_core::ObjectRef;
use mip_core::cluster::{ApplyOptions, Cluster, ClusterError, KindRef};
use mip_kube::{ConnectOptions, KubeCluster};
use mip_test_support::TestCluster;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const APPLY: ApplyOptions = ApplyOptions { dry_run: false, force: false };
const DRY_RUN: ApplyOptions = ApplyOptions { dry_run: true, force: false };

async fn connect(cluster: &TestCluster) -> KubeCluster {
    let opts = ConnectOptions {
        kubeconfig: Some(cluster.kubeconfig_path().to_owned()),
        context: Some("mip-test".into()),
        ..ConnectOptions::default()
    };
    KubeCluster::connect(opts).await.expect("connect to the test cluster")
}

/// The shared cluster, a new namespace in it, and a client.
async fn in_fresh_namespace(prefix: &str) -> (&'static TestCluster, String, KubeCluster) {
    let cluster = TestCluster::shared();
    let ns = cluster.fresh_namespace(prefix).await;
    let kube = connect(cluster).await;
    (cluster, ns, kube)
}

fn config_map(ns: &str, name: &str, data: Value) -> (ObjectRef, Value) {
    let addr = ObjectRef::new("v1", "ConfigMap", Some(ns), name);
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    });
    (addr, manifest)
}

fn kind(api_version: &str, kind: &str) -> KindRef {
    let addr = ObjectRef::new(api_version, kind, None, "x");
    KindRef::of(&addr)
}

fn names(objects: &[Value]) -> Vec<&str> {
    objects.iter().filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str)).collect()
}

#[tokio::test]
async fn connects_with_kubeconfig_and_context() {
    let cluster = TestCluster::shared();
    let kube = connect(cluster).await;
    assert_eq!(kube.context_name(), "mip-test");
    assert_eq!(kube.server_url(), cluster.server_url().trim_end_matches('/'));
    assert_eq!(kube.proxy_url(), None);
    assert_eq!(kube.requests().reads, 0, "connect sends nothing");
    let version = kube.server_version().await.expect("version");
    assert!(version.starts_with("v1.34"), "{version}");
    assert_eq!(kube.requests().reads, 1);

    let missing = KubeCluster::connect(ConnectOptions {
        kubeconfig: Some(cluster.kubeconfig_path().to_owned()),
        context: Some("nope".into()),
        ..ConnectOptions::default()
    })
    .await
    .expect_err("unknown context");
    assert!(missing.to_string().contains("context `nope` not found (contexts: `mip-test`)"), "{missing}");
}

#[tokio::test]
async fn applies_gets_and_lists_a_config_map_and_an_app_project() {
    let (_, ns, kube) = in_fresh_namespace("kube-crud").await;

    let (cm, cm_manifest) = config_map(&ns, "settings", json!({"a": "1"}));
    let applied = kube.apply(&cm, &cm_manifest, APPLY).await.expect("apply ConfigMap");
    // A real apply answers with the metadata only (no data, no Secret values on the wire).
    assert_eq!(applied["kind"], "PartialObjectMetadata");
    assert!(applied.get("data").is_none(), "{applied}");
    assert!(applied.pointer("/metadata/uid").and_then(Value::as_str).is_some_and(|u| !u.is_empty()));
    let stored = kube.get(&cm).await.expect("get").expect("exists");
    assert_eq!(stored.pointer("/data/a"), Some(&json!("1")));
    let dry = kube.apply(&cm, &cm_manifest, DRY_RUN).await.expect("dry run");
    assert_eq!(dry.pointer("/data/a"), Some(&json!("1")), "a dry run answers with the whole object");
    let managers: Vec<&str> = applied["metadata"]["managedFields"]
        .as_array()
        .map(|fields| fields.iter().filter_map(|f| f["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, ["mip"]);

    let project = ObjectRef::new("argoproj.io/v1alpha1", "AppProject", Some(&ns), "team");
    let project_manifest = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "team", "namespace": ns},
        "spec": {
            "description": "made by mip-kube tests",
            "sourceRepos": ["https://example.invalid/repo.git"],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": ns}],
        },
    });
    kube.apply(&project, &project_manifest, APPLY).await.expect("apply AppProject");

    let got = kube.get(&cm).await.expect("get").expect("present");
    assert_eq!(got["data"], json!({"a": "1"}));
    let got = kube.get(&project).await.expect("get").expect("present");
    assert_eq!(got["spec"]["description"], "made by mip-kube tests");
    let absent = ObjectRef::new("v1", "ConfigMap", Some(&ns), "absent");
    assert_eq!(kube.get(&absent).await.expect("get"), None);

    // Discovery is warm for both group-versions: each list is exactly one request.
    for (kind, name) in [(KindRef::of(&cm), "settings"), (KindRef::of(&project), "team")] {
        let before = kube.requests();
        let listed = kube.list(&kind, Some(&ns), None).await.expect("list");
        let after = kube.requests();
        assert_eq!((after.reads - before.reads, after.writes - before.writes), (1, 0), "{kind:?}");
        assert!(names(&listed).contains(&name), "{:?}", names(&listed));
        // Built-in kinds come without apiVersion/kind in a LIST; they are filled in.
        let item = listed.iter().find(|o| o["metadata"]["name"] == name).expect("listed");
        assert_eq!(item["kind"], kind.kind.as_str());
    }
    let selected = kube.list(&KindRef::of(&cm), Some(&ns), Some("app=none")).await.expect("list");
    assert!(selected.is_empty(), "{:?}", names(&selected));
    assert!(kube.is_namespaced(&KindRef::of(&project)).await.expect("discovery"));
    assert!(!kube.is_namespaced(&kind("v1", "Namespace")).await.expect("discovery"));

    // Two group-versions discovered once each, two applies and a dry run, four gets, three
    // lists.
    let counts = kube.requests();
    assert_eq!((counts.reads, counts.writes, counts.dry_runs), (2 + 4 + 3, 3, 1), "{counts:?}");
}

#[tokio::test]
async fn dry_run_persists_nothing_and_reapply_is_idempotent() {
    let (_, ns, kube) = in_fresh_namespace("kube-dry").await;

    let (addr, manifest) = config_map(&ns, "dry", json!({"k": "v"}));
    let dry = kube.apply(&addr, &manifest, DRY_RUN).await.expect("dry run");
    assert_eq!(dry["data"]["k"], "v");
    assert_eq!(kube.get(&addr).await.expect("get"), None, "a dry run created the object");
    assert_eq!(kube.requests().dry_runs, 1);

    let first = kube.apply(&addr, &manifest, APPLY).await.expect("apply");
    let second = kube.apply(&addr, &manifest, APPLY).await.expect("re-apply");
    assert_eq!(first["metadata"]["resourceVersion"], second["metadata"]["resourceVersion"]);
    assert_eq!(first["metadata"]["managedFields"], second["metadata"]["managedFields"]);

    let (_, changed) = config_map(&ns, "dry", json!({"k": "w"}));
    let dry = kube.apply(&addr, &changed, DRY_RUN).await.expect("dry run of a change");
    assert_eq!(dry["data"]["k"], "w");
    let live = kube.get(&addr).await.expect("get").expect("present");
    assert_eq!(live["data"]["k"], "v", "a dry run changed the object");
    let counts = kube.requests();
    assert_eq!((counts.writes, counts.dry_runs), (4, 2), "{counts:?}");
}

#[tokio::test]
async fn a_field_owned_by_another_manager_is_a_conflict_naming_it() {
    let (cluster, ns, kube) = in_fresh_namespace("kube-conflict").await;

    let other: Api<ConfigMap> = Api::namespaced(cluster.client().await, &ns);
    let theirs = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shared", "namespace": ns},
        "data": {"key": "theirs"},
    });
    other
        .patch("shared", &PatchParams::apply("other"), &Patch::Apply(&theirs))
        .await
        .expect("apply as `other`");

    let (addr, ours) = config_map(&ns, "shared", json!({"key": "ours"}));
    let error = kube.apply(&addr, &ours, APPLY).await.expect_err("conflict");
    match &error {
        ClusterError::Conflict { addr: at, managers, message } => {
            assert_eq!(at, &addr);
            assert_eq!(managers, &["other"]);
            assert!(message.contains(".data.key"), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(error.to_string().contains("field manager(s) `other`"), "{error}");
    assert!(!error.to_string().contains("ours"), "the manifest leaked into {error}");

    // The same value is no conflict: both managers own the field.
    let (_, same) = config_map(&ns, "shared", json!({"key": "theirs"}));
    kube.apply(&addr, &same, APPLY).await.expect("co-own an equal value");

    // Forcing takes the field over.
    kube.apply(&addr, &ours, ApplyOptions { dry_run: false, force: true }).await.expect("force");
    let forced = kube.get(&addr).await.expect("get").expect("exists");
    assert_eq!(forced["data"]["key"], "ours");
}

#[tokio::test]
async fn an_application_without_destination_is_invalid() {
    let cluster = TestCluster::shared();
    let ns = cluster.argocd_namespace();
    let kube = connect(cluster).await;
    let addr = ObjectRef::new("argoproj.io/v1alpha1", "Application", Some(ns), "no-destination");
    let manifest = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "no-destination", "namespace": ns},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://example.invalid/repo.git", "path": "base", "targetRevision": "main"},
        },
    });
    let error = kube.apply(&addr, &manifest, APPLY).await.expect_err("invalid");
    assert!(matches!(&error, ClusterError::Invalid { addr: at, .. } if at == &addr), "{error:?}");
    assert!(error.to_string().contains("spec.destination"), "{error}");

    // Strict field validation: an unknown field is refused, not dropped.
    let (cm, mut unknown) = config_map(cluster.argocd_namespace(), "strict", json!({}));
    unknown["spec"] = json!({"nope": true});
    let error = kube.apply(&cm, &unknown, DRY_RUN).await.expect_err("unknown field");
    assert!(matches!(error, ClusterError::Invalid { .. }), "{error:?}");
    assert!(error.to_string().contains("spec"), "{error}");

    // A manifest that is not the object its address names is refused before sending.
    let before = kube.requests();
    let other = ObjectRef::new("v1", "ConfigMap", Some(ns), "other-name");
    let error = kube.apply(&other, &unknown, APPLY).await.expect_err("identity");
    assert!(error.to_string().contains("does not match its address"), "{error}");
    assert_eq!(kube.requests().writes, before.writes);
}

#[tokio::test]
async fn delete_removes_the_object_and_reports_when_it_was_already_gone() {
    let (_, ns, kube) = in_fresh_namespace("kube-delete").await;
    let (addr, manifest) = config_map(&ns, "doomed", json!({"k": "v"}));
    kube.apply(&addr, &manifest, APPLY).await.expect("apply");

    assert!(kube.delete(&addr).await.expect("delete"));
    // Foreground deletion: the garbage collector removes the object once it has no dependents.
    let deadline = Instant::now() + Duration::from_secs(20);
    while kube.get(&addr).await.expect("get").is_some() {
        assert!(Instant::now() < deadline, "`{addr}` still exists");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!kube.delete(&addr).await.expect("second delete"));
}

#[tokio::test]
async fn unknown_kinds_are_reported() {
    let cluster = TestCluster::shared();
    let kube = connect(cluster).await;
    for (api_version, name) in
        [("example.invalid/v1", "Widget"), ("v1", "Widget"), ("argoproj.io/v1alpha1", "Widget")]
    {
        let error = kube.list(&kind(api_version, name), None, None).await.expect_err("unknown kind");
        assert_eq!(
            error,
            ClusterError::UnknownKind { api_version: api_version.into(), kind: name.into() },
            "{api_version} {name}"
        );
        let addr = ObjectRef::new(api_version, name, Some("default"), "x");
        assert!(matches!(kube.get(&addr).await, Err(ClusterError::UnknownKind { .. })));
    }
}

/// A kubeconfig for `server` with no credentials, optionally through `proxy`.
fn write_kubeconfig(dir: &Path, server: &str, proxy: Option<&str>) -> std::path::PathBuf {
    let proxy = proxy.map(|p| format!("\n    proxy-url: {p}")).unwrap_or_default();
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: local\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true{proxy}\ncontexts:\n- name: local\n  context:\n    cluster: local\n    user: nobody\nusers:\n- name: nobody\n  user: {{}}\n"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

async fn connect_to(kubeconfig: std::path::PathBuf, timeout: Duration) -> KubeCluster {
    let opts = ConnectOptions { kubeconfig: Some(kubeconfig), context: None, timeout };
    KubeCluster::connect(opts).await.expect("connect (sends nothing)")
}

#[tokio::test]
async fn an_unreachable_server_fails_fast() {
    let dir = tempfile::tempdir().expect("temp dir");
    let timeout = Duration::from_secs(2);

    // Refused.
    let server = format!("https://127.0.0.1:{}", closed_port().await);
    let kube = connect_to(write_kubeconfig(dir.path(), &server, None), timeout).await;
    let started = Instant::now();
    let error = kube.list(&kind("v1", "ConfigMap"), None, None).await.expect_err("unreachable");
    assert!(started.elapsed() < 2 * timeout, "{:?}", started.elapsed());
    assert!(matches!(&error, ClusterError::Unreachable { server: s, .. } if s == &server), "{error:?}");

    // Accepts TCP but never answers the TLS handshake: the timeout ends the wait.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = format!("https://127.0.0.1:{}", silent.local_addr().expect("addr").port());
    let kube = connect_to(write_kubeconfig(dir.path(), &server, None), timeout).await;
    let started = Instant::now();
    let error = kube.get(&ObjectRef::new("v1", "ConfigMap", Some("default"), "x")).await.expect_err("silent");
    let elapsed = started.elapsed();
    assert!(elapsed < 2 * timeout, "{elapsed:?}");
    assert!(elapsed >= timeout / 2, "{elapsed:?}: failed before the timeout: {error}");
    assert!(matches!(error, ClusterError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().ends_with("is unreachable: no answer within 2s"), "{error}");
    drop(silent);
}

#[tokio::test]
async fn a_closed_socks5_proxy_in_the_kubeconfig_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let proxy = format!("socks5://127.0.0.1:{}", closed_port().await);
    let server = format!("https://127.0.0.1:{}", closed_port().await);
    let kube = connect_to(write_kubeconfig(dir.path(), &server, Some(&proxy)), Duration::from_secs(2)).await;
    assert_eq!(kube.proxy_url(), Some(proxy.as_str()));
    let error = kube.list(&kind("v1", "ConfigMap"), None, None).await.expect_err("unreachable");
    assert!(matches!(error, ClusterError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains(&format!("through proxy `{proxy}`")), "{error}");
}

/// `HTTPS_PROXY` is read from the environment, which a test cannot change in-process
/// (`set_var` is unsafe and unsafe code is forbidden), so the test re-runs itself as a child with
/// the variables set. `NO_PROXY` lists the proxy's own address: kube 5 alone would drop the proxy.
#[tokio::test]
async fn https_proxy_from_the_environment_is_used() {
    if std::env::var_os("MIP_KUBE_PROXY_CHILD").is_some() {
        let dir = tempfile::tempdir().expect("temp dir");
        // 127.0.0.2 is loopback too, but not in NO_PROXY.
        let server = format!("https://127.0.0.2:{}", closed_port().await);
        let kube = connect_to(write_kubeconfig(dir.path(), &server, None), Duration::from_secs(2)).await;
        let proxy = std::env::var("HTTPS_PROXY").expect("HTTPS_PROXY");
        assert_eq!(kube.proxy_url(), Some(proxy.replace("socks5h", "socks5").as_str()));
        let error = kube.list(&kind("v1", "ConfigMap"), None, None).await.expect_err("unreachable");
        assert!(error.to_string().contains("through proxy `socks5://127.0.0.1:"), "{error}");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let output = std::process::Command::new(exe)
        .args(["--exact", "https_proxy_from_the_environment_is_used", "--nocapture"])
        .env("MIP_KUBE_PROXY_CHILD", "1")
        .env("HTTPS_PROXY", format!("socks5h://127.0.0.1:{}", closed_port().await))
        .env("NO_PROXY", "localhost,127.0.0.1")
        .env_remove("https_proxy")
        .env_remove("no_proxy")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// A minimal SOCKS5 server (no authentication, CONNECT only) that counts its connections.
async fn socks5_proxy() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (seen, targets) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                if let Ok((target, mut upstream, mut client)) = socks5_handshake(client).await {
                    let _ = seen.send(target);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (port, targets)
}

async fn socks5_handshake(mut client: TcpStream) -> std::io::Result<(String, TcpStream, TcpStream)> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    client.write_all(&[5, 0]).await?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let len = client.read_u8().await?;
            let mut name = vec![0u8; usize::from(len)];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return Err(std::io::Error::other("unsupported address type")),
    };
    let port = client.read_u16().await?;
    let target = format!("{host}:{port}");
    // Loopback only: this proxy never reaches out.
    assert!(host == "127.0.0.1" || host == "localhost", "proxy asked for `{target}`");
    let upstream = TcpStream::connect(("127.0.0.1", port)).await?;
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    Ok((target, upstream, client))
}

#[tokio::test]
async fn requests_go_through_a_socks5_proxy() {
    let cluster = TestCluster::shared();
    let (port, mut targets) = socks5_proxy().await;
    // The test kubeconfig with a `proxy-url` added to its cluster.
    let text = std::fs::read_to_string(cluster.kubeconfig_path()).expect("read kubeconfig");
    let server_line = text.lines().find(|l| l.trim_start().starts_with("server:")).expect("server line");
    let indent = &server_line[..server_line.len() - server_line.trim_start().len()];
    let with_proxy = text.replacen(
        server_line,
        &format!("{server_line}\n{indent}proxy-url: socks5://127.0.0.1:{port}"),
        1,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, with_proxy).expect("write kubeconfig");

    let kube = KubeCluster::connect(ConnectOptions {
        kubeconfig: Some(path),
        context: Some("mip-test".into()),
        ..ConnectOptions::default()
    })
    .await
    .expect("connect");
    let namespaces = kube.list(&kind("v1", "Namespace"), None, None).await.expect("list through the proxy");
    assert!(names(&namespaces).contains(&"default"), "{:?}", names(&namespaces));
    let target = targets.try_recv().expect("the proxy saw the connection");
    let api_port = cluster.server_url().rsplit(':').next().unwrap_or_default().trim_end_matches('/');
    assert_eq!(target.rsplit(':').next(), Some(api_port), "{target}");
}
