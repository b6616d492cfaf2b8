//! What operators install and deploy: `mip --version` names its commit and build date; the
//! container image builds without a daemon and its binary runs from the unpacked rootfs
//! (`tools/image/check.sh`: buildah, umoci) with its OCI labels, and its `-git` variant runs
//! `mip plan --base`; the examples name the image tag and the release the release workflow
//! publishes; the CronJob kustomize base of `examples/cron` builds (the kustomize of the Argo CD
//! tier) and the API server accepts every object in a server-side dry run; the example
//! PrometheusRule passes `promtool check rules`.

use crate::live::kubectl;
use crate::*;
use mip_test_support::TestCluster;
use std::process::Command;

#[test]
fn version_names_the_commit_and_the_build_date() {
    let o = mip(&["--version"]);
    assert_eq!(code(&o), 0);
    let v = stdout(&o);
    let (head, rest) = v.trim().split_once(" (commit ").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(head, format!("mip {}", env!("CARGO_PKG_VERSION")));
    let (commit, date) = rest.trim_end_matches(')').split_once(", built ").unwrap_or_else(|| panic!("{v}"));
    assert!(commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()), "{v}");
    let parts: Vec<&str> = date.split('-').collect();
    assert!(parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()), "{v}");
}

#[test]
fn the_image_builds_without_a_daemon_and_its_binary_runs() {
    let script = root().join("tools/image/check.sh");
    let o = Command::new("bash").arg(&script).arg(MIP_BIN).output().expect("check.sh runs");
    assert!(o.status.success(), "tools/image/check.sh failed: {}{}", stdout(&o), stderr(&o));
    // The binary in the image, run inside its rootfs as uid 65532, says what the built one says.
    assert_eq!(stdout(&o), stdout(&mip(&["--version"])), "{}", stderr(&o));
    let log = stderr(&o);
    assert!(
        log.contains("entrypoint exec form [\"/usr/local/bin/mip\",\"--help\"], user 65532, no shell"),
        "{log}"
    );
    let labels = format!(
        "labels org.opencontainers.image.{{source,version,revision,created,licenses,title,description}}: \
         version v{}, licenses Apache-2.0",
        env!("CARGO_PKG_VERSION")
    );
    assert!(log.contains(&labels), "{log}");
}

#[test]
fn the_git_image_plans_against_a_base_commit() {
    // The pull-request plan of tests/cli/workflow.rs, run inside the `-git` variant's rootfs as
    // uid 65532, on a checkout owned by another uid (as a mounted work tree is).
    let (dir, inv) = temp_inventory(&format!(
        "{MINIMAL}  - {{name: federation-B, kind: local, apps: [{{name: exareme2}}]}}\n"
    ));
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "mip.yaml"]);
    git(repo, &["commit", "-q", "-m", "base"]);
    let base = git(repo, &["rev-parse", "HEAD"]);
    std::fs::write(&inv, MINIMAL).expect("write");
    git(repo, &["commit", "-q", "-am", "remove federation-B"]);
    let o = Command::new("bash")
        .arg(root().join("tools/image/check.sh"))
        .arg(MIP_BIN)
        .arg("git")
        .arg(repo)
        .arg(&base)
        .output()
        .expect("check.sh runs");
    assert!(o.status.success(), "tools/image/check.sh git failed: {}{}", stdout(&o), stderr(&o));
    let log = stderr(&o);
    assert!(log.contains("git variant: git version "), "{log}");
    let md = stdout(&o);
    assert!(md.contains("### mip plan"), "{md}{log}");
    assert!(md.contains("`v1/Namespace/federation-b`"), "{md}{log}");
}

/// The release tag that `release.yml` publishes for this version: `v` + the crate version.
fn release_tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

