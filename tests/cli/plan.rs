use crate::*;

const INFRA: &str = "examples/mip-infra/mip.yaml";

#[test]
fn offline_plan_of_the_reference_setup() {
    let o = mip(&["plan", "--offline", "-i", INFRA]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Plan: 19 to create, 0 to update, 0 to replace, 0 to delete; 38 to await from Argo CD."),
        "{out}"
    );
    assert!(out.contains("+ argoproj.io/v1alpha1/AppProject/argocd-mip-team/default"));
    assert!(out.contains("<= argoproj.io/v1alpha1/Application/argocd-mip-team/federation-a-exareme2"));
    assert!(stderr(&o).is_empty(), "stderr: {}", stderr(&o));
}

#[test]
fn plans_are_byte_identical_across_runs() {
    for fmt in ["text", "json", "markdown"] {
        let a = mip(&["plan", "--offline", "-i", INFRA, "--output", fmt]);
        let b = mip(&["plan", "--offline", "-i", INFRA, "--output", fmt]);
        assert_eq!(code(&a), 0);
        assert_eq!(a.stdout, b.stdout, "{fmt} output differs between runs");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (p1, p2) = (dir.path().join("a.mip"), dir.path().join("b.mip"));
    for p in [&p1, &p2] {
        let o = mip(&["plan", "--offline", "-i", INFRA, "--out", p.to_str().expect("utf8")]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(&p1).expect("a"), std::fs::read(&p2).expect("b"), "plan files differ");
}

#[test]
fn detailed_exitcode_reports_changes() {
    assert_eq!(code(&mip(&["plan", "--offline", "-i", INFRA, "--detailed-exitcode"])), 2);
    assert_eq!(code(&mip(&["plan", "--offline", "-i", INFRA])), 0);
}

#[test]
fn json_is_a_versioned_contract() {
    let o = mip(&["plan", "--offline", "-i", INFRA, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["format_version"], "1");
    assert_eq!(v["mode"], "offline");
    assert!(v["inventory_digest"].as_str().expect("digest").starts_with("sha256:"));
    let changes = v["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 19);
    for c in changes {
        for key in ["address", "action", "step", "reason"] {
            assert!(c.get(key).is_some(), "change lacks `{key}`: {c}");
        }
    }
    assert_eq!(changes[0]["address"], "argoproj.io/v1alpha1/AppProject/argocd-mip-team/default");
    assert_eq!(changes[0]["step"], "default-project");
    let expected = v["expected"].as_array().expect("expected");
    assert_eq!(expected.len(), 38);
    assert!(expected.iter().all(|e| e["action"] == "await"));
    assert_eq!(v["summary"]["create"], 19);
}

#[test]
fn markdown_fits_a_pr_comment_and_says_when_cut() {
    let full = stdout(&mip(&["plan", "--offline", "-i", INFRA, "--output", "markdown"]));
    assert!(full.starts_with("<!-- mip-plan -->\n### mip plan"), "the hidden marker first: {full}");
    assert!(full.contains("<details>"));
    assert!(
        full.find("| create |").expect("table") < full.find("<details>").expect("details"),
        "summary first"
    );
    assert!(!full.contains("Plan truncated"));
    let cut = stdout(&mip(&[
        "plan",
        "--offline",
        "-i",
        INFRA,
        "--output",
        "markdown",
        "--markdown-budget",
        "1500",
    ]));
    assert!(cut.len() <= 1500, "{} chars", cut.len());
    assert!(cut.contains("**Plan truncated:**"), "{cut}");
}

#[test]
fn plan_file_is_private_and_verifiable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("plan.mip");
    let o = mip(&["plan", "--offline", "-i", INFRA, "--out", p.to_str().expect("utf8")]);
    assert_eq!(code(&o), 0);
    assert!(stderr(&o).contains("saved the plan"));
    let mode = std::fs::metadata(&p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let bytes = std::fs::read(&p).expect("read");
    let plan = mip_plan::planfile::from_bytes("plan.mip", &bytes).expect("verifies");
    assert_eq!(plan.summary.create, 19);
    let tampered =
        String::from_utf8(bytes).expect("utf8").replacen("main-argo-projects", "evil-argo-projects", 1);
    assert!(matches!(
        mip_plan::planfile::from_bytes("plan.mip", tampered.as_bytes()),
        Err(mip_plan::planfile::Error::Tampered { .. })
    ));
}

#[test]
fn branch_revision_renames_the_roots() {
    let o = mip(&["plan", "--offline", "-i", INFRA, "--revision", "feat/x", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["prefix"], "feat-x-");
    let addrs: Vec<&str> =
        v["changes"].as_array().expect("a").iter().filter_map(|c| c["address"].as_str()).collect();
    assert!(addrs.contains(&"argoproj.io/v1alpha1/Application/argocd-mip-team/feat-x-argo-projects"));
}

#[test]
fn an_unreachable_cluster_is_a_clear_error_in_bounded_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let kc = dir.path().join("kubeconfig");
    // Port 9 (discard) on loopback: nothing listens there.
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n").expect("w");
    let start = std::time::Instant::now();
    let o = mip_env(
        &[
            "plan",
            "-i",
            INFRA,
            "--request-timeout",
            "2",
            "--state-dir",
            dir.path().join("s").to_str().expect("utf8"),
        ],
        &[("KUBECONFIG", kc.to_str().expect("utf8"))],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("unreachable"), "{}", stderr(&o));
    assert!(start.elapsed() < std::time::Duration::from_secs(20), "took {:?}", start.elapsed());
    assert!(o.stdout.is_empty());
    assert!(!dir.path().join("s").exists(), "a plan must not create the state store");
}

#[test]
fn bad_inventory_writes_nothing() {
    // As text: an invalid inventory (no repositories, a namespace that is no DNS label).
    let (dir, path) = temp_inventory(
        "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {namespace: Argo}\nrevision: main\n",
    );
    let out = dir.path().join("plan.mip");
    let o =
        mip(&["plan", "--offline", "-i", path.to_str().expect("utf8"), "--out", out.to_str().expect("utf8")]);
    assert_eq!(code(&o), 1);
    assert!(o.stdout.is_empty());
    assert!(!out.exists(), "a plan file was written for an invalid inventory");
    let err = stderr(&o);
    assert!(err.contains("mip.yaml:3:21: error[invalid-name]"), "{err}");
    assert!(err.contains("mip.yaml:1:1: error[missing-key]: missing required key `repositories`"), "{err}");
    assert!(err.lines().all(|l| !l.is_empty()), "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let o = mip(&["plan", "--offline", "-i", "does/not/exist.yaml"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.starts_with("error: cannot read inventory `does/not/exist.yaml`: "), "{err}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    assert_eq!(code(&mip(&["plan", "--bogus"])), 1);
    assert_eq!(code(&mip(&["frobnicate"])), 1);
    let help = mip(&["--help"]);
    assert_eq!(code(&help), 0);
    assert!(stdout(&help).contains("Exit codes (every command):"));
}

#[test]
fn version_prints_what_dash_dash_version_prints() {
    // Found by a new user: `mip version` answered "similar subcommand: federation".
    let long = stdout(&mip(&["--version"]));
    let o = mip(&["version"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), long);
    let v: serde_json::Value = serde_json::from_slice(&mip(&["version", "-o", "json"]).stdout).expect("json");
    assert_eq!(v["format_version"], "1");
    let (version, commit, built) = (
        v["version"].as_str().expect("v"),
        v["commit"].as_str().expect("c"),
        v["built"].as_str().expect("b"),
    );
    assert_eq!(long, format!("mip {version} (commit {commit}, built {built})\n"));
}

#[test]
fn live_flags_are_grouped_and_only_locking_commands_take_lock_flags() {
    let help = |args: &[&str]| {
        let o = mip(&[args, &["--help"]].concat());
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    for cmd in [
        &["drift"][..],
        &["doctor"],
        &["plan"],
        &["state", "list"],
        &["state", "show"],
        &["state", "history"],
    ] {
        let h = help(cmd);
        for heading in ["\nConnection:\n", "\nState:\n"] {
            assert!(h.contains(heading), "{cmd:?} has no {heading:?} heading:\n{h}");
        }
        assert!(
            !h.contains("--lock-ttl") && !h.contains("--lock-timeout") && !h.contains("\nLock:\n"),
            "{cmd:?} takes no lock:\n{h}"
        );
    }
    for cmd in [&["apply"][..], &["destroy"], &["state", "rm"], &["state", "migrate"], &["state", "rebuild"]]
    {
        let h = help(cmd);
        let lock = h.find("\nLock:\n").unwrap_or_else(|| panic!("{cmd:?} has no Lock heading:\n{h}"));
        assert!(h[lock..].contains("--lock-ttl") && h[lock..].contains("--lock-timeout"), "{cmd:?}:\n{h}");
    }
    for cmd in [&["drift"][..], &["doctor"], &["plan"], &["state", "list"], &["apply"]] {
        let h = help(cmd);
        let output = h.find("\nOutput:\n").unwrap_or_else(|| panic!("{cmd:?} has no Output heading:\n{h}"));
        assert!(h[output..].contains("--output <FORMAT>"), "{cmd:?}:\n{h}");
    }
    // `-o` is a format everywhere; a file is `--out`.
    assert!(help(&["import"]).contains("--out <FILE>"));
    assert!(!help(&["import"]).contains("-o,"));
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let o = mip(&["completions", shell]);
        assert_eq!(code(&o), 0);
        assert!(stdout(&o).contains("plan"), "{shell}");
    }
    let man = mip(&["man"]);
    assert_eq!(code(&man), 0);
    assert!(stdout(&man).contains(".TH mip"));
}

#[test]
fn apply_checks_local_inputs_before_contacting_the_cluster() {
    // No kubeconfig anywhere: a command that reached for the cluster would fail on that.
    let (dir, path) = temp_inventory(MINIMAL);
    let inv = path.to_str().expect("utf8");
    let nowhere = dir.path().join("no-kubeconfig");
    let store = dir.path().join("untouched-state");
    let env = [
        ("KUBECONFIG", nowhere.to_str().expect("utf8")),
        ("HOME", dir.path().to_str().expect("utf8")),
        ("MIP_STATE_DIR", store.to_str().expect("utf8")),
    ];

    let broken = dir.path().join("broken.plan");
    std::fs::write(&broken, "not a plan").expect("write");
    let o = mip_env(&["apply", broken.to_str().expect("utf8"), "-i", inv, "--auto-approve"], &env);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("broken.plan") && err.contains("is not a mip plan file"), "{err}");
    assert!(!err.contains("kubeconfig"), "{err}");

    let saved = dir.path().join("saved.plan");
    let o = mip(&[
        "plan",
        "--offline",
        "-i",
        inv,
        "--state-dir",
        dir.path().join("s").to_str().expect("utf8"),
        "--out",
        saved.to_str().expect("utf8"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&saved).expect("plan").replacen("create", "delete", 1);
    std::fs::write(&saved, text).expect("tamper");
    let o = mip_env(&["apply", saved.to_str().expect("utf8"), "-i", inv, "--auto-approve"], &env);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("modified after it was written"), "{}", stderr(&o));

    let o = mip_env(&["apply", "-i", inv, "--auto-approve", "--rotate", "not-an-address"], &env);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("`--rotate`") && !stderr(&o).contains("kubeconfig"), "{}", stderr(&o));
    assert!(!store.exists(), "no state was created");
}
