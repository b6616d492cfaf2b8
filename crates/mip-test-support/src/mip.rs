//! [`Mip`]: one way to run the `mip` binary from a test (arguments, environment, kubeconfig,
//! state dir, working dir, stdin, a timeout) and capture what it did.
//!
//! The binary's path is passed in: `CARGO_BIN_EXE_mip` is only known in the test crate that
//! builds it (`Mip::new(env!("CARGO_BIN_EXE_mip"))`).
//!
//! By default a run is clean: `NO_COLOR=1`, no `MIP_INVENTORY` from the caller's environment,
//! stdin empty (`/dev/null`), killed (and the test failed) after [`DEFAULT_TIMEOUT`].

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a run may take unless [`Mip::timeout`] says otherwise: far longer than any run
/// needs on a loaded machine; it only turns a hang into a failure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A `mip` command being built; [`Mip::run`] runs it and returns its [`Output`].
#[derive(Debug)]
pub struct Mip {
    command: Command,
    /// What the command line shows in failures.
    shown: Vec<OsString>,
    /// Arguments that go after all the others (`-i`, `--state-dir`), whenever they were given.
    tail: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Mip {
    /// `mip` at `bin`, clean (see the [module docs](self)), in the caller's working directory.
    pub fn new(bin: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(bin);
        command.env("NO_COLOR", "1").env_remove("MIP_INVENTORY");
        Mip { command, shown: Vec::new(), tail: Vec::new(), stdin: None, timeout: DEFAULT_TIMEOUT }
    }

    /// One more argument.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.shown.push(arg.as_ref().to_owned());
        self.command.arg(arg);
        self
    }

    /// More arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    /// `-i <path>`, after every other argument (so it may be given before the subcommand).
    #[must_use]
    pub fn inventory(mut self, path: impl AsRef<OsStr>) -> Self {
        self.tail.extend(["-i".into(), path.as_ref().to_owned()]);
        self
    }

    /// `--state-dir <path>`, after every other argument (as [`Mip::inventory`]).
    #[must_use]
    pub fn state_dir(mut self, path: impl AsRef<OsStr>) -> Self {
        self.tail.extend(["--state-dir".into(), path.as_ref().to_owned()]);
        self
    }

    /// The command with the trailing arguments added.
    fn finish(&mut self) -> &mut Command {
        let tail = std::mem::take(&mut self.tail);
        self.command.args(&tail);
        self.shown.extend(tail);
        &mut self.command
    }

    /// The `KUBECONFIG` environment variable.
    #[must_use]
    pub fn kubeconfig(self, path: impl AsRef<OsStr>) -> Self {
        self.env("KUBECONFIG", path)
    }

    /// No `KUBECONFIG` and `HOME` set to `home`: no kubeconfig of the machine is found by
    /// accident.
    #[must_use]
    pub fn no_kubeconfig(self, home: impl AsRef<OsStr>) -> Self {
        self.env_remove("KUBECONFIG").env("HOME", home)
    }

    /// The working directory.
    #[must_use]
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// An environment variable.
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Environment variables.
    #[must_use]
    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(mut self, vars: &[(K, V)]) -> Self {
        for (key, value) in vars {
            self.command.env(key, value);
        }
        self
    }

    /// An environment variable removed (from the caller's environment or an earlier `env`).
    #[must_use]
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.command.env_remove(key);
        self
    }

    /// What the run reads on stdin (by default nothing: `/dev/null`).
    #[must_use]
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// How long the run may take before it is killed and the test fails.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs it to the end and returns its exit status, stdout and stderr.
    ///
    /// # Panics
    /// If `mip` cannot be started, or when it runs longer than the timeout (it is killed; the
    /// failure shows the command and what it printed so far).
    pub fn run(mut self) -> Output {
        let stdin = if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() };
        let mut child = self
            .finish()
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("mip {:?} does not start: {error}", self.shown));
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            // A writer of its own: mip may print before it reads everything.
            std::thread::spawn(move || pipe.write_all(&bytes));
        }
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = wait(&mut child, self.timeout);
        let output = Output {
            status: status.unwrap_or_else(|| {
                let _ = child.kill();
                child.wait().unwrap_or_else(|error| panic!("wait for mip: {error}"))
            }),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        };
        assert!(
            status.is_some(),
            "mip {:?} ran longer than {:?} and was killed; stdout:\n{}\nstderr:\n{}",
            self.shown,
            self.timeout,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Starts it in the background with these stdout and stderr (stdin empty); the timeout does
    /// not apply.
    ///
    /// # Panics
    /// If `mip` cannot be started.
    pub fn spawn(mut self, stdout: Stdio, stderr: Stdio) -> Child {
        self.finish()
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("mip {:?} does not start: {error}", self.shown))
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Waits for `child` to exit, at most `timeout`; `None` when it is still running.
fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Ok(None) => return None,
            Err(error) => panic!("wait for mip: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_env_dir_and_the_trailing_arguments_reach_the_command() {
        let dir = tempfile::tempdir().expect("tmp");
        let o = Mip::new("sh")
            .inventory("inv.yaml")
            .args([
                "-c",
                "cat; echo \" $GREETING $NO_COLOR ${MIP_INVENTORY-unset} $(basename \"$PWD\") $*\"",
                "sh",
            ])
            .env("GREETING", "hello")
            .dir(dir.path())
            .stdin("from stdin")
            .run();
        let name = dir.path().file_name().expect("name").to_string_lossy().into_owned();
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("from stdin hello 1 unset {name} -i inv.yaml\n")
        );
    }

    #[test]
    #[should_panic(expected = "ran longer than 200ms and was killed")]
    fn a_run_longer_than_its_timeout_fails() {
        let _ = Mip::new("sleep").arg("30").timeout(Duration::from_millis(200)).run();
    }
}
