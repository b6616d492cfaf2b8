//! `mip federation add|remove` and `mip cluster add|remove`: edit the inventory file in place
//! (`mip_inventory::edit` keeps every other byte), show the plan consequences on stderr, ask
//! before a removal, and write atomically. Nothing is written when the edit is refused.

use crate::cli::{
    ClusterCommand, EditArgs, FederationAppArg, FederationCommand, FederationKindArg, RemoveArgs,
};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use anyhow::Context;
use mip_core::{ObjectRef, Owner};
use mip_engine::seams::{Answer, Confirm as _};
use mip_graph::{Desired, ResolveOptions};
use mip_inventory::edit::{self, Edit, EditError, NewCluster, NewFederation};
use mip_inventory::{FederationAppKind, FederationKind, Inventory};

/// `mip federation …`.
pub fn federation(cmd: FederationCommand) -> Result<ExitStatus, CliError> {
    match cmd {
        FederationCommand::Add { name, kind, cluster, remote_clusters, apps, edit: args } => {
            let fed = NewFederation {
                name: name.clone(),
                kind: match kind {
                    FederationKindArg::Local => FederationKind::Local,
                    FederationKindArg::Hybrid => FederationKind::Hybrid,
                },
                cluster,
                remote_clusters,
                apps: apps
                    .into_iter()
                    .map(|a| match a {
                        FederationAppArg::Exareme2 => FederationAppKind::Exareme2,
                        FederationAppArg::MipStack => FederationAppKind::MipStack,
                        FederationAppArg::Exareme2Overlay => FederationAppKind::Exareme2Overlay,
                    })
                    .collect(),
            };
            run(&args, &format!("federation `{name}`"), None, |file, text| {
                edit::add_federation(file, text, &fed)
            })
        }
        FederationCommand::Remove(RemoveArgs { name, yes, edit: args }) => {
            run(&args, &format!("federation `{name}`"), Some(yes), |file, text| {
                edit::remove_federation(file, text, &name)
            })
        }
    }
}

/// `mip cluster …`.
pub fn cluster(cmd: ClusterCommand) -> Result<ExitStatus, CliError> {
    match cmd {
        ClusterCommand::Add {
            name,
            server,
            kube_context,
            cluster_admin,
            bearer_token_env,
            client_certificate_file,
            client_key_file,
            ca_file,
            edit: args,
        } => {
            let flow = |key: &str, value: String| format!("{{{key}: {}}}", serde_json::Value::String(value));
            let mut credentials = Vec::new();
            if let Some(var) = bearer_token_env {
                credentials.push(("bearerToken", flow("env", var)));
            }
            if let (Some(cert), Some(key)) = (client_certificate_file, client_key_file) {
                credentials.push(("clientCertificate", flow("file", cert)));
                credentials.push(("clientKey", flow("file", key)));
            }
            let c = NewCluster {
                name: name.clone(),
                server,
                context: kube_context,
                cluster_admin,
                credentials,
                ca_file,
            };
            run(&args, &format!("cluster `{name}`"), None, |file, text| edit::add_cluster(file, text, &c))
        }
        ClusterCommand::Remove(RemoveArgs { name, yes, edit: args }) => {
            run(&args, &format!("cluster `{name}`"), Some(yes), |file, text| {
                edit::remove_cluster(file, text, &name)
            })
        }
    }
}

