//! The immediate alert when Chorus Pro refuses a company's stored password: one e-mail
//! per company and password version, whichever code notices it first and however many
//! calls fail afterwards.

use time::{Duration, OffsetDateTime, UtcOffset};

use super::delivery::{Delivery, deliver_once};
use crate::domain::CompanyAccount;
use crate::domain::account::PasswordLifetime;
use crate::mail::Mailer;
use crate::mail::render::{self, RejectionSource};
use crate::store::reminder::MailClaim;
use crate::store::{Store, StoreError};

/// The claim of the alert for the account's password version. Kept long after: the same
/// password is not refused anew once replaced, and a deleted claim only means one more
/// alert.
pub fn alert_claim(account: &CompanyAccount, now: OffsetDateTime) -> MailClaim {
    MailClaim {
        siret: account.siret.clone(),
        password_version: account.password_version.clone(),
        mail: "CREDENTIALS_REJECTED".to_owned(),
        forget_after: now + Duration::days(400),
    }
}

/// Tells the referent that Chorus Pro refuses the stored credentials, once per password
/// version. Call it after recording the `rejected` status, every time a refusal is seen:
/// later calls for the same version send nothing.
///
/// Never fails the caller: the outcome says what happened and is logged. Before claiming,
/// the account is marked due in the reminder index, so a send that fails (or a crash
/// before it) is retried by the next daily reminder run, or by the next call.
///
/// Needs `dynamodb:GetItem` and `dynamodb:UpdateItem` on the table, and `ses:SendEmail`
/// on the sender identity.
pub async fn notify_credentials_rejected(
    store: &Store,
    mailer: &dyn Mailer,
    account: &CompanyAccount,
    lifetime: PasswordLifetime,
    source: RejectionSource,
    now: OffsetDateTime,
) -> Delivery {
    let claim = alert_claim(account, now);
    let outcome = match alert_outcome(store, mailer, account, lifetime, source, &claim, now).await {
        Ok(outcome) => outcome,
        Err(e) => Delivery::Failed {
            reason: e.to_string(),
        },
    };
    match &outcome {
        Delivery::Failed { reason } => tracing::error!(
            siret = %account.siret, source = source.as_str(), error = %reason,
            "credentials-rejected alert not sent; the next reminder run retries"
        ),
        other => tracing::info!(
            siret = %account.siret, source = source.as_str(), outcome = other.as_str(),
            "credentials-rejected alert"
        ),
    }
    outcome
}

async fn alert_outcome(
    store: &Store,
    mailer: &dyn Mailer,
    account: &CompanyAccount,
    lifetime: PasswordLifetime,
    source: RejectionSource,
    claim: &MailClaim,
    now: OffsetDateTime,
) -> Result<Delivery, StoreError> {
    // The calls after the first only read: most refusals come after the alert went out.
    if store
        .mail_claim(claim)
        .await?
        .is_some_and(|c| c.status == "sent")
    {
        return Ok(Delivery::AlreadySent);
    }
    // Due today in the reminder index before the claim: if this send fails, or the process
    // stops before it, the next daily run sends the alert. Conditional on the password:
    // a newer password makes this alert moot.
    let today = now.to_offset(UtcOffset::UTC).date();
    match store
        .reschedule_reminder(&account.siret, &account.password_version, Some(today))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Ok(Delivery::Superseded),
        Err(e) => return Err(e),
    }
    let message =
        render::credentials_rejected(&account.referent_email, account, lifetime, source, now);
    Ok(deliver_once(store, mailer, claim, &message, now).await)
}
