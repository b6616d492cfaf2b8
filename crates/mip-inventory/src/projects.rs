//! Project rules as data: the built-in rules of mip's Argo CD projects (`projects.yaml`,
//! compiled in, mip-infra's values) merged with the inventory's `projects:` section.
//!
//! A static project's rules are its description, destination namespaces, whitelisted and
//! blacklisted kinds, sync windows and roles; `federation` holds the same for the template of
//! every federation's own project. The rendered tree reads them; what mip computes (source
//! repositories, the namespaces and kinds of the enabled apps, remote clusters) is added on
//! top, so the rules state policy and the inventory states what runs.
//!
//! Overrides merge on the located YAML tree before decoding, as `apps:` does (mappings key by
//! key, lists and scalars replace): a problem in an override is reported at its line.

use crate::apps::merge;
use crate::decoder::{Decoder, Fields};
use crate::located::Located;
use crate::yaml::{Node, Value};
use mip_core::Location;
use std::collections::BTreeMap;

/// The built-in rules, as shipped with this mip.
pub const BUILTIN: &str = include_str!("projects.yaml");
/// The file name built-in rules are located in.
pub const BUILTIN_FILE: &str = "<built-in projects.yaml>";
/// The key of the federation projects' template.
pub const FEDERATION: &str = "federation";
/// Stands for Argo CD's namespace in a static project's `namespaces`.
pub const ARGOCD_TOKEN: &str = "$argocd";
/// Stands for the federation's name in the `federation` template.
pub const FEDERATION_TOKEN: &str = "$federation";

/// The actions a role may be granted on applications (Argo CD's RBAC), besides
/// `action/<group>/<kind>/<action>`.
const ACTIONS: [&str; 7] = ["get", "create", "update", "delete", "sync", "override", "*"];

/// A `group/Kind` pair (`""` is the core group).
pub type GroupKind = (String, String);

/// One role of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// One line.
    pub description: String,
    /// Actions on the project's applications, one policy each, in order.
    pub actions: Vec<String>,
    /// SSO groups bound to the role.
    pub groups: Vec<String>,
}

/// The rules of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRules {
    /// The project's name (`federation`: the template).
    pub name: String,
    /// One line.
    pub description: String,
    /// The file under `projects/static/<dir>/` (static projects).
    pub file: Option<String>,
    /// Metadata labels, in order.
    pub labels: Vec<(String, String)>,
    /// Destination namespaces or patterns ([`ARGOCD_TOKEN`] for Argo CD's).
    pub namespaces: Vec<String>,
    /// `sourceRepos`, when the rules fix them (`None`: derived from the apps, least privilege).
    pub source_repos: Option<Vec<String>>,
    /// `clusterResourceWhitelist` (`None`: not written).
    pub cluster_whitelist: Option<Vec<GroupKind>>,
    /// `namespaceResourceWhitelist` (`None`: not written).
    pub namespace_whitelist: Option<Vec<GroupKind>>,
    /// `clusterResourceBlacklist` (`None`: not written).
    pub cluster_blacklist: Option<Vec<GroupKind>>,
    /// `syncWindows`, as written.
    pub sync_windows: Option<serde_json::Value>,
    /// Roles, in order.
    pub roles: Vec<Role>,
    /// Where the inventory overrides it (`None`: built-in).
    pub overridden_at: Option<Location>,
}

impl ProjectRules {
    /// Its destination namespaces with Argo CD's namespace filled in.
    pub fn namespaces_in(&self, argocd_ns: &str) -> Vec<String> {
        self.namespaces
            .iter()
            .map(|n| if n == ARGOCD_TOKEN { argocd_ns.to_owned() } else { n.clone() })
            .collect()
    }

