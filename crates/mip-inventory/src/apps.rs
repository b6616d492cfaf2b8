//! App definitions as data: the built-in catalogue (`apps.yaml`, compiled in) merged with the
//! inventory's `apps:` section.
//!
//! A definition says what Argo CD Applications an app makes (sources, project, namespace,
//! sync wave, options), which files mip renders for it, which Secrets it needs (each key
//! generated, from a source, or a fixed default), and which kinds its project must permit.
//! Resolution, the rendered tree and the expected Argo CD objects all read definitions, so
//! adding an app or upgrading one is an inventory change, not a new mip build.
//!
//! Overrides merge on the located YAML tree before decoding (mappings key by key, lists and
//! scalars replace), so a problem in an override is reported at the inventory's line and
//! column like every other.
//!
//! One file on purpose (about 1 500 lines, a third of it tests): the definition schema, its
//! decoder and the merge of overrides are one format; most of the length is the definition table.

use crate::decoder::{Decoder, Fields};
use crate::located::{Located, SecretRef};
use crate::names;
use crate::yaml::{Node, Value};
use mip_core::{Location, SensitiveSource};
use std::collections::BTreeMap;
use std::fmt;

/// The built-in definitions, as shipped with this mip.
pub const BUILTIN: &str = include_str!("apps.yaml");
/// The file name built-in definitions are located in.
pub const BUILTIN_FILE: &str = "<built-in apps.yaml>";
/// Placeholder of a Helm value file in the repository with `ref: values`.
pub const VALUES_REF: &str = "$values/";

/// Where an app runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Once per federation that lists it, in the federation's namespace and project.
    Federation,
    /// Once for the platform (`commonApps`), in its own namespace(s).
    Common,
}

impl Scope {
    /// As written in definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Federation => "federation",
            Scope::Common => "common",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a federation app is placed into the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layout {
    /// A template in `deployments/shared-apps/<app>/`, placed into each federation by a
    /// kustomize patch (project, destination, values files, pinned revision).
    Shared,
    /// An Application in the federation's directory whose source path (relative to that
    /// directory) is a kustomize overlay mip renders from the entry's `patches`.
    Overlay,
    /// A common app: `common/<app>/` with its Applications.
    Common,
}

impl Layout {
    /// As written in definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Shared => "shared",
            Layout::Overlay => "overlay",
            Layout::Common => "common",
        }
    }
}

/// The repository of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repo {
    /// The inventory's infra repository, at its revision.
    Infra,
    /// The inventory's deployments repository, at its revision.
    Deployments,
    /// Any other repository (an upstream chart), at the definition's `targetRevision`.
    Url(String),
}

/// One source of an Application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its repository.
    pub repo: Repo,
    /// Revision of an upstream source (mip's own repositories follow the inventory).
    pub target_revision: Option<String>,
    /// Directory in the repository.
    pub path: Option<String>,
    /// Helm chart name (Helm repositories).
    pub chart: Option<String>,
    /// `ref` of a values-only source.
    pub reference: Option<String>,
    /// Helm value files; `$values/<path>` names a file of the `ref: values` repository.
    pub value_files: Vec<String>,
}

/// One Argo CD Application an app makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// Its name (federation apps: the app's name, prefixed with `<federation>-` by kustomize).
    pub name: String,
    /// Its AppProject: a static project for common apps; federation apps run in the
    /// federation's project (`None`).
    pub project: Option<String>,
    /// Destination namespace (`None`: the app's namespace, or the federation's).
    pub namespace: Option<String>,
    /// `argocd.argoproj.io/sync-wave`.
    pub wave: Option<i64>,
    /// Its sources.
    pub sources: Vec<Source>,
    /// Whether the definition wrote `source:` (one) rather than `sources:` (a list).
    pub single_source: bool,
    /// `syncPolicy.syncOptions`.
    pub sync_options: Vec<String>,
    /// `syncPolicy.automated.prune`.
    pub prune: bool,
    /// Extra annotations, in definition order.
    pub annotations: Vec<(String, String)>,
}

/// Where a Secret key's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// 24 random alphanumerics, generated on first apply and kept (an existing value is
    /// adopted as it is).
    Generated,
    /// The Keycloak client id of the federation or app (else `credentials.keycloak`).
    KeycloakClientId,
    /// The Keycloak client secret.
    KeycloakClientSecret,
    /// A fixed, non-secret value (a user name).
    Value(String),
    /// An environment variable, file or prompt.
    External(SensitiveSource),
}

impl KeySource {
    /// For `mip apps show`: where the value comes from, never a value but fixed ones.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Generated => "generated".into(),
            KeySource::KeycloakClientId => "keycloak client id".into(),
            KeySource::KeycloakClientSecret => "keycloak client secret".into(),
            KeySource::Value(v) => format!("fixed `{v}`"),
            KeySource::External(s) => s.to_string(),
        }
    }

    /// Whether the key needs Keycloak credentials.
    pub fn is_keycloak(&self) -> bool {
        matches!(self, KeySource::KeycloakClientId | KeySource::KeycloakClientSecret)
    }
}

/// Kinds an app needs its project to permit, as `(group, kind)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kinds {
    /// Namespaced kinds.
    pub namespaced: Vec<(String, String)>,
    /// Cluster-scoped kinds.
    pub cluster: Vec<(String, String)>,
}

/// The network policies an app renders: one Application per federation (its namespace, on its
/// cluster) from the app's `federation/` chart, and one per common namespace from its
/// `common-templates/` chart, through two ApplicationSets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicies {
    /// The common namespaces that get policies.
    pub common_namespaces: Vec<String>,
    /// Helm parameters of each federation's policies (beyond the namespace and kind mip sets).
    pub federation_parameters: Vec<(String, String)>,
    /// Helm parameters of each common namespace's policies (beyond the namespace).
    pub common_parameters: Vec<(String, String)>,
}

