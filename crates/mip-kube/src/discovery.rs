//! Lazy discovery, one request per group-version.
//!
//! A full discovery of a cluster with many CRDs costs dozens of requests, and mip touches a
//! handful of kinds in three or four group-versions. So a kind is resolved by fetching only its
//! group-version's resource list (`/api/v1` or `/apis/<group>/<version>`), which is then cached.
//! A kind missing from a cached list (or a group-version that was not served) is looked up again
//! on the next call, because mip may have just applied the CRD that serves it; a kind that stays
//! unknown therefore costs one request per call, which only happens on an error path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::core::ApiResource;

/// One served kind.
#[derive(Clone)]
pub(crate) struct Resource {
    /// Group, version, kind and plural.
    pub api: ApiResource,
    /// Whether objects of the kind live in a namespace.
    pub namespaced: bool,
}

impl Resource {
    /// `group/plural`, or `plural` for the core group, as in RBAC messages.
    pub fn name(&self) -> String {
        if self.api.group.is_empty() {
            self.api.plural.clone()
        } else {
            format!("{}/{}", self.api.group, self.api.plural)
        }
    }
}

/// Kinds of one group-version, by kind name.
pub(crate) type Kinds = BTreeMap<String, Resource>;

/// The kinds of one group-version once fetched. Its async lock makes concurrent resolutions of
/// the same group-version wait for one request instead of each sending theirs.
pub(crate) type Slot = Arc<tokio::sync::Mutex<Option<Arc<Kinds>>>>;

/// The discovery cache: one [`Slot`] per `apiVersion`.
#[derive(Default)]
pub(crate) struct Cache {
    slots: Mutex<BTreeMap<String, Slot>>,
}

impl Cache {
    /// The slot of a group-version (created empty on first use).
    pub fn slot(&self, api_version: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(api_version.to_owned()).or_default())
    }
}

/// Builds the kinds of a group-version from its resource list (`APIResourceList.resources`),
/// leaving out subresources (`applications/status`).
pub(crate) fn kinds<'a>(
    group: &str,
    version: &str,
    resources: impl IntoIterator<Item = (&'a str, &'a str, bool)>,
) -> Kinds {
    let api_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    resources
        .into_iter()
        .filter(|(plural, _, _)| !plural.contains('/'))
        .map(|(plural, kind, namespaced)| {
            let api = ApiResource {
                group: group.to_owned(),
                version: version.to_owned(),
                api_version: api_version.clone(),
                kind: kind.to_owned(),
                plural: plural.to_owned(),
            };
            (kind.to_owned(), Resource { api, namespaced })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subresources_are_left_out() {
        let k = kinds(
            "argoproj.io",
            "v1alpha1",
            [("applications", "Application", true), ("applications/status", "Application", true)],
        );
        assert_eq!(k.len(), 1);
        let app = &k["Application"];
        assert_eq!(app.api.plural, "applications");
        assert_eq!(app.api.api_version, "argoproj.io/v1alpha1");
        assert_eq!(app.name(), "argoproj.io/applications");
        assert!(app.namespaced);
        assert_eq!(kinds("", "v1", [("secrets", "Secret", true)])["Secret"].name(), "secrets");
    }
}
