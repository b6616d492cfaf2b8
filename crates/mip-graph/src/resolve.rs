//! Inventory → desired objects. Pure: no IO, deterministic.
//!
//! One file on purpose (about 850 lines): one builder function per kind of object (projects,
//! credentials, namespaces and secrets, roots, expected Argo CD objects), sharing one `Builder`;
//! the order of the functions is the order of the bootstrap.

use crate::catalogue as cat;
use crate::model::*;
use mip_core::{
    Diagnostic, Diagnostics, Location, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ObjectRef, Owner, SensitiveSource,
};
use mip_inventory::apps::{AppDef, KeySource};
use mip_inventory::{DefaultProjectPolicy, Federation, Inventory, KeycloakCredentials, Repository};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

const ARGO: &str = "argoproj.io/v1alpha1";

/// Kinds that are cluster-scoped, for prerequisite manifests (which carry no discovery).
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "ClusterIssuer",
    "RuntimeClass",
    "CSIDriver",
];

struct Builder<'a> {
    inv: &'a Inventory,
    repos: cat::Repos,
    argocd_ns: String,
    in_cluster: String,
    /// In the order added (`None` where one was taken back), sorted once at the end.
    objects: Vec<Option<DesiredObject>>,
    /// The position of each address in `objects`: one hashed lookup per object, where a B-tree
    /// compared up to six strings per step (a third of resolution at 10 000 federations).
    position: crate::Lookup<Arc<ObjectRef>, usize>,
    parents: crate::Lookup<ObjectRef, Arc<ObjectRef>>,
    key_sources: crate::Lookup<BTreeMap<String, SensitiveSource>, Arc<BTreeMap<String, SensitiveSource>>>,
    diags: Diagnostics,
}

fn labels() -> Value {
    object([(MANAGED_BY_LABEL, MANAGED_BY_VALUE.into())])
}

