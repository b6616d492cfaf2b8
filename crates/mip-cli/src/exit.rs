//! The one exit-code table of mip, shared by every command.

use std::process::ExitCode;

/// How a command ended. Documented in `mip help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success; with `--detailed-exitcode`, success and no changes.
    Success = 0,
    /// 1: any error: bad input, usage, IO, API server.
    Error = 1,
    /// 2: the plan has changes (`--detailed-exitcode`) or drift was found.
    Changes = 2,
    /// 3: the state lock is held by someone else.
    LockHeld = 3,
    /// 4: the saved plan is stale, for another state, or was tampered with.
    StalePlan = 4,
    /// 5: apply stopped part-way; the state records what was done.
    PartialApply = 5,
    /// 6: refused for safety (wrong cluster, destructive change not confirmed).
    SafetyRefusal = 6,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(s as u8)
    }
}

/// The table as printed after `mip --help`.
pub const TABLE: &str = "\
Exit codes (every command):
  0  success; with --detailed-exitcode: no changes
  1  error (bad input, usage, IO, API server)
  2  changes present (--detailed-exitcode) or drift found
  3  state lock held by another run
  4  saved plan stale, for another state, or tampered with
  5  partial apply (the state records what was done)
  6  safety refusal (wrong cluster, unconfirmed destructive change)";
