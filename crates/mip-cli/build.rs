//! `mip --version`: the package version, the Git commit and the build date.
//!
//! The commit comes from `MIP_BUILD_COMMIT` when set (a container or release build from a source
//! tarball), else from `git` in the source tree, else `unknown`. The date is `SOURCE_DATE_EPOCH`
//! (reproducible builds) when set, else today, in UTC. Nothing here fails the build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=MIP_BUILD_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
    }
    let commit = std::env::var("MIP_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default()
        });
    let date = jiff::Timestamp::from_second(secs)
        .map_or_else(|_| "unknown".to_owned(), |t| t.strftime("%Y-%m-%d").to_string());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = commit.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MIP_VERSION_LONG={version} (commit {commit}, built {date})");
    // The parts apart, for `mip version -o json`.
    println!("cargo:rustc-env=MIP_COMMIT={commit}");
    println!("cargo:rustc-env=MIP_BUILT={date}");
}
