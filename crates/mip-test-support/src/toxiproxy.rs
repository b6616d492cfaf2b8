//! A fault proxy between mip and the API server: [Toxiproxy] v2.5.0 (Shopify's TCP proxy for
//! chaos testing), built from its Go module by `tools/toxiproxy/build.sh` into the binary cache,
//! as the control plane is.
//!
//! Why Toxiproxy rather than a proxy of our own: it is the tool people use for exactly this
//! (latency, bandwidth, connections reset or cut after N bytes, black holes), its toxics are
//! tested upstream, and it works below TLS, so mip sees what a VPN or a SOCKS tunnel does to a
//! real TLS connection to the real API server. Each toxic is a `POST` to its HTTP API on
//! loopback; nothing is mocked.
//!
//! ```no_run
//! # fn example() -> anyhow::Result<()> {
//! let cluster = mip_test_support::TestCluster::shared();
//! let proxy = cluster.toxiproxy()?;
//! let kubeconfig = std::env::temp_dir().join("through-the-proxy");
//! cluster.kubeconfig_via(&proxy.server_url(), &kubeconfig)?;
//! proxy.add(&mip_test_support::Toxic::latency(200))?; // every answer 200 ms late
//! # Ok(())
//! # }
//! ```
//!
//! [Toxiproxy]: https://github.com/Shopify/toxiproxy

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{Component, free_port};

/// Overrides the `toxiproxy-server` binary (skips `tools/toxiproxy/build.sh`).
pub const TOXIPROXY_BIN_ENV: &str = "MIP_TOXIPROXY_BIN";

/// The name of the one proxy.
const PROXY: &str = "apiserver";

/// One toxic: what it does, in which direction, to which share of connections.
#[derive(Debug, Clone)]
pub struct Toxic {
    /// Unique name (to remove it later).
    pub name: String,
    /// Toxiproxy's type: `latency`, `bandwidth`, `timeout`, `reset_peer`, `limit_data`, ….
    pub kind: String,
    /// `downstream` (server → mip) or `upstream` (mip → server).
    pub stream: String,
    /// The share of connections it applies to, 0.0 to 1.0.
    pub toxicity: f64,
    /// The type's attributes, as Toxiproxy names them.
    pub attributes: serde_json::Value,
}

impl Toxic {
    fn new(kind: &str, attributes: serde_json::Value) -> Toxic {
        Toxic {
            name: kind.to_owned(),
            kind: kind.to_owned(),
            stream: "downstream".to_owned(),
            toxicity: 1.0,
            attributes,
        }
    }

    /// Every answer `ms` milliseconds late.
    pub fn latency(ms: u64) -> Toxic {
        Toxic::new("latency", serde_json::json!({"latency": ms, "jitter": 0}))
    }

    /// Answers at `kb_per_s` kilobytes per second.
    pub fn bandwidth(kb_per_s: u64) -> Toxic {
        Toxic::new("bandwidth", serde_json::json!({"rate": kb_per_s}))
    }

    /// A black hole: nothing gets through; the connection is closed after `ms` (0: never).
    pub fn timeout(ms: u64) -> Toxic {
        Toxic::new("timeout", serde_json::json!({"timeout": ms}))
    }

    /// The connection is reset (TCP RST) `ms` milliseconds after it opens.
    pub fn reset_peer(ms: u64) -> Toxic {
        Toxic::new("reset_peer", serde_json::json!({"timeout": ms}))
    }

    /// The connection is closed after `bytes` bytes went through: mid-response for any answer
    /// longer than that.
    pub fn limit_data(bytes: u64) -> Toxic {
        Toxic::new("limit_data", serde_json::json!({"bytes": bytes}))
    }

    /// Applies only to a share of the connections (each connection draws once).
    #[must_use]
    pub fn toxicity(mut self, share: f64) -> Toxic {
        self.toxicity = share;
        self
    }

    /// In the direction mip → server instead.
    #[must_use]
    pub fn upstream(mut self) -> Toxic {
        self.stream = "upstream".to_owned();
        self
    }
}

/// A running Toxiproxy server with one proxy in front of the API server. Stopped on drop.
pub struct Toxiproxy {
    component: Component,
    api_port: u16,
    listen_port: u16,
}

impl Toxiproxy {
    /// Starts `toxiproxy-server` on loopback (its API and the proxy on free ports) with a proxy
    /// to `upstream` (`host:port`), in process group `group`.
    pub(crate) fn start(upstream: &str, logs: &Path, group: Option<u32>) -> Result<Toxiproxy> {
        let binary = binary()?;
        let api_port = free_port()?;
        let listen_port = free_port()?;
        let args = vec!["-host".to_owned(), "127.0.0.1".to_owned(), "-port".to_owned(), api_port.to_string()];
        let component = Component::spawn("toxiproxy", &binary, &args, logs, group)?;
        let mut proxy = Toxiproxy { component, api_port, listen_port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", api_port)).is_err() {
            proxy.component.check_running()?;
            if Instant::now() > deadline {
                bail!("toxiproxy-server does not listen on 127.0.0.1:{api_port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let body = serde_json::json!({
            "name": PROXY, "listen": format!("127.0.0.1:{listen_port}"), "upstream": upstream, "enabled": true,
        });
        proxy.call("POST", "/proxies", Some(&body))?;
        Ok(proxy)
    }

    /// `https://127.0.0.1:<port>`: the API server as mip sees it through the proxy.
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.listen_port)
    }

    /// Adds a toxic.
    ///
    /// # Errors
    /// If Toxiproxy refuses it (say, a name in use).
    pub fn add(&self, toxic: &Toxic) -> Result<()> {
        let body = serde_json::json!({
            "name": toxic.name, "type": toxic.kind, "stream": toxic.stream,
            "toxicity": toxic.toxicity, "attributes": toxic.attributes,
        });
        self.call("POST", &format!("/proxies/{PROXY}/toxics"), Some(&body)).map(|_| ())
    }

    /// Removes the toxic named `name`.
    ///
    /// # Errors
    /// If there is none.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.call("DELETE", &format!("/proxies/{PROXY}/toxics/{name}"), None).map(|_| ())
    }

    /// Removes every toxic.
    ///
    /// # Errors
    /// If Toxiproxy does not answer.
    pub fn clear(&self) -> Result<()> {
        self.call("POST", "/reset", None).map(|_| ())
    }

    /// One request to Toxiproxy's HTTP API (plain HTTP/1.1 on loopback); the body of a 2xx.
    fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<String> {
        let body = body.map(serde_json::Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.api_port))
            .with_context(|| format!("failed to reach toxiproxy on port {}", self.api_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).context("set a read timeout")?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .context("failed to write to toxiproxy")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).context("failed to read toxiproxy's answer")?;
        let status = answer.split_whitespace().nth(1).unwrap_or_default();
        if !status.starts_with('2') {
            bail!("toxiproxy answered `{method} {path}` with: {answer}");
        }
        Ok(answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        self.component.stop();
    }
}

/// `$MIP_TOXIPROXY_BIN`, else what `tools/toxiproxy/build.sh` prints (building it when missing).
fn binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(TOXIPROXY_BIN_ENV) {
        return Ok(PathBuf::from(path));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/toxiproxy/build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .with_context(|| format!("failed to run `{}`", script.display()))?;
    if !output.status.success() {
        bail!("`bash {}` failed: {}", script.display(), String::from_utf8_lossy(&output.stderr));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}
