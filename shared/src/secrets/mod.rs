//! Secrets Manager: one secret per company holding its technical account (login and
//! password), and the gateway's own PISTE credentials.
//!
//! A company's password is changed in two steps so that the DynamoDB account item stays the
//! single point of truth: the new value is written as a new secret *version* (staged
//! `AWSPENDING`), the account item is then switched to that version id in a conditional
//! write, and only then is the version promoted to `AWSCURRENT`. Readers always fetch the
//! version id the item names, so a failure anywhere leaves either the old settings with the
//! old password or the new settings with the new one — never a mix.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::types::Tag;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{Siret, TechnicalLogin};

const PENDING: &str = "AWSPENDING";
const CURRENT: &str = "AWSCURRENT";
/// Days before a deleted company's secret is gone for good (Secrets Manager's minimum is 7).
const RECOVERY_WINDOW_DAYS: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret not found")]
    NotFound,
    #[error("secret value unreadable: {0}")]
    Unreadable(String),
    #[error("secrets manager: {0}")]
    Aws(String),
}

/// The technical account read back from Secrets Manager. `Debug` hides the password.
#[derive(Debug, Clone)]
pub struct StoredTechnicalAccount {
    pub login: String,
    pub password: SecretString,
}

#[derive(serde::Serialize)]
struct SecretValue<'a> {
    login: &'a str,
    password: &'a str,
}

#[derive(serde::Deserialize)]
struct SecretValueOwned {
    login: String,
    password: String,
}

fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

fn aws_error<E, R>(err: &SdkError<E, R>) -> SecretsError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    SecretsError::Aws(crate::aws::error_text(err))
}

/// A version written by `stage_technical_account`: its id, and whether it is already
/// `AWSCURRENT` (the first version of a new secret) or waits for `promote`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedVersion {
    pub id: String,
    pub current: bool,
}

impl StagedVersion {
    fn current(id: String) -> Self {
        Self { id, current: true }
    }
    fn pending(id: String) -> Self {
        Self { id, current: false }
    }
}

/// One version to write: the company's secret, the version id (the request token), and
/// the JSON value. No `Debug`: the value holds the password.
struct NewVersion<'a> {
    siret: &'a Siret,
    name: String,
    version: String,
    value: String,
}

#[derive(Clone, Debug)]
pub struct SecretStore {
    client: crate::aws::LazyClient<Client>,
    prefix: String,
}

