//! Situation items and the invoice number guards that keep a number to one situation.
//!
//! A guard is one item per (company, invoice number in capitals): `INVOICE_NUMBER#{KEY}`,
//! naming the situation that holds it. Taking a number is a `Put` of its guard with
//! `attribute_not_exists(PK)`, in the **same transaction** as the write of the situation:
//! of two requests racing for one number, DynamoDB lets exactly one transaction through,
//! and the other's cancellation reason carries the guard it ran into
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), which names the holder without
//! another read. Replacing a number deletes the old guard in that transaction too (on
//! condition that this situation holds it), or marks it `retired` when Chorus Pro rejected
//! an invoice under it: then it stays held for good.
//!
//! Situation items are created with a `Put` and then changed with an `Update` of the
//! identifier attributes only, so that attributes written by the transmission function
//! survive. For that function: every write of a situation item increments `revision` and
//! is conditional on the value it read; the transmission attributes are
//! `transmission_state` (string, see `TransmissionState`), `chorus_status`, `flux_number`
//! (strings), `chorus_invoice_id` (number) and `status_history` (list of maps
//! `{at, status, comment}`).

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::item::{Item, ItemReader, n, s};
use super::keys;
use super::market::{Page, build_error, page};
use super::{AuditEntry, Store, StoreError};
use crate::aws::error_text;
use crate::clock::rfc3339;
use crate::domain::market::CommitmentNumber;
use crate::domain::situation::{
    InvoiceNumberHolder, NumberChange, Period, PreviousSubmission, Release, StatusEntry,
    Transmission,
};
use crate::domain::transmission::TransmissionState;
use crate::domain::{
    InvoiceNumber, MarketRef, Siret, SiretCheck, Situation, SituationIdentifiers, SituationNumber,
};

/// Why a situation was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveSituationError {
    /// Another situation holds the number (or held it when Chorus Pro rejected it).
    #[error("invoice number held by situation {} of market {}", .0.situation, .0.market_ref)]
    NumberTaken(InvoiceNumberHolder),
    /// The situation changed since it was read: read it again and decide again.
    #[error("the situation changed since it was read")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a save does to the guards: take the number of a new situation, or apply a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardWrite {
    Take,
    Change(NumberChange),
}

pub(crate) fn situation_key(
    siret: &Siret,
    market_ref: &MarketRef,
    number: SituationNumber,
) -> Item {
    keys::company_item(siret, keys::situation_sk(market_ref, number))
}

fn guard_key(siret: &Siret, number: &InvoiceNumber) -> Item {
    keys::company_item(siret, keys::invoice_number_sk(number))
}

fn guard_item(situation: &Situation) -> Item {
    let number = &situation.identifiers.invoice_number;
    let mut item = guard_key(&situation.siret, number);
    item.insert("entity".into(), s("invoice_number"));
    item.insert("siret".into(), s(situation.siret.as_str()));
    item.insert("invoice_number".into(), s(number.as_str()));
    item.insert("market_ref".into(), s(situation.market_ref.as_str()));
    item.insert("situation".into(), n(situation.number.get()));
    item.insert("retired".into(), AttributeValue::Bool(false));
    item.insert("registered_at".into(), s(rfc3339(situation.updated_at)));
    item
}

fn holder_from_item(item: &Item) -> Result<InvoiceNumberHolder, StoreError> {
    let r = ItemReader::new(item);
    Ok(InvoiceNumberHolder {
        market_ref: r.s("market_ref")?.to_owned(),
        situation: r
            .n("situation")
            .and_then(|v| u16::try_from(v).map_err(|_| r.corrupt("situation out of range")))?,
        invoice_number: r.s("invoice_number")?.to_owned(),
        retired: r.flag("retired"),
    })
}

fn status_history_value(history: &[StatusEntry]) -> AttributeValue {
    AttributeValue::L(
        history
            .iter()
            .map(|e| {
                let mut m = Item::new();
                m.insert("at".into(), s(rfc3339(e.at)));
                m.insert("status".into(), s(e.status.clone()));
                if let Some(c) = &e.comment {
                    m.insert("comment".into(), s(c.clone()));
                }
                AttributeValue::M(m)
            })
            .collect(),
    )
}