impl Builder<'_> {
    fn add(&mut self, obj: DesiredObject) {
        // One lookup per object: inventories of thousands of federations add ~10 objects each.
        match self.position.entry(Arc::clone(&obj.addr)) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(self.objects.len());
                self.objects.push(Some(obj));
            }
            std::collections::hash_map::Entry::Occupied(prev) => {
                let first = self.objects[*prev.get()]
                    .as_ref()
                    .and_then(|p| p.origin.as_ref())
                    .map_or_else(|| "elsewhere".to_owned(), ToString::to_string);
                self.diags.push(
                    Diagnostic::error(
                        obj.origin.clone(),
                        "duplicate-object",
                        format!("object `{}` is declared twice (first at {first})", obj.addr),
                    )
                    .with_hint("each object may be declared once; remove one of them"),
                );
            }
        }
    }

    fn get(&self, addr: &ObjectRef) -> Option<&DesiredObject> {
        self.position.get(addr).and_then(|&i| self.objects[i].as_ref())
    }

    fn remove(&mut self, addr: &ObjectRef) {
        if let Some(i) = self.position.remove(addr) {
            self.objects[i] = None;
        }
    }

    /// Every object, in address order. Sorted by a rank of the address's prefix (cluster,
    /// group, kind, namespace: a few dozen distinct ones), then name and version, which is
    /// address order: comparing whole addresses compared four equal strings first.
    fn into_objects(self) -> BTreeMap<Arc<ObjectRef>, DesiredObject> {
        type Prefix<'p> = (&'p Option<String>, &'p str, &'p str, &'p Option<String>);
        let prefix = |a: &'_ ObjectRef| -> (Option<String>, String, String, Option<String>) {
            (a.cluster.clone(), a.group.clone(), a.kind.clone(), a.namespace.clone())
        };
        let objects: Vec<DesiredObject> = self.objects.into_iter().flatten().collect();
        let mut ids: crate::Lookup<Prefix<'_>, u32> = crate::Lookup::default();
        let mut distinct = Vec::new();
        let keyed: Vec<u32> = objects
            .iter()
            .map(|o| {
                let a = &*o.addr;
                let key: Prefix<'_> = (&a.cluster, &a.group, &a.kind, &a.namespace);
                *ids.entry(key).or_insert_with(|| {
                    distinct.push(prefix(a));
                    u32::try_from(distinct.len() - 1).unwrap_or(u32::MAX)
                })
            })
            .collect();
        let mut order: Vec<u32> = (0..u32::try_from(distinct.len()).unwrap_or(u32::MAX)).collect();
        order.sort_unstable_by(|&x, &y| distinct[x as usize].cmp(&distinct[y as usize]));
        let mut rank = vec![0u32; distinct.len()];
        for (r, &id) in order.iter().enumerate() {
            rank[id as usize] = u32::try_from(r).unwrap_or(u32::MAX);
        }
        let mut sorted: Vec<(u32, DesiredObject)> =
            keyed.into_iter().map(|id| rank[id as usize]).zip(objects).collect();
        sorted.sort_unstable_by(|(ra, a), (rb, b)| {
            ra.cmp(rb)
                .then_with(|| a.addr.name.cmp(&b.addr.name))
                .then_with(|| a.addr.version.cmp(&b.addr.version))
        });
        // From sorted entries: the B-tree's nodes come out full.
        sorted.into_iter().map(|(_, o)| (Arc::clone(&o.addr), o)).collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn mip(
        &mut self,
        addr: ObjectRef,
        step: Step,
        manifest: Value,
        reason: String,
        origin: Option<Location>,
    ) {
        self.add(DesiredObject {
            addr: addr.into(),
            owner: Owner::Mip,
            step,
            manifest: manifest.into(),
            model: None,
            sensitive: no_secrets(),
            reason,
            origin,
            generated_by: None,
        });
    }

    fn argo(
        &mut self,
        addr: ObjectRef,
        step: Step,
        model: ArgoModel,
        reason: String,
        by: &ObjectRef,
        origin: Option<Location>,
    ) {
        let parent = self.parent(by);
        self.add(DesiredObject {
            addr: addr.into(),
            owner: Owner::ArgoCd,
            step,
            manifest: crate::model::null_manifest(),
            model: Some(model.into()),
            sensitive: no_secrets(),
            reason,
            origin,
            generated_by: Some(parent),
        });
    }

    /// The shared address of a parent: tens of thousands of objects name a few thousand.
    fn parent(&mut self, by: &ObjectRef) -> Arc<ObjectRef> {
        if let Some(known) = self.parents.get(by) {
            return Arc::clone(known);
        }
        let shared = Arc::new(by.clone());
        self.parents.insert(by.clone(), Arc::clone(&shared));
        shared
    }

    /// One shared map per set of Secret keys and sources: every federation's Secret of one
    /// app has the same.
    fn shared_keys(
        &mut self,
        keys: BTreeMap<String, SensitiveSource>,
    ) -> Arc<BTreeMap<String, SensitiveSource>> {
        if keys.is_empty() {
            return no_secrets();
        }
        if let Some(known) = self.key_sources.get(&keys) {
            return Arc::clone(known);
        }
        let shared = Arc::new(keys.clone());
        self.key_sources.insert(keys, Arc::clone(&shared));
        shared
    }

    fn argo_addr(&self, kind: &str, name: &str) -> ObjectRef {
        ObjectRef::new(ARGO, kind, Some(&self.argocd_ns), name)
    }

    fn server_of(&self, cluster: &str) -> String {
        self.inv.server_of(cluster)
    }

    fn cluster_ref(&self, cluster: &str) -> Option<String> {
        (cluster != mip_inventory::IN_CLUSTER).then(|| cluster.to_owned())
    }

    /// The fields mip knows of an Application Argo CD generates: its project, every source
    /// (repository, revision, path or chart, `ref`), its destination and its sync wave, so a
    /// plan can show what Argo CD will change (an upgrade moves `targetRevision`).
    fn app_model(
        &self,
        project: &str,
        sources: Vec<AppSource>,
        server: &str,
        namespace: &str,
        wave: Option<i64>,
    ) -> ArgoModel {
        ArgoModel::App(AppModel {
            project: project.to_owned(),
            sources,
            server: server.to_owned(),
            namespace: namespace.to_owned(),
            wave: wave.map(|w| w.to_string()),
        })
    }

    /// A source in one of mip's repositories.
    fn own_source(&self, infra: bool, path: &str) -> AppSource {
        let (url, rev) = if infra {
            (&self.repos.infra, &self.repos.infra_rev)
        } else {
            (&self.repos.deploy, &self.repos.deploy_rev)
        };
        AppSource {
            repo_url: url.clone(),
            target_revision: rev.clone(),
            path: Some(path.to_owned()),
            chart: None,
            reference: None,
            value_files: Vec::new(),
        }
    }
}

