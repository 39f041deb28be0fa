//! Password-renewal reminders and the "credentials rejected" alert.
//!
//! - `schedule`: which reminder is due on a given day (pure).
//! - `delivery`: send one e-mail at most once per company, password version and e-mail,
//!   through a claim item written before sending.
//! - `alert`: the immediate alert when Chorus Pro refuses the stored password.
//!
//! How a reminder reaches the referent: saving a new password puts the account in the
//! reminder index (GSI1) for the save day; the daily run reads only the accounts due,
//! sends the step due (if any) and moves each account to its next reminder date.

pub mod alert;
pub mod delivery;
pub mod schedule;

use time::{Date, Duration, OffsetDateTime};

pub use alert::{alert_claim, notify_credentials_rejected};
pub use delivery::{CLAIM_LOCK, Delivery, deliver_once};
pub use schedule::{Evaluation, Reminder, ReminderSchedule, ReminderStep, ScheduleError};

use crate::config::ConfigError;
use crate::domain::CompanyAccount;
use crate::store::reminder::MailClaim;

/// The reminder function's settings, read once at cold start with the rest of the
/// `Config` (`config.reminders`); its sender is `config.sender_email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderSettings {
    pub schedule: ReminderSchedule,
    /// Companies handled at once (`REMINDER_CONCURRENCY`, default 4): SES rates are per
    /// second, a run of a thousand due companies still ends in well under a minute.
    pub concurrency: usize,
}

impl ReminderSettings {
    const DEFAULT_CONCURRENCY: usize = 4;
}

impl Default for ReminderSettings {
    fn default() -> Self {
        ReminderSettings {
            schedule: ReminderSchedule::default(),
            concurrency: Self::DEFAULT_CONCURRENCY,
        }
    }
}

impl ReminderSettings {
    /// `REMINDER_THRESHOLDS_DAYS` (default `30,14,7,1,0`), `REMINDER_REPEAT_EXPIRED_DAYS`
    /// (default 7, 0 for none), `REMINDER_CONCURRENCY` (1–32).
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let thresholds = match lookup("REMINDER_THRESHOLDS_DAYS").filter(|v| !v.trim().is_empty()) {
            None => ReminderSchedule::DEFAULT_BEFORE.to_vec(),
            Some(text) => ReminderSchedule::parse_thresholds(&text).map_err(|e| ConfigError {
                name: "REMINDER_THRESHOLDS_DAYS",
                problem: format!("{e} (e.g. \"30,14,7,1,0\")"),
            })?,
        };
        let repeat = crate::config::whole_number(
            lookup,
            "REMINDER_REPEAT_EXPIRED_DAYS",
            ReminderSchedule::DEFAULT_REPEAT_EXPIRED.into(),
            0..=365,
        )?;
        let concurrency = crate::config::whole_number(
            lookup,
            "REMINDER_CONCURRENCY",
            Self::DEFAULT_CONCURRENCY as u64,
            1..=32,
        )?;
        let schedule = ReminderSchedule::new(thresholds, u32::try_from(repeat).unwrap_or(0))
            .map_err(|e| ConfigError {
                name: "REMINDER_THRESHOLDS_DAYS",
                problem: e.to_string(),
            })?;
        Ok(Self {
            schedule,
            concurrency: usize::try_from(concurrency).unwrap_or(Self::DEFAULT_CONCURRENCY),
        })
    }
}

/// `next_reminder_on` of an account being saved: a new password (or a first save) starts
/// a new cycle, which the next run evaluates from today; otherwise the cycle goes on.
///
/// The save day rather than the first reminder date: the schedule is configured on the
/// reminder function only, so it alone turns a cycle into dates.
pub fn next_reminder_on_save(
    existing: Option<&CompanyAccount>,
    password_is_new: bool,
    now: OffsetDateTime,
) -> Option<Date> {
    match existing {
        Some(old) if !password_is_new => old.next_reminder_on,
        _ => Some(now.to_offset(time::UtcOffset::UTC).date()),
    }
}

/// The claim of one reminder step. It is kept until well after the step can no longer
/// be the one due (the next step replaces it), then DynamoDB's TTL removes it.
pub fn reminder_claim(
    account: &CompanyAccount,
    step: ReminderStep,
    next_on: Option<Date>,
    now: OffsetDateTime,
) -> MailClaim {
    let keep_from = next_on
        .and_then(|d| d.with_hms(0, 0, 0).ok())
        .map(|d| d.assume_utc())
        .map_or(now, |next| next.max(now));
    MailClaim {
        siret: account.siret.clone(),
        password_version: account.password_version.clone(),
        mail: format!("REMINDER#{}", step.id()),
        forget_after: keep_from + Duration::days(90),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::lookup;
    use time::macros::{date, datetime};

    #[test]
    fn config_defaults_and_overrides() {
        let c = ReminderSettings::from_lookup(&lookup(&[])).unwrap();
        assert_eq!(c, ReminderSettings::default());
        assert_eq!(c.schedule.thresholds(), &[30, 14, 7, 1, 0]);
        assert_eq!(c.schedule.repeat_expired(), 7);
        assert_eq!(c.concurrency, 4);
        let c = ReminderSettings::from_lookup(&lookup(&[
            ("REMINDER_THRESHOLDS_DAYS", "60, 30,0"),
            ("REMINDER_REPEAT_EXPIRED_DAYS", "0"),
        ]))
        .unwrap();
        assert_eq!(c.schedule.thresholds(), &[60, 30, 0]);
        assert_eq!(c.schedule.repeat_expired(), 0);
    }

    #[test]
    fn config_refusals_name_the_variable() {
        let bad = |pairs: &[(&str, &str)]| {
            let mut all = vec![("TABLE_NAME", "t")];
            all.extend_from_slice(pairs);
            crate::config::Config::from_lookup(lookup(&all))
                .unwrap_err()
                .name
        };
        assert_eq!(
            bad(&[("REMINDER_THRESHOLDS_DAYS", "30,abc")]),
            "REMINDER_THRESHOLDS_DAYS"
        );
        assert_eq!(
            bad(&[("REMINDER_REPEAT_EXPIRED_DAYS", "-7")]),
            "REMINDER_REPEAT_EXPIRED_DAYS"
        );
        assert_eq!(
            bad(&[("REMINDER_CONCURRENCY", "0")]),
            "REMINDER_CONCURRENCY"
        );
    }

    #[test]
    fn a_new_password_starts_a_new_cycle_today() {
        use crate::domain::Environment;
        let old = CompanyAccount {
            next_reminder_on: Some(date!(2027 - 10 - 28)),
            ..CompanyAccount::sample("TECH_1@cpp2017.fr", Environment::Production)
        };
        let now = datetime!(2027-03-01 23:30 -01:00);
        assert_eq!(
            next_reminder_on_save(None, true, now),
            Some(date!(2027 - 03 - 02))
        );
        assert_eq!(
            next_reminder_on_save(Some(&old), true, now),
            Some(date!(2027 - 03 - 02))
        );
        assert_eq!(
            next_reminder_on_save(Some(&old), false, now),
            Some(date!(2027 - 10 - 28))
        );

        let claim = reminder_claim(
            &old,
            ReminderStep::Before(30),
            Some(date!(2027 - 11 - 13)),
            datetime!(2027-10-28 06:00 UTC),
        );
        assert_eq!(claim.mail, "REMINDER#J-30");
        assert_eq!(claim.forget_after, datetime!(2028-02-11 00:00 UTC));
    }
}
