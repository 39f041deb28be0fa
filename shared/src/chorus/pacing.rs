//! The manners of one warm function towards Chorus Pro: a shared rate limit on every call
//! (a GCRA from the `governor` crate, so a burst cannot exceed it), and a shared pause when
//! Chorus Pro answers `429`: every call of the function waits for it, not only the one that
//! was refused, so a storm of refusals slows the whole run down instead of feeding itself.
//! No published quota exists (docs/chorus-pro.md#limits): the rate is a setting, the
//! deployment's total, which `N` follow-up workers share (`share_among`).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// How long everyone waits after a `429` that named no `Retry-After`.
pub const PAUSE_WITHOUT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Longest pause a `Retry-After` may impose on the whole function.
pub const LONGEST_PAUSE: Duration = Duration::from_secs(60);

pub struct Pacer {
    /// The calls per second of the whole deployment (`None`: unlimited).
    total: Option<NonZeroU32>,
    /// This worker's share of it: its rate and its limiter.
    share: Mutex<Option<(NonZeroU32, Arc<DefaultDirectRateLimiter>)>>,
    paused_until: Mutex<Option<Instant>>,
    pauses: AtomicU64,
}

/// At most `calls` a second, evenly spaced (a burst of one).
fn limiter(calls: NonZeroU32) -> Arc<DefaultDirectRateLimiter> {
    let quota = Quota::per_second(calls).allow_burst(NonZeroU32::MIN);
    Arc::new(RateLimiter::direct(quota))
}

/// One worker's rate when `workers` share `total`: the quotient, at least 1 a second.
pub fn worker_rate(total: NonZeroU32, workers: NonZeroU32) -> NonZeroU32 {
    NonZeroU32::new(total.get() / workers.get()).unwrap_or(NonZeroU32::MIN)
}

impl Pacer {
    /// No limit (a function that makes a handful of calls per request).
    pub fn unlimited() -> Pacer {
        Pacer {
            total: None,
            share: Mutex::new(None),
            paused_until: Mutex::new(None),
            pauses: AtomicU64::new(0),
        }
    }

    /// At most `calls` calls per second, evenly spaced (a burst of one), all of them until
    /// `share_among` says how many workers share them.
    pub fn per_second(calls: NonZeroU32) -> Pacer {
        Pacer {
            total: Some(calls),
            share: Mutex::new(Some((calls, limiter(calls)))),
            ..Pacer::unlimited()
        }
    }

    /// The run is one of `workers` sharing the total: from now on its calls are paced at
    /// `worker_rate` (a new limiter only when the rate changes). The rate in force, `None`
    /// when unlimited. Runs of one warm function come one at a time (Lambda).
    pub fn share_among(&self, workers: NonZeroU32) -> Option<NonZeroU32> {
        let rate = worker_rate(self.total?, workers);
        let mut share = self.share.lock().unwrap_or_else(|e| e.into_inner());
        if share.as_ref().is_none_or(|(current, _)| *current != rate) {
            *share = Some((rate, limiter(rate)));
        }
        Some(rate)
    }

    /// Waits for the end of any pause, then for a slot of the rate limit; a pause that
    /// began while the call waited for its slot holds it too.
    pub async fn wait_turn(&self) {
        loop {
            self.wait_out_pause().await;
            let share = self.share.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some((_, limiter)) = share {
                limiter.until_ready().await;
            }
            if self.pause_end().is_none() {
                break;
            }
        }
    }

    async fn wait_out_pause(&self) {
        while let Some(until) = self.pause_end() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
        }
    }

    /// When the pause in force ends, if one is.
    fn pause_end(&self) -> Option<Instant> {
        let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        until.filter(|until| *until > Instant::now())
    }

    /// Chorus Pro answered `429`: every call waits `asked` (or a second), at most a minute.
    pub fn slow_down(&self, asked: Option<Duration>) {
        let pause = asked
            .unwrap_or(PAUSE_WITHOUT_RETRY_AFTER)
            .min(LONGEST_PAUSE);
        let until = Instant::now() + pause;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        *paused = Some(paused.map_or(until, |p| p.max(until)));
        self.pauses.fetch_add(1, Ordering::Relaxed);
    }

    /// How many `429` answers paused the function since it started.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rate_holds_across_callers() {
        let pacer = Pacer::per_second(NonZeroU32::new(20).unwrap());
        let started = Instant::now();
        for _ in 0..21 {
            pacer.wait_turn().await;
        }
        // The first call is free, the 20 next ones take a second at 20 a second.
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_call_waiting_for_its_slot_is_held_by_a_pause_that_begins_meanwhile() {
        let pacer = std::sync::Arc::new(Pacer::per_second(NonZeroU32::new(4).unwrap()));
        pacer.wait_turn().await;
        let started = Instant::now();
        let next = tokio::spawn({
            let pacer = pacer.clone();
            async move { pacer.wait_turn().await }
        });
        // The next slot is 250 ms away; Chorus Pro answers 429 before it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        pacer.slow_down(Some(Duration::from_millis(600)));
        next.await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(640),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_refusal_pauses_every_call() {
        let pacer = Pacer::unlimited();
        pacer.slow_down(Some(Duration::from_millis(300)));
        let started = Instant::now();
        pacer.wait_turn().await;
        assert!(started.elapsed() >= Duration::from_millis(290));
        assert_eq!(pacer.pauses(), 1);
        // A long Retry-After is capped.
        pacer.slow_down(Some(Duration::from_secs(3600)));
        let until = pacer.paused_until.lock().unwrap().unwrap();
        assert!(until <= Instant::now() + LONGEST_PAUSE);
    }

    #[test]
    fn workers_share_the_deployments_rate() {
        let rate = |total, workers| {
            worker_rate(
                NonZeroU32::new(total).unwrap(),
                NonZeroU32::new(workers).unwrap(),
            )
            .get()
        };
        assert_eq!(rate(10, 1), 10);
        assert_eq!(rate(10, 2), 5);
        assert_eq!(rate(10, 3), 3);
        assert_eq!(rate(1, 4), 1);
        assert_eq!(Pacer::unlimited().share_among(NonZeroU32::MIN), None);
    }

    #[tokio::test]
    async fn a_worker_paces_itself_at_its_share() {
        let pacer = Pacer::per_second(NonZeroU32::new(40).unwrap());
        let workers = NonZeroU32::new(2).unwrap();
        assert_eq!(pacer.share_among(workers).map(|r| r.get()), Some(20));
        let started = Instant::now();
        for _ in 0..11 {
            pacer.wait_turn().await;
        }
        // 10 calls after the first at 20 a second, not 40: half a second at least.
        assert!(
            started.elapsed() >= Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
        // Alone again: the whole rate.
        assert_eq!(
            pacer.share_among(NonZeroU32::MIN).map(|r| r.get()),
            Some(40)
        );
    }
}
