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

/// A key whose value is read from a cluster once the Secret it comes from is written and filled:
/// the key and that Secret.
pub(crate) type Pending = (String, SensitiveSource);

/// Fills a Secret manifest's `stringData` from sources; existing values of generated keys are
/// kept (create-if-absent), `rotate` regenerates them. A value read from a Secret on a cluster
/// (a registered cluster's token) is taken from `live` when that Secret is already filled;
/// otherwise its key is returned as pending, to be read when the write starts
/// ([`read_pending`]).
pub(crate) fn fill_secret(
    change: &Change,
    live: &BTreeMap<ObjectRef, Value>,
    resolver: &dyn SecretResolver,
    rotate: bool,
) -> Result<(Value, Vec<Pending>), Error> {
    let mut manifest = change.manifest.as_deref().cloned().unwrap_or(Value::Null);
    let mut pending = Vec::new();
    for key in change.sensitive.iter() {
        if let Some(secret) = key.source.reads() {
            match live.get(secret).and_then(|l| value_from(&key.source, l)) {
                Some(v) => set_value(&mut manifest, &key.key, &v),
                None => pending.push((key.key.clone(), key.source.clone())),
            }
            continue;
        }
        let existing = live.get(&change.address).and_then(|l| live_value(l, &key.key)).map(Sensitive::new);
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
        set_value(&mut manifest, &key.key, &value);
    }
    Ok((manifest, pending))
}

fn set_value(manifest: &mut Value, key: &str, value: &Sensitive) {
    if let Some(data) = manifest.get_mut("stringData").and_then(Value::as_object_mut) {
        data.insert(key.to_owned(), Value::String(value.expose().to_owned()));
    }
}

/// How long a write waits for a registered cluster's token controller to fill the token Secret
/// it depends on (it does so within a second on a healthy cluster).
pub(crate) const TOKEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the pending keys of a job from their Secrets on the cluster, waiting up to
/// [`TOKEN_TIMEOUT`] for each to be filled, into `manifest`.
pub(crate) async fn read_pending<C: mip_core::cluster::Cluster>(
    cluster: &C,
    pending: &[Pending],
    manifest: &mut Value,
) -> Result<(), mip_core::cluster::ClusterError> {
    for (key, source) in pending {
        let Some(secret) = source.reads() else { continue };
        let deadline = tokio::time::Instant::now() + TOKEN_TIMEOUT;
        loop {
            if let Some(v) = cluster.get(secret).await?.as_ref().and_then(|l| value_from(source, l)) {
                set_value(manifest, key, &v);
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let seconds = TOKEN_TIMEOUT.as_secs();
                let message = match source {
                    SensitiveSource::ServiceAccountToken { .. } => format!(
                        "{} (is the cluster's token controller running? kube-controller-manager's \
                         serviceaccount-token controller fills it)",
                        SourceError::TokenNotIssued { secret: secret.to_string(), seconds }
                    ),
                    _ => format!(
                        "`{secret}` has no value for it after {seconds} s (has Argo CD deployed what makes it?)"
                    ),
                };
                return Err(mip_core::cluster::ClusterError::Other {
                    operation: format!("read {source}"),
                    message,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// The value `source` reads from the live Secret it names, `None` while it is not there.
fn value_from(source: &SensitiveSource, secret: &Value) -> Option<Sensitive> {
    match source {
        SensitiveSource::ServiceAccountToken { .. } => token_config(secret),
        SensitiveSource::SecretKey { key, encoded: false, .. } => {
            live_value(secret, key).filter(|v| !v.is_empty()).map(Sensitive::new)
        }
        SensitiveSource::SecretKey { key, encoded: true, .. } => secret
            .pointer(&format!("/data/{}", canonical::pointer_token(key)))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(|v| Sensitive::new(v.chars().filter(|c| !c.is_whitespace()).collect::<String>())),
        _ => None,
    }
}

/// The `config` of an Argo CD cluster Secret from a ServiceAccount token Secret its cluster's
/// token controller filled: the bearer token and the cluster's CA (`ca.crt`, which the API
/// gives base64-encoded, as `caData` wants it). `None` while the token is not issued.
pub(crate) fn token_config(token_secret: &Value) -> Option<Sensitive> {
    let token = live_value(token_secret, "token").filter(|t| !t.is_empty()).map(Sensitive::new)?;
    let ca: Option<String> = token_secret
        .pointer("/data/ca.crt")
        .and_then(Value::as_str)
        .map(|ca| ca.chars().filter(|c| !c.is_whitespace()).collect());
    Some(mip_core::argo_cluster_config(Some(&token), None, ca.as_deref()))
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
