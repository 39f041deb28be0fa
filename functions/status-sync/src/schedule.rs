//! When things are looked at again (README, "Follow-up"): a flux just deposited within
//! minutes (`follow_up_delay`, unchanged), a company with an invoice waiting for its buyer
//! every `FOLLOW_BUYER_MINUTES`, one whose invoices all wait for payment every
//! `FOLLOW_PAYMENT_HOURS`, and each open invoice consulted on its own every
//! `FOLLOW_FULL_CHECK_HOURS` whatever the searches said (the safety net).

use std::collections::BTreeMap;

use shared::chorus::InvoiceStatus;
use shared::domain::transmission::follow_up_delay;
use shared::follow_settings::{FollowMode, FollowSettings};
use shared::store::follow::OpenInvoice;
use time::{Duration, OffsetDateTime};

/// A look that failed is tried again after this long.
pub const LOOK_RETRY: Duration = Duration::minutes(5);

/// When an integrated invoice not yet final is consulted on its own again.
pub fn invoice_recheck(settings: &FollowSettings, checks: u32) -> Duration {
    match settings.mode {
        FollowMode::Full => follow_up_delay(checks),
        FollowMode::Changes => settings.full_check_interval,
    }
}

/// The buyer has accepted the service (`SERVICE_FAIT`) and what remains is the payment
/// (docs/chorus-pro.md#invoice-statuses): nothing is asked of the company meanwhile.
pub fn waits_for_payment(status: &str) -> bool {
    matches!(
        InvoiceStatus::from(status),
        InvoiceStatus::ServiceFait
            | InvoiceStatus::Mandatee
            | InvoiceStatus::MiseADispositionComptable
            | InvoiceStatus::Comptabilisee
    )
}

/// How often a company with an invoice in `status` is searched.
pub fn look_interval(settings: &FollowSettings, status: &str) -> Duration {
    match waits_for_payment(status) {
        true => settings.payment_interval,
        false => settings.buyer_interval,
    }
}

/// The company's next look: the shortest interval of its open invoices; none without any.
pub fn next_look(
    settings: &FollowSettings,
    open: &BTreeMap<i64, OpenInvoice>,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    open.values()
        .map(|invoice| look_interval(settings, &invoice.status))
        .min()
        .map(|interval| now + interval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{MarketRef, SituationNumber};
    use time::macros::datetime;

    fn open(statuses: &[&str]) -> BTreeMap<i64, OpenInvoice> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, status)| {
                let invoice = OpenInvoice {
                    market_ref: MarketRef::parse("M-1").unwrap(),
                    number: SituationNumber::new(u16::try_from(i + 1).unwrap()).unwrap(),
                    status: (*status).to_owned(),
                };
                (i64::try_from(i).unwrap(), invoice)
            })
            .collect()
    }

    #[test]
    fn the_most_urgent_invoice_sets_the_cadence() {
        let settings = FollowSettings::default();
        let now = datetime!(2026-12-03 10:00 UTC);
        assert_eq!(next_look(&settings, &open(&[]), now), None);
        assert_eq!(
            next_look(&settings, &open(&["MANDATEE", "SERVICE_FAIT"]), now),
            Some(now + Duration::hours(24))
        );
        assert_eq!(
            next_look(&settings, &open(&["MANDATEE", "MISE_A_DISPOSITION"]), now),
            Some(now + Duration::minutes(60))
        );
        // A status this code does not know is looked at as often as a buyer's.
        assert_eq!(
            look_interval(&settings, "A_VALIDER_1"),
            Duration::minutes(60)
        );
    }

    #[test]
    fn the_safety_net_is_long_only_when_changes_are_searched() {
        let mut settings = FollowSettings::default();
        assert_eq!(invoice_recheck(&settings, 0), Duration::hours(72));
        settings.mode = FollowMode::Full;
        assert_eq!(invoice_recheck(&settings, 0), follow_up_delay(0));
    }
}
