//! What an AppProject permits, decided as Argo CD decides it, so that `mip validate` and
//! `mip doctor` predict what Argo CD will accept rather than an approximation of it.
//!
//! [`Permissions`] reads a project's rules; [`source_permitted`] follows Argo CD's
//! `AppProject.IsSourcePermitted`, [`destination_permitted`] its `isDestinationMatched`, and
//! [`Permissions::permits_resource`] its `IsGroupKindNamePermitted`:
//! - repositories are compared after [`normalize_repo_url`] (lowercase, no `.git`, scp form
//!   rewritten) and matched with `/` as separator, so `https://host/org/*` covers one level and
//!   `https://host/org/**` every level; the pattern `*` alone matches every repository;
//! - destination servers, names and namespaces are matched without a separator;
//! - a rule starting with `!` is a deny rule: a repository or destination it matches is
//!   refused whatever else allows it. Argo CD's code (and its tests, for destinations) also
//!   counts a deny rule that does *not* match as an allowing match, so a project whose only
//!   rules are deny rules permits everything else; this module does the same, although
//!   Argo CD's documentation describes deny rules as never allowing;
//! - resource rules use Go's `filepath.Match` on group, kind and (cluster rules) name.
//!
//! The glob matcher is written here rather than taken from `globset`: gobwas's dialect differs
//! in ways that change answers (`*` crosses `/` unless a separator is given, `**` is not tied
//! to path components, groups nest and an open group is closed at the end, a class is a list
//! or one range), and the tests pin each rule to upstream's test cases.

mod glob;
mod repo;

pub use glob::{Glob, GlobError, glob_match};
pub use repo::normalize_repo_url;

use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A destination: an Application's, or one rule of a project's `spec.destinations`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destination {
    /// API server URL (`""` when not given).
    pub server: String,
    /// Cluster name (`""` when not given).
    pub name: String,
    /// Namespace.
    pub namespace: String,
}

fn field(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

impl Destination {
    /// A project's destination rule, as written.
    pub fn rule(v: &Value) -> Self {
        Destination { server: field(v, "server"), name: field(v, "name"), namespace: field(v, "namespace") }
    }

    /// An Application's `spec.destination` as Argo CD resolves it before matching: the server
    /// without a trailing `/`, and the `in-cluster` name and server filled in for each other.
    /// Argo CD looks other clusters up in its cluster Secrets; mip matches what it is given.
    pub fn of_application(v: &Value) -> Self {
        Destination::rule(v).resolved()
    }

    /// This destination as Argo CD resolves an Application's (see [`Destination::of_application`]).
    #[must_use]
    pub fn resolved(self) -> Self {
        let mut d = self;
        d.server = d.server.trim_end_matches('/').to_owned();
        if d.server.is_empty() && d.name == mip_inventory::IN_CLUSTER {
            mip_core::IN_CLUSTER_SERVER.clone_into(&mut d.server);
        }
        if d.name.is_empty() && d.server == mip_core::IN_CLUSTER_SERVER {
            mip_inventory::IN_CLUSTER.clone_into(&mut d.name);
        }
        d
    }
}

/// One entry of a resource white- or blacklist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceRule {
    /// API group pattern.
    pub group: String,
    /// Kind pattern.
    pub kind: String,
    /// Name pattern (cluster rules only; `""` for any name).
    pub name: String,
}

impl ResourceRule {
    fn matches(&self, group: &str, kind: &str, name: &str) -> bool {
        let m = |pattern: &str, text: &str| Glob::path(pattern).is_ok_and(|g| g.is_match(text));
        m(&self.kind, kind) && m(&self.group, group) && (self.name.is_empty() || m(&self.name, name))
    }
}

fn rules(spec: &Value, key: &str) -> Option<Vec<ResourceRule>> {
    let list = spec.get(key)?.as_array()?;
    Some(
        list.iter()
            .map(|r| ResourceRule {
                group: field(r, "group"),
                kind: field(r, "kind"),
                name: field(r, "name"),
            })
            .collect(),
    )
}

