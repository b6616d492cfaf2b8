//! One measured run of a command: wall time, peak RSS (`/usr/bin/time`), API requests; killed
//! when it outlives its time limit.

use anyhow::Context;
use std::io::{Read as _, Seek as _};
use std::process::{Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// API requests of one run, as the tool itself counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    /// GET and LIST (discovery included).
    pub reads: u64,
    /// Writes that persist (create, patch, delete), dry runs excluded.
    pub writes: u64,
    /// Server-side dry runs.
    pub dry_runs: u64,
}

impl Requests {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.reads + self.writes + self.dry_runs
    }

    /// mip's `MIP_STATS=1` line on stderr: `api requests: R reads, W writes (D dry runs)`.
    pub fn from_mip_stats(stderr: &str) -> Option<Requests> {
        let line = stderr.lines().rev().find_map(|l| l.strip_prefix("api requests: "))?;
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        match numbers.as_slice() {
            [reads, writes, dry_runs] => {
                Some(Requests { reads: *reads, writes: *writes, dry_runs: *dry_runs })
            }
            _ => None,
        }
    }

    /// kubectl's `-v=6` log on stderr: one `"Response" verb="…" url="…"` line per request.
    pub fn from_kubectl_log(stderr: &str) -> Requests {
        let mut counts = Requests::default();
        for line in stderr.lines() {
            let Some(rest) = line.split_once("\"Response\" verb=\"").map(|(_, r)| r) else { continue };
            let verb = rest.split('"').next().unwrap_or_default();
            if verb == "GET" {
                counts.reads += 1;
            } else if rest.contains("dryRun=All") {
                counts.dry_runs += 1;
            } else {
                counts.writes += 1;
            }
        }
        counts
    }
}

/// Which tool a run measured (how its requests are counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The `mip` binary, run with `MIP_STATS=1`.
    Mip,
    /// `kubectl`, run with `-v=6`.
    Kubectl,
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Wall time, seconds (process start to exit).
    pub seconds: f64,
    /// Peak resident set size of the process, kB (`/usr/bin/time`'s `%M`).
    pub peak_rss_kb: u64,
    /// API requests, when the tool reported them.
    pub requests: Option<Requests>,
    /// The exit code (-1 when killed by a signal).
    pub exit: i32,
    /// The last line of stdout that starts with `Plan:` (mip), for sanity checks.
    pub plan_line: Option<String>,
    /// The last lines of stderr, for failures.
    pub stderr_tail: String,
    /// The time limit, seconds, when the command outlived it and was killed; then `seconds` is
    /// (just over) the limit, `requests` (kubectl) those answered until then, and `peak_rss_kb` the peak
    /// until then.
    pub timed_out: Option<f64>,
}

impl Sample {
    /// Why the run did not finish, for the report (`None` when it did).
    pub fn unfinished_reason(&self) -> Option<String> {
        let limit = self.timed_out?;
        let answered = match self.requests {
            Some(r) => format!(", {} requests answered until then", r.total()),
            None => String::new(),
        };
        Some(format!("killed at the limit of {limit:.0} s{answered}"))
    }
}

/// A temp file as the child's stdout or stderr (a pipe would fill up and block a child that
/// logs every request while this process waits for it).
fn capture_file() -> anyhow::Result<(std::fs::File, std::fs::File)> {
    let file = tempfile::tempfile().context("failed to create a temp file for a command's output")?;
    let child_end = file.try_clone().context("failed to share a temp file with a command")?;
    Ok((file, child_end))
}

fn read_back(mut file: std::fs::File) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    file.rewind().and_then(|()| file.read_to_end(&mut bytes)).context("failed to read a command's output")?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Kills what `/usr/bin/time` (process `time_pid`) runs, so that `time` still reports the peak
/// RSS; `time` itself when it has no child (any more).
fn kill_measured(time_pid: u32) {
    let children =
        std::fs::read_to_string(format!("/proc/{time_pid}/task/{time_pid}/children")).unwrap_or_default();
    let targets: Vec<String> = children.split_whitespace().map(str::to_owned).collect();
    let mut kill = Command::new("kill");
    kill.arg("-KILL").arg("--");
    if targets.is_empty() {
        kill.arg(time_pid.to_string());
    } else {
        kill.args(&targets);
    }
    let _ = kill.status();
}

