//! Market items: one per market of a company (`MARKET#{market_ref}`), each write with its
//! audit entry in one transaction, conditional on the revision read.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::item::{Item, ItemReader, n, s};
use super::keys;
use super::{AuditEntry, Store, StoreError};
use crate::aws::error_text;
use crate::clock::rfc3339;
use crate::domain::market::{
    BuyerCheck, BuyerRecord, BuyerRule, CommitmentCheck, CommitmentNumber, MarketLabel,
    MarketNumber, ProjectManager, ServiceCode,
};
use crate::domain::payment::BuyerCategory;
use crate::domain::{Framework, Market, MarketRef, MarketTerms, Siret, SiretCheck};

/// One page of a listing, and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next_after: Option<C>,
}

pub(crate) fn market_key(siret: &Siret, market_ref: &MarketRef) -> Item {
    keys::company_item(siret, keys::market_sk(market_ref))
}

fn market_to_item(m: &Market) -> Item {
    let t = &m.terms;
    let mut item = market_key(&m.siret, &m.market_ref);
    item.insert("entity".into(), s("market"));
    item.insert("siret".into(), s(m.siret.as_str()));
    item.insert("market_ref".into(), s(m.market_ref.as_str()));
    item.insert("market_number".into(), s(t.market_number.as_str()));
    item.insert("buyer_siret".into(), s(t.buyer_siret.as_str()));
    if let Some(code) = &t.buyer_service_code {
        item.insert("buyer_service_code".into(), s(code.as_str()));
    }
    if let Some(number) = &t.commitment_number {
        item.insert("commitment_number".into(), s(number.as_str()));
    }
    item.insert("framework".into(), s(t.framework.code()));
    if let Some(pm) = &t.project_manager {
        item.insert("project_manager_siret".into(), s(pm.siret.as_str()));
        if let Some(code) = &pm.service_code {
            item.insert("project_manager_service_code".into(), s(code.as_str()));
        }
    }
    if let Some(label) = &t.label {
        item.insert("label".into(), s(label.as_str()));
    }
    item.insert("buyer_category".into(), s(t.buyer_category.as_str()));
    match &m.buyer {
        BuyerCheck::Unchecked => {
            item.insert("buyer_check".into(), s("unchecked"));
        }
        BuyerCheck::Checked(b) => {
            item.insert("buyer_check".into(), s("checked"));
            if let Some(name) = &b.name {
                item.insert("buyer_name".into(), s(name.clone()));
            }
            item.insert("buyer_structure_id".into(), n(b.chorus_structure_id));
            item.insert("buyer_requirement".into(), s(b.rule.as_str()));
            item.insert(
                "service_requires_commitment".into(),
                AttributeValue::Bool(b.service_requires_commitment),
            );
            item.insert("commitment_check".into(), s(b.commitment.as_str()));
            item.insert("buyer_checked_at".into(), s(rfc3339(b.checked_at)));
        }
    }
    item.insert("created_at".into(), s(rfc3339(m.created_at)));
    item.insert("updated_at".into(), s(rfc3339(m.updated_at)));
    item.insert("revision".into(), n(m.revision));
    item
}

