//! `mip apps list|show`: the effective app catalogue of an inventory (the built-in
//! definitions merged with its `apps:` section), and where each app runs at which version.

use crate::cli::{AppsCommand, DataFormat};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_inventory::Inventory;
use mip_inventory::apps::{AppDef, Scope};
use serde_json::{Value, json};

/// Where an app runs and at which upstream revision: `(where, revision, pinned at)`.
fn usage(inv: &Inventory, def: &AppDef) -> Vec<(String, String, Option<String>)> {
    let version = |pin: Option<&str>| pin.map_or_else(|| def.version(), str::to_owned);
    let mut out = Vec::new();
    match def.scope {
        Scope::Federation => {
            for f in &inv.federations {
                if let Some(a) = f.apps.iter().find(|a| a.kind.value.as_str() == def.name) {
                    // A pin, else the federation's own definition (`override:`), else the catalogue's.
                    let pin = a.target_revision.as_ref();
                    let own = a.definition.as_ref().map(AppDef::version);
                    let (rev, at) = match (pin, own, &a.definition) {
                        (Some(p), _, _) => (p.value.clone(), Some(p.at.to_string())),
                        (None, Some(v), Some(d)) => (v, d.defined_at.as_ref().map(ToString::to_string)),
                        _ => (version(None), None),
                    };
                    out.push((format!("federation `{}`", f.name.value), rev, at));
                }
            }
        }
        Scope::Common => {
            if let Some(a) = inv.common_apps.iter().find(|a| a.kind.value.as_str() == def.name) {
                let pin = a.target_revision.as_ref();
                out.push((
                    "commonApps".to_owned(),
                    version(pin.map(|p| p.value.as_str())),
                    pin.map(|p| p.at.to_string()),
                ));
            }
        }
    }
    out
}

fn origin(def: &AppDef) -> &'static str {
    match (def.builtin, def.defined_at.is_some()) {
        (true, false) => "built-in",
        (true, true) => "built-in, overridden",
        (false, _) => "inventory",
    }
}

fn usage_json(inv: &Inventory, def: &AppDef) -> Vec<Value> {
    usage(inv, def).into_iter().map(|(w, r, p)| json!({ "where": w, "version": r, "pinned_at": p })).collect()
}

/// Runs `mip apps list|show`.
///
/// # Errors
/// Load errors; an unknown app name (exit 1, with the known names).
pub fn run(command: &AppsCommand) -> Result<ExitStatus, CliError> {
    match command {
        AppsCommand::List { inv, output } => {
            let loaded = super::load(inv)?;
            let inv = &loaded.inventory;
            let out = match output {
                DataFormat::Json => {
                    let apps: Vec<Value> = inv
                        .catalogue
                        .apps
                        .values()
                        .map(|d| {
                            json!({
                                "name": d.name,
                                "scope": d.scope.as_str(),
                                "origin": origin(d),
                                "version": d.version(),
                                "description": d.description,
                                "used": usage_json(inv, d),
                            })
                        })
                        .collect();
                    let doc = json!({ "format_version": "1", "apps": apps });
                    format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default())
                }
                DataFormat::Text => {
                    let mut s = String::new();
                    for d in inv.catalogue.apps.values() {
                        let used: Vec<String> = usage(inv, d)
                            .into_iter()
                            .map(|(w, r, p)| if p.is_some() { format!("{w} at {r} (pinned)") } else { w })
                            .collect();
                        let used = if used.is_empty() { "unused".to_owned() } else { used.join(", ") };
                        s.push_str(&format!(
                            "{:<18} {:<10} {:<22} {}\n    {}\n    used by: {used}\n",
                            d.name,
                            d.scope.as_str(),
                            origin(d),
                            d.version(),
                            d.description
                        ));
                    }
                    s
                }
            };
            views::stdout(&out)?;
            Ok(ExitStatus::Success)
        }
        AppsCommand::Show { name, inv, output } => {
            let loaded = super::load(inv)?;
            let inv = &loaded.inventory;
            let Some(def) = inv.catalogue.get(name) else {
                let known: Vec<&str> = inv.catalogue.apps.keys().map(String::as_str).collect();
                views::error(
                    &format!("no app `{name}` in the catalogue"),
                    Some(&format!(
                        "known apps: {}; define new ones under `apps:` in the inventory",
                        known.join(", ")
                    )),
                );
                return Ok(ExitStatus::Error);
            };
            let out = match output {
                DataFormat::Json => {
                    let doc = json!({
                        "format_version": "1",
                        "name": def.name,
                        "origin": origin(def),
                        "definition": def.to_json(),
                        "used": usage_json(inv, def),
                        "mirrors": mirrors_of(inv, def).into_iter().collect::<serde_json::Map<_, _>>(),
                    });
                    format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default())
                }
                DataFormat::Text => {
                    let mut s = format!("# {} ({})\n", def.name, origin(def));
                    if let Some(at) = &def.defined_at {
                        s.push_str(&format!("# defined or overridden at {at}\n"));
                    }
                    for (w, r, p) in usage(inv, def) {
                        match p {
                            Some(at) => s.push_str(&format!("# {w}: {r} (pinned at {at})\n")),
                            None => s.push_str(&format!("# {w}: {r}\n")),
                        }
                    }
                    for (upstream, mirror) in mirrors_of(inv, def) {
                        s.push_str(&format!(
                            "# mirrored: {upstream} is read from {}\n",
                            mirror.as_str().unwrap_or_default()
                        ));
                    }
                    s.push_str(&mip_render::to_yaml(&json!({ def.name.clone(): def.to_json() })));
                    s
                }
            };
            views::stdout(&out)?;
            Ok(ExitStatus::Success)
        }
    }
}

/// The definition's upstream repositories that the inventory's `mirrors:` maps, with their
/// mirrors.
fn mirrors_of(
    inv: &mip_inventory::Inventory,
    def: &mip_inventory::apps::AppDef,
) -> Vec<(String, serde_json::Value)> {
    def.upstream_urls()
        .into_iter()
        .filter_map(|u| {
            let m = inv.mirrored(&u);
            (m != u).then(|| (u.clone(), json!(m)))
        })
        .collect()
}