fn listed(list: &[ResourceRule], group: &str, kind: &str, name: &str) -> bool {
    list.iter().any(|r| r.matches(group, kind, name))
}

/// The permission rules of one AppProject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// `spec.sourceRepos`.
    pub source_repos: Vec<String>,
    /// `spec.destinations`.
    pub destinations: Vec<Destination>,
    /// `spec.namespaceResourceWhitelist` (`None` when absent: every namespaced kind).
    pub namespace_whitelist: Option<Vec<ResourceRule>>,
    /// `spec.namespaceResourceBlacklist`.
    pub namespace_blacklist: Vec<ResourceRule>,
    /// `spec.clusterResourceWhitelist` (absent or empty: no cluster-scoped kind).
    pub cluster_whitelist: Vec<ResourceRule>,
    /// `spec.clusterResourceBlacklist`.
    pub cluster_blacklist: Vec<ResourceRule>,
}

impl Permissions {
    /// Reads the rules of an AppProject manifest (missing fields are empty).
    pub fn of_project(project: &Value) -> Self {
        let spec = project.get("spec").unwrap_or(&Value::Null);
        let strings = |key: &str| -> Vec<String> {
            spec.get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let destinations = spec.get("destinations").and_then(Value::as_array);
        Permissions {
            source_repos: strings("sourceRepos"),
            destinations: destinations.into_iter().flatten().map(Destination::rule).collect(),
            namespace_whitelist: rules(spec, "namespaceResourceWhitelist"),
            namespace_blacklist: rules(spec, "namespaceResourceBlacklist").unwrap_or_default(),
            cluster_whitelist: rules(spec, "clusterResourceWhitelist").unwrap_or_default(),
            cluster_blacklist: rules(spec, "clusterResourceBlacklist").unwrap_or_default(),
        }
    }

    /// Whether Applications of this project may source `repo`.
    pub fn permits_source(&self, repo: &str) -> bool {
        source_permitted(&self.source_repos, repo)
    }

    /// Whether Applications of this project may deploy to `dest`.
    pub fn permits_destination(&self, dest: &Destination) -> bool {
        destination_permitted(&self.destinations, dest)
    }

    /// Whether this project may manage a resource of `group`/`kind` named `name`.
    pub fn permits_resource(&self, group: &str, kind: &str, name: &str, namespaced: bool) -> bool {
        if namespaced {
            let white = self.namespace_whitelist.as_ref().is_none_or(|w| listed(w, group, kind, name));
            return white && !listed(&self.namespace_blacklist, group, kind, name);
        }
        listed(&self.cluster_whitelist, group, kind, name)
            && !listed(&self.cluster_blacklist, group, kind, name)
    }
}

/// Patterns of one separator, compiled (`None`: the pattern does not compile).
type Compiled = crate::Lookup<String, Option<Glob>>;

/// Compiled patterns and normalised repository URLs, kept across checks: the same few
/// repository and destination patterns recur in every project, so the validation of 10 000
/// federations compiles and normalises each once instead of once per Application.
#[derive(Debug, Default)]
pub struct Memo {
    /// Compiled globs by separator and pattern (`None`: the pattern does not compile).
    globs: RefCell<BTreeMap<Option<char>, Compiled>>,
    /// [`normalize_repo_url`] by URL.
    repos: RefCell<crate::Lookup<String, Rc<str>>>,
}

impl Memo {
    /// Whether `pattern` (compiled once) matches `text`; a pattern that does not compile
    /// matches nothing.
    fn glob(&self, pattern: &str, separator: Option<char>, text: &str) -> bool {
        // Most patterns are plain names (a federation's namespace, a server URL): without a
        // wildcard, class, alternative or escape, a pattern matches exactly itself.
        if !pattern.contains(['*', '?', '[', '{', '\\']) {
            return pattern == text;
        }
        let mut globs = self.globs.borrow_mut();
        let by_pattern = globs.entry(separator).or_default();
        if let Some(compiled) = by_pattern.get(pattern) {
            return compiled.as_ref().is_some_and(|g| g.is_match(text));
        }
        let compiled = Glob::new(pattern, separator).ok();
        let matched = compiled.as_ref().is_some_and(|g| g.is_match(text));
        by_pattern.insert(pattern.to_owned(), compiled);
        matched
    }