    /// In the rules schema (`projects.yaml`), every key present; `sourceRepos` only when fixed.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let gks = |l: &Option<Vec<GroupKind>>| {
            l.as_ref().map(|l| json!(l.iter().map(|(g, k)| format!("{g}/{k}")).collect::<Vec<_>>()))
        };
        let mut m = serde_json::Map::new();
        m.insert("description".into(), json!(self.description));
        if let Some(f) = &self.file {
            m.insert("file".into(), json!(f));
        }
        let labels: serde_json::Map<String, serde_json::Value> =
            self.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        m.insert("labels".into(), serde_json::Value::Object(labels));
        m.insert("namespaces".into(), json!(self.namespaces));
        if let Some(r) = &self.source_repos {
            m.insert("sourceRepos".into(), json!(r));
        }
        for (key, list) in [
            ("clusterResourceWhitelist", &self.cluster_whitelist),
            ("namespaceResourceWhitelist", &self.namespace_whitelist),
            ("clusterResourceBlacklist", &self.cluster_blacklist),
        ] {
            m.insert(key.into(), gks(list).unwrap_or(serde_json::Value::Null));
        }
        m.insert("syncWindows".into(), self.sync_windows.clone().unwrap_or(serde_json::Value::Null));
        let roles: Vec<serde_json::Value> = self
            .roles
            .iter()
            .map(|r| json!({ "name": r.name, "description": r.description, "actions": r.actions, "groups": r.groups }))
            .collect();
        m.insert("roles".into(), json!(roles));
        serde_json::Value::Object(m)
    }

    /// A role's policies: one per action.
    pub fn policies(project: &str, role: &Role) -> Vec<String> {
        role.actions
            .iter()
            .map(|a| format!("p, proj:{project}:{}, applications, {a}, {project}/*, allow", role.name))
            .collect()
    }
}

/// The effective rules of every project mip renders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projects {
    /// Rules by project name ([`FEDERATION`] for the template).
    pub rules: BTreeMap<String, ProjectRules>,
}

impl Projects {
    /// The built-in rules alone.
    ///
    /// # Panics
    /// Never for the shipped `projects.yaml` (a unit test decodes it).
    pub fn builtin() -> Projects {
        let mut d = Decoder::new(BUILTIN_FILE);
        let p = projects(&mut d, None);
        debug_assert!(!d.diags.has_errors(), "built-in projects.yaml: {:?}", d.diags);
        p
    }

    /// The rules of a project by name; every static project and [`FEDERATION`] have some.
    pub fn get(&self, name: &str) -> Option<&ProjectRules> {
        self.rules.get(name)
    }
}

fn builtin_entries() -> Vec<(String, Node)> {
    let Ok(root) = crate::yaml::parse_document(BUILTIN_FILE, BUILTIN) else { return Vec::new() };
    let Value::Map(entries) = root.value else { return Vec::new() };
    entries
        .into_iter()
        .filter_map(|(k, v)| if let Value::Str(s) = k.value { Some((s, v)) } else { None })
        .collect()
}

/// Decodes the built-in rules merged with an inventory's `projects:` mapping.
pub(crate) fn projects(d: &mut Decoder<'_>, overrides: Option<&Node>) -> Projects {
    let builtin = builtin_entries();
    let names: Vec<&str> = builtin.iter().map(|(n, _)| n.as_str()).collect();
    let mut user: Vec<(String, Location, &Node)> = Vec::new();
    if let Some(node) = overrides {
        match &node.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (k, v) in entries {
                    match &k.value {
                        Value::Str(name) if names.contains(&name.as_str()) => {
                            user.push((name.clone(), d.loc(k), v));
                        }
                        other => {
                            let shown = match other {
                                Value::Str(s) => format!("`{s}`"),
                                v => v.type_name().to_owned(),
                            };
                            d.error(
                                d.loc(k),
                                "unknown-project",
                                format!(
                                    "`projects` has no project {shown}: mip renders a fixed set of projects"
                                ),
                                Some(format!("override one of: {}", names.join(", "))),
                            );
                        }
                    }
                }
            }
            other => d.error(
                d.loc(node),
                "wrong-type",
                format!("`projects` must be a mapping of project name to rules, found {}", other.type_name()),
                Some("e.g. `projects: {mip-argo-project-common: {namespaces: [monitoring]}}`".to_owned()),
            ),
        }
    }
    let mut rules = BTreeMap::new();
    let mut builtin_decoder = Decoder::new(BUILTIN_FILE);
    for (name, node) in &builtin {
        let path = format!("projects.{name}");
        let decoded = match user.iter().find(|(n, _, _)| n == name) {
            None => project(&mut builtin_decoder, name, &path, node, None),
            Some((_, at, over)) => project(d, name, &path, &merge(node, over), Some(at.clone())),
        };
        if let Some(r) = decoded {
            rules.insert(name.clone(), r);
        }
    }
    Projects { rules }
}