fn previous_submissions_value(previous: &[PreviousSubmission]) -> AttributeValue {
    AttributeValue::L(
        previous
            .iter()
            .map(|p| {
                let mut m = Item::new();
                m.insert("invoice_number".into(), s(p.invoice_number.clone()));
                m.insert("transmission_state".into(), s(p.state.as_str()));
                if let Some(v) = &p.chorus_status {
                    m.insert("chorus_status".into(), s(v.clone()));
                }
                if let Some(v) = &p.flux_number {
                    m.insert("flux_number".into(), s(v.clone()));
                }
                if let Some(v) = p.chorus_invoice_id {
                    m.insert("chorus_invoice_id".into(), n(v));
                }
                m.insert("replaced_at".into(), s(rfc3339(p.replaced_at)));
                AttributeValue::M(m)
            })
            .collect(),
    )
}

fn situation_to_item(sit: &Situation) -> Item {
    let mut item = situation_key(&sit.siret, &sit.market_ref, sit.number);
    item.insert("entity".into(), s("situation"));
    item.insert("siret".into(), s(sit.siret.as_str()));
    item.insert("market_ref".into(), s(sit.market_ref.as_str()));
    item.insert("situation".into(), n(sit.number.get()));
    item.insert(
        "invoice_number".into(),
        s(sit.identifiers.invoice_number.as_str()),
    );
    if let Some(p) = sit.identifiers.period {
        item.insert("period".into(), s(p.to_string()));
    }
    if let Some(c) = &sit.identifiers.commitment_number {
        item.insert("commitment_number".into(), s(c.as_str()));
    }
    let t = &sit.transmission;
    item.insert("transmission_state".into(), s(t.state.as_str()));
    if let Some(v) = &t.chorus_status {
        item.insert("chorus_status".into(), s(v.clone()));
    }
    if let Some(v) = &t.flux_number {
        item.insert("flux_number".into(), s(v.clone()));
    }
    if let Some(v) = t.chorus_invoice_id {
        item.insert("chorus_invoice_id".into(), n(v));
    }
    if let Some(at) = t.company_check_since {
        item.insert("company_check_since".into(), s(rfc3339(at)));
    }
    if !t.status_history.is_empty() {
        item.insert(
            "status_history".into(),
            status_history_value(&t.status_history),
        );
    }
    if !sit.previous_submissions.is_empty() {
        item.insert(
            "previous_submissions".into(),
            previous_submissions_value(&sit.previous_submissions),
        );
    }
    item.insert("created_at".into(), s(rfc3339(sit.created_at)));
    item.insert("updated_at".into(), s(rfc3339(sit.updated_at)));
    item.insert("revision".into(), n(sit.revision));
    item
}

fn list_of_maps<'a>(item: &'a Item, name: &str) -> Vec<&'a Item> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_m().ok()).collect())
        .unwrap_or_default()
}

/// The situation's number an item holds (`situation`).
pub(crate) fn situation_number(r: &ItemReader) -> Result<SituationNumber, StoreError> {
    r.n("situation")
        .ok()
        .and_then(|v| u16::try_from(v).ok())
        .and_then(SituationNumber::new)
        .ok_or_else(|| r.corrupt("invalid value in situation"))
}

