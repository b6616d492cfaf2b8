//! Mapping `kube` errors to [`ClusterError`].
//!
//! The API server answers failures with a `metav1.Status`; its `code` decides the variant and its
//! `message` is kept (for Secrets with any `Invalid value: "…"` quoted back by the server
//! redacted). Transport failures (refused, timed out, TLS, proxy) become
//! [`ClusterError::Unreachable`]. Request bodies are never part of an error: kube does not put
//! them in its errors, and nothing here formats a manifest.

use std::collections::BTreeSet;

use kube::core::Status;
use mip_core::ObjectRef;
use mip_core::cluster::ClusterError;

use crate::discovery::Resource;

/// What a request was doing, for the error it may produce.
pub(crate) struct Operation<'a> {
    /// The Kubernetes verb: `get`, `list`, `patch`, `delete`.
    pub verb: &'static str,
    /// `group/plural` (or `plural` for the core group), or an API path for discovery.
    pub resource: String,
    /// Namespace of the request, if any.
    pub namespace: Option<&'a str>,
    /// The object, for requests about one object.
    pub addr: Option<&'a ObjectRef>,
    /// Whether this is a server-side apply (a 409 is then a field-manager conflict).
    pub apply: bool,
}

impl<'a> Operation<'a> {
    /// A request about one object.
    pub fn object(verb: &'static str, resource: &Resource, addr: &'a ObjectRef, apply: bool) -> Self {
        Operation {
            verb,
            resource: resource.name(),
            namespace: addr.namespace.as_deref(),
            addr: Some(addr),
            apply,
        }
    }

    fn describe(&self) -> String {
        match (self.addr, self.namespace) {
            (Some(addr), _) => format!("{} `{addr}`", self.verb),
            (None, Some(ns)) => format!("{} `{}` in namespace `{ns}`", self.verb, self.resource),
            (None, None) => format!("{} `{}`", self.verb, self.resource),
        }
    }
}

/// Where the client connects, for [`ClusterError::Unreachable`].
pub(crate) struct Endpoint<'a> {
    /// The API server URL.
    pub server: &'a str,
    /// The proxy in use, without credentials.
    pub proxy: Option<&'a str>,
    /// The connect and read timeout.
    pub timeout: std::time::Duration,
}

/// Maps one failed request.
pub(crate) fn map(error: kube::Error, op: &Operation<'_>, endpoint: &Endpoint<'_>) -> ClusterError {
    match error {
        kube::Error::Api(status) => map_status(&status, op),
        kube::Error::HyperError(source) => unreachable(endpoint, &chain(&source)),
        kube::Error::Service(source) => unreachable(endpoint, &chain(source.as_ref())),
        kube::Error::Auth(source) => ClusterError::Other {
            operation: format!("authenticate to `{}`", endpoint.server),
            message: chain(&source),
        },
        kube::Error::SerdeError(source) => ClusterError::Other {
            operation: op.describe(),
            message: format!("cannot decode the response: {}", chain(&source)),
        },
        other => ClusterError::Other { operation: op.describe(), message: chain(&other) },
    }
}

fn unreachable(endpoint: &Endpoint<'_>, reason: &str) -> ClusterError {
    // hyper's wrapper says nothing the variant does not; the timeout says which limit was hit.
    let reason = reason.strip_prefix("client error (Connect): ").unwrap_or(reason);
    let reason = reason.replace("deadline has elapsed", &format!("no answer within {:?}", endpoint.timeout));
    let reason = match endpoint.proxy {
        Some(proxy) => format!("{reason} (through proxy `{proxy}`)"),
        None => reason,
    };
    ClusterError::Unreachable { server: endpoint.server.to_owned(), reason }
}

fn map_status(status: &Status, op: &Operation<'_>) -> ClusterError {
    let message = match op.addr {
        Some(addr) if addr.is_secret() => redact_values(&status.message),
        _ => status.message.clone(),
    };
    match (status.code, op.addr) {
        (403, _) => ClusterError::Forbidden {
            verb: op.verb.to_owned(),
            resource: op.resource.clone(),
            namespace: op.namespace.map(str::to_owned),
            message,
        },
        (409, Some(addr)) if op.apply => {
            ClusterError::Conflict { addr: addr.clone(), managers: conflicting_managers(status), message }
        }
        // 404 on apply: the namespace does not exist.
        (400 | 404 | 422, Some(addr)) if op.apply => ClusterError::Invalid { addr: addr.clone(), message },
        // A field the schema does not declare fails server-side apply's typed conversion, which
        // the API server reports as an internal error.
        (500, Some(addr)) if op.apply && message.contains("failed to create typed patch object") => {
            ClusterError::Invalid { addr: addr.clone(), message }
        }
        (400 | 422, Some(addr)) => ClusterError::Invalid { addr: addr.clone(), message },
        (code, _) => ClusterError::Other {
            operation: op.describe(),
            message: if message.is_empty() {
                format!("HTTP {code} {}", status.reason)
            } else {
                format!("HTTP {code}: {message}")
            },
        },
    }
}

