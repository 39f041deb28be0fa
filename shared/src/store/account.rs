//! The company account item and its audit trail.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::item::{Item, ItemReader, n, s};
use super::keys::{self, ACCOUNT_SK, PK, SK};
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::clock::{iso_date, parse_iso_date, rfc3339};
use crate::domain::{
    CompanyAccount, CredentialsStatus, Email, Environment, Siret, SiretCheck, TechnicalLogin,
};

/// Who changed what and when; never a value of the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: OffsetDateTime,
    /// The token's `sub`.
    pub actor: String,
    /// `account_created`, `account_updated`, `account_deleted`, `credentials_verified`, …
    pub action: String,
    /// Names of the fields that changed (`password` when a new one was saved).
    pub fields: Vec<String>,
}

impl AuditEntry {
    pub(crate) fn to_item(&self, siret: &Siret) -> Item {
        let at = rfc3339(self.at);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut item = Item::new();
        item.insert(PK.into(), s(keys::company_pk(siret)));
        item.insert(SK.into(), s(keys::audit_sk(self.at, &id)));
        item.insert("entity".into(), s("audit"));
        item.insert("siret".into(), s(siret.as_str()));
        item.insert("at".into(), s(at));
        item.insert("actor".into(), s(self.actor.clone()));
        item.insert("action".into(), s(self.action.clone()));
        if !self.fields.is_empty() {
            item.insert(
                "fields".into(),
                AttributeValue::L(self.fields.iter().map(|f| s(f.clone())).collect()),
            );
        }
        item
    }
}

/// What a credentials check found: the status, and for an accepted one the company's own
/// structure id (from the same answer), which the commitment search needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub status: CredentialsStatus,
    pub chorus_structure_id: Option<i64>,
    /// The status the account had when read, when the write is conditional on that read
    /// (`expected_revision`): a refusal of a password already refused is no new event.
    /// `None`: not known, and a refusal is announced (at least once).
    pub was: Option<CredentialsStatus>,
}

impl From<CredentialsStatus> for Verification {
    /// A status alone: the structure id known stays as it is.
    fn from(status: CredentialsStatus) -> Self {
        Verification {
            status,
            chorus_structure_id: None,
            was: None,
        }
    }
}

impl Verification {
    /// Whether this verdict is a `Credentials rejected` event: a refusal, unless the
    /// account read (and guarded by its revision) was refused already.
    fn announces_rejection(&self, expected_revision: Option<u64>) -> bool {
        let refused_already =
            expected_revision.is_some() && self.was == Some(CredentialsStatus::Rejected);
        self.status == CredentialsStatus::Rejected && !refused_already
    }
}

pub(crate) fn account_key(siret: &Siret) -> [(String, AttributeValue); 2] {
    [
        (PK.into(), s(keys::company_pk(siret))),
        (SK.into(), s(ACCOUNT_SK)),
    ]
}

fn account_to_item(a: &CompanyAccount) -> Item {
    let mut item: Item = account_key(&a.siret).into_iter().collect();
    item.insert("entity".into(), s("company_account"));
    item.insert("siret".into(), s(a.siret.as_str()));
    item.insert("referent_email".into(), s(a.referent_email.as_str()));
    item.insert("technical_login".into(), s(a.technical_login.as_str()));
    item.insert("environment".into(), s(a.environment.as_str()));
    item.insert("password_set_at".into(), s(rfc3339(a.password_set_at)));
    item.insert("password_version".into(), s(a.password_version.clone()));
    item.insert(
        "credentials_status".into(),
        s(a.credentials_status.as_str()),
    );
    if let Some(v) = a.verified_at {
        item.insert("verified_at".into(), s(rfc3339(v)));
    }
    item.insert("created_at".into(), s(rfc3339(a.created_at)));
    item.insert("updated_at".into(), s(rfc3339(a.updated_at)));
    item.insert("revision".into(), n(a.revision));
    if let Some(on) = a.next_reminder_on {
        item.extend(reminder_index(&a.siret, on));
    }
    if let Some(id) = a.chorus_structure_id {
        item.insert("chorus_structure_id".into(), n(id));
    }
    item.insert(
        "notify_overdue".into(),
        AttributeValue::Bool(a.notify_overdue),
    );
    item
}

/// The attributes that put an account in the reminder index (GSI1) for the day `on`.
pub(crate) fn reminder_index(siret: &Siret, on: time::Date) -> [(String, AttributeValue); 3] {
    [
        ("next_reminder_on".into(), s(iso_date(on))),
        (
            keys::GSI1PK.into(),
            s(keys::reminder_gsi1pk(keys::reminder_shard(siret))),
        ),
        (keys::GSI1SK.into(), s(keys::reminder_gsi1sk(on, siret))),
    ]
}

