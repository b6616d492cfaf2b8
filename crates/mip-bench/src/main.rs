//! `mip-bench`: benchmarks of mip against kubectl (issue 8). See `docs/benchmarks.md`.
//!
//! ```text
//! mip-bench generate --federations N [--dir DIR]   write mip.yaml (+ its files) into DIR (default .)
//! mip-bench emit --federations N                    the mip-owned objects as multi-document YAML
//! mip-bench emit --inventory FILE                   the same, for an existing inventory
//! mip-bench run [--sizes 10,100,1000] [--repeat K] [--offline-size 10000] [--mip PATH] [--docs DIR] [--timeout S]
//! mip-bench compare --base OLD_MIP [--mip NEW_MIP] [--sizes 100,1000] [--repeat K] [--offline-size 10000] [--timeout S]
//!                                                   two builds of mip in lock step; a Markdown table on stdout
//! mip-bench argocd [--repeat K] [--mip PATH]          time to a Healthy platform: mip, the scripted README, Argo CD's floor
//! mip-bench argocd-refresh [--repeat K] [--mip PATH]  Argo CD reaction time, with and without refresh
//! ```

use anyhow::{Context, bail};
use mip_bench::{compare, emit, generate, run};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage:
  mip-bench generate --federations N [--dir DIR]
  mip-bench emit (--federations N | --inventory FILE)
  mip-bench run [--sizes 10,100,1000] [--repeat K] [--offline-size N] [--mip PATH] [--docs DIR] [--timeout S]
  mip-bench compare --base OLD_MIP [--mip NEW_MIP] [--sizes 100,1000] [--repeat K] [--offline-size N] [--timeout S]
  mip-bench argocd [--repeat K] [--mip PATH] [--ways mip,script,floor]
  mip-bench argocd-refresh [--repeat K] [--mip PATH]

  --timeout S (run, compare): kill a measured command after S seconds and report it as not finished
                              (default 600; 0: no limit)";

/// Flags as `--name value` pairs; every flag takes a value.
fn flags(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(name) = flag.strip_prefix("--") else { bail!("unexpected argument `{flag}`\n{USAGE}") };
        let value = it.next().with_context(|| format!("`--{name}` needs a value\n{USAGE}"))?;
        out.push((name.to_owned(), value.clone()));
    }
    Ok(out)
}

fn number(name: &str, value: &str) -> anyhow::Result<usize> {
    value.parse().with_context(|| format!("`--{name} {value}` is not a number"))
}

/// The default time limit of a measured command: far above anything mip takes at N = 10 000,
/// short enough that a tool that cannot finish does not hold the run for hours.
const DEFAULT_LIMIT: Duration = Duration::from_secs(600);

/// `run`'s and `compare`'s defaults but for the live sizes.
fn schedule(sizes: Vec<usize>) -> run::Schedule {
    run::Schedule { sizes, repeat: 3, offline_size: 10_000, limit: Some(DEFAULT_LIMIT) }
}

