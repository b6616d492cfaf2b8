//! What a restarting, throttling or flaky API server fails *transiently* is retried, within the
//! request timeout: mip ends every request within about twice [`ConnectOptions::timeout`]
//! (one last attempt may start just before the budget ends), with the last error, which names
//! the server.
//!
//! - **Transient**: the connection refused, reset or closed mid-response (a kube-apiserver
//!   restarting, a proxy or VPN dropping the connection), a read that timed out with budget
//!   left, and the server's 429 (throttled by priority and fairness or max-in-flight), 503 (not
//!   ready yet) and 504; a 429 is waited out for up to six request timeouts (the server is up
//!   and says how long to wait). Everything else (403, 404, 409, 422, certificate errors) is answered at
//!   once.
//! - **Waiting**: the server's `Retry-After` when it sends one, else exponential backoff from
//!   100 ms to 2 s with jitter; never past the budget. The budget is the request's own time:
//!   a write's wait for its turn in the write limit (below) is not counted.
//! - **Safe to repeat**: every request mip sends is idempotent (GET, LIST, server-side apply,
//!   merge patch of one annotation, DELETE whose 404 means done). The state store's one
//!   non-idempotent write, the index replace with a `resourceVersion` precondition, checks after
//!   a retried conflict whether the state it finds is the one it wrote (`state.rs`).
//! - **Adaptive write concurrency**: a 429 halves how many writes run at once (down to one);
//!   every `limit` successful writes raise it by one again (AIMD, as TCP does; writes wait their
//!   turn in FIFO order), so
//!   `--parallelism` is an upper bound that a throttling server lowers instead of being
//!   hammered.
//!
//! [`ConnectOptions::timeout`]: crate::ConnectOptions::timeout

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The first backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest backoff (a `Retry-After` may be longer, within the budget).
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The longest time between two decreases of the write limit: a burst of 429s halves it
/// about every 250 ms until the server stops answering 429, not once per `Retry-After`.
pub(crate) const CALM_MAX: Duration = Duration::from_millis(250);
/// A throttled request (429) waits as the server says for up to this many request timeouts
/// (60 s by default): the server is up and answering, and priority and fairness raises its
/// `Retry-After` up to 32 s while it keeps dropping requests.
pub(crate) const THROTTLED_BUDGET_FACTOR: u32 = 6;
/// The write concurrency before any throttling: above any `--parallelism` in practice.
const LIMIT_START: usize = 64;

/// The retry budget of one request.
pub(crate) struct Budget {
    started: Instant,
    limit: Duration,
    attempt: u32,
    /// Time spent waiting for a write slot, which the budget does not count.
    excluded: Duration,
}

impl Budget {
    /// A budget of `limit` from now.
    pub(crate) fn new(limit: Duration) -> Budget {
        Budget { started: Instant::now(), limit, attempt: 0, excluded: Duration::ZERO }
    }

    /// Leaves `queued` (a wait for a write slot) out of the budget.
    pub(crate) fn exclude(&mut self, queued: Duration) {
        self.excluded += queued;
    }

    /// The request's own time so far.
    fn spent(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.excluded)
    }

    /// How long to wait before the next attempt (`retry_after` from the server, else
    /// backoff), or `None` when that would end past the budget: the limit, or for a throttled
    /// request [`THROTTLED_BUDGET_FACTOR`] times it.
    pub(crate) fn next_wait(&mut self, retry_after: Option<Duration>, throttled: bool) -> Option<Duration> {
        let backoff = BACKOFF_MIN.saturating_mul(1 << self.attempt.min(5)).min(BACKOFF_MAX);
        self.attempt += 1;
        // Jitter (0-25 %) from the clock, so concurrent requests do not retry in lockstep.
        let jitter = backoff.mul_f64(f64::from(self.started.elapsed().subsec_nanos() % 256) / 1024.0);
        let wait = retry_after.unwrap_or(backoff + jitter);
        let limit = if throttled { self.limit * THROTTLED_BUDGET_FACTOR } else { self.limit };
        (self.spent() + wait < limit).then_some(wait)
    }
}