/// One app definition, effective (built-in merged with the inventory's overrides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDef {
    /// Its name, as listed in `commonApps` / a federation's `apps`.
    pub name: String,
    /// Federation or common.
    pub scope: Scope,
    /// One line.
    pub description: String,
    /// How it is placed into the tree.
    pub layout: Layout,
    /// The one namespace of a common app.
    pub namespace: Option<String>,
    /// Revision of every upstream source (definition-wide pin).
    pub target_revision: Option<String>,
    /// Apps that must run beside it.
    pub requires: Vec<String>,
    /// The network-policy ApplicationSets it renders, if any (`networkPolicies`).
    pub network_policies: Option<NetworkPolicies>,
    /// (Federation apps) A hybrid federation also runs it on each of its remote clusters (its
    /// workers on the hospitals' nodes), one Application per remote cluster.
    pub remote_nodes: bool,
    /// Its Applications.
    pub applications: Vec<AppSpec>,
    /// Files mip renders under its directory: relative path → YAML documents.
    pub files: BTreeMap<String, Vec<serde_json::Value>>,
    /// Secrets: name → key → source.
    pub secrets: BTreeMap<String, BTreeMap<String, KeySource>>,
    /// Kinds its project must permit.
    pub kinds: Kinds,
    /// (The app that joins remote nodes) The Secrets on the main cluster whose keys mip
    /// carries to each remote node (`joinSecrets`): role (`broker`: keys `token` and `ca.crt`;
    /// `psk`: key `psk`) → `(namespace, name)`.
    pub join_secrets: BTreeMap<String, (String, String)>,
    /// Whether mip ships it.
    pub builtin: bool,
    /// Where the inventory defines or overrides it.
    pub defined_at: Option<Location>,
}

impl AppDef {
    /// Upstream sources (their own repository), the ones a `targetRevision` pins.
    pub fn upstream_sources(&self) -> impl Iterator<Item = &Source> {
        self.applications.iter().flat_map(|a| &a.sources).filter(|s| matches!(s.repo, Repo::Url(_)))
    }

    /// Every upstream repository it reads: its upstream sources' URLs, then the Helm chart
    /// repositories of the kustomizations it renders (`files`), each once, in that order.
    pub fn upstream_urls(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let sources = self.upstream_sources().filter_map(|s| match &s.repo {
            Repo::Url(u) => Some(u.clone()),
            _ => None,
        });
        let charts = self.files.values().flatten().flat_map(|doc| {
            doc["helmCharts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["repo"].as_str().map(str::to_owned))
        });
        for u in sources.chain(charts) {
            if !out.contains(&u) {
                out.push(u);
            }
        }
        out
    }

    /// The version shown by `mip apps list`: the revisions of its upstream sources, then the
    /// chart versions of its kustomizations.
    pub fn version(&self) -> String {
        if let Some(pin) = &self.target_revision {
            return pin.clone();
        }
        let mut v: Vec<&str> = self.upstream_sources().filter_map(|s| s.target_revision.as_deref()).collect();
        // The chart versions of the kustomizations it renders (Submariner's).
        v.extend(self.files.values().flatten().flat_map(|doc| {
            doc["helmCharts"].as_array().into_iter().flatten().filter_map(|c| c["version"].as_str())
        }));
        v.dedup();
        if v.is_empty() { "-".to_owned() } else { v.join(",") }
    }

    /// Files of the `ref: values` repository named by `$values/<path>` value files.
    pub fn values_files(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .applications
            .iter()
            .flat_map(|a| &a.sources)
            .flat_map(|s| &s.value_files)
            .filter_map(|f| f.strip_prefix(VALUES_REF).map(str::to_owned))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

impl Source {
    /// In the definition schema.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(doc::SourceDoc::of(self)).unwrap_or_default()
    }
}

impl KeySource {
    /// In the definition schema (a fixed value is not secret; sources are names, never values).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(doc::KeyDoc(self)).unwrap_or_default()
    }
}

impl AppDef {
    /// The effective definition in the schema of `apps.yaml` (what `mip apps show` prints).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(doc::DefDoc::of(self)).unwrap_or_default()
    }
}

/// The definition schema of `apps.yaml` as serde writes it: borrowed views of the resolved
/// types, whose field order is the document's key order and which leave out what the schema
/// lets a definition omit.
mod doc {
    use super::{AppDef, AppSpec, KeySource, Repo, Scope, Source};
    use mip_core::SensitiveSource;
    use serde::Serialize;
    use serde::ser::{SerializeMap as _, Serializer};
    use std::collections::BTreeMap;

    fn is_false(b: &bool) -> bool {
        !*b
    }

