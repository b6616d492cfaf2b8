//! The CLI's one error: an exit status, a one-line message with its hint, and the located
//! diagnostics of an invalid inventory. Every command returns `Result<ExitStatus, CliError>`.

use crate::exit::ExitStatus;
use crate::views;
use mip_core::Diagnostics;
use mip_engine::Class;

/// A command that failed.
#[derive(Debug)]
pub struct CliError {
    /// The exit status.
    pub status: ExitStatus,
    /// One line (empty: nothing more to say, e.g. a closed stdout pipe).
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Located problems of an inventory, shown before the message.
    pub diagnostics: Option<Diagnostics>,
}

impl CliError {
    /// An error with a hint.
    pub fn new(status: ExitStatus, message: impl Into<String>, hint: Option<String>) -> CliError {
        CliError { status, message: message.into(), hint, diagnostics: None }
    }

    /// Shows it on stderr.
    pub fn print(&self) {
        if let Some(d) = &self.diagnostics {
            views::diagnostics(d);
            views::note(&self.message);
            return;
        }
        if self.message.is_empty() {
            return;
        }
        views::error(&self.message, self.hint.as_deref());
    }
}

/// The status of an engine error's class.
pub fn status_of(class: Class) -> ExitStatus {
    match class {
        Class::Error => ExitStatus::Error,
        Class::LockHeld => ExitStatus::LockHeld,
        Class::StalePlan => ExitStatus::StalePlan,
        Class::Safety => ExitStatus::SafetyRefusal,
    }
}

/// The error and its causes, joined on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.last().is_some_and(|last| last.ends_with(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

impl From<mip_engine::Error> for CliError {
    fn from(e: mip_engine::Error) -> CliError {
        let status = status_of(e.class());
        match e {
            mip_engine::Error::Invalid { path, diagnostics } => {
                let message =
                    format!("{} error(s) in `{path}`; nothing was written", diagnostics.error_count());
                CliError { status, message, hint: None, diagnostics: Some(diagnostics) }
            }
            e => CliError::new(status, chain(&e), e.hint()),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> CliError {
        if views::is_broken_pipe(&e) {
            return CliError::new(ExitStatus::Success, "", None);
        }
        let parts: Vec<String> = e.chain().map(ToString::to_string).collect();
        CliError::new(ExitStatus::Error, parts.join(": "), None)
    }
}
