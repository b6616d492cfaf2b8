//! The least-privilege roles of `examples/rbac/` and the drift CronJob of `examples/cron/`,
//! against the real test cluster (RBAC authorisation on, ServiceAccount tokens signed by the
//! API server): `mip` runs with a ServiceAccount token, never the admin certificate. The
//! read-only role can plan, drift and doctor, and an apply with it is refused by the API server
//! with the missing verb and resource named (exit 1); the apply role is enough for a full
//! apply, a no-op re-apply and a destroy.

use crate::live::{Env, kubectl, run, setup};
use crate::*;
use mip_test_support::TestCluster;

/// An example file with its placeholders replaced: the Argo CD namespace, the namespace of the
/// ServiceAccounts, and a unique suffix on the cluster-scoped role names.
pub(crate) fn example(file: &str, argocd: &str, sa_ns: &str) -> String {
    let text = std::fs::read_to_string(root().join("examples").join(file)).expect("example");
    let suffix = &sa_ns[sa_ns.len() - 4..];
    text.replace("namespace: argocd", &format!("namespace: {argocd}"))
        .replace("mip-system", sa_ns)
        .replace("name: mip-readonly", &format!("name: mip-readonly-{suffix}"))
        .replace("name: mip-apply", &format!("name: mip-apply-{suffix}"))
}

/// A kubeconfig for ServiceAccount `sa` of `ns`: the test cluster's server and CA, and a token
/// the API server signs, read from a file (`tokenFile`, as in the CronJob's kubeconfig).
fn service_account_kubeconfig(e: &Env, ns: &str, sa: &str) -> String {
    let cluster = TestCluster::shared();
    if !kubectl(&["get", "serviceaccount", "-n", ns, sa]).status.success() {
        let o = kubectl(&["create", "serviceaccount", "-n", ns, sa]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = kubectl(&["create", "token", sa, "-n", ns, "--duration=1h"]);
    assert!(o.status.success(), "kubectl create token: {}", stderr(&o));
    let token_file = e.dir.path().join(format!("{sa}.token"));
    std::fs::write(&token_file, stdout(&o).trim()).expect("write token");
    let admin = std::fs::read_to_string(cluster.kubeconfig_path()).expect("admin kubeconfig");
    let ca = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .expect("CA in the admin kubeconfig");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: sa\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
         users:\n- name: {sa}\n  user:\n    tokenFile: {}\ncontexts:\n- name: sa\n  context: {{cluster: test, user: {sa}}}\n",
        cluster.server_url(),
        token_file.display()
    );
    let path = e.dir.path().join(format!("{sa}.kubeconfig"));
    std::fs::write(&path, kubeconfig).expect("write kubeconfig");
    path.display().to_string()
}

/// `mip` with the given kubeconfig (`--kubeconfig`, no `KUBECONFIG`) and state directory.
fn run_as(e: &Env, kubeconfig: &str, state: &str, args: &[&str]) -> Output {
    let mip = e.mip().env_remove("KUBECONFIG").args(args).inventory(&e.inv).state_dir(state);
    mip.args(["--kubeconfig", kubeconfig]).run()
}

/// Adds a second federation to the test inventory: new objects, so an apply has writes.
fn add_federation(e: &Env, name: &str) {
    let text = std::fs::read_to_string(&e.inv).expect("inventory");
    let text = format!("{text}  - name: {name}\n    kind: local\n    apps: [{{name: exareme2}}]\n");
    std::fs::write(&e.inv, text).expect("write inventory");
}

#[test]
fn the_drift_cronjob_account_can_drift_but_not_apply() {
    let e = setup("rbac-ro");
    let applied = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&applied), 0, "admin apply: {}", stderr(&applied));

    // The CronJob example as shipped: the API server accepts every object (schema, pod failure
    // policy); then its ServiceAccount and the read-only roles for real.
    let sa_ns = TestCluster::shared().fresh_namespace_blocking("mip-sys");
    let cron = example("cron/drift-cronjob.yaml", &e.argocd, &sa_ns);
    TestCluster::shared().kubectl_apply(&cron, &["--dry-run=server"]);
    TestCluster::shared().kubectl_apply(
        &cron.replace("  concurrencyPolicy: Forbid", "  suspend: true\n  concurrencyPolicy: Forbid"),
        &[],
    );
    TestCluster::shared().kubectl_apply(&example("rbac/mip-readonly.yaml", &e.argocd, &sa_ns), &[]);
    let ro = service_account_kubeconfig(&e, &sa_ns, "mip-drift");

    // Read-only: drift with the operator's state and with none (the CronJob has no state).
    let drift = run_as(&e, &ro, &e.state, &["drift", "--output", "json"]);
    assert!(matches!(code(&drift), 0 | 2), "drift as mip-drift: exit {}: {}", code(&drift), stderr(&drift));
    let no_state = e.dir.path().join("cron-state").display().to_string();
    let drift = run_as(&e, &ro, &no_state, &["drift", "--output", "json"]);
    assert!(matches!(code(&drift), 0 | 2), "drift without state: exit {}: {}", code(&drift), stderr(&drift));
    let plan = run_as(&e, &ro, &e.state, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "plan as mip-drift: {}{}", stdout(&plan), stderr(&plan));
    let doctor = run_as(&e, &ro, &e.state, &["doctor"]);
    assert!(
        matches!(code(&doctor), 0 | 2),
        "doctor as mip-drift: exit {}: {}",
        code(&doctor),
        stderr(&doctor)
    );

    // An apply with something to write is refused by the API server: exit 1, the verb and the
    // resource named, the roles pointed at, nothing created.
    let fed2 = format!("{}-2", e.fed);
    add_federation(&e, &fed2);
    let apply = run_as(&e, &ro, &e.state, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    let err = stderr(&apply);
    assert_eq!(code(&apply), 1, "apply as mip-drift must be refused: {err}");
    assert!(err.contains("error: forbidden: cannot `patch` `namespaces`"), "{err}");
    assert!(err.contains("hint: the credentials in use lack `patch` on `namespaces`"), "{err}");
    assert!(err.contains("`examples/rbac/`"), "{err}");
    assert!(!kubectl(&["get", "namespace", &fed2]).status.success(), "the refused apply created `{fed2}`");
}