pub(crate) fn account_from_item(item: &Item) -> Result<CompanyAccount, StoreError> {
    let r = ItemReader::new(item);
    let environment = r.parsed("environment", |v| Environment::parse(v).ok_or(()))?;
    Ok(CompanyAccount {
        // Stored SIRETs were checked on the way in; read back by shape only.
        siret: r.parsed("siret", |v| Siret::parse(v, SiretCheck::ShapeOnly))?,
        referent_email: r.parsed("referent_email", Email::parse)?,
        technical_login: r.parsed("technical_login", TechnicalLogin::parse)?,
        environment,
        password_set_at: r.time("password_set_at")?,
        password_version: r.s("password_version")?.to_owned(),
        credentials_status: r.parsed("credentials_status", |v| {
            CredentialsStatus::parse(v).ok_or(())
        })?,
        verified_at: r.opt_time("verified_at")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        revision: r.n("revision")?,
        next_reminder_on: match r.opt_s("next_reminder_on") {
            None => None,
            Some(day) => {
                Some(parse_iso_date(day).ok_or_else(|| r.corrupt("bad date in next_reminder_on"))?)
            }
        },
        // Absent on accounts saved before it was kept.
        chorus_structure_id: r.opt_n("chorus_structure_id")?,
        // Absent on accounts saved before the switch existed: on.
        notify_overdue: item
            .get("notify_overdue")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(true),
    })
}

fn is_conditional_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    err: &SdkError<E, R>,
) -> bool {
    match err {
        SdkError::ServiceError(e) => matches!(
            e.err().code(),
            Some("ConditionalCheckFailedException") | Some("TransactionCanceledException")
        ),
        _ => false,
    }
}

impl Store {
    /// Strongly consistent: a save is visible to the next read.
    pub async fn get_account(&self, siret: &Siret) -> Result<Option<CompanyAccount>, StoreError> {
        let item = self
            .read_item(account_key(siret).into_iter().collect())
            .await?;
        item.as_ref().map(account_from_item).transpose()
    }