/// Waits for `child`, killing what it measures after `limit`; returns its status and whether
/// it was killed.
fn wait(mut child: std::process::Child, limit: Option<Duration>) -> anyhow::Result<(ExitStatus, bool)> {
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = done.send(());
        status
    });
    let killed = match limit {
        Some(limit) => matches!(finished.recv_timeout(limit), Err(mpsc::RecvTimeoutError::Timeout)),
        None => {
            let _ = finished.recv();
            false
        }
    };
    if killed {
        kill_measured(pid);
    }
    let status = waiter
        .join()
        .map_err(|_| anyhow::anyhow!("the thread waiting for a command panicked"))?
        .context("failed to wait for a command")?;
    Ok((status, killed))
}

/// Runs `command` under `/usr/bin/time -f %M` with stdin closed, capturing its output; after
/// `limit` (when given) the command is killed and the sample says so ([`Sample::timed_out`]).
///
/// # Errors
/// The command or `/usr/bin/time` cannot be started, or `time` reports nothing.
pub fn run(command: &Command, tool: Tool, limit: Option<Duration>) -> anyhow::Result<Sample> {
    let rss_file =
        tempfile::NamedTempFile::new().context("failed to create a temp file for /usr/bin/time")?;
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss_file.path())
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let (stdout_file, child_stdout) = capture_file()?;
    let (stderr_file, child_stderr) = capture_file()?;
    wrapped.stdin(std::process::Stdio::null()).stdout(child_stdout).stderr(child_stderr);
    let started = Instant::now();
    let child = wrapped.spawn().with_context(|| {
        format!(
            "failed to run `{}` under /usr/bin/time (hint: `apt-get install time`)",
            command.get_program().to_string_lossy()
        )
    })?;
    let (status, killed) = wait(child, limit)?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = read_back(stdout_file)?;
    let stderr = read_back(stderr_file)?;
    let time_report =
        std::fs::read_to_string(rss_file.path()).context("failed to read /usr/bin/time's report")?;
    // On a non-zero exit `time` writes "Command exited with non-zero status N" first.
    let peak_rss_kb = time_report
        .lines()
        .rev()
        .find_map(|l| l.trim().parse::<u64>().ok())
        .with_context(|| format!("no peak RSS in /usr/bin/time's report: {time_report:?}"))?;
    let requests = match tool {
        Tool::Mip => Requests::from_mip_stats(&stderr),
        Tool::Kubectl => Some(Requests::from_kubectl_log(&stderr)),
    };
    let plan_line = stdout.lines().rev().find(|l| l.starts_with("Plan:")).map(str::to_owned);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.contains("\"Response\" verb=")).collect();
    let stderr_tail = tail[tail.len().saturating_sub(8)..].join("\n");
    Ok(Sample {
        seconds,
        peak_rss_kb,
        requests,
        exit: status.code().unwrap_or(-1),
        plan_line,
        stderr_tail,
        timed_out: if killed { limit.map(|l| l.as_secs_f64()) } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_request_logs() {
        let mip = "note\napi requests: 12 reads, 0 writes (3 dry runs)\n";
        assert_eq!(Requests::from_mip_stats(mip), Some(Requests { reads: 12, writes: 0, dry_runs: 3 }));
        let kubectl = concat!(
            "I1126 10:00:00.000000 1 round_trippers.go:632] \"Response\" verb=\"GET\" url=\"https://127.0.0.1:1/api\" status=\"200 OK\" milliseconds=1\n",
            "I1126 10:00:00.000000 1 round_trippers.go:632] \"Response\" verb=\"PATCH\" url=\"https://127.0.0.1:1/api/v1/namespaces/a?dryRun=All&fieldManager=kubectl\" status=\"200 OK\" milliseconds=1\n",
            "I1126 10:00:00.000000 1 round_trippers.go:632] \"Response\" verb=\"PATCH\" url=\"https://127.0.0.1:1/api/v1/namespaces/a?fieldManager=kubectl\" status=\"201 Created\" milliseconds=1\n",
        );
        assert_eq!(Requests::from_kubectl_log(kubectl), Requests { reads: 1, writes: 1, dry_runs: 1 });
    }
}