/// A list of kinds; `null` (an override's way to drop the built-in list) is absent.
fn kinds(d: &mut Decoder<'_>, f: &mut Fields<'_>, key: &str, path: &str) -> Option<Vec<GroupKind>> {
    let present = f.get(key).is_some_and(|n| n.value != Value::Null);
    present.then(|| crate::apps::group_kinds(d, f, key, path))
}

fn project(
    d: &mut Decoder<'_>,
    name: &str,
    path: &str,
    node: &Node,
    at: Option<Location>,
) -> Option<ProjectRules> {
    let mut f = d.fields(node, path)?;
    let description = d.req_string(&mut f, "description", Some("one line saying what the project holds"));
    let file = d.opt_string(&mut f, "file");
    if let Some(file) = &file {
        check_file_name(d, file, path);
    }
    let labels = labels(d, f.get("labels"), path);
    let namespaces: Vec<String> = d.string_list(&mut f, "namespaces").into_iter().map(|n| n.value).collect();
    let source_repos = source_repos(d, &mut f, path);
    // The keys are read (and marked) through `kinds`; `group_kinds` re-reads them by name.
    let cluster_whitelist = kinds(d, &mut f, "clusterResourceWhitelist", path);
    let namespace_whitelist = kinds(d, &mut f, "namespaceResourceWhitelist", path);
    let cluster_blacklist = kinds(d, &mut f, "clusterResourceBlacklist", path);
    let sync_windows = f.get("syncWindows").and_then(|n| sync_windows(d, n, path));
    let roles = f.get("roles").map(|n| roles(d, n, path)).unwrap_or_default();
    d.finish(
        f,
        &[
            "description",
            "file",
            "labels",
            "namespaces",
            "sourceRepos",
            "clusterResourceWhitelist",
            "namespaceResourceWhitelist",
            "clusterResourceBlacklist",
            "syncWindows",
            "roles",
        ],
    );
    if name != FEDERATION && namespaces.is_empty() {
        d.error(
            d.loc(node),
            "invalid-value",
            format!("`{path}.namespaces` must name at least one namespace"),
            Some("a project without destinations can deploy nothing".to_owned()),
        );
    }
    Some(ProjectRules {
        name: name.to_owned(),
        description: description?.value,
        file: file.map(|f| f.value),
        labels,
        namespaces,
        source_repos,
        cluster_whitelist,
        namespace_whitelist,
        cluster_blacklist,
        sync_windows,
        roles,
        overridden_at: at,
    })
}

/// A project's `file` is a file name ending in `.yaml` (reported when not).
fn check_file_name(d: &mut Decoder<'_>, file: &Located<String>, path: &str) {
    if file.value.contains('/') || !file.value.ends_with(".yaml") {
        d.error(
            file.at.clone(),
            "invalid-value",
            format!("`{path}.file` must be a file name ending in `.yaml`, found `{}`", file.value),
            Some("the file lives in the project's directory under `projects/static/`".to_owned()),
        );
    }
}

/// A project's `labels` (string values, in the order written).
fn labels(d: &mut Decoder<'_>, node: Option<&Node>, path: &str) -> Vec<(String, String)> {
    let Some(n) = node else { return Vec::new() };
    let Some(mut lf) = d.fields(n, &format!("{path}.labels")) else { return Vec::new() };
    let keys: Vec<String> = match &n.value {
        Value::Map(entries) => entries.iter().filter_map(|(k, _)| k.scalar_text()).collect(),
        _ => Vec::new(),
    };
    let out: Vec<(String, String)> = keys
        .iter()
        .filter_map(|k| {
            let v = d.opt_string(&mut lf, k)?;
            Some((k.clone(), v.value))
        })
        .collect();
    d.finish(lf, &[]);
    out
}