    #[derive(Serialize)]
    pub(super) struct SourceDoc<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        repo: Option<&'static str>,
        #[serde(rename = "repoURL", skip_serializing_if = "Option::is_none")]
        repo_url: Option<&'a str>,
        #[serde(rename = "targetRevision", skip_serializing_if = "Option::is_none")]
        target_revision: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        chart: Option<&'a str>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        helm: Option<Helm<'a>>,
    }

    #[derive(Serialize)]
    struct Helm<'a> {
        #[serde(rename = "valueFiles")]
        value_files: &'a [String],
    }

    impl<'a> SourceDoc<'a> {
        pub(super) fn of(s: &'a Source) -> Self {
            let (repo, repo_url) = match &s.repo {
                Repo::Infra => (Some("infra"), None),
                Repo::Deployments => (Some("deployments"), None),
                Repo::Url(u) => (None, Some(u.as_str())),
            };
            SourceDoc {
                repo,
                repo_url,
                target_revision: s.target_revision.as_deref(),
                path: s.path.as_deref(),
                chart: s.chart.as_deref(),
                reference: s.reference.as_deref(),
                helm: (!s.value_files.is_empty()).then_some(Helm { value_files: &s.value_files }),
            }
        }
    }

    /// A key's source: `generate`, or a one-key mapping naming where the value comes from.
    pub(super) struct KeyDoc<'a>(pub &'a KeySource);

    impl Serialize for KeyDoc<'_> {
        fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
            let (key, value) = match self.0 {
                KeySource::Generated => return ser.serialize_str("generate"),
                KeySource::KeycloakClientId => ("keycloak", "clientId"),
                KeySource::KeycloakClientSecret => ("keycloak", "clientSecret"),
                KeySource::Value(v) => ("value", v.as_str()),
                KeySource::External(SensitiveSource::Env(v)) => ("env", v.as_str()),
                KeySource::External(SensitiveSource::File(v)) => ("file", v.as_str()),
                KeySource::External(SensitiveSource::Prompt(v)) => ("prompt", v.as_str()),
                KeySource::External(other) => return ser.collect_str(other),
            };
            let mut map = ser.serialize_map(Some(1))?;
            map.serialize_entry(key, value)?;
            map.end()
        }
    }

    #[derive(Serialize)]
    struct Param<'a> {
        name: &'a str,
        value: &'a str,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct NetworkPoliciesDoc<'a> {
        common_namespaces: &'a [String],
        federation_parameters: Vec<Param<'a>>,
        common_parameters: Vec<Param<'a>>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct AppDoc<'a> {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        project: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        wave: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<SourceDoc<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sources: Option<Vec<SourceDoc<'a>>>,
        sync_options: &'a [String],
        #[serde(skip_serializing_if = "is_false")]
        prune: bool,
        #[serde(skip_serializing_if = "Pairs::is_empty")]
        annotations: Pairs<'a>,
    }

    /// Key-value pairs as a mapping, in their own order.
    struct Pairs<'a>(&'a [(String, String)]);

    impl Pairs<'_> {
        fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    impl Serialize for Pairs<'_> {
        fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
            ser.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }

    impl<'a> AppDoc<'a> {
        fn of(a: &'a AppSpec) -> Self {
            let mut sources: Vec<SourceDoc<'a>> = a.sources.iter().map(SourceDoc::of).collect();
            let source = (a.single_source && sources.len() == 1).then(|| sources.remove(0));
            AppDoc {
                name: &a.name,
                project: a.project.as_deref(),
                namespace: a.namespace.as_deref(),
                wave: a.wave,
                sources: source.is_none().then_some(sources),
                source,
                sync_options: &a.sync_options,
                prune: a.prune,
                annotations: Pairs(&a.annotations),
            }
        }
    }

    #[derive(Serialize)]
    struct KindsDoc {
        namespaced: Vec<String>,
        cluster: Vec<String>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct DefDoc<'a> {
        scope: &'static str,
        #[serde(skip_serializing_if = "str::is_empty")]
        description: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        layout: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        target_revision: Option<&'a str>,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        requires: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        network_policies: Option<NetworkPoliciesDoc<'a>>,
        #[serde(skip_serializing_if = "is_false")]
        remote_nodes: bool,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        join_secrets: BTreeMap<&'a str, String>,
        applications: Vec<AppDoc<'a>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        files: Vec<&'a str>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        secrets: BTreeMap<&'a str, BTreeMap<&'a str, KeyDoc<'a>>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        kinds: Option<KindsDoc>,
    }

    impl<'a> DefDoc<'a> {
        pub(super) fn of(d: &'a AppDef) -> Self {
            let params = |p: &'a [(String, String)]| -> Vec<Param<'a>> {
                p.iter().map(|(name, value)| Param { name, value }).collect()
            };
            let gk = |v: &[(String, String)]| v.iter().map(|(g, k)| format!("{g}/{k}")).collect();
            DefDoc {
                scope: d.scope.as_str(),
                description: &d.description,
                layout: (d.scope == Scope::Federation).then(|| d.layout.as_str()),
                namespace: d.namespace.as_deref(),
                target_revision: d.target_revision.as_deref(),
                requires: &d.requires,
                network_policies: d.network_policies.as_ref().map(|np| NetworkPoliciesDoc {
                    common_namespaces: &np.common_namespaces,
                    federation_parameters: params(&np.federation_parameters),
                    common_parameters: params(&np.common_parameters),
                }),
                remote_nodes: d.remote_nodes,
                join_secrets: d
                    .join_secrets
                    .iter()
                    .map(|(k, (ns, n))| (k.as_str(), format!("{ns}/{n}")))
                    .collect(),
                applications: d.applications.iter().map(AppDoc::of).collect(),
                files: d.files.keys().map(String::as_str).collect(),
                secrets: d
                    .secrets
                    .iter()
                    .map(|(n, keys)| {
                        (n.as_str(), keys.iter().map(|(k, v)| (k.as_str(), KeyDoc(v))).collect())
                    })
                    .collect(),
                kinds: (!d.kinds.namespaced.is_empty() || !d.kinds.cluster.is_empty())
                    .then(|| KindsDoc { namespaced: gk(&d.kinds.namespaced), cluster: gk(&d.kinds.cluster) }),
            }
        }
    }
}

/// The effective catalogue: every app an inventory may list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    /// Definitions by name.
    pub apps: BTreeMap<String, AppDef>,
    /// Their located YAML (built-in merged with `apps:`), onto which a federation's
    /// `override:` merges.
    nodes: BTreeMap<String, DefNode>,
}

/// A definition's located YAML.
#[derive(Debug, Clone)]
struct DefNode(Node);

impl PartialEq for DefNode {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

// `Node` compares floats, and no definition holds a NaN: equality is reflexive here.
impl Eq for DefNode {}

impl Catalogue {
    /// The built-in catalogue alone.
    ///
    /// # Panics
    /// Never for the shipped `apps.yaml` (a unit test decodes it).
    pub fn builtin() -> Catalogue {
        let mut d = Decoder::new(BUILTIN_FILE);
        let cat = catalogue(&mut d, None);
        debug_assert!(!d.diags.has_errors(), "built-in apps.yaml: {:?}", d.diags);
        cat
    }

    /// A definition by name.
    pub fn get(&self, name: &str) -> Option<&AppDef> {
        self.apps.get(name)
    }

