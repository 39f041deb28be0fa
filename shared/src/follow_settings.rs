//! How status-sync follows what Chorus Pro holds (README, "Follow-up"): the cadence by
//! state, the change search's overlap, the concurrency and the shared rate limit. Read
//! once per cold start with the rest of the `Config`. Also which worker a run is
//! (`FollowWorker`, from the schedule's input) and the shards it reads.

use std::num::NonZeroU32;

use time::Duration;

use crate::config::ConfigError;

/// Which path follows integrated invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowMode {
    /// One paged search per company of what changed since its last look, then a history
    /// call only for what changed (`FOLLOW_MODE=changes`, the default).
    Changes,
    /// Every open invoice consulted on its own, as before (`FOLLOW_MODE=full`): the
    /// fallback, and the bench's "before".
    Full,
}

/// Invoices per page of the change search, and pages one look reads at most (5,000
/// changes): docs/chorus-pro.md#change-driven-follow-up.
pub const SEARCH_PAGE_SIZE: u32 = 100;
pub const SEARCH_MAX_PAGES: u32 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowSettings {
    pub mode: FollowMode,
    /// A company with an invoice waiting for its buyer (or for the company) is searched
    /// this often.
    pub buyer_interval: Duration,
    /// A company whose open invoices all wait for payment is searched this often.
    pub payment_interval: Duration,
    /// Each open invoice is still consulted on its own this often (the safety net).
    pub full_check_interval: Duration,
    /// Each search starts this long before the last change seen (clock skew, late commits).
    pub overlap: Duration,
    /// Companies handled at once in a run.
    pub concurrency: usize,
    /// Chorus Pro calls per second of the whole deployment: each of `N` workers paces
    /// itself at this ÷ `N` (`chorus::Pacer::share_among`).
    pub rate_per_second: NonZeroU32,
    /// How long a worker holds a company (longer than a run).
    pub lease: Duration,
    /// The change search's paging: invoices per page, and pages one look reads at most
    /// (not read from the environment: the tests lower them to reach the cap).
    pub search_page_size: u32,
    pub search_max_pages: u32,
}

impl Default for FollowSettings {
    fn default() -> Self {
        FollowSettings {
            mode: FollowMode::Changes,
            buyer_interval: Duration::minutes(60),
            payment_interval: Duration::hours(24),
            full_check_interval: Duration::hours(72),
            overlap: Duration::minutes(10),
            concurrency: 8,
            rate_per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            lease: Duration::minutes(15),
            search_page_size: SEARCH_PAGE_SIZE,
            search_max_pages: SEARCH_MAX_PAGES,
        }
    }
}

/// One whole number setting within `range`, or its default (`config::whole_number`), as
/// the `i64` `time::Duration` counts in.
fn bounded(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<i64, ConfigError> {
    crate::config::whole_number(lookup, name, default, range)
        .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn mode(lookup: &impl Fn(&str) -> Option<String>) -> Result<FollowMode, ConfigError> {
    match lookup("FOLLOW_MODE").as_deref().map(str::trim) {
        None | Some("") | Some("changes") => Ok(FollowMode::Changes),
        Some("full") => Ok(FollowMode::Full),
        Some(other) => Err(ConfigError {
            name: "FOLLOW_MODE",
            problem: format!("must be changes or full, got {other:?}"),
        }),
    }
}

impl FollowSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let rate = bounded(&lookup, "CHORUS_RATE_PER_SECOND", 10, 1..=1000)?;
        let settings = FollowSettings {
            mode: mode(&lookup)?,
            buyer_interval: Duration::minutes(bounded(
                &lookup,
                "FOLLOW_BUYER_MINUTES",
                60,
                5..=1440,
            )?),
            payment_interval: Duration::hours(bounded(
                &lookup,
                "FOLLOW_PAYMENT_HOURS",
                24,
                1..=168,
            )?),
            full_check_interval: Duration::hours(bounded(
                &lookup,
                "FOLLOW_FULL_CHECK_HOURS",
                72,
                1..=720,
            )?),
            overlap: Duration::seconds(bounded(
                &lookup,
                "FOLLOW_OVERLAP_SECONDS",
                600,
                0..=86_400,
            )?),
            concurrency: usize::try_from(bounded(&lookup, "FOLLOW_CONCURRENCY", 8, 1..=64)?)
                .unwrap_or(1),
            rate_per_second: u32::try_from(rate)
                .ok()
                .and_then(NonZeroU32::new)
                .unwrap_or(NonZeroU32::MIN),
            lease: Duration::seconds(bounded(&lookup, "FOLLOW_LEASE_SECONDS", 900, 60..=86_400)?),
            search_page_size: SEARCH_PAGE_SIZE,
            search_max_pages: SEARCH_MAX_PAGES,
        };
        Ok(settings)
    }
}

