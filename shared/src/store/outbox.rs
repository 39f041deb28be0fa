//! The event outbox: an event is written **in the same write** as the change it tells of
//! (the situation's `UpdateItem` in `Store::transition`, the account's transaction in
//! `Store::record_verification`), as an element of the item's `outbox` list, and the item
//! enters the sparse index `GSI3` under `OUTBOX#{shard}`. It is published after
//! (`EventSink`), then removed from the list; the item leaves the index when its list is
//! empty. A publish that fails leaves it there for the next status-sync run
//! (`publish_pending`). Each event has a stable id (the item, its revision, the kind):
//! published twice after a crash, it carries the same id, and consumers deduplicate on it.
//!
//! Nothing here is a secret: the detail is the contract's fields (docs/api.md, "Events"),
//! made of identifiers, states and the French next action.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use time::OffsetDateTime;

use super::item::{Item, ItemReader, n, s};
use super::keys::{self, PK, SK};
use super::transmission::{Change, Tracked};
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::clock::rfc3339;
use crate::domain::Siret;
use crate::domain::situation::Situation;
use crate::domain::transmission::TransmissionState;

/// `source` of every event.
pub const SOURCE: &str = "choruspro-gateway";
pub const STATUS_CHANGED: &str = "Situation status changed";
pub const PAYMENT_OVERDUE: &str = "Payment overdue";
pub const CREDENTIALS_REJECTED: &str = "Credentials rejected";

/// The `detail` of every event (contract, "Events"): absent values are `null`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventDetail {
    pub company_siret: String,
    pub market_ref: Option<String>,
    pub number: Option<u16>,
    pub invoice_number: Option<String>,
    pub state: Option<String>,
    pub chorus_status: Option<String>,
    pub previous_state: Option<String>,
    pub previous_chorus_status: Option<String>,
    pub next_action: Option<String>,
    pub at: String,
    /// The day the situation was paid (`Situation::paid_on`, `YYYY-MM-DD`): present once it
    /// is paid, absent before (an addition: events of unpaid situations are unchanged). A
    /// works statement's payment changes neither its state nor its own status: this says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_on: Option<String>,
}

/// One event waiting in an item's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Stable: the same change always gives the same id.
    pub id: String,
    pub detail_type: String,
    pub detail: EventDetail,
    pub at: OffsetDateTime,
}

impl OutboxEvent {
    fn value(&self) -> AttributeValue {
        let mut m = Item::new();
        m.insert("id".into(), s(&self.id));
        m.insert("detail_type".into(), s(&self.detail_type));
        m.insert(
            "detail".into(),
            s(serde_json::to_string(&self.detail).unwrap_or_default()),
        );
        m.insert("at".into(), s(rfc3339(self.at)));
        AttributeValue::M(m)
    }

    fn from_value(m: &Item) -> Result<Self, StoreError> {
        let r = ItemReader::new(m);
        let detail = serde_json::from_str(r.s("detail")?)
            .map_err(|e| r.corrupt(format!("outbox detail: {e}")))?;
        Ok(OutboxEvent {
            id: r.s("id")?.to_owned(),
            detail_type: r.s("detail_type")?.to_owned(),
            detail,
            at: r.time("at")?,
        })
    }
}

/// The situation as `change` leaves it (what the write will store): state, Chorus Pro
/// status, history, the doubt about a deposit.
pub(crate) fn after_change(
    before: &Situation,
    to: TransmissionState,
    change: &Change,
) -> Situation {
    let mut after = before.clone();
    after.transmission.state = to;
    let set = |name: &str| change.set.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
    let removed = |name: &str| change.remove.contains(&name);
    if let Some(v) = set("chorus_status") {
        after.transmission.chorus_status = v.as_s().ok().cloned();
    } else if removed("chorus_status") {
        after.transmission.chorus_status = None;
    }
    if removed("company_check_since") {
        after.transmission.company_check_since = None;
    } else if let Some(at) = set("company_check_since")
        .and_then(|v| v.as_s().ok())
        .and_then(|v| crate::clock::parse_rfc3339(v))
    {
        after.transmission.company_check_since = Some(at);
    }
    after
        .transmission
        .status_history
        .extend(change.history.iter().cloned());
    after.revision = before.revision + 1;
    after
}