    /// Names of the apps of one scope, for hints.
    pub fn names(&self, scope: Scope) -> Vec<&str> {
        self.apps.values().filter(|a| a.scope == scope).map(|a| a.name.as_str()).collect()
    }
}

fn builtin_root() -> Node {
    // The shipped file is valid YAML (tested); an empty mapping keeps this total.
    crate::yaml::parse_document(BUILTIN_FILE, BUILTIN).unwrap_or(Node {
        line: 1,
        column: 1,
        value: Value::Map(Vec::new()),
    })
}

fn key_of(n: &Node) -> Option<&str> {
    match &n.value {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// `over` merged onto `base`: mappings key by key (recursively), anything else replaced.
pub fn merge(base: &Node, over: &Node) -> Node {
    match (&base.value, &over.value) {
        (Value::Map(b), Value::Map(o)) => {
            let mut out: Vec<(Node, Node)> = b.clone();
            for (k, v) in o {
                match out.iter_mut().find(|(bk, _)| key_of(bk).is_some() && key_of(bk) == key_of(k)) {
                    Some((_, bv)) => *bv = merge(bv, v),
                    None => out.push((k.clone(), v.clone())),
                }
            }
            Node { line: over.line, column: over.column, value: Value::Map(out) }
        }
        _ => over.clone(),
    }
}

/// Decodes the built-in catalogue merged with an inventory's `apps:` mapping.
pub(crate) fn catalogue(d: &mut Decoder<'_>, overrides: Option<&Node>) -> Catalogue {
    let root = builtin_root();
    let mut builtin_nodes: Vec<(String, Node)> = Vec::new();
    if let Value::Map(entries) = &root.value {
        for (k, v) in entries {
            if let Some(name) = key_of(k) {
                builtin_nodes.push((name.to_owned(), v.clone()));
            }
        }
    }
    let mut user: Vec<(Located<String>, Node)> = Vec::new();
    if let Some(node) = overrides {
        match &node.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (k, v) in entries {
                    match key_of(k) {
                        Some(name) => {
                            user.push((Located { value: name.to_owned(), at: d.loc(k) }, v.clone()))
                        }
                        None => d.error(
                            d.loc(k),
                            "wrong-type",
                            "keys of `apps` must be app names".to_owned(),
                            Some("quote the key".to_owned()),
                        ),
                    }
                }
            }
            _ => d.error(
                d.loc(node),
                "wrong-type",
                format!(
                    "`apps` must be a mapping of app name to definition, found {}",
                    node.value.type_name()
                ),
                Some("e.g. `apps: {exareme2: {targetRevision: <commit>}}`".to_owned()),
            ),
        }
    }
    let mut apps = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    // Built-ins decode with a decoder of their own (their locations are in the shipped file).
    let mut builtin_decoder = Decoder::new(BUILTIN_FILE);
    for (name, node) in &builtin_nodes {
        let over = user.iter().find(|(n, _)| n.value == *name);
        let path = format!("apps.{name}");
        let (def, merged) = match over {
            None => (app_def(&mut builtin_decoder, name, &path, node, true, None), node.clone()),
            Some((n, o)) => {
                let merged = merge(node, o);
                (app_def(d, name, &path, &merged, true, Some(n.at.clone())), merged)
            }
        };
        if let Some(def) = def {
            apps.insert(name.clone(), def);
            nodes.insert(name.clone(), DefNode(merged));
        }
    }
    for (name, node) in &user {
        if builtin_nodes.iter().any(|(b, _)| *b == name.value) {
            continue;
        }
        let path = format!("apps.{}", name.value);
        names::check_label(d, name, &path);
        if let Some(def) = app_def(d, &name.value, &path, node, false, Some(name.at.clone())) {
            apps.insert(name.value.clone(), def);
            nodes.insert(name.value.clone(), DefNode(node.clone()));
        }
    }
    Catalogue { apps, nodes }
}

/// A federation's own definition of an app: its entry's `override:` (in the definition
/// schema) merged onto the effective one. It may change anything but the scope and layout.
pub(crate) fn federation_override(
    d: &mut Decoder<'_>,
    cat: &Catalogue,
    name: &str,
    over: &Node,
    path: &str,
) -> Option<AppDef> {
    let (base, node) = (cat.apps.get(name)?, cat.nodes.get(name)?);
    let at = d.loc(over);
    let def = app_def(d, name, path, &merge(&node.0, over), base.builtin, Some(at.clone()))?;
    if def.scope != base.scope || def.layout != base.layout {
        d.error(
            at,
            "invalid-value",
            format!("`{path}` may not change the scope or layout of `{name}`"),
            Some("define a new app under `apps:` instead".to_owned()),
        );
        return None;
    }
    Some(def)
}

pub(crate) fn group_kinds(
    d: &mut Decoder<'_>,
    f: &mut Fields<'_>,
    key: &str,
    path: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, s) in d.string_list(f, key).into_iter().enumerate() {
        match s.value.rsplit_once('/') {
            Some((g, k)) if !k.is_empty() => out.push((g.to_owned(), k.to_owned())),
            _ => d.error(
                s.at.clone(),
                "invalid-value",
                format!("`{path}.{key}[{i}]` must be `group/Kind`, found `{}`", s.value),
                Some("e.g. `apps/Deployment`, or `/ConfigMap` for the core group".to_owned()),
            ),
        }
    }
    out
}

fn app_def(
    d: &mut Decoder<'_>,
    name: &str,
    path: &str,
    node: &Node,
    builtin: bool,
    at: Option<Location>,
) -> Option<AppDef> {
    let path = path.to_owned();
    let mut f = d.fields(node, &path)?;
    let scope = scope(d, &mut f, &path);
    let description = d.opt_string(&mut f, "description").map(|s| s.value).unwrap_or_default();
    let layout_s = d.opt_string(&mut f, "layout");
    let namespace = d.opt_string(&mut f, "namespace");
    if let Some(ns) = &namespace {
        names::check_label(d, ns, &format!("{path}.namespace"));
    }
    let target_revision = d.opt_string(&mut f, "targetRevision");
    if let Some(r) = &target_revision {
        names::check_revision(d, r, &format!("{path}.targetRevision"));
    }
    let requires = d.string_list(&mut f, "requires");
    let remote_nodes = flag(d, &mut f, &path, "remoteNodes");
    let network_policies = network_policies(d, f.get("networkPolicies"), &path);
    let applications = app_specs(d, f.get("applications"), &path, name);
    let files = files(d, f.get("files"), &path);
    let secrets = secrets(d, f.get("secrets"), &path);
    let kinds = kinds(d, f.get("kinds"), &path);
    let join_secrets = join_secrets(d, f.get("joinSecrets"), &path);
    let at_def = d.loc(node);
    d.finish(
        f,
        &[
            "joinSecrets",
            "scope",
            "description",
            "layout",
            "namespace",
            "targetRevision",
            "requires",
            "networkPolicies",
            "remoteNodes",
            "applications",
            "files",
            "secrets",
            "kinds",
        ],
    );
    let scope = scope?;
    if scope == Scope::Common && remote_nodes {
        d.error(
            d.loc(node),
            "invalid-value",
            format!(
                "`{path}.remoteNodes`: only federation apps run on the remote nodes of hybrid federations"
            ),
            Some("remove `remoteNodes`".to_owned()),
        );
        return None;
    }
    let layout = layout(d, scope, layout_s, &path)?;
    let mut ok = true;
    if scope == Scope::Federation {
        ok &= check_federation_app(d, applications.len(), namespace.as_ref(), &at_def, &path);
    }
    for a in &applications {
        ok &= check_application(d, a, scope, layout, namespace.is_some(), &at_def, &path);
    }
    ok.then(|| AppDef {
        name: name.to_owned(),
        scope,
        description,
        layout,
        namespace: namespace.map(|n| n.value),
        target_revision: target_revision.map(|r| r.value),
        requires: requires.into_iter().map(|r| r.value).collect(),
        network_policies,
        remote_nodes,
        applications,
        files,
        secrets,
        kinds,
        join_secrets,
        builtin,
        defined_at: at,
    })
}

