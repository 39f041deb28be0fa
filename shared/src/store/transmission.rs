//! The transmission record of a situation: attributes of the situation item itself, so a
//! transmission and a change of identifiers can never both win (every writer conditions on
//! the item's `revision`). Each change of state is one conditional `UpdateItem` on the
//! state and revision read; a loser re-reads and decides again.
//!
//! While something is still to be done (a deposit to retry, a flux or an invoice to follow),
//! the item is in GSI1 under `SYNC#{shard}` sorted by when it is due, so the follow-up
//! function reads only what is due.

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use time::OffsetDateTime;

use super::account::{account_from_item, account_key};
use super::item::{Item, ItemReader, n, s};
use super::keys::{self, GSI1PK, GSI1SK, SK};
use super::market::{build_error, market_from_item, market_key};
use super::sharded::{BelowBound, situation_of};
use super::situation::{situation_from_item, situation_key};
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::clock::rfc3339;
use crate::domain::situation::{Situation, StatusEntry};
use crate::domain::transmission::TransmissionState;
use crate::domain::{CompanyAccount, Market, MarketRef, Siret, SituationNumber};
use crate::follow_settings::{FollowWorker, ShardReach};

/// What the transmission function keeps besides the situation's public fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransmissionRecord {
    /// The invoice number the deposit carries (frozen with the identifiers).
    pub deposited_number: Option<String>,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the request body that started the transmission.
    pub request_hash: Option<String>,
    /// Where the invoice file waits (`store::payload`).
    pub payload_id: Option<String>,
    pub flux_file_name: Option<String>,
    /// The attempt holding the deposit, and until when (a crashed Lambda's lease expires).
    pub attempt_id: Option<String>,
    pub lease_until: Option<OffsetDateTime>,
    pub attempts: u32,
    pub checks_done: u32,
    pub next_check_at: Option<OffsetDateTime>,
    pub unknown_since: Option<OffsetDateTime>,
    /// When the transmission was claimed (its first attempt).
    pub transmitted_at: Option<OffsetDateTime>,
    /// The password version Chorus Pro refused (for operators: which password held it).
    pub blocked_password_version: Option<String>,
    pub last_error: Option<String>,
    pub environment: Option<String>,
    /// How many entries of Chorus Pro's status history are already in the situation's.
    pub chorus_history_seen: u64,
    /// The last recycle or completion the company asked for a returned invoice.
    pub returned_action: Option<ReturnedAction>,
    /// Every recycle sent, oldest first: the routing before and after, who, when.
    pub routing_changes: Vec<RoutingChange>,
    /// How this transmission is sent and followed (`works::Route::code`); absent: an
    /// ordinary UBL flux.
    pub deposit_route: Option<String>,
    /// The first late day the follow-up saw (`Change::overdue`), and when the referent was
    /// told (or it was decided not to tell: `notify_overdue` off).
    pub overdue_since: Option<time::Date>,
    pub overdue_notified_at: Option<OffsetDateTime>,
    /// The market's buyer category as the overdue pass last read it (`store::overdue`).
    pub buyer_category: Option<crate::domain::payment::BuyerCategory>,
}

/// A recycle or completion of a returned invoice (`…/transmission/recycle`, `…/complete`):
/// marked `sending` before Chorus Pro is called, so that a lost answer is found again by
/// the next request (which reads the invoice's status before sending anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedAction {
    /// `recycle` or `complete`.
    pub kind: String,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the normalised request body.
    pub request_hash: String,
    /// The Chorus Pro status the action was asked in (`A_RECYCLER`, `SUSPENDUE`, …).
    pub from_status: String,
    pub started_at: OffsetDateTime,
    /// While the call may be in flight: until when the request that sends it holds it.
    pub sending_until: Option<OffsetDateTime>,
    /// When Chorus Pro accepted it (or it was found done).
    pub done_at: Option<OffsetDateTime>,
    /// A recycle's routing change (old, new, who, when asked): added to `routing_changes`
    /// once Chorus Pro accepted it, also when its answer was lost and the next request
    /// finds it landed.
    pub routing: Option<RoutingChange>,
}

