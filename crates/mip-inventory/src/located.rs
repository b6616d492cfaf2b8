//! Values as the user wrote them, with where: the leaf types every layer of the crate uses
//! (re-exported by [`crate::model`]).

use mip_core::{Location, SensitiveSource};
use std::fmt;

/// A value together with where the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub at: Location,
}

impl<T: fmt::Display> fmt::Display for Located<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// A reference to a sensitive value: where it comes from, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The source.
    pub source: SensitiveSource,
    /// Where the reference was written.
    pub at: Location,
}