/// A definition's required `scope` (`None` when missing or unknown, reported).
fn scope(d: &mut Decoder<'_>, f: &mut Fields<'_>, path: &str) -> Option<Scope> {
    match d.req_string(f, "scope", Some("`federation` or `common`")) {
        Some(s) if s.value == "federation" => Some(Scope::Federation),
        Some(s) if s.value == "common" => Some(Scope::Common),
        Some(s) => {
            d.error(
                s.at,
                "invalid-value",
                format!("`{path}.scope` must be `federation` or `common`, found `{}`", s.value),
                Some(
                    "`federation`: once per federation listing it; `common`: once, in `commonApps`"
                        .to_owned(),
                ),
            );
            None
        }
        None => None,
    }
}

/// An optional boolean field (`false` when absent, or when not a boolean: reported).
fn flag(d: &mut Decoder<'_>, f: &mut Fields<'_>, path: &str, key: &str) -> bool {
    match f.get(key) {
        None => false,
        Some(n) => match n.value {
            Value::Bool(b) => b,
            _ => {
                d.error(
                    d.loc(n),
                    "wrong-type",
                    format!("`{path}.{key}` must be a boolean"),
                    Some("`true` or `false`".to_owned()),
                );
                false
            }
        },
    }
}

/// A definition's `applications` (those that decode).
fn app_specs(d: &mut Decoder<'_>, node: Option<&Node>, path: &str, app: &str) -> Vec<AppSpec> {
    match node {
        None => Vec::new(),
        Some(n) => d.seq(n, &format!("{path}.applications")).map_or_else(Vec::new, |items| {
            items
                .iter()
                .enumerate()
                .filter_map(|(i, a)| app_spec(d, a, &format!("{path}.applications[{i}]"), app))
                .collect()
        }),
    }
}

/// A definition's `kinds` (`namespaced` and `cluster`, each `group/Kind`).
fn kinds(d: &mut Decoder<'_>, node: Option<&Node>, path: &str) -> Kinds {
    let Some(n) = node else { return Kinds::default() };
    let kp = format!("{path}.kinds");
    let Some(mut kf) = d.fields(n, &kp) else { return Kinds::default() };
    let namespaced = group_kinds(d, &mut kf, "namespaced", &kp);
    let cluster = group_kinds(d, &mut kf, "cluster", &kp);
    d.finish(kf, &["namespaced", "cluster"]);
    Kinds { namespaced, cluster }
}

/// The layout of a definition of `scope` (a common app takes none: reported, kept common;
/// `None`, reported, for an unknown one).
fn layout(d: &mut Decoder<'_>, scope: Scope, written: Option<Located<String>>, path: &str) -> Option<Layout> {
    match (scope, written) {
        (Scope::Common, None) => Some(Layout::Common),
        (Scope::Common, Some(l)) => {
            d.error(
                l.at,
                "invalid-value",
                format!("`{path}.layout`: common apps take no layout"),
                Some("remove `layout`".to_owned()),
            );
            Some(Layout::Common)
        }
        (Scope::Federation, None) => Some(Layout::Shared),
        (Scope::Federation, Some(l)) if l.value == "shared" => Some(Layout::Shared),
        (Scope::Federation, Some(l)) if l.value == "overlay" => Some(Layout::Overlay),
        (Scope::Federation, Some(l)) => {
            d.error(
                l.at,
                "invalid-value",
                format!("`{path}.layout` must be `shared` or `overlay`, found `{}`", l.value),
                Some("`shared`: a template in deployments/shared-apps patched per federation; `overlay`: a kustomize overlay in the federation's directory".to_owned()),
            );
            None
        }
    }
}

/// A federation app makes exactly one Application, in the federation's namespace (false
/// when not, reported).
fn check_federation_app(
    d: &mut Decoder<'_>,
    applications: usize,
    namespace: Option<&Located<String>>,
    at_def: &Location,
    path: &str,
) -> bool {
    let mut ok = true;
    if applications != 1 {
        d.error(
            at_def.clone(),
            "invalid-value",
            format!("`{path}`: a federation app makes exactly one Application, found {applications}"),
            Some("write one item under `applications`".to_owned()),
        );
        ok = false;
    }
    if let Some(ns) = namespace {
        d.error(
            ns.at.clone(),
            "invalid-value",
            format!("`{path}.namespace`: a federation app runs in the federation's namespace"),
            Some("remove `namespace`".to_owned()),
        );
        ok = false;
    }
    ok
}