/// Where an invoice is addressed in Chorus Pro.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Routing {
    pub buyer_siret: String,
    pub buyer_service_code: Option<String>,
    pub commitment_number: Option<String>,
}

/// One recycle: the routing before and after, who asked and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingChange {
    pub at: OffsetDateTime,
    pub actor: String,
    pub old: Routing,
    pub new: Routing,
}

fn opt_s_value(value: Option<&String>) -> AttributeValue {
    value.map_or(AttributeValue::Null(true), |v| s(v.clone()))
}

fn returned_action_value(a: &ReturnedAction) -> AttributeValue {
    let mut m = Item::new();
    m.insert("kind".into(), s(a.kind.clone()));
    m.insert(
        "idempotency_key".into(),
        opt_s_value(a.idempotency_key.as_ref()),
    );
    m.insert("request_hash".into(), s(a.request_hash.clone()));
    m.insert("from_status".into(), s(a.from_status.clone()));
    m.insert("started_at".into(), s(rfc3339(a.started_at)));
    if let Some(until) = a.sending_until {
        m.insert("sending_until".into(), s(rfc3339(until)));
    }
    if let Some(done) = a.done_at {
        m.insert("done_at".into(), s(rfc3339(done)));
    }
    if let Some(routing) = &a.routing {
        m.insert("routing".into(), routing_change_value(routing));
    }
    AttributeValue::M(m)
}

fn returned_action_from(item: &Item) -> Result<Option<ReturnedAction>, StoreError> {
    let Some(m) = item.get("returned_action").and_then(|v| v.as_m().ok()) else {
        return Ok(None);
    };
    let r = ItemReader::new(m);
    Ok(Some(ReturnedAction {
        kind: r.s("kind")?.to_owned(),
        idempotency_key: r.opt_s("idempotency_key").map(str::to_owned),
        request_hash: r.s("request_hash")?.to_owned(),
        from_status: r.s("from_status")?.to_owned(),
        started_at: r.time("started_at")?,
        sending_until: r.opt_time("sending_until")?,
        done_at: r.opt_time("done_at")?,
        routing: m
            .get("routing")
            .and_then(|v| v.as_m().ok())
            .map(routing_change_from)
            .transpose()?,
    }))
}

fn routing_value(r: &Routing) -> AttributeValue {
    let mut m = Item::new();
    m.insert("buyer_siret".into(), s(r.buyer_siret.clone()));
    m.insert(
        "buyer_service_code".into(),
        opt_s_value(r.buyer_service_code.as_ref()),
    );
    m.insert(
        "commitment_number".into(),
        opt_s_value(r.commitment_number.as_ref()),
    );
    AttributeValue::M(m)
}

fn routing_from(value: Option<&AttributeValue>) -> Result<Routing, StoreError> {
    let empty = Item::new();
    let m = value.and_then(|v| v.as_m().ok()).unwrap_or(&empty);
    let r = ItemReader::new(m);
    Ok(Routing {
        buyer_siret: r.s("buyer_siret")?.to_owned(),
        buyer_service_code: r.opt_s("buyer_service_code").map(str::to_owned),
        commitment_number: r.opt_s("commitment_number").map(str::to_owned),
    })
}

fn routing_changes_from(item: &Item) -> Result<Vec<RoutingChange>, StoreError> {
    let Some(list) = item.get("routing_changes").and_then(|v| v.as_l().ok()) else {
        return Ok(Vec::new());
    };
    list.iter()
        .filter_map(|v| v.as_m().ok())
        .map(routing_change_from)
        .collect()
}

fn routing_change_from(m: &Item) -> Result<RoutingChange, StoreError> {
    let r = ItemReader::new(m);
    Ok(RoutingChange {
        at: r.time("at")?,
        actor: r.s("actor")?.to_owned(),
        old: routing_from(m.get("old"))?,
        new: routing_from(m.get("new"))?,
    })
}