pub(crate) fn market_from_item(item: &Item) -> Result<Market, StoreError> {
    let r = ItemReader::new(item);
    // Stored SIRETs were checked on the way in; read back by shape only.
    let siret = |name: &str| r.parsed(name, |v| Siret::parse(v, SiretCheck::ShapeOnly));
    let opt = |name: &str| r.opt_s(name);
    let project_manager = match opt("project_manager_siret") {
        None => None,
        Some(_) => Some(ProjectManager {
            siret: siret("project_manager_siret")?,
            service_code: opt("project_manager_service_code")
                .map(|_| r.parsed("project_manager_service_code", ServiceCode::parse))
                .transpose()?,
        }),
    };
    let buyer = match r.s("buyer_check")? {
        "unchecked" => BuyerCheck::Unchecked,
        "checked" => BuyerCheck::Checked(BuyerRecord {
            name: opt("buyer_name").map(str::to_owned),
            chorus_structure_id: r.n("buyer_structure_id").and_then(|v| {
                i64::try_from(v).map_err(|_| r.corrupt("buyer_structure_id out of range"))
            })?,
            rule: r.parsed("buyer_requirement", |v| BuyerRule::parse(v).ok_or(()))?,
            service_requires_commitment: r.flag("service_requires_commitment"),
            commitment: r.parsed("commitment_check", |v| CommitmentCheck::parse(v).ok_or(()))?,
            checked_at: r.time("buyer_checked_at")?,
        }),
        _ => return Err(r.corrupt("invalid value in buyer_check")),
    };
    Ok(Market {
        siret: siret("siret")?,
        market_ref: r.parsed("market_ref", MarketRef::parse)?,
        terms: MarketTerms {
            market_number: r.parsed("market_number", MarketNumber::parse)?,
            buyer_siret: siret("buyer_siret")?,
            buyer_service_code: opt("buyer_service_code")
                .map(|_| r.parsed("buyer_service_code", ServiceCode::parse))
                .transpose()?,
            commitment_number: opt("commitment_number")
                .map(|_| r.parsed("commitment_number", CommitmentNumber::parse))
                .transpose()?,
            framework: r.parsed("framework", Framework::parse)?,
            project_manager,
            label: opt("label")
                .map(|_| r.parsed("label", MarketLabel::parse))
                .transpose()?,
            // Markets saved before the category existed are the default's.
            buyer_category: opt("buyer_category")
                .map(|_| r.parsed("buyer_category", |v| BuyerCategory::parse(v).ok_or(())))
                .transpose()?
                .unwrap_or_default(),
        },
        buyer,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        revision: r.n("revision")?,
    })
}

/// A request the SDK refused to build (a missing required field: a bug, not input).
pub(crate) fn build_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Aws(e.to_string())
}

impl Store {
    /// Strongly consistent: a save is visible to the next read.
    pub async fn get_market(
        &self,
        siret: &Siret,
        market_ref: &MarketRef,
    ) -> Result<Option<Market>, StoreError> {
        let item = self.read_item(market_key(siret, market_ref)).await?;
        item.as_ref().map(market_from_item).transpose()
    }

    /// Writes the market and its audit entry in one transaction, on condition that the
    /// stored revision is still `expected_revision` (`None`: that no market exists).
    pub async fn save_market(
        &self,
        market: &Market,
        expected_revision: Option<u64>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(market_to_item(market)));
        put = match expected_revision {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(rev) => put
                .condition_expression("revision = :expected")
                .expression_attribute_values(":expected", n(rev)),
        };
        let mut audit_item = audit.to_item(&market.siret);
        audit_item.insert("market_ref".into(), s(market.market_ref.as_str()));
        let audit_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(audit_item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(build_error)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(put.build().map_err(build_error)?)
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().put(audit_put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(StoreError::Aws(error_text(&e))),
        }
    }

    /// The company's markets in reference order, `limit` at most, after `after`.
    pub async fn list_markets(
        &self,
        siret: &Siret,
        limit: u16,
        after: Option<&MarketRef>,
    ) -> Result<Page<Market, MarketRef>, StoreError> {
        let start = after.map(|r| market_key(siret, r));
        let (items, more) = self
            .query_page(
                keys::company_pk(siret),
                keys::MARKET_PREFIX.to_owned(),
                limit,
                start,
            )
            .await?;
        let markets = items
            .iter()
            .map(market_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(markets, limit, more, |m| m.market_ref.clone()))
    }

