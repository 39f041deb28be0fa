//! The company's Chorus Pro account settings ("Mon compte"): technical login, password
//! rules, credential status and the password expiry computed from when it was set.

use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};

use super::{Email, Siret};

/// Which Chorus Pro the account belongs to. Sandbox (qualification) accounts are checked
/// for SIRET shape only, and every message about them says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Production,
    Sandbox,
}

impl Environment {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "production" => Some(Environment::Production),
            "sandbox" => Some(Environment::Sandbox),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Sandbox => "sandbox",
        }
    }

    pub fn siret_check(self) -> super::SiretCheck {
        match self {
            Environment::Production => super::SiretCheck::Full,
            Environment::Sandbox => super::SiretCheck::ShapeOnly,
        }
    }
}

/// What Chorus Pro last said of the stored credentials. `Expired` is never stored: it is
/// derived from the expiry date when the account is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialsStatus {
    Unverified,
    Valid,
    Rejected,
    Expired,
}

impl CredentialsStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "unverified" => Some(Self::Unverified),
            "valid" => Some(Self::Valid),
            "rejected" => Some(Self::Rejected),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unverified => "unverified",
            Self::Valid => "valid",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }
}

/// The technical account's login. Chorus Pro shapes it like an e-mail address
/// (`TECH_…@cpp2017.fr`); it is otherwise opaque. A `:` would break the
/// `cpro-account: base64(login:password)` header, so it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechnicalLogin(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    Empty,
    TooLong,
    Invalid,
}

pub const LOGIN_MAX_LEN: usize = 254;

