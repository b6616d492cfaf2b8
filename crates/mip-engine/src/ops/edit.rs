//! `mip federation add|remove` and `mip cluster add|remove`: the inventory file edited in place
//! (`mip_inventory::edit` keeps every other byte), the consequences for the next plan shown
//! through [`Hook::edit`], a removal confirmed through [`Confirm`], and the file written
//! atomically. Nothing is written when the edit is refused or not confirmed.

use crate::Error;
use crate::seams::{Answer, Confirm, Hook};
use mip_core::{Diagnostics, ObjectRef, Owner};
use mip_graph::{Desired, ResolveOptions};
use mip_inventory::Inventory;
use mip_inventory::edit::{self, Edit, EditError, NewCluster};
use std::path::PathBuf;

pub use mip_inventory::edit::NewFederation;
pub use mip_inventory::{FederationAppKind, FederationKind};

/// A cluster to add, as the flags give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterToAdd {
    /// Name (DNS-1123 label).
    pub name: String,
    /// API server URL as Argo CD addresses it.
    pub server: String,
    /// Kubeconfig context mip reaches it through.
    pub context: Option<String>,
    /// Register it with cluster-wide rights.
    pub cluster_admin: bool,
    /// The environment variable holding a bearer token for Argo CD.
    pub bearer_token_env: Option<String>,
    /// Client certificate and key files for Argo CD (both or neither).
    pub client_certificate: Option<(String, String)>,
    /// PEM file of its CA certificate.
    pub ca_file: Option<String>,
}

/// The change to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add a federation at the end of `federations`.
    AddFederation(NewFederation),
    /// Remove the federation of this name.
    RemoveFederation(String),
    /// Add a cluster at the end of `clusters`.
    AddCluster(ClusterToAdd),
    /// Remove the cluster of this name.
    RemoveCluster(String),
}

impl Change {
    /// What it adds or removes, for messages: ``federation `a` ``.
    pub fn what(&self) -> String {
        match self {
            Change::AddFederation(f) => format!("federation `{}`", f.name),
            Change::RemoveFederation(name) => format!("federation `{name}`"),
            Change::AddCluster(c) => format!("cluster `{}`", c.name),
            Change::RemoveCluster(name) => format!("cluster `{name}`"),
        }
    }

    /// Whether it removes something (and so asks first).
    pub fn is_removal(&self) -> bool {
        matches!(self, Change::RemoveFederation(_) | Change::RemoveCluster(_))
    }

    fn apply(&self, file: &str, text: &str) -> Result<Edit, EditError> {
        match self {
            Change::AddFederation(f) => edit::add_federation(file, text, f),
            Change::RemoveFederation(name) => edit::remove_federation(file, text, name),
            Change::AddCluster(c) => edit::add_cluster(file, text, &new_cluster(c)),
            Change::RemoveCluster(name) => edit::remove_cluster(file, text, name),
        }
    }
}

/// The inventory's form of a cluster to add: its credentials as flow YAML sources.
fn new_cluster(c: &ClusterToAdd) -> NewCluster {
    let flow = |key: &str, value: &str| format!("{{{key}: {}}}", serde_json::Value::String(value.to_owned()));
    let mut credentials = Vec::new();
    if let Some(var) = &c.bearer_token_env {
        credentials.push(("bearerToken", flow("env", var)));
    }
    if let Some((cert, key)) = &c.client_certificate {
        credentials.push(("clientCertificate", flow("file", cert)));
        credentials.push(("clientKey", flow("file", key)));
    }
    NewCluster {
        name: c.name.clone(),
        server: c.server.clone(),
        context: c.context.clone(),
        cluster_admin: c.cluster_admin,
        credentials,
        ca_file: c.ca_file.clone(),
    }
}

/// What to edit.
#[derive(Debug, Clone)]
pub struct EditRequest {
    /// The inventory file, edited in place.
    pub inventory: PathBuf,
    /// The change.
    pub change: Change,
}

/// An object the edit adds to or removes from the desired state, with why it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consequence {
    /// Its address.
    pub address: ObjectRef,
    /// Why the desired state has it.
    pub reason: String,
}

/// What an edit means for the next plan, shown before a removal is confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consequences {
    /// What is added or removed: ``federation `a` ``.
    pub what: String,
    /// The inventory file, as given.
    pub file: String,
    /// A removal (the lists are what goes) or an addition (what comes).
    pub removal: bool,
    /// Objects mip creates or deletes at the next apply.
    pub mip: Vec<Consequence>,
    /// Objects Argo CD generates or deletes once the change reaches Git.
    pub argo: Vec<Consequence>,
}

/// What an edit did: the file was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// What was added or removed: ``federation `a` ``.
    pub what: String,
    /// The inventory file, as given.
    pub file: String,
    /// Whether it was a removal.
    pub removal: bool,
}

/// Edits (see the [module docs](self)).
///
/// # Errors
/// [`Error::FileIo`] reading or writing the inventory; [`Error::Edit`] when the edit is
/// refused; [`Error::EditInvalid`] when the edited inventory would not resolve or validate;
/// [`Error::Declined`] and [`Error::RemovalNotConfirmed`] when a removal is not confirmed.
pub fn edit(req: &EditRequest, confirm: &dyn Confirm, hook: &dyn Hook) -> Result<Edited, Error> {
    let path = req.inventory.as_path();
    let file = path.display().to_string();
    let io = |action, source| Error::FileIo { action, path: file.clone(), source };
    let text = std::fs::read_to_string(path).map_err(|e| io("read inventory", e))?;
    let e = req.change.apply(&file, &text)?;
    let (before, after) = match (resolve(&e.before.inventory), resolve(&e.after.inventory)) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(diagnostics), _) | (_, Err(diagnostics)) => {
            return Err(Error::EditInvalid { file, diagnostics });
        }
    };
    let what = req.change.what();
    let removal = req.change.is_removal();
    let (gone, come) = if removal { (&before, &after) } else { (&after, &before) };
    hook.edit(&Consequences {
        what: what.clone(),
        file: file.clone(),
        removal,
        mip: only_in(gone, come, Owner::Mip),
        argo: only_in(gone, come, Owner::ArgoCd),
    });
    if removal {
        match confirm.confirm(&format!("Remove {what} from `{file}`?")) {
            Answer::Yes => {}
            Answer::No => return Err(Error::Declined { operation: "Removal" }),
            Answer::CannotAsk => return Err(Error::RemovalNotConfirmed { what }),
        }
    }
    mip_core::fsio::write_atomic(path, e.text.as_bytes(), None).map_err(|e| io("write inventory", e))?;
    Ok(Edited { what, file, removal })
}

/// The desired state of an inventory (prerequisite files do not change what an edit adds or
/// removes, so they are left out), with the static checks' errors.
fn resolve(inv: &Inventory) -> Result<Desired, Diagnostics> {
    let desired = mip_graph::resolve(inv, &[], &ResolveOptions::default())?;
    let checks = mip_graph::validate(&desired);
    if checks.has_errors() {
        return Err(checks);
    }
    Ok(desired)
}

/// The objects of `owner` that `a` has and `b` lacks, in address order.
fn only_in(a: &Desired, b: &Desired, owner: Owner) -> Vec<Consequence> {
    a.objects
        .values()
        .filter(|o| o.owner == owner && !b.objects.contains_key(&o.addr))
        .map(|o| Consequence { address: (*o.addr).clone(), reason: o.reason.clone() })
        .collect()
}
