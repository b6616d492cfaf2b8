//! The state file of `mip-dev-cluster`, the long-running cluster for people (see
//! `scripts/dev-cluster` and `docs/testcluster.md`). Shared by the binary and its tests.
//!
//! Layout of the state dir (`${XDG_RUNTIME_DIR:-/tmp}/mip-dev-cluster` by default):
//! `serve.log` (output of the background process), `state` (written once the cluster is
//! ready, removed when it stops) and `cluster/` (the [`TestCluster`](crate::TestCluster) data
//! dir: kubeconfig, certificates, etcd data, `logs/`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Overrides the state dir.
pub const STATE_DIR_ENV: &str = "MIP_DEV_CLUSTER_DIR";

/// `$MIP_DEV_CLUSTER_DIR`, else `${XDG_RUNTIME_DIR:-/tmp}/mip-dev-cluster`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(STATE_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    runtime.join("mip-dev-cluster")
}

/// What a ready dev cluster records in `<state dir>/state`, as `key=value` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevState {
    /// The `mip-dev-cluster serve` process owning the cluster.
    pub pid: u32,
    /// The apiserver URL.
    pub server_url: String,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The dir with the binaries, `kubectl` included.
    pub bin_dir: PathBuf,
    /// The watchdog's pid.
    pub watchdog_pid: u32,
    /// `(name, pid)` of etcd, kube-apiserver and kube-controller-manager.
    pub components: Vec<(String, u32)>,
}

impl DevState {
    /// The state file in `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("state")
    }

    /// Writes the state file atomically (readers never see half of it).
    pub fn write(&self, state_dir: &Path) -> Result<()> {
        let mut text = format!(
            "pid={}\nserver={}\nkubeconfig={}\nbin_dir={}\nwatchdog={}\n",
            self.pid,
            self.server_url,
            self.kubeconfig.display(),
            self.bin_dir.display(),
            self.watchdog_pid
        );
        for (name, pid) in &self.components {
            text.push_str(&format!("component.{name}={pid}\n"));
        }
        let partial = state_dir.join("state.partial");
        std::fs::write(&partial, text).with_context(|| format!("failed to write `{}`", partial.display()))?;
        std::fs::rename(&partial, DevState::path(state_dir)).context("failed to publish the state file")
    }

    /// Reads the state file; `None` if there is none.
    pub fn read(state_dir: &Path) -> Result<Option<DevState>> {
        let path = DevState::path(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("failed to read `{}`", path.display()));
            }
        };
        let mut state = DevState {
            pid: 0,
            server_url: String::new(),
            kubeconfig: PathBuf::new(),
            bin_dir: PathBuf::new(),
            watchdog_pid: 0,
            components: Vec::new(),
        };
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                bail!("malformed line `{line}` in `{}`", path.display());
            };
            let pid =
                || value.parse::<u32>().with_context(|| format!("bad pid `{value}` in `{}`", path.display()));
            match key {
                "pid" => state.pid = pid()?,
                "server" => state.server_url = value.to_owned(),
                "kubeconfig" => state.kubeconfig = PathBuf::from(value),
                "bin_dir" => state.bin_dir = PathBuf::from(value),
                "watchdog" => state.watchdog_pid = pid()?,
                _ => match key.strip_prefix("component.") {
                    Some(name) => state.components.push((name.to_owned(), pid()?)),
                    None => bail!("unknown key `{key}` in `{}`", path.display()),
                },
            }
        }
        Ok(Some(state))
    }

    /// Shell lines that point `kubectl` (the built one, first on `PATH`) at the cluster.
    pub fn env_lines(&self) -> String {
        format!(
            "export KUBECONFIG={}\nexport PATH={}:\"$PATH\"\n",
            shell_quote(&self.kubeconfig.display().to_string()),
            shell_quote(&self.bin_dir.display().to_string())
        )
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
