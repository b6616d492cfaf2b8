//! `mip-dev-cluster up|down|env|status`: the test cluster, running in the background for
//! people (and `kubectl`). Usually called as `scripts/dev-cluster`; see `docs/testcluster.md`.
//!
//! `up` starts `mip-dev-cluster serve` detached and waits until it has written the state file;
//! `serve` owns the [`TestCluster`] (its watchdog watches `serve`, so even `kill -9` of `serve`
//! leaves nothing behind) and stops it on SIGTERM or SIGINT; `down` sends SIGTERM and waits.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mip_test_support::dev::{DevState, default_state_dir};
use mip_test_support::{TestCluster, TestClusterOptions, pid_alive};

const USAGE: &str = "usage: mip-dev-cluster <up|down|env|status> [--state-dir DIR]

  up      start the cluster in the background (builds the binaries on first use)
  down    stop it and remove its state
  env     print `export KUBECONFIG=...` and `export PATH=<bin dir>:$PATH`
  status  say whether it runs (exit 0) or not (exit 1)

state dir: --state-dir, else $MIP_DEV_CLUSTER_DIR, else ${XDG_RUNTIME_DIR:-/tmp}/mip-dev-cluster";

/// How long `up` waits for `serve` (a cold build of the binaries included).
const UP_TIMEOUT: Duration = Duration::from_secs(45 * 60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, state_dir) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(error) => {
            say(&format!("error: {error:#}\n{USAGE}"));
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "up" => up(&state_dir),
        "down" => down(&state_dir),
        "env" => env(&state_dir),
        "status" => status(&state_dir),
        "serve" => serve(&state_dir),
        _ => unreachable!("parse accepts only known commands"),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            say(&format!("mip-dev-cluster {command}: error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<(String, PathBuf)> {
    let mut command = None;
    let mut state_dir = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--state-dir" => {
                state_dir = Some(PathBuf::from(args.next().context("--state-dir needs a value")?))
            }
            "-h" | "--help" => bail!("help requested"),
            "up" | "down" | "env" | "status" | "serve" if command.is_none() => command = Some(arg.clone()),
            _ => bail!("unexpected argument `{arg}`"),
        }
    }
    Ok((command.context("no command given")?, state_dir.unwrap_or_else(default_state_dir)))
}

/// The state of a running dev cluster, if there is one.
fn running(state_dir: &Path) -> Result<Option<DevState>> {
    Ok(DevState::read(state_dir)?.filter(|state| pid_alive(state.pid)))
}

