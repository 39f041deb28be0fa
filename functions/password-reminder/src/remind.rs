//! One due company: the reminder step due (if any), an unsent rejection alert (if any),
//! then its next date in the index.

use shared::clock::iso_date;
use shared::domain::{CompanyAccount, CredentialsStatus};
use shared::mail::render::{self, RejectionSource};
use shared::reminder::{Delivery, alert_claim, deliver_once, reminder_claim};
use shared::store::StoreError;
use time::OffsetDateTime;

use crate::{Action, Outcome, State};

fn outcome(delivery: &Delivery) -> (Outcome, Option<String>) {
    match delivery {
        Delivery::Sent { .. } => (Outcome::Sent, None),
        Delivery::AlreadySent => (Outcome::AlreadySent, None),
        Delivery::InProgress => (Outcome::InProgress, None),
        Delivery::Superseded => (Outcome::Changed, None),
        Delivery::Failed { reason } => (Outcome::Failed, Some(reason.clone())),
    }
}

pub(crate) async fn remind(
    state: &State,
    account: CompanyAccount,
    now: OffsetDateTime,
) -> Vec<Action> {
    let today = now.date();
    let siret = account.siret.to_string();
    let lifetime = state.config.password_lifetime;
    let expiry = account
        .password_expires_at(lifetime)
        .to_offset(time::UtcOffset::UTC)
        .date();
    let evaluation = state.reminders.schedule.evaluate(expiry, today);
    let mut actions = Vec::new();
    // Something to retry (failed, or held by another run): the account stays due.
    let mut stay_due = false;
    let mut changed = false;

    if account.credentials_status == CredentialsStatus::Rejected {
        // Normally sent at once by whoever recorded the refusal; this is the retry of one
        // that failed or crashed (taking that claim marked the account due).
        let observed_at = account.verified_at.unwrap_or(now);
        let message = render::credentials_rejected(
            &account.referent_email,
            &account,
            lifetime,
            RejectionSource::Unspecified,
            observed_at,
        );
        let delivery = deliver_once(
            &state.store,
            state.mailer.as_ref(),
            &alert_claim(&account, now),
            &message,
            now,
            None,
        )
        .await;
        let (outcome, error) = outcome(&delivery);
        stay_due |= matches!(outcome, Outcome::Failed | Outcome::InProgress);
        changed |= outcome == Outcome::Changed;
        actions.push(Action {
            siret: siret.clone(),
            mail: "credentials_rejected",
            step: None,
            outcome,
            next_reminder_on: None,
            error,
        });
    }

    let mut reminder = Action {
        siret: siret.clone(),
        mail: "reminder",
        step: None,
        outcome: Outcome::NothingDue,
        next_reminder_on: None,
        error: None,
    };
    if let (Some(due), false) = (evaluation.due, changed) {
        let message = render::password_reminder(&account.referent_email, &account, lifetime, today);
        let claim = reminder_claim(&account, due.step, evaluation.next_on, now);
        let delivery = deliver_once(
            &state.store,
            state.mailer.as_ref(),
            &claim,
            &message,
            now,
            None,
        )
        .await;
        let (outcome, error) = outcome(&delivery);
        stay_due |= matches!(outcome, Outcome::Failed | Outcome::InProgress);
        changed |= outcome == Outcome::Changed;
        reminder.step = Some(due.step.id());
        reminder.outcome = outcome;
        reminder.error = error;
    }

    if !stay_due && !changed {
        match state
            .store
            .reschedule_reminder(
                &account.siret,
                &account.password_version,
                evaluation.next_on,
            )
            .await
        {
            Ok(()) => reminder.next_reminder_on = evaluation.next_on.map(iso_date),
            // A new password or a deletion since the index was read: that write decides.
            Err(StoreError::Conflict) => {}
            // Still due: the next run looks again (its claims prevent any duplicate).
            Err(e) => {
                tracing::warn!(siret = %siret, error = %e, "account not moved to its next reminder date")
            }
        }
    }
    match reminder.outcome {
        Outcome::Failed => tracing::error!(
            siret = %siret, step = reminder.step.as_deref().unwrap_or(""), error = reminder.error.as_deref().unwrap_or(""),
            "password reminder not sent; the next run retries"
        ),
        outcome => tracing::info!(
            siret = %siret, step = reminder.step.as_deref().unwrap_or(""), outcome = ?outcome,
            next_reminder_on = reminder.next_reminder_on.as_deref().unwrap_or(""),
            "password reminder"
        ),
    }
    actions.push(reminder);
    actions
}