/// Resolves an inventory (and the documents of its prerequisite files, in inventory order)
/// into the desired state.
///
/// # Errors
/// Diagnostics (with inventory or manifest locations) for objects declared twice, invalid
/// prerequisite manifests, and names that the branch prefix makes too long.
pub fn resolve(
    inv: &Inventory,
    prerequisites: &[Manifest],
    opts: &ResolveOptions,
) -> Result<Desired, Diagnostics> {
    let revision = opts.revision.clone().unwrap_or_else(|| inv.revision.value.clone());
    let prefix = cat::branch_prefix(&revision);
    let mut b = Builder {
        inv,
        repos: cat::Repos::of(inv, opts),
        argocd_ns: inv.argocd.namespace.value.clone(),
        in_cluster: mip_core::IN_CLUSTER_SERVER.to_owned(),
        objects: Vec::new(),
        position: crate::Lookup::default(),
        parents: crate::Lookup::default(),
        key_sources: crate::Lookup::default(),
        diags: Diagnostics::new(),
    };

    // Root names carry the branch prefix and become tracking-label values (63 characters).
    let root_projects = format!("{prefix}argo-projects");
    let root_infra = format!("{prefix}infra-clusterset");
    if root_infra.len() > 63 {
        b.diags.push(
            Diagnostic::error(
                Some(inv.revision.at.clone()),
                "name-too-long",
                format!("root Application name `{root_infra}` is longer than 63 characters"),
            )
            .with_hint("use a shorter branch name"),
        );
    }

    default_project(&mut b);
    bootstrap_project(&mut b);
    credentials(&mut b);
    prerequisite_objects(&mut b, prerequisites);
    namespaces_and_secrets(&mut b);
    remote_node_objects(&mut b);
    clusters(&mut b);

    root_applications(&mut b, [&root_projects, &root_infra], opts);
    let projects_root = b.argo_addr("Application", &root_projects);
    let infra_root = b.argo_addr("Application", &root_infra);

    expected_projects(&mut b, &projects_root);
    expected_apps(&mut b, &infra_root);

    if b.diags.has_errors() {
        return Err(b.diags.sorted());
    }
    let warnings = std::mem::take(&mut b.diags).sorted();
    Ok(Desired { objects: b.into_objects(), revision, prefix, warnings })
}

/// On each remote node of a hybrid federation: Submariner's namespace and the join Secret.
fn remote_node_objects(b: &mut Builder<'_>) {
    let inv = b.inv;
    let join = crate::remote_node::JoinSources::of(inv);
    for node in crate::remote_node::remote_nodes(inv) {
        let why = format!(
            "Submariner's namespace on remote node `{}` (hybrid federation `{}`)",
            node.cluster, node.federation
        );
        namespace(b, Some(&node.cluster), crate::remote_node::OPERATOR_NAMESPACE, why, node.at.clone());
        b.add(crate::remote_node::join_secret(&node, &join));
    }
}

/// The two root Applications (`<prefix>argo-projects`, `<prefix>infra-clusterset`).
fn root_applications(b: &mut Builder<'_>, [root_projects, root_infra]: [&String; 2], opts: &ResolveOptions) {
    let inv = b.inv;
    let rev_of = |r: &Repository| opts.revision.clone().unwrap_or_else(|| inv.revision_of(r));
    // Root Applications. Automated sync (self-heal, no prune) so that Argo CD syncs them by
    // itself and mip never has to set `operation`; mip waits on what they generate. Argo CD's
    // resources finalizer makes deleting a root cascade, as `argocd app delete` does: Argo CD
    // deletes what the root generated before the root goes (a branch teardown leaves nothing).
    let infra_repo = &inv.repositories.infra;
    let argocd_ns = b.argocd_ns.clone();
    let root = |name: &str, path: &str| {
        json!({
            "apiVersion": ARGO,
            "kind": "Application",
            "metadata": {
                "name": name,
                "namespace": argocd_ns,
                "labels": labels(),
                "finalizers": [cat::RESOURCES_FINALIZER],
            },
            "spec": {
                "project": cat::INFRA_PROJECT,
                "source": { "repoURL": infra_repo.url.value, "targetRevision": rev_of(infra_repo), "path": path },
                "destination": { "server": mip_core::IN_CLUSTER_SERVER, "namespace": argocd_ns },
                "syncPolicy": { "automated": { "selfHeal": true }, "syncOptions": ["CreateNamespace=true"] },
            },
        })
    };
    let roots = [
        (
            root_projects,
            "base",
            Step::ArgoProjects,
            "root Application: renders `base/` (the project ApplicationSets)",
        ),
        (
            root_infra,
            "base/mip-infrastructure",
            Step::Infra,
            "root Application: renders `base/mip-infrastructure` (the infrastructure ApplicationSet)",
        ),
    ];
    for (name, path, step, reason) in roots {
        let m = root(name, path);
        b.mip(b.argo_addr("Application", name), step, m, reason.into(), Some(inv.revision.at.clone()));
    }
}

fn default_project(b: &mut Builder<'_>) {
    if b.inv.argocd.default_project != DefaultProjectPolicy::LockDown {
        return;
    }
    // Deny by blacklist, never by an empty whitelist: Argo CD's API drops empty lists
    // (omitempty) and an absent namespace whitelist means "allow all".
    let m = json!({
        "apiVersion": ARGO,
        "kind": "AppProject",
        "metadata": { "name": cat::DEFAULT_PROJECT, "namespace": b.argocd_ns, "labels": labels() },
        "spec": {
            "description": "Locked down by mip: every Application must use a dedicated project",
            "sourceRepos": [],
            "sourceNamespaces": [],
            "destinations": [],
            "namespaceResourceBlacklist": [{ "group": "*", "kind": "*" }],
            "clusterResourceBlacklist": [{ "group": "*", "kind": "*" }],
        },
    });
    let addr = b.argo_addr("AppProject", cat::DEFAULT_PROJECT);
    let at = Some(b.inv.argocd.namespace.at.clone());
    b.mip(addr, Step::DefaultProject, m, "lock down the `default` project (it cannot be deleted)".into(), at);
}