/// The text of an error and its causes.
fn text(error: &kube::Error) -> String {
    crate::error::chain(error)
}

/// Whether `error` is worth another attempt (see the [module docs](self)).
pub(crate) fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            matches!(status.code, 429 | 503 | 504)
                || (status.code == 500 && status.message.contains("etcdserver: leader changed"))
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            let text = text(error).to_ascii_lowercase();
            !text.contains("certificate") && !text.contains("invalid peer")
        }
        _ => false,
    }
}

/// Whether `error` is the server throttling (HTTP 429).
pub(crate) fn throttled(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 429)
}

/// Retries, throttling and the write concurrency limit, for [`crate::KubeCluster::retries`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryCounts {
    /// Attempts repeated after a transient failure.
    pub retries: u64,
    /// Of those failures, how many were HTTP 429.
    pub throttled: u64,
    /// The lowest write concurrency the limiter came down to (`None`: never throttled).
    pub min_write_limit: Option<usize>,
    /// LISTs read again in one request because their continue token expired (HTTP 410).
    pub list_restarts: u64,
}

/// The adaptive write concurrency limit (AIMD) and the retry counters. Writes wait in a FIFO
/// queue (a tokio `Semaphore`), so under throttling every write gets its turn in order instead
/// of the luckiest one winning the free slot again and again.
#[derive(Debug)]
pub(crate) struct Limiter {
    slots: tokio::sync::Semaphore,
    state: Mutex<LimitState>,
    retries: AtomicU64,
    throttled: AtomicU64,
    list_restarts: AtomicU64,
}

#[derive(Debug)]
struct LimitState {
    /// Writes allowed at once.
    limit: usize,
    /// Slots held by running writes that are given up instead of returned (after a decrease).
    debt: usize,
    successes: usize,
    min_limit: Option<usize>,
    /// No second decrease until this instant (one 429 burst halves once).
    calm_until: Option<Instant>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            slots: tokio::sync::Semaphore::new(LIMIT_START),
            state: Mutex::new(LimitState {
                limit: LIMIT_START,
                debt: 0,
                successes: 0,
                min_limit: None,
                calm_until: None,
            }),
            retries: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            list_restarts: AtomicU64::new(0),
        }
    }
}

/// A running write; dropping it frees its slot (or gives it up, after a decrease).
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
    slot: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let mut state = self.limiter.state();
        if state.debt > 0 {
            state.debt -= 1;
            slot.forget();
        }
    }
}

