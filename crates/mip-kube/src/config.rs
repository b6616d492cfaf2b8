//! Kubeconfig loading, context choice, timeouts and proxy selection (the rules are in the
//! crate docs, "Proxies"). kube's own proxy choice is overridden after loading.

use std::net::IpAddr;
use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use mip_core::cluster::ClusterError;

use crate::ConnectOptions;
use crate::error::chain;

/// A loaded client configuration and what the engine's guard needs to know about it.
pub(crate) struct Loaded {
    pub config: kube::Config,
    pub context: String,
    pub server: String,
    /// The proxy, credentials removed, for messages.
    pub proxy: Option<String>,
}

fn config_error(source: &str, message: String) -> ClusterError {
    ClusterError::Other { operation: format!("load kubeconfig {source}"), message }
}

/// Reads the kubeconfig, picks the context and builds the client configuration.
pub(crate) async fn load(
    opts: &ConnectOptions,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Loaded, ClusterError> {
    let (kubeconfig, source) = read_kubeconfig(opts, env)?;

    let context = match opts.context.clone().or_else(|| kubeconfig.current_context.clone()) {
        Some(context) => context,
        None => {
            return Err(config_error(
                &source,
                "no context given and the kubeconfig has no `current-context`".into(),
            ));
        }
    };
    let Some(named) = kubeconfig.contexts.iter().find(|c| c.name == context) else {
        let known: Vec<String> = kubeconfig.contexts.iter().map(|c| format!("`{}`", c.name)).collect();
        return Err(config_error(
            &source,
            format!(
                "context `{context}` not found (contexts: {})",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            ),
        ));
    };
    let cluster_name = named.context.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
    let kubeconfig_proxy = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.proxy_url.clone())
        .filter(|p| !p.is_empty());

    let options = KubeConfigOptions { context: Some(context.clone()), ..KubeConfigOptions::default() };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| config_error(&source, chain(&e)))?;

    let server = config.cluster_url.to_string().trim_end_matches('/').to_owned();
    let host = config.cluster_url.host().unwrap_or_default().to_owned();
    let https = config.cluster_url.scheme_str() != Some("http");
    let port = config.cluster_url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let proxy = choose_proxy(kubeconfig_proxy.as_deref(), https, &host, port, env);
    config.proxy_url = match &proxy {
        Some(url) => Some(url.parse().map_err(|e| {
            config_error(&source, format!("invalid proxy URL `{}`: {}", redact(url), chain(&e)))
        })?),
        None => None,
    };

    let timeout = Some(opts.timeout);
    config.connect_timeout = timeout;
    config.read_timeout = timeout;
    config.write_timeout = timeout;
    // Count the read timeout from when a request is sent, not from when its pooled connection
    // went idle.
    config.reset_reader_on_write = true;
    // mip retries itself, within the timeout (`retry.rs`); kube's own layer would retry 429s
    // up to 15 times with waits of up to 1000 s, past any bound mip promises.
    config.default_retry = false;

    Ok(Loaded { config, context, server, proxy: proxy.as_deref().map(redact) })
}

/// Where a pod's ServiceAccount credentials are mounted (`MIP_SERVICEACCOUNT_DIR` overrides).
pub const SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The context name of the in-cluster configuration.
pub const IN_CLUSTER_CONTEXT: &str = "in-cluster";