fn bootstrap_project(b: &mut Builder<'_>) {
    let name = cat::INFRA_PROJECT;
    let actions = ["get", "create", "update", "delete", "sync"];
    let policies: Vec<String> = actions
        .iter()
        .map(|a| format!("p, proj:{name}:infrastructure-admin, applications, {a}, {name}/*, allow"))
        .collect();
    let gk = |g: &str, k: &str| json!({ "group": g, "kind": k });
    let mut own_repos =
        vec![b.inv.repositories.infra.url.value.clone(), b.inv.repositories.deployments.url.value.clone()];
    own_repos.dedup();
    let m = json!({
        "apiVersion": ARGO,
        "kind": "AppProject",
        "metadata": { "name": name, "namespace": b.argocd_ns, "labels": labels() },
        "spec": {
            "description": "Bootstrap project of mip: the root Applications and the ApplicationSets",
            "sourceRepos": own_repos,
            "destinations": [{ "namespace": b.argocd_ns, "server": mip_core::IN_CLUSTER_SERVER }],
            "clusterResourceWhitelist": [gk("", "Namespace")],
            "namespaceResourceWhitelist": [gk("argoproj.io", "Application"), gk("argoproj.io", "ApplicationSet"), gk("argoproj.io", "AppProject")],
            "clusterResourceBlacklist": [
                gk("rbac.authorization.k8s.io", "ClusterRole"),
                gk("rbac.authorization.k8s.io", "ClusterRoleBinding"),
                gk("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
                gk("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
                gk("apiextensions.k8s.io", "CustomResourceDefinition"),
            ],
            "roles": [{
                "name": "infrastructure-admin",
                "description": "Full access to infrastructure Applications",
                "policies": policies,
                "groups": ["argocd-admins"],
            }],
        },
    });
    let addr = b.argo_addr("AppProject", name);
    let at = Some(b.inv.argocd.namespace.at.clone());
    b.mip(addr, Step::Bootstrap, m, "bootstrap project of the root Applications".into(), at);
}

fn credentials(b: &mut Builder<'_>) {
    let inv = b.inv;
    for repo in [&inv.repositories.infra, &inv.repositories.deployments] {
        if !repo.has_credentials() {
            continue;
        }
        // Unscoped (no `project` key): the infrastructure AppSet templates its project, and
        // Argo CD then only accepts unscoped repository credentials.
        let name = format!("mip-repo-{}", repo.role);
        let mut data = Map::new();
        data.insert("type".into(), json!("git"));
        data.insert("url".into(), json!(repo.url.value));
        data.insert("name".into(), json!(format!("mip-{}", repo.role)));
        let mut sensitive = BTreeMap::new();
        for (key, r) in [
            ("sshPrivateKey", &repo.ssh_private_key),
            ("username", &repo.username),
            ("password", &repo.password),
        ] {
            if let Some(r) = r {
                data.insert(key.into(), json!(""));
                sensitive.insert(key.to_owned(), r.source.clone());
            }
        }
        let reason =
            format!("repository credentials for `{}` (declarative `argocd repo add`)", repo.url.value);
        credential_secret(
            b,
            &name,
            "repository",
            Value::Object(data),
            Arc::new(sensitive),
            reason,
            repo.url.at.clone(),
        );
    }
}

/// The cluster Secret of each remote cluster and what registering it takes there, once the
/// namespaces mip creates on each cluster are known (a registration is bound in those).
fn clusters(b: &mut Builder<'_>) {
    let mut namespaces: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for a in b.objects.iter().flatten().map(|o| &o.addr).filter(|a| a.is(mip_core::Kind::Namespace)) {
        if let Some(c) = &a.cluster {
            namespaces.entry(c.clone()).or_default().insert(a.name.clone());
        }
    }
    for o in crate::register::cluster_objects(b.inv, &b.argocd_ns, &namespaces) {
        b.add(o);
    }
}

/// An Argo CD credential Secret (`argocd.argoproj.io/secret-type: repository|cluster`) in the
/// Argo CD namespace.
fn credential_secret(
    b: &mut Builder<'_>,
    name: &str,
    secret_type: &str,
    string_data: Value,
    sensitive: Arc<BTreeMap<String, SensitiveSource>>,
    reason: String,
    origin: Location,
) {
    let m = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": b.argocd_ns,
            "labels": { MANAGED_BY_LABEL: MANAGED_BY_VALUE, "argocd.argoproj.io/secret-type": secret_type },
        },
        "type": "Opaque",
        "stringData": string_data,
    });
    b.add(DesiredObject {
        addr: ObjectRef::new("v1", "Secret", Some(&b.argocd_ns), name).into(),
        owner: Owner::Mip,
        step: Step::Bootstrap,
        manifest: m.into(),
        model: None,
        sensitive,
        reason,
        origin: Some(origin),
        generated_by: None,
    });
}

