//! The saved plan file: a versioned, sha256-hashed, self-contained artifact.
//!
//! Layout (JSON): `{"format_version": "1", "kind": "mip-plan", "digest": "sha256:…", "plan": {…}}`.
//! The digest is taken over the canonical bytes of `plan`, so any edit of the plan is
//! detected on read ([`Error::Tampered`]). The file holds no secret values: sensitive keys
//! carry only their source.

use crate::model::{FORMAT_VERSION, Plan};
use mip_core::canonical;
use serde::{Deserialize, Serialize};

/// Problems reading a plan file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not JSON, or not a plan file.
    #[error("`{path}` is not a mip plan file: {}", one_line(reason))]
    Malformed {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Written by an incompatible mip.
    #[error("plan file `{path}` has format version `{}`; this mip reads `{FORMAT_VERSION}`", one_line(found))]
    Version {
        /// The file.
        path: String,
        /// Its version.
        found: String,
    },
    /// The digest does not match the content.
    #[error("plan file `{path}` was modified after it was written (digest mismatch)")]
    Tampered {
        /// The file.
        path: String,
    },
}

/// `text` (read from the file: its `kind`, its version, a value quoted by serde) with control
/// characters escaped, so that an error stays on one line and cannot drive the terminal.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format_version: String,
    kind: String,
    digest: String,
    plan: serde_json::Value,
}

/// Serialises a plan into plan-file bytes (deterministic).
pub fn to_bytes(plan: &Plan) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(plan)?;
    let digest = canonical::digest(&value)?;
    let env =
        Envelope { format_version: FORMAT_VERSION.into(), kind: "mip-plan".into(), digest, plan: value };
    let mut bytes = serde_json::to_vec_pretty(&env)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Reads and verifies plan-file bytes.
///
/// # Errors
/// [`Error::Malformed`], [`Error::Version`] or [`Error::Tampered`].
pub fn from_bytes(path: &str, bytes: &[u8]) -> Result<Plan, Error> {
    let malformed = |reason: String| Error::Malformed { path: path.to_owned(), reason };
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    if env.kind != "mip-plan" {
        return Err(malformed(format!("kind is `{}`", env.kind)));
    }
    if env.format_version != FORMAT_VERSION {
        return Err(Error::Version { path: path.to_owned(), found: env.format_version });
    }
    let digest = canonical::digest(&env.plan).map_err(|e| malformed(e.to_string()))?;
    if digest != env.digest {
        return Err(Error::Tampered { path: path.to_owned() });
    }
    serde_json::from_value(env.plan).map_err(|e| malformed(e.to_string()))
}