fn routing_change_value(c: &RoutingChange) -> AttributeValue {
    let mut m = Item::new();
    m.insert("at".into(), s(rfc3339(c.at)));
    m.insert("actor".into(), s(c.actor.clone()));
    m.insert("old".into(), routing_value(&c.old));
    m.insert("new".into(), routing_value(&c.new));
    AttributeValue::M(m)
}

/// One situation with its transmission record, as read.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub situation: Situation,
    pub record: TransmissionRecord,
}

/// What a transmission request needs, read together: the company's account, the market
/// and the situation with its record (each `None` when it does not exist).
#[derive(Debug, Clone, Default)]
pub struct TransmissionContext {
    pub account: Option<CompanyAccount>,
    pub market: Option<Market>,
    pub tracked: Option<Tracked>,
}

/// How often unprocessed keys of a `BatchGetItem` are asked again (DynamoDB returns them
/// under throttling), with a doubling pause from 25 ms.
const BATCH_GET_ATTEMPTS: u32 = 5;

fn record_from_item(item: &Item) -> Result<TransmissionRecord, StoreError> {
    let r = ItemReader::new(item);
    let opt = |name: &str| r.opt_s(name).map(str::to_owned);
    let count = |name: &str| {
        r.item
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    };
    Ok(TransmissionRecord {
        deposited_number: opt("deposited_number"),
        idempotency_key: opt("idempotency_key"),
        request_hash: opt("request_hash"),
        payload_id: opt("payload_id"),
        flux_file_name: opt("flux_file_name"),
        attempt_id: opt("attempt_id"),
        lease_until: r.opt_time("lease_until")?,
        attempts: count("attempts"),
        checks_done: count("checks_done"),
        next_check_at: r.opt_time("next_check_at")?,
        unknown_since: r.opt_time("unknown_since")?,
        transmitted_at: r.opt_time("transmitted_at")?,
        blocked_password_version: opt("blocked_password_version"),
        last_error: opt("last_error"),
        environment: opt("transmission_environment"),
        chorus_history_seen: u64::from(count("chorus_history_seen")),
        returned_action: returned_action_from(item)?,
        routing_changes: routing_changes_from(item)?,
        deposit_route: opt("deposit_route"),
        overdue_since: r
            .opt_s("overdue_since")
            .and_then(crate::clock::parse_iso_date),
        overdue_notified_at: r.opt_time("overdue_notified_at")?,
        buyer_category: r
            .opt_s("buyer_category")
            .and_then(crate::domain::payment::BuyerCategory::parse),
    })
}

/// What a transmission is claimed for (`Change::claim`).
#[derive(Debug, Clone)]
pub struct Claim {
    /// The invoice number the deposit carries.
    pub invoice_number: String,
    pub payload_id: String,
    /// SHA-256 of the normalised request body.
    pub request_hash: String,
    pub flux_file_name: String,
    pub environment: String,
    pub idempotency_key: Option<String>,
    /// What the invoice asks to be paid (BT-115, TTC less what was prepaid): the base of
    /// the late-payment interest (docs/payment-deadline.md).
    pub amount_due: rust_decimal::Decimal,
    pub at: OffsetDateTime,
}

/// A change of state: what to set and remove besides the state, revision and due index.
#[derive(Debug, Default, Clone)]
pub struct Change {
    pub set: Vec<(&'static str, AttributeValue)>,
    pub remove: Vec<&'static str>,
    /// Appended to the situation's status history.
    pub history: Vec<StatusEntry>,
    /// `Some(at)`: due for follow-up at `at`; `None`: leaves the follow-up index.
    pub due_at: Option<OffsetDateTime>,
}

impl Change {
    fn set(mut self, name: &'static str, value: AttributeValue) -> Self {
        self.set.push((name, value));
        self
    }

    fn set_opt(self, name: &'static str, value: Option<AttributeValue>) -> Self {
        match value {
            Some(v) => self.set(name, v),
            None => self.remove(name),
        }
    }

    fn remove(mut self, name: &'static str) -> Self {
        self.remove.push(name);
        self
    }

