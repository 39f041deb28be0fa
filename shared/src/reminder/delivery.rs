//! One e-mail, sent at most once per claim — and never lost for good.
//!
//! Claim (conditional write) → send → mark `sent`. A failed send marks the claim `failed`:
//! the next attempt takes it again. A crash between claim and send leaves it `sending`
//! under a lock of `CLAIM_LOCK`; once the lock has expired, the next attempt takes it
//! over and sends. The price of never losing one: a crash in the instant between SES
//! accepting the message and the `sent` mark sends it a second time — a duplicate
//! reminder costs a glance, a lost one stops a company's invoices.

use time::{Duration, OffsetDateTime};

use crate::mail::{MailMessage, Mailer};
use crate::store::Store;
use crate::store::reminder::{ClaimOutcome, MailClaim};

/// Longer than any run of the function that holds it (its Lambda timeout is 5 minutes),
/// shorter than the time between two daily runs.
pub const CLAIM_LOCK: Duration = Duration::minutes(15);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent {
        message_id: String,
    },
    AlreadySent,
    /// Another attempt holds the claim; it will finish, or its lock will expire.
    InProgress,
    /// The account was deleted or got a new password: this e-mail no longer applies.
    Superseded,
    /// Not sent this time (SES, DynamoDB); the next attempt tries again.
    Failed {
        reason: String,
    },
}

impl Delivery {
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Sent { .. } => "sent",
            Delivery::AlreadySent => "already_sent",
            Delivery::InProgress => "in_progress",
            Delivery::Superseded => "changed",
            Delivery::Failed { .. } => "failed",
        }
    }
}

/// Sends `message` unless its claim says it was sent (or is being sent). The caller has
/// checked that the account still has the password the e-mail is about.
pub async fn deliver_once(
    store: &Store,
    mailer: &dyn Mailer,
    claim: &MailClaim,
    message: &MailMessage,
    now: OffsetDateTime,
) -> Delivery {
    let token = match store.claim_mail(claim, now, CLAIM_LOCK).await {
        Ok(ClaimOutcome::Claimed { token }) => token,
        Ok(ClaimOutcome::AlreadySent) => return Delivery::AlreadySent,
        Ok(ClaimOutcome::InProgress) => return Delivery::InProgress,
        Err(e) => {
            return Delivery::Failed {
                reason: format!("claim not written: {e}"),
            };
        }
    };
    match mailer.send(message).await {
        Ok(sent) => {
            if let Err(e) = store
                .complete_mail(claim, &token, &sent.message_id, now)
                .await
            {
                // Sent all the same; the claim's lock expires, and the next attempt may
                // send a duplicate (see the module's comment).
                tracing::error!(siret = %claim.siret, mail = %claim.mail, error = %e, "sent, but the claim was not marked sent");
            }
            Delivery::Sent {
                message_id: sent.message_id,
            }
        }
        Err(e) => {
            let reason = e.to_string();
            if let Err(store_error) = store.fail_mail(claim, &token, &reason, now).await {
                // The lock expires instead: the retry only waits longer.
                tracing::warn!(siret = %claim.siret, mail = %claim.mail, error = %store_error, "claim not marked failed");
            }
            Delivery::Failed { reason }
        }
    }
}
