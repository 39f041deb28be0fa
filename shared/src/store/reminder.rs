//! The reminder index (GSI1) and the mail claims that make each e-mail go out once.
//!
//! A claim is the Powertools idempotency algorithm on one item per e-mail
//! (`MAIL#{password_version}#{mail}`): taken with a conditional write before sending
//! (`sending`, with a lock), then marked `sent`, or `failed` so the next attempt may take it
//! again. A lock left by a crash expires, and the next attempt takes the claim over.
//!
//! Claims are single-item writes, not transactions with the account item: whether the
//! account still has the password the e-mail is about is read (strongly consistent) just
//! before claiming, which leaves the same instant of doubt as the one between claim and
//! send anyway, and costs one read instead of a transaction's doubled writes.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use time::{Date, Duration, OffsetDateTime};

use super::account::{account_from_item, account_key, reminder_index};
use super::item::{Item, ItemReader, n, s};
use super::keys;
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::clock::rfc3339;
use crate::domain::{CompanyAccount, Siret};

/// One e-mail that must go out once for one password version of one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailClaim {
    pub siret: Siret,
    pub password_version: String,
    /// `REMINDER#J-30`, `CREDENTIALS_REJECTED`.
    pub mail: String,
    /// When DynamoDB may delete the claim (`ttl`): once the e-mail can no longer be due.
    pub forget_after: OffsetDateTime,
}

impl MailClaim {
    fn key(&self) -> Item {
        keys::company_item(
            &self.siret,
            keys::mail_claim_sk(&self.password_version, &self.mail),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Ours to send; `token` proves it when marking the outcome.
    Claimed {
        token: String,
    },
    AlreadySent,
    /// Another attempt holds an unexpired lock.
    InProgress,
}

/// A claim as operators and tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailClaimRecord {
    /// `sending`, `sent` or `failed`.
    pub status: String,
    pub attempts: u64,
    pub message_id: Option<String>,
    pub last_error: Option<String>,
}

/// One page of due accounts; `items_read` is DynamoDB's `ScannedCount`.
#[derive(Debug)]
pub struct DuePage {
    pub accounts: Vec<Result<CompanyAccount, StoreError>>,
    pub items_read: usize,
    pub next_page: Option<Item>,
}

const SENDING: &str = "sending";
const SENT: &str = "sent";
const FAILED: &str = "failed";

/// `attribute_exists(PK) AND password_version = :version` on the account item.
const SAME_PASSWORD: &str = "attribute_exists(PK) AND password_version = :version";

impl Store {
    /// Accounts of one reminder shard whose `next_reminder_on` is today or earlier. The
    /// index is eventually consistent: what is read here may be a moment old, so every
    /// write that follows is conditional on the password version read.
    pub async fn due_accounts(
        &self,
        shard: u8,
        today: Date,
        page: Option<Item>,
    ) -> Result<DuePage, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#pk", keys::GSI1PK)
            .expression_attribute_names("#sk", keys::GSI1SK)
            .expression_attribute_values(":pk", s(keys::reminder_gsi1pk(shard)))
            .expression_attribute_values(":before", s(keys::reminder_due_before(today)))
            .set_exclusive_start_key(page)
            .send()
            .await
            .map_err(|e| StoreError::Aws(error_text(&e)))?;
        Ok(DuePage {
            accounts: out.items().iter().map(account_from_item).collect(),
            items_read: usize::try_from(out.scanned_count()).unwrap_or(0),
            next_page: out.last_evaluated_key().cloned(),
        })
    }