/// Sets the flag if it is one of the schedule's (`--sizes`, `--repeat`, `--offline-size`,
/// `--timeout`); `false` for any other.
fn schedule_flag(schedule: &mut run::Schedule, name: &str, value: &str) -> anyhow::Result<bool> {
    match name {
        "sizes" => {
            let mut sizes =
                value.split(',').map(|v| number(name, v.trim())).collect::<anyhow::Result<Vec<_>>>()?;
            sizes.sort_unstable();
            sizes.dedup();
            schedule.sizes = sizes;
        }
        "repeat" => schedule.repeat = number(name, value)?.max(1),
        "offline-size" => schedule.offline_size = number(name, value)?,
        // 0: no limit.
        "timeout" => {
            schedule.limit =
                Some(number(name, value)?).filter(|s| *s > 0).map(|s| Duration::from_secs(s as u64))
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("failed to write to stdout"),
        _ => Ok(()),
    }
}

fn main_inner() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else { bail!("{USAGE}") };
    let flags = flags(rest)?;
    match command.as_str() {
        "generate" => generate_command(&flags),
        "emit" => emit_command(&flags),
        "run" => run_command(&flags),
        "compare" => compare_command(&flags),
        "argocd" => argocd_command(&flags),
        "argocd-refresh" => argocd_refresh_command(&flags),
        "-h" | "--help" | "help" => stdout(&format!("{USAGE}\n")),
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

/// `generate`: an inventory of N federations, written into a directory.
fn generate_command(flags: &[(String, String)]) -> anyhow::Result<()> {
    let (mut n, mut dir) = (None, PathBuf::from("."));
    for (name, value) in flags {
        match name.as_str() {
            "federations" => n = Some(number(name, value)?),
            "dir" => dir = PathBuf::from(value),
            _ => bail!("unknown flag `--{name}`\n{USAGE}"),
        }
    }
    let path = generate::write(&dir, n.context("`--federations N` is required")?)?;
    stdout(&format!("{}\n", path.display()))
}

/// `emit`: the mip-owned objects of an inventory as multi-document YAML.
fn emit_command(flags: &[(String, String)]) -> anyhow::Result<()> {
    let (mut n, mut inventory) = (None, None);
    for (name, value) in flags {
        match name.as_str() {
            "federations" => n = Some(number(name, value)?),
            "inventory" => inventory = Some(PathBuf::from(value)),
            _ => bail!("unknown flag `--{name}`\n{USAGE}"),
        }
    }
    let yaml = match (n, inventory) {
        (Some(n), None) => {
            let dir = tempfile::tempdir().context("failed to create a temp dir")?;
            emit::objects(&generate::write(dir.path(), n)?)?
        }
        (None, Some(path)) => emit::objects(&path)?,
        _ => bail!("give exactly one of `--federations N` and `--inventory FILE`\n{USAGE}"),
    };
    stdout(&yaml)
}

/// `run`: mip against kubectl; writes the docs, then the verdicts on stderr.
fn run_command(flags: &[(String, String)]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("failed to find this executable")?;
    let mut options = run::RunOptions {
        schedule: schedule(vec![10, 100, 1000]),
        mip: exe.with_file_name("mip"),
        docs: PathBuf::from("docs"),
    };
    for (name, value) in flags {
        if schedule_flag(&mut options.schedule, name, value)? {
            continue;
        }
        match name.as_str() {
            "mip" => options.mip = PathBuf::from(value),
            "docs" => options.docs = PathBuf::from(value),
            _ => bail!("unknown flag `--{name}`\n{USAGE}"),
        }
    }
    let results = run::run(&options)?;
    mip_bench::report::write(&results, &options.docs)?;
    run::check_noop_applies(&results)?;
    let mut report = String::new();
    for v in mip_bench::report::verdicts(&results) {
        let mark = match v.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        report.push_str(&format!("{mark:>12}  {}: {}\n", v.target, v.measured));
    }
    report.push_str(&format!("wrote {0}/benchmarks.md and {0}/benchmarks.svg\n", options.docs.display()));
    let _ = std::io::stderr().write_all(report.as_bytes());
    Ok(())
}

/// `compare`: two builds of mip in lock step; a Markdown table on stdout.
fn compare_command(flags: &[(String, String)]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("failed to find this executable")?;
    let (mut base, mut options) = (
        None,
        compare::CompareOptions {
            schedule: schedule(vec![100, 1000]),
            new: exe.with_file_name("mip"),
            base: PathBuf::new(),
        },
    );
    for (name, value) in flags {
        if schedule_flag(&mut options.schedule, name, value)? {
            continue;
        }
        match name.as_str() {
            "base" => base = Some(PathBuf::from(value)),
            "mip" => options.new = PathBuf::from(value),
            "docs" => {
                bail!("`compare` writes no docs: its table goes to stdout (redirect it to keep it)\n{USAGE}")
            }
            _ => bail!("unknown flag `--{name}`\n{USAGE}"),
        }
    }
    options.base = base.context("`--base PATH_TO_OLD_MIP` is required")?;
    let results = compare::run(&options)?;
    stdout(&mip_bench::report::compare_markdown(&results))
}

/// `argocd`: the time to a Healthy platform, three ways.
fn argocd_command(flags: &[(String, String)]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("failed to find this executable")?;
    let mut options = mip_bench::argocd::Options {
        repeat: 3,
        mip: exe.with_file_name("mip"),
        ways: mip_bench::argocd::Way::ALL.to_vec(),
    };
    for (name, value) in flags {
        match name.as_str() {
            "repeat" => options.repeat = number(name, value)?.max(1),
            "mip" => options.mip = PathBuf::from(value),
            "ways" => {
                options.ways = value
                    .split(',')
                    .map(|w| {
                        mip_bench::argocd::Way::parse(w)
                            .with_context(|| format!("unknown way `{w}` (mip, script, floor)"))
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            _ => bail!("unknown flag `--{name}`\n{USAGE}"),
        }
    }
    stdout(&mip_bench::argocd::run(&options)?)
}

/// `argocd-refresh`: Argo CD's reaction time, with and without refresh.
fn argocd_refresh_command(flags: &[(String, String)]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("failed to find this executable")?;
    let mut options = mip_bench::argocd_refresh::Options { repeat: 3, mip: exe.with_file_name("mip") };
    for (name, value) in flags {
        match name.as_str() {
            "repeat" => options.repeat = number(name, value)?.max(1),
            "mip" => options.mip = PathBuf::from(value),
            _ => bail!("unknown flag `--{name}`\n{USAGE}"),
        }
    }
    stdout(&mip_bench::argocd_refresh::run(&options)?)
}

fn main() -> ExitCode {
    match main_inner() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
