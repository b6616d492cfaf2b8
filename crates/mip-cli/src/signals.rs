//! SIGINT and SIGTERM (Ctrl-C, a cancelled CI job, a pod being stopped) during `apply` and
//! `destroy`.
//!
//! The first signal triggers the engine's [`Interrupt`]: no new write starts, the writes in
//! flight finish and are recorded, the rest is skipped, and the command exits 5 saying what was
//! done and what was not. Where nothing is being written (planning, the wait for Argo CD, whose
//! writes are all recorded already) the operation is stopped at once; writes still in flight
//! after a grace period (the request timeout plus a margin) are abandoned, as a crash would
//! leave them: the state lacks them and the next plan shows them again. Stopping drops the
//! state store, which releases its lock (the local file lock, or the cluster's Lease), so the
//! next run starts at once. A second signal exits at once (5), leaving a cluster Lease to
//! expire after its TTL.

use crate::env::Progress;
use crate::views;
use mip_core::Diagnostics;
use mip_core::ObjectRef;
use mip_core::cluster::RequestCounts;
use mip_engine::ops::Interrupt;
use mip_engine::ops::Plan;
use mip_engine::seams::{Event, Hook, Operation};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Margin on top of the request timeout for the writes in flight to finish and be recorded.
const MARGIN: Duration = Duration::from_secs(5);

/// How long a stopping operation gets to return by itself once no write is in flight.
const SETTLE: Duration = Duration::from_secs(2);

/// How long a stop may take where nothing is written (a blocking prompt) before mip exits.
const BLOCKED: Duration = Duration::from_secs(4);

/// What the operation has done so far, as its progress events tell (the progress hook, with a
/// record of the phase).
pub struct Tracked {
    inner: Arc<Progress>,
    /// Between `Writing` and the first `Waiting` (or `Finished`): writes may be in flight.
    writing: AtomicBool,
    /// Writes done and recorded.
    done: Mutex<Vec<ObjectRef>>,
    /// Argo CD objects still missing at the last look (`None`: not waiting).
    waiting: Mutex<Option<usize>>,
    /// Writes planned.
    planned: AtomicUsize,
}

impl Tracked {
    /// Around the progress hook.
    pub fn new(inner: Arc<Progress>) -> Tracked {
        Tracked {
            inner,
            writing: AtomicBool::new(false),
            done: Mutex::new(Vec::new()),
            waiting: Mutex::new(None),
            planned: AtomicUsize::new(0),
        }
    }

    fn writing(&self) -> bool {
        self.writing.load(Ordering::SeqCst)
    }
}

impl Hook for Tracked {
    fn event(&self, e: Event) {
        match &e {
            Event::Writing(n) => {
                self.planned.store(*n, Ordering::SeqCst);
                self.writing.store(true, Ordering::SeqCst);
            }
            Event::Done(a, _) => self.done.lock().unwrap_or_else(PoisonError::into_inner).push(a.clone()),
            Event::Waiting(n) => {
                self.writing.store(false, Ordering::SeqCst);
                *self.waiting.lock().unwrap_or_else(PoisonError::into_inner) = Some(*n);
            }
            Event::Finished => self.writing.store(false, Ordering::SeqCst),
            _ => {}
        }
        self.inner.event(e);
    }

    fn warnings(&self, d: &Diagnostics) {
        self.inner.warnings(d);
    }

    fn plan(&self, plan: &Plan, operation: Operation) {
        self.inner.plan(plan, operation);
    }

    fn requests(&self, counts: RequestCounts) {
        self.inner.requests(counts);
    }
}

/// How a guarded operation ended.
pub enum Ended<T> {
    /// It returned (interrupted or not: see its outcome).
    Returned(T),
    /// A signal stopped it where nothing was being written, or after the grace period.
    Stopped,
}

