//! One due company: the reminder step due (if any), an unsent rejection alert (if any),
//! then its next date in the index.

use shared::clock::iso_date;
use shared::domain::{CompanyAccount, CredentialsStatus};
use shared::mail::render::{self, RejectionSource};
use shared::reminder::{Delivery, Evaluation, alert_claim, deliver_once, reminder_claim};
use shared::store::StoreError;
use time::{Date, OffsetDateTime};

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

/// A failed or held e-mail is retried by the next run: the account stays due.
fn retried_later(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Failed | Outcome::InProgress)
}

/// The day the account's password expires.
fn expiry_date(state: &State, account: &CompanyAccount) -> Date {
    account
        .password_expires_at(state.config.password_lifetime)
        .to_offset(time::UtcOffset::UTC)
        .date()
}

/// The account as it is now, with what is due today. The index is eventually consistent:
/// before any e-mail the account is read again, and a new password or a deletion since it
/// was indexed ends this cycle (that write re-indexed or removed the account): then the
/// action to report instead.
async fn read_current(
    state: &State,
    indexed: CompanyAccount,
    today: Date,
) -> Result<(CompanyAccount, Evaluation), Action> {
    let schedule = &state.config.reminders.schedule;
    let evaluation = schedule.evaluate(expiry_date(state, &indexed), today);
    if evaluation.due.is_none() && indexed.credentials_status != CredentialsStatus::Rejected {
        return Ok((indexed, evaluation));
    }
    match state.store.get_account(&indexed.siret).await {
        Ok(Some(current)) if current.password_version == indexed.password_version => {
            let evaluation = schedule.evaluate(expiry_date(state, &current), today);
            Ok((current, evaluation))
        }
        Ok(_) => {
            tracing::info!(siret = %indexed.siret, "account changed since indexed: nothing sent");
            Err(action(&indexed, "reminder", Outcome::Changed))
        }
        Err(e) => {
            tracing::error!(siret = %indexed.siret, error = %e, "account unreadable; the next run retries");
            let mut failed = action(&indexed, "reminder", Outcome::Failed);
            failed.error = Some(e.to_string());
            Err(failed)
        }
    }
}

/// The credentials-rejected alert of a rejected account. Normally sent at once by whoever
/// recorded the refusal; this is the retry of one that failed or crashed (the alert marks
/// the account due before claiming).
async fn retry_rejection_alert(
    state: &State,
    account: &CompanyAccount,
    now: OffsetDateTime,
) -> Action {
    let observed_at = account.verified_at.unwrap_or(now);
    let message = render::credentials_rejected(
        &account.referent_email,
        account,
        state.config.password_lifetime,
        RejectionSource::Unspecified,
        observed_at,
    );
    let delivery = deliver_once(
        &state.store,
        state.mailer.as_ref(),
        &alert_claim(account, now),
        &message,
        now,
    )
    .await;
    let (outcome, error) = outcome(&delivery);
    Action {
        error,
        ..action(account, "credentials_rejected", outcome)
    }
}

/// The reminder step due today, sent once; `NothingDue` when none is.
async fn send_due_reminder(
    state: &State,
    account: &CompanyAccount,
    evaluation: &Evaluation,
    now: OffsetDateTime,
) -> Action {
    let mut reminder = action(account, "reminder", Outcome::NothingDue);
    let Some(due) = evaluation.due else {
        return reminder;
    };
    let lifetime = state.config.password_lifetime;
    let message = render::password_reminder(&account.referent_email, account, lifetime, now.date());
    let claim = reminder_claim(account, due.step, evaluation.next_on, now);
    let delivery = deliver_once(&state.store, state.mailer.as_ref(), &claim, &message, now).await;
    let (outcome, error) = outcome(&delivery);
    reminder.step = Some(due.step.id());
    reminder.outcome = outcome;
    reminder.error = error;
    reminder
}

/// Moves the account to its next reminder date in the index, noted on `reminder`.
async fn reschedule(
    state: &State,
    account: &CompanyAccount,
    evaluation: &Evaluation,
    reminder: &mut Action,
) {
    let moved = state
        .store
        .reschedule_reminder(
            &account.siret,
            &account.password_version,
            evaluation.next_on,
        )
        .await;
    match moved {
        Ok(()) => reminder.next_reminder_on = evaluation.next_on.map(iso_date),
        // A new password or a deletion since it was read: that write decides.
        Err(StoreError::Conflict) => {}
        // Still due: the next run looks again (its claims prevent any duplicate).
        Err(e) => {
            tracing::warn!(siret = %account.siret, error = %e, "account not moved to its next reminder date")
        }
    }
}

fn log_reminder(account: &CompanyAccount, reminder: &Action) {
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
}

pub(crate) async fn remind(
    state: &State,
    indexed: CompanyAccount,
    now: OffsetDateTime,
) -> Vec<Action> {
    let (account, evaluation) = match read_current(state, indexed, now.date()).await {
        Ok(current) => current,
        Err(action) => return vec![action],
    };
    let mut actions = Vec::new();
    if account.credentials_status == CredentialsStatus::Rejected {
        actions.push(retry_rejection_alert(state, &account, now).await);
    }
    let mut reminder = send_due_reminder(state, &account, &evaluation, now).await;
    // Something to retry (failed, or held by another run): the account stays due.
    let stay_due =
        retried_later(reminder.outcome) || actions.iter().any(|a| retried_later(a.outcome));
    if !stay_due {
        reschedule(state, &account, &evaluation, &mut reminder).await;
    }
    log_reminder(&account, &reminder);
    actions.push(reminder);
    actions
}
