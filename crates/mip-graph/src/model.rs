//! The desired state: objects, their owner and their step.

use mip_core::{Location, ObjectRef, Owner, SensitiveSource};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The named phases of a bootstrap, in order. Every object belongs to one.
///
/// The DAG orders objects inside and across steps by its rules; the step is what a reviewer
/// reads ("this happens while bootstrapping") and what `--target` can select.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Lock the `default` AppProject down before anything else exists.
    DefaultProject,
    /// The bootstrap project, credentials, prerequisites, namespaces and secrets.
    Bootstrap,
    /// The `<prefix>argo-projects` root Application.
    ArgoProjects,
    /// Argo CD creates the static and federation AppProjects; mip waits for them.
    AwaitProjects,
    /// The `<prefix>infra-clusterset` root Application.
    Infra,
    /// Argo CD creates the federation and common Applications; mip waits for them.
    AwaitApps,
    /// mip carries what joins the remote nodes of hybrid federations (Submariner's broker
    /// credentials) to their clusters, once Argo CD has deployed the broker.
    RemoteNodes,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 7] = [
        Step::DefaultProject,
        Step::Bootstrap,
        Step::ArgoProjects,
        Step::AwaitProjects,
        Step::Infra,
        Step::AwaitApps,
        Step::RemoteNodes,
    ];

    /// Kebab-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::DefaultProject => "default-project",
            Step::Bootstrap => "bootstrap",
            Step::ArgoProjects => "argo-projects",
            Step::AwaitProjects => "await-projects",
            Step::Infra => "infra",
            Step::AwaitApps => "await-apps",
            Step::RemoteNodes => "remote-nodes",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object of the desired state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredObject {
    /// Its address, shared with the key of [`Desired::objects`].
    pub addr: std::sync::Arc<ObjectRef>,
    /// Who writes it.
    pub owner: Owner,
    /// Its step.
    pub step: Step,
    /// For mip-owned objects the full manifest to apply, **without secret values** (Secret
    /// `stringData` values are empty strings; [`DesiredObject::sensitive`] says where each
    /// comes from). For Argo-owned objects the fields mip models and checks (project,
    /// sources, destination), not a full manifest. Shared (`Arc`) with the plan's changes, so a
    /// plan of 30 000 objects does not copy 30 000 manifests.
    pub manifest: std::sync::Arc<Value>,
    /// For Argo-owned objects the fields mip models and checks, typed (the `manifest` is then
    /// `null`): at 10 000 federations there are 60 000 of them, and as JSON maps they were a
    /// third of the desired state's memory. [`DesiredObject::body`] gives either as JSON.
    #[serde(skip)]
    pub model: Option<std::sync::Arc<ArgoModel>>,
    /// Secret keys and where their values come from.
    /// Shared: every federation's Secret of one app names the same keys and sources.
    #[serde(skip_serializing_if = "no_keys")]
    pub sensitive: std::sync::Arc<BTreeMap<String, SensitiveSource>>,
    /// Why the object exists, for the plan.
    pub reason: String,
    /// The inventory entry that caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Location>,
    /// For Argo-owned objects: the Application or ApplicationSet that generates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_by: Option<std::sync::Arc<ObjectRef>>,
}

impl DesiredObject {
    /// A string field of the manifest by JSON pointer; for an Argo-owned object, of its model
    /// (see [`ArgoModel::str_at`]).
    pub fn str_at(&self, pointer: &str) -> Option<&str> {
        match &self.model {
            Some(model) => model.str_at(pointer),
            None => mip_core::canonical::at(&self.manifest, pointer).and_then(Value::as_str),
        }
    }

    /// The manifest of a mip-owned object, or the model of an Argo-owned one as JSON (built on
    /// each call: for the few places that read an Argo model as a document).
    pub fn body(&self) -> std::borrow::Cow<'_, Value> {
        match &self.model {
            Some(model) => std::borrow::Cow::Owned(model.to_value()),
            None => std::borrow::Cow::Borrowed(&self.manifest),
        }
    }
}

