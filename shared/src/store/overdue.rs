//! The payment index (GSI2, sparse): a situation is in it while its payment clock runs —
//! started, not paid, its overdue e-mail not yet sent — under `DUE#{shard}`, sorted by its
//! due date. The overdue pass of status-sync reads `GSI2SK < {today}` in each shard, i.e.
//! only the situations whose deadline has passed: nothing not due is read.
//!
//! The entry is written by `Store::transition` (the one place a situation's status history
//! changes) from the history the write leaves. The due date uses the buyer category noted
//! on the situation (`Change::buyer_category`), else the shortest deadline (30 days): an
//! entry is never later than the real deadline; the overdue pass reads the market and, for
//! a longer deadline, notes its category, which moves the entry to the right date.

use aws_sdk_dynamodb::types::AttributeValue;
use time::{Date, OffsetDateTime};

use super::item::s;
use super::keys;
use super::outbox::after_change;
use super::sharded::{BelowBound, situation_of};
use super::transmission::{Change, Tracked};
use super::{Store, StoreError};
use crate::domain::payment::{BuyerCategory, LatePaymentRates, PaymentTerms};
use crate::domain::transmission::TransmissionState;
use crate::domain::{MarketRef, Siret, SituationNumber};
use crate::follow_settings::{FollowWorker, ShardReach};

/// The attribute that says a situation is paid (`Situation::paid_on`), as an ISO date.
pub(crate) const PAID_ON: &str = "paid_on";

fn set_value<'a>(change: &'a Change, name: &str) -> Option<&'a AttributeValue> {
    change.set.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The due date the index holds for the situation as `change` leaves it (`None`: out).
pub(crate) fn due_entry(tracked: &Tracked, to: TransmissionState, change: &Change) -> Option<Date> {
    let notified = set_value(change, "overdue_notified_at").is_some()
        || tracked.record.overdue_notified_at.is_some();
    if notified {
        return None;
    }
    let category = set_value(change, "buyer_category")
        .and_then(|v| v.as_s().ok())
        .and_then(|v| BuyerCategory::parse(v))
        .or(tracked.record.buyer_category)
        .unwrap_or(BuyerCategory::LocalAuthority);
    let after = after_change(&tracked.situation, to, change);
    if is_rejected(&after) {
        // A rejected invoice is not payable: no deadline runs for it.
        return None;
    }
    let none = LatePaymentRates::default();
    let clock = after.payment(PaymentTerms::at(
        Some(category),
        &none,
        OffsetDateTime::UNIX_EPOCH,
    ));
    match clock.paid_on {
        Some(_) => None,
        None => clock.due_on,
    }
}

/// What a transition writes of the payment: the payment index entry ([`due_entry`]) and
/// the day the situation as the change leaves it was paid (`Situation::paid_on`), kept on
/// the item as `paid_on` for the company list's `overdue` filter (`store::company`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PaymentEntry {
    pub due_on: Option<Date>,
    pub paid_on: Option<Date>,
}

pub(crate) fn payment_entry(
    tracked: &Tracked,
    to: TransmissionState,
    change: &Change,
) -> PaymentEntry {
    PaymentEntry {
        due_on: due_entry(tracked, to, change),
        paid_on: after_change(&tracked.situation, to, change).paid_on(),
    }
}

/// Rejected by Chorus Pro or the buyer, or a works statement refused for good: a new
/// invoice number is needed, nothing is due (`Transmission::needs_new_number`).
pub fn is_rejected(situation: &crate::domain::Situation) -> bool {
    situation.transmission.needs_new_number()
}

/// Adds the index entry (or its removal) and the payment day (or its removal) to a
/// transition's update.
pub(crate) fn index_writes(
    tracked: &Tracked,
    payment: PaymentEntry,
    sets: &mut Vec<String>,
    removes: &mut Vec<String>,
    values: &mut Vec<(String, AttributeValue)>,
) {
    match payment.paid_on {
        Some(day) => {
            sets.push(format!("{PAID_ON} = :paid_on"));
            values.push((":paid_on".into(), s(crate::clock::iso_date(day))));
        }
        None => removes.push(PAID_ON.into()),
    }
    let sit = &tracked.situation;
    match payment.due_on {
        Some(day) => {
            sets.push(format!("{} = :due_pk", keys::GSI2PK));
            sets.push(format!("{} = :due_sk", keys::GSI2SK));
            values.push((":due_pk".into(), s(keys::due_gsi2pk(&sit.siret))));
            values.push((
                ":due_sk".into(),
                s(keys::due_gsi2sk(
                    day,
                    &sit.siret,
                    &sit.market_ref,
                    sit.number,
                )),
            ));
        }
        None => {
            removes.push(keys::GSI2PK.into());
            removes.push(keys::GSI2SK.into());
        }
    }
}

