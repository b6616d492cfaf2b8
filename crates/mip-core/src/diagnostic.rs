use serde::{Deserialize, Serialize};
use std::fmt;

/// A position in a user-written file, 1-based, character columns.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Location {
    /// The file as the user named it (relative paths stay relative).
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// How bad a diagnostic is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Stops the command (exit 1).
    Error,
    /// Shown, does not stop the command.
    Warning,
}

/// One problem in user input: where, what, and how to fix it.
///
/// Rendered on one line: `file:line:col: error: summary (hint: ...)`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Diagnostic {
    /// Where the problem is; `None` when it has no single place (rare).
    pub location: Option<Location>,
    /// Error or warning.
    pub severity: Severity,
    /// Stable machine-readable code, e.g. `unknown-key`.
    pub code: String,
    /// One-line description, lowercase, user values in backticks.
    pub summary: String,
    /// How to fix it, if known.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at a location.
    pub fn error(location: Option<Location>, code: &str, summary: impl Into<String>) -> Self {
        Diagnostic {
            location,
            severity: Severity::Error,
            code: code.to_owned(),
            summary: summary.into(),
            hint: None,
        }
    }

    /// A warning at a location.
    pub fn warning(location: Option<Location>, code: &str, summary: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(location, code, summary) }
    }

    /// Adds a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]: ", self.code)?;
        one_line(f, &self.summary)?;
        if let Some(h) = &self.hint {
            f.write_str(" (hint: ")?;
            one_line(f, h)?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Writes text with its control characters escaped (`\n`, `\r`, `\u{1b}`), so that a user
/// value quoted in a diagnostic (a YAML scalar may span lines) keeps it on one line.
fn one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_debug())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

/// An ordered collection of diagnostics: stages append and keep going, so the user sees
/// every problem in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Appends all of another list.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Whether any is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.severity == Severity::Error).count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorted by location then text (deterministic output), duplicates removed.
    pub fn sorted(mut self) -> Self {
        self.0.sort_by(|a, b| {
            let ka = a.location.as_ref().map(|l| (&l.file, l.line, l.column));
            let kb = b.location.as_ref().map(|l| (&l.file, l.line, l.column));
            ka.cmp(&kb).then_with(|| a.cmp(b))
        });
        self.0.dedup();
        self
    }

    /// Iterates in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// The diagnostics as a slice.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.0
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Diagnostic> for Diagnostics {
    fn from_iter<T: IntoIterator<Item = Diagnostic>>(iter: T) -> Self {
        Diagnostics(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `inventory` fuzz target: a plain YAML scalar spanning lines, quoted in an
    /// `invalid-url` diagnostic, broke the one-line rendering.
    #[test]
    fn control_characters_in_values_stay_on_one_line() {
        let at = Location { file: "mip.yaml".into(), line: 9, column: 10 };
        let d = Diagnostic::error(Some(at), "invalid-url", "`url`: `https://a\r\n b` is not a Git URL")
            .with_hint("not `x\ty`");
        assert_eq!(
            d.to_string(),
            "mip.yaml:9:10: error[invalid-url]: `url`: `https://a\\r\\n b` is not a Git URL (hint: not `x\\ty`)"
        );
    }
}