    /// [`normalize_repo_url`], once per URL.
    fn repo(&self, url: &str) -> Rc<str> {
        if let Some(n) = self.repos.borrow().get(url) {
            return Rc::clone(n);
        }
        let n: Rc<str> = normalize_repo_url(url).into();
        self.repos.borrow_mut().insert(url.to_owned(), Rc::clone(&n));
        n
    }

    /// Argo CD's `globMatch` with negation: a `!` rule matches what its pattern does not; `*`
    /// matches everything even across the separator.
    fn rule_matches(&self, rule: &str, text: &str, separator: Option<char>) -> bool {
        match rule.strip_prefix('!') {
            Some(pattern) => !self.glob(pattern, separator, text),
            None => rule == "*" || self.glob(rule, separator, text),
        }
    }
}

/// Argo CD's `globMatch` with negation, without a memo.
#[cfg(test)]
fn rule_matches(rule: &str, text: &str, separator: Option<char>) -> bool {
    Memo::default().rule_matches(rule, text, separator)
}

/// Argo CD's `IsSourcePermitted`: some rule matches the normalised `repo` and no deny rule
/// refuses it.
pub fn source_permitted<S: AsRef<str>>(rules: &[S], repo: &str) -> bool {
    source_permitted_with(rules, repo, &Memo::default())
}

/// [`source_permitted`], with compiled patterns and normalised URLs kept in `memo`.
pub fn source_permitted_with<S: AsRef<str>>(rules: &[S], repo: &str, memo: &Memo) -> bool {
    let repo = memo.repo(repo);
    let mut any = false;
    for rule in rules {
        let rule = rule.as_ref();
        // As Argo CD: a deny rule is `!` and the normalised rest; a rule is a deny rule if its
        // normalised form starts with `!`.
        let (matched, deny) = match rule.strip_prefix('!') {
            Some(rest) => (!memo.glob(&memo.repo(rest), Some('/'), &repo), true),
            None => {
                let pattern = memo.repo(rule);
                (memo.rule_matches(&pattern, &repo, Some('/')), pattern.starts_with('!'))
            }
        };
        if matched {
            any = true;
        } else if deny {
            return false;
        }
    }
    any
}

/// Argo CD's `isDestinationMatched`: server or name, and namespace, match some rule, and no
/// deny rule refuses them.
pub fn destination_permitted(rules: &[Destination], dest: &Destination) -> bool {
    destination_permitted_with(rules, dest, &Memo::default())
}

/// [`destination_permitted`], with compiled patterns kept in `memo`.
pub fn destination_permitted_with(rules: &[Destination], dest: &Destination, memo: &Memo) -> bool {
    let rule_matches = |rule: &str, text: &str| memo.rule_matches(rule, text, None);
    let deny = |s: &str| s.starts_with('!');
    let mut any = false;
    for rule in rules {
        let name = !dest.name.is_empty() && rule_matches(&rule.name, &dest.name);
        let server = !dest.server.is_empty() && rule_matches(&rule.server, &dest.server);
        let namespace = rule_matches(&rule.namespace, &dest.namespace);
        if (server || name) && namespace {
            any = true;
        } else if (!name && deny(&rule.name))
            || (!server && deny(&rule.server) && namespace)
            || (!namespace && deny(&rule.namespace) && server)
        {
            return false;
        }
    }
    any
}

/// The repositories an Application (or template) spec sources: `spec.sources[].repoURL`, then
/// `spec.source.repoURL`.
pub fn app_sources(spec: &Value) -> Vec<&str> {
    let many = spec.get("sources").and_then(Value::as_array).into_iter().flatten();
    let mut v: Vec<&str> = many.filter_map(|s| s.get("repoURL").and_then(Value::as_str)).collect();
    v.extend(spec.pointer("/source/repoURL").and_then(Value::as_str));
    v
}

#[cfg(test)]
mod tests;