/// An Application fits its definition's scope and layout: a common app's names its project
/// and has a namespace, a federation app's names none, a shared app's lists `sources` (false
/// when not, each reported).
fn check_application(
    d: &mut Decoder<'_>,
    a: &AppSpec,
    scope: Scope,
    layout: Layout,
    def_namespace: bool,
    at_def: &Location,
    path: &str,
) -> bool {
    let mut ok = true;
    if scope == Scope::Common && a.project.is_none() {
        d.error(
            at_def.clone(),
            "missing-key",
            format!("`{path}`: Application `{}` of a common app needs a `project`", a.name),
            Some("one of the static projects, e.g. `mip-argo-project-common`".to_owned()),
        );
        ok = false;
    }
    if scope == Scope::Common && a.namespace.is_none() && !def_namespace {
        d.error(
            at_def.clone(),
            "missing-key",
            format!("`{path}`: Application `{}` has no namespace", a.name),
            Some(format!("set `{path}.namespace` or the Application's `namespace`")),
        );
        ok = false;
    }
    if scope == Scope::Federation && a.project.is_some() {
        d.error(
            at_def.clone(),
            "invalid-value",
            format!("`{path}`: a federation app runs in the federation's project"),
            Some("remove `project`".to_owned()),
        );
        ok = false;
    }
    if layout == Layout::Shared && a.single_source {
        d.error(
            at_def.clone(),
            "invalid-value",
            format!("`{path}`: a shared federation app lists `sources` (the federation's patch adds value files to the first)"),
            Some("write `sources: [...]`".to_owned()),
        );
        ok = false;
    }
    ok
}

fn app_spec(d: &mut Decoder<'_>, node: &Node, path: &str, app: &str) -> Option<AppSpec> {
    let mut f = d.fields(node, path)?;
    let name = d.opt_string(&mut f, "name").map_or_else(|| app.to_owned(), |n| n.value);
    let project = d.opt_string(&mut f, "project").map(|p| p.value);
    let namespace = d.opt_string(&mut f, "namespace");
    if let Some(ns) = &namespace {
        names::check_label(d, ns, &format!("{path}.namespace"));
    }
    let wave = wave(d, f.get("wave"), path);
    let single = f.get("source");
    let many = f.get("sources");
    let (sources, single_source) = sources(d, node, single, many, path);
    let sync_options = d.string_list(&mut f, "syncOptions").into_iter().map(|s| s.value).collect();
    let prune = flag(d, &mut f, path, "prune");
    let annotations = annotations(d, f.get("annotations"), path);
    d.finish(
        f,
        &["name", "project", "namespace", "wave", "source", "sources", "syncOptions", "prune", "annotations"],
    );
    if sources.is_empty() {
        return None;
    }
    Some(AppSpec {
        name,
        project,
        namespace: namespace.map(|n| n.value),
        wave,
        sources,
        single_source,
        sync_options,
        prune,
        annotations,
    })
}

/// An Application's optional sync `wave` (an integer; `None`, reported, when not).
fn wave(d: &mut Decoder<'_>, node: Option<&Node>, path: &str) -> Option<i64> {
    let n = node?;
    match n.value {
        Value::Int(i) => Some(i),
        _ => {
            d.error(
                d.loc(n),
                "wrong-type",
                format!("`{path}.wave` must be an integer"),
                Some("Argo CD's sync wave, e.g. `1` (may be negative)".to_owned()),
            );
            None
        }
    }
}

/// An Application's `source` or `sources` (exactly one of them: reported when not), and
/// whether it was the single `source`.
fn sources(
    d: &mut Decoder<'_>,
    node: &Node,
    single: Option<&Node>,
    many: Option<&Node>,
    path: &str,
) -> (Vec<Source>, bool) {
    match (single, many) {
        (Some(s), None) => (source(d, s, &format!("{path}.source")).into_iter().collect(), true),
        (None, Some(m)) => {
            let list = d.seq(m, &format!("{path}.sources")).map_or_else(Vec::new, |items| {
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| source(d, s, &format!("{path}.sources[{i}]")))
                    .collect()
            });
            (list, false)
        }
        (Some(s), Some(_)) => {
            d.error(
                d.loc(s),
                "invalid-value",
                format!("`{path}` has both `source` and `sources`"),
                Some("keep one".to_owned()),
            );
            (Vec::new(), false)
        }
        (None, None) => {
            d.error(
                d.loc(node),
                "missing-key",
                format!("missing `{path}.sources`"),
                Some("where Argo CD reads the app from".to_owned()),
            );
            (Vec::new(), false)
        }
    }
}

/// An Application's `annotations` (string values, in the order written).
fn annotations(d: &mut Decoder<'_>, node: Option<&Node>, path: &str) -> Vec<(String, String)> {
    let mut annotations = Vec::new();
    if let Some(n) = node
        && let Some(mut af) = d.fields(n, &format!("{path}.annotations"))
    {
        let keys: Vec<String> = match &n.value {
            Value::Map(e) => e.iter().filter_map(|(k, _)| key_of(k).map(str::to_owned)).collect(),
            _ => Vec::new(),
        };
        for k in &keys {
            if let Some(v) = d.opt_string(&mut af, k) {
                annotations.push((k.clone(), v.value));
            }
        }
        d.finish(af, &[]);
    }
    annotations
}