fn up(state_dir: &Path) -> Result<ExitCode> {
    if let Some(state) = running(state_dir)? {
        say(&format!("dev cluster already running at {} (pid {})", state.server_url, state.pid));
        return Ok(ExitCode::SUCCESS);
    }
    if state_dir.exists() {
        std::fs::remove_dir_all(state_dir)
            .with_context(|| format!("failed to clear `{}`", state_dir.display()))?;
    }
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("failed to create `{}`", state_dir.display()))?;
    let log_path = state_dir.join("serve.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("failed to create `{}`", log_path.display()))?;
    let mut serve = Command::new(std::env::current_exe().context("failed to find this executable")?)
        .arg("serve")
        .arg("--state-dir")
        .arg(state_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("failed to duplicate a file handle")?)
        .stderr(log)
        // Detached from the caller's process group: a Ctrl-C in this shell must not stop it.
        .process_group(0)
        .spawn()
        .context("failed to start `mip-dev-cluster serve`")?;
    say(&format!(
        "starting the dev cluster (log: `{}`; the first run builds the binaries)",
        log_path.display()
    ));
    let deadline = Instant::now() + UP_TIMEOUT;
    loop {
        if let Some(state) = DevState::read(state_dir)? {
            say(&format!(
                "dev cluster up at {} (pid {})\nuse it with: eval \"$(scripts/dev-cluster env)\"",
                state.server_url, state.pid
            ));
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(status) = serve.try_wait().context("failed to poll `serve`")? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("`mip-dev-cluster serve` exited ({status}):\n{log}");
        }
        if Instant::now() > deadline {
            bail!("the dev cluster is not up after {UP_TIMEOUT:?}; see `{}`", log_path.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn serve(state_dir: &Path) -> Result<ExitCode> {
    let options =
        TestClusterOptions { data_dir: Some(state_dir.join("cluster")), ..TestClusterOptions::default() };
    let cluster = TestCluster::try_start(options)?;
    let state = DevState {
        pid: std::process::id(),
        server_url: cluster.server_url().to_owned(),
        kubeconfig: cluster.kubeconfig_path().to_owned(),
        bin_dir: cluster.bin_dir().to_owned(),
        watchdog_pid: cluster.watchdog_pid().unwrap_or_default(),
        components: cluster.component_pids().into_iter().map(|(name, pid)| (name.to_owned(), pid)).collect(),
    };
    state.write(state_dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = terminate.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        anyhow::Ok(())
    })?;
    let _ = std::fs::remove_file(DevState::path(state_dir));
    drop(cluster);
    say("dev cluster stopped");
    Ok(ExitCode::SUCCESS)
}

fn down(state_dir: &Path) -> Result<ExitCode> {
    let Some(state) = DevState::read(state_dir)? else {
        say("dev cluster not running");
        remove_state_dir(state_dir)?;
        return Ok(ExitCode::SUCCESS);
    };
    if pid_alive(state.pid) {
        signal("-TERM", state.pid)?;
        if !wait_gone(&[state.pid], Duration::from_secs(30)) {
            // The watchdog cleans up after a SIGKILL as well.
            signal("-KILL", state.pid)?;
        }
    }
    let mut pids: Vec<u32> = state.components.iter().map(|(_, pid)| *pid).collect();
    pids.push(state.watchdog_pid);
    if !wait_gone(&pids, Duration::from_secs(15)) {
        bail!("dev cluster processes still running after 15s: {pids:?}");
    }
    remove_state_dir(state_dir)?;
    say("dev cluster down");
    Ok(ExitCode::SUCCESS)
}

fn env(state_dir: &Path) -> Result<ExitCode> {
    let Some(state) = running(state_dir)? else {
        bail!("dev cluster not running (start it with `scripts/dev-cluster up`)");
    };
    std::io::stdout().write_all(state.env_lines().as_bytes()).context("failed to write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn status(state_dir: &Path) -> Result<ExitCode> {
    let Some(state) = running(state_dir)? else {
        writeln!(std::io::stdout(), "not running").context("failed to write to stdout")?;
        return Ok(ExitCode::FAILURE);
    };
    let mut text = format!(
        "running\nserver: {}\nkubeconfig: {}\nbin dir: {}\npid: {}\n",
        state.server_url,
        state.kubeconfig.display(),
        state.bin_dir.display(),
        state.pid
    );
    for (name, pid) in &state.components {
        text.push_str(&format!("{name}: pid {pid}{}\n", if pid_alive(*pid) { "" } else { " (gone!)" }));
    }
    std::io::stdout().write_all(text.as_bytes()).context("failed to write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn signal(signal: &str, pid: u32) -> Result<()> {
    // std can only SIGKILL its own children; `kill(1)` is the safe way to signal a pid.
    let status =
        Command::new("kill").arg(signal).arg(pid.to_string()).status().context("failed to run `kill`")?;
    if !status.success() && pid_alive(pid) {
        bail!("`kill {signal} {pid}` failed ({status})");
    }
    Ok(())
}

fn wait_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while pids.iter().any(|pid| pid_alive(*pid)) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn remove_state_dir(state_dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(state_dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("failed to remove `{}`", state_dir.display()))
        }
        _ => Ok(()),
    }
}

/// Messages for people go to stderr; stdout is data (`env`, `status`).
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}