/// A project's `sourceRepos`, when written (each URL checked).
fn source_repos(d: &mut Decoder<'_>, f: &mut Fields<'_>, path: &str) -> Option<Vec<String>> {
    f.get("sourceRepos").is_some().then(|| {
        let list = d.string_list(f, "sourceRepos");
        for u in &list {
            crate::names::check_repo_url(d, u, &format!("{path}.sourceRepos"));
        }
        list.into_iter().map(|u| u.value).collect::<Vec<_>>()
    })
}

/// A project's `syncWindows`, as written (`None` when null, or not a list: reported).
fn sync_windows(d: &mut Decoder<'_>, n: &Node, path: &str) -> Option<serde_json::Value> {
    match &n.value {
        Value::Seq(_) => Some(n.to_json()),
        Value::Null => None,
        _ => {
            d.error(
                d.loc(n),
                "wrong-type",
                format!("`{path}.syncWindows` must be a list of sync windows, found {}", n.value.type_name()),
                Some(
                    "e.g. `[{kind: allow, schedule: '* * * * *', duration: 24h, applications: ['*']}]`"
                        .to_owned(),
                ),
            );
            None
        }
    }
}

/// A project's `roles` (a second role of one name reported and left out).
fn roles(d: &mut Decoder<'_>, n: &Node, path: &str) -> Vec<Role> {
    let rp = format!("{path}.roles");
    let items = d.seq(n, &rp).map(<[Node]>::to_vec).unwrap_or_default();
    let mut out: Vec<Role> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(r) = role(d, item, &format!("{rp}[{i}]")) else { continue };
        if out.iter().any(|o| o.name == r.name) {
            d.error(
                d.loc(item),
                "duplicate",
                format!("`{rp}[{i}]`: role `{}` is defined twice", r.name),
                Some("Argo CD refuses a project with two roles of one name".to_owned()),
            );
            continue;
        }
        out.push(r);
    }
    out
}

fn role(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Role> {
    let mut f = d.fields(node, path)?;
    let name = d.req_string(&mut f, "name", None);
    let description = d.opt_string(&mut f, "description").map(|s| s.value).unwrap_or_default();
    let actions = d.string_list(&mut f, "actions");
    for a in &actions {
        if !ACTIONS.contains(&a.value.as_str()) && !a.value.starts_with("action/") {
            d.error(
                a.at.clone(),
                "invalid-value",
                format!("`{path}.actions`: `{}` is not an Argo CD action on applications", a.value),
                Some(format!("one of {}, or `action/<group>/<kind>/<action>`", ACTIONS.join(", "))),
            );
        }
    }
    let groups = d.string_list(&mut f, "groups").into_iter().map(|g| g.value).collect();
    d.finish(f, &["name", "description", "actions", "groups"]);
    Some(Role {
        name: name?.value,
        description,
        actions: actions.into_iter().map(|a| a.value).collect(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_rules_decode_and_are_mip_infras() {
        let mut d = Decoder::new(BUILTIN_FILE);
        let p = projects(&mut d, None);
        assert!(!d.diags.has_errors(), "{:?}", d.diags);
        assert_eq!(p.rules.len(), 6);
        let security = p.get("mip-argo-project-security").expect("security");
        assert_eq!(security.namespaces, ["federation-*", "mip-common-*"]);
        assert_eq!(
            security.namespace_whitelist.as_deref(),
            Some(
                &[
                    ("argoproj.io".into(), "Application".into()),
                    ("networking.k8s.io".into(), "NetworkPolicy".into())
                ][..]
            )
        );
        let operator = &security.roles[1];
        assert_eq!(
            ProjectRules::policies("mip-argo-project-security", operator),
            [
                "p, proj:mip-argo-project-security:security-operator, applications, sync, mip-argo-project-security/*, allow",
                "p, proj:mip-argo-project-security:security-operator, applications, get, mip-argo-project-security/*, allow",
            ]
        );
        // `[]` is kept apart from absent: the real tree writes `clusterResourceWhitelist: []`.
        assert_eq!(p.get("mip-argo-project-federations").expect("f").cluster_whitelist, Some(vec![]));
        assert_eq!(p.get("mip-argo-project-submariner").expect("s").cluster_blacklist, None);
        assert_eq!(
            p.get("mip-argo-project-federations").expect("f").namespaces_in("argocd-x"),
            ["federation-*", "argocd-x"]
        );
    }
}