fn situation_detail(before: &Situation, after: &Situation, at: OffsetDateTime) -> EventDetail {
    EventDetail {
        company_siret: after.siret.to_string(),
        market_ref: Some(after.market_ref.to_string()),
        number: Some(after.number.get()),
        invoice_number: Some(after.identifiers.invoice_number.to_string()),
        state: Some(after.transmission.state.as_str().to_owned()),
        chorus_status: after.transmission.chorus_status.clone(),
        previous_state: Some(before.transmission.state.as_str().to_owned()),
        previous_chorus_status: before.transmission.chorus_status.clone(),
        next_action: after.next_action(),
        at: rfc3339(at),
        paid_on: after.paid_on().map(crate::clock::iso_date),
    }
}

fn situation_event_id(after: &Situation, kind: &str) -> String {
    format!(
        "{kind}:{}:{}:{:03}:r{}",
        after.siret,
        after.market_ref,
        after.number.get(),
        after.revision
    )
}

/// The `Situation status changed` event of a change from `before` to `after`, if it is
/// one: its state, its Chorus Pro status, or its payment (`paid_on`, which is all a works
/// statement's payment changes) moved. Every writer of a situation calls it: a
/// transition, and a registration that reopens a rejected one (`store::situation`).
pub(crate) fn status_event(
    before: &Situation,
    after: &Situation,
    now: OffsetDateTime,
) -> Option<OutboxEvent> {
    let moved = after.transmission.state != before.transmission.state
        || after.transmission.chorus_status != before.transmission.chorus_status
        || after.paid_on() != before.paid_on();
    moved.then(|| OutboxEvent {
        id: situation_event_id(after, "status"),
        detail_type: STATUS_CHANGED.into(),
        detail: situation_detail(before, after, now),
        at: now,
    })
}

/// The events a transition writes with itself: a change of state, Chorus Pro status or
/// payment ([`status_event`]), and the overdue mark when `change` sets it for the first time.
pub(crate) fn transition_events(
    tracked: &Tracked,
    to: TransmissionState,
    change: &Change,
    now: OffsetDateTime,
) -> Vec<OutboxEvent> {
    let before = &tracked.situation;
    let after = after_change(before, to, change);
    let mut events: Vec<OutboxEvent> = status_event(before, &after, now).into_iter().collect();
    let marks_overdue = change.set.iter().any(|(k, _)| *k == "overdue_since");
    if marks_overdue && tracked.record.overdue_since.is_none() {
        events.push(OutboxEvent {
            id: situation_event_id(&after, "overdue"),
            detail_type: PAYMENT_OVERDUE.into(),
            detail: situation_detail(before, &after, now),
            at: now,
        });
    }
    events
}

/// The item that carries the event of a refused password (one per password version).
pub(crate) fn rejection_event_item(
    siret: &Siret,
    password_version: &str,
    now: OffsetDateTime,
) -> Item {
    event_item(siret, &credentials_event(siret, password_version, now))
}

/// The event of a refused password: once per company and password version.
fn credentials_event(siret: &Siret, password_version: &str, now: OffsetDateTime) -> OutboxEvent {
    OutboxEvent {
        id: format!("credentials:{siret}:{password_version}"),
        detail_type: CREDENTIALS_REJECTED.into(),
        detail: EventDetail {
            company_siret: siret.to_string(),
            market_ref: None,
            number: None,
            invoice_number: None,
            state: Some("rejected".into()),
            chorus_status: None,
            previous_state: None,
            previous_chorus_status: None,
            next_action: Some("Chorus Pro refuse le mot de passe du compte technique : enregistrez le nouveau dans « Mon compte » ; les transmissions en attente reprendront d'elles-mêmes.".into()),
            at: rfc3339(now),
            paid_on: None,
        },
        at: now,
    }
}