/// The reason of every prerequisite object (how a later duplicate recognises an earlier one).
const PREREQUISITE_REASON: &str = "prerequisite from";

fn prerequisite_objects(b: &mut Builder<'_>, docs: &[Manifest]) {
    for doc in docs {
        let at = Some(doc.at.clone());
        let field = |p: &str| doc.value.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty());
        let (Some(api), Some(kind), Some(name)) =
            (field("/apiVersion"), field("/kind"), field("/metadata/name"))
        else {
            b.diags.push(
                Diagnostic::error(
                    at,
                    "invalid-manifest",
                    "manifest lacks `apiVersion`, `kind` or `metadata.name`",
                )
                .with_hint("every document of a prerequisite file must be a complete Kubernetes object"),
            );
            continue;
        };
        let ns = field("/metadata/namespace");
        let cluster_scoped = CLUSTER_SCOPED.contains(&kind);
        if cluster_scoped && ns.is_some() {
            b.diags.push(
                Diagnostic::error(
                    at,
                    "invalid-manifest",
                    format!("`{kind}` `{name}` is cluster-scoped but sets `metadata.namespace`"),
                )
                .with_hint("remove `metadata.namespace`"),
            );
            continue;
        }
        if !cluster_scoped && ns.is_none() {
            b.diags.push(
                Diagnostic::error(
                    at,
                    "invalid-manifest",
                    format!("`{kind}` `{name}` has no `metadata.namespace`"),
                )
                .with_hint("set it explicitly; mip does not guess a default namespace"),
            );
            continue;
        }
        if kind == "Secret" {
            b.diags.push(
                Diagnostic::error(at, "invalid-manifest", format!("Secret `{name}` in a prerequisite file"))
                    .with_hint("secret values do not belong in Git; declare credentials in the inventory"),
            );
            continue;
        }
        let mut manifest = doc.value.clone();
        if let Some(meta) = manifest.pointer_mut("/metadata").and_then(Value::as_object_mut) {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert(MANAGED_BY_LABEL.into(), json!(MANAGED_BY_VALUE));
            }
        }
        let addr = ObjectRef::new(api, kind, ns, name);
        // The same object twice in the prerequisite files: `kubectl apply -f` (the manual
        // step these files come from) applies both, so the later one is what the cluster
        // ends up with. Take it, and say so with both places.
        if let Some(prev) = b.get(&addr).filter(|p| p.reason.starts_with(PREREQUISITE_REASON)) {
            let first = prev.origin.as_ref().map_or_else(|| "elsewhere".to_owned(), ToString::to_string);
            b.diags.push(
                Diagnostic::warning(
                    at.clone(),
                    "duplicate-object",
                    format!("object `{addr}` is declared again (first at {first}); the later one is applied, as `kubectl apply` would"),
                )
                .with_hint("remove one of the two documents"),
            );
            b.remove(&addr);
        }
        b.mip(addr, Step::Bootstrap, manifest, format!("{PREREQUISITE_REASON} `{}`", doc.at.file), at);
    }
}

/// A Secret whose `plain` keys carry fixed, non-secret values (user names) and whose
/// `sensitive` keys are filled at apply time from their sources.
#[allow(clippy::too_many_arguments)]
fn secret_with(
    b: &mut Builder<'_>,
    cluster: Option<&str>,
    ns: &str,
    name: &str,
    plain: &[(&str, &str)],
    sensitive: Arc<BTreeMap<String, SensitiveSource>>,
    reason: String,
    origin: Location,
) {
    let mut data: Map<String, Value> = sensitive.keys().map(|k| (k.clone(), Value::from(""))).collect();
    for (k, v) in plain {
        data.insert((*k).to_owned(), (*v).into());
    }
    let m = object([
        ("apiVersion", "v1".into()),
        ("kind", "Secret".into()),
        ("metadata", object([("name", name.into()), ("namespace", ns.into()), ("labels", labels())])),
        ("type", "Opaque".into()),
        ("stringData", Value::Object(data)),
    ]);
    b.add(DesiredObject {
        addr: ObjectRef::new("v1", "Secret", Some(ns), name).on_cluster(cluster).into(),
        owner: Owner::Mip,
        step: Step::Bootstrap,
        manifest: m.into(),
        model: None,
        sensitive,
        reason,
        origin: Some(origin),
        generated_by: None,
    });
}

fn namespace(b: &mut Builder<'_>, cluster: Option<&str>, name: &str, reason: String, origin: Location) {
    let m = object([
        ("apiVersion", "v1".into()),
        ("kind", "Namespace".into()),
        ("metadata", object([("name", name.into()), ("labels", labels())])),
    ]);
    b.mip(
        ObjectRef::new("v1", "Namespace", None, name).on_cluster(cluster),
        Step::Bootstrap,
        m,
        reason,
        Some(origin),
    );
}

