//! The legal payment clock of a situation (docs/payment-deadline.md): when the public buyer
//! must pay, and what it owes when it does not. Everything here is derived from the
//! statuses Chorus Pro recorded, the market's buyer category, the amount invoiced and the
//! deployment's dated rate table; nothing is typed by anyone.
//!
//! The rules (Code de la commande publique):
//!
//! - the deadline is 30 days (R2192-10), 50 for public health establishments, 60 for public
//!   companies (R2192-11);
//! - it runs from the receipt of the payment request (R2192-12): by the MOE when the market
//!   says so (works), otherwise by the buyer; for an electronic invoice, receipt is the
//!   notification that the invoice was made available on the portal (R2192-15), i.e. the
//!   status `MISE_A_DISPOSITION` (or the MOE's receipt status);
//! - an incomplete request may interrupt it once (R2192-27): from the receipt of what was
//!   missing, a new deadline opens of 30 days, or the balance left when the interruption
//!   was notified if that balance is longer (R2192-29);
//! - from the day after the deadline, interest runs (L2192-13) at the ECB main refinancing
//!   rate in force on the first day of the half-year in which it began to run, plus 8
//!   points (R2192-31), and a fixed €40 indemnity is owed (D2192-35).

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use time::{Date, Month, OffsetDateTime, UtcOffset};

use super::situation::StatusEntry;

// ---------------------------------------------------------------------------------------
// Buyer category

/// Which deadline the public buyer is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuyerCategory {
    State,
    /// The default: most works buyers are communes, departments, regions and their bodies.
    #[default]
    LocalAuthority,
    /// Public health establishments and the armed forces' health establishments.
    HealthEstablishment,
    /// Public companies (ordonnance 2004-503), except local public establishments.
    PublicCompany,
}

impl BuyerCategory {
    pub const ALL: [BuyerCategory; 4] = [
        BuyerCategory::State,
        BuyerCategory::LocalAuthority,
        BuyerCategory::HealthEstablishment,
        BuyerCategory::PublicCompany,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BuyerCategory::State => "state",
            BuyerCategory::LocalAuthority => "local_authority",
            BuyerCategory::HealthEstablishment => "health_establishment",
            BuyerCategory::PublicCompany => "public_company",
        }
    }

    /// R2192-10 and R2192-11.
    pub fn deadline_days(self) -> i64 {
        match self {
            BuyerCategory::State | BuyerCategory::LocalAuthority => 30,
            BuyerCategory::HealthEstablishment => 50,
            BuyerCategory::PublicCompany => 60,
        }
    }

    /// The field-error code of a value that does not parse.
    pub const ERROR_CODE: &'static str = "unknown_buyer_category";

    pub fn message_fr(raw: &str) -> String {
        format!(
            "La catégorie d'acheteur « {raw} » est inconnue. Valeurs acceptées : state (État, 30 jours), local_authority (collectivité territoriale, 30 jours), health_establishment (établissement public de santé, 50 jours), public_company (entreprise publique, 60 jours)."
        )
    }
}

impl fmt::Display for BuyerCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// The dated rate table

/// The late-payment interest rate (ECB rate + 8 points, in percent) from each half-year
/// on, as the deployment sets it (`LATE_PAYMENT_RATES`), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LatePaymentRates(Vec<(Date, Decimal)>);

/// One entry of `LATE_PAYMENT_RATES` that does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateEntryError {
    pub entry: String,
    pub problem: &'static str,
}