/// The field managers named by a server-side apply conflict, sorted and deduplicated.
///
/// Each cause reads `conflict with "argocd-controller" using argoproj.io/v1alpha1` (field in
/// `field`); older servers only put the list in the message
/// (`Apply failed with 1 conflict: conflict with "x": .spec.foo`), so both are scanned.
pub(crate) fn conflicting_managers(status: &Status) -> Vec<String> {
    let mut managers = BTreeSet::new();
    let causes = status.details.iter().flat_map(|d| d.causes.iter());
    for text in causes.map(|c| c.message.as_str()).chain([status.message.as_str()]) {
        managers.extend(quoted_after(text, "conflict with \""));
    }
    managers.into_iter().collect()
}

/// Every `"…"`-terminated string that follows `marker` in `text`.
fn quoted_after<'t>(text: &'t str, marker: &str) -> impl Iterator<Item = String> + 't {
    let marker = marker.to_owned();
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find(marker.as_str())? + marker.len();
        let tail = &rest[start..];
        let end = tail.find('"')?;
        rest = &tail[end + 1..];
        Some(tail[..end].to_owned())
    })
}

/// Replaces the values the API server quotes back (`Invalid value: "…"`) with `(redacted)`.
fn redact_values(message: &str) -> String {
    const MARKER: &str = "Invalid value: \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(MARKER) {
        out.push_str(&rest[..start]);
        out.push_str("Invalid value: (redacted)");
        let tail = &rest[start + MARKER.len()..];
        rest = match closing_quote(tail) {
            Some(end) => &tail[end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The index of the first unescaped `"` in a Go-quoted string body.
fn closing_quote(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// An error and its sources on one line, each cause once (many errors both print their source
/// and return it from `source()`).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str, causes: &[&str]) -> Status {
        let causes: Vec<_> = causes
            .iter()
            .map(
                |m| serde_json::json!({"reason": "FieldManagerConflict", "message": m, "field": ".data.key"}),
            )
            .collect();
        let value = serde_json::json!({"code": code, "message": message, "details": {"causes": causes}});
        serde_json::from_value(value).expect("a Status")
    }

    fn op<'a>(addr: &'a ObjectRef, apply: bool) -> Operation<'a> {
        Operation {
            verb: "patch",
            resource: "configmaps".into(),
            namespace: addr.namespace.as_deref(),
            addr: Some(addr),
            apply,
        }
    }

    #[test]
    fn conflict_managers_come_from_causes_and_message() {
        let s = status(
            409,
            "Apply failed with 2 conflicts: conflicts with \"other\":\n- .data.a\nconflicts with \"argocd-controller\" using v1:\n- .data.b",
            &["conflict with \"other\": .data.a", "conflict with \"argocd-controller\" using v1"],
        );
        assert_eq!(conflicting_managers(&s), ["argocd-controller", "other"]);
        let only_message = status(409, "Apply failed with 1 conflict: conflict with \"x\": .spec.foo", &[]);
        assert_eq!(conflicting_managers(&only_message), ["x"]);
    }

    #[test]
    fn status_codes_pick_the_variant() {
        let addr = ObjectRef::new("v1", "ConfigMap", Some("ns"), "cm");
        let conflict =
            map_status(&status(409, "Apply failed", &["conflict with \"other\""]), &op(&addr, true));
        assert!(
            matches!(&conflict, ClusterError::Conflict { managers, .. } if managers == &["other"]),
            "{conflict:?}"
        );
        let invalid = map_status(&status(422, "spec.destination: Required value", &[]), &op(&addr, true));
        assert!(matches!(invalid, ClusterError::Invalid { .. }), "{invalid:?}");
        let forbidden = map_status(&status(403, "nope", &[]), &op(&addr, true));
        assert_eq!(forbidden.to_string(), "forbidden: cannot `patch` `configmaps` in namespace `ns`: nope");
        let undeclared = "failed to create typed patch object (ns/cm; /v1, Kind=ConfigMap): .spec: field not declared in schema";
        let invalid = map_status(&status(500, undeclared, &[]), &op(&addr, true));
        assert!(matches!(invalid, ClusterError::Invalid { .. }), "{invalid:?}");
        let other = map_status(&status(409, "already exists", &[]), &op(&addr, false));
        assert!(matches!(other, ClusterError::Other { .. }), "{other:?}");
    }

    #[test]
    fn secret_values_quoted_by_the_server_are_redacted() {
        let addr = ObjectRef::new("v1", "Secret", Some("ns"), "s");
        let s = status(
            422,
            r#"Secret "s" is invalid: [data[k]: Invalid value: "hunter\"2": bad, type: Invalid value: "x": y]"#,
            &[],
        );
        let error = map_status(&s, &op(&addr, true));
        let text = error.to_string();
        assert!(!text.contains("hunter"), "{text}");
        assert!(
            text.contains("data[k]: Invalid value: (redacted): bad, type: Invalid value: (redacted): y]"),
            "{text}"
        );
    }

    #[test]
    fn chain_prints_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = kube::Error::ReadEvents(io);
        assert_eq!(chain(&outer), "Error reading events stream: connection refused");
    }
}