/// The Secret keys of a definition: each key's source, with Keycloak keys taken from the
/// entry's credentials (else the inventory's); fixed values as plain `stringData`.
fn secret_keys(
    keys: &BTreeMap<String, KeySource>,
    keycloak: Option<&KeycloakCredentials>,
) -> (Vec<(String, String)>, BTreeMap<String, SensitiveSource>) {
    let mut plain = Vec::new();
    let mut sensitive = BTreeMap::new();
    for (key, src) in keys {
        let s = match src {
            KeySource::Generated => SensitiveSource::Generated,
            KeySource::External(s) => s.clone(),
            KeySource::Value(v) => {
                plain.push((key.clone(), v.clone()));
                continue;
            }
            KeySource::KeycloakClientId => match keycloak {
                Some(k) => k.client_id.source.clone(),
                None => continue,
            },
            KeySource::KeycloakClientSecret => match keycloak {
                Some(k) => k.client_secret.source.clone(),
                None => continue,
            },
        };
        sensitive.insert(key.clone(), s);
    }
    (plain, sensitive)
}

/// The Secrets of one app in `ns`.
#[allow(clippy::too_many_arguments)]
fn app_secrets(
    b: &mut Builder<'_>,
    def: &AppDef,
    cluster: Option<&str>,
    ns: &str,
    keycloak: Option<&KeycloakCredentials>,
    whose: &str,
    origin: &Location,
) {
    for (name, keys) in &def.secrets {
        let (plain, sensitive) = secret_keys(keys, keycloak);
        let plain: Vec<(&str, &str)> = plain.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let takes_keycloak = keys.values().any(KeySource::is_keycloak);
        let reason = match (takes_keycloak, keys.values().any(|k| *k == KeySource::Generated)) {
            (true, true) => format!("Keycloak client and generated credentials of {whose} (`{}`)", def.name),
            (true, false) => format!("Keycloak client of {whose} (`{}`)", def.name),
            _ => format!("credentials of {whose} (`{}`)", def.name),
        };
        let at = if takes_keycloak {
            keycloak.map_or_else(|| origin.clone(), |k| k.at.clone())
        } else {
            origin.clone()
        };
        let sensitive = b.shared_keys(sensitive);
        secret_with(b, cluster, ns, name, &plain, sensitive, reason, at);
    }
}

fn namespaces_and_secrets(b: &mut Builder<'_>) {
    let inv = b.inv;
    for fed in &inv.federations {
        let ns = fed.k8s_name();
        let cluster = b.cluster_ref(&fed.cluster.value);
        let cl = cluster.as_deref();
        namespace(
            b,
            cl,
            &ns,
            format!("namespace of federation `{}`, created before its secrets", fed.name.value),
            fed.name.at.clone(),
        );
        let keycloak = fed.keycloak.as_ref().or(inv.credentials.keycloak.as_ref());
        for app in &fed.apps {
            let Some(def) = cat::federation_app_def(inv, app) else { continue };
            let whose = format!("federation `{}`", fed.name.value);
            app_secrets(b, def, cl, &ns, keycloak, &whose, &fed.name.at);
        }
        // Where its apps also run on remote nodes: the namespace there too (and with it the
        // registration's binding), before Argo CD deploys into it.
        if cat::runs_on_remote_nodes(inv, fed) {
            for (remote, at) in fed.remote_clusters.iter().map(|r| (r.value.as_str(), r.at.clone())) {
                let why =
                    format!("namespace of hybrid federation `{}` on remote node `{remote}`", fed.name.value);
                namespace(b, Some(remote), &ns, why, at);
            }
        }
    }
    for app in &inv.common_apps {
        let Some(def) = inv.app_def(app.kind.value.as_str()) else { continue };
        if def.secrets.is_empty() {
            continue;
        }
        let Some(ns) = app.namespace() else { continue };
        namespace(
            b,
            None,
            &ns,
            format!("namespace of `{}`, created before its secret", def.name),
            app.kind.at.clone(),
        );
        let keycloak = app.keycloak.as_ref().or(inv.credentials.keycloak.as_ref());
        let whose = format!("common app `{}`", def.name);
        app_secrets(b, def, None, &ns, keycloak, &whose, &app.kind.at);
    }
}

fn project_model(repos: &std::sync::Arc<[String]>, destinations: Vec<(String, String)>) -> ArgoModel {
    ArgoModel::Project { source_repos: std::sync::Arc::clone(repos), destinations }
}

