//! `mip destroy`: everything mip made and still labels, deleted in reverse dependency order
//! after confirmation; the `default` project only forgotten. With `--revision BRANCH`, only that
//! branch deployment's root Applications (a branch teardown), never what main applied.

use super::apply::ask;
use super::{Env, open, record_history, record_run};
use crate::Error;
use crate::live::{ApplyOpts, ApplyOutcome, Interrupt, destroy_plan, kept_protected, read_live};
use crate::load::LoadOptions;
use crate::seams::{Confirm, Connector, Event, Notice, Operation, SecretResolver, SourceError};
use mip_core::{ObjectRef, Sensitive, SensitiveSource};
use mip_state::{Outcome, Record};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// What to destroy.
#[derive(Debug, Clone)]
pub struct DestroyRequest {
    /// The inventory.
    pub load: LoadOptions,
    /// Also namespaces, AppProjects and CRDs.
    pub include_protected: bool,
    /// How long the whole destroy may wait for deleted objects to be gone (finalizers run
    /// first: Argo CD's deletes what a root Application deployed); an object still there then
    /// is a failure naming what holds it, and what depends on it is not deleted.
    pub wait_timeout: Duration,
    /// Stops the deletions between writes when triggered (a signal).
    pub interrupt: Interrupt,
}

/// What a destroy did.
#[derive(Debug)]
pub enum Destroyed {
    /// Nothing of mip's is left to delete; the state forgot this many objects already gone
    /// (deleted by someone else, or by a destroy that was stopped while it waited for them).
    Nothing {
        /// Records of objects no longer in the cluster, dropped from the state.
        forgot: usize,
    },
    /// The deletions ran.
    Ran(ApplyOutcome),
}

/// Deletions need no secret value.
pub(crate) struct NoSecrets;
impl SecretResolver for NoSecrets {
    fn resolve(&self, _: &SensitiveSource) -> Result<Sensitive, SourceError> {
        Err(SourceError::Generated)
    }
}

/// The root Applications of the loaded revision (mip writes them; Argo CD generates the rest).
fn branch_roots(loaded: &crate::load::Loaded) -> BTreeSet<ObjectRef> {
    loaded
        .desired
        .mip_owned()
        .filter(|o| o.addr.is(mip_core::Kind::Application))
        .map(|o| (*o.addr).clone())
        .collect()
}

/// Destroys (see the [module docs](self)).
///
/// # Errors
/// Inventory, cluster and state errors; [`Error::Declined`] or [`Error::NoConfirmation`].
pub async fn destroy<K: Connector>(
    env: &Env<'_, K>,
    req: &DestroyRequest,
    confirm: &dyn Confirm,
) -> Result<Destroyed, Error> {
    let loaded = env.load(&req.load)?;
    let cluster = Arc::new(env.connect(&loaded).await?);
    let body = async {
        // Read again under the lock: the copy `connect` peeked at is not kept.
        drop(env.take_peeked());
        let backend = env.backend(&loaded, Some(cluster.as_ref()))?;
        let store = open(backend.as_ref(), Operation::Destroy, env.state.lock_timeout).await?;
        let snapshot = store.snapshot()?;
        let addrs: BTreeSet<ObjectRef> = snapshot.managed.keys().cloned().collect();
        let live = read_live(cluster.as_ref(), &addrs).await?;
        let mut plan = destroy_plan(&loaded, &snapshot, &live, req.include_protected);
        let branch = req.load.revision.as_deref().is_some_and(|r| r != loaded.inventory.revision.value);
        if branch {
            // `--revision BRANCH`: a branch deployment shares everything with main but its root
            // Applications; only those go (their finalizer makes Argo CD delete what they
            // generated first), and what main applied stays.
            let roots = branch_roots(&loaded);
            plan.changes.retain(|c| roots.contains(&c.address));
            plan.summary.delete = plan.changes.len();
        } else {
            for a in kept_protected(&snapshot, &live, req.include_protected) {
                env.hook.event(Event::Notice(Notice::KeptProtected(a.clone())));
            }
        }
        env.hook.plan(&plan, Operation::Destroy);
        // What the state holds but the cluster no longer has (deleted by someone else, or
        // gone after a destroy stopped waiting for it) is only forgotten.
        let gone: Vec<Record> = if branch {
            Vec::new()
        } else {
            addrs
                .iter()
                .filter(|a| !mip_plan::adopts(a) && !live.contains_key(*a))
                .map(|a| (a.clone(), None))
                .collect()
        };
        let forgot = gone.len();
        if plan.changes.is_empty() {
            if forgot > 0 {
                store.record_many(gone)?;
                let summary = format!("0 deleted, {forgot} already gone forgotten");
                record_history(store.as_ref(), Operation::Destroy, Outcome::Completed, summary)?;
            }
            return Ok(Destroyed::Nothing { forgot });
        }
        let question = format!(
            "Destroy {} object(s)? Argo CD will then delete what the root Applications generated, workloads and volumes included.",
            plan.changes.len()
        );
        ask(confirm, Operation::Destroy, &question)?;
        let opts = ApplyOpts {
            wait_timeout: Duration::ZERO,
            deletion_timeout: req.wait_timeout,
            deadline: Some(tokio::time::Instant::now() + req.wait_timeout),
            interrupt: req.interrupt.clone(),
            ..ApplyOpts::default()
        };
        let before = snapshot.serial;
        let run = crate::live::apply(
            Arc::clone(&cluster),
            Arc::clone(&store),
            &plan,
            &NoSecrets,
            &BTreeSet::new(),
            &opts,
            Arc::clone(&env.hook),
        )
        .await
        .and_then(|mut outcome| {
            // Objects mip adopted from their creator (the `default` project) are only
            // forgotten, once everything else is gone.
            let forget: Vec<Record> =
                snapshot.managed.keys().filter(|a| mip_plan::adopts(a)).map(|a| (a.clone(), None)).collect();
            if !forget.is_empty() && outcome.complete() {
                outcome.serial = store.record_many(forget)?;
            }
            if !gone.is_empty() {
                outcome.serial = store.record_many(gone)?;
            }
            Ok(outcome)
        });
        let done = if forgot > 0 {
            format!("deleted ({forgot} already gone forgotten)")
        } else {
            "deleted".to_owned()
        };
        let outcome = record_run(store.as_ref(), Operation::Destroy, before, &done, run)?;
        Ok(Destroyed::Ran(outcome))
    };
    env.counted(&cluster, body).await
}