/// The kubeconfig as kubectl finds it, and a description of where it came from:
/// `--kubeconfig` (that one file); else `KUBECONFIG`, a list of files merged (the first to set a
/// cluster, user, context or `current-context` wins; missing files are skipped); else
/// `~/.kube/config`; else, in a pod (`KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`
/// set), the pod's ServiceAccount: its token (re-read as it rotates), CA and namespace, as one
/// context named `in-cluster`.
#[expect(clippy::result_large_err, reason = "the crate's one error type, built once per connection")]
fn read_kubeconfig(
    opts: &ConnectOptions,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<(Kubeconfig, String), ClusterError> {
    if let Some(path) = &opts.kubeconfig {
        let source = format!("`{}`", path.display());
        let config = Kubeconfig::read_from(path).map_err(|e| config_error(&source, chain(&e)))?;
        return Ok((config, source));
    }
    let files: Vec<PathBuf> = match env("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect(),
        None => env("HOME").map(|home| PathBuf::from(home).join(".kube/config")).into_iter().collect(),
    };
    let present: Vec<&PathBuf> = files.iter().filter(|p| p.exists()).collect();
    if present.is_empty()
        && let Some(in_cluster) = in_cluster(env)?
    {
        return Ok(in_cluster);
    }
    let source = match env("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => format!("from `KUBECONFIG` (`{list}`)"),
        None => files.first().map_or_else(|| "`~/.kube/config`".into(), |p| format!("`{}`", p.display())),
    };
    if present.is_empty() {
        return Err(config_error(
            &source,
            "no kubeconfig file exists, and this is not a pod (`KUBERNETES_SERVICE_HOST` is not set); pass `--kubeconfig FILE` or set `KUBECONFIG`".into(),
        ));
    }
    let mut merged = Kubeconfig::default();
    for path in present {
        let one = Kubeconfig::read_from(path)
            .map_err(|e| config_error(&format!("`{}`", path.display()), chain(&e)))?;
        merged = merged.merge(one).map_err(|e| config_error(&source, chain(&e)))?;
    }
    Ok((merged, source))
}

/// The pod's ServiceAccount as a kubeconfig, when `KUBERNETES_SERVICE_HOST` and
/// `KUBERNETES_SERVICE_PORT` say this is a pod.
#[expect(clippy::result_large_err, reason = "the crate's one error type, built once per connection")]
fn in_cluster(
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Option<(Kubeconfig, String)>, ClusterError> {
    let (Some(host), Some(port)) = (
        env("KUBERNETES_SERVICE_HOST").filter(|v| !v.trim().is_empty()),
        env("KUBERNETES_SERVICE_PORT").filter(|v| !v.trim().is_empty()),
    ) else {
        return Ok(None);
    };
    let dir = PathBuf::from(env("MIP_SERVICEACCOUNT_DIR").unwrap_or_else(|| SERVICEACCOUNT_DIR.into()));
    let source = format!("in-cluster (the ServiceAccount in `{}`)", dir.display());
    let port: u16 = port
        .trim()
        .parse()
        .map_err(|_| config_error(&source, format!("`KUBERNETES_SERVICE_PORT` is not a port: `{port}`")))?;
    let host = host.trim();
    let server = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("https://[{ip}]:{port}"),
        _ => format!("https://{host}:{port}"),
    };
    let (token, ca) = (dir.join("token"), dir.join("ca.crt"));
    for file in [&token, &ca] {
        if !file.is_file() {
            return Err(config_error(
                &source,
                format!(
                    "`{}` is missing: is a ServiceAccount token mounted (`automountServiceAccountToken`)?",
                    file.display()
                ),
            ));
        }
    }
    let namespace = std::fs::read_to_string(dir.join("namespace")).ok().map(|n| n.trim().to_owned());
    let mut context = serde_json::json!({"cluster": IN_CLUSTER_CONTEXT, "user": IN_CLUSTER_CONTEXT});
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        context["namespace"] = ns.into();
    }
    let text = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": IN_CLUSTER_CONTEXT,
        "clusters": [{"name": IN_CLUSTER_CONTEXT, "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": IN_CLUSTER_CONTEXT, "user": {"tokenFile": token}}],
        "contexts": [{"name": IN_CLUSTER_CONTEXT, "context": context}],
    })
    .to_string();
    let config = Kubeconfig::from_yaml(&text).map_err(|e| config_error(&source, chain(&e)))?;
    Ok(Some((config, source)))
}

