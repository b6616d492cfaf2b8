//! Pull-request review (issue 16): `mip plan --base REF` / `--base-inventory FILE` without a
//! cluster, `mip show`, the Markdown comment of a failed plan, `-o/--output` and `--out`, and
//! review safety against the real test cluster: protected deletions refused in an unattended
//! apply unless `--allow-delete` (or `protect:`) allows them, and `--target`.

use crate::*;
use mip_test_support::TestCluster;
use std::path::Path;

/// MINIMAL plus a second federation.
fn with_b() -> String {
    format!("{MINIMAL}  - {{name: federation-B, kind: local, apps: [{{name: exareme2}}]}}\n")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// `action address` of every change and (`argo …`) every Argo CD consequence.
fn lines(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for c in v["changes"].as_array().expect("changes") {
        out.push(format!("{} {}", c["action"].as_str().expect("a"), c["address"].as_str().expect("a")));
    }
    for e in v["expected"].as_array().expect("expected") {
        out.push(format!("argo {} {}", e["action"].as_str().expect("a"), e["address"].as_str().expect("a")));
    }
    out
}

#[test]
fn adding_a_federation_shows_exactly_its_objects_and_what_argo_cd_generates_for_it() {
    let (dir, head) = temp_inventory(&with_b());
    let base = dir.path().join("base.yaml");
    std::fs::write(&base, MINIMAL).expect("write");
    let o = mip(&["plan", "-i", s(&head), "--base-inventory", s(&base), "-o", "json", "--detailed-exitcode"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["mode"], "review");
    assert_eq!(v["base"]["inventory"], s(&base));
    assert_eq!(
        lines(&v),
        [
            "create v1/Namespace/federation-b",
            "argo create argoproj.io/v1alpha1/Application/argocd/argo-project-federation-b-local-app",
            "argo create argoproj.io/v1alpha1/AppProject/argocd/mip-argo-project-federation-b",
            "argo create argoproj.io/v1alpha1/Application/argocd/deployments-local-b",
            "argo create argoproj.io/v1alpha1/Application/argocd/federation-b-exareme2",
        ]
    );
    assert_eq!(v["summary"]["argo_create"], 4);
    assert!(!dir.path().join("json").exists() && !root().join("json").exists(), "`-o json` is a format");
}

#[test]
fn removing_a_federation_shows_its_deletions_with_the_banner() {
    let (dir, head) = temp_inventory(MINIMAL);
    let base = dir.path().join("base.yaml");
    std::fs::write(&base, with_b()).expect("write");
    let md = mip(&["plan", "-i", s(&head), "--base-inventory", s(&base), "-o", "markdown"]);
    assert_eq!(code(&md), 0, "{}", stderr(&md));
    let md = stdout(&md);
    assert!(
        md.starts_with(
            "<!-- mip-plan -->\n### mip plan\n\n> [!CAUTION]\n> **This plan deletes 5 object(s).**"
        ),
        "{md}"
    );
    assert!(md.contains("> - `v1/Namespace/federation-b`\n"), "the namespace is listed first: {md}");
    assert!(md.contains("`argoproj.io/v1alpha1/Application/argocd/federation-b-exareme2` (Argo CD deletes it and what it deployed)"));
    let text = stdout(&mip(&["plan", "-i", s(&head), "--base-inventory", s(&base)]));
    assert!(text.contains("Warning: this plan deletes 5 object(s)."), "{text}");
    assert!(text.contains("Argo CD will create 0, change 0 and delete 4."), "{text}");
}

#[test]
fn the_same_inventory_changes_nothing_and_exits_0() {
    let (dir, head) = temp_inventory(MINIMAL);
    let base = dir.path().join("base.yaml");
    std::fs::write(&base, MINIMAL).expect("write");
    let o = mip(&["plan", "-i", s(&head), "--base-inventory", s(&base), "--detailed-exitcode"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("No changes. The inventory changes nothing against its base."));
}

#[test]
fn base_at_a_git_revision_equals_base_inventory_of_the_older_file() {
    let (dir, inv) = temp_inventory(&with_b());
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "mip.yaml"]);
    git(dir.path(), &["commit", "-q", "-m", "two federations"]);
    std::fs::write(&inv, MINIMAL.replace("revision: main", "revision: release-1")).expect("write");
    git(dir.path(), &["commit", "-q", "-am", "one federation, another branch"]);
    let older = dir.path().join("older.yaml");
    std::fs::write(&older, with_b()).expect("write");
    for fmt in ["json", "text", "markdown"] {
        let by_git = mip(&["plan", "-i", s(&inv), "--base", "HEAD~1", "-o", fmt]);
        let by_file = mip(&["plan", "-i", s(&inv), "--base-inventory", s(&older), "-o", fmt]);
        assert_eq!(code(&by_git), 0, "{}", stderr(&by_git));
        assert_eq!(code(&by_file), 0, "{}", stderr(&by_file));
        if fmt == "json" {
            // Only the base differs: its name, and the revision it was read at.
            let (mut a, mut b) = (json(&by_git), json(&by_file));
            assert_eq!(a["base"]["inventory_digest"], b["base"]["inventory_digest"]);
            let v = a.clone();
            a["base"] = serde_json::Value::Null;
            b["base"] = serde_json::Value::Null;
            assert_eq!(a, b);
            assert_eq!(v["base"]["git_revision"], "HEAD~1");
            assert!(lines(&v).contains(&"delete v1/Namespace/federation-b".to_owned()));
            assert!(lines(&v).contains(
                &"create argoproj.io/v1alpha1/Application/argocd/release-1-argo-projects".to_owned()
            ));
        } else {
            // Only the name of the base differs.
            let (a, b) = (stdout(&by_git), stdout(&by_file));
            assert_eq!(a.replace("HEAD~1:mip.yaml", "BASE"), b.replace(s(&older), "BASE"), "{fmt}");
        }
    }
    let bad = mip(&["plan", "-i", s(&inv), "--base", "no-such-ref"]);
    assert_eq!(code(&bad), 1);
    let err = stderr(&bad);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: cannot read the base inventory no-such-ref:mip.yaml: ")
            && err.contains("(hint: "),
        "{err}"
    );
}

