//! `mip apps list|show`: the effective app catalogue of an inventory (the built-in definitions
//! merged with its `apps:` section), and where each app runs at which version.

use super::load;
use crate::Error;
use crate::load::LoadOptions;
use crate::seams::Hook;
use mip_inventory::Inventory;
use mip_inventory::apps::{AppDef, Scope};

/// What to show.
#[derive(Debug, Clone)]
pub struct AppsRequest {
    /// The inventory.
    pub load: LoadOptions,
    /// `mip apps show NAME`: one app; `None`: every app (`mip apps list`).
    pub show: Option<String>,
}

/// Where an app runs, at which upstream revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// ``federation `a` `` or `commonApps`.
    pub at: String,
    /// The upstream revision it runs.
    pub version: String,
    /// Where the inventory pins it (`file:line:column`), when it does.
    pub pinned_at: Option<String>,
}

/// One app of the effective catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// Its name.
    pub name: String,
    /// `federation` or `common`.
    pub scope: &'static str,
    /// `built-in`, `built-in, overridden` or `inventory`.
    pub origin: &'static str,
    /// The upstream revision of its definition.
    pub version: String,
    /// One sentence.
    pub description: String,
    /// Where the inventory defines or overrides it.
    pub defined_at: Option<String>,
    /// Where it runs.
    pub used: Vec<Usage>,
    /// Its definition, as JSON.
    pub definition: serde_json::Value,
    /// Its definition, as the YAML of an `apps:` entry.
    pub definition_yaml: String,
    /// The upstream repositories it reads that the inventory mirrors: `(upstream, mirror)`.
    pub mirrors: Vec<(String, String)>,
}

/// The catalogue, or the one app asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Apps {
    /// Every app, by name.
    List(Vec<App>),
    /// The app asked for.
    Show(Box<App>),
}

/// Lists or shows (see the [module docs](self)).
///
/// # Errors
/// The load errors; [`Error::UnknownApp`] with the known names.
pub fn apps(req: &AppsRequest, hook: &dyn Hook) -> Result<Apps, Error> {
    let loaded = load(&req.load, hook)?;
    let inv = &loaded.inventory;
    let Some(name) = &req.show else {
        return Ok(Apps::List(inv.catalogue.apps.values().map(|d| app(inv, d)).collect()));
    };
    match inv.catalogue.get(name) {
        Some(def) => Ok(Apps::Show(Box::new(app(inv, def)))),
        None => {
            Err(Error::UnknownApp { name: name.clone(), known: inv.catalogue.apps.keys().cloned().collect() })
        }
    }
}

fn app(inv: &Inventory, def: &AppDef) -> App {
    let definition = def.to_json();
    App {
        name: def.name.clone(),
        scope: def.scope.as_str(),
        origin: origin(def),
        version: def.version(),
        description: def.description.clone(),
        defined_at: def.defined_at.as_ref().map(ToString::to_string),
        used: usage(inv, def),
        definition_yaml: mip_render::to_yaml(&serde_json::json!({ def.name.clone(): definition.clone() })),
        definition,
        mirrors: def
            .upstream_urls()
            .into_iter()
            .filter_map(|u| {
                let m = inv.mirrored(&u);
                (m != u).then(|| (u.clone(), m.to_string()))
            })
            .collect(),
    }
}

/// Where an app runs and at which upstream revision.
fn usage(inv: &Inventory, def: &AppDef) -> Vec<Usage> {
    let version = |pin: Option<&str>| pin.map_or_else(|| def.version(), str::to_owned);
    let mut out = Vec::new();
    match def.scope {
        Scope::Federation => {
            for f in &inv.federations {
                if let Some(a) = f.apps.iter().find(|a| a.kind.value.as_str() == def.name) {
                    // A pin, else the federation's own definition (`override:`), else the catalogue's.
                    let pin = a.target_revision.as_ref();
                    let own = a.definition.as_ref().map(AppDef::version);
                    let (version, pinned_at) = match (pin, own, &a.definition) {
                        (Some(p), _, _) => (p.value.clone(), Some(p.at.to_string())),
                        (None, Some(v), Some(d)) => (v, d.defined_at.as_ref().map(ToString::to_string)),
                        _ => (version(None), None),
                    };
                    out.push(Usage { at: format!("federation `{}`", f.name.value), version, pinned_at });
                }
            }
        }
        Scope::Common => {
            if let Some(a) = inv.common_apps.iter().find(|a| a.kind.value.as_str() == def.name) {
                let pin = a.target_revision.as_ref();
                out.push(Usage {
                    at: "commonApps".to_owned(),
                    version: version(pin.map(|p| p.value.as_str())),
                    pinned_at: pin.map(|p| p.at.to_string()),
                });
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