/// Runs one edit. `confirm` is `None` for an addition, `Some(--yes)` for a removal; `render`
/// re-renders the GitOps tree there once the inventory is written.
fn run(
    args: &EditArgs,
    what: &str,
    confirm: Option<bool>,
    edit: impl FnOnce(&str, &str) -> Result<Edit, EditError>,
) -> Result<ExitStatus, CliError> {
    let path = args.inv.inventory.as_path();
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read inventory `{file}`"))?;
    let e = match edit(&file, &text) {
        Ok(e) => e,
        Err(err) => {
            if let Some(d) = err.diagnostics() {
                views::diagnostics(d);
            }
            views::error(&err.to_string(), err.hint().as_deref());
            return Ok(ExitStatus::Error);
        }
    };
    let (before, after) = match (resolve(&e.before.inventory), resolve(&e.after.inventory)) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(d), _) | (_, Err(d)) => {
            views::diagnostics(&d);
            views::error(
                &format!("the edit would make `{file}` invalid; nothing was written"),
                Some("the diagnostics above name the conflict"),
            );
            return Ok(ExitStatus::Error);
        }
    };
    let removal = confirm.is_some();
    report_consequences(&before, &after, what, &file, removal);
    match confirm {
        Some(true) | None => {}
        Some(false) => match crate::env::TerminalConfirm.confirm(&format!("Remove {what} from `{file}`?")) {
            Answer::Yes => {}
            Answer::CannotAsk => {
                views::error(
                    &format!(
                        "refusing to remove {what} without confirmation: stdin is not a terminal; nothing was written"
                    ),
                    Some("review the deletions above, then pass `--yes`"),
                );
                return Ok(ExitStatus::SafetyRefusal);
            }
            Answer::No => {
                views::note("Cancelled; nothing was written.");
                return Ok(ExitStatus::SafetyRefusal);
            }
        },
    }
    mip_core::fsio::write_atomic(path, e.text.as_bytes(), None)
        .with_context(|| format!("failed to write inventory `{file}`"))?;
    views::note(&format!(
        "{} {what} {} `{file}`.",
        if removal { "Removed" } else { "Added" },
        if removal { "from" } else { "to" }
    ));
    match &args.render {
        Some(dir) => crate::commands::render::render(&args.inv, dir, false, false),
        None => {
            views::note(
                "Next: render the GitOps tree and push it (`mip render DIR`, or `--render DIR` here), then `mip plan` and `mip apply`.",
            );
            Ok(ExitStatus::Success)
        }
    }
}

/// The desired state of an inventory (prerequisite files do not change what an edit adds or
/// removes, so they are left out), with the static checks' errors.
fn resolve(inv: &Inventory) -> Result<Desired, mip_core::Diagnostics> {
    let desired = mip_graph::resolve(inv, &[], &ResolveOptions::default())?;
    let checks = mip_graph::validate(&desired);
    if checks.has_errors() {
        return Err(checks);
    }
    Ok(desired)
}

fn only_in<'d>(a: &'d Desired, b: &Desired, owner: Owner) -> Vec<(&'d ObjectRef, &'d str)> {
    a.objects
        .values()
        .filter(|o| o.owner == owner && !b.objects.contains_key(&o.addr))
        .map(|o| (&o.addr, o.reason.as_str()))
        .collect()
}

/// A titled list of addresses on stderr, nothing when empty.
fn list(
    title: &str,
    symbol: &str,
    items: &[(&ObjectRef, &str)],
    note_for: impl Fn(&ObjectRef) -> &'static str,
) {
    if items.is_empty() {
        return;
    }
    views::note(title);
    for (a, why) in items {
        views::note(&format!("{symbol:>3} {a} ({why}{})", note_for(a)));
    }
}

/// What the edit means for the next plan, on stderr.
fn report_consequences(before: &Desired, after: &Desired, what: &str, file: &str, removal: bool) {
    let none = |_: &ObjectRef| "";
    if removal {
        views::note(&format!("Removing {what} from `{file}`."));
        let argo = only_in(before, after, Owner::ArgoCd);
        let title = "Argo CD will DELETE, once the change reaches Git, these objects and every workload and persistent volume their Applications deployed:";
        list(title, "-", &argo, none);
        let namespaces = |a: &ObjectRef| {
            if a.kind == "Namespace" { "; everything in the namespace goes with it" } else { "" }
        };
        list(
            "The next `mip plan` deletes what mip created for it:",
            "-",
            &only_in(before, after, Owner::Mip),
            namespaces,
        );
    } else {
        views::note(&format!("Adding {what} to `{file}`."));
        list("The next `mip plan` creates:", "+", &only_in(after, before, Owner::Mip), none);
        list(
            "Argo CD will generate (the plan awaits them as `<=`):",
            "<=",
            &only_in(after, before, Owner::ArgoCd),
            none,
        );
    }
}