fn no_keys(keys: &std::sync::Arc<BTreeMap<String, SensitiveSource>>) -> bool {
    keys.is_empty()
}

/// The empty key map most objects share.
pub(crate) fn no_secrets() -> std::sync::Arc<BTreeMap<String, SensitiveSource>> {
    static EMPTY: std::sync::LazyLock<std::sync::Arc<BTreeMap<String, SensitiveSource>>> =
        std::sync::LazyLock::new(Default::default);
    std::sync::Arc::clone(&EMPTY)
}

/// The `null` manifest every Argo-owned object shares.
pub(crate) fn null_manifest() -> std::sync::Arc<Value> {
    static NULL: std::sync::LazyLock<std::sync::Arc<Value>> =
        std::sync::LazyLock::new(|| std::sync::Arc::new(Value::Null));
    std::sync::Arc::clone(&NULL)
}

/// The sync-wave annotation.
pub const WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";

/// What mip models of an object Argo CD generates: the fields it checks (permissions), orders
/// by (project, destination namespace) and compares with the live object (what Argo CD will
/// change). [`ArgoModel::to_value`] is the JSON form plans show and compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgoModel {
    /// An Application.
    App(AppModel),
    /// An AppProject: its source repositories and destinations (server, namespace).
    Project {
        /// `spec.sourceRepos` (shared by every federation's project).
        source_repos: std::sync::Arc<[String]>,
        /// `spec.destinations`, as (server, namespace).
        destinations: Vec<(String, String)>,
    },
    /// An ApplicationSet: the project of the Applications it renders.
    AppSet {
        /// `spec.template.spec.project`.
        project: String,
    },
}

/// The modelled fields of an Application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppModel {
    /// `spec.project`.
    pub project: String,
    /// `spec.sources`.
    pub sources: Vec<AppSource>,
    /// `spec.destination.server`.
    pub server: String,
    /// `spec.destination.namespace`.
    pub namespace: String,
    /// The sync-wave annotation's value.
    pub wave: Option<String>,
}

/// One source of an Application, as mip models it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSource {
    /// `repoURL`.
    pub repo_url: String,
    /// `targetRevision`.
    pub target_revision: String,
    /// `path`.
    pub path: Option<String>,
    /// `chart`.
    pub chart: Option<String>,
    /// `ref`.
    pub reference: Option<String>,
    /// `helm.valueFiles` (absent when empty).
    pub value_files: Vec<String>,
}

/// A JSON object of these entries, moved in. `json!` copies every value it is given (it
/// serializes a reference) and grows each map from empty; resolution builds about 90 000
/// objects at 10 000 federations, so manifests and models are built with this.
pub(crate) fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|s| Value::String(s.clone())).collect())
}

impl AppSource {
    /// As JSON: `repoURL`, `targetRevision`, then `path`, `chart`, `ref` and `helm.valueFiles`
    /// where set.
    pub fn to_value(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("repoURL".into(), self.repo_url.clone().into());
        m.insert("targetRevision".into(), self.target_revision.clone().into());
        for (key, v) in [("path", &self.path), ("chart", &self.chart), ("ref", &self.reference)] {
            if let Some(v) = v {
                m.insert(key.into(), v.clone().into());
            }
        }
        if !self.value_files.is_empty() {
            m.insert("helm".into(), object([("valueFiles", strings(&self.value_files))]));
        }
        Value::Object(m)
    }
}

