//! How status-sync follows what Chorus Pro holds (README, "Follow-up"): the cadence by
//! state, the change search's overlap, the concurrency and the shared rate limit. Read
//! once per cold start with the rest of the `Config`.

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
    /// Chorus Pro calls per second, shared by the whole function.
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
}