    /// Writes the account and its audit entry in one transaction, on condition that the
    /// stored revision is still `expected_revision` (`None`: that no account exists).
    pub async fn save_account(
        &self,
        account: &CompanyAccount,
        expected_revision: Option<u64>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(account_to_item(account)));
        put = match expected_revision {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(rev) => put
                .condition_expression("revision = :expected")
                .expression_attribute_values(":expected", n(rev)),
        };
        let audit_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(audit.to_item(&account.siret)))
            .condition_expression("attribute_not_exists(PK)");
        self.transact(vec![
            TransactWriteItem::builder()
                .put(put.build().map_err(|e| StoreError::Aws(e.to_string()))?)
                .build(),
            TransactWriteItem::builder()
                .put(
                    audit_put
                        .build()
                        .map_err(|e| StoreError::Aws(e.to_string()))?,
                )
                .build(),
        ])
        .await
    }

    /// Records what Chorus Pro said of the credentials, with its audit entry, on condition
    /// that the password tested is still the one in force (`Conflict` otherwise: a newer
    /// save won, and its own status stands).
    ///
    /// With `expected_revision`, only if nothing else changed since the account was read
    /// (the caller then knows the item as written without reading it again).
    pub async fn record_verification(
        &self,
        siret: &Siret,
        password_version: &str,
        expected_revision: Option<u64>,
        verification: Verification,
        verified_at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let announce = verification.announces_rejection(expected_revision);
        let Verification {
            status,
            chorus_structure_id,
            ..
        } = verification;
        // An accepted check also tells the company's structure id; a refusal tells nothing
        // of it, and the one known stays.
        let expression = match chorus_structure_id {
            Some(_) => {
                "SET credentials_status = :status, verified_at = :at, revision = revision + :one, chorus_structure_id = :structure"
            }
            None => {
                "SET credentials_status = :status, verified_at = :at, revision = revision + :one"
            }
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(account_key(siret).into_iter().collect()))
            .update_expression(expression)
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":at", s(rfc3339(verified_at)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":version", s(password_version));
        if let Some(id) = chorus_structure_id {
            update = update.expression_attribute_values(":structure", n(id));
        }
        update = match expected_revision {
            Some(revision) => update
                .condition_expression("password_version = :version AND revision = :rev")
                .expression_attribute_values(":rev", n(revision)),
            None => update.condition_expression("password_version = :version"),
        };
        let update = update.build().map_err(|e| StoreError::Aws(e.to_string()))?;
        let audit_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(audit.to_item(siret)))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(|e| StoreError::Aws(e.to_string()))?;
        let mut writes = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().put(audit_put).build(),
        ];
        // A refusal is an event, written with it (`store::outbox`).
        let event = (self.events.is_some() && announce)
            .then(|| super::outbox::rejection_event_item(siret, password_version, verified_at));
        if let Some(item) = &event {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .build()
                .map_err(|e| StoreError::Aws(e.to_string()))?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        self.transact(writes).await?;
        if let Some(item) = &event {
            self.publish_item(item).await;
        }
        Ok(())
    }

    /// Removes the account (markets, situations and history stay), with its audit entry.
    pub async fn delete_account(
        &self,
        siret: &Siret,
        expected_revision: u64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(account_key(siret).into_iter().collect()))
            .condition_expression("revision = :expected")
            .expression_attribute_values(":expected", n(expected_revision))
            .build()
            .map_err(|e| StoreError::Aws(e.to_string()))?;
        let audit_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(audit.to_item(siret)))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(|e| StoreError::Aws(e.to_string()))?;
        self.transact(vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().put(audit_put).build(),
        ])
        .await
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict),
            Err(e) => Err(StoreError::Aws(error_text(&e))),
        }
    }

    /// Records one audit entry on its own (an act that changes no account field, such as
    /// what a company said it saw in the Chorus Pro portal).
    pub async fn append_audit(&self, siret: &Siret, audit: &AuditEntry) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(audit.to_item(siret)))
            .send()
            .await
            .map_err(|e| StoreError::Aws(error_text(&e)))?;
        Ok(())
    }

    /// The audit trail of a company, oldest first (for operators and tests).
    pub async fn audit_trail(&self, siret: &Siret) -> Result<Vec<AuditEntry>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :audit)")
            .expression_attribute_values(":pk", s(keys::company_pk(siret)))
            .expression_attribute_values(":audit", s(keys::AUDIT_PREFIX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Aws(error_text(&e)))?;
        out.items()
            .iter()
            .map(|item| {
                let r = ItemReader::new(item);
                Ok(AuditEntry {
                    at: r.time("at")?,
                    actor: r.s("actor")?.to_owned(),
                    action: r.s("action")?.to_owned(),
                    fields: item
                        .get("fields")
                        .and_then(|v| v.as_l().ok())
                        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_refusal_is_announced_once_per_refused_password() {
        use CredentialsStatus::{Rejected, Valid};
        let verdict = |status, was| Verification {
            status,
            chorus_structure_id: None,
            was,
        };
        let cases = [
            (
                "a refusal of a valid password",
                verdict(Rejected, Some(Valid)),
                Some(3),
                true,
            ),
            (
                "a refusal of a refused one",
                verdict(Rejected, Some(Rejected)),
                Some(3),
                false,
            ),
            (
                "the same, not guarded by the read",
                verdict(Rejected, Some(Rejected)),
                None,
                true,
            ),
            (
                "a refusal, the previous status unknown",
                verdict(Rejected, None),
                Some(3),
                true,
            ),
            (
                "an acceptance",
                verdict(Valid, Some(Rejected)),
                Some(3),
                false,
            ),
        ];
        for (name, verification, revision, announced) in cases {
            assert_eq!(
                verification.announces_rejection(revision),
                announced,
                "{name}"
            );
        }
    }

    #[test]
    fn item_round_trip_and_no_password() {
        let a = CompanyAccount {
            password_version: "0b6a".into(),
            verified_at: Some(datetime!(2026-11-27 10:00 UTC)),
            revision: 3,
            next_reminder_on: Some(time::macros::date!(2027 - 10 - 28)),
            chorus_structure_id: Some(26100001),
            ..CompanyAccount::sample("TECH_1@cpp2017.fr", Environment::Sandbox)
        };
        let item = account_to_item(&a);
        assert_eq!(item["chorus_structure_id"].as_n().unwrap(), "26100001");
        assert_eq!(item["PK"].as_s().unwrap(), "COMPANY#21750001600019");
        assert_eq!(item["entity"].as_s().unwrap(), "company_account");
        assert!(!item.keys().any(|k| k == "password"));
        assert_eq!(item["next_reminder_on"].as_s().unwrap(), "2027-10-28");
        assert_eq!(item["GSI1SK"].as_s().unwrap(), "2027-10-28#21750001600019");
        assert!(item["GSI1PK"].as_s().unwrap().starts_with("REMINDER#"));
        assert_eq!(account_from_item(&item).unwrap(), a);
        // Nothing left to remind: out of the sparse index.
        // Nor a structure id (an account saved before it was kept).
        let done = CompanyAccount {
            next_reminder_on: None,
            chorus_structure_id: None,
            notify_overdue: true,
            ..a
        };
        let item = account_to_item(&done);
        assert!(!item.contains_key("GSI1PK") && !item.contains_key("GSI1SK"));
        assert_eq!(account_from_item(&item).unwrap(), done);
    }

    #[test]
    fn corrupt_items_are_named() {
        let mut item = Item::new();
        item.insert("PK".into(), s("COMPANY#1"));
        item.insert("SK".into(), s("ACCOUNT"));
        let err = account_from_item(&item).unwrap_err();
        assert!(err.to_string().contains("COMPANY#1/ACCOUNT"), "{err}");
    }
}
