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
    let (kubeconfig, source) = match &opts.kubeconfig {
        Some(path) => (Kubeconfig::read_from(path), format!("`{}`", path.display())),
        None => (Kubeconfig::read(), describe_default_source(env)),
    };
    let kubeconfig = kubeconfig.map_err(|e| config_error(&source, chain(&e)))?;

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

    Ok(Loaded { config, context, server, proxy: proxy.as_deref().map(redact) })
}

fn describe_default_source(env: &(dyn Fn(&str) -> Option<String> + Sync)) -> String {
    match env("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(paths) => format!("from `KUBECONFIG` (`{paths}`)"),
        None => match env("HOME") {
            Some(home) => format!("`{}`", PathBuf::from(home).join(".kube/config").display()),
            None => "`~/.kube/config`".into(),
        },
    }
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

    #[test]
    fn proxy_credentials_are_not_shown() {
        assert_eq!(redact("http://user:pa@ss@proxy:3128/x"), "http://proxy:3128/x");
        assert_eq!(redact("socks5://127.0.0.1:1080"), "socks5://127.0.0.1:1080");
    }
}