impl fmt::Display for RateEntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {:?}: {}", self.entry, self.problem)
    }
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl LatePaymentRates {
    /// `2026-07-01=10.15,2027-01-01=10.40`: each date is the first day of a half-year
    /// (a date of an ECB decision is a typing error: the law fixes the rate per half-year),
    /// each rate a percentage between 0 and 100, dates strictly increasing.
    pub fn parse(raw: &str) -> Result<Self, RateEntryError> {
        let mut rates: Vec<(Date, Decimal)> = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let fault = |problem| RateEntryError {
                entry: entry.to_owned(),
                problem,
            };
            let (day, rate) = entry
                .split_once('=')
                .ok_or_else(|| fault("expected DATE=RATE, e.g. 2026-07-01=10.15"))?;
            let day =
                Date::parse(day.trim(), DATE).map_err(|_| fault("the date must be YYYY-MM-DD"))?;
            if day != half_year_start(day) {
                return Err(fault("the date must be a 1 January or a 1 July"));
            }
            let rate: Decimal = rate
                .trim()
                .parse()
                .map_err(|_| fault("the rate must be a decimal percentage, e.g. 10.15"))?;
            if rate.is_sign_negative() || rate > Decimal::ONE_HUNDRED {
                return Err(fault("the rate must be between 0 and 100"));
            }
            if rates.last().is_some_and(|(last, _)| *last >= day) {
                return Err(fault("dates must be in increasing order, each once"));
            }
            rates.push((day, rate));
        }
        Ok(LatePaymentRates(rates))
    }

    /// The rate for interest that began to run on `first_late_day` (R2192-31): the one in
    /// force on the first day of that half-year. `None` when the table does not reach back.
    pub fn rate_for(&self, first_late_day: Date) -> Option<Decimal> {
        let start = half_year_start(first_late_day);
        self.0
            .iter()
            .rev()
            .find(|(from, _)| *from <= start)
            .map(|(_, rate)| *rate)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn half_year_start(day: Date) -> Date {
    let month = if day.month() as u8 >= 7 {
        Month::July
    } else {
        Month::January
    };
    Date::from_calendar_date(day.year(), month, 1).unwrap_or(day)
}

// ---------------------------------------------------------------------------------------
// The clock

/// Chorus Pro statuses that mean the party that must act has the invoice.
pub const BUYER_RECEIPT: &str = "MISE_A_DISPOSITION";
/// The MOE's receipt in the works circuit (name unconfirmed, docs/chorus-pro.md#works-circuit):
/// when present, the deadline runs from it (R2192-12, a market with a MOE).
pub const MOE_RECEIPT: &str = "MISE_A_DISPOSITION_MOE";
pub const SUSPENDED: &str = "SUSPENDUE";
pub const PAID: &str = "MISE_EN_PAIEMENT";
/// Returned for wrong routing data: the invoice was not received by the right party, the
/// deadline runs from its next receipt.
pub const TO_RECYCLE: &str = "A_RECYCLER";

/// R2192-29: the new deadline after an interruption is at least this long.
const DAYS_AFTER_INTERRUPTION: i64 = 30;
/// D2192-35.
pub const FIXED_INDEMNITY: Decimal = Decimal::from_parts(4000, 0, 0, false, 2);

/// Calendar days are Paris days, taken as UTC+1 like Chorus Pro's times without offset
/// (`chorus::lenient`): summer time is not modelled (docs/payment-deadline.md).
fn paris_day(at: OffsetDateTime) -> Date {
    let offset = UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC);
    at.to_offset(offset).date()
}

/// What the clock needs besides the history.
#[derive(Debug, Clone, Copy)]
pub struct PaymentTerms<'a> {
    pub category: BuyerCategory,
    pub rates: &'a LatePaymentRates,
    /// Today (Paris): how late an unpaid invoice is so far.
    pub today: Date,
}

impl<'a> PaymentTerms<'a> {
    /// The terms of a market (`None`: the default category) at `now`.
    pub fn at(
        category: Option<BuyerCategory>,
        rates: &'a LatePaymentRates,
        now: OffsetDateTime,
    ) -> Self {
        PaymentTerms {
            category: category.unwrap_or_default(),
            rates,
            today: paris_day(now),
        }
    }
}