fn expected_projects(b: &mut Builder<'_>, root: &ObjectRef) {
    let inv = b.inv;
    let origin = Some(inv.revision.at.clone());
    let static_set = b.argo_addr("ApplicationSet", cat::STATIC_PROJECTS_APPSET);
    let fed_set = b.argo_addr("ApplicationSet", cat::FEDERATION_PROJECTS_APPSET);
    let appset_model = |project: &str| ArgoModel::AppSet { project: project.to_owned() };
    b.argo(
        static_set.clone(),
        Step::AwaitProjects,
        appset_model(cat::INFRA_PROJECT),
        "renders one Application per static project".into(),
        root,
        origin.clone(),
    );
    b.argo(
        fed_set.clone(),
        Step::AwaitProjects,
        appset_model(cat::INFRA_PROJECT),
        "renders one project Application per federation".into(),
        root,
        origin.clone(),
    );
    let argocd_ns = b.argocd_ns.clone();
    let in_cluster = b.in_cluster.clone();
    for sp in cat::StaticProject::ALL {
        let project = sp.name();
        let app = b.argo_addr("Application", &format!("{project}-app"));
        let src = b.own_source(true, &format!("projects/static/{}", sp.dir()));
        let model = b.app_model(cat::INFRA_PROJECT, vec![src], &in_cluster, &argocd_ns, None);
        b.argo(
            app.clone(),
            Step::AwaitProjects,
            model,
            format!("renders static project `{project}`"),
            &static_set,
            origin.clone(),
        );
        let dests: Vec<(String, String)> = cat::project_destinations(sp, &argocd_ns, inv);
        let model = project_model(&cat::project_source_repos(inv, &b.repos, Some(sp)).into(), dests);
        b.argo(
            b.argo_addr("AppProject", project),
            Step::AwaitProjects,
            model,
            "static AppProject".into(),
            &app,
            origin.clone(),
        );
    }
    // One list for every federation's project (the chart renders them from one template);
    // computed once: it reads every federation's apps.
    let federation_repos: std::sync::Arc<[String]> = cat::project_source_repos(inv, &b.repos, None).into();
    for fed in &inv.federations {
        let app = b.argo_addr("Application", &cat::federation_project_app(fed));
        let src = b.own_source(true, "projects/templates/federation");
        let model = b.app_model(cat::INFRA_PROJECT, vec![src], &in_cluster, &argocd_ns, None);
        let at = Some(fed.name.at.clone());
        b.argo(
            app.clone(),
            Step::AwaitProjects,
            model,
            format!("renders the project of federation `{}`", fed.name.value),
            &fed_set,
            at.clone(),
        );
        let server = b.server_of(&fed.cluster.value);
        let mut dests = vec![(server, fed.k8s_name()), (in_cluster.clone(), argocd_ns.clone())];
        for remote in cat::project_remote_servers(inv, fed) {
            dests.push((remote, fed.k8s_name()));
        }
        let model = project_model(&federation_repos, dests);
        let project = b.argo_addr("AppProject", &cat::federation_project(fed));
        b.argo(
            project,
            Step::AwaitProjects,
            model,
            format!("project of federation `{}`", fed.name.value),
            &app,
            at,
        );
    }
}

fn expected_apps(b: &mut Builder<'_>, root: &ObjectRef) {
    let inv = b.inv;
    let argocd_ns = b.argocd_ns.clone();
    let in_cluster = b.in_cluster.clone();
    let infra_set = b.argo_addr("ApplicationSet", cat::INFRA_APPSET);
    let model = ArgoModel::AppSet { project: "{{ templated }}".to_owned() };
    b.argo(
        infra_set.clone(),
        Step::AwaitApps,
        model,
        "renders federation and common Applications".into(),
        root,
        Some(inv.revision.at.clone()),
    );

    for fed in &inv.federations {
        federation_apps(b, fed, &infra_set, &argocd_ns, &in_cluster);
    }
    for app in &inv.common_apps {
        let kind = &app.kind.value;
        let Some(def) = inv.app_def(kind.as_str()) else { continue };
        let at = Some(app.kind.at.clone());
        let wrapper = b.argo_addr("Application", &cat::infra_app_name(&format!("common/{kind}")));
        let src = b.own_source(true, &format!("common/{kind}"));
        let model = b.app_model(cat::INFRA_PROJECT, vec![src], &in_cluster, &argocd_ns, None);
        b.argo(
            wrapper.clone(),
            Step::AwaitApps,
            model,
            format!("wrapper of common app `{kind}`"),
            &infra_set,
            at.clone(),
        );
        let pin = app.target_revision.as_ref().map(|p| p.value.as_str());
        for spec in &def.applications {
            let ns = spec.namespace.clone().or_else(|| app.namespace()).unwrap_or_default();
            let sources = cat::sources(def, spec, &b.repos, pin, None);
            let project = spec.project.clone().unwrap_or_default();
            let model = b.app_model(&project, sources, &in_cluster, &ns, spec.wave);
            b.argo(
                b.argo_addr("Application", &spec.name),
                Step::AwaitApps,
                model,
                format!("common app `{kind}`"),
                &wrapper,
                at.clone(),
            );
        }
    }
    if let Some((app, sets)) = cat::network_policies(inv) {
        let wrapper = b.argo_addr("Application", &cat::infra_app_name(&format!("common/{}", app.kind.value)));
        let dir = format!("common/{}", app.kind.value);
        expected_network_policies(b, &wrapper, Some(app.kind.at.clone()), &dir, &sets.common_namespaces);
    }
}

