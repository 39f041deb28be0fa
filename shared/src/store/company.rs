//! The company-wide list of situations (`GET /v1/companies/{siret}/situations`): one query
//! on the company's own partition, `PK = COMPANY#{siret} AND begins_with(SK, "SITUATION#")`.
//!
//! That partition *is* the index keyed by company: every situation of the company is in
//! it, sorted by market then number, and nothing else is read (markets, guards, audit
//! entries and invoice files have other prefixes). A global index keyed by company would
//! copy the same items, cost a second write on every change and be only eventually
//! consistent. The filters are narrow (`FilterExpression` on the state, the Chorus Pro
//! status and the overdue mark): a filtered page reads the company's situations until it
//! has `limit + 1` matches or the partition ends.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{Item, s};
use super::keys;
use super::market::{Page, page};
use super::situation::{situation_from_item, situation_key};
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::domain::payment::BuyerCategory;
use crate::domain::transmission::TransmissionState;
use crate::domain::{MarketRef, Siret, Situation, SituationNumber};

/// What the caller filters the list on (all `None`: every situation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SituationFilter {
    pub state: Option<TransmissionState>,
    /// A Chorus Pro status name, already checked against the known ones.
    pub chorus_status: Option<String>,
    /// `Some(true)`: marked overdue by the follow-up and not paid (`Situation::paid_on`,
    /// kept on the item by `store::overdue`: a works statement is paid on its last
    /// following document, its own status unchanged); `Some(false)`: the others.
    pub overdue: Option<bool>,
}

/// Where a company-wide page starts: after this situation.
pub type CompanyCursor = (MarketRef, SituationNumber);

impl SituationFilter {
    /// The `FilterExpression` and its values, `None` without a filter.
    fn expression(&self) -> Option<(String, Vec<(&'static str, AttributeValue)>)> {
        let mut terms = Vec::new();
        let mut values = Vec::new();
        if let Some(state) = self.state {
            terms.push("transmission_state = :f_state");
            values.push((":f_state", s(state.as_str())));
        }
        if let Some(status) = &self.chorus_status {
            terms.push("chorus_status = :f_status");
            values.push((":f_status", s(status.clone())));
        }
        match self.overdue {
            Some(true) => {
                terms.push("(attribute_exists(overdue_since) AND attribute_not_exists(paid_on))")
            }
            Some(false) => {
                terms.push("(attribute_not_exists(overdue_since) OR attribute_exists(paid_on))")
            }
            None => {}
        }
        (!terms.is_empty()).then(|| (terms.join(" AND "), values))
    }
}

impl Store {
    /// Every situation of the company, market by market in number order, `limit` at most,
    /// after `after`, that `filter` keeps.
    pub async fn list_company_situations(
        &self,
        siret: &Siret,
        filter: &SituationFilter,
        limit: u16,
        after: Option<&CompanyCursor>,
    ) -> Result<Page<Situation, CompanyCursor>, StoreError> {
        let filtered = filter.expression();
        let wanted = usize::from(limit) + 1;
        let mut start = after.map(|(m, n)| situation_key(siret, m, *n));
        let mut items: Vec<Item> = Vec::new();
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(keys::company_pk(siret)))
                .expression_attribute_values(":prefix", s(keys::SITUATION_PREFIX))
                .set_exclusive_start_key(start)
                .consistent_read(true);
            match &filtered {
                // Without a filter the page is exact: `limit + 1` tells whether more follow.
                None => query = query.limit(i32::from(limit) + 1),
                Some((expression, values)) => {
                    query = query.filter_expression(expression);
                    for (name, value) in values {
                        query = query.expression_attribute_values(*name, value.clone());
                    }
                }
            }
            let out = query
                .send()
                .await
                .map_err(|e| StoreError::Aws(error_text(&e)))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if items.len() >= wanted || start.is_none() {
                break;
            }
        }
        // More follow exactly when a match beyond the page was read (`page` cuts it off).
        items.truncate(wanted);
        let situations = items
            .iter()
            .map(situation_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(situations, limit, false, |s| {
            (s.market_ref.clone(), s.number)
        }))
    }

    /// The buyer category of each market of the company (the payment clock of its
    /// situations), every page.
    pub async fn market_categories(
        &self,
        siret: &Siret,
    ) -> Result<HashMap<MarketRef, BuyerCategory>, StoreError> {
        let mut categories = HashMap::new();
        let mut after: Option<MarketRef> = None;
        loop {
            let found = self.list_markets(siret, 100, after.as_ref()).await?;
            for market in found.items {
                categories.insert(market.market_ref, market.terms.buyer_category);
            }
            match found.next_after {
                Some(next) => after = Some(next),
                None => return Ok(categories),
            }
        }
    }
}