    // --- the named writes: the only way code outside `store` changes a transmission's
    // attributes, so that each attribute name is written once, here.

    /// Claims the transmission for `claim`'s file; counters of a previous transmission (a
    /// rejected number) start again.
    pub fn claim(self, claim: &Claim) -> Self {
        self.set("deposited_number", s(claim.invoice_number.clone()))
            .set("payload_id", s(claim.payload_id.clone()))
            .set("request_hash", s(claim.request_hash.clone()))
            .set("flux_file_name", s(claim.flux_file_name.clone()))
            .set("transmission_environment", s(claim.environment.clone()))
            .set("transmitted_at", s(rfc3339(claim.at)))
            .set_opt("idempotency_key", claim.idempotency_key.clone().map(s))
            .set("amount_due", s(claim.amount_due.to_string()))
            .set("attempts", n(0))
            .checks_done(0)
            .chorus_history_seen(0)
            .remove("unknown_since")
            .clear_last_error()
            .remove("lease_until")
    }

    /// A deposit attempt holds the transmission until `until` (its lease).
    pub fn lease(self, until: OffsetDateTime, attempts: u32) -> Self {
        self.set("attempt_id", s(uuid::Uuid::new_v4().to_string()))
            .set("lease_until", s(rfc3339(until)))
            .set("attempts", n(attempts))
            .remove("blocked_password_version")
    }

    /// Chorus Pro received the flux `flux_number` at `at`.
    pub fn deposited(self, flux_number: &str, at: OffsetDateTime) -> Self {
        self.set("flux_number", s(flux_number))
            .set("deposited_at", s(rfc3339(at)))
            .checks_done(0)
            .remove("lease_until")
            .clear_last_error()
    }

    /// Held for the credentials: `password_version` was refused or has expired.
    pub fn held(self, password_version: &str, why: &str) -> Self {
        self.set("blocked_password_version", s(password_version))
            .last_error(why)
            .remove("lease_until")
    }

    /// What a deposit became is unknown since `since`.
    pub fn outcome_unknown(self, since: OffsetDateTime, why: &str) -> Self {
        self.set("unknown_since", s(rfc3339(since)))
            .last_error(why)
            .remove("lease_until")
    }

    /// The company is asked (since `since`) what the Chorus Pro portal shows.
    pub fn company_asked(self, since: OffsetDateTime) -> Self {
        self.set("company_check_since", s(rfc3339(since)))
    }

    /// The doubt about a deposit is over (the company answered).
    pub fn doubt_cleared(self) -> Self {
        self.remove("unknown_since").remove("company_check_since")
    }

    /// The situation is the Chorus Pro invoice `invoice_id` (in `status`, from
    /// `flux_number` when known): followed from its first status on.
    pub fn attached(
        self,
        invoice_id: i64,
        status: Option<&str>,
        flux_number: Option<&str>,
    ) -> Self {
        let with_flux = match flux_number {
            Some(flux) => self.set("flux_number", s(flux)),
            None => self,
        };
        with_flux
            .set("chorus_invoice_id", n(invoice_id))
            .chorus_status(status)
            .checks_done(0)
            .chorus_history_seen(0)
            .clear_last_error()
            .remove("lease_until")
            .remove("company_check_since")
    }

    /// Chorus Pro's current status of the invoice (`None`: none any more).
    pub fn chorus_status(self, status: Option<&str>) -> Self {
        self.set_opt("chorus_status", status.map(s))
    }

    /// How many entries of Chorus Pro's status history the situation already holds.
    pub fn chorus_history_seen(self, seen: usize) -> Self {
        self.set("chorus_history_seen", n(seen))
    }

    /// Follow-up checks made since the last change (they space the next ones out).
    pub fn checks_done(self, checks: u32) -> Self {
        self.set("checks_done", n(checks))
    }

    pub fn last_error(self, why: impl Into<String>) -> Self {
        self.set("last_error", s(why.into()))
    }

    pub fn clear_last_error(self) -> Self {
        self.remove("last_error")
    }

