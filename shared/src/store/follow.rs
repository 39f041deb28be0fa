//! The follow-up of one company (`COMPANY#{siret}` / `FOLLOW`): who holds it (a worker's
//! lease, taken with a conditional write, so two workers never handle the same company at
//! once), the watermark of the changes already handled (the `dateHeureEtatCourant` of the
//! last change seen), its open invoices (Chorus Pro id → situation and status, so that a
//! change found by the search needs no read to find its situation) and when it is next
//! searched, in GSI1 under `FOLLOW#{shard}` while it has open invoices.
//!
//! The lease holder alone writes the item's follow-up attributes, in one conditional write
//! when it lets the company go (`release_company`).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use super::item::{Item, ItemReader, n, s};
use super::keys::{self, GSI1PK, GSI1SK, PK, SK};
use super::sharded::{BelowBound, company_of};
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::clock::rfc3339;
use crate::domain::{MarketRef, Siret, SiretCheck, SituationNumber};
use crate::follow_settings::{FollowWorker, ShardReach};

/// An integrated invoice still followed: its situation and last known Chorus Pro status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    pub market_ref: MarketRef,
    pub number: SituationNumber,
    pub status: String,
}

/// The company as a worker holds it.
#[derive(Debug, Clone)]
pub struct CompanyFollow {
    pub siret: Siret,
    /// This worker's lease (the condition of its release).
    pub lease_id: String,
    /// Changes up to this time (Chorus Pro's) are handled.
    pub watermark: Option<OffsetDateTime>,
    pub next_look_at: Option<OffsetDateTime>,
    /// By Chorus Pro invoice id.
    pub open: BTreeMap<i64, OpenInvoice>,
}

/// What the lease holder writes when it lets the company go.
#[derive(Debug, Clone, Default)]
pub struct FollowRelease {
    pub watermark: Option<OffsetDateTime>,
    /// `None` with no open invoice: the company leaves the index.
    pub next_look_at: Option<OffsetDateTime>,
    pub open: BTreeMap<i64, OpenInvoice>,
}

fn follow_key(siret: &Siret) -> Item {
    Item::from([
        (PK.to_owned(), s(keys::company_pk(siret))),
        (SK.to_owned(), s(keys::FOLLOW_SK)),
    ])
}

fn open_value(open: &BTreeMap<i64, OpenInvoice>) -> AttributeValue {
    let entries = open.iter().map(|(id, invoice)| {
        let m = Item::from([
            ("market_ref".to_owned(), s(invoice.market_ref.to_string())),
            ("situation".to_owned(), n(invoice.number.get())),
            ("status".to_owned(), s(invoice.status.clone())),
        ]);
        (id.to_string(), AttributeValue::M(m))
    });
    AttributeValue::M(entries.collect())
}

fn open_from(reader: &ItemReader<'_>) -> Result<BTreeMap<i64, OpenInvoice>, StoreError> {
    let Some(map) = reader.item.get("open_invoices").and_then(|v| v.as_m().ok()) else {
        return Ok(BTreeMap::new());
    };
    map.iter()
        .map(|(id, value)| {
            let bad = || reader.corrupt(format!("invalid open invoice {id}"));
            let m = value.as_m().map_err(|_| bad())?;
            let r = ItemReader::new(m);
            let number = r
                .n("situation")
                .ok()
                .and_then(|v| u16::try_from(v).ok())
                .and_then(SituationNumber::new)
                .ok_or_else(bad)?;
            let invoice = OpenInvoice {
                market_ref: MarketRef::parse(r.s("market_ref").map_err(|_| bad())?)
                    .map_err(|_| bad())?,
                number,
                status: r.s("status").map_err(|_| bad())?.to_owned(),
            };
            Ok((id.parse::<i64>().map_err(|_| bad())?, invoice))
        })
        .collect()
}

fn follow_from_item(item: &Item, lease_id: &str) -> Result<CompanyFollow, StoreError> {
    let r = ItemReader::new(item);
    Ok(CompanyFollow {
        siret: r.parsed("siret", |v| Siret::parse(v, SiretCheck::ShapeOnly))?,
        lease_id: lease_id.to_owned(),
        watermark: r.opt_time("watermark")?,
        next_look_at: r.opt_time("next_look_at")?,
        open: open_from(&r)?,
    })
}

