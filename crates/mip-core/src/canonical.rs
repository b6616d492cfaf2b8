//! Canonical JSON and digests.
//!
//! A plan's hash, an inventory digest and an object fingerprint must not depend on map
//! iteration order or formatting. [`to_canonical_bytes`] writes JSON with object keys sorted
//! recursively and no insignificant whitespace, so equal values always give equal bytes.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Canonical JSON bytes of any serializable value (keys sorted, compact).
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let v = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_canonical(&v, &mut out)?;
    Ok(out)
}

/// Canonical form of a JSON value: the same value with every object's keys sorted.
pub fn canonicalize(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonicalize(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonicalize).collect()),
        other => other.clone(),
    }
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                write_canonical(&m[k], out)?;
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

/// A key as one token of a JSON pointer (RFC 6901: `~` as `~0`, `/` as `~1`), e.g. a label
/// name such as `app.kubernetes.io/managed-by` under `/metadata/labels/`.
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Lowercase hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A salted, truncated hash of a secret value, safe to store and show: `sha256:` and 16 hex
/// digits of sha256(salt ‖ 0 ‖ context ‖ 0 ‖ value). The salt (the state's lineage) makes the
/// hash useless for guessing short values across stores; 64 bits are plenty to notice a change.
pub fn salted_hash(salt: &str, context: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(context.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    let full = hex::encode(h.finalize());
    format!("sha256:{}", &full[..16])
}

/// `sha256:<hex>` of a value's canonical JSON.
pub fn digest<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    Ok(format!("sha256:{}", sha256_hex(&to_canonical_bytes(value)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_bytes() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"c": 3, "d": 2}]}, "b": 1});
        assert_eq!(to_canonical_bytes(&a).expect("test value"), to_canonical_bytes(&b).expect("test value"));
        assert_eq!(
            String::from_utf8(to_canonical_bytes(&a).expect("test value")).expect("test value"),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
        assert_eq!(digest(&a).expect("test value"), digest(&b).expect("test value"));
        assert_eq!(canonicalize(&b), a);
    }
}