    /// One page of a `begins_with` query: up to `limit + 1` items, so that a full last page
    /// is known to be the last without another round trip; `true` when DynamoDB stopped
    /// early (1 MB read) with more to come.
    pub(crate) async fn query_page(
        &self,
        pk: String,
        sk_prefix: String,
        limit: u16,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(sk_prefix))
            .limit(i32::from(limit) + 1)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Aws(error_text(&e)))?;
        let stopped_early = out.last_evaluated_key.is_some();
        Ok((out.items.unwrap_or_default(), stopped_early))
    }
}

/// Cuts `limit + 1` read items to a page, the next one starting after its last item.
pub(crate) fn page<T, C>(
    mut items: Vec<T>,
    limit: u16,
    stopped_early: bool,
    cursor: impl Fn(&T) -> C,
) -> Page<T, C> {
    let limit = usize::from(limit);
    let more = items.len() > limit || stopped_early;
    items.truncate(limit);
    let next_after = if more { items.last().map(cursor) } else { None };
    Page { items, next_after }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn market(buyer: BuyerCheck) -> Market {
        Market {
            siret: Siret::parse("81234567600017", SiretCheck::Full).unwrap(),
            market_ref: MarketRef::parse("gymnase-2026").unwrap(),
            terms: MarketTerms {
                market_number: MarketNumber::parse("2026-TRV-014").unwrap(),
                buyer_siret: Siret::parse("21380456000018", SiretCheck::Full).unwrap(),
                buyer_service_code: Some(ServiceCode::parse("DIRINFRA").unwrap()),
                commitment_number: Some(CommitmentNumber::parse("1300012345").unwrap()),
                framework: Framework::A4,
                project_manager: Some(ProjectManager {
                    siret: Siret::parse("79876543400013", SiretCheck::Full).unwrap(),
                    service_code: None,
                }),
                label: Some(MarketLabel::parse("Réhabilitation du gymnase").unwrap()),
                buyer_category: BuyerCategory::HealthEstablishment,
            },
            buyer,
            created_at: datetime!(2026-11-27 10:00 UTC),
            updated_at: datetime!(2026-11-28 10:00 UTC),
            revision: 2,
        }
    }

    #[test]
    fn item_round_trip() {
        let checked = market(BuyerCheck::Checked(BuyerRecord {
            name: Some("DEPARTEMENT DE L'ISERE TEST".into()),
            chorus_structure_id: 26_200_002,
            rule: BuyerRule::ServiceCode,
            service_requires_commitment: false,
            commitment: CommitmentCheck::NotPublished,
            checked_at: datetime!(2026-11-28 10:00 UTC),
        }));
        let item = market_to_item(&checked);
        assert_eq!(item["SK"].as_s().unwrap(), "MARKET#gymnase-2026");
        assert_eq!(item["entity"].as_s().unwrap(), "market");
        assert_eq!(item["framework"].as_s().unwrap(), "A4");
        assert_eq!(market_from_item(&item).unwrap(), checked);
        let unchecked = market(BuyerCheck::Unchecked);
        let mut bare = unchecked.clone();
        bare.terms.buyer_service_code = None;
        bare.terms.commitment_number = None;
        bare.terms.project_manager = None;
        bare.terms.label = None;
        for m in [unchecked, bare] {
            let item = market_to_item(&m);
            assert!(!item.contains_key("buyer_structure_id"));
            assert_eq!(market_from_item(&item).unwrap(), m);
        }
    }

    #[test]
    fn pages() {
        let p = page(vec![1, 2, 3], 2, false, |n| *n);
        assert_eq!((p.items, p.next_after), (vec![1, 2], Some(2)));
        let p = page(vec![1, 2], 2, false, |n| *n);
        assert_eq!((p.items, p.next_after), (vec![1, 2], None));
        let p = page(vec![1], 2, true, |n| *n);
        assert_eq!((p.items, p.next_after), (vec![1], Some(1)));
        let p = page(Vec::<u8>::new(), 2, false, |n| *n);
        assert_eq!(p.next_after, None);
    }
}
