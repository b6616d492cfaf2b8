//! The GitHub Actions example (`examples/github-actions/`): linted with actionlint (built from
//! its Go module by `tools/actionlint/build.sh`, cached outside the work tree; a failure to
//! build or lint fails the test, it never skips), its conventions checked, and its
//! pull-request plan step run as written in a Git repository with a base and a head commit.

use crate::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workflows() -> Vec<PathBuf> {
    let dir = root().join("examples/github-actions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/github-actions")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no workflow in {}", dir.display());
    files
}

/// `tools/actionlint/build.sh`: the binary, built when missing.
fn actionlint() -> PathBuf {
    let path = format!("{}:/usr/local/go/bin", std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg(root().join("tools/actionlint/build.sh"))
        .env("PATH", path)
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "building actionlint failed:\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).expect("utf8").trim())
}

#[test]
fn actionlint_passes_on_every_example_workflow() {
    let bin = actionlint();
    let version = Command::new(&bin).arg("-version").output().expect("actionlint runs");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("v1.7.12"), "{version:?}");
    let out = Command::new(&bin).arg("-no-color").args(workflows()).output().expect("actionlint runs");
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // It does report a broken workflow (the test would prove nothing otherwise).
    let dir = tempfile::tempdir().expect("tmp");
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v2\n",
    )
    .expect("write");
    let out = Command::new(&bin).arg("-no-color").arg(&broken).output().expect("actionlint runs");
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

fn example() -> (String, serde_json::Value) {
    let text = std::fs::read_to_string(root().join("examples/github-actions/mip.yml")).expect("example");
    let doc = mip_inventory::yaml::parse_document("mip.yml", &text).expect("valid YAML").to_json();
    (text, doc)
}