impl Limiter {
    fn state(&self) -> std::sync::MutexGuard<'_, LimitState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a write slot, in arrival order.
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        // The semaphore is never closed; without a slot the write would just go ahead.
        Permit { limiter: self, slot: self.slots.acquire().await.ok() }
    }

    /// A write succeeded: additive increase.
    pub(crate) fn succeeded(&self) {
        let mut state = self.state();
        state.successes += 1;
        if state.successes >= state.limit && state.limit < LIMIT_START {
            state.limit += 1;
            state.successes = 0;
            if state.debt > 0 {
                state.debt -= 1;
            } else {
                self.slots.add_permits(1);
            }
        }
    }

    /// A request was retried; `throttled` when the server said 429 (multiplicative decrease
    /// of the write limit, at most once per `calm` period).
    pub(crate) fn retried(&self, throttled: bool, calm: Duration) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        if !throttled {
            return;
        }
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        let now = Instant::now();
        if state.calm_until.is_some_and(|until| now < until) {
            return;
        }
        let in_flight = (state.limit + state.debt).saturating_sub(self.slots.available_permits());
        let limit = (state.limit.min(in_flight.max(1)) / 2).max(1);
        state.debt += state.limit - limit;
        state.limit = limit;
        // Free slots are given up at once; held ones when their writes end.
        while state.debt > 0 {
            match self.slots.try_acquire() {
                Ok(slot) => {
                    slot.forget();
                    state.debt -= 1;
                }
                Err(_) => break,
            }
        }
        state.successes = 0;
        state.calm_until = Some(now + calm);
        state.min_limit = Some(state.min_limit.map_or(limit, |m| m.min(limit)));
    }

    /// A LIST is read again because its continue token expired.
    pub(crate) fn list_restarted(&self) {
        self.list_restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters so far.
    pub(crate) fn counts(&self) -> RetryCounts {
        RetryCounts {
            retries: self.retries.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            min_write_limit: self.state().min_limit,
            list_restarts: self.list_restarts.load(Ordering::Relaxed),
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the budget of `limit` is spent.
pub(crate) async fn with_retry<T, F, Fut>(
    limiter: &Limiter,
    limit: Duration,
    mut attempt: F,
) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut budget = Budget::new(limit);
    loop {
        match attempt().await {
            Err(error) if transient(&error) => {
                let Some(wait) = budget.next_wait(None, throttled(&error)) else { return Err(error) };
                limiter.retried(throttled(&error), wait.min(CALM_MAX));
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure("x", "y").with_code(code).boxed())
    }

    #[test]
    fn only_transient_failures_are_retried() {
        for code in [429, 503, 504] {
            assert!(transient(&status(code)), "{code}");
        }
        for code in [400, 403, 404, 409, 410, 422, 500] {
            assert!(!transient(&status(code)), "{code}");
        }
        assert!(throttled(&status(429)) && !throttled(&status(503)));
    }

    #[test]
    fn the_budget_ends_the_waiting() {
        // Backoff doubles from 100 ms up to 2 s, with up to 25 % jitter.
        let mut budget = Budget::new(Duration::from_secs(60));
        let waits: Vec<_> = (0..7).filter_map(|_| budget.next_wait(None, false)).collect();
        assert_eq!(waits.len(), 7);
        for (wait, base) in waits.iter().zip([100, 200, 400, 800, 1600, 2000, 2000]) {
            let base = Duration::from_millis(base);
            assert!(*wait >= base && *wait <= base.mul_f64(1.25), "{waits:?}");
        }
        // No wait that would end past the budget.
        assert_eq!(Budget::new(Duration::from_millis(50)).next_wait(None, false), None);
        let mut budget = Budget::new(Duration::from_secs(10));
        assert_eq!(budget.next_wait(Some(Duration::from_secs(3)), false), Some(Duration::from_secs(3)));
        assert_eq!(budget.next_wait(Some(Duration::from_secs(30)), false), None);
        // Throttled: the server's `Retry-After` is honoured for up to six timeouts.
        assert_eq!(budget.next_wait(Some(Duration::from_secs(30)), true), Some(Duration::from_secs(30)));
        assert_eq!(budget.next_wait(Some(Duration::from_secs(61)), true), None);
    }

    #[tokio::test]
    async fn throttling_halves_the_write_limit_and_successes_raise_it_again() {
        let limiter = Limiter::default();
        let permits: Vec<_> = futures_lite(&limiter, 8).await;
        limiter.retried(true, Duration::from_secs(60));
        assert_eq!(limiter.counts().min_write_limit, Some(4));
        // Within the calm period a second 429 does not halve again.
        limiter.retried(true, Duration::from_secs(60));
        assert_eq!(limiter.state().limit, 4);
        assert_eq!(limiter.slots.available_permits(), 0, "no free slot while 8 run and 4 are allowed");
        drop(permits);
        for _ in 0..4 {
            limiter.succeeded();
        }
        assert_eq!(limiter.state().limit, 5);
        assert_eq!(
            limiter.counts(),
            RetryCounts { retries: 2, throttled: 2, min_write_limit: Some(4), list_restarts: 0 }
        );
        // A full limit waits for a free slot.
        let held: Vec<_> = futures_lite(&limiter, 5).await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), limiter.acquire()).await;
        assert!(waiting.is_err(), "a sixth write must wait while five run");
        drop(held);
        assert!(tokio::time::timeout(Duration::from_secs(1), limiter.acquire()).await.is_ok());
    }

    async fn futures_lite(limiter: &Limiter, n: usize) -> Vec<Permit<'_>> {
        let mut permits = Vec::new();
        for _ in 0..n {
            permits.push(limiter.acquire().await);
        }
        permits
    }
}
