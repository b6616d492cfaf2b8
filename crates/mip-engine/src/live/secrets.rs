//! Secret values at apply time: generated (create-if-absent, rotation) or read from their
//! sources, put into the manifest in memory only, and remembered as salted hashes.

use crate::Error;
use crate::seams::{SecretResolver, SourceError};
use mip_core::{ObjectRef, Sensitive, SensitiveSource, canonical};
use mip_plan::Change;
use serde_json::Value;
use std::collections::BTreeMap;

/// A 24-character alphanumeric value from the OS CSPRNG (rejection sampling: no modulo bias).
///
/// # Errors
/// [`SourceError::Random`] when the OS random source fails.
pub fn generate_secret() -> Result<Sensitive, SourceError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(24);
    let mut buf = [0u8; 64];
    while out.len() < 24 {
        getrandom::fill(&mut buf).map_err(|e| SourceError::Random(e.to_string()))?;
        for b in buf {
            if b < 248 && out.len() < 24 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(Sensitive::new(out))
}

/// Fills a Secret manifest's `stringData` from sources; existing values of generated keys are
/// kept (create-if-absent), `rotate` regenerates them.
pub(crate) fn fill_secret(
    change: &Change,
    live: Option<&Value>,
    resolver: &dyn SecretResolver,
    rotate: bool,
) -> Result<Value, Error> {
    let mut manifest = change.manifest.as_deref().cloned().unwrap_or(Value::Null);
    for key in &change.sensitive {
        let existing = live.and_then(|l| live_value(l, &key.key)).map(Sensitive::new);
        let (value, source_desc) = match (&key.source, existing) {
            (SensitiveSource::Generated, Some(v)) if !rotate => (Ok(v), String::new()),
            (SensitiveSource::Generated, _) => (generate_secret(), "the OS random source".to_owned()),
            (src, _) => (resolver.resolve(src), src.to_string()),
        };
        let value = value.map_err(|source| Error::SecretSource {
            addr: change.address.clone(),
            key: key.key.clone(),
            source_desc,
            source,
        })?;
        if let Some(data) = manifest.get_mut("stringData").and_then(Value::as_object_mut) {
            data.insert(key.key.clone(), Value::String(value.expose().to_owned()));
        }
    }
    Ok(manifest)
}

/// A live Secret's value for a key, decoded (in memory only, to hash it or keep it).
pub(crate) fn live_value(live: &Value, key: &str) -> Option<String> {
    live.pointer(&format!("/data/{}", canonical::pointer_token(key)))
        .and_then(Value::as_str)
        .and_then(mip_plan::base64_decode)
}

/// A filled manifest's value for a key.
pub(crate) fn manifest_value(manifest: &Value, key: &str) -> Option<String> {
    manifest
        .pointer(&format!("/stringData/{}", canonical::pointer_token(key)))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Salted hashes of a Secret's values (salt: the state's lineage), for every key `value` has.
pub(crate) fn value_hashes<'k>(
    lineage: &str,
    addr: &ObjectRef,
    keys: impl IntoIterator<Item = &'k String>,
    value: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    keys.into_iter()
        .filter_map(|k| {
            value(k).map(|v| (k.clone(), canonical::salted_hash(lineage, &format!("{addr}#{k}"), &v)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_are_24_alphanumerics_and_differ() {
        let a = generate_secret().expect("random");
        let b = generate_secret().expect("random");
        assert_eq!(a.len(), 24);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), b.expose());
    }
}
