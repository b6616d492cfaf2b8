//! Tables from argo-cd `pkg/apis/application/v1alpha1/types_test.go`, named after the upstream
//! test each comes from.

use super::*;
use serde_json::json;

const IN: &str = "https://kubernetes.default.svc";

/// `TestAppProject_IsSourcePermitted` and `TestAppProject_IsNegatedSourcePermitted`.
#[test]
fn sources() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["*"], "https://github.com/argoproj/test.git", true),
        (&["https://github.com/argoproj/test.git"], "https://github.com/argoproj/test.git", true),
        (&["ssh://git@GITHUB.com:argoproj/test"], "ssh://git@github.com:argoproj/test", true),
        (&["https://github.com/argoproj/*"], "https://github.com/argoproj/argoproj.git", true),
        (
            &["https://github.com/test1/test.git", "https://github.com/test2/test.git"],
            "https://github.com/test2/test.git",
            true,
        ),
        (&["https://github.com/argoproj/test1.git"], "https://github.com/argoproj/test2.git", false),
        (&["https://github.com/argoproj/*.git"], "https://github.com/argoproj1/test2.git", false),
        (&["https://github.com/argoproj/foo"], "https://github.com/argoproj/foo1", false),
        (&["https://gitlab.com/group/*"], "https://gitlab.com/group/repo/owner", false),
        (&["https://gitlab.com/group/*/*"], "https://gitlab.com/group/repo/owner", true),
        (&["https://gitlab.com/group/*/*/*"], "https://gitlab.com/group/sub-group/repo/owner", true),
        (&["https://gitlab.com/group/**"], "https://gitlab.com/group/sub-group/repo/owner", true),
        // Negated.
        (&["!https://github.com/argoproj/test.git"], "https://github.com/argoproj/test.git", false),
        (&["!ssh://git@GITHUB.com:argoproj/test"], "ssh://git@github.com:argoproj/test", false),
        (&["!https://github.com/argoproj/*"], "https://github.com/argoproj/argoproj.git", false),
        (
            &["https://github.com/test1/test.git", "!https://github.com/test2/test.git"],
            "https://github.com/test2/test.git",
            false,
        ),
        (&["!https://github.com/argoproj/foo*"], "https://github.com/argoproj/foo1", false),
        (&["!https://gitlab.com/group/*/*"], "https://gitlab.com/group/repo/owner", false),
        (&["!https://gitlab.com/group/**"], "https://gitlab.com/group/sub-group/repo/owner", false),
        (&["https://github.com/argoproj/test1.git", "*"], "https://github.com/argoproj/test2.git", true),
        (&["!https://github.com/argoproj/*.git", "*"], "https://github.com/argoproj1/test2.git", true),
    ];
    for (rules, repo, want) in cases {
        assert_eq!(source_permitted(rules, repo), *want, "{rules:?} on {repo:?}");
    }
}

/// Not an upstream test case: what `IsSourcePermitted`'s loop does when the only rule is a
/// deny rule that does not match (it counts as an allowing match).
#[test]
fn a_lone_deny_rule_permits_the_rest() {
    assert!(source_permitted(&["!https://github.com/bad/*"], "https://github.com/good/repo"));
    assert!(!source_permitted::<&str>(&[], "https://github.com/good/repo"));
}

fn d(server: &str, name: &str, namespace: &str) -> Destination {
    Destination { server: server.into(), name: name.into(), namespace: namespace.into() }
}

/// `TestAppProject_IsDestinationPermitted` and `TestAppProject_IsNegatedDestinationPermitted`.
#[test]
fn destinations() {
    let eks = "https://eks-cluster-endpoint.ap-southeast-1.eks.amazonaws.com";
    let cases: Vec<(Vec<Destination>, Destination, bool)> = vec![
        (vec![d(IN, "", "default")], d(IN, "", "default"), true),
        (vec![d(IN, "", "default")], d(IN, "", "kube-system"), false),
        (vec![d("https://my-cluster", "", "default")], d(IN, "", "default"), false),
        (vec![d(IN, "", "*")], d(IN, "", "kube-system"), true),
        (vec![d("https://*.default.svc", "", "default")], d(IN, "", "default"), true),
        (vec![d("https://team1-*", "", "default")], d("https://test2-dev-cluster", "", "default"), false),
        (vec![d(IN, "", "test-*")], d(IN, "", "test-foo"), true),
        (vec![d(IN, "", "test-*")], d(IN, "", "test"), false),
        (vec![d("*", "", "*")], d(IN, "", "test"), true),
        (vec![d("", "test", "*")], d("", "test", "test"), true),
        (vec![d("", "test2", "*")], d("", "test", "test"), false),
        (
            vec![d(IN, "host-cluster", "!{kube-system,argocd}"), d(eks, "destination-cluster-01", "*")],
            d(eks, "", "kube-system"),
            true,
        ),
        // Negated.
        (vec![d(&format!("!{IN}"), "", "default")], d(IN, "", "default"), false),
        (vec![d(IN, "", "!default")], d(IN, "", "kube-system"), true),
        (vec![d("!https://my-cluster", "", "default")], d(IN, "", "default"), true),
        (vec![d(&format!("!{IN}"), "", "*")], d(IN, "", "kube-system"), false),
        (vec![d("!https://*.default.svc", "", "default")], d(IN, "", "default"), false),
        (vec![d("!https://team1-*", "", "default")], d("https://test2-dev-cluster", "", "default"), true),
        (vec![d(IN, "", "!test-*")], d(IN, "", "test-foo"), false),
        (vec![d(IN, "", "!test-*")], d(IN, "", "test"), true),
        (vec![d("", "!test", "*")], d("", "test", "test"), false),
        (vec![d("", "!test2", "*")], d("", "test", "test"), true),
        (vec![d("*", "", "kube-system"), d("*", "", "!kube-system")], d(IN, "", "kube-system"), false),
        (vec![d("*", "", "*"), d("*", "", "!kube-system")], d(IN, "", "kube-system"), false),
        (vec![d(IN, "", "*"), d(&format!("!{IN}"), "", "*")], d(IN, "", "kube-system"), false),
        (vec![d("*", "", "*"), d(&format!("!{IN}"), "", "kube-system")], d(IN, "", "kube-system"), false),
        (
            vec![d("*", "", "*"), d(&format!("!{IN}"), "", "kube-system"), d("*", "", "!kube-system")],
            d(IN, "", "default"),
            true,
        ),
        (
            vec![d("*", "", "*"), d(&format!("!{IN}"), "", "kube-system"), d("*", "", "!kube-system")],
            d("https://test-dev-cluster", "", "kube-system"),
            false,
        ),
        (vec![d("", "test", "*"), d("", "!test", "*")], d("", "test", "test"), false),
        (
            vec![d("*", "", "test"), d("!https://test-server", "", "other")],
            d("https://test-server", "", "test"),
            true,
        ),
        (
            vec![d("*", "", "*"), d("https://test-server", "", "!other")],
            d("https://other-test-server", "", "other"),
            true,
        ),
    ];
    for (rules, dest, want) in cases {
        assert_eq!(destination_permitted(&rules, &dest), want, "{rules:?} on {dest:?}");
    }
}