#[test]
fn the_examples_name_the_image_tag_and_the_release_the_release_workflow_publishes() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let workflow = read("examples/github-actions/release.yml");
    // Tags `v*` trigger it, and it publishes the image and the release under the tag's name.
    assert!(workflow.contains("\non:\n  push:\n    tags: [\"v*\"]\n"), "{workflow}");
    assert!(workflow.contains(r#"tag="$image:${GITHUB_REF_NAME}${VARIANT}""#), "{workflow}");
    assert!(workflow.contains(r#"gh release create "$GITHUB_REF_NAME""#), "{workflow}");
    let tag = release_tag();
    let image = "ghcr.io/medical-informatics-platform/mip";
    // The CronJob runs that image at that tag; the README's overlay pins the same.
    let cron = read("examples/cron/drift-cronjob.yaml");
    let used: Vec<&str> = cron.lines().filter_map(|l| l.trim().strip_prefix("image: ")).collect();
    assert_eq!(used, [format!("{image}:{tag}")], "examples/cron/drift-cronjob.yaml");
    let readme = read("examples/cron/README.md");
    assert!(readme.contains(&format!("{{name: {image}, newTag: {tag}}}")), "examples/cron/README.md");
    assert!(readme.contains(&format!("examples/cron?ref={tag}]")), "examples/cron/README.md");
    // The pull-request workflow installs that release.
    let pr = read("examples/github-actions/mip.yml");
    let pr = mip_inventory::yaml::parse_document("mip.yml", &pr).expect("YAML").to_json();
    assert_eq!(pr["env"]["MIP_VERSION"], tag.as_str(), "examples/github-actions/mip.yml");
}

#[test]
fn the_cron_kustomize_base_builds_and_the_api_server_accepts_it() {
    let kustomize =
        mip_test_support::binaries::argocd_bin_dir().expect("Argo CD tier binaries").join("kustomize");
    let built =
        Command::new(&kustomize).arg("build").arg(root().join("examples/cron")).output().expect("kustomize");
    assert!(built.status.success(), "kustomize build: {}", stderr(&built));
    let manifests = stdout(&built);
    // The inventory reached the generated ConfigMap, and the CronJob mounts that ConfigMap by
    // its hashed name; no kubeconfig anywhere (the pod's ServiceAccount is used).
    let config_map = manifests
        .lines()
        .find_map(|l| l.trim().strip_prefix("name: mip-drift-"))
        .unwrap_or_else(|| panic!("no generated ConfigMap: {manifests}"));
    let mounted = manifests.split_once("configMap:").map(|(_, rest)| rest.trim_start()).unwrap_or_default();
    assert!(mounted.starts_with(&format!("name: mip-drift-{config_map}\n")), "{manifests}");
    assert!(manifests.contains("kind: Inventory"), "{manifests}");
    assert!(!manifests.contains("kubeconfig"), "{manifests}");
    for field in
        ["activeDeadlineSeconds: 600", "ttlSecondsAfterFinished: 86400", "readOnlyRootFilesystem: true"]
    {
        assert!(manifests.contains(field), "{field}: {manifests}");
    }
    // Server-side dry run of everything (the namespace is created for real first: a dry run
    // cannot put objects into a namespace that does not exist).
    let _ = kubectl(&["create", "namespace", "mip-system"]);
    let mut apply = TestCluster::shared().kubectl();
    apply.args(["apply", "--dry-run=server", "-f", "-"]);
    let o = mip_test_support::run_piped(apply, manifests.as_str());
    assert!(o.status.success(), "server-side dry run: {}{}", stdout(&o), stderr(&o));
    let accepted = stdout(&o);
    for object in ["serviceaccount/mip-drift", "cronjob.batch/mip-drift", "configmap/mip-drift-"] {
        assert!(accepted.contains(object), "{object}: {accepted}");
    }
}

#[test]
fn the_example_alert_rules_pass_promtool() {
    let promtool = crate::metrics::tool("promtool", "prometheus");
    let rule = std::fs::read_to_string(root().join("examples/cron/prometheus-rule.yaml")).expect("rule");
    // A Prometheus rule file is the PrometheusRule's `spec`, one level less indented.
    let spec: String = rule
        .split_once("\nspec:\n")
        .expect("spec")
        .1
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, spec).expect("write");
    let o = Command::new(promtool).args(["check", "rules"]).arg(&file).output().expect("promtool");
    assert!(o.status.success(), "promtool check rules: {}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("SUCCESS: 4 rules found"), "{}", stdout(&o));
}