    /// Moves the account in the reminder index to `next` (out of it for `None`), unless
    /// it was deleted or got a new password since it was read (`Conflict`). The revision
    /// is left alone: this is bookkeeping of the reminder run, not a settings change, and a
    /// settings save racing with it at worst puts back an earlier day, which only makes the
    /// next run look again.
    pub async fn reschedule_reminder(
        &self,
        siret: &Siret,
        password_version: &str,
        next: Option<Date>,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(account_key(siret).into_iter().collect()))
            .condition_expression(SAME_PASSWORD)
            .expression_attribute_values(":version", s(password_version));
        update = match next {
            Some(on) => {
                let [(_, day), (_, pk), (_, sk)] = reminder_index(siret, on);
                update
                    .update_expression("SET next_reminder_on = :day, #pk = :pk, #sk = :sk")
                    .expression_attribute_values(":day", day)
                    .expression_attribute_values(":pk", pk)
                    .expression_attribute_values(":sk", sk)
            }
            None => update.update_expression("REMOVE next_reminder_on, #pk, #sk"),
        };
        match update
            .expression_attribute_names("#pk", keys::GSI1PK)
            .expression_attribute_names("#sk", keys::GSI1SK)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Err(StoreError::Conflict),
            Err(e) => Err(StoreError::Aws(error_text(&e))),
        }
    }

    /// Takes the claim of one e-mail: a conditional write that succeeds for one attempt
    /// only, unless the claim failed before or its holder's lock expired.
    pub async fn claim_mail(
        &self,
        claim: &MailClaim,
        now: OffsetDateTime,
        lock: Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(claim.key()))
            .update_expression(
                "SET entity = :entity, siret = :siret, password_version = :version, mail = :mail, \
                 #status = :sending, claim_token = :token, claimed_at = :now, lock_until = :lock, \
                 attempts = if_not_exists(attempts, :zero) + :one, #ttl = :ttl",
            )
            .condition_expression("attribute_not_exists(PK) OR #status = :failed OR (#status = :sending AND lock_until < :now)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":entity", s("mail_claim"))
            .expression_attribute_values(":siret", s(claim.siret.as_str()))
            .expression_attribute_values(":version", s(&claim.password_version))
            .expression_attribute_values(":mail", s(&claim.mail))
            .expression_attribute_values(":sending", s(SENDING))
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":lock", s(rfc3339(now + lock)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(claim.forget_after.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(ClaimOutcome::Claimed { token }),
            Err(e) if is_conditional(&e) => e,
            Err(e) => return Err(StoreError::Aws(error_text(&e))),
        };
        // Not ours to take: sent, or held by another attempt.
        let old_status = match &err {
            SdkError::ServiceError(service) => match service.err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => failed
                    .item()
                    .and_then(|old| ItemReader::new(old).opt_s("status").map(str::to_owned)),
                _ => None,
            },
            _ => None,
        };
        let status = match old_status {
            Some(status) => Some(status),
            None => self.mail_claim(claim).await?.map(|r| r.status),
        };
        Ok(match status.as_deref() {
            Some(SENT) => ClaimOutcome::AlreadySent,
            // `sending` under a live lock, or a claim that changed since the write: leave it.
            _ => ClaimOutcome::InProgress,
        })
    }

    /// Marks the claim sent, if it is still ours.
    pub async fn complete_mail(
        &self,
        claim: &MailClaim,
        token: &str,
        message_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.finish_claim(
            claim,
            token,
            "SET #status = :status, sent_at = :now, message_id = :message REMOVE lock_until, last_error",
            SENT,
            now,
            (":message", message_id),
        )
        .await
    }

    /// Marks the claim failed (so the next attempt takes it), if it is still ours.
    pub async fn fail_mail(
        &self,
        claim: &MailClaim,
        token: &str,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.finish_claim(
            claim,
            token,
            "SET #status = :status, failed_at = :now, last_error = :error REMOVE lock_until",
            FAILED,
            now,
            (":error", error),
        )
        .await
    }

    async fn finish_claim(
        &self,
        claim: &MailClaim,
        token: &str,
        expression: &str,
        status: &str,
        now: OffsetDateTime,
        (name, value): (&str, &str),
    ) -> Result<(), StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(claim.key()))
            .update_expression(expression)
            .condition_expression("claim_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(name, s(value))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Err(StoreError::Conflict),
            Err(e) => Err(StoreError::Aws(error_text(&e))),
        }
    }

    /// The claim of one e-mail, read strongly consistent.
    pub async fn mail_claim(
        &self,
        claim: &MailClaim,
    ) -> Result<Option<MailClaimRecord>, StoreError> {
        let item = self.read_item(claim.key()).await?;
        item.as_ref()
            .map(|item| {
                let r = ItemReader::new(item);
                Ok(MailClaimRecord {
                    status: r.s("status")?.to_owned(),
                    attempts: r.n("attempts")?,
                    message_id: r.opt_s("message_id").map(str::to_owned),
                    last_error: r.opt_s("last_error").map(str::to_owned),
                })
            })
            .transpose()
    }
}

fn is_conditional<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    err: &SdkError<E, R>,
) -> bool {
    matches!(err, SdkError::ServiceError(e) if e.err().code() == Some("ConditionalCheckFailedException"))
}