/// The two network-policy ApplicationSets of an app with `networkPolicies: true`, and the
/// Applications they generate: one per federation, one per common namespace.
fn expected_network_policies(
    b: &mut Builder<'_>,
    wrapper: &ObjectRef,
    at: Option<Location>,
    dir: &str,
    common_namespaces: &[String],
) {
    let inv = b.inv;
    let in_cluster = b.in_cluster.clone();
    let project = cat::StaticProject::Security.name();
    let fed_set = b.argo_addr("ApplicationSet", cat::FEDERATION_NETPOL_APPSET);
    let common_set = b.argo_addr("ApplicationSet", cat::COMMON_NETPOL_APPSET);
    let model = ArgoModel::AppSet { project: project.to_owned() };
    b.argo(
        fed_set.clone(),
        Step::AwaitApps,
        model.clone(),
        "network policies of every federation".into(),
        wrapper,
        at.clone(),
    );
    b.argo(
        common_set.clone(),
        Step::AwaitApps,
        model,
        "network policies of the common namespaces".into(),
        wrapper,
        at.clone(),
    );
    for ns in common_namespaces {
        let src = b.own_source(true, &format!("{dir}/common-templates"));
        let m = b.app_model(project, vec![src], &in_cluster, ns, None);
        b.argo(
            b.argo_addr("Application", &format!("netpol-{ns}")),
            Step::AwaitApps,
            m,
            format!("network policies of `{ns}`"),
            &common_set,
            at.clone(),
        );
    }
    for fed in &inv.federations {
        let server = b.server_of(&fed.cluster.value);
        let src = b.own_source(true, &format!("{dir}/federation"));
        let m = b.app_model(project, vec![src], &server, &fed.k8s_name(), None);
        let name = cat::federation_netpol_app(fed);
        b.argo(
            b.argo_addr("Application", &name),
            Step::AwaitApps,
            m,
            format!("network policies of federation `{}`", fed.name.value),
            &fed_set,
            Some(fed.name.at.clone()),
        );
    }
}

fn federation_apps(
    b: &mut Builder<'_>,
    fed: &Federation,
    infra_set: &ObjectRef,
    argocd_ns: &str,
    in_cluster: &str,
) {
    let inv = b.inv;
    let at = Some(fed.name.at.clone());
    let project = cat::federation_project(fed);
    let wrapper = b.argo_addr("Application", &cat::federation_wrapper_app(fed));
    let src = b.own_source(false, &fed.git_path());
    let model = b.app_model(&project, vec![src], in_cluster, argocd_ns, None);
    b.argo(
        wrapper.clone(),
        Step::AwaitApps,
        model,
        format!("wrapper of federation `{}`", fed.name.value),
        infra_set,
        at,
    );
    let server = b.server_of(&fed.cluster.value);
    for app in &fed.apps {
        let Some(def) = cat::federation_app_def(inv, app) else { continue };
        let Some(spec) = cat::federation_spec(def) else { continue };
        let pin = app.target_revision.as_ref().map(|p| p.value.as_str());
        let dir = cat::overlay_dir(def, fed);
        let sources = cat::with_values(cat::sources(def, spec, &b.repos, pin, dir.as_deref()), fed, app);
        let model = b.app_model(&project, sources, &server, &fed.k8s_name(), spec.wave);
        let name = cat::federation_child_app(fed, &app.kind.value);
        b.argo(
            b.argo_addr("Application", &name),
            Step::AwaitApps,
            model,
            format!("`{}` of federation `{}`", app.kind.value, fed.name.value),
            &wrapper,
            Some(app.kind.at.clone()),
        );
        if !def.remote_nodes {
            continue;
        }
        for remote in cat::remote_node_clusters(fed) {
            let sources = cat::with_values(cat::sources(def, spec, &b.repos, pin, dir.as_deref()), fed, app);
            let model = b.app_model(&project, sources, &b.server_of(remote), &fed.k8s_name(), spec.wave);
            let name = format!("{}-{}", fed.k8s_name(), cat::remote_node_app(&app.kind.value, remote));
            b.argo(
                b.argo_addr("Application", &name),
                Step::AwaitApps,
                model,
                format!(
                    "`{}` of hybrid federation `{}` on remote node `{remote}`",
                    app.kind.value, fed.name.value
                ),
                &wrapper,
                Some(app.kind.at.clone()),
            );
        }
    }
}