fn source(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Source> {
    let mut f = d.fields(node, path)?;
    let url = d.opt_string(&mut f, "repoURL");
    let repo_s = d.opt_string(&mut f, "repo");
    let target_revision = d.opt_string(&mut f, "targetRevision");
    let p = d.opt_string(&mut f, "path").map(|s| s.value);
    let chart = d.opt_string(&mut f, "chart").map(|s| s.value);
    let reference = d.opt_string(&mut f, "ref").map(|s| s.value);
    let mut value_files = Vec::new();
    if let Some(h) = f.get("helm")
        && let Some(mut hf) = d.fields(h, &format!("{path}.helm"))
    {
        value_files = d.string_list(&mut hf, "valueFiles").into_iter().map(|s| s.value).collect();
        d.finish(hf, &["valueFiles"]);
    }
    d.finish(f, &["repoURL", "repo", "targetRevision", "path", "chart", "ref", "helm"]);
    let repo = match (url, repo_s) {
        (Some(u), None) => {
            names::check_repo_url(d, &u, &format!("{path}.repoURL"));
            if target_revision.is_none() {
                d.error(
                    u.at.clone(),
                    "missing-key",
                    format!("`{path}`: an upstream source needs a `targetRevision`"),
                    Some(
                        "pin a commit or tag; mip's own repositories are `repo: infra|deployments`"
                            .to_owned(),
                    ),
                );
            }
            Repo::Url(u.value)
        }
        (None, Some(r)) if r.value == "infra" || r.value == "deployments" => {
            if let Some(t) = &target_revision {
                d.error(
                    t.at.clone(),
                    "invalid-value",
                    format!("`{path}.targetRevision`: `repo: {}` follows the inventory's revision", r.value),
                    Some("remove it (`--revision` and `repositories.*.revision` set it)".to_owned()),
                );
            }
            if r.value == "infra" { Repo::Infra } else { Repo::Deployments }
        }
        (None, Some(r)) => {
            d.error(
                r.at,
                "invalid-value",
                format!("`{path}.repo` must be `infra` or `deployments`, found `{}`", r.value),
                Some("for another repository write `repoURL` and `targetRevision`".to_owned()),
            );
            return None;
        }
        (Some(u), Some(_)) => {
            d.error(
                u.at,
                "invalid-value",
                format!("`{path}` has both `repoURL` and `repo`"),
                Some("keep one".to_owned()),
            );
            return None;
        }
        (None, None) => {
            d.error(
                d.loc(node),
                "missing-key",
                format!("`{path}` names no repository"),
                Some("`repo: infra|deployments`, or `repoURL` with `targetRevision`".to_owned()),
            );
            return None;
        }
    };
    Some(Source {
        repo,
        target_revision: target_revision.map(|t| t.value),
        path: p,
        chart,
        reference,
        value_files,
    })
}

/// `joinSecrets: {broker: NAMESPACE/NAME, psk: NAMESPACE/NAME}`.
fn join_secrets(d: &mut Decoder<'_>, node: Option<&Node>, path: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let Some(node) = node else { return out };
    let Some(mut f) = d.fields(node, &format!("{path}.joinSecrets")) else { return out };
    for role in ["broker", "psk"] {
        let Some(v) = d.opt_string(&mut f, role) else { continue };
        let parts: Vec<&str> = v.value.split('/').collect();
        match parts.as_slice() {
            [ns, name]
                if names::is_dns1123_label(ns)
                    && name.len() <= 253
                    && name.split('.').all(names::is_dns1123_label) =>
            {
                out.insert(role.to_owned(), ((*ns).to_owned(), (*name).to_owned()));
            }
            _ => d.error(
                v.at.clone(),
                "invalid-value",
                format!(
                    "`{path}.joinSecrets.{role}` must be `namespace/name` of a Secret, found `{}`",
                    v.value
                ),
                Some(
                    "e.g. `submariner-k8s-broker/submariner-broker-submariner-k8s-broker-client-token`"
                        .to_owned(),
                ),
            ),
        }
    }
    d.finish(f, &["broker", "psk"]);
    out
}

/// `networkPolicies: true` (no common namespaces, no parameters) or
/// `{commonNamespaces: [...], federationParameters: [{name, value}], commonParameters: [...]}`.
fn network_policies(d: &mut Decoder<'_>, node: Option<&Node>, path: &str) -> Option<NetworkPolicies> {
    let node = node?;
    let path = format!("{path}.networkPolicies");
    match &node.value {
        Value::Bool(b) => return b.then(NetworkPolicies::default),
        Value::Map(_) => {}
        other => {
            d.error(
                d.loc(node),
                "wrong-type",
                format!("`{path}` must be `true` or a mapping, found {}", other.type_name()),
                Some("e.g. `{commonNamespaces: [mip-common-datacatalog]}`".to_owned()),
            );
            return None;
        }
    }
    let mut f = d.fields(node, &path)?;
    let common_namespaces: Vec<String> = d
        .string_list(&mut f, "commonNamespaces")
        .into_iter()
        .map(|ns| {
            names::check_label(d, &ns, &format!("{path}.commonNamespaces"));
            ns.value
        })
        .collect();
    let mut params = |d: &mut Decoder<'_>, key: &str| -> Vec<(String, String)> {
        let kp = format!("{path}.{key}");
        let Some(n) = f.get(key) else { return Vec::new() };
        let Some(items) = d.seq(n, &kp) else { return Vec::new() };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{kp}[{i}]");
            let Some(mut pf) = d.fields(item, &ip) else { continue };
            let name =
                d.req_string(&mut pf, "name", Some("the Helm value's path, e.g. `networkPolicy.enabled`"));
            let value = match pf.get("value") {
                None => None,
                Some(v) => match v.scalar_text() {
                    Some(text) if !matches!(v.value, Value::Null) => Some(text),
                    _ => {
                        d.error(
                            d.loc(v),
                            "wrong-type",
                            format!("`{ip}.value` must be a scalar"),
                            Some("Helm parameters are strings; quote the value".to_owned()),
                        );
                        None
                    }
                },
            };
            d.finish(pf, &["name", "value"]);
            if let (Some(name), Some(value)) = (name, value) {
                out.push((name.value, value));
            }
        }
        out
    };
    let federation_parameters = params(d, "federationParameters");
    let common_parameters = params(d, "commonParameters");
    d.finish(f, &["commonNamespaces", "federationParameters", "commonParameters"]);
    Some(NetworkPolicies { common_namespaces, federation_parameters, common_parameters })
}

fn files(d: &mut Decoder<'_>, node: Option<&Node>, path: &str) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut out = BTreeMap::new();
    let Some(node) = node else { return out };
    let Value::Map(entries) = &node.value else {
        d.error(
            d.loc(node),
            "wrong-type",
            format!("`{path}.files` must map paths to documents"),
            Some("e.g. `files: {manifests/x.yaml: [{apiVersion: v1, kind: ConfigMap, ...}]}`".to_owned()),
        );
        return out;
    };
    {
        for (k, v) in entries {
            let Some(rel) = key_of(k) else { continue };
            let loc = Located { value: rel.to_owned(), at: d.loc(k) };
            names::check_relative_path(d, &loc, &format!("{path}.files"));
            let docs = match &v.value {
                Value::Seq(items) => items.iter().map(Node::to_json).collect(),
                _ => {
                    d.error(
                        d.loc(v),
                        "wrong-type",
                        format!("`{path}.files.{rel}` must be a list of YAML documents"),
                        Some("write `- <document>` per document".to_owned()),
                    );
                    continue;
                }
            };
            out.insert(rel.to_owned(), docs);
        }
    }
    out
}