#[test]
fn show_round_trips_a_saved_plan_in_every_format_and_refuses_a_tampered_one() {
    let (dir, head) = temp_inventory(MINIMAL);
    let base = dir.path().join("base.yaml");
    std::fs::write(&base, with_b()).expect("write");
    let saved = dir.path().join("review.mip");
    let offline = dir.path().join("offline.mip");
    let state = dir.path().join("state");
    let o = mip(&["plan", "-i", s(&head), "--base-inventory", s(&base), "--out", s(&saved)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = mip(&["plan", "--offline", "-i", s(&head), "--state-dir", s(&state), "--out", s(&offline)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for fmt in ["text", "json", "markdown"] {
        let planned = mip(&["plan", "-i", s(&head), "--base-inventory", s(&base), "-o", fmt]);
        let shown = mip(&["show", s(&saved), "-o", fmt]);
        assert_eq!(code(&shown), 0, "{}", stderr(&shown));
        assert_eq!(stdout(&shown), stdout(&planned), "{fmt}");
        let planned = mip(&["plan", "--offline", "-i", s(&head), "--state-dir", s(&state), "--output", fmt]);
        assert_eq!(stdout(&mip(&["show", s(&offline), "--output", fmt])), stdout(&planned), "{fmt}");
    }
    let bytes = std::fs::read_to_string(&saved).expect("read");
    let tampered = dir.path().join("tampered.mip");
    std::fs::write(&tampered, bytes.replacen("federation-b", "federation-x", 1)).expect("write");
    let o = mip(&["show", s(&tampered)]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    assert!(stderr(&o).contains("was modified after it was written"), "{}", stderr(&o));
    // A review plan was made without a cluster: apply refuses it before connecting.
    let o = mip(&["apply", s(&saved), "-i", s(&head), "--auto-approve", "--kubeconfig", "/nonexistent"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("is a review plan"), "{}", stderr(&o));
}

#[test]
fn a_failed_plan_is_a_markdown_comment_too() {
    let (_dir, inv) = temp_inventory(&MINIMAL.replace("kind: local", "knd: local"));
    let env = [
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "org/gitops"),
        ("GITHUB_RUN_ID", "77"),
    ];
    let o = mip_env(&["plan", "-i", s(&inv), "--base-inventory", s(&inv), "-o", "markdown"], &env);
    assert_eq!(code(&o), 1);
    let md = stdout(&o);
    assert!(md.starts_with("<!-- mip-plan -->\n### mip plan failed\n\n```text\n"), "{md}");
    assert!(md.contains("error[unknown-key]") && md.contains("knd"), "{md}");
    assert!(
        md.contains("commit `0123456789ab` · [CI run](https://github.com/org/gitops/actions/runs/77)"),
        "{md}"
    );
    assert!(stderr(&o).contains("error[unknown-key]"), "the error still goes to stderr");
    let ok = mip_env(&["plan", "--offline", "-i", "examples/minimal/mip.yaml", "-o", "markdown"], &env);
    assert!(stdout(&ok).contains("commit `0123456789ab`"), "{}", stdout(&ok));
}

#[test]
fn each_command_accepts_only_the_formats_it_prints() {
    for args in [
        &["validate", "-i", "examples/minimal/mip.yaml", "-o", "markdown"][..],
        &["drift", "-i", "examples/minimal/mip.yaml", "--output", "markdown"],
        &["doctor", "-i", "examples/minimal/mip.yaml", "-o", "markdown"],
        &["state", "list", "-o", "markdown"],
    ] {
        let o = mip(args);
        assert_eq!(code(&o), 1, "{args:?}");
        assert!(stderr(&o).contains("invalid value 'markdown'"), "{args:?}: {}", stderr(&o));
    }
    let o = mip(&["validate", "-i", "examples/minimal/mip.yaml", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = mip(&["graph", "-i", "examples/minimal/mip.yaml", "-o", "mermaid"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("flowchart"), "{}", stdout(&o));
    assert_eq!(
        stdout(&mip(&["graph", "-i", "examples/minimal/mip.yaml", "--format", "mermaid"])),
        stdout(&o)
    );
}

// ---- against the real test cluster ----

struct Live {
    dir: tempfile::TempDir,
    argocd: String,
    a: String,
    b: String,
}

impl Live {
    fn new(tag: &str) -> Live {
        let argocd = TestCluster::shared().fresh_namespace_blocking(&format!("argocd-{tag}"));
        let suffix = &argocd[argocd.len() - 4..];
        let live = Live {
            dir: tempfile::tempdir().expect("tmp"),
            a: format!("fed-{tag}-a-{suffix}"),
            b: format!("fed-{tag}-b-{suffix}"),
            argocd,
        };
        live.write(true, "");
        live
    }

    fn inv(&self) -> String {
        self.dir.path().join("mip.yaml").display().to_string()
    }

    /// The inventory: federation A, and B when `with_b`; `extra` appended (e.g. `protect:`).
    fn write(&self, with_b: bool, extra: &str) {
        if with_b { self.write_feds(&[&self.a, &self.b], extra) } else { self.write_feds(&[&self.a], extra) }
    }

    /// The inventory with these federations and `extra` appended.
    fn write_feds(&self, feds: &[&str], extra: &str) {
        let federation = |name: &&str| Federation::local(name).apps(&["exareme2"]);
        let inventory = feds.iter().map(federation).fold(Inventory::new(&self.argocd), Inventory::federation);
        std::fs::write(self.inv(), inventory.to_yaml() + extra).expect("write");
    }

    fn run(&self, args: &[&str]) -> Output {
        let state = self.dir.path().join("state");
        mip_on(TestCluster::shared(), self.dir.path()).args(args).inventory(self.inv()).state_dir(state).run()
    }

    fn exists(&self, args: &[&str]) -> bool {
        TestCluster::shared().kubectl_run(&[&["get"], args].concat()).status.success()
    }

    fn state_list(&self) -> String {
        stdout(&self.run(&["state", "list"]))
    }
}

const APPLY: [&str; 4] = ["apply", "--auto-approve", "--wait-timeout", "0"];

#[test]
fn deleting_a_namespace_is_refused_unattended_unless_allowed_by_name() {
    let l = Live::new("protect");
    let o = l.run(&APPLY);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(l.exists(&["namespace", &l.b]));
    let ns_b = format!("v1/Namespace/{}", l.b);

    l.write(false, "");
    let before = l.state_list();
    let o = l.run(&APPLY);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "refusing to delete a protected object without `--allow-delete`: `{ns_b}`; nothing was written"
        )),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    assert!(l.exists(&["namespace", &l.b]), "nothing was deleted");
    assert_eq!(l.state_list(), before, "nothing was recorded");

    // A saved plan is refused the same way, before the cluster is contacted.
    let saved = l.dir.path().join("delete.mip").display().to_string();
    assert_eq!(code(&l.run(&["plan", "--out", &saved])), 0);
    let o = l.run(&["apply", &saved, "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(l.exists(&["namespace", &l.b]));

    let o = l.run(&["apply", &saved, "--auto-approve", "--wait-timeout", "0", "--allow-delete", &ns_b]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!l.state_list().contains(&ns_b), "the state no longer manages it");
    let gone = l.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code(&gone), 0, "converged: {}", stdout(&gone));
}

#[test]
fn protect_in_the_inventory_decides_what_needs_allow_delete() {
    let l = Live::new("protlist");
    assert_eq!(code(&l.run(&APPLY)), 0);
    // `protect: []`: nothing needs naming; B's namespace is deleted unattended.
    l.write_feds(&[&l.a], "protect: []\n");
    let o = l.run(&APPLY);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!l.state_list().contains(&format!("v1/Namespace/{}", l.b)));
    // An address protects that one object, whatever its kind.
    let ns_a = format!("v1/Namespace/{}", l.a);
    l.write_feds(&[], &format!("protect: ['{ns_a}']\n"));
    let o = l.run(&APPLY);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("`{ns_a}`")), "{}", stderr(&o));
    assert!(l.exists(&["namespace", &l.a]));
    let o = l.run(&["apply", "--auto-approve", "--wait-timeout", "0", "--allow-delete", &ns_a]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!l.state_list().contains(&ns_a));
}

#[test]
fn target_applies_only_the_target_and_what_it_depends_on_with_the_warning() {
    let l = Live::new("target");
    let ns_a = format!("v1/Namespace/{}", l.a);
    let plan = l.run(&["plan", "--target", &ns_a, "-o", "json"]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stderr(&plan).contains("warning: Resource targeting is in effect"), "{}", stderr(&plan));
    let v = json(&plan);
    assert_eq!(v["targets"], serde_json::json!([ns_a]));
    let planned: Vec<String> = v["changes"]
        .as_array()
        .expect("c")
        .iter()
        .map(|c| c["address"].as_str().expect("a").to_owned())
        .collect();
    assert!(planned.contains(&ns_a));
    for c in v["changes"].as_array().expect("c") {
        for d in c["depends_on"].as_array().into_iter().flatten() {
            assert!(planned.iter().any(|p| p == d["address"].as_str().expect("a")), "dependency kept: {d}");
        }
    }

    let o = l.run(&["apply", "--auto-approve", "--wait-timeout", "0", "--target", &ns_a]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("Resource targeting is in effect"), "{}", stderr(&o));
    assert!(l.exists(&["namespace", &l.a]));
    assert!(!l.exists(&["namespace", &l.b]), "not targeted");
    assert!(!l.exists(&["application", "-n", &l.argocd, "main-argo-projects"]), "not targeted");
    let state = l.state_list();
    for p in &planned {
        assert!(state.contains(p.as_str()), "{p} recorded: {state}");
    }
    assert!(!state.contains(&format!("v1/Namespace/{}", l.b)), "{state}");

    let unknown = l.run(&["plan", "--target", "v1/Namespace/not-in-this-plan"]);
    assert_eq!(code(&unknown), 1);
    assert!(
        stderr(&unknown).contains("`--target v1/Namespace/not-in-this-plan` is not an object of this plan")
    );
}