/// A situation whose deadline passed, as the index lists it.
pub type OverdueKey = (Siret, MarketRef, SituationNumber);

impl Store {
    /// The situations whose deadline passed before `today`, in the worker's own shards
    /// only: no lease guards the overdue pass, so two workers never share one (a lone
    /// worker owns them all). Keys only: each is read again, consistently, before anything
    /// is done with it; `limit` at most.
    pub async fn overdue_candidates(
        &self,
        today: Date,
        limit: usize,
        worker: &FollowWorker,
    ) -> Result<(Vec<OverdueKey>, usize), StoreError> {
        let shards = worker.shards(keys::SYNC_SHARDS, ShardReach::OwnOnly);
        let query = BelowBound {
            index: keys::GSI2,
            shard_pks: shards.into_iter().map(keys::due_shard_pk).collect(),
            bound: keys::overdue_before(today),
            projection: None,
            limit,
        };
        self.query_below(query, situation_of).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::situation::{SituationIdentifiers, StatusEntry, Transmission};
    use crate::domain::{InvoiceNumber, SiretCheck, Situation};
    use crate::store::transmission::TransmissionRecord;
    use time::macros::{date, datetime};

    fn tracked(statuses: &[(&str, OffsetDateTime)]) -> Tracked {
        let at = datetime!(2026-11-02 10:00 UTC);
        let mut transmission = Transmission::not_transmitted();
        transmission.state = TransmissionState::Integrated;
        transmission.chorus_status = statuses.last().map(|s| s.0.to_owned());
        transmission.status_history = statuses
            .iter()
            .map(|(status, at)| StatusEntry {
                at: *at,
                status: (*status).to_owned(),
                comment: None,
            })
            .collect();
        Tracked {
            situation: Situation {
                siret: Siret::parse("81234567600017", SiretCheck::Full).unwrap(),
                market_ref: MarketRef::parse("gymnase-2026").unwrap(),
                number: SituationNumber::new(3).unwrap(),
                identifiers: SituationIdentifiers {
                    invoice_number: InvoiceNumber::parse("SIT-3").unwrap(),
                    period: None,
                    commitment_number: None,
                },
                transmission,
                previous_submissions: Vec::new(),
                created_at: at,
                updated_at: at,
                revision: 4,
            },
            record: TransmissionRecord::default(),
        }
    }

    const AVAILABLE: OffsetDateTime = datetime!(2026-11-17 10:00 UTC);
    const INTEGRATED: TransmissionState = TransmissionState::Integrated;

    #[test]
    fn a_running_clock_is_indexed_at_its_due_date_and_leaves_when_done() {
        let running = tracked(&[("DEPOSEE", AVAILABLE), ("MISE_A_DISPOSITION", AVAILABLE)]);
        let none = Change::default();
        assert_eq!(
            due_entry(&running, INTEGRATED, &none),
            Some(date!(2026 - 12 - 17))
        );
        // Not started: out.
        let waiting = tracked(&[("DEPOSEE", AVAILABLE)]);
        assert_eq!(due_entry(&waiting, INTEGRATED, &none), None);
        // The write that starts it puts it in.
        let starts = Change::default().history(StatusEntry {
            at: AVAILABLE,
            status: "MISE_A_DISPOSITION".into(),
            comment: None,
        });
        assert_eq!(
            due_entry(&waiting, INTEGRATED, &starts),
            Some(date!(2026 - 12 - 17))
        );
        // The market's longer deadline, once noted, moves it.
        let health = Change::default().buyer_category(BuyerCategory::HealthEstablishment);
        assert_eq!(
            due_entry(&running, INTEGRATED, &health),
            Some(date!(2027 - 01 - 06))
        );
        // Paid, told, or rejected: out.
        let paid = Change::default()
            .chorus_status(Some("MISE_EN_PAIEMENT"))
            .history(StatusEntry {
                at: datetime!(2027-01-02 10:00 UTC),
                status: "MISE_EN_PAIEMENT".into(),
                comment: None,
            });
        assert_eq!(due_entry(&running, INTEGRATED, &paid), None);
        let told = Change::default().overdue_notified(AVAILABLE);
        assert_eq!(due_entry(&running, INTEGRATED, &told), None);
        let rejected = Change::default().chorus_status(Some("REJETEE"));
        assert_eq!(due_entry(&running, INTEGRATED, &rejected), None);
    }

    #[test]
    fn the_payment_day_is_kept_once_paid_also_for_a_works_statement() {
        let running = tracked(&[("DEPOSEE", AVAILABLE), ("MISE_A_DISPOSITION", AVAILABLE)]);
        let none = Change::default();
        assert_eq!(payment_entry(&running, INTEGRATED, &none).paid_on, None);
        // A works statement: its own status stays `ASSOCIEE`, its last following
        // document's payment is written into its history (status-sync's `works.rs`).
        let works = tracked(&[
            ("MISE_A_DISPOSITION_MOE", AVAILABLE),
            ("ASSOCIEE", AVAILABLE),
        ]);
        let paid = Change::default().history(StatusEntry {
            at: datetime!(2026-12-20 10:00 UTC),
            status: "MISE_EN_PAIEMENT".into(),
            comment: Some("pièce suivante A19".into()),
        });
        let entry = payment_entry(&works, INTEGRATED, &paid);
        assert_eq!(entry.paid_on, Some(date!(2026 - 12 - 20)));
        assert_eq!(entry.due_on, None, "paid: out of the payment index");
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut values = Vec::new();
        index_writes(&works, entry, &mut sets, &mut removes, &mut values);
        assert!(sets.contains(&"paid_on = :paid_on".to_owned()), "{sets:?}");
        assert_eq!(values[0].1, s("2026-12-20"));
        // A works statement refused for good is not payable either.
        let refused = Change::default().chorus_status(Some("REFUSEE_MOE"));
        let works_running = tracked(&[("MISE_A_DISPOSITION_MOE", AVAILABLE)]);
        assert!(due_entry(&works_running, INTEGRATED, &none).is_some());
        assert_eq!(due_entry(&works_running, INTEGRATED, &refused), None);
    }

    /// A works statement's payment changes neither its state nor its status: it is an
    /// event all the same, once, and it says the day it was paid.
    #[test]
    fn a_works_statement_paid_is_one_status_event_with_its_payment_day() {
        use crate::store::outbox::{STATUS_CHANGED, transition_events};
        let works = tracked(&[
            ("MISE_A_DISPOSITION_MOE", AVAILABLE),
            ("ASSOCIEE", AVAILABLE),
        ]);
        let at = datetime!(2026-12-20 10:00 UTC);
        let paid = Change::default().history(StatusEntry {
            at,
            status: "MISE_EN_PAIEMENT".into(),
            comment: None,
        });
        let events = transition_events(&works, INTEGRATED, &paid, at);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].detail_type, STATUS_CHANGED);
        assert_eq!(events[0].detail.chorus_status.as_deref(), Some("ASSOCIEE"));
        assert_eq!(
            events[0].detail.previous_chorus_status.as_deref(),
            Some("ASSOCIEE")
        );
        assert_eq!(events[0].detail.paid_on.as_deref(), Some("2026-12-20"));
        // Once paid, a later look that changes nothing is no event.
        let mut after = works.clone();
        after
            .situation
            .transmission
            .status_history
            .extend(paid.history.clone());
        assert!(transition_events(&after, INTEGRATED, &Change::default(), at).is_empty());
        // An unpaid situation's detail has no `paid_on` at all (unchanged shape).
        let moved = Change::default().chorus_status(Some("A_VALIDER_MOE"));
        let detail = &transition_events(&works, INTEGRATED, &moved, at)[0].detail;
        let json = serde_json::to_value(detail).unwrap();
        assert!(json.get("paid_on").is_none(), "{json}");
    }

    /// The outbox's rule, on the same situations (`store::outbox::transition_events`).
    #[test]
    fn only_a_change_of_state_or_status_or_the_first_overdue_mark_is_an_event() {
        use crate::store::outbox::{PAYMENT_OVERDUE, STATUS_CHANGED, transition_events};
        let running = tracked(&[("DEPOSEE", AVAILABLE), ("MISE_A_DISPOSITION", AVAILABLE)]);
        let at = datetime!(2026-12-20 10:00 UTC);
        assert!(
            transition_events(&running, INTEGRATED, &Change::default().checks_done(3), at)
                .is_empty()
        );
        let paid = Change::default().chorus_status(Some("MISE_EN_PAIEMENT"));
        let events = transition_events(&running, INTEGRATED, &paid, at);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].detail_type, STATUS_CHANGED);
        assert_eq!(
            events[0].detail.previous_chorus_status.as_deref(),
            Some("MISE_A_DISPOSITION")
        );
        assert_eq!(
            events[0].detail.chorus_status.as_deref(),
            Some("MISE_EN_PAIEMENT")
        );
        // Stable: the same change of the same revision has the same id.
        assert_eq!(
            events[0].id,
            transition_events(&running, INTEGRATED, &paid, at)[0].id
        );
        assert_eq!(events[0].id, "status:81234567600017:gymnase-2026:003:r5");
        let marked = Change::default().overdue(date!(2026 - 12 - 18));
        let events = transition_events(&running, INTEGRATED, &marked, at);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].detail_type, PAYMENT_OVERDUE);
        let mut already = running.clone();
        already.record.overdue_since = Some(date!(2026 - 12 - 18));
        assert!(transition_events(&already, INTEGRATED, &marked, at).is_empty());
    }
}