pub(crate) fn situation_from_item(item: &Item) -> Result<Situation, StoreError> {
    let r = ItemReader::new(item);
    let number = situation_number(&r)?;
    let state = |reader: &ItemReader<'_>| {
        reader.parsed("transmission_state", |v| {
            TransmissionState::parse(v).ok_or(())
        })
    };
    let status_history = list_of_maps(item, "status_history")
        .into_iter()
        .map(|m| {
            let e = ItemReader {
                key: r.key.clone(),
                item: m,
            };
            Ok(StatusEntry {
                at: e.time("at")?,
                status: e.s("status")?.to_owned(),
                comment: e.opt_s("comment").map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let previous_submissions = list_of_maps(item, "previous_submissions")
        .into_iter()
        .map(|m| {
            let p = ItemReader {
                key: r.key.clone(),
                item: m,
            };
            Ok(PreviousSubmission {
                invoice_number: p.s("invoice_number")?.to_owned(),
                state: state(&p)?,
                chorus_status: p.opt_s("chorus_status").map(str::to_owned),
                flux_number: p.opt_s("flux_number").map(str::to_owned),
                chorus_invoice_id: p.opt_n("chorus_invoice_id")?,
                replaced_at: p.time("replaced_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Situation {
        siret: r.parsed("siret", |v| Siret::parse(v, SiretCheck::ShapeOnly))?,
        market_ref: r.parsed("market_ref", MarketRef::parse)?,
        number,
        identifiers: SituationIdentifiers {
            invoice_number: r.parsed("invoice_number", InvoiceNumber::parse)?,
            period: r
                .opt_s("period")
                .map(|_| r.parsed("period", |v| Period::parse(v).ok_or(())))
                .transpose()?,
            commitment_number: r
                .opt_s("commitment_number")
                .map(|_| r.parsed("commitment_number", CommitmentNumber::parse))
                .transpose()?,
        },
        transmission: Transmission {
            state: state(&r)?,
            chorus_status: r.opt_s("chorus_status").map(str::to_owned),
            flux_number: r.opt_s("flux_number").map(str::to_owned),
            chorus_invoice_id: r.opt_n("chorus_invoice_id")?,
            status_history,
            company_check_since: r.opt_time("company_check_since")?,
            amount_due: r
                .opt_s("amount_due")
                .map(|_| r.parsed("amount_due", |v| v.parse::<rust_decimal::Decimal>()))
                .transpose()?,
            works: r
                .opt_s("works")
                .map(|_| r.parsed("works", |v| serde_json::from_str(v)))
                .transpose()?,
        },
        previous_submissions,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        revision: r.n("revision")?,
    })
}

/// Whether saving `new` over `old` closes a rejected transmission (a registration after a
/// rejection: one more closed submission).
fn reopens(old: &Situation, new: &Situation) -> bool {
    new.previous_submissions.len() > old.previous_submissions.len()
}

/// The attributes of a closed transmission that do not belong to the next one: its Chorus
/// Pro document, its works circuit, its payment and overdue marks, its payment index entry.
const CLOSED_WITH_THE_TRANSMISSION: [&str; 11] = [
    "chorus_status",
    "flux_number",
    "chorus_invoice_id",
    "company_check_since",
    "amount_due",
    "works",
    super::overdue::PAID_ON,
    "overdue_since",
    "overdue_notified_at",
    keys::GSI2PK,
    keys::GSI2SK,
];

/// The `Update` that turns `old` into `new`: identifier attributes, bookkeeping and, when
/// a rejected transmission is closed, the transmission attributes and, `with_events`, the
/// event of that change of state in the outbox (`store::outbox`), in the same write.
/// Nothing else is touched.
fn situation_update(
    table: &str,
    old: &Situation,
    new: &Situation,
    with_events: bool,
) -> Result<Update, StoreError> {
    let mut set: Vec<String> = [
        "invoice_number = :invoice_number",
        "updated_at = :updated_at",
        "revision = :revision",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut remove = Vec::new();
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(situation_key(&new.siret, &new.market_ref, new.number)))
        .condition_expression("revision = :expected AND transmission_state = :state_read")
        .expression_attribute_values(":expected", n(old.revision))
        .expression_attribute_values(":state_read", s(old.transmission.state.as_str()))
        .expression_attribute_values(
            ":invoice_number",
            s(new.identifiers.invoice_number.as_str()),
        )
        .expression_attribute_values(":updated_at", s(rfc3339(new.updated_at)))
        .expression_attribute_values(":revision", n(new.revision));
    match new.identifiers.period {
        Some(p) => {
            set.push("period = :period".into());
            update = update.expression_attribute_values(":period", s(p.to_string()));
        }
        None => remove.push("period"),
    }
    match &new.identifiers.commitment_number {
        Some(c) => {
            set.push("commitment_number = :commitment_number".into());
            update = update.expression_attribute_values(":commitment_number", s(c.as_str()));
        }
        None => remove.push("commitment_number"),
    }
    // A registration after a rejection closed the transmission: its attributes start over.
    if reopens(old, new) {
        set.push("transmission_state = :transmission_state".into());
        set.push("previous_submissions = :previous_submissions".into());
        update = update
            .expression_attribute_values(":transmission_state", s(new.transmission.state.as_str()))
            .expression_attribute_values(
                ":previous_submissions",
                previous_submissions_value(&new.previous_submissions),
            );
        remove.extend(CLOSED_WITH_THE_TRANSMISSION);
        let event = with_events
            .then(|| super::outbox::status_event(old, new, new.updated_at))
            .flatten();
        if let Some(event) = event {
            let (sets, values) = super::outbox::outbox_sets(&new.siret, &[event]);
            set.extend(sets);
            for (name, value) in values {
                update = update.expression_attribute_values(name, value);
            }
        }
    }
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    update
        .update_expression(expression)
        .build()
        .map_err(build_error)
}

/// The condition that `situation` holds the guard at `number`.
const HELD_BY_US: &str = "market_ref = :holder_market AND situation = :holder_situation";

fn holder_values(situation: &Situation) -> [(&'static str, AttributeValue); 2] {
    [
        (":holder_market", s(situation.market_ref.as_str())),
        (":holder_situation", n(situation.number.get())),
    ]
}

impl Store {
    /// Strongly consistent: a save is visible to the next read.
    pub async fn get_situation(
        &self,
        siret: &Siret,
        market_ref: &MarketRef,
        number: SituationNumber,
    ) -> Result<Option<Situation>, StoreError> {
        let item = self
            .read_item(situation_key(siret, market_ref, number))
            .await?;
        item.as_ref().map(situation_from_item).transpose()
    }

    /// One market's situations in number order, `limit` at most, after `after`.
    pub async fn list_situations(
        &self,
        siret: &Siret,
        market_ref: &MarketRef,
        limit: u16,
        after: Option<SituationNumber>,
    ) -> Result<Page<Situation, SituationNumber>, StoreError> {
        let start = after.map(|number| situation_key(siret, market_ref, number));
        let (items, more) = self
            .query_page(
                keys::company_pk(siret),
                keys::situations_prefix(market_ref),
                limit,
                start,
            )
            .await?;
        let situations = items
            .iter()
            .map(situation_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(situations, limit, more, |s| s.number))
    }

    /// Writes `new` (created when `old` is `None`, else updated from `old`, on condition
    /// that it did not change since), its guards as `guards` says, and its audit entry, in
    /// one transaction.
    pub async fn save_situation(
        &self,
        new: &Situation,
        old: Option<&Situation>,
        guards: GuardWrite,
        audit: &AuditEntry,
    ) -> Result<(), SaveSituationError> {
        let mut items = vec![self.situation_write(new, old)?];
        // Index in `items` of the Put that takes a new number, if any.
        let take_index = self.guard_write(new, guards)?.map(|(takes, item)| {
            items.push(item);
            takes.then_some(items.len() - 1)
        });
        let old_number = old.map(|o| &o.identifiers.invoice_number);
        if let (GuardWrite::Change(NumberChange::Replace { release }), Some(old_number)) =
            (guards, old_number)
        {
            items.push(self.release_write(new, old_number, release)?);
        }
        items.push(self.situation_audit_write(new, audit)?);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let err = match result {
            Ok(_) => {
                if old.is_some_and(|old| reopens(old, new)) {
                    let key = situation_key(&new.siret, &new.market_ref, new.number);
                    self.publish_written(&key).await;
                }
                return Ok(());
            }
            Err(e) => e,
        };
        let Some(canceled) = err.as_service_error().and_then(|e| match e {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
            _ => None,
        }) else {
            return Err(StoreError::Aws(error_text(&err)).into());
        };
        self.why_cancelled(canceled, take_index.flatten(), new)
            .await
    }

    /// The situation itself: created only if new, else updated from `old` (on its revision).
    fn situation_write(
        &self,
        new: &Situation,
        old: Option<&Situation>,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(match old {
            None => TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(situation_to_item(new)))
                        .condition_expression("attribute_not_exists(PK)")
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
            Some(old) => TransactWriteItem::builder()
                .update(situation_update(
                    &self.table,
                    old,
                    new,
                    self.events.is_some(),
                )?)
                .build(),
        })
    }

    /// The write on the guard of the situation's invoice number, if its number needs one:
    /// `(true, …)` when it takes a number not held yet.
    fn guard_write(
        &self,
        new: &Situation,
        guards: GuardWrite,
    ) -> Result<Option<(bool, TransactWriteItem)>, StoreError> {
        match guards {
            GuardWrite::Take | GuardWrite::Change(NumberChange::Replace { .. }) => {
                let take = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(guard_item(new)))
                    .condition_expression("attribute_not_exists(PK)")
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_error)?;
                Ok(Some((true, TransactWriteItem::builder().put(take).build())))
            }
            GuardWrite::Change(NumberChange::Keep) => Ok(None),
            GuardWrite::Change(NumberChange::Respell) => {
                let mut put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(guard_item(new)))
                    .condition_expression(HELD_BY_US);
                for (name, value) in holder_values(new) {
                    put = put.expression_attribute_values(name, value);
                }
                let put = put.build().map_err(build_error)?;
                Ok(Some((false, TransactWriteItem::builder().put(put).build())))
            }
        }
    }

    /// The old number's guard, freed or retired (a rejected number stays held).
    fn release_write(
        &self,
        new: &Situation,
        old_number: &InvoiceNumber,
        release: Release,
    ) -> Result<TransactWriteItem, StoreError> {
        let key = guard_key(&new.siret, old_number);
        Ok(match release {
            Release::Free => {
                let mut delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .condition_expression(HELD_BY_US);
                for (name, value) in holder_values(new) {
                    delete = delete.expression_attribute_values(name, value);
                }
                TransactWriteItem::builder()
                    .delete(delete.build().map_err(build_error)?)
                    .build()
            }
            Release::Retire => {
                let mut update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression("SET retired = :true, retired_at = :now")
                    .condition_expression(HELD_BY_US)
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":now", s(rfc3339(new.updated_at)));
                for (name, value) in holder_values(new) {
                    update = update.expression_attribute_values(name, value);
                }
                TransactWriteItem::builder()
                    .update(update.build().map_err(build_error)?)
                    .build()
            }
        })
    }

    fn situation_audit_write(
        &self,
        new: &Situation,
        audit: &AuditEntry,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut audit_item = audit.to_item(&new.siret);
        audit_item.insert("market_ref".into(), s(new.market_ref.as_str()));
        audit_item.insert("situation".into(), n(new.number.get()));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(audit_item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Why DynamoDB cancelled the save: the number held by another situation, or a
    /// concurrent change (decide again from a fresh read).
    async fn why_cancelled(
        &self,
        canceled: &aws_sdk_dynamodb::types::error::TransactionCanceledException,
        take_index: Option<usize>,
        new: &Situation,
    ) -> Result<(), SaveSituationError> {
        let reasons = canceled.cancellation_reasons();
        let failed = |index: usize| {
            reasons
                .get(index)
                .and_then(|r| r.code())
                .is_some_and(|code| code == "ConditionalCheckFailed")
        };
        // A changed situation comes first: deciding again from a fresh read may find
        // the number is ours after all.
        if failed(0) {
            return Err(SaveSituationError::Conflict);
        }
        let Some(index) = take_index.filter(|i| failed(*i)) else {
            // A guard not held as read (or a transaction conflict): decide again.
            tracing::warn!(
                reasons = ?reasons.iter().map(|r| r.code().unwrap_or("None")).collect::<Vec<_>>(),
                "situation transaction cancelled"
            );
            return Err(SaveSituationError::Conflict);
        };
        let holder = match reasons.get(index).and_then(|r| r.item()) {
            Some(item) => holder_from_item(item)?,
            // Not every DynamoDB implementation returns the old item: read it.
            None => self
                .invoice_number_holder(&new.siret, &new.identifiers.invoice_number)
                .await?
                .ok_or(SaveSituationError::Conflict)?,
        };
        if holder.market_ref == new.market_ref.as_str()
            && holder.situation == new.number.get()
            && !holder.retired
        {
            // Held by this very situation: a concurrent save of it won; decide again.
            return Err(SaveSituationError::Conflict);
        }
        Err(SaveSituationError::NumberTaken(holder))
    }

    /// Who holds an invoice number in the company, if anyone.
    pub async fn invoice_number_holder(
        &self,
        siret: &Siret,
        number: &InvoiceNumber,
    ) -> Result<Option<InvoiceNumberHolder>, StoreError> {
        let item = self.read_item(guard_key(siret, number)).await?;
        item.as_ref().map(holder_from_item).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn situation() -> Situation {
        Situation {
            siret: Siret::parse("81234567600017", SiretCheck::Full).unwrap(),
            market_ref: MarketRef::parse("M-1").unwrap(),
            number: SituationNumber::new(3).unwrap(),
            identifiers: SituationIdentifiers {
                invoice_number: InvoiceNumber::parse("sit-2026/3").unwrap(),
                period: Period::parse("2026-11"),
                commitment_number: Some(CommitmentNumber::parse("1300012399").unwrap()),
            },
            transmission: Transmission {
                state: TransmissionState::Integrated,
                chorus_status: Some("REJETEE".into()),
                flux_number: Some("CPP0001".into()),
                chorus_invoice_id: Some(9_001),
                status_history: vec![StatusEntry {
                    at: datetime!(2026-12-01 09:00 UTC),
                    status: "REJETEE".into(),
                    comment: Some("Montant erroné".into()),
                }],
                company_check_since: None,
                amount_due: None,
                works: None,
            },
            previous_submissions: vec![PreviousSubmission {
                invoice_number: "SIT-2026/3".into(),
                state: TransmissionState::Rejected,
                chorus_status: None,
                flux_number: Some("CPP0000".into()),
                chorus_invoice_id: None,
                replaced_at: datetime!(2026-11-30 09:00 UTC),
            }],
            created_at: datetime!(2026-11-27 10:00 UTC),
            updated_at: datetime!(2026-12-01 09:00 UTC),
            revision: 7,
        }
    }

    #[test]
    fn item_round_trip() {
        let sit = situation();
        let item = situation_to_item(&sit);
        assert_eq!(item["SK"].as_s().unwrap(), "SITUATION#M-1#003");
        assert_eq!(item["entity"].as_s().unwrap(), "situation");
        assert_eq!(item["transmission_state"].as_s().unwrap(), "integrated");
        assert_eq!(situation_from_item(&item).unwrap(), sit);
        let bare = Situation {
            identifiers: SituationIdentifiers {
                period: None,
                commitment_number: None,
                ..sit.identifiers.clone()
            },
            transmission: Transmission::not_transmitted(),
            previous_submissions: Vec::new(),
            ..sit
        };
        let item = situation_to_item(&bare);
        assert!(!item.contains_key("status_history") && !item.contains_key("chorus_status"));
        assert_eq!(situation_from_item(&item).unwrap(), bare);
    }

    #[test]
    fn guard_names_its_holder() {
        let sit = situation();
        let item = guard_item(&sit);
        assert_eq!(item["SK"].as_s().unwrap(), "INVOICE_NUMBER#SIT-2026/3");
        assert_eq!(item["entity"].as_s().unwrap(), "invoice_number");
        let holder = holder_from_item(&item).unwrap();
        assert_eq!(holder.market_ref, "M-1");
        assert_eq!(holder.situation, 3);
        assert_eq!(holder.invoice_number, "sit-2026/3");
        assert!(!holder.retired);
    }

    #[test]
    fn update_touches_only_what_changed_hands() {
        let old = situation();
        let mut new = old.clone();
        new.identifiers.period = None;
        new.revision = 8;
        let update = situation_update("t", &old, &new, true).unwrap();
        let expression = update.update_expression();
        assert!(
            expression.starts_with("SET invoice_number = :invoice_number"),
            "{expression}"
        );
        assert!(expression.contains("REMOVE period"), "{expression}");
        assert!(!expression.contains("flux_number"), "{expression}");
        // Reopened after a rejection: one more closed submission, transmission reset.
        new.previous_submissions
            .push(new.previous_submissions[0].clone());
        let expression = situation_update("t", &old, &new, false)
            .unwrap()
            .update_expression()
            .to_owned();
        assert!(
            expression.contains("chorus_status, flux_number, chorus_invoice_id"),
            "{expression}"
        );
        assert!(
            !expression.contains("outbox"),
            "no bus, no event: {expression}"
        );
        // With a bus, the change of state goes in the outbox in the same write.
        new.transmission = Transmission::not_transmitted();
        let with_event = situation_update("t", &old, &new, true).unwrap();
        let expression = with_event.update_expression();
        assert!(expression.contains("outbox = list_append"), "{expression}");
        assert!(expression.contains("overdue_since"), "{expression}");
        let events = with_event.expression_attribute_values().unwrap()[":ob_events"]
            .as_l()
            .unwrap();
        assert_eq!(events.len(), 1);
    }
}