/// The most follow-up workers a schedule's input may name (the template declares 4).
pub const MAX_WORKERS: u8 = 10;

/// Which follow-up worker a run is: `index` of `count`, from its schedule's input
/// (`{"worker": k, "workers": N, …}`, infra/template.yaml). Worker `k` reads the sharded
/// indexes from its own shards on, so `N` workers spread over the shards; the company lease
/// alone keeps two of them from handling the same company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowWorker {
    index: u8,
    count: u8,
}

/// How far a run reads a sharded index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardReach {
    /// Its own shards, then the others going round while its budget lasts: for what the
    /// company lease guards (two workers may read the same entry, one handles it).
    OwnFirst,
    /// Its own shards only, disjoint between workers: for what no lease guards.
    OwnOnly,
}

/// A schedule's input that names no valid worker: the run is refused (see `from_event`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid follow-up worker in the schedule's input: {0}")]
pub struct WorkerInputError(String);

impl FollowWorker {
    /// A run alone: an event without `worker`/`workers` (a manual run, `make run`).
    pub const ALONE: FollowWorker = FollowWorker { index: 0, count: 1 };

    /// Worker `index` of `count`: `index < count <= MAX_WORKERS`.
    pub fn new(index: u8, count: u8) -> Result<FollowWorker, WorkerInputError> {
        if count == 0 || count > MAX_WORKERS {
            return Err(WorkerInputError(format!(
                "workers must be 1 to {MAX_WORKERS}, got {count}"
            )));
        }
        if index >= count {
            return Err(WorkerInputError(format!(
                "worker must be below workers, got worker {index} of {count}"
            )));
        }
        Ok(FollowWorker { index, count })
    }

    /// From the scheduled event: both fields or neither (`ALONE`). Anything else is refused
    /// rather than run as worker 0 of 1, which would read every shard at the whole
    /// deployment's rate beside the other workers; the refused run changes nothing, fails
    /// visibly (the function's errors alarm, its dead-letter queue), and the other workers
    /// still reach its shards after their own.
    pub fn from_event(event: &serde_json::Value) -> Result<FollowWorker, WorkerInputError> {
        let field = |name: &str| event.as_object().and_then(|o| o.get(name));
        match (field("worker"), field("workers")) {
            (None, None) => Ok(FollowWorker::ALONE),
            (Some(index), Some(count)) => {
                let whole = |v: &serde_json::Value, name: &str| {
                    v.as_u64()
                        .and_then(|n| u8::try_from(n).ok())
                        .ok_or_else(|| {
                            WorkerInputError(format!("{name} must be a whole number, got {v}"))
                        })
                };
                FollowWorker::new(whole(index, "worker")?, whole(count, "workers")?)
            }
            _ => Err(WorkerInputError(
                "worker and workers go together (or neither: a run alone)".into(),
            )),
        }
    }

    pub fn index(&self) -> u8 {
        self.index
    }

    pub fn count(&self) -> u8 {
        self.count
    }

    /// `count`, as the pacer divides the rate by it.
    pub fn workers(&self) -> NonZeroU32 {
        NonZeroU32::new(u32::from(self.count)).unwrap_or(NonZeroU32::MIN)
    }

