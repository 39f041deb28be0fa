//! One query shape for the sharded sparse indexes (situations due for follow-up, companies
//! due for a look, payment deadlines passed): shard after shard in the order given (a
//! follow-up worker's own first, `FollowWorker::shards`), page by page, the entries whose
//! sort key is below a bound, at most a limit.

use super::item::{ItemReader, s};
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::domain::{MarketRef, Siret, SiretCheck, SituationNumber};

/// Which entries to read: `index` (`GSI1`, `GSI2`…, whose keys are `{index}PK` and
/// `{index}SK`), its shard keys in the order they are read, the exclusive bound of the
/// sort key.
pub(crate) struct BelowBound {
    pub index: &'static str,
    pub shard_pks: Vec<String>,
    pub bound: String,
    /// Only these attributes (`None`: what the index projects).
    pub projection: Option<&'static str>,
    pub limit: usize,
}

impl Store {
    /// What `read_entry` makes of each entry, and how many items DynamoDB read.
    pub(crate) async fn query_below<T>(
        &self,
        query: BelowBound,
        read_entry: impl Fn(&ItemReader) -> Result<T, StoreError>,
    ) -> Result<(Vec<T>, usize), StoreError> {
        let condition = format!("{0}PK = :pk AND {0}SK < :bound", query.index);
        let mut found = Vec::new();
        let mut read = 0usize;
        for pk in query.shard_pks {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(query.index)
                    .key_condition_expression(&condition)
                    .expression_attribute_values(":pk", s(pk.clone()))
                    .expression_attribute_values(":bound", s(query.bound.clone()))
                    .set_projection_expression(query.projection.map(str::to_owned))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| StoreError::Aws(error_text(&e)))?;
                read += usize::try_from(out.scanned_count).unwrap_or(0);
                for item in out.items() {
                    found.push(read_entry(&ItemReader::new(item))?);
                    if found.len() >= query.limit {
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

/// The situation an index entry names.
pub(crate) fn situation_of(
    r: &ItemReader,
) -> Result<(Siret, MarketRef, SituationNumber), StoreError> {
    let siret = r.parsed("siret", |v| Siret::parse(v, SiretCheck::ShapeOnly))?;
    let market_ref = r.parsed("market_ref", MarketRef::parse)?;
    let number = super::situation::situation_number(r)?;
    Ok((siret, market_ref, number))
}

/// The company an index entry names.
pub(crate) fn company_of(r: &ItemReader) -> Result<Siret, StoreError> {
    r.parsed("siret", |v| Siret::parse(v, SiretCheck::ShapeOnly))
}