fn secrets(
    d: &mut Decoder<'_>,
    node: Option<&Node>,
    path: &str,
) -> BTreeMap<String, BTreeMap<String, KeySource>> {
    let mut out = BTreeMap::new();
    let Some(node) = node else { return out };
    let Value::Map(entries) = &node.value else {
        d.error(
            d.loc(node),
            "wrong-type",
            format!("`{path}.secrets` must be a mapping"),
            Some("e.g. `secrets: {my-secret: {password: generate}}`".to_owned()),
        );
        return out;
    };
    for (k, v) in entries {
        let Some(secret) = key_of(k) else { continue };
        let loc = Located { value: secret.to_owned(), at: d.loc(k) };
        names::check_label(d, &loc, &format!("{path}.secrets"));
        let Value::Map(keys) = &v.value else {
            d.error(
                d.loc(v),
                "wrong-type",
                format!("`{path}.secrets.{secret}` must map keys to sources"),
                Some("e.g. `password: generate`, `client-id: {keycloak: clientId}`".to_owned()),
            );
            continue;
        };
        let mut m = BTreeMap::new();
        for (kk, kv) in keys {
            let Some(key) = key_of(kk) else { continue };
            let kp = format!("{path}.secrets.{secret}.{key}");
            if let Some(src) = key_source(d, kv, &kp) {
                m.insert(key.to_owned(), src);
            }
        }
        out.insert(secret.to_owned(), m);
    }
    out
}

fn key_source(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<KeySource> {
    match &node.value {
        Value::Str(s) if s == "generate" => return Some(KeySource::Generated),
        Value::Map(e) if e.len() == 1 => {
            let (k, v) = &e[0];
            match key_of(k) {
                Some("keycloak") => {
                    return match &v.value {
                        Value::Str(s) if s == "clientId" => Some(KeySource::KeycloakClientId),
                        Value::Str(s) if s == "clientSecret" => Some(KeySource::KeycloakClientSecret),
                        _ => {
                            d.error(
                                d.loc(v),
                                "invalid-value",
                                format!("`{path}.keycloak` must be `clientId` or `clientSecret`"),
                                Some(
                                    "the Keycloak client's id or secret, from `credentials.keycloak`"
                                        .to_owned(),
                                ),
                            );
                            None
                        }
                    };
                }
                Some("value") => {
                    return d.string(v, &format!("{path}.value")).map(|s| KeySource::Value(s.value));
                }
                Some("env" | "file" | "prompt") => {
                    return d
                        .secret_ref(node, path, false)
                        .map(|SecretRef { source, .. }| KeySource::External(source));
                }
                _ => {}
            }
        }
        _ => {}
    }
    d.error(
        d.loc(node),
        "secret-source",
        format!("`{path}` names no known source"),
        Some("`generate`, `{keycloak: clientId|clientSecret}`, `{env|file|prompt: ...}` or `{value: text}` (not secret)".to_owned()),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalogue_decodes_without_a_problem() {
        let mut d = Decoder::new(BUILTIN_FILE);
        let cat = catalogue(&mut d, None);
        assert!(d.diags.is_empty(), "{:?}", d.diags);
        let names: Vec<&str> = cat.apps.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "datacatalog",
                "exareme2",
                "exareme2-overlay",
                "mip-stack",
                "nginx-ingress",
                "security",
                "submariner"
            ]
        );
        assert_eq!(
            cat.get("exareme2").map(AppDef::version).as_deref(),
            Some("c1d4eb3d9d90edcf868a3a6395cc37b19c934e66")
        );
        assert_eq!(
            cat.get("datacatalog").map(AppDef::values_files),
            Some(vec!["common/datacatalog/values.yaml".to_owned()])
        );
        let mip_secret = &cat.apps["mip-stack"].secrets["mip-secret"];
        assert_eq!(mip_secret.len(), 10);
        assert!(
            mip_secret.values().all(|k| *k == KeySource::Generated),
            "every key generated, as gen_secrets.sh"
        );
    }

    #[test]
    fn overrides_merge_key_by_key_and_lists_replace() {
        let text = "exareme2:\n  targetRevision: 0a9f\n  applications:\n    - wave: 5\n      sources: [{repo: deployments, path: x}]\nmip-stack:\n  secrets:\n    mip-secret:\n      gateway-db.DB_ADMIN_USER: {value: postgres}\nmonitoring:\n  scope: common\n  namespace: monitoring\n  applications:\n    - name: monitoring\n      project: mip-argo-project-common\n      source: {repo: infra, path: common/monitoring/manifests}\n";
        let node = crate::yaml::parse_document("mip.yaml", text).expect("yaml");
        let mut d = Decoder::new("mip.yaml");
        let cat = catalogue(&mut d, Some(&node));
        assert!(d.diags.is_empty(), "{:?}", d.diags);
        let e = &cat.apps["exareme2"];
        assert_eq!(e.target_revision.as_deref(), Some("0a9f"));
        assert_eq!(e.applications[0].wave, Some(5));
        assert_eq!(e.applications[0].sources.len(), 1, "lists replace");
        assert!(e.defined_at.is_some() && e.builtin);
        let s = &cat.apps["mip-stack"].secrets["mip-secret"];
        assert_eq!(s["gateway-db.DB_ADMIN_USER"], KeySource::Value("postgres".into()));
        assert_eq!(s["gateway-db.DB_ADMIN_PASSWORD"], KeySource::Generated, "other keys kept");
        let m = &cat.apps["monitoring"];
        assert!(!m.builtin && m.scope == Scope::Common && m.layout == Layout::Common);
    }

    #[test]
    fn a_bad_definition_is_reported_at_its_line() {
        let text = "exareme2:\n  scope: everywhere\nmonitoring:\n  scope: common\n  applications:\n    - name: m\n      sources: [{repoURL: 'https://example.org/c.git', path: x}]\n";
        let node = crate::yaml::parse_document("mip.yaml", text).expect("yaml");
        let mut d = Decoder::new("mip.yaml");
        let _ = catalogue(&mut d, Some(&node));
        let lines: Vec<String> = d.diags.sorted().iter().map(ToString::to_string).collect();
        assert!(
            lines.iter().any(|l| l.starts_with("mip.yaml:2:10: error[invalid-value]: `apps.exareme2.scope`")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("needs a `project`")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("needs a `targetRevision`")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("has no namespace")), "{lines:?}");
    }
}
