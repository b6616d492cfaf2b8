//! Repository URLs as Argo CD compares them (`util/git.NormalizeGitURL`).
//!
//! Argo CD lowercases and trims the URL, rewrites the scp form `user@host:path` to
//! `user@host/path`, drops one `.git` suffix, and sends the result through Go's `net/url`
//! round trip, which gives `""` for a URL Go rejects and percent-encodes a path that is not
//! valid as written. Only the rules that change real repository URLs or patterns are modelled
//! here: control characters, bad `%` escapes, a non-numeric port, characters a host or user
//! may not hold (all rejected), and the re-encoding of a path holding characters such as
//! `{`, `}` or a space (which is why Argo CD never honours `{a,b}` in a repository's path).
//! A trailing `/` is kept, as Argo CD keeps it.

/// The normalised form of a repository URL or pattern; `""` when Go's URL parser rejects it
/// (two rejected URLs then compare equal, as they do in Argo CD).
pub fn normalize_repo_url(url: &str) -> String {
    let mut repo = url.trim().to_lowercase();
    if is_ssh_url(&repo) && !repo.starts_with("ssh://") {
        repo = format!("ssh://{}", repo.replacen(':', "/", 1));
    }
    let repo = repo.strip_suffix(".git").unwrap_or(&repo);
    let Some(round_trip) = go_url_round_trip(repo) else { return String::new() };
    round_trip.strip_prefix("ssh://").map_or_else(|| round_trip.clone(), str::to_owned)
}

/// `^(ssh://)?([^/:]*?)@[^@]+$`: a user without `/` or `:` before the last `@`.
fn is_ssh_url(url: &str) -> bool {
    let rest = url.strip_prefix("ssh://").unwrap_or(url);
    rest.rfind('@').is_some_and(|at| !rest[..at].contains(['/', ':']) && at + 1 < rest.len())
}

/// What Go's `url.Parse(u).String()` gives, or `None` if it fails to parse.
fn go_url_round_trip(u: &str) -> Option<String> {
    if u.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return None;
    }
    let (before_fragment, fragment) = u.split_once('#').map_or((u, None), |(a, f)| (a, Some(f)));
    let (body, query) =
        before_fragment.split_once('?').map_or((before_fragment, None), |(b, q)| (b, Some(q)));
    let (prefix, path) = match body.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => {
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            if !valid_authority(authority) {
                return None;
            }
            (&body[..scheme.len() + 3 + authority.len()], path)
        }
        _ => ("", body),
    };
    let mut out = format!("{prefix}{}", escaped_path(path)?);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

fn is_scheme(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn valid_authority(authority: &str) -> bool {
    let (user, host) = authority.rsplit_once('@').map_or(("", authority), |(u, h)| (u, h));
    let user_ok = user.chars().all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c));
    let port_ok = match host.rfind(':') {
        Some(i) if !host.starts_with('[') => host[i + 1..].bytes().all(|b| b.is_ascii_digit()),
        _ => true,
    };
    let host_ok = host
        .chars()
        .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:[]<>\"%".contains(c));
    user_ok && port_ok && host_ok && unescape(user).is_some() && unescape(host).is_some()
}

/// Go's `%XX` decoding; `None` on a malformed escape.
fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Bytes Go leaves alone when it escapes a path (`shouldEscape(c, encodePath)` is false).
fn path_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b)
}

/// Go's `URL.EscapedPath`: the path as written when that is valid, else re-escaped.
fn escaped_path(path: &str) -> Option<String> {
    let raw = unescape(path)?;
    let valid_as_written = path.bytes().all(|b| path_safe(b) || b"!'()*[]%".contains(&b));
    if valid_as_written || path == "*" {
        return Some(path.to_owned());
    }
    Some(
        raw.iter()
            .map(|&b| if path_safe(b) { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::normalize_repo_url as n;

    /// argo-cd `util/git/git_test.go` `TestSameURL`: each pair normalises to the same URL.
    #[test]
    fn same_url_pairs() {
        let pairs = [
            ("git@GITHUB.com:argoproj/test", "git@github.com:argoproj/test.git"),
            ("git@GITHUB.com:argoproj/test.git", "git@github.com:argoproj/test.git"),
            ("git@GITHUB.com:test", "git@github.com:test.git"),
            ("https://GITHUB.com/argoproj/test", "https://github.com/argoproj/test.git"),
            ("https://github.com/FOO", "https://github.com/foo"),
            ("https://github.com:4443/TEST", "https://github.com:4443/TEST.git"),
            ("ssh://git@GITHUB.com/argoproj/test", "git@github.com:argoproj/test.git"),
            ("ssh://git@github.com/test", "git@github.com:test.git"),
            (" https://github.com/argoproj/test ", "https://github.com/argoproj/test.git"),
            ("\thttps://github.com/argoproj/test\n", "https://github.com/argoproj/test.git"),
            (
                "https://1234.visualstudio.com/myproj/_git/myrepo",
                "https://1234.visualstudio.com/myproj/_git/myrepo",
            ),
        ];
        for (a, b) in pairs {
            assert_eq!(n(a), n(b), "{a:?} vs {b:?}");
            assert!(!n(a).is_empty(), "{a:?}");
        }
    }

    #[test]
    fn forms() {
        assert_eq!(n("git@github.com:argoproj/test.git"), "git@github.com/argoproj/test");
        assert_eq!(n("https://github.com/argoproj/*"), "https://github.com/argoproj/*");
        assert_eq!(n("*"), "*");
        // A trailing slash is kept, and then `.git` is not a suffix.
        assert_eq!(n("https://github.com/a/b.git/"), "https://github.com/a/b.git/");
        // Go rejects the port `argoproj` (the scp form only applies without `ssh://`).
        assert_eq!(n("ssh://git@GITHUB.com:argoproj/test"), "");
        assert_eq!(n("https://github.com/a%zz"), "");
        // Braces make the path invalid as written: Go escapes all of it, `*` included.
        assert_eq!(n("https://github.com/{a,b}/*"), "https://github.com/%7Ba,b%7D/%2A");
    }
}