    /// The shards of an index of `shards` this worker reads, in order: its own (a `1 / N`
    /// slice, empty when there are more workers than shards), then, for `OwnFirst`, the
    /// others going round. A lone worker reads them all from shard 0.
    pub fn shards(&self, shards: u8, reach: ShardReach) -> Vec<u8> {
        let bound = |k: u8| {
            u8::try_from(u16::from(k) * u16::from(shards) / u16::from(self.count)).unwrap_or(0)
        };
        let (first, end) = (bound(self.index), bound(self.index + 1));
        match reach {
            ShardReach::OwnOnly => (first..end).collect(),
            ShardReach::OwnFirst => (first..shards).chain(0..first).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let none = FollowSettings::from_lookup(|_| None).unwrap();
        assert_eq!(none, FollowSettings::default());
        let set = FollowSettings::from_lookup(|name| match name {
            "FOLLOW_MODE" => Some("full".into()),
            "FOLLOW_BUYER_MINUTES" => Some("30".into()),
            "CHORUS_RATE_PER_SECOND" => Some("25".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(set.mode, FollowMode::Full);
        assert_eq!(set.buyer_interval, Duration::minutes(30));
        assert_eq!(set.rate_per_second.get(), 25);
        for (name, value) in [
            ("FOLLOW_MODE", "sometimes"),
            ("FOLLOW_CONCURRENCY", "0"),
            ("CHORUS_RATE_PER_SECOND", "0"),
            ("FOLLOW_BUYER_MINUTES", "1"),
            ("FOLLOW_OVERLAP_SECONDS", "-5"),
        ] {
            let err =
                FollowSettings::from_lookup(|n| (n == name).then(|| value.to_owned())).unwrap_err();
            assert_eq!(err.name, name);
        }
    }

    #[test]
    fn workers_start_with_their_own_shards_and_a_lone_one_reads_all() {
        use ShardReach::*;
        let alone = FollowWorker::ALONE;
        assert_eq!(alone.shards(8, OwnFirst), (0..8).collect::<Vec<_>>());
        assert_eq!(alone.shards(4, OwnOnly), vec![0, 1, 2, 3]);
        let second = FollowWorker::new(1, 2).unwrap();
        assert_eq!(second.shards(8, OwnFirst), vec![4, 5, 6, 7, 0, 1, 2, 3]);
        assert_eq!(second.shards(4, OwnOnly), vec![2, 3]);
        // Three workers over four shards: own slices disjoint, together every shard.
        let owned: Vec<Vec<u8>> = (0..3)
            .map(|k| FollowWorker::new(k, 3).unwrap().shards(4, OwnOnly))
            .collect();
        assert_eq!(owned, vec![vec![0], vec![1], vec![2, 3]]);
        assert_eq!(
            FollowWorker::new(2, 3).unwrap().shards(4, OwnFirst),
            vec![2, 3, 0, 1]
        );
        // More workers than shards: some own none, and still read every shard.
        let ten: Vec<Vec<u8>> = (0..10)
            .map(|k| FollowWorker::new(k, 10).unwrap().shards(4, OwnOnly))
            .collect();
        assert_eq!(ten.concat(), vec![0, 1, 2, 3]);
        assert_eq!(
            FollowWorker::new(0, 10).unwrap().shards(4, OwnFirst).len(),
            4
        );
    }

    #[test]
    fn the_worker_comes_from_the_schedules_input_or_the_run_is_refused() {
        let from = |v: serde_json::Value| FollowWorker::from_event(&v);
        let scheduled = serde_json::json!({
            "worker": 1, "workers": 3,
            "scheduled_time": "2026-12-03T10:00:00Z", "execution_id": "e-1"
        });
        assert_eq!(from(scheduled), Ok(FollowWorker::new(1, 3).unwrap()));
        for alone in [
            serde_json::json!({}),
            serde_json::json!({"scheduled_time": "2026-12-03T10:00:00Z"}),
            serde_json::Value::Null,
        ] {
            assert_eq!(from(alone), Ok(FollowWorker::ALONE));
        }
        for bad in [
            serde_json::json!({"worker": 2, "workers": 2}),
            serde_json::json!({"worker": 0, "workers": 0}),
            serde_json::json!({"worker": 0, "workers": 11}),
            serde_json::json!({"worker": -1, "workers": 2}),
            serde_json::json!({"worker": "1", "workers": 2}),
            serde_json::json!({"worker": 1.5, "workers": 2}),
            serde_json::json!({"worker": 300, "workers": 2}),
            serde_json::json!({"worker": 1}),
            serde_json::json!({"workers": 2}),
        ] {
            let err = from(bad.clone()).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid follow-up worker"),
                "{bad}: {err}"
            );
        }
        assert_eq!(FollowWorker::new(3, 4).unwrap().index(), 3);
        assert_eq!(FollowWorker::new(3, 4).unwrap().count(), 4);
    }
}
