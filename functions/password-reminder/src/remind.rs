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

fn action(account: &CompanyAccount, mail: &'static str, outcome: Outcome) -> Action {
    Action {
        siret: account.siret.to_string(),
        mail,
        step: None,
        outcome,
        next_reminder_on: None,
        error: None,
    }
}

pub(crate) async fn remind(
    state: &State,
    indexed: CompanyAccount,
    now: OffsetDateTime,
) -> Vec<Action> {
    let today = now.date();
    let lifetime = state.config.password_lifetime;
    let schedule = &state.reminders.schedule;
    let expiry_of = |a: &CompanyAccount| {
        a.password_expires_at(lifetime)
            .to_offset(time::UtcOffset::UTC)
            .date()
    };
    let mut account = indexed;
    let mut evaluation = schedule.evaluate(expiry_of(&account), today);

    if evaluation.due.is_some() || account.credentials_status == CredentialsStatus::Rejected {
        // The index is eventually consistent: before any e-mail, the account as it is now.
        // A new password or a deletion since then ends this cycle (that write re-indexed
        // or removed the account).
        match state.store.get_account(&account.siret).await {
            Ok(Some(current)) if current.password_version == account.password_version => {
                account = current;
                evaluation = schedule.evaluate(expiry_of(&account), today);
            }
            Ok(_) => {
                tracing::info!(siret = %account.siret, "account changed since indexed: nothing sent");
                return vec![action(&account, "reminder", Outcome::Changed)];
            }
            Err(e) => {
                tracing::error!(siret = %account.siret, error = %e, "account unreadable; the next run retries");
                let mut failed = action(&account, "reminder", Outcome::Failed);
                failed.error = Some(e.to_string());
                return vec![failed];
            }
        }
    }
    let mut actions = Vec::new();
    // Something to retry (failed, or held by another run): the account stays due.
    let mut stay_due = false;

    if account.credentials_status == CredentialsStatus::Rejected {
        // Normally sent at once by whoever recorded the refusal; this is the retry of one
        // that failed or crashed (the alert marks the account due before claiming).
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
        )
        .await;
        let (outcome, error) = outcome(&delivery);
        stay_due |= matches!(outcome, Outcome::Failed | Outcome::InProgress);
        actions.push(Action {
            error,
            ..action(&account, "credentials_rejected", outcome)
        });
    }

    let mut reminder = action(&account, "reminder", Outcome::NothingDue);
    if let Some(due) = evaluation.due {
        let message = render::password_reminder(&account.referent_email, &account, lifetime, today);
        let claim = reminder_claim(&account, due.step, evaluation.next_on, now);
        let delivery =
            deliver_once(&state.store, state.mailer.as_ref(), &claim, &message, now).await;
        let (outcome, error) = outcome(&delivery);
        stay_due |= matches!(outcome, Outcome::Failed | Outcome::InProgress);
        reminder.step = Some(due.step.id());
        reminder.outcome = outcome;
        reminder.error = error;
    }

    if !stay_due {
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
            // A new password or a deletion since it was read: that write decides.
            Err(StoreError::Conflict) => {}
            // Still due: the next run looks again (its claims prevent any duplicate).
            Err(e) => {
                tracing::warn!(siret = %account.siret, error = %e, "account not moved to its next reminder date")
            }
        }
    }
    let step = reminder.step.as_deref().unwrap_or("");
    match reminder.outcome {
        Outcome::Failed => tracing::error!(
            siret = %account.siret, step, error = reminder.error.as_deref().unwrap_or(""),
            "password reminder not sent; the next run retries"
        ),
        outcome => tracing::info!(
            siret = %account.siret, step, outcome = ?outcome,
            next_reminder_on = reminder.next_reminder_on.as_deref().unwrap_or(""),
            "password reminder"
        ),
    }
    actions.push(reminder);
    actions
}