/// Every action the examples use, pinned by the commit its release tag names (read from the
/// action's repository: `git show-ref --tags`, and `runs.using: node24` in that commit's
/// action.yml, or a composite of node24 actions). Updating one means updating this table.
const PINNED: &[(&str, &str, &str)] = &[
    ("actions/checkout", "3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    ("actions/upload-artifact", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    ("actions/download-artifact", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    ("actions/github-script", "ed597411d8f924073f98dfc5c65a23a2325f34cd", "v8.0.0"),
    ("actions/attest-build-provenance", "a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32", "v4.1.0"),
    ("anchore/sbom-action", "e22c389904149dbc22b58101806040fa8d37a610", "v0.24.0"),
];

#[test]
fn every_action_is_pinned_by_the_commit_of_its_release() {
    for file in workflows() {
        let text = std::fs::read_to_string(&file).expect("workflow");
        let name = file.file_name().expect("name").to_string_lossy().into_owned();
        for (n, line) in text.lines().enumerate() {
            let Some(uses) = line.trim_start().trim_start_matches("- ").strip_prefix("uses:") else {
                continue;
            };
            let at = format!("{name}:{}: `{}`", n + 1, line.trim());
            let (action, rest) = uses.trim().split_once('@').unwrap_or_else(|| panic!("{at}: no @ref"));
            let (sha, comment) =
                rest.split_once(" # ").unwrap_or_else(|| panic!("{at}: no `# vX.Y.Z` comment"));
            assert!(
                sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{at}: not a full commit SHA"
            );
            assert!(
                PINNED.contains(&(action, sha, comment.trim())),
                "{at}: not a verified pin (tests/cli/workflow.rs PINNED)"
            );
        }
    }
}

#[test]
fn the_example_installs_the_release_binary_and_bounds_its_runs() {
    let (text, doc) = example();
    let job = &doc["jobs"]["check"];
    let steps = job["steps"].as_array().expect("steps");
    let version = doc["env"]["MIP_VERSION"].as_str().expect("MIP_VERSION");
    assert!(
        version.starts_with('v') && version[1..].split('.').all(|n| n.parse::<u32>().is_ok()),
        "{version}"
    );
    let runs: String = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    // The release binary, checked against the release's SHA256SUMS; nothing compiled.
    assert!(runs.contains(r#""$MIP_RELEASES/$MIP_VERSION/$file""#), "the binary of the pinned release");
    assert!(runs.contains(r#""$MIP_RELEASES/$MIP_VERSION/SHA256SUMS""#), "its checksums");
    assert!(runs.contains("sha256sum --check --ignore-missing --strict SHA256SUMS"), "checked");
    assert!(runs.contains(r#"grep -q " $file\$" "$dir/SHA256SUMS""#), "its own line is required");
    assert!(!runs.contains("cargo "), "nothing is compiled");
    assert!(doc["concurrency"]["group"].is_string() && doc["concurrency"]["cancel-in-progress"] == true);
    assert!(job["timeout-minutes"].as_u64().is_some_and(|m| m > 0 && m <= 60));
    assert_eq!(steps[0]["with"]["fetch-depth"], 0, "the base commit is fetched");
    for cmd in ["mip render --check", "mip validate --branch-check", "mip plan --base \"$BASE_SHA\""] {
        assert!(runs.contains(cmd), "`{cmd}` missing");
    }
    // Forks: a read-only token, so the plan goes to the job summary, never a failed comment.
    let post = steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/github-script@")))
        .expect("comment step");
    assert!(post["if"].as_str().expect("if").contains("!github.event.pull_request.head.repo.fork"));
    let summary = steps
        .iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("GITHUB_STEP_SUMMARY")))
        .expect("summary");
    assert!(summary["if"].as_str().expect("if").contains("&& github.event.pull_request.head.repo.fork"));
    // The live plan runs only with the kubeconfig secret, the review plan only without it.
    assert!(text.contains("HAS_KUBECONFIG: ${{ secrets.MIP_KUBECONFIG != '' }}"));
    assert!(text.contains("mip-plan -->"), "the comment is found by mip's marker");
}

/// Runs the plan step's `run:` script as Actions would (bash -e), in `repo`.
fn plan_step(repo: &Path, base_sha: &str) -> (std::process::Output, String) {
    let (_, doc) = example();
    let step = doc["jobs"]["check"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with("Plan what the pull request changes")))
        .expect("the review plan step");
    let script = step["run"].as_str().expect("run");
    let bin = Path::new(MIP_BIN).parent().expect("dir").display().to_string();
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(repo)
        .env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()))
        .env("MIP_INVENTORY", "mip.yaml")
        .env("BASE_SHA", base_sha)
        .env("MIP_HEAD_SHA", git(repo, &["rev-parse", "HEAD"]))
        .env("NO_COLOR", "1")
        .output()
        .expect("bash runs");
    let md = std::fs::read_to_string(repo.join("plan.md")).unwrap_or_default();
    (out, md)
}

#[test]
fn the_pull_request_plan_step_runs_as_written() {
    // The base keeps its state in the cluster: the review plan needs neither.
    let base = format!(
        "{MINIMAL}  - {{name: federation-B, kind: local, apps: [{{name: exareme2}}]}}\nstate: {{backend: cluster}}\n"
    );
    let (dir, inv) = temp_inventory(&base);
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "mip.yaml"]);
    git(repo, &["commit", "-q", "-m", "base"]);
    let base_sha = git(repo, &["rev-parse", "HEAD"]);
    std::fs::write(&inv, format!("{MINIMAL}state: {{backend: cluster}}\n")).expect("write");
    git(repo, &["commit", "-q", "-am", "remove federation-B"]);
    let head = git(repo, &["rev-parse", "HEAD"]);

    let (out, md) = plan_step(repo, &base_sha);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(md.starts_with("<!-- mip-plan -->\n### mip plan\n\n> [!CAUTION]"), "{md}");
    assert!(md.contains("`v1/Namespace/federation-b`"), "{md}");
    assert!(md.contains(&format!("commit `{}`", &head[..12])), "{md}");
    assert!(md.contains("```mermaid"), "{md}");

    // A broken head: the step fails and the comment says why.
    std::fs::write(&inv, MINIMAL.replace("kind: local", "kind: locl")).expect("write");
    git(repo, &["commit", "-q", "-am", "typo"]);
    let (out, md) = plan_step(repo, &base_sha);
    assert!(!out.status.success());
    assert!(md.starts_with("<!-- mip-plan -->\n### mip plan failed"), "{md}");
}
