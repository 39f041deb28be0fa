//! The immediate alert when Chorus Pro refuses a company's stored password: one e-mail
//! per company and password version, whichever code notices it first and however many
//! calls fail afterwards.

use time::{Duration, OffsetDateTime, UtcOffset};

use super::delivery::{Delivery, deliver_once};
use crate::domain::CompanyAccount;
use crate::domain::account::PasswordLifetime;
use crate::mail::Mailer;
use crate::mail::render::{self, RejectionSource};
use crate::store::Store;
use crate::store::reminder::MailClaim;

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
/// Never fails the caller: the outcome says what happened and is logged. Taking the claim
/// also marks the account due in the reminder index, so a send that fails (or a crash
/// before it) is retried by the next daily reminder run, or by the next call.
///
/// Needs `dynamodb:UpdateItem`, `dynamodb:ConditionCheckItem` and `dynamodb:GetItem` on
/// the table, and `ses:SendEmail` on the sender identity.
pub async fn notify_credentials_rejected(
    store: &Store,
    mailer: &dyn Mailer,
    account: &CompanyAccount,
    lifetime: PasswordLifetime,
    source: RejectionSource,
    now: OffsetDateTime,
) -> Delivery {
    let message =
        render::credentials_rejected(&account.referent_email, account, lifetime, source, now);
    let today = now.to_offset(UtcOffset::UTC).date();
    let outcome = deliver_once(
        store,
        mailer,
        &alert_claim(account, now),
        &message,
        now,
        Some(today),
    )
    .await;
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