/// The `SET` clauses and values that append `events` to an item's outbox and put it in
/// the outbox index (added to an update expression by its writer).
pub(crate) fn outbox_sets(
    siret: &Siret,
    events: &[OutboxEvent],
) -> (Vec<String>, Vec<(String, AttributeValue)>) {
    let first = events
        .first()
        .map(|e| e.at)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let sets = vec![
        "outbox = list_append(if_not_exists(outbox, :ob_empty), :ob_events)".to_owned(),
        format!("{} = :ob_pk", keys::GSI3PK),
        format!("{} = if_not_exists({}, :ob_sk)", keys::GSI3SK, keys::GSI3SK),
    ];
    let values = vec![
        (":ob_empty".to_owned(), AttributeValue::L(Vec::new())),
        (
            ":ob_events".to_owned(),
            AttributeValue::L(events.iter().map(OutboxEvent::value).collect()),
        ),
        (":ob_pk".to_owned(), s(keys::outbox_gsi3pk(siret))),
        (":ob_sk".to_owned(), s(keys::outbox_gsi3sk(first, siret))),
    ];
    (sets, values)
}

/// An event item of its own (the account's changes are a transaction: the event is one
/// more `Put` in it), kept a year for operators.
fn event_item(siret: &Siret, event: &OutboxEvent) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(keys::company_pk(siret)));
    item.insert(SK.into(), s(keys::event_sk(&event.id)));
    item.insert("entity".into(), s("event"));
    item.insert("siret".into(), s(siret.as_str()));
    item.insert("outbox".into(), AttributeValue::L(vec![event.value()]));
    item.insert(keys::GSI3PK.into(), s(keys::outbox_gsi3pk(siret)));
    item.insert(keys::GSI3SK.into(), s(keys::outbox_gsi3sk(event.at, siret)));
    item.insert(
        "ttl".into(),
        n((event.at + time::Duration::days(366)).unix_timestamp()),
    );
    item
}

/// The events waiting in one item.
pub(crate) fn pending_events(item: &Item) -> Result<Vec<OutboxEvent>, StoreError> {
    item.get("outbox")
        .and_then(|v| v.as_l().ok())
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_m().ok())
                .map(OutboxEvent::from_value)
                .collect()
        })
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// Where events go: the deployment's EventBridge bus (`EVENT_BUS_NAME`).
#[derive(Clone, Debug)]
pub struct EventSink {
    client: crate::aws::LazyClient<aws_sdk_eventbridge::Client>,
    bus: String,
}

/// PutEvents takes at most 10 entries per call.
const PUT_EVENTS_MAX: usize = 10;

impl EventSink {
    pub fn new(
        client: impl Into<crate::aws::LazyClient<aws_sdk_eventbridge::Client>>,
        bus: impl Into<String>,
    ) -> Self {
        EventSink {
            client: client.into(),
            bus: bus.into(),
        }
    }

    /// Publishes `events` in order; the ids EventBridge accepted (a prefix: the first
    /// failed entry stops the rest, so that order holds).
    async fn publish(&self, events: &[OutboxEvent]) -> Result<usize, String> {
        let mut accepted = 0;
        for chunk in events.chunks(PUT_EVENTS_MAX) {
            let entries: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(&e.detail_type)
                        .resources(format!("urn:choruspro-gateway:event:{}", e.id))
                        .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                            e.at.unix_timestamp(),
                        ))
                        .detail(serde_json::to_string(&e.detail).unwrap_or_default())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| error_text(&e))?;
            let results = out.entries();
            let ok = results
                .iter()
                .take_while(|r| r.event_id().is_some() && r.error_code().is_none())
                .count();
            accepted += ok.min(chunk.len());
            if out.failed_entry_count() > 0 || ok < chunk.len() {
                let why = results
                    .iter()
                    .find_map(|r| r.error_code().map(str::to_owned))
                    .unwrap_or_else(|| "entry not accepted".into());
                return Err(format!("{accepted} published, then {why}"));
            }
        }
        Ok(accepted)
    }
}

/// What one pass over the outbox index did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OutboxReport {
    pub items_read: usize,
    pub published: usize,
    pub failed: usize,
}

