//! The overdue pass of each run: the situations whose payment deadline has passed, read
//! from the payment index (`store::overdue`: only those, never one still within its
//! deadline), are marked overdue once (a conditional write that carries the `Payment
//! overdue` event), and the company's referent gets one e-mail (a mail claim per situation:
//! sent once, retried while it fails). Then the outbox: the events a failed publish left
//! (worker 0's run alone publishes them).

use serde::Serialize;
use shared::domain::payment::{PaymentClock, PaymentTerms};
use shared::domain::{CompanyAccount, MarketRef, Siret, SituationNumber};
use shared::follow_settings::FollowWorker;
use shared::mail::render::{OverdueFacts, payment_overdue};
use shared::reminder::delivery::{Delivery, deliver_once};
use shared::store::StoreError;
use shared::store::reminder::MailClaim;
use shared::store::transmission::{Change, Tracked};
use time::{Duration, OffsetDateTime};

use crate::State;

/// At most this many late situations per run; the rest are read by the next one.
pub const OVERDUE_BATCH: usize = 200;

#[derive(Debug, Default, Serialize)]
pub struct OverdueReport {
    /// Index entries read (DynamoDB's `ScannedCount`).
    pub items_read: usize,
    pub marked: usize,
    pub mailed: usize,
    /// Moved to their later deadline (a health establishment's 50 days, …).
    pub rescheduled: usize,
    pub failed: usize,
    pub outbox: shared::store::outbox::OutboxReport,
}

/// The pass over the worker's own shards of the payment index (no lease guards it: two
/// workers never share a shard), then, by worker 0 alone, the outbox.
pub async fn run(state: &State, now: OffsetDateTime, worker: &FollowWorker) -> OverdueReport {
    let mut report = OverdueReport::default();
    let today = PaymentTerms::at(None, &state.config.late_payment_rates, now).today;
    match state
        .store
        .overdue_candidates(today, OVERDUE_BATCH, worker)
        .await
    {
        Ok((found, read)) => {
            report.items_read = read;
            for (siret, market_ref, number) in found {
                if let Err(e) = one(state, &mut report, (&siret, &market_ref, number), now).await {
                    tracing::warn!(siret = %siret, market_ref = %market_ref, situation = number.get(), error = %e, "overdue pass failed; retried next run");
                    report.failed += 1;
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read the payment index");
            report.failed += 1;
        }
    }
    if worker.index() == 0 {
        report.outbox = state.store.publish_pending().await;
    }
    report
}

/// The follow-up index entry stays as it is: this pass only notes the payment.
fn keeping_follow_up(change: Change, tracked: &Tracked) -> Change {
    match tracked.record.next_check_at {
        Some(at) => change.due(at),
        None => change,
    }
}

async fn one(
    state: &State,
    report: &mut OverdueReport,
    (siret, market_ref, number): (&Siret, &MarketRef, SituationNumber),
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let Some(mut tracked) = state.store.get_tracked(siret, market_ref, number).await? else {
        return Ok(());
    };
    let market = state.store.get_market(siret, market_ref).await?;
    let category = market.map(|m| m.terms.buyer_category).unwrap_or_default();
    let terms = PaymentTerms::at(Some(category), &state.config.late_payment_rates, now);
    let from = tracked.situation.transmission.state;
    if tracked.record.buyer_category != Some(category) {
        // Noting the category re-keys the index entry to the market's real deadline.
        let change = keeping_follow_up(Change::default().buyer_category(category), &tracked);
        tracked = state
            .store
            .transition(&tracked, from, from, change, now)
            .await?;
    }
    let clock = tracked.situation.payment(terms);
    let late = clock.paid_on.is_none()
        && clock.due_on.is_some_and(|due| due < terms.today)
        && !shared::store::overdue::is_rejected(&tracked.situation);
    if !late {
        report.rescheduled += 1;
        return Ok(());
    }
    if tracked.record.overdue_since.is_none() {
        let first_late_day = clock.due_on.map_or(terms.today, |d| d + Duration::days(1));
        let change = keeping_follow_up(Change::default().overdue(first_late_day), &tracked);
        tracked = state
            .store
            .transition(&tracked, from, from, change, now)
            .await?;
        report.marked += 1;
        tracing::info!(siret = %siret, market_ref = %market_ref, situation = number.get(), "payment overdue");
    }
    if tell_referent(state, &tracked, &clock, now).await? {
        report.mailed += 1;
    }
    Ok(())
}

/// The e-mail, once; then the situation leaves the payment index. `true` when sent now.
async fn tell_referent(
    state: &State,
    tracked: &Tracked,
    clock: &PaymentClock,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let sit = &tracked.situation;
    let account = state.store.get_account(&sit.siret).await?;
    let delivery = match (&state.depositor.mailer, &account) {
        (Some(mailer), Some(account)) if account.notify_overdue => {
            let claim = overdue_claim(tracked, now);
            let message = overdue_message(account, tracked, clock);
            deliver_once(&state.store, mailer.as_ref(), &claim, &message, now).await
        }
        // No sender, no settings, or the company switched it off: nobody to tell.
        _ => Delivery::Superseded,
    };
    if let Delivery::Failed { reason } = &delivery {
        tracing::warn!(error = %reason, "overdue e-mail not sent; retried next run");
        return Ok(false);
    }
    if matches!(delivery, Delivery::InProgress) {
        return Ok(false);
    }
    let change = keeping_follow_up(Change::default().overdue_notified(now), tracked);
    let from = sit.transmission.state;
    state
        .store
        .transition(tracked, from, from, change, now)
        .await?;
    Ok(matches!(delivery, Delivery::Sent { .. }))
}

/// One claim per situation and invoice number (a renumbered situation is another invoice).
fn overdue_claim(tracked: &Tracked, now: OffsetDateTime) -> MailClaim {
    let sit = &tracked.situation;
    MailClaim {
        siret: sit.siret.clone(),
        password_version: "OVERDUE".into(),
        mail: format!(
            "{}#{:03}#{}",
            sit.market_ref,
            sit.number.get(),
            sit.identifiers.invoice_number.uniqueness_key()
        ),
        forget_after: now + Duration::days(400),
    }
}

fn overdue_message(
    account: &CompanyAccount,
    tracked: &Tracked,
    clock: &PaymentClock,
) -> shared::mail::MailMessage {
    payment_overdue(
        &account.referent_email,
        account,
        &OverdueFacts {
            situation: &tracked.situation,
            clock,
        },
    )
}
