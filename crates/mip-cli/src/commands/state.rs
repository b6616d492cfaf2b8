//! `mip state list|show|history|rm|rebuild|migrate`.

use crate::cli::{DataFormat, StateCommand};
use crate::contract::{StateEntry, StateListing};
use crate::env::{Parts, kind, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_core::ObjectRef;
use mip_engine::ops::state::{self, StateView};
use std::fmt::Write as _;

/// Runs one `mip state` command.
///
/// # Errors
/// The engine's errors.
pub fn run(command: &StateCommand) -> Result<ExitStatus, CliError> {
    match command {
        StateCommand::List { output, inv, cluster } => {
            let parts = Parts::new(cluster);
            read(&parts, &inv.inventory, false, |view| list(view, *output))
        }
        StateCommand::History { inv, cluster } => {
            read(&Parts::new(cluster), &inv.inventory, true, |view| Ok(history(view)))
        }
        StateCommand::Show { address, inv, cluster } => {
            let addr: ObjectRef = address
                .parse()
                .map_err(|e: mip_core::AddressError| CliError::new(ExitStatus::Error, e.to_string(), None))?;
            read(&Parts::new(cluster), &inv.inventory, false, |view| show(view, &addr))
        }
        StateCommand::Rm { address, inv, cluster } => {
            let parts = Parts::locking(cluster);
            let (addr, serial) = runtime()?.block_on(state::rm(&parts.env(), &inv.inventory, address))?;
            views::note(&format!("forgot `{addr}` (it stays in the cluster); state serial {serial}"));
            Ok(ExitStatus::Success)
        }
        StateCommand::Rebuild { inv, cluster } => {
            let parts = Parts::locking(cluster);
            let n = runtime()?.block_on(state::rebuild(&parts.env(), &super::load_options(inv)))?;
            views::note(&format!("rebuilt the state: {n} object(s) recorded from the cluster"));
            Ok(ExitStatus::Success)
        }
        StateCommand::Migrate { from, to, inv, cluster } => {
            let parts = Parts::locking(cluster);
            let m =
                runtime()?.block_on(state::migrate(&parts.env(), &inv.inventory, kind(*from), kind(*to)))?;
            views::note(&format!(
                "migrated lineage {} serial {} ({} object(s), {} history entries) from {} to {}; the source is left as it was: remove it once you have checked",
                m.snapshot.lineage,
                m.snapshot.serial,
                m.snapshot.managed.len(),
                m.history,
                m.source,
                m.destination
            ));
            Ok(ExitStatus::Success)
        }
    }
}

/// Reads the state and prints what `render` makes of it; no state is a note, not an error.
fn read(
    parts: &Parts,
    inventory: &std::path::Path,
    history: bool,
    render: impl FnOnce(&StateView) -> Result<String, CliError>,
) -> Result<ExitStatus, CliError> {
    match runtime()?.block_on(state::read(&parts.env(), inventory, history)) {
        Ok(view) => {
            views::stdout(&render(&view)?)?;
            Ok(ExitStatus::Success)
        }
        Err(mip_engine::Error::NoState(location)) => {
            views::note(&format!("no state in {location} (nothing applied yet)"));
            Ok(ExitStatus::Success)
        }
        Err(e) => Err(e.into()),
    }
}

fn list(view: &StateView, output: DataFormat) -> Result<String, CliError> {
    let s = &view.snapshot;
    if output == DataFormat::Json {
        let doc = StateListing {
            format_version: crate::contract::FORMAT_VERSION.to_owned(),
            lineage: s.lineage.clone(),
            serial: s.serial,
            managed: s.managed.iter().map(|(a, e)| StateEntry::new(a, e)).collect(),
        };
        return Ok(format!("{}\n", serde_json::to_string_pretty(&doc).map_err(anyhow::Error::from)?));
    }
    let mut out = format!("lineage {}, serial {}\n", s.lineage, s.serial);
    for a in s.managed.keys() {
        let _ = writeln!(out, "{a}");
    }
    Ok(out)
}

fn show(view: &StateView, addr: &ObjectRef) -> Result<String, CliError> {
    match view.snapshot.managed.get(addr) {
        Some(e) => Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&StateEntry::new(addr, e)).map_err(anyhow::Error::from)?
        )),
        None => Err(mip_engine::Error::NotInState(addr.clone()).into()),
    }
}

fn history(view: &StateView) -> String {
    let mut s = String::new();
    for h in &view.history {
        let _ = writeln!(
            s,
            "{} serial {} {}{}: {}",
            state::rfc3339_utc(h.at_unix),
            h.serial,
            h.operation,
            h.outcome.map(|o| format!(" {}", o.as_str())).unwrap_or_default(),
            h.summary
        );
    }
    s
}
