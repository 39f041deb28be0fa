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

use super::item::{ItemReader, s};
use super::keys;
use super::outbox::after_change;
use super::transmission::{Change, Tracked};
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::domain::payment::{BuyerCategory, LatePaymentRates, PaymentTerms};
use crate::domain::situation::TransmissionState;
use crate::domain::{MarketRef, Siret, SituationNumber};

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

/// Adds the index entry (or its removal) to a transition's update.
pub(crate) fn index_writes(
    tracked: &Tracked,
    due_on: Option<Date>,
    sets: &mut Vec<String>,
    removes: &mut Vec<String>,
    values: &mut Vec<(String, AttributeValue)>,
) {
    let sit = &tracked.situation;
    match due_on {
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
    /// The situations whose deadline passed before `today`, every shard (keys only: each
    /// is read again, consistently, before anything is done with it), `limit` at most.
    pub async fn overdue_candidates(
        &self,
        today: Date,
        limit: usize,
    ) -> Result<(Vec<OverdueKey>, usize), StoreError> {
        let mut found = Vec::new();
        let mut read = 0usize;
        for shard in 0..keys::SYNC_SHARDS {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(keys::GSI2)
                    .key_condition_expression("GSI2PK = :pk AND GSI2SK < :bound")
                    .expression_attribute_values(":pk", s(keys::due_shard_pk(shard)))
                    .expression_attribute_values(":bound", s(keys::overdue_before(today)))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| StoreError::Aws(error_text(&e)))?;
                read += usize::try_from(out.scanned_count).unwrap_or(0);
                for item in out.items() {
                    let r = ItemReader::new(item);
                    let siret = r.parsed("siret", |v| {
                        Siret::parse(v, crate::domain::SiretCheck::ShapeOnly)
                    })?;
                    let market_ref = r.parsed("market_ref", MarketRef::parse)?;
                    let number = r
                        .n("situation")
                        .ok()
                        .and_then(|v| u16::try_from(v).ok())
                        .and_then(SituationNumber::new)
                        .ok_or_else(|| r.corrupt("invalid value in situation"))?;
                    found.push((siret, market_ref, number));
                    if found.len() >= limit {
                        return Ok((found, read));
                    }
                }
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok((found, read))
    }
}