/// The name of the signal received, once one was.
#[derive(Default, Clone)]
pub struct Received(Arc<Mutex<Option<&'static str>>>);

impl Received {
    /// `SIGINT` or `SIGTERM`, once received.
    pub fn name(&self) -> Option<&'static str> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `op` (an apply or a destroy) on `runtime` with SIGINT and SIGTERM handled as the
/// [module docs](self) say. `grace` bounds the wait for the writes in flight.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn guard<T>(
    runtime: &tokio::runtime::Runtime,
    interrupt: &Interrupt,
    tracked: &Arc<Tracked>,
    grace: Duration,
    op: impl Future<Output = T>,
) -> anyhow::Result<(Ended<T>, Received)> {
    use anyhow::Context as _;
    use tokio::signal::unix::{SignalKind, signal};
    let received = Received::default();
    let (mut int, mut term) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
        })
        .context("failed to install the SIGINT and SIGTERM handlers")?;
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let listener = {
        let interrupt = interrupt.clone();
        let tracked = Arc::clone(tracked);
        let received = received.clone();
        runtime.spawn(async move {
            let first = tokio::select! { _ = int.recv() => "SIGINT", _ = term.recv() => "SIGTERM" };
            *received.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(first);
            views::note(&format!(
                "{first}: stopping: no new write starts, the writes in flight finish and are recorded (a second signal exits at once)"
            ));
            interrupt.trigger();
            let _ = tx.send(true);
            // A blocking step (the confirmation prompt) cannot be stopped between awaits: bound
            // the whole stop, by the grace period while writing, else by a moment.
            let since = tokio::time::Instant::now();
            let second = loop {
                let limit = if tracked.writing() { grace + MARGIN } else { BLOCKED };
                let left = limit.saturating_sub(since.elapsed());
                if left.is_zero() {
                    break "the stop taking too long";
                }
                tokio::select! {
                    _ = int.recv() => break "SIGINT",
                    _ = term.recv() => break "SIGTERM",
                    () = tokio::time::sleep(left.min(Duration::from_millis(200))) => {}
                }
            };
            views::note(&format!(
                "{second}: exiting at once; the writes in flight are not recorded (the next plan shows them) and a cluster lock expires after its TTL"
            ));
            std::process::exit(crate::exit::ExitStatus::PartialApply as i32);
        })
    };
    let safe_to_stop = async {
        let _ = rx.wait_for(|stop| *stop).await;
        let deadline = tokio::time::Instant::now() + grace;
        while tracked.writing() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Where it can (between writes, in the wait for Argo CD) the operation stops by itself
        // and records its history: a moment for that before it is dropped.
        tokio::time::sleep(SETTLE).await;
    };
    let ended = runtime.block_on(async {
        tokio::select! {
            biased;
            out = op => Ended::Returned(out),
            () = safe_to_stop => Ended::Stopped,
        }
    });
    listener.abort();
    Ok((ended, received))
}

/// The grace period for the writes in flight: each is bounded by the request timeout.
pub fn grace(request_timeout: Duration) -> Duration {
    request_timeout + MARGIN
}

/// The line shown when an operation returned after a signal (its summary follows).
pub fn report_returned(signal: Option<&str>) {
    if let Some(signal) = signal {
        views::note(&format!(
            "Interrupted by {signal}: stopped before the end; the state records what was done (summary below). The state lock is released: run the command again to continue."
        ));
    }
}

/// What a stopped operation had done, for the user; exit 5.
pub fn report_stopped(tracked: &Tracked, signal: Option<&str>) -> crate::exit::ExitStatus {
    let done = tracked.done.lock().unwrap_or_else(PoisonError::into_inner).len();
    let planned = tracked.planned.load(Ordering::SeqCst);
    let signal = signal.unwrap_or("a signal");
    let waiting = *tracked.waiting.lock().unwrap_or_else(PoisonError::into_inner);
    let mut text = format!("Interrupted by {signal}: {done} change(s) done and recorded in the state");
    if planned > done {
        text.push_str(&format!(", {} not done (the next plan shows them)", planned - done));
    }
    if let Some(n) = waiting.filter(|n| *n > 0) {
        text.push_str(&format!("; stopped waiting for {n} object(s) from Argo CD"));
    }
    text.push_str(". The state lock is released: run the command again to continue.");
    views::note(&text);
    crate::exit::ExitStatus::PartialApply
}
