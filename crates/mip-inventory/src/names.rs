//! Checks of names, URLs, revisions and paths; each reports at the value's location.

pub use crate::spelling::closest;

use crate::decoder::Decoder;
use crate::located::Located;

/// The longest lowered federation name: derived names such as the label value
/// `argo-project-<name>-hybrid` (13 + 7 characters) must stay within 63 characters.
pub const MAX_FEDERATION_NAME: usize = 43;

/// Whether `s` is a valid environment variable name.
pub fn is_env_var(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `s` is an RFC 1123 label (Kubernetes namespace and most names).
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Reports a value that is not a DNS-1123 label.
pub(crate) fn check_label(d: &mut Decoder<'_>, v: &Located<String>, path: &str) {
    if !is_dns1123_label(&v.value) {
        let hint = if v.value.len() > 63 {
            "at most 63 characters".to_owned()
        } else if v.value.chars().any(|c| c.is_ascii_uppercase()) {
            format!("Kubernetes names are lowercase: `{}`", v.value.to_lowercase())
        } else {
            "lowercase letters, digits and `-`, starting and ending with a letter or digit".to_owned()
        };
        d.error(
            v.at.clone(),
            "invalid-name",
            format!("`{path}`: `{}` is not a valid Kubernetes name (RFC 1123 label)", v.value),
            Some(hint),
        );
    }
}

/// Federation names are Git directory names that lower to a DNS-1123 label.
pub(crate) fn check_federation_name(d: &mut Decoder<'_>, v: &Located<String>, path: &str) {
    let lowered = v.value.to_lowercase();
    let charset_ok = v.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if charset_ok
        && lowered.len() > MAX_FEDERATION_NAME
        && !lowered.starts_with('-')
        && !lowered.ends_with('-')
    {
        d.error(
            v.at.clone(),
            "invalid-name",
            format!("`{path}`: `{}` is {} characters, at most {MAX_FEDERATION_NAME} are allowed", v.value, lowered.len()),
            Some("Argo CD label values derived from it (`argo-project-<name>-hybrid`) must fit in 63 characters".to_owned()),
        );
    } else if !charset_ok || !is_dns1123_label(&lowered) {
        d.error(
            v.at.clone(),
            "invalid-name",
            format!("`{path}`: `{}` does not lower to a valid Kubernetes name", v.value),
            Some(
                "letters, digits and `-`, e.g. `federation-A` (Kubernetes objects use `federation-a`)"
                    .to_owned(),
            ),
        );
    } else if lowered.len() > MAX_FEDERATION_NAME {
        d.error(
            v.at.clone(),
            "invalid-name",
            format!("`{path}`: `{}` is {} characters, at most {MAX_FEDERATION_NAME} are allowed", v.value, lowered.len()),
            Some("Argo CD label values derived from it (`argo-project-<name>-hybrid`) must fit in 63 characters".to_owned()),
        );
    }
}

/// Whether `s` is a Git (or Helm) repository URL: `https://`, `ssh://` or `git@host:path`, and
/// with `plain_http` also `http://` (a site's own mirror server).
pub(crate) fn is_repo_url(s: &str, plain_http: bool) -> bool {
    !s.contains(char::is_whitespace)
        && (s.strip_prefix("https://").is_some_and(has_host)
            || (plain_http && s.strip_prefix("http://").is_some_and(has_host))
            || s.strip_prefix("ssh://").is_some_and(has_host)
            || s.strip_prefix("git@")
                .is_some_and(|r| r.split_once(':').is_some_and(|(h, p)| !h.is_empty() && !p.is_empty())))
}

fn has_host(rest: &str) -> bool {
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !host.starts_with(':')
}

/// API server URLs: `https://host[:port][/path]`.
pub(crate) fn check_https_url(d: &mut Decoder<'_>, v: &Located<String>, path: &str) {
    let ok = v.value.strip_prefix("https://").is_some_and(has_host) && !v.value.contains(char::is_whitespace);
    if !ok {
        d.error(
            v.at.clone(),
            "invalid-url",
            format!("`{path}`: `{}` is not an `https://` URL", v.value),
            Some("e.g. `https://api.example.org:6443`".to_owned()),
        );
    }
}

/// Git URLs: `https://…`, `ssh://…` or scp-like `git@host:org/repo.git`.
pub(crate) fn check_repo_url(d: &mut Decoder<'_>, v: &Located<String>, path: &str) {
    if !is_repo_url(&v.value, false) {
        d.error(
            v.at.clone(),
            "invalid-url",
            format!("`{path}`: `{}` is not a Git URL", v.value),
            Some("use `https://host/org/repo.git` or `git@host:org/repo.git`".to_owned()),
        );
    }
}

/// Whether `s` can name a Git branch, tag or commit: a practical subset of
/// `git check-ref-format` (no spaces or control characters, no `..`, `@{`, `~^:?*[\\`, no
/// leading `-` or `/`, no trailing `/`, `.` or `.lock`). The one check of the
/// inventory's revisions and of `--revision`.
pub fn is_valid_revision(s: &str) -> bool {
    let bad_char = s.chars().find(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(*c));
    !(bad_char.is_some()
        || s.contains("..")
        || s.contains("@{")
        || s.starts_with('-')
        || s.starts_with('/')
        || s.ends_with('/')
        || s.ends_with('.')
        || s.ends_with(".lock"))
}

/// Git revision names, as [`is_valid_revision`] checks them.
pub(crate) fn check_revision(d: &mut Decoder<'_>, v: &Located<String>, path: &str) {
    let s = &v.value;
    let bad = !is_valid_revision(s);
    if bad {
        d.error(
            v.at.clone(),
            "invalid-revision",
            format!("`{path}`: `{s}` is not a valid Git branch, tag or commit"),
            Some("no spaces, `..`, `~^:?*[\\`, and no leading `-` or trailing `/`".to_owned()),
        );
    }
}

/// Paths inside the GitOps repository must be relative.
pub(crate) fn check_relative_path(d: &mut Decoder<'_>, v: &Located<String>, path: &str) {
    if v.value.starts_with('/') {
        d.error(
            v.at.clone(),
            "invalid-path",
            format!(
                "`{path}`: `{}` is absolute; paths are relative to the federation directory in Git",
                v.value
            ),
            Some("e.g. `customizations/values.yaml`".to_owned()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("federation", &["federations", "clusters"]), Some("federations"));
        assert_eq!(closest("ArgoCD", &["argocd", "revision"]), Some("argocd"));
        assert_eq!(closest("zzzzzz", &["argocd", "revision"]), None);
    }

    #[test]
    fn labels() {
        assert!(is_dns1123_label("federation-a"));
        for bad in ["Federation-a", "-a", "a-", "a_b", "", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }
}