impl ArgoModel {
    /// The model as JSON, as a manifest would hold those fields.
    pub fn to_value(&self) -> Value {
        match self {
            ArgoModel::App(app) => {
                let spec = object([
                    ("project", app.project.clone().into()),
                    ("sources", Value::Array(app.sources.iter().map(AppSource::to_value).collect())),
                    (
                        "destination",
                        object([
                            ("server", app.server.clone().into()),
                            ("namespace", app.namespace.clone().into()),
                        ]),
                    ),
                ]);
                match &app.wave {
                    Some(w) => object([
                        (
                            "metadata",
                            object([("annotations", object([(WAVE_ANNOTATION, w.clone().into())]))]),
                        ),
                        ("spec", spec),
                    ]),
                    None => object([("spec", spec)]),
                }
            }
            ArgoModel::Project { source_repos, destinations } => {
                let dests = destinations
                    .iter()
                    .map(|(server, ns)| {
                        object([("server", server.clone().into()), ("namespace", ns.clone().into())])
                    })
                    .collect();
                object([(
                    "spec",
                    object([("sourceRepos", strings(source_repos)), ("destinations", Value::Array(dests))]),
                )])
            }
            ArgoModel::AppSet { project } => object([(
                "spec",
                object([("template", object([("spec", object([("project", project.clone().into())]))]))]),
            )]),
        }
    }