/// The `payment` object of the situation view; every field but the category and the
/// deadline is `None` until the clock starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentClock {
    pub buyer_category: &'static str,
    pub deadline_days: i64,
    /// What the invoice asks to be paid (TTC, BT-115): the base of the interest.
    #[serde(serialize_with = "opt_amount")]
    pub amount_due: Option<Decimal>,
    pub clock_started_at: Option<String>,
    /// `None` also while the deadline is interrupted (`SUSPENDUE`, nothing since).
    #[serde(serialize_with = "opt_date")]
    pub due_on: Option<Date>,
    #[serde(serialize_with = "opt_date")]
    pub paid_on: Option<Date>,
    pub days_late: Option<i64>,
    /// Decimal strings with two places (`"64.51"`), like every amount of the API.
    #[serde(serialize_with = "opt_amount")]
    pub late_interest: Option<Decimal>,
    #[serde(serialize_with = "opt_amount")]
    pub fixed_indemnity: Option<Decimal>,
    #[serde(serialize_with = "opt_rate")]
    pub interest_rate: Option<Decimal>,
}

fn opt_date<S: serde::Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match d.and_then(|d| d.format(DATE).ok()) {
        Some(text) => s.serialize_str(&text),
        None => s.serialize_none(),
    }
}

/// A rate as configured, with two places at least (`10.15`, `10.125`).
fn opt_rate<S: serde::Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(v) if v.normalize().scale() > 2 => s.serialize_str(&v.normalize().to_string()),
        Some(v) => s.serialize_str(&format!("{:.2}", v)),
        None => s.serialize_none(),
    }
}

fn opt_amount<S: serde::Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(v) => s.serialize_str(&format!("{:.2}", v)),
        None => s.serialize_none(),
    }
}

/// Where the deadline stands, from the history of the current submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Deadline {
    started_at: OffsetDateTime,
    /// `None` while interrupted.
    due_on: Option<Date>,
    paid_on: Option<Date>,
}

/// Reads the deadline out of `history` (oldest first, the current submission's only).
fn deadline(history: &[StatusEntry], days: i64) -> Option<Deadline> {
    // A recycled invoice was not received by the right party: only what follows counts.
    let from = history
        .iter()
        .rposition(|e| e.status == TO_RECYCLE)
        .map_or(0, |i| i + 1);
    let history = &history[from..];
    let start = history
        .iter()
        .position(|e| e.status == MOE_RECEIPT)
        .or_else(|| history.iter().position(|e| e.status == BUYER_RECEIPT))?;
    let started_at = history[start].at;
    let after = &history[start..];
    let paid_on = after
        .iter()
        .find(|e| e.status == PAID)
        .map(|e| paris_day(e.at));
    let mut due_on = Some(paris_day(started_at) + time::Duration::days(days));
    // R2192-27: one interruption only; a later suspension leaves the deadline running.
    if let Some(i) = after.iter().position(|e| e.status == SUSPENDED) {
        let suspended_on = paris_day(after[i].at);
        let stops_before = paid_on.is_none_or(|paid| suspended_on <= paid);
        if let Some(due) = due_on.filter(|due| suspended_on <= *due && stops_before) {
            let left = (due - suspended_on).whole_days();
            // Interrupted until the next status (the documents arrived: `COMPLETEE`).
            due_on = after.get(i + 1).map(|resumed| {
                paris_day(resumed.at) + time::Duration::days(left.max(DAYS_AFTER_INTERRUPTION))
            });
        }
    }
    Some(Deadline {
        started_at,
        due_on,
        paid_on,
    })
}

/// The day the invoice was paid, from `history` (the current submission's, oldest first):
/// the first `MISE_EN_PAIEMENT` once the clock started (for a works statement, the payment
/// of its last following document, written there as `MISE_EN_PAIEMENT`). The one rule of
/// "paid": the clock stops there, the overdue pass and the company list's `overdue` filter
/// read it (the store keeps it on the item as `paid_on`), and its first day is an event.
pub fn paid_on(history: &[StatusEntry]) -> Option<Date> {
    deadline(history, 0).and_then(|d| d.paid_on)
}

