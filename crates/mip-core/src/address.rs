use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{cmp::Ordering, fmt, str::FromStr};

/// The address of one Kubernetes object: the only identity string in mip.
///
/// Text form: `[cluster:]group/version/Kind/[namespace/]name`, where the core group is left
/// out (`v1/Secret/federation-a/mip-secret`) and `cluster:` is left out for the management
/// cluster, the one Argo CD runs in. `:` cannot occur in a Kubernetes name or API group, so
/// the form is unambiguous and round-trips through [`Display`](fmt::Display) and
/// [`FromStr`]. The same string is used in messages, plan files, state keys and `--target`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// Inventory name of the cluster that holds the object; `None` for the management cluster.
    pub cluster: Option<String>,
    /// API group, empty for the core group.
    pub group: String,
    /// API version within the group, e.g. `v1alpha1`.
    pub version: String,
    /// Kind, e.g. `AppProject`.
    pub kind: String,
    /// Namespace, `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
}

/// The kinds mip reasons about, each with its API group: the one place their names are
/// written, so a check reads `addr.is(Kind::AppProject)` instead of comparing two strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `v1` Namespace.
    Namespace,
    /// `v1` Secret.
    Secret,
    /// `v1` ServiceAccount.
    ServiceAccount,
    /// `rbac.authorization.k8s.io` Role.
    Role,
    /// `rbac.authorization.k8s.io` RoleBinding.
    RoleBinding,
    /// `rbac.authorization.k8s.io` ClusterRole.
    ClusterRole,
    /// `rbac.authorization.k8s.io` ClusterRoleBinding.
    ClusterRoleBinding,
    /// `apiextensions.k8s.io` CustomResourceDefinition.
    CustomResourceDefinition,
    /// Argo CD's AppProject.
    AppProject,
    /// Argo CD's Application.
    Application,
    /// Argo CD's ApplicationSet.
    ApplicationSet,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 11] = [
        Kind::Namespace,
        Kind::Secret,
        Kind::ServiceAccount,
        Kind::Role,
        Kind::RoleBinding,
        Kind::ClusterRole,
        Kind::ClusterRoleBinding,
        Kind::CustomResourceDefinition,
        Kind::AppProject,
        Kind::Application,
        Kind::ApplicationSet,
    ];

    /// Its API group (`""` for the core group).
    pub const fn group(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Secret | Kind::ServiceAccount => "",
            Kind::Role | Kind::RoleBinding | Kind::ClusterRole | Kind::ClusterRoleBinding => {
                "rbac.authorization.k8s.io"
            }
            Kind::CustomResourceDefinition => "apiextensions.k8s.io",
            Kind::AppProject | Kind::Application | Kind::ApplicationSet => "argoproj.io",
        }
    }

    /// Its name, as in `kind:`.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Secret => "Secret",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::Role => "Role",
            Kind::RoleBinding => "RoleBinding",
            Kind::ClusterRole => "ClusterRole",
            Kind::ClusterRoleBinding => "ClusterRoleBinding",
            Kind::CustomResourceDefinition => "CustomResourceDefinition",
            Kind::AppProject => "AppProject",
            Kind::Application => "Application",
            Kind::ApplicationSet => "ApplicationSet",
        }
    }

    /// The kind of this group and name, if mip knows it.
    pub fn of(group: &str, kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == kind && k.group() == group)
    }
}

/// A string that is not a valid [`ObjectRef`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object address `{input}`: {reason}")]
pub struct AddressError {
    /// The text that failed to parse.
    pub input: String,
    /// Why it failed.
    pub reason: &'static str,
}

impl ObjectRef {
    /// An address on the management cluster.
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.to_owned()),
        };
        ObjectRef {
            cluster: None,
            group,
            version,
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// The same address on another cluster (`None` = management cluster).
    pub fn on_cluster(mut self, cluster: Option<&str>) -> Self {
        self.cluster = cluster.map(str::to_owned);
        self
    }

    /// `apiVersion` as written in a manifest (`v1`, `argoproj.io/v1alpha1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Whether the object is namespaced.
    pub fn is_namespaced(&self) -> bool {
        self.namespace.is_some()
    }

    /// Whether this is a core-group `Secret`, whose values are never shown or stored.
    pub fn is_secret(&self) -> bool {
        self.is(Kind::Secret)
    }

    /// Whether the object is of this kind (name and API group).
    pub fn is(&self, kind: Kind) -> bool {
        self.kind == kind.name() && self.group == kind.group()
    }

    /// Its kind, if mip knows it.
    pub fn known_kind(&self) -> Option<Kind> {
        Kind::of(&self.group, &self.kind)
    }

    /// A short human form, `Kind ns/name`, for progress lines.
    pub fn short(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind, ns, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    fn sort_key(&self) -> (&Option<String>, &str, &str, &Option<String>, &str, &str) {
        (&self.cluster, &self.group, &self.kind, &self.namespace, &self.name, &self.version)
    }
}

impl Ord for ObjectRef {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for ObjectRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.cluster {
            write!(f, "{c}:")?;
        }
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        write!(f, "{}/{}/", self.version, self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        f.write_str(&self.name)
    }
}

fn looks_like_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else { return false };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let tail = &rest[digits..];
    tail.is_empty()
        || ["alpha", "beta"].iter().any(|p| {
            tail.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
}

impl FromStr for ObjectRef {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| AddressError { input: input.to_owned(), reason };
        let (cluster, rest) = match input.split_once(':') {
            Some((c, r)) if !c.contains('/') => {
                if c.is_empty() {
                    return Err(err("empty cluster name before `:`"));
                }
                (Some(c.to_owned()), r)
            }
            _ => (None, input),
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err("empty segment"));
        }
        let (group, tail) = match parts.first() {
            Some(first) if looks_like_version(first) => ("", &parts[..]),
            Some(first) => (*first, &parts[1..]),
            None => return Err(err("empty address")),
        };
        match tail {
            [version, kind, name] if looks_like_version(version) => Ok(ObjectRef {
                cluster,
                group: group.to_owned(),
                version: (*version).to_owned(),
                kind: (*kind).to_owned(),
                namespace: None,
                name: (*name).to_owned(),
            }),
            [version, kind, ns, name] if looks_like_version(version) => Ok(ObjectRef {
                cluster,
                group: group.to_owned(),
                version: (*version).to_owned(),
                kind: (*kind).to_owned(),
                namespace: Some((*ns).to_owned()),
                name: (*name).to_owned(),
            }),
            _ => Err(err("expected `[cluster:][group/]version/Kind/[namespace/]name`")),
        }
    }
}

