//! The company's account as the API shows it (contract: "Company Chorus Pro account").

use time::OffsetDateTime;

use crate::clock::rfc3339;
use crate::domain::account::{CompanyAccount, CredentialsStatus, Environment, PasswordLifetime};

/// The account as the API shows it (contract: "Company Chorus Pro account").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountView {
    pub siret: String,
    pub referent_email: String,
    pub technical_login: String,
    pub environment: Environment,
    pub password_set_at: String,
    pub password_expires_at: String,
    pub days_until_password_expiry: i64,
    pub credentials_status: CredentialsStatus,
    pub verified_at: Option<String>,
    pub notify_overdue: bool,
    pub updated_at: String,
}

impl CompanyAccount {
    pub fn view(&self, lifetime: PasswordLifetime, now: OffsetDateTime) -> AccountView {
        AccountView {
            siret: self.siret.to_string(),
            referent_email: self.referent_email.to_string(),
            technical_login: self.technical_login.as_str().to_owned(),
            environment: self.environment,
            password_set_at: rfc3339(self.password_set_at),
            password_expires_at: rfc3339(self.password_expires_at(lifetime)),
            days_until_password_expiry: self.days_until_password_expiry(lifetime, now),
            credentials_status: self.effective_status(lifetime, now),
            verified_at: self.verified_at.map(rfc3339),
            notify_overdue: self.notify_overdue,
            updated_at: rfc3339(self.updated_at),
        }
    }
}