/// The clock of a situation: `history` is its Chorus Pro status history (oldest first,
/// the current submission's only), `amount_due` what the invoice asks to be paid (TTC).
pub fn payment_clock(
    history: &[StatusEntry],
    amount_due: Option<Decimal>,
    terms: PaymentTerms<'_>,
) -> PaymentClock {
    let days = terms.category.deadline_days();
    let mut clock = PaymentClock {
        buyer_category: terms.category.as_str(),
        deadline_days: days,
        amount_due,
        clock_started_at: None,
        due_on: None,
        paid_on: None,
        days_late: None,
        late_interest: None,
        fixed_indemnity: None,
        interest_rate: None,
    };
    let Some(d) = deadline(history, days) else {
        return clock;
    };
    clock.clock_started_at = Some(crate::clock::rfc3339(d.started_at));
    clock.due_on = d.due_on;
    clock.paid_on = d.paid_on;
    let Some(due_on) = d.due_on else {
        return clock;
    };
    // Interest runs from the day after the deadline to the payment day included.
    let until = d.paid_on.unwrap_or(terms.today);
    let late = (until - due_on).whole_days().max(0);
    clock.days_late = Some(late);
    if late == 0 {
        clock.late_interest = Some(Decimal::ZERO);
        clock.fixed_indemnity = Some(Decimal::ZERO);
        return clock;
    }
    clock.fixed_indemnity = Some(FIXED_INDEMNITY);
    clock.interest_rate = terms.rates.rate_for(due_on + time::Duration::days(1));
    clock.late_interest = clock
        .interest_rate
        .zip(amount_due)
        .and_then(|(rate, amount)| late_interest(amount, rate, late));
    clock
}