impl TechnicalLogin {
    pub fn parse(raw: &str) -> Result<Self, LoginError> {
        if raw.is_empty() {
            return Err(LoginError::Empty);
        }
        if raw.len() > LOGIN_MAX_LEN {
            return Err(LoginError::TooLong);
        }
        if raw.contains(':') || !super::email::is_address(raw) {
            return Err(LoginError::Invalid);
        }
        Ok(TechnicalLogin(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const PASSWORD_MAX_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordError {
    /// Required (first save, or the other half of the pair was given).
    Required,
    TooLong,
    /// Control characters, or spaces around it: the mark of a paste error, since Chorus Pro
    /// generates the password and shows it once.
    InvalidCharacters,
    Mismatch,
}

/// Which half of the pair a password error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordField {
    Password,
    Confirmation,
}

/// The outcome of the password and its confirmation on a save.
#[derive(Debug)]
pub enum PasswordPair {
    /// Neither given on a later save: the stored password stays.
    Keep,
    New(SecretString),
}

impl PasswordPair {
    /// Applies the contract's rules: both required on first save and equal; on a later
    /// save both may be omitted; one without the other is an error.
    pub fn parse(
        password: Option<&str>,
        confirmation: Option<&str>,
        first_save: bool,
    ) -> Result<Self, Vec<(PasswordField, PasswordError)>> {
        let mut errors = Vec::new();
        let check = |value: &str, field: PasswordField, errors: &mut Vec<_>| {
            if value.is_empty() {
                errors.push((field, PasswordError::Required));
            } else if value.chars().count() > PASSWORD_MAX_LEN {
                errors.push((field, PasswordError::TooLong));
            } else if value.chars().any(char::is_control) || value.trim() != value {
                errors.push((field, PasswordError::InvalidCharacters));
            }
        };
        match (password, confirmation) {
            (None, None) if !first_save => return Ok(PasswordPair::Keep),
            (None, None) => {
                errors.push((PasswordField::Password, PasswordError::Required));
                errors.push((PasswordField::Confirmation, PasswordError::Required));
            }
            (Some(p), None) => {
                check(p, PasswordField::Password, &mut errors);
                errors.push((PasswordField::Confirmation, PasswordError::Required));
            }
            (None, Some(c)) => {
                errors.push((PasswordField::Password, PasswordError::Required));
                check(c, PasswordField::Confirmation, &mut errors);
            }
            (Some(p), Some(c)) => {
                check(p, PasswordField::Password, &mut errors);
                if errors.is_empty() && p != c {
                    errors.push((PasswordField::Confirmation, PasswordError::Mismatch));
                }
                if errors.is_empty() {
                    return Ok(PasswordPair::New(SecretString::from(p.to_owned())));
                }
            }
        }
        Err(errors)
    }

    pub fn is_new(&self) -> bool {
        matches!(self, PasswordPair::New(_))
    }

    pub fn new_password(&self) -> Option<&str> {
        match self {
            PasswordPair::New(p) => Some(p.expose_secret()),
            PasswordPair::Keep => None,
        }
    }
}

/// The stored settings of one company (never the password: that lives in Secrets Manager,
/// and `password_version` names the secret version in force).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyAccount {
    pub siret: Siret,
    pub referent_email: Email,
    pub technical_login: TechnicalLogin,
    pub environment: Environment,
    pub password_set_at: OffsetDateTime,
    pub password_version: String,
    pub credentials_status: CredentialsStatus,
    pub verified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Optimistic-lock counter: every write is conditional on the revision it read.
    pub revision: u64,
    /// The day the password-reminder run next looks at this account (indexed in GSI1, see
    /// `store::keys`). A save that starts a new password cycle sets it to the save day; the
    /// run then moves it to the next reminder date. `None`: nothing more to remind.
    pub next_reminder_on: Option<time::Date>,
    /// The company's own structure in Chorus Pro (`idStructureCPP`), read by the
    /// credentials check (`recuperer/structures/actives/fournisseur`); the commitment
    /// search needs it (docs/chorus-pro.md#commitment-ej-search). `None` for an account
    /// never verified, or saved before it was kept.
    pub chorus_structure_id: Option<i64>,
    /// Whether the referent is e-mailed when a payment becomes overdue (default on).
    pub notify_overdue: bool,
}

/// An account for the unit tests: a valid public SIRET, saved on 2026-11-27 at 10:00 UTC
/// (revision 1, password `v1`, valid, never verified, no reminder due); each test changes
/// what it is about.
#[cfg(test)]
impl CompanyAccount {
    pub(crate) fn sample(technical_login: &str, environment: Environment) -> CompanyAccount {
        use time::macros::datetime;
        CompanyAccount {
            siret: Siret::parse("21750001600019", super::SiretCheck::Full).unwrap(),
            referent_email: Email::parse("compta@entreprise-btp.fr").unwrap(),
            technical_login: TechnicalLogin::parse(technical_login).unwrap(),
            environment,
            password_set_at: datetime!(2026-11-27 10:00 UTC),
            password_version: "v1".into(),
            credentials_status: CredentialsStatus::Valid,
            verified_at: None,
            created_at: datetime!(2026-11-27 10:00 UTC),
            updated_at: datetime!(2026-11-27 10:00 UTC),
            revision: 1,
            next_reminder_on: None,
            chorus_structure_id: None,
            notify_overdue: true,
        }
    }
}

impl CompanyAccount {
    pub fn password_expires_at(&self, lifetime: PasswordLifetime) -> OffsetDateTime {
        self.password_set_at + lifetime.duration()
    }

    /// Whole calendar days (UTC) from today to the expiry date; negative once expired.
    pub fn days_until_password_expiry(
        &self,
        lifetime: PasswordLifetime,
        now: OffsetDateTime,
    ) -> i64 {
        let expiry = self.password_expires_at(lifetime).date();
        (expiry - now.date()).whole_days()
    }

    /// The status shown to the caller: a rejection stands; otherwise a password past its
    /// lifetime is `expired`, whatever Chorus Pro said of it before.
    pub fn effective_status(
        &self,
        lifetime: PasswordLifetime,
        now: OffsetDateTime,
    ) -> CredentialsStatus {
        match self.credentials_status {
            CredentialsStatus::Rejected => CredentialsStatus::Rejected,
            _ if now >= self.password_expires_at(lifetime) => CredentialsStatus::Expired,
            other => other,
        }
    }

    /// Whether a transmission held for its credentials (`waiting_credentials`, held while
    /// `held_version` was the password in force) may be sent now: the account is `valid`
    /// (a successful save or verify), or a *new* password was saved since the hold and
    /// Chorus Pro has not refused it yet (`unverified`: saved with `"verify": false`).
    /// A new password that is wrong is refused at the deposit, which holds the
    /// transmission again on that version and marks the account `rejected`: it waits for
    /// the next password, never loops.
    pub fn releases_hold(
        &self,
        held_version: Option<&str>,
        lifetime: PasswordLifetime,
        now: OffsetDateTime,
    ) -> bool {
        match self.effective_status(lifetime, now) {
            CredentialsStatus::Valid => true,
            CredentialsStatus::Unverified => held_version != Some(self.password_version.as_str()),
            CredentialsStatus::Rejected | CredentialsStatus::Expired => false,
        }
    }
}

/// How long a technical-account password lives (`PASSWORD_LIFETIME_DAYS`, default 365;
/// AIFE publishes 424 days, so the default is on the safe side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordLifetime(u32);

impl PasswordLifetime {
    pub const DEFAULT_DAYS: u32 = 365;

    pub fn days(days: u32) -> Option<Self> {
        (1..=3650).contains(&days).then_some(Self(days))
    }

    pub fn duration(self) -> Duration {
        Duration::days(i64::from(self.0))
    }

    pub fn in_days(self) -> u32 {
        self.0
    }
}

impl Default for PasswordLifetime {
    fn default() -> Self {
        Self(Self::DEFAULT_DAYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SiretCheck;
    use time::macros::datetime;

    fn account(set_at: OffsetDateTime, status: CredentialsStatus) -> CompanyAccount {
        CompanyAccount {
            siret: Siret::parse("21750001600019", SiretCheck::Full).unwrap(),
            referent_email: Email::parse("compta@entreprise-btp.fr").unwrap(),
            technical_login: TechnicalLogin::parse("TECH_00000000018259@cpp2017.fr").unwrap(),
            environment: Environment::Production,
            password_set_at: set_at,
            password_version: "v1".into(),
            credentials_status: status,
            verified_at: None,
            created_at: set_at,
            updated_at: set_at,
            revision: 1,
            next_reminder_on: None,
            chorus_structure_id: None,
            notify_overdue: true,
        }
    }

    #[test]
    fn expiry_is_set_date_plus_lifetime() {
        let a = account(datetime!(2026-11-27 10:00 UTC), CredentialsStatus::Valid);
        let lifetime = PasswordLifetime::default();
        assert_eq!(
            a.password_expires_at(lifetime),
            datetime!(2027-11-27 10:00 UTC)
        );
        assert_eq!(
            a.days_until_password_expiry(lifetime, datetime!(2026-11-27 10:00 UTC)),
            365
        );
        assert_eq!(
            a.days_until_password_expiry(lifetime, datetime!(2027-11-26 23:59 UTC)),
            1
        );
        assert_eq!(
            a.days_until_password_expiry(lifetime, datetime!(2027-11-28 00:00 UTC)),
            -1
        );
        let short = PasswordLifetime::days(30).unwrap();
        assert_eq!(
            a.password_expires_at(short),
            datetime!(2026-12-27 10:00 UTC)
        );
    }

    #[test]
    fn status_becomes_expired_at_expiry_but_rejection_stands() {
        let lifetime = PasswordLifetime::default();
        let a = account(datetime!(2026-11-27 10:00 UTC), CredentialsStatus::Valid);
        assert_eq!(
            a.effective_status(lifetime, datetime!(2027-11-27 09:59 UTC)),
            CredentialsStatus::Valid
        );
        assert_eq!(
            a.effective_status(lifetime, datetime!(2027-11-27 10:00 UTC)),
            CredentialsStatus::Expired
        );
        let r = account(datetime!(2026-11-27 10:00 UTC), CredentialsStatus::Rejected);
        assert_eq!(
            r.effective_status(lifetime, datetime!(2028-01-01 00:00 UTC)),
            CredentialsStatus::Rejected
        );
    }

    #[test]
    fn a_hold_is_released_by_a_valid_account_or_a_new_password_not_yet_refused() {
        use CredentialsStatus::*;
        let lifetime = PasswordLifetime::default();
        let now = datetime!(2026-12-03 10:00 UTC);
        let with = |status, version: &str| {
            let mut a = account(datetime!(2026-12-01 10:00 UTC), status);
            a.password_version = version.into();
            a
        };
        // Held on v1: a verify of v1 that succeeded, or any valid password, releases it.
        assert!(with(Valid, "v1").releases_hold(Some("v1"), lifetime, now));
        assert!(with(Valid, "v2").releases_hold(Some("v1"), lifetime, now));
        // A new password saved without a check releases it; the same one does not.
        assert!(with(Unverified, "v2").releases_hold(Some("v1"), lifetime, now));
        assert!(!with(Unverified, "v1").releases_hold(Some("v1"), lifetime, now));
        // Refused (the new one too), or expired: held.
        assert!(!with(Rejected, "v2").releases_hold(Some("v1"), lifetime, now));
        assert!(!with(Rejected, "v1").releases_hold(Some("v1"), lifetime, now));
        let old = account(datetime!(2025-01-01 10:00 UTC), Unverified);
        assert!(!old.releases_hold(Some("v0"), lifetime, now));
    }

    #[test]
    fn lifetime_bounds() {
        assert!(PasswordLifetime::days(0).is_none());
        assert!(PasswordLifetime::days(424).is_some());
        assert!(PasswordLifetime::days(5000).is_none());
    }

    #[test]
    fn password_pair_rules() {
        use PasswordError::*;
        use PasswordField::*;
        assert!(matches!(
            PasswordPair::parse(Some("Abc-123!"), Some("Abc-123!"), true),
            Ok(PasswordPair::New(_))
        ));
        assert!(matches!(
            PasswordPair::parse(None, None, false),
            Ok(PasswordPair::Keep)
        ));
        assert_eq!(
            PasswordPair::parse(None, None, true).unwrap_err(),
            vec![(Password, Required), (Confirmation, Required)]
        );
        assert_eq!(
            PasswordPair::parse(Some("Abc-123!"), Some("Abc-123?"), true).unwrap_err(),
            vec![(Confirmation, Mismatch)]
        );
        assert_eq!(
            PasswordPair::parse(None, Some("Abc-123!"), false).unwrap_err(),
            vec![(Password, Required)]
        );
        assert_eq!(
            PasswordPair::parse(Some("Abc-123!"), None, false).unwrap_err(),
            vec![(Confirmation, Required)]
        );
        assert_eq!(
            PasswordPair::parse(Some(""), Some(""), true).unwrap_err(),
            vec![(Password, Required)]
        );
        assert_eq!(
            PasswordPair::parse(Some("Abc-123! "), Some("Abc-123! "), true).unwrap_err(),
            vec![(Password, InvalidCharacters)]
        );
        let long = "x".repeat(PASSWORD_MAX_LEN + 1);
        assert_eq!(
            PasswordPair::parse(Some(&long), Some(&long), true).unwrap_err(),
            vec![(Password, TooLong)]
        );
    }

    #[test]
    fn debug_of_a_new_password_is_redacted() {
        let pair = PasswordPair::parse(Some("Tr3s-Secret!"), Some("Tr3s-Secret!"), true).unwrap();
        assert!(!format!("{pair:?}").contains("Tr3s-Secret!"));
        assert_eq!(pair.new_password(), Some("Tr3s-Secret!"));
    }

    #[test]
    fn technical_login_shape() {
        assert!(TechnicalLogin::parse("TECH_00000000018259@cpp2017.fr").is_ok());
        assert!(TechnicalLogin::parse("DEV_DESTTAA074@cpp2017.fr").is_ok());
        assert_eq!(
            TechnicalLogin::parse("TECH:1@cpp2017.fr"),
            Err(LoginError::Invalid)
        );
        assert_eq!(TechnicalLogin::parse("TECH_0001"), Err(LoginError::Invalid));
        assert_eq!(TechnicalLogin::parse(""), Err(LoginError::Empty));
    }
}
