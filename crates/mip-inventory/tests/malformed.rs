//! The malformed-inventory corpus: every file in `tests/malformed/` must fail to parse and
//! report, in one run, each problem its `# expect:` lines name.
//!
//! An expectation line reads
//!
//! ```text
//! # expect: 7:11 unknown-key "unknown key `federations[0].knd`"
//! ```
//!
//! that is `line:column`, the diagnostic code and a substring of the summary (between the
//! first and the last `"`). A diagnostic must match all three. A file may carry several
//! `# expect:` lines; other comment lines (`# note: ...`) are free text.
//!
//! Besides the expectations, every diagnostic must have a location, render on one line that
//! contains `file:line:col`, and every error must carry a hint unless it is in
//! [`NO_HINT_ALLOWED`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The corpus must not shrink below this.
const MIN_CASES: usize = 45;

/// Errors that may come without a hint, as `(code, summary fragment)`; an empty fragment
/// allows every diagnostic with that code.
///
/// Empty: every error of the parser carries a hint. A new hint-less error fails this test.
const NO_HINT_ALLOWED: &[(&str, &str)] = &[];

struct Expect {
    line: u64,
    column: u64,
    code: String,
    summary: String,
    text: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("malformed")
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/malformed exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn parse_expect(line: &str) -> Result<Expect, String> {
    let rest =
        line.trim_start_matches('#').trim().strip_prefix("expect:").ok_or("not an expect line")?.trim();
    let (pos, rest) = rest.split_once(' ').ok_or("expected `line:col code \"summary\"`")?;
    let (l, c) = pos.split_once(':').ok_or("position must be `line:col`")?;
    let line_no = l.parse().map_err(|_| format!("bad line number `{l}`"))?;
    let column = c.parse().map_err(|_| format!("bad column `{c}`"))?;
    let (code, rest) = rest.trim().split_once(' ').ok_or("missing summary substring")?;
    let rest = rest.trim();
    let (first, last) = (rest.find('"'), rest.rfind('"'));
    let summary = match (first, last) {
        (Some(0), Some(end)) if end > 0 => rest[1..end].to_owned(),
        _ => return Err("summary substring must be in double quotes".to_owned()),
    };
    if summary.is_empty() {
        return Err("empty summary substring".to_owned());
    }
    Ok(Expect { line: line_no, column, code: code.to_owned(), summary, text: line.trim().to_owned() })
}

fn hint_optional(code: &str, summary: &str) -> bool {
    NO_HINT_ALLOWED.iter().any(|(c, frag)| *c == code && summary.contains(frag))
}

/// Checks one file; returns the problems found (empty when the file passes).
fn check_file(path: &Path) -> Vec<String> {
    let name = path.file_name().and_then(|n| n.to_str()).expect("UTF-8 file name").to_owned();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("cannot read: {e}")],
    };
    let mut problems = Vec::new();
    let mut expects = Vec::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with("# expect:")) {
        match parse_expect(line) {
            Ok(e) => expects.push(e),
            Err(e) => problems.push(format!("malformed expectation `{}`: {e}", line.trim())),
        }
    }
    if expects.is_empty() && problems.is_empty() {
        problems.push("no `# expect:` line".to_owned());
    }
    let diags = match mip_inventory::parse(&name, &text) {
        Ok(parsed) => {
            let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
            problems.push(format!("parsed without error (warnings: {warnings:?})"));
            return problems;
        }
        Err(diags) => diags,
    };
    for e in &expects {
        let hit = diags.iter().any(|d| {
            d.location.as_ref().is_some_and(|l| l.line == e.line && l.column == e.column)
                && d.code == e.code
                && d.summary.contains(&e.summary)
        });
        if !hit {
            problems.push(format!("unmatched `{}`", e.text));
        }
    }
    // A file that says "exactly these diagnostics" must produce no others (guards against
    // spurious follow-up errors, e.g. a rejected password reported again as missing).
    if text.contains("# (exactly these diagnostics") && diags.iter().count() != expects.len() {
        problems.push(format!(
            "expected exactly {} diagnostic(s), got {}",
            expects.len(),
            diags.iter().count()
        ));
    }
    for d in &diags {
        let rendered = d.to_string();
        if rendered.contains(['\n', '\r']) {
            problems.push(format!("diagnostic renders on several lines: {rendered:?}"));
        }
        match &d.location {
            None => problems.push(format!("diagnostic without a location: {rendered}")),
            Some(l) => {
                if l.file != name {
                    problems.push(format!("diagnostic names file `{}`: {rendered}", l.file));
                }
                let prefix = format!("{name}:{}:{}: ", l.line, l.column);
                if !rendered.starts_with(&prefix) {
                    problems.push(format!("diagnostic does not start with `{prefix}`: {rendered}"));
                }
                let lines = text.lines().count() as u64;
                if l.line == 0 || l.column == 0 || l.line > lines + 1 {
                    problems.push(format!("location outside the file ({lines} lines): {rendered}"));
                }
            }
        }
        if d.severity == mip_core::Severity::Error && d.hint.is_none() && !hint_optional(&d.code, &d.summary)
        {
            problems
                .push(format!("error without a hint (add one, or allow it in NO_HINT_ALLOWED): {rendered}"));
        }
    }
    if !problems.is_empty() {
        let mut all = String::from("diagnostics were:");
        for d in &diags {
            let _ = write!(all, "\n      {d}");
        }
        problems.push(all);
    }
    problems
}

#[test]
fn every_malformed_inventory_reports_its_problems() {
    let files = corpus();
    assert!(
        files.len() >= MIN_CASES,
        "only {} corpus files in {}, want at least {MIN_CASES}",
        files.len(),
        corpus_dir().display()
    );
    let mut report = String::new();
    let mut failed = 0;
    for path in &files {
        let problems = check_file(path);
        if !problems.is_empty() {
            failed += 1;
            let _ = writeln!(
                report,
                "\ntests/malformed/{}:",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            for p in problems {
                let _ = writeln!(report, "  - {p}");
            }
        }
    }
    assert!(failed == 0, "{failed} of {} corpus files failed:{report}", files.len());
}

#[test]
fn expectation_lines_parse() {
    let e = parse_expect("# expect: 7:11 unknown-key \"unknown key `federations[0].knd`\"").expect("valid");
    assert_eq!(
        (e.line, e.column, e.code.as_str(), e.summary.as_str()),
        (7, 11, "unknown-key", "unknown key `federations[0].knd`")
    );
    let e = parse_expect(r#"# expect: 1:2 literal-secret "a "quoted" part""#).expect("valid");
    assert_eq!(e.summary, r#"a "quoted" part"#);
    for bad in [
        "# expect: 7 code \"x\"",
        "# expect: 7:x code \"x\"",
        "# expect: 7:1 code x",
        "# expect: 7:1 code \"\"",
    ] {
        assert!(parse_expect(bad).is_err(), "{bad}");
    }
}
