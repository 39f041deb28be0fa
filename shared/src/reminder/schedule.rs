//! The reminder schedule: pure date arithmetic, no I/O.
//!
//! Given the expiry date of a password and today's date (both UTC calendar days), it says
//! which reminder is due (the latest step whose date is on or before today) and when the
//! next one falls. Steps are `J-30`, `J-14`, `J-7`, `J-1`, `J0` (the expiry day), then
//! `J+7`, `J+14`, … while the password stays expired. A run that missed days sends only
//! the latest step, never a backlog of stale ones.

use time::{Date, Duration};

/// One step of the schedule; its `id` is stable and names the claim that makes it sent once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReminderStep {
    /// This many days before the expiry date (0: the expiry day itself).
    Before(u32),
    /// This many days after the expiry date (a multiple of the repeat interval).
    After(u32),
}

impl ReminderStep {
    /// `J-30`, `J0`, `J+7`: how a French operator names the days around a deadline.
    pub fn id(self) -> String {
        match self {
            ReminderStep::Before(0) => "J0".to_owned(),
            ReminderStep::Before(n) => format!("J-{n}"),
            ReminderStep::After(n) => format!("J+{n}"),
        }
    }

    pub fn date(self, expiry: Date) -> Option<Date> {
        match self {
            ReminderStep::Before(n) => expiry.checked_sub(Duration::days(i64::from(n))),
            ReminderStep::After(n) => expiry.checked_add(Duration::days(i64::from(n))),
        }
    }
}

/// A step with its date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reminder {
    pub step: ReminderStep,
    pub on: Date,
}

/// What one evaluation says: the reminder to send now (if any), and the day to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub due: Option<Reminder>,
    /// `None` only when nothing will ever be due again (no repeat after expiry).
    pub next_on: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("must list at least one number of days")]
    Empty,
    #[error("{0:?} is not a whole number of days between 0 and {MAX_DAYS}")]
    BadDays(String),
}

/// Longer than any password lifetime the configuration accepts.
pub const MAX_DAYS: u32 = 3650;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderSchedule {
    /// Days before expiry, largest first, without duplicates.
    before: Vec<u32>,
    /// Days between reminders once expired; 0: no reminder after the expiry day.
    repeat_expired: u32,
}

impl Default for ReminderSchedule {
    fn default() -> Self {
        Self {
            before: Self::DEFAULT_BEFORE.to_vec(),
            repeat_expired: Self::DEFAULT_REPEAT_EXPIRED,
        }
    }
}

impl ReminderSchedule {
    pub const DEFAULT_BEFORE: [u32; 5] = [30, 14, 7, 1, 0];
    pub const DEFAULT_REPEAT_EXPIRED: u32 = 7;

    pub fn new(
        before: impl IntoIterator<Item = u32>,
        repeat_expired: u32,
    ) -> Result<Self, ScheduleError> {
        let mut before: Vec<u32> = before.into_iter().collect();
        if before.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if let Some(bad) = before
            .iter()
            .chain([&repeat_expired])
            .find(|d| **d > MAX_DAYS)
        {
            return Err(ScheduleError::BadDays(bad.to_string()));
        }
        before.sort_unstable_by(|a, b| b.cmp(a));
        before.dedup();
        Ok(Self {
            before,
            repeat_expired,
        })
    }