/// The proxy to use, by the rules of the crate docs.
pub(crate) fn choose_proxy(
    kubeconfig_proxy: Option<&str>,
    https: bool,
    host: &str,
    port: u16,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Option<String> {
    let proxy = match kubeconfig_proxy {
        Some(proxy) => proxy.to_owned(),
        None => {
            let names = if https { ["HTTPS_PROXY", "https_proxy"] } else { ["HTTP_PROXY", "http_proxy"] };
            let proxy = names.iter().find_map(|n| env(n).filter(|v| !v.trim().is_empty()))?;
            let no_proxy =
                ["NO_PROXY", "no_proxy"].iter().find_map(|n| env(n).filter(|v| !v.trim().is_empty()));
            if no_proxy.is_some_and(|list| no_proxy_matches(&list, host, port)) {
                return None;
            }
            proxy.trim().to_owned()
        }
    };
    // kube knows `socks5`; `socks5h` (curl's name for "the proxy resolves names") is what its
    // SOCKS connector does anyway.
    Some(match proxy.strip_prefix("socks5h://") {
        Some(rest) => format!("socks5://{rest}"),
        None => proxy,
    })
}

/// Whether a `NO_PROXY` list (comma-separated: `*`, host names and domain suffixes with an
/// optional leading `.` or `*.`, IP addresses, CIDR ranges, each with an optional `:port`)
/// exempts `host:port`.
pub(crate) fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.split(',').map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry.to_ascii_lowercase();
        if let Some((net, bits)) = entry.split_once('/') {
            return match (net.parse::<IpAddr>(), bits.parse::<u8>(), host_ip) {
                (Ok(net), Ok(bits), Some(ip)) => cidr_contains(net, bits, ip),
                _ => false,
            };
        }
        let (name, entry_port) = split_port(&entry);
        if entry_port.is_some_and(|p| p != port) {
            return false;
        }
        if let (Ok(ip), Some(host_ip)) = (name.parse::<IpAddr>(), host_ip) {
            return ip == host_ip;
        }
        let domain = name.trim_start_matches("*.").trim_start_matches('.');
        !domain.is_empty()
            && (host == domain || host.strip_suffix(domain).is_some_and(|head| head.ends_with('.')))
    })
}

fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(bracketed) = entry.strip_prefix('[') {
        // `[::1]:6443`
        return match bracketed.split_once(']') {
            Some((ip, rest)) => (ip, rest.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// A proxy URL without its `user:password@`.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if scheme.is_empty() { format!("{host}{path}") } else { format!("{scheme}://{host}{path}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn kubeconfig_proxy_wins_and_ignores_no_proxy() {
        let vars = env(&[("HTTPS_PROXY", "http://env:3128"), ("NO_PROXY", "*")]);
        let proxy = choose_proxy(Some("socks5://127.0.0.1:1080"), true, "k8s.example", 6443, &vars);
        assert_eq!(proxy.as_deref(), Some("socks5://127.0.0.1:1080"));
    }

    #[test]
    fn env_proxy_by_scheme_and_no_proxy_checks_the_server() {
        let vars = env(&[("https_proxy", "socks5h://127.0.0.1:1080"), ("NO_PROXY", "localhost,127.0.0.1")]);
        // The proxy itself is on 127.0.0.1: that must not disable it (kube 5 does).
        assert_eq!(
            choose_proxy(None, true, "k8s.example", 6443, &vars).as_deref(),
            Some("socks5://127.0.0.1:1080")
        );
        assert_eq!(choose_proxy(None, true, "127.0.0.1", 6443, &vars), None);
        assert_eq!(choose_proxy(None, false, "k8s.example", 80, &vars), None, "http server uses HTTP_PROXY");
    }

    #[test]
    fn no_proxy_entries() {
        let list = ".corp.example, *.svc, 10.0.0.0/8, 192.168.1.1, k8s.example:6443, [::1], fd00::/8";
        assert!(no_proxy_matches(list, "api.corp.example", 443));
        assert!(no_proxy_matches(list, "corp.example", 443));
        assert!(!no_proxy_matches(list, "xcorp.example", 443));
        assert!(no_proxy_matches(list, "kubernetes.default.svc", 443));
        assert!(no_proxy_matches(list, "10.1.2.3", 6443));
        assert!(!no_proxy_matches(list, "11.1.2.3", 6443));
        assert!(no_proxy_matches(list, "192.168.1.1", 6443));
        assert!(no_proxy_matches(list, "K8S.example", 6443));
        assert!(!no_proxy_matches(list, "k8s.example", 443));
        assert!(no_proxy_matches(list, "[::1]", 6443));
        assert!(no_proxy_matches(list, "fd00::5", 6443));
        assert!(no_proxy_matches("*", "anything", 1));
        assert!(!no_proxy_matches("", "anything", 1));
    }

    fn kubeconfig(current: Option<&str>, contexts: &[(&str, &str)]) -> String {
        let mut text = String::from("apiVersion: v1\nkind: Config\n");
        if let Some(c) = current {
            text.push_str(&format!("current-context: {c}\n"));
        }
        text.push_str("clusters:\ncontexts:\n");
        for (name, server) in contexts {
            text.push_str(&format!("- name: {name}\n  context: {{cluster: {server}, user: u}}\n"));
        }
        text
    }

    #[expect(clippy::result_large_err, reason = "the crate's one error type, built once per connection")]
    fn read(vars: &[(&str, &str)]) -> Result<(Kubeconfig, String), ClusterError> {
        read_kubeconfig(&ConnectOptions::default(), &env(vars))
    }

    #[test]
    fn kubeconfig_lists_merge_as_kubectl_merges_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, kubeconfig(None, &[("shared", "from-a"), ("only-a", "x")])).expect("w");
        std::fs::write(&b, kubeconfig(Some("only-b"), &[("shared", "from-b"), ("only-b", "y")])).expect("w");
        let missing = dir.path().join("missing");
        let list = std::env::join_paths([&a, &missing, &b]).expect("join");
        let list = list.to_str().expect("utf-8");
        let (config, source) = read(&[("KUBECONFIG", list)]).expect("merged");
        assert!(source.contains("KUBECONFIG"), "{source}");
        // current-context from the first file that sets it; each name from the first file.
        assert_eq!(config.current_context.as_deref(), Some("only-b"));
        let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["shared", "only-a", "only-b"]);
        let shared = config.contexts[0].context.as_ref().expect("context");
        assert_eq!(shared.cluster, "from-a", "the first file wins");
        // `--kubeconfig` is one file, whatever `KUBECONFIG` says.
        let one = ConnectOptions { kubeconfig: Some(b.clone()), ..ConnectOptions::default() };
        let (config, _) = read_kubeconfig(&one, &env(&[("KUBECONFIG", list)])).expect("one file");
        assert_eq!(config.contexts[0].context.as_ref().expect("context").cluster, "from-b");
    }

    #[test]
    fn in_cluster_only_without_a_kubeconfig_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let sa = dir.path().join("sa");
        std::fs::create_dir(&sa).expect("mkdir");
        for (file, text) in [("token", "t"), ("ca.crt", "c"), ("namespace", "mip-system\n")] {
            std::fs::write(sa.join(file), text).expect("w");
        }
        let sa_dir = sa.to_str().expect("utf-8");
        let home = dir.path().to_str().expect("utf-8");
        let pod = [
            ("HOME", home),
            ("KUBERNETES_SERVICE_HOST", "fd00::1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("MIP_SERVICEACCOUNT_DIR", sa_dir),
        ];
        let (config, source) = read(&pod).expect("in-cluster");
        assert!(source.starts_with("in-cluster"), "{source}");
        assert_eq!(config.current_context.as_deref(), Some(IN_CLUSTER_CONTEXT));
        let cluster = config.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://[fd00::1]:443"));
        assert_eq!(cluster.certificate_authority.as_deref(), sa.join("ca.crt").to_str());
        let user = config.auth_infos[0].auth_info.as_ref().expect("user");
        assert_eq!(user.token_file.as_deref(), sa.join("token").to_str());
        assert_eq!(
            config.contexts[0].context.as_ref().expect("ctx").namespace.as_deref(),
            Some("mip-system")
        );

        // A kubeconfig file wins over the pod's account; outside a pod, no file is an error.
        std::fs::create_dir(dir.path().join(".kube")).expect("mkdir");
        std::fs::write(dir.path().join(".kube/config"), kubeconfig(Some("home"), &[("home", "h")]))
            .expect("w");
        let (config, _) = read(&pod).expect("home kubeconfig");
        assert_eq!(config.current_context.as_deref(), Some("home"));
        std::fs::remove_file(dir.path().join(".kube/config")).expect("rm");
        let err = read(&[("HOME", home)]).expect_err("nothing to read").to_string();
        assert!(
            err.contains("no kubeconfig file exists") && err.contains("KUBERNETES_SERVICE_HOST"),
            "{err}"
        );
        std::fs::remove_file(sa.join("token")).expect("rm");
        let err = read(&pod).expect_err("no token").to_string();
        assert!(err.contains("token` is missing"), "{err}");
    }

    #[test]
    fn proxy_credentials_are_not_shown() {
        assert_eq!(redact("http://user:pa@ss@proxy:3128/x"), "http://proxy:3128/x");
        assert_eq!(redact("socks5://127.0.0.1:1080"), "socks5://127.0.0.1:1080");
    }
}
