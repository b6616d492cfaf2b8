//! `mip doctor` against the real test cluster: a healthy bootstrap exits 0; then the test
//! breaks things the way they break in production (an Application whose project is missing, a
//! repository its project does not permit, a failed sync Argo CD will not retry, a deletion held
//! by a finalizer, an ApplicationSet error condition, a loosened `default` project, a missing
//! Secret) and every one is named with its fix.

use crate::live::{CLIENT_ID, CLIENT_SECRET, kubectl, kubectl_apply, run, setup};
use crate::*;

fn findings(o: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)));
    assert_eq!(v["format_version"], "1", "{v}");
    v["findings"].as_array().expect("findings").clone()
}

#[test]
fn doctor_names_each_failure_mode_with_its_fix() {
    let e = setup("doctor");
    let ns = e.argocd.as_str();
    let apply = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));

    // Healthy: exit 0, for both names of the command.
    let ok = run(&e, &["doctor"]);
    assert_eq!(code(&ok), 0, "{}\n{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).starts_with("Healthy: no known failure mode"), "{}", stdout(&ok));
    let ok = run(&e, &["status", "--output", "json"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert_eq!(findings(&ok), Vec::<serde_json::Value>::new());

    let infra = "mip-argo-project-infrastructure";
    let app = |name: &str, project: &str, repo: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec: {{project: {project}, source: {{repoURL: '{repo}', path: base}}, destination: {{server: 'https://kubernetes.default.svc', namespace: {ns}}}}}\n"
        )
    };
    // An Application whose project does not exist.
    kubectl_apply(&app("orphan", "no-such-project", "https://example.org/mip-infra.git"), "argocd-server");
    // A repository its project does not permit.
    kubectl_apply(&app("evil-repo", infra, "https://example.org/evil.git"), "argocd-server");
    // A failed sync on the current revision (Application has no status subresource).
    kubectl_apply(
        &format!(
            "{}status:\n  sync: {{status: OutOfSync, revision: 0123abc}}\n  operationState:\n    phase: Failed\n    message: one or more objects failed to apply\n    startedAt: '2026-01-01T00:00:00Z'\n    operation: {{sync: {{revision: 0123abc}}}}\n    syncResult: {{revision: 0123abc}}\n",
            app("failed-sync", infra, "https://example.org/mip-infra.git")
        ),
        "argocd-application-controller",
    );
    // A deletion held by a finalizer nobody removes.
    kubectl_apply(
        &app("going", infra, "https://example.org/mip-infra.git").replace(
            &format!("namespace: {ns}}}\nspec"),
            &format!("namespace: {ns}, finalizers: [example.org/hold]}}\nspec"),
        ),
        "argocd-server",
    );
    let del = kubectl(&["delete", "application", "-n", ns, "going", "--wait=false"]);
    assert!(del.status.success(), "{}", String::from_utf8_lossy(&del.stderr));
    // An ApplicationSet reporting an error (status subresource).
    let set = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {{name: broken-set, namespace: {ns}}}\n\
         spec: {{generators: [], template: {{metadata: {{name: x}}, spec: {{project: '{{{{.project}}}}', destination: {{server: 'https://kubernetes.default.svc', namespace: x}}}}}}}}\n"
    );
    kubectl_apply(&set, "argocd-applicationset-controller");
    let status = r#"{"status":{"conditions":[{"type":"ErrorOccurred","status":"True","reason":"ApplicationValidationError","message":"application references project mip-x which does not exist","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#;
    let o = kubectl(&[
        "patch",
        "applicationset",
        "-n",
        ns,
        "broken-set",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        status,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The `default` project loosened by hand.
    kubectl_apply(
        &format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {{name: default, namespace: {ns}}}\nspec:\n  sourceRepos: ['*']\n  destinations: [{{server: '*', namespace: '*'}}]\n"
        ),
        "kubectl-edit",
    );
    // A Secret the apps need, deleted.
    assert!(kubectl(&["delete", "secret", "-n", &e.fed, "keycloak-credentials"]).status.success());

    let o = run(&e, &["doctor", "--output", "json"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let found = findings(&o);
    let has = |code: &str, name: &str, fix: &str| {
        found.iter().any(|f| {
            f["code"] == code
                && f["address"].as_str().is_some_and(|a| a.ends_with(&format!("/{name}")))
                && f["fix"].as_str().is_some_and(|x| x.contains(fix))
        })
    };
    let found_text = serde_json::to_string_pretty(&found).expect("json");
    assert!(has("missing-project", "orphan", "create AppProject `no-such-project`"), "{found_text}");
    assert!(has("repo-not-permitted", "evil-repo", "spec.sourceRepos"), "{found_text}");
    assert!(has("sync-failed", "failed-sync", "trigger a sync"), "{found_text}");
    assert!(has("stuck-deletion", "going", "remove the finalizers"), "{found_text}");
    assert!(has("appset-error", "broken-set", "application-set-refresh"), "{found_text}");
    assert!(has("default-project-loosened", "default", "mip apply"), "{found_text}");
    assert!(has("missing-secret", "keycloak-credentials", "mip apply"), "{found_text}");
    assert_eq!(found.len(), 7, "nothing else is reported: {found_text}");
    assert!(!found_text.contains(CLIENT_SECRET) && !found_text.contains(CLIENT_ID), "a secret value leaked");

    // The text report: one line per finding (severity, address, what, fix), then a summary.
    let t = run(&e, &["doctor"]);
    assert_eq!(code(&t), 2, "{}", stderr(&t));
    let out = stdout(&t);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("error[missing-project] argoproj.io/v1alpha1/Application/{ns}/orphan: references project `no-such-project`"))), "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with("warning[stuck-deletion]")
            && l.contains("`example.org/hold`")
            && l.contains("(fix: ")),
        "{out}"
    );
    assert!(lines[7].starts_with("7 problem(s)"), "{out}");

    // Clean up the finalizer so the namespace can go.
    let _ = kubectl(&[
        "patch",
        "application",
        "-n",
        ns,
        "going",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
}
