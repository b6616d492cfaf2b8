//! `mip apps list|show` (the operation is `mip_engine::ops::apps`): the effective app
//! catalogue of an inventory, and where each app runs at which version.

use crate::cli::{AppsCommand, DataFormat, InventoryArgs};
use crate::env::Progress;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_engine::ops::apps::{App, Apps, AppsRequest, apps};
use serde_json::{Value, json};
use std::fmt::Write as _;

fn usage_json(app: &App) -> Vec<Value> {
    app.used
        .iter()
        .map(|u| json!({ "where": u.at, "version": u.version, "pinned_at": u.pinned_at }))
        .collect()
}

/// Runs `mip apps list|show`.
///
/// # Errors
/// Load errors; an unknown app name (exit 1, with the known names).
pub fn run(command: &AppsCommand) -> Result<ExitStatus, CliError> {
    let (inv, show, output): (&InventoryArgs, _, _) = match command {
        AppsCommand::List { inv, output } => (inv, None, *output),
        AppsCommand::Show { name, inv, output } => (inv, Some(name.clone()), *output),
    };
    let out = match apps(&AppsRequest { load: super::load_options(inv), show }, &Progress::default())? {
        Apps::List(list) => match output {
            DataFormat::Json => {
                let apps: Vec<Value> = list
                    .iter()
                    .map(|a| {
                        json!({
                            "name": a.name,
                            "scope": a.scope,
                            "origin": a.origin,
                            "version": a.version,
                            "description": a.description,
                            "used": usage_json(a),
                        })
                    })
                    .collect();
                let doc = json!({ "format_version": "1", "apps": apps });
                format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default())
            }
            DataFormat::Text => {
                let mut s = String::new();
                for a in &list {
                    let used: Vec<String> = a
                        .used
                        .iter()
                        .map(|u| {
                            if u.pinned_at.is_some() {
                                format!("{} at {} (pinned)", u.at, u.version)
                            } else {
                                u.at.clone()
                            }
                        })
                        .collect();
                    let used = if used.is_empty() { "unused".to_owned() } else { used.join(", ") };
                    let _ = write!(
                        s,
                        "{:<18} {:<10} {:<22} {}\n    {}\n    used by: {used}\n",
                        a.name, a.scope, a.origin, a.version, a.description
                    );
                }
                s
            }
        },
        Apps::Show(app) => match output {
            DataFormat::Json => {
                let doc = json!({
                    "format_version": "1",
                    "name": app.name,
                    "origin": app.origin,
                    "definition": app.definition,
                    "used": usage_json(&app),
                    "mirrors": app.mirrors.iter().map(|(u, m)| (u.clone(), json!(m))).collect::<serde_json::Map<_, _>>(),
                });
                format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default())
            }
            DataFormat::Text => {
                let mut s = format!("# {} ({})\n", app.name, app.origin);
                if let Some(at) = &app.defined_at {
                    let _ = writeln!(s, "# defined or overridden at {at}");
                }
                for u in &app.used {
                    match &u.pinned_at {
                        Some(at) => _ = writeln!(s, "# {}: {} (pinned at {at})", u.at, u.version),
                        None => _ = writeln!(s, "# {}: {}", u.at, u.version),
                    }
                }
                for (upstream, mirror) in &app.mirrors {
                    let _ = writeln!(s, "# mirrored: {upstream} is read from {mirror}");
                }
                s.push_str(&app.definition_yaml);
                s
            }
        },
    };
    views::stdout(&out)?;
    Ok(ExitStatus::Success)
}