    /// How the claimed transmission is sent and followed (`works::Route::code`).
    pub fn route(self, code: &str) -> Self {
        self.set("deposit_route", s(code))
    }

    /// The route this change records, if it records one.
    pub fn route_code(&self) -> Option<&str> {
        self.set
            .iter()
            .find_map(|(name, value)| match (*name, value) {
                ("deposit_route", AttributeValue::S(code)) => Some(code.as_str()),
                _ => None,
            })
    }

    /// Where the works statement stands in the works circuit (stored whole, as JSON).
    pub fn works(self, progress: &crate::domain::works::WorksProgress) -> Self {
        let json = serde_json::to_string(progress).unwrap_or_else(|_| "{}".to_owned());
        self.set("works", s(json))
    }

    /// No attempt holds the deposit any more.
    pub fn clear_lease(self) -> Self {
        self.remove("lease_until")
    }

    /// A recycle or completion is being sent (or was sent: `done_at`).
    pub fn returned_action(self, action: &ReturnedAction) -> Self {
        self.set("returned_action", returned_action_value(action))
    }

    /// The routing changes of the situation, the new one last (the whole list is written:
    /// the write is conditional on the revision read, so none is lost).
    pub fn routing_changes(self, changes: &[RoutingChange]) -> Self {
        self.set(
            "routing_changes",
            AttributeValue::L(changes.iter().map(routing_change_value).collect()),
        )
    }

    /// The payment is late since `first_late_day` (written once: the overdue event goes
    /// with the first write).
    pub fn overdue(self, first_late_day: time::Date) -> Self {
        self.set("overdue_since", s(crate::clock::iso_date(first_late_day)))
    }

    /// The referent was told of the late payment (or is not to be): out of the payment index.
    pub fn overdue_notified(self, at: OffsetDateTime) -> Self {
        self.set("overdue_notified_at", s(rfc3339(at)))
    }

    /// The market's buyer category, which sets the deadline of the payment index.
    pub fn buyer_category(self, category: crate::domain::payment::BuyerCategory) -> Self {
        self.set("buyer_category", s(category.as_str()))
    }

    pub fn history(mut self, entry: StatusEntry) -> Self {
        self.history.push(entry);
        self
    }

    pub fn due(mut self, at: OffsetDateTime) -> Self {
        self.due_at = Some(at);
        self
    }