impl SecretStore {
    pub fn new(
        client: impl Into<crate::aws::LazyClient<Client>>,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            client: client.into(),
            prefix: prefix.into(),
        }
    }

    pub fn company_secret_name(&self, siret: &Siret) -> String {
        format!("{}/companies/{}/technical-account", self.prefix, siret)
    }

    /// Writes login and password as a new version. On a new secret the version is current
    /// at once (no account item names the secret yet); otherwise it is staged `AWSPENDING`
    /// until `promote`.
    pub async fn stage_technical_account(
        &self,
        siret: &Siret,
        login: &TechnicalLogin,
        password: &SecretString,
        secret_may_exist: bool,
    ) -> Result<StagedVersion, SecretsError> {
        let value = serde_json::to_string(&SecretValue {
            login: login.as_str(),
            password: password.expose_secret(),
        })
        .map_err(|e| SecretsError::Unreadable(e.to_string()))?;
        let new = NewVersion {
            siret,
            name: self.company_secret_name(siret),
            version: uuid::Uuid::new_v4().to_string(),
            value,
        };
        if !secret_may_exist {
            match self.create_secret(&new).await {
                Ok(()) => return Ok(StagedVersion::current(new.version)),
                // Left by an earlier save that failed before its account item was written,
                // or by a deleted company (then scheduled for deletion: restore it, which is
                // a no-op on a live secret), and given a new version below.
                Err(e)
                    if matches!(
                        error_code(&e),
                        Some("ResourceExistsException") | Some("InvalidRequestException")
                    ) =>
                {
                    self.restore(&new.name).await?
                }
                Err(e) => return Err(aws_error(&e)),
            }
        }
        self.stage_pending(new).await
    }

    /// The new version of an existing secret, staged `AWSPENDING`; a secret scheduled for
    /// deletion is restored first, a secret gone is created with it as its current one.
    async fn stage_pending(&self, new: NewVersion<'_>) -> Result<StagedVersion, SecretsError> {
        match self.put_pending(&new.name, &new.version, &new.value).await {
            Ok(()) => Ok(StagedVersion::pending(new.version)),
            Err(e) if error_code(&e) == Some("InvalidRequestException") => {
                // Scheduled for deletion (company deleted, then configured again).
                self.restore(&new.name).await?;
                self.put_pending(&new.name, &new.version, &new.value)
                    .await
                    .map_err(|e| aws_error(&e))?;
                Ok(StagedVersion::pending(new.version))
            }
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => {
                self.create_secret(&new).await.map_err(|e| aws_error(&e))?;
                Ok(StagedVersion::current(new.version))
            }
            Err(e) => Err(aws_error(&e)),
        }
    }

    /// A company's secret, created with its first version (current at once), tagged with
    /// the SIRET and the application.
    async fn create_secret(
        &self,
        new: &NewVersion<'_>,
    ) -> Result<
        (),
        SdkError<
            aws_sdk_secretsmanager::operation::create_secret::CreateSecretError,
            aws_sdk_secretsmanager::config::http::HttpResponse,
        >,
    > {
        let siret = new.siret;
        self.client
            .create_secret()
            .name(&new.name)
            .client_request_token(&new.version)
            .secret_string(&new.value)
            .description(format!("Chorus Pro technical account of SIRET {siret}"))
            .tags(Tag::builder().key("siret").value(siret.as_str()).build())
            .tags(
                Tag::builder()
                    .key("application")
                    .value("choruspro-gateway")
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
    }

    /// Cancels a scheduled deletion (a no-op on a live secret).
    async fn restore(&self, name: &str) -> Result<(), SecretsError> {
        self.client
            .restore_secret()
            .secret_id(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error(&e))
    }

    async fn put_pending(
        &self,
        name: &str,
        version: &str,
        value: &str,
    ) -> Result<
        (),
        SdkError<
            aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError,
            aws_sdk_secretsmanager::config::http::HttpResponse,
        >,
    > {
        self.client
            .put_secret_value()
            .secret_id(name)
            .client_request_token(version)
            .secret_string(value)
            .version_stages(PENDING)
            .send()
            .await
            .map(|_| ())
    }

    /// Makes `version` the `AWSCURRENT` one, for operators reading the console. Readers do
    /// not depend on it (they ask for the version the account item names), so a failure
    /// here is reported but harmless.
    ///
    /// `previous` is the version the account item named before this save: normally the
    /// one holding `AWSCURRENT`, so one call moves the label. If an earlier promotion failed
    /// the label is elsewhere, Secrets Manager refuses the move, and the stages are read to
    /// find it. `AWSPENDING` stays on the new version, beside `AWSCURRENT`: that is the
    /// state Secrets Manager itself treats as "no change in progress", and the next
    /// `PutSecretValue` staged `AWSPENDING` takes the label from it.
    pub async fn promote(
        &self,
        siret: &Siret,
        version: &str,
        previous: Option<&str>,
    ) -> Result<(), SecretsError> {
        let name = self.company_secret_name(siret);
        if let Some(previous) = previous.filter(|p| *p != version) {
            match self
                .move_current(&name, version, Some(previous.to_owned()))
                .await
            {
                Ok(()) => return Ok(()),
                // AWSCURRENT is not where the account item said (an earlier promotion
                // failed): find it below.
                Err(e) if error_code(&e) == Some("InvalidParameterException") => {}
                Err(e) => return Err(aws_error(&e)),
            }
        }
        let described = self
            .client
            .describe_secret()
            .secret_id(&name)
            .send()
            .await
            .map_err(|e| aws_error(&e))?;
        let current = described
            .version_ids_to_stages
            .as_ref()
            .and_then(|stages| {
                stages
                    .iter()
                    .find(|(_, labels)| labels.iter().any(|l| l == CURRENT))
            })
            .map(|(id, _)| id.clone());
        if current.as_deref() == Some(version) {
            return Ok(());
        }
        self.move_current(&name, version, current)
            .await
            .map_err(|e| aws_error(&e))
    }

    async fn move_current(
        &self,
        name: &str,
        version: &str,
        from: Option<String>,
    ) -> Result<
        (),
        SdkError<
            aws_sdk_secretsmanager::operation::update_secret_version_stage::UpdateSecretVersionStageError,
            aws_sdk_secretsmanager::config::http::HttpResponse,
        >,
    >{
        self.client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(CURRENT)
            .move_to_version_id(version)
            .set_remove_from_version_id(from)
            .send()
            .await
            .map(|_| ())
    }

    /// The company's technical account, as the client sends it: the secret version its
    /// account item names (a save switches the item only once the version exists).
    pub async fn technical_account_of(
        &self,
        account: &crate::domain::CompanyAccount,
    ) -> Result<crate::chorus::TechnicalAccount, SecretsError> {
        let stored = self
            .technical_account(&account.siret, &account.password_version)
            .await?;
        Ok(crate::chorus::TechnicalAccount::new(
            stored.login,
            stored.password,
        ))
    }

    /// The technical account at exactly the version the account item names.
    pub async fn technical_account(
        &self,
        siret: &Siret,
        version: &str,
    ) -> Result<StoredTechnicalAccount, SecretsError> {
        let value = self
            .client
            .get_secret_value()
            .secret_id(self.company_secret_name(siret))
            .version_id(version)
            .send()
            .await
            .map_err(|e| match error_code(&e) {
                Some("ResourceNotFoundException") => SecretsError::NotFound,
                _ => aws_error(&e),
            })?;
        let text = value
            .secret_string()
            .ok_or_else(|| SecretsError::Unreadable("no string value".into()))?;
        let parsed: SecretValueOwned = serde_json::from_str(text)
            .map_err(|_| SecretsError::Unreadable("not {login, password} JSON".into()))?;
        Ok(StoredTechnicalAccount {
            login: parsed.login,
            password: SecretString::from(parsed.password),
        })
    }

    /// Schedules the company's secret for deletion (recoverable for a week). Already gone
    /// or already scheduled counts as done.
    pub async fn schedule_deletion(&self, siret: &Siret) -> Result<(), SecretsError> {
        match self
            .client
            .delete_secret()
            .secret_id(self.company_secret_name(siret))
            .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    error_code(&e),
                    Some("ResourceNotFoundException") | Some("InvalidRequestException")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(aws_error(&e)),
        }
    }

    /// A JSON secret read whole (the gateway's PISTE credentials).
    pub async fn json_secret<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<T, SecretsError> {
        let value = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| match error_code(&e) {
                Some("ResourceNotFoundException") => SecretsError::NotFound,
                _ => aws_error(&e),
            })?;
        let text = value
            .secret_string()
            .ok_or_else(|| SecretsError::Unreadable("no string value".into()))?;
        serde_json::from_str(text).map_err(|_| {
            SecretsError::Unreadable(format!("secret {name} is not the expected JSON"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_account_debug_hides_password() {
        let a = StoredTechnicalAccount {
            login: "TECH_1@cpp2017.fr".into(),
            password: SecretString::from("Tr3s-Secret!".to_owned()),
        };
        let shown = format!("{a:?}");
        assert!(shown.contains("TECH_1@cpp2017.fr"));
        assert!(!shown.contains("Tr3s-Secret!"));
    }
}