    /// `"30,14,7,1,0"` (the form of `REMINDER_THRESHOLDS_DAYS`), in any order.
    pub fn parse_thresholds(text: &str) -> Result<Vec<u32>, ScheduleError> {
        let days: Vec<u32> = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<u32>()
                    .ok()
                    .filter(|d| *d <= MAX_DAYS)
                    .ok_or_else(|| ScheduleError::BadDays(part.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        if days.is_empty() {
            return Err(ScheduleError::Empty);
        }
        Ok(days)
    }

    pub fn thresholds(&self) -> &[u32] {
        &self.before
    }

    pub fn repeat_expired(&self) -> u32 {
        self.repeat_expired
    }

    /// The reminder to send on `today` for a password expiring on `expiry`, and the next
    /// day worth looking at.
    pub fn evaluate(&self, expiry: Date, today: Date) -> Evaluation {
        Evaluation {
            due: self.due(expiry, today),
            next_on: self.next_after(expiry, today),
        }
    }

    /// The latest step whose date is on or before `today`.
    pub fn due(&self, expiry: Date, today: Date) -> Option<Reminder> {
        let days_left = (expiry - today).whole_days();
        if days_left < 0 && self.repeat_expired > 0 {
            let late = u32::try_from(-days_left).unwrap_or(u32::MAX);
            let periods = late / self.repeat_expired;
            if periods >= 1 {
                let step = ReminderStep::After(periods.saturating_mul(self.repeat_expired));
                return step.date(expiry).map(|on| Reminder { step, on });
            }
        }
        // `before` is largest first: the last one reached is the smallest with
        // `days >= days_left`.
        self.before
            .iter()
            .rev()
            .find(|&&days| i64::from(days) >= days_left)
            .and_then(|&days| {
                let step = ReminderStep::Before(days);
                step.date(expiry).map(|on| Reminder { step, on })
            })
    }

    /// The date of the first step strictly after `today`.
    pub fn next_after(&self, expiry: Date, today: Date) -> Option<Date> {
        let days_left = (expiry - today).whole_days();
        if let Some(&days) = self
            .before
            .iter()
            .find(|&&days| i64::from(days) < days_left)
        {
            return ReminderStep::Before(days).date(expiry);
        }
        if self.repeat_expired == 0 {
            return None;
        }
        let late = u32::try_from(-days_left.min(0)).unwrap_or(u32::MAX);
        let periods = late / self.repeat_expired + 1;
        ReminderStep::After(periods.saturating_mul(self.repeat_expired)).date(expiry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn step(r: Option<Reminder>) -> Option<(String, Date)> {
        r.map(|r| (r.step.id(), r.on))
    }

    fn due(s: &ReminderSchedule, expiry: Date, today: Date) -> Option<(String, Date)> {
        step(s.due(expiry, today))
    }

    #[test]
    fn ids_are_stable() {
        assert_eq!(ReminderStep::Before(30).id(), "J-30");
        assert_eq!(ReminderStep::Before(1).id(), "J-1");
        assert_eq!(ReminderStep::Before(0).id(), "J0");
        assert_eq!(ReminderStep::After(14).id(), "J+14");
    }

    #[test]
    fn every_threshold_on_its_day_and_nothing_in_between() {
        let s = ReminderSchedule::default();
        let expiry = date!(2027 - 11 - 27);
        // Day by day from 60 days before to 30 days after: exactly the expected steps are
        // due on exactly their days; in between, the last one stays "due" (already claimed).
        let mut first_days = Vec::new();
        let mut previous: Option<String> = None;
        let mut day = date!(2027 - 09 - 28);
        while day <= date!(2027 - 12 - 27) {
            let current = due(&s, expiry, day).map(|(id, _)| id);
            if current != previous {
                first_days.push((current.clone().unwrap_or_default(), day));
                previous = current;
            }
            day = day.next_day().unwrap();
        }
        assert_eq!(
            first_days,
            vec![
                ("J-30".to_owned(), date!(2027 - 10 - 28)),
                ("J-14".to_owned(), date!(2027 - 11 - 13)),
                ("J-7".to_owned(), date!(2027 - 11 - 20)),
                ("J-1".to_owned(), date!(2027 - 11 - 26)),
                ("J0".to_owned(), date!(2027 - 11 - 27)),
                ("J+7".to_owned(), date!(2027 - 12 - 04)),
                ("J+14".to_owned(), date!(2027 - 12 - 11)),
                ("J+21".to_owned(), date!(2027 - 12 - 18)),
                ("J+28".to_owned(), date!(2027 - 12 - 25)),
            ]
        );
    }

    #[test]
    fn nothing_due_long_before_and_next_is_the_first_threshold() {
        let s = ReminderSchedule::default();
        let expiry = date!(2027 - 11 - 27);
        let e = s.evaluate(expiry, date!(2026 - 11 - 27));
        assert_eq!(e.due, None);
        assert_eq!(e.next_on, Some(date!(2027 - 10 - 28)));
        // The day before J-30: still nothing, next is tomorrow.
        let e = s.evaluate(expiry, date!(2027 - 10 - 27));
        assert_eq!(e.due, None);
        assert_eq!(e.next_on, Some(date!(2027 - 10 - 28)));
    }

    #[test]
    fn next_date_walks_every_step() {
        let s = ReminderSchedule::default();
        let expiry = date!(2027 - 11 - 27);
        let cases = [
            (date!(2027 - 10 - 28), date!(2027 - 11 - 13)),
            (date!(2027 - 11 - 12), date!(2027 - 11 - 13)),
            (date!(2027 - 11 - 13), date!(2027 - 11 - 20)),
            (date!(2027 - 11 - 20), date!(2027 - 11 - 26)),
            (date!(2027 - 11 - 26), date!(2027 - 11 - 27)),
            (date!(2027 - 11 - 27), date!(2027 - 12 - 04)),
            (date!(2027 - 11 - 30), date!(2027 - 12 - 04)),
            (date!(2027 - 12 - 04), date!(2027 - 12 - 11)),
            (date!(2028 - 03 - 01), date!(2028 - 03 - 04)),
        ];
        for (today, next) in cases {
            assert_eq!(s.next_after(expiry, today), Some(next), "today {today}");
        }
    }

    #[test]
    fn a_missed_run_sends_only_the_latest_step() {
        let s = ReminderSchedule::default();
        let expiry = date!(2027 - 11 - 27);
        // J-7 was on 11-20; the run is back on 11-23: J-7 is still the one to send.
        assert_eq!(
            due(&s, expiry, date!(2027 - 11 - 23)),
            Some(("J-7".into(), date!(2027 - 11 - 20)))
        );
        // Back only after expiry: the expiry-day step, not J-30…J-1.
        assert_eq!(
            due(&s, expiry, date!(2027 - 12 - 01)),
            Some(("J0".into(), date!(2027 - 11 - 27)))
        );
        // Long after: the latest weekly step.
        assert_eq!(
            due(&s, expiry, date!(2028 - 11 - 27)),
            Some(("J+364".into(), date!(2028 - 11 - 25)))
        );
    }

    #[test]
    fn leap_years() {
        let s = ReminderSchedule::default();
        // Set 2027-03-01 with a 365-day lifetime: expires 2028-02-29.
        let expiry = date!(2027 - 03 - 01) + Duration::days(365);
        assert_eq!(expiry, date!(2028 - 02 - 29));
        assert_eq!(
            due(&s, expiry, date!(2028 - 01 - 30)),
            Some(("J-30".into(), date!(2028 - 01 - 30)))
        );
        assert_eq!(due(&s, expiry, date!(2028 - 01 - 29)), None);
        assert_eq!(
            due(&s, expiry, date!(2028 - 02 - 15)),
            Some(("J-14".into(), date!(2028 - 02 - 15)))
        );
        assert_eq!(
            due(&s, expiry, date!(2028 - 02 - 28)),
            Some(("J-1".into(), date!(2028 - 02 - 28)))
        );
        assert_eq!(
            due(&s, expiry, date!(2028 - 02 - 29)),
            Some(("J0".into(), date!(2028 - 02 - 29)))
        );
        assert_eq!(
            due(&s, expiry, date!(2028 - 03 - 07)),
            Some(("J+7".into(), date!(2028 - 03 - 07)))
        );
        assert_eq!(
            s.next_after(expiry, date!(2028 - 02 - 28)),
            Some(date!(2028 - 02 - 29))
        );
        assert_eq!(
            s.next_after(expiry, date!(2028 - 02 - 29)),
            Some(date!(2028 - 03 - 07))
        );
        // Across the 29th: J-1 of an expiry on 2028-03-01 is 02-29.
        let expiry = date!(2028 - 03 - 01);
        assert_eq!(
            due(&s, expiry, date!(2028 - 02 - 29)),
            Some(("J-1".into(), date!(2028 - 02 - 29)))
        );
        assert_eq!(
            due(&s, expiry, date!(2028 - 01 - 31)),
            Some(("J-30".into(), date!(2028 - 01 - 31)))
        );
        // Set on the 29th: 365 days later is 2029-02-28 (no 29th that year).
        assert_eq!(
            date!(2028 - 02 - 29) + Duration::days(365),
            date!(2029 - 02 - 28)
        );
    }

    #[test]
    fn lifetimes_365_and_424() {
        let s = ReminderSchedule::default();
        let set = date!(2026 - 11 - 27);
        let e365 = set + Duration::days(365);
        let e424 = set + Duration::days(424);
        assert_eq!(e365, date!(2027 - 11 - 27));
        assert_eq!(e424, date!(2028 - 01 - 25));
        // On the day of the save, nothing is due and the first reminder is J-30.
        assert_eq!(
            s.evaluate(e365, set),
            Evaluation {
                due: None,
                next_on: Some(date!(2027 - 10 - 28))
            }
        );
        assert_eq!(
            s.evaluate(e424, set),
            Evaluation {
                due: None,
                next_on: Some(date!(2027 - 12 - 26))
            }
        );
        assert_eq!(
            due(&s, e424, date!(2027 - 12 - 26)),
            Some(("J-30".into(), date!(2027 - 12 - 26)))
        );
        assert_eq!(
            due(&s, e424, date!(2028 - 01 - 11)),
            Some(("J-14".into(), date!(2028 - 01 - 11)))
        );
        assert_eq!(
            due(&s, e424, date!(2028 - 01 - 18)),
            Some(("J-7".into(), date!(2028 - 01 - 18)))
        );
        assert_eq!(
            due(&s, e424, date!(2028 - 01 - 24)),
            Some(("J-1".into(), date!(2028 - 01 - 24)))
        );
        assert_eq!(
            due(&s, e424, date!(2028 - 01 - 25)),
            Some(("J0".into(), date!(2028 - 01 - 25)))
        );
        assert_eq!(
            due(&s, e424, date!(2028 - 02 - 01)),
            Some(("J+7".into(), date!(2028 - 02 - 01)))
        );
    }

    #[test]
    fn a_short_lifetime_starts_at_the_threshold_already_reached() {
        // A 10-day lifetime: J-30 and J-14 are already past on the day of the save; the
        // reminder due is J-14 (sent once, telling 10 days left), the next J-7.
        let s = ReminderSchedule::default();
        let expiry = date!(2027 - 01 - 11);
        let e = s.evaluate(expiry, date!(2027 - 01 - 01));
        assert_eq!(step(e.due), Some(("J-14".into(), date!(2026 - 12 - 28))));
        assert_eq!(e.next_on, Some(date!(2027 - 01 - 04)));
    }

    #[test]
    fn custom_thresholds_and_no_repeat() {
        let s = ReminderSchedule::new(ReminderSchedule::parse_thresholds(" 7, 60 ,7").unwrap(), 0)
            .unwrap();
        assert_eq!(s.thresholds(), &[60, 7]);
        let expiry = date!(2027 - 06 - 30);
        assert_eq!(
            due(&s, expiry, date!(2027 - 05 - 01)),
            Some(("J-60".into(), date!(2027 - 05 - 01)))
        );
        assert_eq!(
            s.next_after(expiry, date!(2027 - 05 - 01)),
            Some(date!(2027 - 06 - 23))
        );
        // No J0 in the list and no repeat: after J-7, nothing more.
        assert_eq!(s.next_after(expiry, date!(2027 - 06 - 23)), None);
        assert_eq!(
            due(&s, expiry, date!(2027 - 09 - 01)),
            Some(("J-7".into(), date!(2027 - 06 - 23)))
        );
        // Without J0 but with a repeat, the weekly reminders still start a week after expiry.
        let s = ReminderSchedule::new([30], 10).unwrap();
        assert_eq!(
            s.next_after(expiry, date!(2027 - 05 - 31)),
            Some(date!(2027 - 07 - 10))
        );
        assert_eq!(
            due(&s, expiry, date!(2027 - 07 - 21)),
            Some(("J+20".into(), date!(2027 - 07 - 20)))
        );
    }

    #[test]
    fn threshold_parsing() {
        assert_eq!(
            ReminderSchedule::parse_thresholds("30,14,7,1,0").unwrap(),
            vec![30, 14, 7, 1, 0]
        );
        assert_eq!(
            ReminderSchedule::parse_thresholds(""),
            Err(ScheduleError::Empty)
        );
        assert_eq!(
            ReminderSchedule::parse_thresholds(" , "),
            Err(ScheduleError::Empty)
        );
        assert_eq!(
            ReminderSchedule::parse_thresholds("30,-1"),
            Err(ScheduleError::BadDays("-1".into()))
        );
        assert_eq!(
            ReminderSchedule::parse_thresholds("30,x"),
            Err(ScheduleError::BadDays("x".into()))
        );
        assert_eq!(
            ReminderSchedule::parse_thresholds("4000"),
            Err(ScheduleError::BadDays("4000".into()))
        );
        assert!(ReminderSchedule::new([], 7).is_err());
        assert!(ReminderSchedule::new([30], 4000).is_err());
    }
}