impl Store {
    /// Publishes the events waiting in `item` (as written) and takes them out of its
    /// outbox. Never fails the caller: what is not published waits for the next pass.
    pub(crate) async fn publish_item(&self, item: &Item) -> (usize, bool) {
        let Some(sink) = &self.events else {
            return (0, true);
        };
        let events = match pending_events(item) {
            Ok(events) if !events.is_empty() => events,
            Ok(_) => return (0, true),
            Err(e) => {
                tracing::error!(error = %e, "outbox unreadable");
                return (0, false);
            }
        };
        let (published, complete) = match sink.publish(&events).await {
            Ok(n) => (n, true),
            Err(e) => {
                tracing::warn!(error = %e, "events not published; the next status-sync retries");
                (0, false)
            }
        };
        if published > 0
            && let Err(e) = self.mark_published(item, &events[..published]).await
        {
            tracing::warn!(error = %e, "events published but not marked; they may be published again (same ids)");
        }
        (published, complete)
    }

    /// Removes the first `published.len()` events of the item's outbox, on condition that
    /// they are still the first ones; the item leaves the index when nothing else came.
    async fn mark_published(
        &self,
        item: &Item,
        published: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let key: Item = [PK, SK]
            .into_iter()
            .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
            .collect();
        let mut conditions = Vec::new();
        let mut removes = Vec::new();
        let mut request = self.client.update_item().table_name(&self.table);
        for (i, event) in published.iter().enumerate() {
            conditions.push(format!("outbox[{i}].id = :id{i}"));
            removes.push(format!("outbox[{i}]"));
            request = request.expression_attribute_values(format!(":id{i}"), s(&event.id));
        }
        let all = format!(
            "REMOVE {}, {}, {}",
            removes.join(", "),
            keys::GSI3PK,
            keys::GSI3SK
        );
        let only_these = format!("{} AND size(outbox) = :count", conditions.join(" AND "));
        let request = request
            .set_key(Some(key))
            .expression_attribute_values(":count", n(published.len()));
        // First as the whole outbox; if more came meanwhile, only these, index kept.
        match request
            .clone()
            .update_expression(all)
            .condition_expression(only_these)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if !is_conditional(&e) => return Err(StoreError::Aws(error_text(&e))),
            Err(_) => {}
        }
        request
            .update_expression(format!("REMOVE {}", removes.join(", ")))
            .condition_expression(format!(
                "{} AND size(outbox) > :count",
                conditions.join(" AND ")
            ))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match is_conditional(&e) {
                true => StoreError::Conflict,
                false => StoreError::Aws(error_text(&e)),
            })
    }

    /// Every item of the outbox index, oldest first, published: what a failed publish left
    /// behind. Called by each status-sync run.
    pub async fn publish_pending(&self) -> OutboxReport {
        let mut report = OutboxReport::default();
        if self.events.is_none() {
            return report;
        }
        for shard in 0..keys::OUTBOX_SHARDS {
            let mut start = None;
            loop {
                let out = match self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(keys::GSI3)
                    .key_condition_expression("GSI3PK = :pk")
                    .expression_attribute_values(":pk", s(keys::outbox_shard_pk(shard)))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(e) => {
                        tracing::error!(error = %error_text(&e), "outbox index not read");
                        report.failed += 1;
                        break;
                    }
                };
                report.items_read += usize::try_from(out.scanned_count).unwrap_or(0);
                for item in out.items() {
                    // The index is eventually consistent: read the item itself.
                    let fresh = self.get_raw(item).await;
                    let Some(fresh) = fresh else { continue };
                    let (published, complete) = self.publish_item(&fresh).await;
                    report.published += published;
                    report.failed += usize::from(!complete);
                }
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        report
    }

    /// Publishes the events a write other than `transition` left in the item at `key` (a
    /// transaction answers no item): read again, then as `publish_item`. Never fails the
    /// caller: what is not published waits for the next status-sync.
    pub(crate) async fn publish_written(&self, key: &Item) {
        if self.events.is_none() {
            return;
        }
        if let Some(item) = self.get_raw(key).await {
            self.publish_item(&item).await;
        }
    }

    async fn get_raw(&self, item: &Item) -> Option<Item> {
        let key: Item = [PK, SK]
            .into_iter()
            .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
            .collect();
        match self.read_item(key).await {
            Ok(item) => item,
            Err(e) => {
                tracing::warn!(error = %e, "outbox item not read");
                None
            }
        }
    }
}

fn is_conditional<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    matches!(e, aws_sdk_dynamodb::error::SdkError::ServiceError(se)
        if se.err().code() == Some("ConditionalCheckFailedException"))
}