    /// `self`, then `then`: what `then` sets or removes replaces what `self` did to the
    /// same attribute (one update may not touch an attribute twice), its history follows,
    /// and its due time, if any, wins.
    pub fn and(mut self, then: Change) -> Change {
        let touched: Vec<&'static str> = then
            .set
            .iter()
            .map(|(name, _)| *name)
            .chain(then.remove.iter().copied())
            .collect();
        self.set.retain(|(name, _)| !touched.contains(name));
        self.remove.retain(|name| !touched.contains(name));
        self.set.extend(then.set);
        self.remove.extend(then.remove);
        self.history.extend(then.history);
        self.due_at = then.due_at.or(self.due_at);
        self
    }
}

/// The follow-up index entry of a transition: due at `due_at`, or out of the index.
fn follow_up_writes(
    sit: &Situation,
    due_at: Option<OffsetDateTime>,
    sets: &mut Vec<String>,
    removes: &mut Vec<String>,
    values: &mut Vec<(String, AttributeValue)>,
) {
    match due_at {
        Some(at) => {
            sets.push(format!("{GSI1PK} = :gsi_pk"));
            sets.push(format!("{GSI1SK} = :gsi_sk"));
            sets.push("next_check_at = :due".into());
            values.push((
                ":gsi_pk".into(),
                s(keys::sync_gsi1pk(keys::sync_shard(&sit.siret))),
            ));
            values.push((
                ":gsi_sk".into(),
                s(keys::sync_gsi1sk(
                    at,
                    &sit.siret,
                    &sit.market_ref,
                    sit.number,
                )),
            ));
            values.push((":due".into(), s(rfc3339(at))));
        }
        None => {
            removes.push(GSI1PK.into());
            removes.push(GSI1SK.into());
            removes.push("next_check_at".into());
        }
    }
}

pub fn history_entry_value(e: &StatusEntry) -> AttributeValue {
    let mut m = Item::new();
    m.insert("at".into(), s(rfc3339(e.at)));
    m.insert("status".into(), s(e.status.clone()));
    if let Some(c) = &e.comment {
        m.insert("comment".into(), s(c.clone()));
    }
    AttributeValue::M(m)
}

impl Store {
    /// The account, the market and the situation in one consistent `BatchGetItem`: a
    /// transmission request reads all it needs in one call, and answers its 404s in the
    /// order company, market, situation.
    pub async fn get_transmission_context(
        &self,
        siret: &Siret,
        market_ref: &MarketRef,
        number: SituationNumber,
    ) -> Result<TransmissionContext, StoreError> {
        let keys: Vec<Item> = vec![
            account_key(siret).into_iter().collect(),
            market_key(siret, market_ref),
            situation_key(siret, market_ref, number),
        ];
        let mut wanted = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(build_error)?;
        let mut context = TransmissionContext::default();
        for attempt in 0..BATCH_GET_ATTEMPTS {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, wanted)
                .send()
                .await
                .map_err(|e| StoreError::Aws(error_text(&e)))?;
            let items = out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default();
            for item in &items {
                match item.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str) {
                    Some(keys::ACCOUNT_SK) => context.account = Some(account_from_item(item)?),
                    Some(sk) if sk.starts_with("MARKET#") => {
                        context.market = Some(market_from_item(item)?)
                    }
                    Some(sk) if sk.starts_with("SITUATION#") => {
                        context.tracked = Some(Tracked {
                            situation: situation_from_item(item)?,
                            record: record_from_item(item)?,
                        })
                    }
                    other => {
                        return Err(StoreError::Aws(format!(
                            "BatchGetItem answered an item not asked for: {other:?}"
                        )));
                    }
                }
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(left) if !left.keys().is_empty() => {
                    wanted = left;
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
                }
                _ => return Ok(context),
            }
        }
        Err(StoreError::Aws(
            "BatchGetItem left keys unprocessed after every attempt".into(),
        ))
    }

    pub async fn get_tracked(
        &self,
        siret: &Siret,
        market_ref: &MarketRef,
        number: SituationNumber,
    ) -> Result<Option<Tracked>, StoreError> {
        let item = self
            .read_item(situation_key(siret, market_ref, number))
            .await?;
        item.as_ref()
            .map(|item| {
                Ok(Tracked {
                    situation: situation_from_item(item)?,
                    record: record_from_item(item)?,
                })
            })
            .transpose()
    }

    /// Moves the transmission from `from` (at `revision`) to `to`, applying `change`.
    /// `Conflict` when the item moved meanwhile. Returns the item as written.
    pub async fn transition(
        &self,
        tracked: &Tracked,
        from: TransmissionState,
        to: TransmissionState,
        change: Change,
        now: OffsetDateTime,
    ) -> Result<Tracked, StoreError> {
        // Staying in a state (to note a check, a status, a due time) is always allowed;
        // any other move must be one of the state machine's.
        if from != to && !from.can_become(to) {
            return Err(StoreError::IllegalTransition {
                from: from.as_str(),
                to: to.as_str(),
            });
        }
        let events = match self.events {
            Some(_) => super::outbox::transition_events(tracked, to, &change, now),
            None => Vec::new(),
        };
        let payment = super::overdue::payment_entry(tracked, to, &change);
        let sit = &tracked.situation;
        let mut sets = vec![
            "transmission_state = :to".to_owned(),
            "revision = revision + :one".to_owned(),
            "updated_at = :now".to_owned(),
        ];
        let mut removes: Vec<String> = Vec::new();
        let mut values: Vec<(String, AttributeValue)> = vec![
            (":to".into(), s(to.as_str())),
            (":from".into(), s(from.as_str())),
            (":rev".into(), n(sit.revision)),
            (":one".into(), n(1)),
            (":now".into(), s(rfc3339(now))),
        ];
        for (i, (name, value)) in change.set.into_iter().enumerate() {
            sets.push(format!("{name} = :v{i}"));
            values.push((format!(":v{i}"), value));
        }
        for name in change.remove {
            removes.push(name.to_owned());
        }
        if !change.history.is_empty() {
            sets.push(
                "status_history = list_append(if_not_exists(status_history, :empty), :entries)"
                    .into(),
            );
            values.push((":empty".into(), AttributeValue::L(Vec::new())));
            values.push((
                ":entries".into(),
                AttributeValue::L(change.history.iter().map(history_entry_value).collect()),
            ));
        }
        follow_up_writes(sit, change.due_at, &mut sets, &mut removes, &mut values);
        super::overdue::index_writes(tracked, payment, &mut sets, &mut removes, &mut values);
        if !events.is_empty() {
            let (outbox_sets, outbox_values) = super::outbox::outbox_sets(&sit.siret, &events);
            sets.extend(outbox_sets);
            values.extend(outbox_values);
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(situation_key(&sit.siret, &sit.market_ref, sit.number)))
            .update_expression(expression)
            .condition_expression("transmission_state = :from AND revision = :rev")
            .return_values(ReturnValue::AllNew);
        for (k, v) in values {
            request = request.expression_attribute_values(k, v);
        }
        self.written(request.send().await, !events.is_empty()).await
    }

    /// The item as a transition wrote it (its events published), or why it was not.
    async fn written(
        &self,
        sent: Result<
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
            aws_sdk_dynamodb::error::SdkError<
                aws_sdk_dynamodb::operation::update_item::UpdateItemError,
                aws_sdk_dynamodb::config::http::HttpResponse,
            >,
        >,
        with_events: bool,
    ) -> Result<Tracked, StoreError> {
        match sent {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                if with_events {
                    self.publish_item(&item).await;
                }
                Ok(Tracked {
                    situation: situation_from_item(&item)?,
                    record: record_from_item(&item)?,
                })
            }
            Err(e) => {
                if let aws_sdk_dynamodb::error::SdkError::ServiceError(se) = &e
                    && se.err().is_conditional_check_failed_exception()
                {
                    return Err(StoreError::Conflict);
                }
                Err(StoreError::Aws(error_text(&e)))
            }
        }
    }

    /// The situations due for follow-up at `now`, from the worker's shards as far as
    /// `reach` goes (keys only: each is read again, consistently, before anything is done
    /// with it).
    pub async fn due_transmissions(
        &self,
        now: OffsetDateTime,
        limit: usize,
        worker: &FollowWorker,
        reach: ShardReach,
    ) -> Result<(Vec<(Siret, MarketRef, SituationNumber)>, usize), StoreError> {
        let query = BelowBound {
            index: keys::GSI1,
            shard_pks: worker
                .shards(keys::SYNC_SHARDS, reach)
                .into_iter()
                .map(keys::sync_gsi1pk)
                .collect(),
            bound: keys::sync_due_before(now),
            projection: None,
            limit,
        };
        self.query_below(query, situation_of).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_change_replaces_what_it_touches_and_keeps_the_rest() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let claim = Change::default()
            .set("attempts", n(0))
            .set("payload_id", s("p"))
            .remove("lease_until")
            .remove("last_error")
            .due(t0);
        let lease = Change::default()
            .set("attempts", n(1))
            .set("lease_until", s("later"))
            .due(t0 + time::Duration::minutes(2));
        let both = claim.and(lease);
        let names: Vec<&str> = both.set.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["payload_id", "attempts", "lease_until"]);
        assert_eq!(both.set[1].1, n(1));
        assert_eq!(both.remove, ["last_error"]);
        assert_eq!(both.due_at, Some(t0 + time::Duration::minutes(2)));
        // No due time in the later change: the earlier one stays.
        let kept = Change::default()
            .due(t0)
            .and(Change::default().set("x", n(1)));
        assert_eq!(kept.due_at, Some(t0));
    }
}