#[test]
fn the_apply_role_is_enough_to_apply_and_destroy() {
    let e = setup("rbac-rw");
    let sa_ns = TestCluster::shared().fresh_namespace_blocking("mip-sys");
    TestCluster::shared().kubectl_apply(&example("rbac/mip-apply.yaml", &e.argocd, &sa_ns), &[]);
    let rw = service_account_kubeconfig(&e, &sa_ns, "mip");

    let apply = run_as(&e, &rw, &e.state, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&apply), 0, "apply as mip: {}", stderr(&apply));
    let plan = run_as(&e, &rw, &e.state, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "a second plan must be empty: {}{}", stdout(&plan), stderr(&plan));
    let destroy = crate::live::with_argo_finalizers(&e.argocd, || {
        run_as(&e, &rw, &e.state, &["destroy", "--auto-approve", "--include-protected"])
    });
    assert_eq!(code(&destroy), 0, "destroy as mip: {}", stderr(&destroy));
    assert!(!kubectl(&["get", "namespace", &e.fed]).status.success(), "destroy left `{}`", e.fed);
}

#[test]
fn with_the_cluster_state_the_drift_account_reads_it_and_only_the_apply_account_locks_it() {
    let e = setup("rbac-cs");
    let sa_ns = TestCluster::shared().fresh_namespace_blocking("mip-sys");
    TestCluster::shared().kubectl_apply(&example("rbac/mip-readonly.yaml", &e.argocd, &sa_ns), &[]);
    TestCluster::shared().kubectl_apply(&example("rbac/mip-apply.yaml", &e.argocd, &sa_ns), &[]);
    let ro = service_account_kubeconfig(&e, &sa_ns, "mip-drift");
    let rw = service_account_kubeconfig(&e, &sa_ns, "mip");
    let state = ["--state-backend", "cluster", "--state-namespace", sa_ns.as_str()];
    let with_state =
        |args: &[&'static str]| args.iter().copied().chain(state.iter().copied()).collect::<Vec<&str>>();

    // The apply account keeps the state in the cluster (Secrets and a Lease in its namespace).
    let apply = run_as(&e, &rw, &e.state, &with_state(&["apply", "--auto-approve", "--wait-timeout", "0"]));
    assert_eq!(code(&apply), 0, "apply as mip with the cluster state: {}", stderr(&apply));

    // The drift account reads that state without a lock: the plan is empty, drift runs.
    let plan = run_as(&e, &ro, &e.state, &with_state(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&plan), 0, "plan as mip-drift: {}{}", stdout(&plan), stderr(&plan));
    let drift = run_as(&e, &ro, &e.state, &with_state(&["drift", "--output", "json"]));
    assert!(matches!(code(&drift), 0 | 2), "drift as mip-drift: exit {}: {}", code(&drift), stderr(&drift));

    // Its apply is refused before anything is written: it may not take the state's Lease.
    let fed2 = format!("{}-2", e.fed);
    add_federation(&e, &fed2);
    let refused = run_as(&e, &ro, &e.state, &with_state(&["apply", "--auto-approve", "--wait-timeout", "0"]));
    let err = stderr(&refused);
    assert_eq!(code(&refused), 1, "apply as mip-drift must be refused: {err}");
    assert!(err.contains("forbidden: cannot `get` `coordination.k8s.io/leases`"), "{err}");
    assert!(err.contains("examples/rbac/"), "{err}");
    assert!(!kubectl(&["get", "namespace", &fed2]).status.success(), "the refused apply created `{fed2}`");
}