fn is_condition_failure<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    matches!(e, aws_sdk_dynamodb::error::SdkError::ServiceError(se)
        if se.err().code() == Some("ConditionalCheckFailedException"))
}

impl Store {
    /// Takes the company until `until` unless another worker holds it (`None`): one
    /// conditional write, which creates the item the first time.
    pub async fn lease_company(
        &self,
        siret: &Siret,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<CompanyFollow>, StoreError> {
        let lease_id = uuid::Uuid::new_v4().to_string();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(follow_key(siret)))
            .update_expression(
                "SET lease_id = :id, lease_until = :until, siret = :siret, entity = :entity",
            )
            .condition_expression("attribute_not_exists(lease_until) OR lease_until < :now")
            .expression_attribute_values(":id", s(lease_id.clone()))
            .expression_attribute_values(":until", s(rfc3339(until)))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":siret", s(siret.to_string()))
            .expression_attribute_values(":entity", s("company_follow"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Some(follow_from_item(
                &out.attributes.unwrap_or_default(),
                &lease_id,
            )?)),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(StoreError::Aws(error_text(&e))),
        }
    }

    /// Writes what the holder learnt and lets the company go. `Conflict` when the lease was
    /// lost meanwhile (it ran out and another worker took the company): nothing is written.
    pub async fn release_company(
        &self,
        held: &CompanyFollow,
        release: &FollowRelease,
    ) -> Result<(), StoreError> {
        let mut sets = vec!["open_invoices = :open"];
        let mut removes = vec!["lease_id", "lease_until"];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(follow_key(&held.siret)))
            .condition_expression("lease_id = :id")
            .expression_attribute_values(":id", s(held.lease_id.clone()))
            .expression_attribute_values(":open", open_value(&release.open));
        if let Some(watermark) = release.watermark {
            sets.push("watermark = :watermark");
            request = request.expression_attribute_values(":watermark", s(rfc3339(watermark)));
        }
        match release.next_look_at {
            Some(at) => {
                sets.extend([
                    "next_look_at = :next",
                    "GSI1PK = :gsi_pk",
                    "GSI1SK = :gsi_sk",
                ]);
                request = request
                    .expression_attribute_values(":next", s(rfc3339(at)))
                    .expression_attribute_values(
                        ":gsi_pk",
                        s(keys::follow_gsi1pk(keys::follow_shard(&held.siret))),
                    )
                    .expression_attribute_values(
                        ":gsi_sk",
                        s(keys::follow_gsi1sk(at, &held.siret)),
                    );
            }
            None => removes.extend(["next_look_at", GSI1PK, GSI1SK]),
        }
        let expression = format!("SET {} REMOVE {}", sets.join(", "), removes.join(", "));
        match request.update_expression(expression).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::Conflict),
            Err(e) => Err(StoreError::Aws(error_text(&e))),
        }
    }

    /// The companies whose look is due at `now`, at most `limit`: the worker's own shards
    /// first, then the others (each visit takes the company's lease first).
    pub async fn due_companies(
        &self,
        now: OffsetDateTime,
        limit: usize,
        worker: &FollowWorker,
    ) -> Result<(Vec<Siret>, usize), StoreError> {
        let shards = worker.shards(keys::FOLLOW_SHARDS, ShardReach::OwnFirst);
        let query = BelowBound {
            index: keys::GSI1,
            shard_pks: shards.into_iter().map(keys::follow_gsi1pk).collect(),
            bound: keys::sync_due_before(now),
            projection: Some("siret"),
            limit,
        };
        self.query_below(query, company_of).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_invoices_round_trip() {
        let mut open = BTreeMap::new();
        open.insert(
            42,
            OpenInvoice {
                market_ref: MarketRef::parse("M-1").unwrap(),
                number: SituationNumber::new(3).unwrap(),
                status: "MISE_A_DISPOSITION".into(),
            },
        );
        let mut item = follow_key(&Siret::parse("21750001600019", SiretCheck::Full).unwrap());
        item.insert("open_invoices".into(), open_value(&open));
        item.insert("siret".into(), s("21750001600019"));
        let read = follow_from_item(&item, "lease").unwrap();
        assert_eq!(read.open, open);
        assert_eq!(read.watermark, None);
    }
}
