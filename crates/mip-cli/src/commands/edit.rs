//! `mip federation add|remove` and `mip cluster add|remove` (the operation is
//! `mip_engine::ops::edit`): the consequences on stderr, a removal confirmed at the terminal
//! (or by `--yes`), and with `--render DIR` the tree rendered again.

use crate::cli::{
    ClusterCommand, EditArgs, FederationAppArg, FederationCommand, FederationKindArg, RemoveArgs,
};
use crate::env::{Progress, confirmation};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_engine::ops::edit::{
    Change, ClusterToAdd, Consequence, Consequences, EditRequest, FederationAppKind, FederationKind,
    NewFederation, edit,
};

/// `mip federation …`.
pub fn federation(cmd: FederationCommand) -> Result<ExitStatus, CliError> {
    match cmd {
        FederationCommand::Add { name, kind, cluster, remote_clusters, apps, edit: args } => {
            let fed = NewFederation {
                name,
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
            run(&args, Change::AddFederation(fed), false)
        }
        FederationCommand::Remove(RemoveArgs { name, yes, edit: args }) => {
            run(&args, Change::RemoveFederation(name), yes)
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
            let c = ClusterToAdd {
                name,
                server,
                context: kube_context,
                cluster_admin,
                bearer_token_env,
                client_certificate: client_certificate_file.zip(client_key_file),
                ca_file,
            };
            run(&args, Change::AddCluster(c), false)
        }
        ClusterCommand::Remove(RemoveArgs { name, yes, edit: args }) => {
            run(&args, Change::RemoveCluster(name), yes)
        }
    }
}

/// Runs one edit (`yes`: a removal is not asked about); with `--render DIR`, renders the
/// GitOps tree there once the inventory is written.
fn run(args: &EditArgs, change: Change, yes: bool) -> Result<ExitStatus, CliError> {
    let req = EditRequest { inventory: args.inv.inventory.clone(), change };
    let edited = match edit(&req, confirmation(yes).as_ref(), &Progress::default()) {
        Ok(edited) => edited,
        Err(e @ (mip_engine::Error::Edit(_) | mip_engine::Error::EditInvalid { .. })) => {
            if let Some(d) = e.diagnostics() {
                views::diagnostics(d);
            }
            views::error(&e.to_string(), e.hint().as_deref());
            return Ok(ExitStatus::Error);
        }
        Err(mip_engine::Error::Declined { .. }) => {
            views::note("Cancelled; nothing was written.");
            return Ok(ExitStatus::SafetyRefusal);
        }
        Err(e) => return Err(e.into()),
    };
    views::note(&format!(
        "{} {} {} `{}`.",
        if edited.removal { "Removed" } else { "Added" },
        edited.what,
        if edited.removal { "from" } else { "to" },
        edited.file
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

/// A titled list of addresses on stderr, nothing when empty.
fn list(title: &str, symbol: &str, items: &[Consequence], note_for: impl Fn(&Consequence) -> &'static str) {
    if items.is_empty() {
        return;
    }
    views::note(title);
    for c in items {
        views::note(&format!("{symbol:>3} {} ({}{})", c.address, c.reason, note_for(c)));
    }
}

/// What the edit means for the next plan, on stderr.
pub fn consequences(c: &Consequences) {
    let none = |_: &Consequence| "";
    let (what, file) = (&c.what, &c.file);
    if c.removal {
        views::note(&format!("Removing {what} from `{file}`."));
        let title = "Argo CD will DELETE, once the change reaches Git, these objects and every workload and persistent volume their Applications deployed:";
        list(title, "-", &c.argo, none);
        let namespaces = |c: &Consequence| {
            if c.address.kind == "Namespace" { "; everything in the namespace goes with it" } else { "" }
        };
        list("The next `mip plan` deletes what mip created for it:", "-", &c.mip, namespaces);
    } else {
        views::note(&format!("Adding {what} to `{file}`."));
        list("The next `mip plan` creates:", "+", &c.mip, none);
        list("Argo CD will generate (the plan awaits them as `<=`):", "<=", &c.argo, none);
    }
}