impl Serialize for ObjectRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// In JSON an address is its text form, so its schema is a string (checked loosely: at least
/// `version/Kind/name`; [`FromStr`] is the exact rule).
impl schemars::JsonSchema for ObjectRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ObjectRef".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An object's address: `[cluster:][group/]version/Kind/[namespace/]name` (the core group is left out, and `cluster:` for the management cluster).",
            "pattern": "^([a-z0-9-]+:)?([^/:]+/)?[^/:]+/[^/:]+/([^/:]+/)?[^/:]+$"
        })
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind is its name in its group: the same name in another group is not it.
    #[test]
    fn kinds_are_name_and_group() {
        for k in Kind::ALL {
            assert_eq!(Kind::of(k.group(), k.name()), Some(k), "{k:?}");
            let api = if k.group().is_empty() { "v1".to_owned() } else { format!("{}/v1", k.group()) };
            assert!(ObjectRef::new(&api, k.name(), None, "x").is(k), "{k:?}");
            assert!(!ObjectRef::new("example.org/v1", k.name(), None, "x").is(k), "{k:?} in another group");
        }
        let secret = ObjectRef::new("v1", "Secret", Some("ns"), "s");
        assert!(secret.is_secret() && secret.known_kind() == Some(Kind::Secret));
        assert_eq!(ObjectRef::new("v1", "ConfigMap", Some("ns"), "c").known_kind(), None);
    }
    use proptest::prelude::*;

    #[test]
    fn core_group_and_cluster_prefix_round_trip() {
        for s in [
            "v1/Namespace/federation-a",
            "v1/Secret/federation-a/mip-secret",
            "argoproj.io/v1alpha1/Application/argocd-mip-team/main-argo-projects",
            "rbac.authorization.k8s.io/v1/ClusterRole/submariner-routeagent",
            "hybrid-east:v1/Namespace/federation-z",
            "apps/v1/Deployment/ns/web",
        ] {
            let a: ObjectRef = s.parse().expect("test value");
            assert_eq!(a.to_string(), s);
        }
        let a: ObjectRef = "hybrid-east:v1/Secret/ns/x".parse().expect("test value");
        assert_eq!(a.cluster.as_deref(), Some("hybrid-east"));
        assert_eq!(a.api_version(), "v1");
    }

    #[test]
    fn only_core_group_secrets_are_secrets() {
        assert!(ObjectRef::new("v1", "Secret", Some("ns"), "s").is_secret());
        assert!("east:v1/Secret/ns/s".parse::<ObjectRef>().expect("test value").is_secret());
        assert!(!ObjectRef::new("v1", "ConfigMap", Some("ns"), "s").is_secret());
        assert!(!ObjectRef::new("example.org/v1", "Secret", Some("ns"), "s").is_secret());
    }

    #[test]
    fn rejects_malformed() {
        for s in ["", "v1", "v1/Secret", "apps/Deployment/x", ":v1/Namespace/a", "v1//x", "a/b/c/d/e/f/g"] {
            assert!(s.parse::<ObjectRef>().is_err(), "{s} should not parse");
        }
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(
            cluster in proptest::option::of("[a-z][a-z0-9-]{0,10}"),
            group in prop_oneof![Just(String::new()), "[a-z]{1,8}(\\.[a-z]{1,5}){0,2}"],
            version in "v[1-9](alpha[1-3]|beta[1-3])?",
            kind in "[A-Z][a-zA-Z]{0,12}",
            namespace in proptest::option::of("[a-z][a-z0-9-]{0,20}"),
            name in "[a-z0-9][a-z0-9.-]{0,30}",
        ) {
            let a = ObjectRef { cluster, group, version, kind, namespace, name };
            let back: ObjectRef = a.to_string().parse().expect("test value");
            prop_assert_eq!(back, a);
        }
    }
}