    /// A string field by JSON pointer, as in [`ArgoModel::to_value`], for the fields the model
    /// holds as strings: an Application's `/spec/project`, `/spec/destination/server` and
    /// `…/namespace`, and its sources' `/spec/sources/N/repoURL` (`targetRevision`, `path`,
    /// `chart`, `ref`), and its sync-wave annotation; an ApplicationSet's
    /// `/spec/template/spec/project`. `None` for any other.
    pub fn str_at(&self, pointer: &str) -> Option<&str> {
        match (self, pointer) {
            (ArgoModel::App(a), "/spec/project") => Some(&a.project),
            (ArgoModel::App(a), "/spec/destination/server") => Some(&a.server),
            (ArgoModel::App(a), "/spec/destination/namespace") => Some(&a.namespace),
            (ArgoModel::App(a), "/metadata/annotations/argocd.argoproj.io~1sync-wave") => a.wave.as_deref(),
            (ArgoModel::AppSet { project }, "/spec/template/spec/project") => Some(project),
            (ArgoModel::App(a), _) => {
                let (index, field) = pointer.strip_prefix("/spec/sources/")?.split_once('/')?;
                let s = a.sources.get(index.parse::<usize>().ok()?)?;
                match field {
                    "repoURL" => Some(&s.repo_url),
                    "targetRevision" => Some(&s.target_revision),
                    "path" => s.path.as_deref(),
                    "chart" => s.chart.as_deref(),
                    "ref" => s.reference.as_deref(),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// A Kubernetes manifest read from a prerequisite file.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Where the document starts.
    pub at: Location,
    /// The document.
    pub value: Value,
}

/// Options that change resolution without editing the inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveOptions {
    /// `--revision BRANCH`: every repository revision becomes this branch, and the root
    /// Applications get its sanitised prefix.
    pub revision: Option<String>,
}

/// The resolved desired state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    /// Every object, mip-owned and Argo-owned, by address.
    pub objects: BTreeMap<std::sync::Arc<ObjectRef>, DesiredObject>,
    /// The revision in effect.
    pub revision: String,
    /// The root Application name prefix (`<sanitised revision>-`).
    pub prefix: String,
    /// Warnings of resolution (e.g. an object declared twice in the prerequisite files, taken
    /// as `kubectl apply` takes it: the later one wins).
    pub warnings: mip_core::Diagnostics,
}

impl Desired {
    /// Objects mip writes.
    pub fn mip_owned(&self) -> impl Iterator<Item = &DesiredObject> {
        self.objects.values().filter(|o| o.owner == Owner::Mip)
    }

    /// Objects Argo CD generates.
    pub fn argo_owned(&self) -> impl Iterator<Item = &DesiredObject> {
        self.objects.values().filter(|o| o.owner == Owner::ArgoCd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> ArgoModel {
        ArgoModel::App(AppModel {
            project: "p".into(),
            sources: vec![
                AppSource {
                    repo_url: "https://example.org/chart.git".into(),
                    target_revision: "v1".into(),
                    path: Some("charts/x".into()),
                    chart: None,
                    reference: None,
                    value_files: vec!["$values/a.yaml".into()],
                },
                AppSource {
                    repo_url: "https://example.org/values.git".into(),
                    target_revision: "main".into(),
                    path: None,
                    chart: Some("c".into()),
                    reference: Some("values".into()),
                    value_files: Vec::new(),
                },
            ],
            server: "https://kubernetes.default.svc".into(),
            namespace: "ns".into(),
            wave: Some("2".into()),
        })
    }

    /// The typed reads answer what the JSON form holds at the same pointer, and nothing else.
    #[test]
    fn str_at_agrees_with_the_json_form() {
        let appset = ArgoModel::AppSet { project: "q".into() };
        let project = ArgoModel::Project {
            source_repos: vec!["https://example.org/a.git".to_owned()].into(),
            destinations: vec![("s".into(), "n".into())],
        };
        let pointers = [
            "/spec/project",
            "/spec/destination/server",
            "/spec/destination/namespace",
            "/metadata/annotations/argocd.argoproj.io~1sync-wave",
            "/spec/template/spec/project",
            "/spec/sources/0/repoURL",
            "/spec/sources/0/targetRevision",
            "/spec/sources/0/path",
            "/spec/sources/0/chart",
            "/spec/sources/1/chart",
            "/spec/sources/1/ref",
            "/spec/sources/2/repoURL",
            "/spec/sources/0/helm/valueFiles/0",
            "/spec/sourceRepos/0",
        ];
        for model in [app(), appset, project] {
            let json = model.to_value();
            for p in pointers {
                let want = mip_core::canonical::at(&json, p).and_then(Value::as_str);
                // Lists of strings are read as lists, never by pointer.
                if p.contains("valueFiles") || p.contains("sourceRepos") {
                    assert_eq!(model.str_at(p), None, "{p}");
                    continue;
                }
                assert_eq!(model.str_at(p), want, "{p} of {json}");
            }
        }
    }

    /// The JSON form is what the models were before they were typed: sorted keys, `helm` only
    /// with value files, the wave as an annotation.
    #[test]
    fn json_form() {
        let want = serde_json::json!({
            "metadata": {"annotations": {"argocd.argoproj.io/sync-wave": "2"}},
            "spec": {
                "project": "p",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "ns"},
                "sources": [
                    {"repoURL": "https://example.org/chart.git", "targetRevision": "v1", "path": "charts/x",
                     "helm": {"valueFiles": ["$values/a.yaml"]}},
                    {"repoURL": "https://example.org/values.git", "targetRevision": "main", "chart": "c", "ref": "values"}
                ]
            }
        });
        assert_eq!(app().to_value(), want);
        // Key order too (serde_json keeps insertion order here: `preserve_order`), as plans
        // print the models: the order the JSON-built models had.
        assert_eq!(
            serde_json::to_string(&app().to_value()).expect("serializes"),
            r#"{"metadata":{"annotations":{"argocd.argoproj.io/sync-wave":"2"}},"spec":{"project":"p","sources":[{"repoURL":"https://example.org/chart.git","targetRevision":"v1","path":"charts/x","helm":{"valueFiles":["$values/a.yaml"]}},{"repoURL":"https://example.org/values.git","targetRevision":"main","chart":"c","ref":"values"}],"destination":{"server":"https://kubernetes.default.svc","namespace":"ns"}}}"#
        );
        let project = ArgoModel::Project {
            source_repos: vec!["r".to_owned()].into(),
            destinations: vec![("s".into(), "n".into())],
        };
        assert_eq!(
            project.to_value(),
            serde_json::json!({"spec": {"sourceRepos": ["r"], "destinations": [{"server": "s", "namespace": "n"}]}})
        );
        assert_eq!(
            serde_json::to_string(&project.to_value()).expect("serializes"),
            r#"{"spec":{"sourceRepos":["r"],"destinations":[{"server":"s","namespace":"n"}]}}"#
        );
    }
}