/// `TestGlobMatch`: a `!` rule negates, and `*` matches across the separator.
#[test]
fn rule_negation() {
    assert!(rule_matches("foo*", "foobar", None));
    assert!(!rule_matches("!foo", "foo", None));
    assert!(rule_matches("!foo", "bar", None));
    assert!(rule_matches("*", "https://a/b/c", Some('/')));
}

#[test]
fn application_destinations_are_resolved_like_argo_cd() {
    let by_name = Destination::of_application(&json!({ "name": "in-cluster", "namespace": "a" }));
    assert_eq!(by_name, d(IN, "in-cluster", "a"));
    let by_server = Destination::of_application(&json!({ "server": format!("{IN}/"), "namespace": "a" }));
    assert_eq!(by_server, d(IN, "in-cluster", "a"));
}

/// `TestAppProject_IsGroupKindPermitted`.
#[test]
fn resources() {
    let p = |spec: serde_json::Value| Permissions::of_project(&json!({ "spec": spec }));
    let p1 = p(
        json!({ "namespaceResourceWhitelist": [], "namespaceResourceBlacklist": [{ "group": "apps", "kind": "Deployment" }] }),
    );
    assert!(!p1.permits_resource("apps", "ReplicaSet", "", true));
    assert!(!p1.permits_resource("apps", "Deployment", "", true));
    let p2 = p(json!({
        "namespaceResourceWhitelist": [{ "group": "apps", "kind": "ReplicaSet" }],
        "namespaceResourceBlacklist": [{ "group": "apps", "kind": "Deployment" }],
    }));
    assert!(p2.permits_resource("apps", "ReplicaSet", "", true));
    assert!(!p2.permits_resource("apps", "Action", "", true));
    let p3 = p(json!({ "clusterResourceBlacklist": [{ "group": "", "kind": "Namespace" }] }));
    assert!(!p3.permits_resource("", "Namespace", "", false));
    let p4 = p(json!({
        "clusterResourceWhitelist": [{ "group": "*", "kind": "*" }],
        "clusterResourceBlacklist": [{ "group": "*", "kind": "*" }],
    }));
    assert!(!p4.permits_resource("", "Namespace", "", false));
    assert!(p4.permits_resource("apps", "Action", "", true));
    let p5 = p(
        json!({ "clusterResourceWhitelist": [], "namespaceResourceWhitelist": [{ "group": "*", "kind": "*" }] }),
    );
    assert!(!p5.permits_resource("", "Namespace", "", false));
    assert!(p5.permits_resource("apps", "Action", "", true));
    let p6 = p(json!({}));
    assert!(!p6.permits_resource("", "Namespace", "", false));
    assert!(p6.permits_resource("apps", "Action", "", true));
    let p7 =
        p(json!({ "clusterResourceWhitelist": [{ "group": "", "kind": "Namespace", "name": "team1-*" }] }));
    assert!(!p7.permits_resource("", "Namespace", "other-namespace", false));
    assert!(p7.permits_resource("", "Namespace", "team1-namespace", false));
}

#[test]
fn sources_of_an_application_spec() {
    let spec = json!({ "sources": [{ "repoURL": "a" }, { "ref": "values" }], "source": { "repoURL": "b" } });
    assert_eq!(app_sources(&spec), ["a", "b"]);
}

proptest::proptest! {
    /// `Memo::glob` answers a pattern without wildcard, class, alternative or escape by
    /// comparing strings: the same answer as the compiled glob, with either separator.
    #[test]
    fn a_plain_pattern_matches_as_its_compiled_glob(
        pattern in "[a-z0-9./:,}!-]{0,12}",
        text in "[a-z0-9./:,}!-]{0,12}",
        separator in proptest::option::of(proptest::sample::select(vec!['/', '.'])),
    ) {
        let memo = Memo::default();
        let compiled = Glob::new(&pattern, separator).ok();
        for text in [text.as_str(), pattern.as_str()] {
            let expected = compiled.as_ref().is_some_and(|g| g.is_match(text));
            proptest::prop_assert_eq!(memo.glob(&pattern, separator, text), expected, "`{}` ~ `{}`", pattern, text);
        }
    }
}