/// amount × rate % × days / 365, to the cent (half away from zero). `None` on overflow.
pub fn late_interest(amount: Decimal, rate_percent: Decimal, days: i64) -> Option<Decimal> {
    amount
        .checked_mul(rate_percent)?
        .checked_mul(Decimal::from(days))?
        .checked_div(Decimal::from(36_500))
        .map(|v| v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    macro_rules! dec {
        ($s:literal) => {
            stringify!($s).parse::<Decimal>().unwrap()
        };
    }

    fn e(at: OffsetDateTime, status: &str) -> StatusEntry {
        StatusEntry {
            at,
            status: status.to_owned(),
            comment: None,
        }
    }

    fn rates() -> LatePaymentRates {
        LatePaymentRates::parse("2024-01-01=12.50,2026-07-01=10.15,2027-01-01=10.40").unwrap()
    }

    struct Case {
        name: &'static str,
        category: BuyerCategory,
        history: Vec<StatusEntry>,
        today: Date,
        due_on: Option<Date>,
        paid_on: Option<Date>,
        days_late: Option<i64>,
        rate: Option<&'static str>,
        interest: Option<&'static str>,
        indemnity: Option<&'static str>,
    }

    #[test]
    fn the_clock_on_a_table_of_cases() {
        use BuyerCategory::*;
        let amount = dec!(15949.99);
        let cases = [
            Case {
                name: "not started: nothing but the deposit",
                category: LocalAuthority,
                history: vec![e(datetime!(2026-11-02 10:00 UTC), "DEPOSEE")],
                today: date!(2027 - 03 - 01),
                due_on: None,
                paid_on: None,
                days_late: None,
                rate: None,
                interest: None,
                indemnity: None,
            },
            Case {
                name: "30 days, paid on the due day: not late",
                category: LocalAuthority,
                history: vec![
                    e(datetime!(2026-11-02 10:00 UTC), "DEPOSEE"),
                    e(datetime!(2026-11-03 09:00 UTC), "MISE_A_DISPOSITION"),
                    e(datetime!(2026-12-03 15:00 UTC), "MISE_EN_PAIEMENT"),
                ],
                today: date!(2027 - 03 - 01),
                due_on: Some(date!(2026 - 12 - 03)),
                paid_on: Some(date!(2026 - 12 - 03)),
                days_late: Some(0),
                rate: None,
                interest: Some("0.00"),
                indemnity: Some("0.00"),
            },
            Case {
                name: "state, paid 12 days late",
                category: State,
                history: vec![
                    e(datetime!(2026-12-06 09:00 UTC), "MISE_A_DISPOSITION"),
                    e(datetime!(2027-01-17 09:00 UTC), "MISE_EN_PAIEMENT"),
                ],
                today: date!(2027 - 03 - 01),
                due_on: Some(date!(2027 - 01 - 05)),
                paid_on: Some(date!(2027 - 01 - 17)),
                days_late: Some(12),
                // First late day 2027-01-06: the rate of 1 January 2027.
                rate: Some("10.40"),
                interest: Some("54.54"),
                indemnity: Some("40.00"),
            },
            Case {
                name: "rate change mid-delay: the half-year the interest began in",
                category: LocalAuthority,
                history: vec![e(datetime!(2026-11-20 09:00 UTC), "MISE_A_DISPOSITION")],
                today: date!(2027 - 01 - 19),
                due_on: Some(date!(2026 - 12 - 20)),
                paid_on: None,
                days_late: Some(30),
                rate: Some("10.15"),
                interest: Some("133.06"),
                indemnity: Some("40.00"),
            },
            Case {
                name: "health establishment, 50 days, unpaid",
                category: HealthEstablishment,
                history: vec![e(datetime!(2026-11-03 09:00 UTC), "MISE_A_DISPOSITION")],
                today: date!(2027 - 01 - 01),
                due_on: Some(date!(2026 - 12 - 23)),
                paid_on: None,
                days_late: Some(9),
                rate: Some("10.15"),
                interest: Some("39.92"),
                indemnity: Some("40.00"),
            },
            Case {
                name: "public company, 60 days, the works MOE's receipt starts it",
                category: PublicCompany,
                history: vec![
                    e(datetime!(2026-11-03 09:00 UTC), "MISE_A_DISPOSITION_MOE"),
                    e(datetime!(2026-11-10 09:00 UTC), "MISE_A_DISPOSITION"),
                ],
                today: date!(2027 - 01 - 02),
                due_on: Some(date!(2027 - 01 - 02)),
                paid_on: None,
                days_late: Some(0),
                rate: None,
                interest: Some("0.00"),
                indemnity: Some("0.00"),
            },
            Case {
                name: "leap year: February 29th counts",
                category: State,
                history: vec![
                    e(datetime!(2028-02-01 09:00 UTC), "MISE_A_DISPOSITION"),
                    e(datetime!(2028-03-05 09:00 UTC), "MISE_EN_PAIEMENT"),
                ],
                today: date!(2028 - 06 - 01),
                due_on: Some(date!(2028 - 03 - 02)),
                paid_on: Some(date!(2028 - 03 - 05)),
                days_late: Some(3),
                rate: Some("10.40"),
                interest: Some("13.63"),
                indemnity: Some("40.00"),
            },
            Case {
                name: "suspended on day 10, completed 20 days later: 30 new days",
                category: LocalAuthority,
                history: vec![
                    e(datetime!(2026-11-02 09:00 UTC), "MISE_A_DISPOSITION"),
                    e(datetime!(2026-11-12 09:00 UTC), "SUSPENDUE"),
                    e(datetime!(2026-12-02 09:00 UTC), "COMPLETEE"),
                    e(datetime!(2027-01-03 09:00 UTC), "MISE_EN_PAIEMENT"),
                ],
                today: date!(2027 - 03 - 01),
                due_on: Some(date!(2027 - 01 - 01)),
                paid_on: Some(date!(2027 - 01 - 03)),
                days_late: Some(2),
                rate: Some("10.40"),
                interest: Some("9.09"),
                indemnity: Some("40.00"),
            },
            Case {
                name: "still suspended: no due date",
                category: LocalAuthority,
                history: vec![
                    e(datetime!(2026-11-02 09:00 UTC), "MISE_A_DISPOSITION"),
                    e(datetime!(2026-11-12 09:00 UTC), "SUSPENDUE"),
                ],
                today: date!(2027 - 03 - 01),
                due_on: None,
                paid_on: None,
                days_late: None,
                rate: None,
                interest: None,
                indemnity: None,
            },
            Case {
                name: "health establishment suspended with 45 days left keeps them",
                category: HealthEstablishment,
                history: vec![
                    e(datetime!(2026-11-02 09:00 UTC), "MISE_A_DISPOSITION"),
                    e(datetime!(2026-11-07 09:00 UTC), "SUSPENDUE"),
                    e(datetime!(2026-11-17 09:00 UTC), "COMPLETEE"),
                    e(datetime!(2026-11-20 09:00 UTC), "SUSPENDUE"),
                ],
                today: date!(2027 - 01 - 01),
                due_on: Some(date!(2027 - 01 - 01)),
                paid_on: None,
                days_late: Some(0),
                rate: None,
                interest: Some("0.00"),
                indemnity: Some("0.00"),
            },
            Case {
                name: "recycled: the receipt after the recycling counts",
                category: LocalAuthority,
                history: vec![
                    e(datetime!(2026-10-01 09:00 UTC), "MISE_A_DISPOSITION"),
                    e(datetime!(2026-10-05 09:00 UTC), "A_RECYCLER"),
                    e(datetime!(2026-10-20 09:00 UTC), "MISE_A_DISPOSITION"),
                ],
                today: date!(2026 - 11 - 20),
                due_on: Some(date!(2026 - 11 - 19)),
                paid_on: None,
                days_late: Some(1),
                rate: Some("10.15"),
                interest: Some("4.44"),
                indemnity: Some("40.00"),
            },
            Case {
                name: "a status at 23:30 UTC is the next Paris day",
                category: LocalAuthority,
                history: vec![e(datetime!(2026-11-02 23:30 UTC), "MISE_A_DISPOSITION")],
                today: date!(2026 - 12 - 03),
                due_on: Some(date!(2026 - 12 - 03)),
                paid_on: None,
                days_late: Some(0),
                rate: None,
                interest: Some("0.00"),
                indemnity: Some("0.00"),
            },
        ];
        let table = rates();
        for c in cases {
            let terms = PaymentTerms {
                category: c.category,
                rates: &table,
                today: c.today,
            };
            let clock = payment_clock(&c.history, Some(amount), terms);
            assert_eq!(
                clock.deadline_days,
                c.category.deadline_days(),
                "{}",
                c.name
            );
            assert_eq!(clock.due_on, c.due_on, "{}", c.name);
            assert_eq!(clock.paid_on, c.paid_on, "{}", c.name);
            assert_eq!(clock.days_late, c.days_late, "{}", c.name);
            let text = |d: Option<Decimal>| d.map(|d| format!("{d:.2}"));
            assert_eq!(text(clock.interest_rate).as_deref(), c.rate, "{}", c.name);
            assert_eq!(
                text(clock.late_interest).as_deref(),
                c.interest,
                "{}",
                c.name
            );
            assert_eq!(
                text(clock.fixed_indemnity).as_deref(),
                c.indemnity,
                "{}",
                c.name
            );
            assert_eq!(
                clock.clock_started_at.is_some(),
                c.name != "not started: nothing but the deposit",
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn unknown_amount_or_rate_leaves_the_interest_null() {
        let history = [e(datetime!(2026-11-02 09:00 UTC), "MISE_A_DISPOSITION")];
        let empty = LatePaymentRates::default();
        let terms = PaymentTerms {
            category: BuyerCategory::LocalAuthority,
            rates: &empty,
            today: date!(2026 - 12 - 12),
        };
        let clock = payment_clock(&history, Some(dec!(1000)), terms);
        assert_eq!(clock.days_late, Some(10));
        assert_eq!(clock.interest_rate, None);
        assert_eq!(clock.late_interest, None);
        assert_eq!(clock.fixed_indemnity, Some(dec!(40.00)));
        let table = rates();
        let clock = payment_clock(
            &history,
            None,
            PaymentTerms {
                rates: &table,
                ..terms
            },
        );
        assert_eq!(clock.interest_rate, Some(dec!(10.15)));
        assert_eq!(clock.late_interest, None);
    }

    #[test]
    fn view_shape() {
        let table = rates();
        let terms = PaymentTerms {
            category: BuyerCategory::LocalAuthority,
            rates: &table,
            today: date!(2027 - 01 - 17),
        };
        let v = serde_json::to_value(payment_clock(&[], None, terms)).unwrap();
        assert_eq!(v["buyer_category"], "local_authority");
        assert_eq!(v["deadline_days"], 30);
        assert_eq!(v["due_on"], serde_json::Value::Null);
        assert_eq!(v["late_interest"], serde_json::Value::Null);
        let history = [e(datetime!(2026-12-06 09:00 UTC), "MISE_A_DISPOSITION")];
        let v = serde_json::to_value(payment_clock(&history, Some(dec!(1000)), terms)).unwrap();
        assert_eq!(v["due_on"], "2027-01-05");
        assert_eq!(v["days_late"], 12);
        assert_eq!(v["interest_rate"], "10.40");
        assert_eq!(v["late_interest"], "3.42");
        assert_eq!(v["fixed_indemnity"], "40.00");
        assert_eq!(v["clock_started_at"], "2026-12-06T09:00:00Z");
    }

    #[test]
    fn categories() {
        for c in BuyerCategory::ALL {
            assert_eq!(BuyerCategory::parse(c.as_str()), Some(c));
        }
        assert_eq!(BuyerCategory::default(), BuyerCategory::LocalAuthority);
        assert_eq!(BuyerCategory::parse("State"), None);
        assert!(BuyerCategory::message_fr("mairie").contains("« mairie »"));
    }

    #[test]
    fn rate_table() {
        let t = rates();
        assert_eq!(t.rate_for(date!(2023 - 12 - 31)), None);
        assert_eq!(t.rate_for(date!(2024 - 01 - 01)), Some(dec!(12.50)));
        assert_eq!(t.rate_for(date!(2026 - 06 - 30)), Some(dec!(12.50)));
        assert_eq!(t.rate_for(date!(2026 - 07 - 01)), Some(dec!(10.15)));
        assert_eq!(t.rate_for(date!(2026 - 12 - 31)), Some(dec!(10.15)));
        assert_eq!(t.rate_for(date!(2031 - 08 - 01)), Some(dec!(10.40)));
        assert!(LatePaymentRates::parse("").unwrap().is_empty());
        assert!(LatePaymentRates::parse(" 2026-07-01 = 10.15 , ").is_ok());
        for (bad, entry) in [
            ("2026-07-01=10.15,2026-03-01=9", "2026-03-01=9"),
            ("2026-07-01=abc", "2026-07-01=abc"),
            ("2026-07-01", "2026-07-01"),
            ("2026-13-01=1", "2026-13-01=1"),
            ("2027-01-01=1,2026-07-01=2", "2026-07-01=2"),
            ("2026-07-01=-1", "2026-07-01=-1"),
            ("2026-07-01=101", "2026-07-01=101"),
        ] {
            let e = LatePaymentRates::parse(bad).unwrap_err();
            assert_eq!(e.entry, entry, "{bad}");
        }
    }

    #[test]
    fn interest_is_rounded_to_the_cent() {
        // 15949.99 × 10.15 % × 12 / 365 = 53.224…
        assert_eq!(
            late_interest(dec!(15949.99), dec!(10.15), 12),
            Some(dec!(53.22))
        );
        assert_eq!(late_interest(dec!(365), dec!(10), 1), Some(dec!(0.10)));
        assert_eq!(late_interest(dec!(182.5), dec!(1), 1), Some(dec!(0.01)));
    }
}
