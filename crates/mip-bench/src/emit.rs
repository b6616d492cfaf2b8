//! The mip-owned objects of a plan as one multi-document YAML, for `kubectl`.

use anyhow::Context;
use mip_core::canonical;
use mip_engine::load::{self as ops, LoadOptions};
use serde_json::Value;
use std::path::Path;

/// A deterministic 24-character dummy value for one key of one Secret (the length of the
/// values mip generates), so that kubectl sends Secrets of the same size as mip.
pub fn dummy_value(address: &str, key: &str) -> String {
    canonical::sha256_hex(format!("{address}\n{key}").as_bytes()).chars().take(24).collect()
}

/// The manifests mip would apply for `inventory` on an empty cluster, in plan order, with
/// every sensitive key of a Secret's `stringData` set to [`dummy_value`].
///
/// The inventory goes through the real loader (parser, resolution, checks, DAG) and the offline
/// plan, so the objects are exactly those of `mip plan`.
///
/// # Errors
/// The inventory cannot be read or is invalid (every problem is listed).
pub fn manifests(inventory: &Path) -> anyhow::Result<Vec<Value>> {
    let loaded = ops::load(&LoadOptions { inventory: inventory.to_path_buf(), revision: None }).map_err(
        |e| match e {
            mip_engine::Error::Invalid { diagnostics: diags, .. } => {
                let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("invalid inventory `{}`:\n{}", inventory.display(), lines.join("\n"))
            }
            other => anyhow::Error::new(other),
        },
    )?;
    let plan = ops::plan_offline(&loaded);
    let mut out = Vec::with_capacity(plan.changes.len());
    for change in &plan.changes {
        let Some(mut manifest) = change.manifest.as_deref().cloned() else { continue };
        if !change.sensitive.is_empty() {
            let address = change.address.to_string();
            let data = manifest
                .get_mut("stringData")
                .and_then(Value::as_object_mut)
                .with_context(|| format!("Secret `{address}` has sensitive keys but no `stringData`"))?;
            for key in change.sensitive.iter() {
                data.insert(key.key.clone(), Value::String(dummy_value(&address, &key.key)));
            }
        }
        out.push(manifest);
    }
    Ok(out)
}

/// [`manifests`] as one multi-document YAML (`---` before each document).
///
/// # Errors
/// As [`manifests`], or a manifest that YAML cannot represent.
pub fn objects(inventory: &Path) -> anyhow::Result<String> {
    let mut out = String::new();
    for manifest in manifests(inventory)? {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&manifest).context("failed to write a manifest as YAML")?);
    }
    Ok(out)
}
