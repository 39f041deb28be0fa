//! The environment, read once at cold start into a typed `Config`.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::chorus::SYNTAX_UBL_INVOICE;
use crate::domain::account::PasswordLifetime;
use crate::domain::payment::LatePaymentRates;
use crate::domain::{Email, Environment};

#[derive(Debug, Clone)]
pub struct Config {
    /// The single DynamoDB table.
    pub table_name: String,
    /// Company secrets are `{secret_prefix}/companies/{siret}/technical-account`.
    pub secret_prefix: String,
    pub password_lifetime: PasswordLifetime,
    /// The environment of an account saved without one.
    pub default_environment: Environment,
    /// Chorus Pro API base as the real one (`https://sandbox-api.piste.gouv.fr/cpro`).
    pub chorus_api_url: String,
    pub piste_token_url: String,
    /// Name of the secret holding the gateway's own PISTE application credentials.
    pub piste_credentials_secret: String,
    pub chorus_connect_timeout: Duration,
    pub chorus_request_timeout: Duration,
    /// How long a deposit whose answer was lost is searched for in Chorus Pro before it is
    /// deemed never received and sent again (a flux takes minutes to be integrated).
    pub reconcile_grace: Duration,
    /// How long an attempt holds a deposit before another may take over (a Lambda killed
    /// mid-deposit leaves its lease to expire).
    pub deposit_lease: Duration,
    /// `syntaxeFlux` of the invoices' deposits (`FLUX_SYNTAX`).
    pub flux_syntax: String,
    /// `syntaxeFlux` of works documents sent as a UBL flux (`FLUX_SYNTAX_WORKS`, read by
    /// `WORKS_SUBMISSION=ubl_flux` only); `FLUX_SYNTAX` when unset. The E4/E5 works codes are
    /// unconfirmed (docs/chorus-pro.md#works-flows-e4-e5): `make qualify` tells which one.
    pub flux_syntax_works: String,
    /// How works documents are sent (`WORKS_SUBMISSION`: `pdf_api`, the default, or
    /// `ubl_flux`); the route of each framework is `works::route_of`.
    pub works_submission: crate::works::WorksSubmission,
    /// The late-payment interest rate of each half-year (`LATE_PAYMENT_RATES`,
    /// docs/payment-deadline.md): the ECB rate changes, the law does not, so it is a
    /// dated setting rather than code.
    pub late_payment_rates: LatePaymentRates,
    /// The S3 bucket of uploaded documents (`DOCUMENTS_BUCKET`); without it the documents
    /// route and `document_id` in a transmission answer 503.
    pub documents_bucket: Option<String>,
    /// The EventBridge bus events go to (`EVENT_BUS_NAME`); unset: no event is written.
    pub event_bus_name: Option<String>,
    /// status-sync's cadence, concurrency and rate limit (`crate::follow_settings`).
    pub follow: crate::follow_settings::FollowSettings,
    /// `SENDER_EMAIL`: the verified SES identity reminders and alerts come from. The
    /// reminder function requires it; without it the functions that deposit record a
    /// refused password and e-mail nobody. A value that is no address stops the cold start.
    pub sender_email: Option<Email>,
    /// The reminder function's schedule and concurrency (`REMINDER_*`).
    pub reminders: crate::reminder::ReminderSettings,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {name} {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` so tests can give values without touching the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let table_name = env.text("TABLE_NAME", "");
        if table_name.is_empty() {
            return Err(ConfigError {
                name: "TABLE_NAME",
                problem: "is required".into(),
            });
        }
        let flux_syntax = flux_syntax_setting(&env, "FLUX_SYNTAX", SYNTAX_UBL_INVOICE)?;
        Ok(Config {
            table_name,
            secret_prefix: env
                .text("SECRET_PREFIX", "choruspro-gateway")
                .trim_end_matches('/')
                .to_owned(),
            password_lifetime: password_lifetime(&env)?,
            default_environment: default_environment(&env)?,
            chorus_api_url: env
                .text("CHORUS_API_URL", "https://sandbox-api.piste.gouv.fr/cpro")
                .trim_end_matches('/')
                .to_owned(),
            piste_token_url: env.text(
                "PISTE_TOKEN_URL",
                "https://sandbox-oauth.piste.gouv.fr/api/oauth/token",
            ),
            piste_credentials_secret: env.text(
                "PISTE_CREDENTIALS_SECRET",
                "choruspro-gateway/piste-credentials",
            ),
            chorus_connect_timeout: env.millis("CHORUS_CONNECT_TIMEOUT_MS", 3_000)?,
            chorus_request_timeout: env.millis("CHORUS_TIMEOUT_MS", 10_000)?,
            reconcile_grace: Duration::from_secs(env.number("RECONCILE_GRACE_SECONDS", 3_600)?),
            deposit_lease: Duration::from_secs(env.number("DEPOSIT_LEASE_SECONDS", 120)?),
            flux_syntax_works: flux_syntax_setting(&env, "FLUX_SYNTAX_WORKS", &flux_syntax)?,
            flux_syntax,
            works_submission: works_submission(&env.text("WORKS_SUBMISSION", "pdf_api"))?,
            late_payment_rates: late_payment_rates(&env)?,
            documents_bucket: env.optional("DOCUMENTS_BUCKET"),
            event_bus_name: env.optional("EVENT_BUS_NAME"),
            follow: crate::follow_settings::FollowSettings::from_lookup(&env.0)?,
            sender_email: sender_email(&env)?,
            reminders: crate::reminder::ReminderSettings::from_lookup(&env.0)?,
        })
    }
}

/// The environment as the configuration reads it: a blank value is an unset one.
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn text(&self, name: &'static str, default: &str) -> String {
        (self.0)(name)
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default.to_owned())
    }

    /// Trimmed; `None` when unset or blank.
    fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn number(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        whole_number(&self.0, name, default, 0..=u64::MAX)
    }

    fn millis(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.number(name, default)?))
    }
}

/// One whole-number setting within `range`, or `default` when unset or blank: the one
/// reader of every number in the environment (no sign, no fraction, no unit).
pub(crate) fn whole_number(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    range: RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(raw) = lookup(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    let digits = raw.trim();
    let bounds = if range == (0..=u64::MAX) {
        String::new()
    } else {
        format!(" from {} to {}", range.start(), range.end())
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|v| !digits.starts_with('+') && range.contains(v))
        .ok_or_else(|| ConfigError {
            name,
            problem: format!("must be a whole number{bounds}, got {raw:?}"),
        })
}

/// `SENDER_EMAIL`, when set, must be an address SES can send from.
fn sender_email<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Option<Email>, ConfigError> {
    env.optional("SENDER_EMAIL")
        .map(|raw| {
            Email::parse(&raw).map_err(|e| ConfigError {
                name: "SENDER_EMAIL",
                problem: format!("is not a usable address ({e}): {raw:?}"),
            })
        })
        .transpose()
}

fn password_lifetime<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<PasswordLifetime, ConfigError> {
    let name = "PASSWORD_LIFETIME_DAYS";
    let days = env.number(name, u64::from(PasswordLifetime::DEFAULT_DAYS))?;
    u32::try_from(days)
        .ok()
        .and_then(PasswordLifetime::days)
        .ok_or_else(|| ConfigError {
            name,
            problem: format!("must be between 1 and 3650, got {days}"),
        })
}

fn default_environment<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Environment, ConfigError> {
    let raw = env.text("DEFAULT_ENVIRONMENT", "production");
    Environment::parse(&raw).ok_or_else(|| ConfigError {
        name: "DEFAULT_ENVIRONMENT",
        problem: format!("must be production or sandbox, got {raw:?}"),
    })
}

/// A bad entry stops the cold start: interest computed at a wrong rate would be shown to
/// companies as a claim on their buyer.
fn late_payment_rates<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<LatePaymentRates, ConfigError> {
    LatePaymentRates::parse(&(env.0)("LATE_PAYMENT_RATES").unwrap_or_default()).map_err(|e| {
        ConfigError {
            name: "LATE_PAYMENT_RATES",
            problem: e.to_string(),
        }
    })
}

/// A `syntaxeFlux` setting, or `default` when unset or blank.
fn flux_syntax_setting<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    check_flux_syntax(name, &env.text(name, default))
}

/// The one rule of a `syntaxeFlux` setting (`FLUX_SYNTAX`, `FLUX_SYNTAX_WORKS`, and the
/// qualification's): Chorus Pro's shape `IN_DP_E<n>_<NAME>`, upper-case letters, digits and
/// underscores (the template's `AllowedPattern`, `^IN_DP_E\d_[A-Z0-9_]+$`). Anything else
/// stops the cold start: every deposit would be refused with it.
pub fn check_flux_syntax(name: &'static str, raw: &str) -> Result<String, ConfigError> {
    let value = raw.trim();
    let name_part = value
        .strip_prefix("IN_DP_E")
        .and_then(|rest| rest.strip_prefix(|c: char| c.is_ascii_digit()))
        .and_then(|rest| rest.strip_prefix('_'));
    match name_part {
        Some(tail)
            if !tail.is_empty()
                && tail
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
        {
            Ok(value.to_owned())
        }
        _ => Err(ConfigError {
            name,
            problem: format!(
                "must be a Chorus Pro syntaxeFlux such as IN_DP_E1_UBL_INVOICE (IN_DP_E<digit>_ then upper-case letters, digits, underscores), got {raw:?}"
            ),
        }),
    }
}

/// `WORKS_SUBMISSION`: a value other than `pdf_api` or `ubl_flux` stops the cold start.
fn works_submission(raw: &str) -> Result<crate::works::WorksSubmission, ConfigError> {
    crate::works::WorksSubmission::parse(raw).ok_or_else(|| ConfigError {
        name: "WORKS_SUBMISSION",
        problem: format!("must be pdf_api or ubl_flux, got {raw:?}"),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An environment of these pairs, for the tests of every setting read from one.
    pub(crate) fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let c = Config::from_lookup(lookup(&[("TABLE_NAME", "t")])).unwrap();
        assert_eq!(c.password_lifetime.in_days(), 365);
        assert_eq!(c.default_environment, Environment::Production);
        assert_eq!(c.secret_prefix, "choruspro-gateway");
    }

    #[test]
    fn refuses_bad_values() {
        assert!(Config::from_lookup(lookup(&[])).is_err());
        let e = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("PASSWORD_LIFETIME_DAYS", "abc"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "PASSWORD_LIFETIME_DAYS");
        assert!(
            Config::from_lookup(lookup(&[
                ("TABLE_NAME", "t"),
                ("PASSWORD_LIFETIME_DAYS", "0")
            ]))
            .is_err()
        );
        assert!(
            Config::from_lookup(lookup(&[
                ("TABLE_NAME", "t"),
                ("DEFAULT_ENVIRONMENT", "prod")
            ]))
            .is_err()
        );
    }

    #[test]
    fn every_number_is_read_one_way() {
        let read = |raw: &str| whole_number(&lookup(&[("N", raw)]), "N", 7, 1..=32);
        assert_eq!(read("").unwrap(), 7);
        assert_eq!(read(" 32 ").unwrap(), 32);
        for refused in ["0", "33", "-0", "+3", "3.0", "3s", "abc"] {
            let e = read(refused).unwrap_err();
            assert_eq!(e.name, "N");
            assert!(e.to_string().contains("from 1 to 32"), "{e}");
        }
        let e = whole_number(&lookup(&[("N", "-1")]), "N", 0, 0..=u64::MAX).unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration: N must be a whole number, got \"-1\""
        );
    }

    #[test]
    fn the_sender_is_optional_but_checked() {
        let config = |pairs: &[(&str, &str)]| {
            let mut all = vec![("TABLE_NAME", "t")];
            all.extend_from_slice(pairs);
            Config::from_lookup(lookup(&all))
        };
        assert!(config(&[]).unwrap().sender_email.is_none());
        assert!(
            config(&[("SENDER_EMAIL", "  ")])
                .unwrap()
                .sender_email
                .is_none()
        );
        let sender = config(&[("SENDER_EMAIL", "rappels@choruspro-gateway.local")]).unwrap();
        assert_eq!(
            sender
                .sender_email
                .map(|e| e.as_str().to_owned())
                .as_deref(),
            Some("rappels@choruspro-gateway.local")
        );
        let e = config(&[("SENDER_EMAIL", "rappels")]).unwrap_err();
        assert_eq!(e.name, "SENDER_EMAIL");
    }

    #[test]
    fn a_malformed_rate_table_refuses_to_start_and_names_the_entry() {
        let e = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("LATE_PAYMENT_RATES", "2026-07-01=10.15,2027-01-15=10.40"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "LATE_PAYMENT_RATES");
        assert!(e.to_string().contains("\"2027-01-15=10.40\""), "{e}");
        assert!(e.to_string().contains("1 January or a 1 July"), "{e}");
        let c = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("LATE_PAYMENT_RATES", "2026-07-01=10.15"),
        ]))
        .unwrap();
        assert!(!c.late_payment_rates.is_empty());
    }

    #[test]
    fn the_works_flux_syntax_defaults_to_the_invoices_one_and_is_checked_the_same_way() {
        let config = |pairs: &[(&str, &str)]| {
            let mut all = vec![("TABLE_NAME", "t")];
            all.extend_from_slice(pairs);
            Config::from_lookup(lookup(&all))
        };
        let c = config(&[]).unwrap();
        assert_eq!(c.flux_syntax, "IN_DP_E1_UBL_INVOICE");
        assert_eq!(c.flux_syntax_works, "IN_DP_E1_UBL_INVOICE");
        let c = config(&[("FLUX_SYNTAX", "IN_DP_E2_UBL_INVOICE_MIN")]).unwrap();
        assert_eq!(
            c.flux_syntax_works, "IN_DP_E2_UBL_INVOICE_MIN",
            "follows FLUX_SYNTAX"
        );
        let c = config(&[
            ("FLUX_SYNTAX_WORKS", " IN_DP_E4_UBL_INVOICE "),
            ("FLUX_SYNTAX", ""),
        ])
        .unwrap();
        assert_eq!(c.flux_syntax, "IN_DP_E1_UBL_INVOICE");
        assert_eq!(c.flux_syntax_works, "IN_DP_E4_UBL_INVOICE");
        for name in ["FLUX_SYNTAX", "FLUX_SYNTAX_WORKS"] {
            for refused in [
                "E4",
                "in_dp_e4_ubl_invoice",
                "IN_DP_E4_",
                "IN_DP_EX_UBL",
                "IN_DP_E4 UBL",
            ] {
                let e = config(&[(name, refused)]).unwrap_err();
                assert_eq!(e.name, name, "{refused}");
                assert!(e.to_string().contains("IN_DP_E1_UBL_INVOICE"), "{e}");
                assert!(e.to_string().contains(&format!("{refused:?}")), "{e}");
            }
        }
    }

    #[test]
    fn reads_overrides() {
        let c = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("PASSWORD_LIFETIME_DAYS", "424"),
            ("DEFAULT_ENVIRONMENT", "sandbox"),
            ("CHORUS_API_URL", "http://127.0.0.1:8480/cpro/"),
        ]))
        .unwrap();
        assert_eq!(c.password_lifetime.in_days(), 424);
        assert_eq!(c.default_environment, Environment::Sandbox);
        assert_eq!(c.chorus_api_url, "http://127.0.0.1:8480/cpro");
    }
}
