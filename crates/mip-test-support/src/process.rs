//! Child processes: spawning components into one process group, the watchdog that kills that
//! group when the owning process dies, free ports and log tails.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The watchdog, run by `sh` (POSIX, no bashisms). Arguments: the PID to watch, the process
/// group of the components, the data dir. It polls every 0.2 s; once the watched process is
/// gone (or a zombie) it SIGKILLs the whole group, waits until no member is left alive
/// (zombies don't count: an init that never reaps must not stall the cleanup) and removes the
/// data dir. It also exits when the group is already gone (normal shutdown through `Drop`).
/// Only shell builtins run in the loops, apart from `sleep`.
const WATCHDOG_SCRIPT: &str = r#"
set -f
watched=$1 group=$2 dir=$3
# alive PID: is it running (not gone, not a zombie)? The state follows "(comm) ".
alive() {
  { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
  set -- ${stat##*") "}
  [ "$1" != Z ] && [ "$1" != X ]
}
group_alive() {
  for f in /proc/[0-9]*/stat; do
    { read -r stat < "$f"; } 2>/dev/null || continue
    set -- ${stat##*") "}
    [ "$3" = "$group" ] && [ "$1" != Z ] && [ "$1" != X ] && return 0
  done
  return 1
}
while alive "$watched" && kill -0 "-$group" 2>/dev/null; do sleep 0.2; done
kill -KILL "-$group" 2>/dev/null
i=0
while group_alive && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
rm -rf -- "$dir"
"#;

/// One running component (etcd, kube-apiserver, kube-controller-manager).
pub(crate) struct Component {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Component {
    /// Spawns `program` with its output in `<logs>/<name>.log`. With `group == None` the
    /// child leads a new process group (and its PID is the group id); otherwise it joins
    /// `group`. Either way it leaves the caller's group, so a terminal's Ctrl-C reaches only
    /// the test process and the watchdog does the cleanup.
    pub(crate) fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        logs: &Path,
        group: Option<u32>,
    ) -> Result<Component> {
        Component::spawn_with_env(name, program, args, &[], logs, group)
    }

    /// [`Component::spawn`] with extra environment variables.
    pub(crate) fn spawn_with_env(
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(String, OsString)],
        logs: &Path,
        group: Option<u32>,
    ) -> Result<Component> {
        let log = logs.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("failed to create `{}`", log.display()))?;
        let err = out.try_clone().context("failed to duplicate a log file handle")?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(group.map_or(0, |pgid| pgid as i32))
            .spawn()
            .with_context(|| format!("failed to start `{}`", program.display()))?;
        Ok(Component { name, child, log })
    }

    /// Fails if the component has exited.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("failed to poll a child process")? {
            bail!("{} exited early ({status})", self.name);
        }
        Ok(())
    }

    pub(crate) fn stop(&mut self) {
        // Already-exited children make kill fail; wait reaps either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(name, pid)` of each component.
pub(crate) fn pids(components: &[Component]) -> Vec<(&'static str, u32)> {
    components.iter().map(|component| (component.name, component.child.id())).collect()
}

/// The last `lines` lines of each component's log, one titled block per component.
pub(crate) fn log_tails(components: &[Component], lines: usize) -> String {
    let mut out = String::new();
    for component in components {
        out.push_str(&format!(
            "--- {} (`{}`) ---\n{}\n",
            component.name,
            component.log.display(),
            tail(&component.log, lines)
        ));
    }
    out
}

/// Kills the components (last started first) and the watchdog, then removes the data dir.
pub(crate) fn stop_all(components: &mut [Component], watchdog: Option<Child>, data_dir: &Path) {
    for component in components.iter_mut().rev() {
        component.stop();
    }
    if let Some(mut watchdog) = watchdog {
        let _ = watchdog.kill();
        let _ = watchdog.wait();
    }
    let _ = std::fs::remove_dir_all(data_dir);
}

/// Starts the watchdog for `group`: it outlives a `kill -9` of this process (it is in its own
/// process group and does not depend on us), notices within 0.2 s and cleans up.
pub(crate) fn spawn_watchdog(watched_pid: u32, group: u32, data_dir: &Path) -> Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("mip-testcluster-watchdog")
        .arg(watched_pid.to_string())
        .arg(group.to_string())
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("failed to start the watchdog (`sh`)")
}

/// A port that was free on 127.0.0.1 a moment ago (bind to port 0, read, release).
/// A loopback port that is free now, for a component to bind shortly after.
///
/// Not from the kernel's ephemeral range (`ip_local_port_range`, usually 32768-60999): every
/// outgoing connection of every process on the machine takes its local port from there, so a
/// port picked there and released can be taken by some client socket before the component
/// binds it (a CI run lost an Argo CD webhook port that way). Ports are drawn at random from
/// the 12 000 ports just below that range, each at most once per process, and kept only if a
/// bind succeeds. Falls back to a kernel-chosen port when the range starts too low.
pub(crate) fn free_port() -> Result<u16> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next().and_then(|low| low.parse::<u32>().ok()))
        .unwrap_or(32768);
    const SPAN: u32 = 12_000;
    if ephemeral_low >= 1024 + SPAN {
        let base = ephemeral_low - SPAN;
        let mut given = GIVEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for _ in 0..200 {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), Instant::now()).hash(&mut hasher);
            let Ok(port) = u16::try_from(base + (hasher.finish() % u64::from(SPAN)) as u32) else {
                continue;
            };
            if given.contains(&port) {
                continue;
            }
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.insert(port);
                return Ok(port);
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").context("failed to bind 127.0.0.1:0")?;
    Ok(listener.local_addr().context("failed to read a bound address")?.port())
}

/// Waits until something listens on 127.0.0.1:`port`; fails early if a component exits.
pub(crate) fn wait_for_port(
    components: &mut [Component],
    name: &str,
    port: u16,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        for component in components.iter_mut() {
            component.check_running()?;
        }
        if Instant::now() > deadline {
            bail!("{name} does not listen on 127.0.0.1:{port} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The last `lines` lines of a log file, or a note why there are none.
fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(cannot read `{}`: {error})", path.display()),
    }
}

/// True if `pid` names a live process (neither gone nor a zombie waiting to be reaped).
pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
    })
}
