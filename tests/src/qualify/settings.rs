//! The qualification's configuration, from the environment (contract, "Qualification
//! against the real Chorus Pro"), and the guard against a production platform.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// The emulator's seeded data (tests/src/sandbox/mod.rs), used only when no URL is given:
/// `make up` then `make qualify` works with nothing else set.
const EMULATOR_DEFAULTS: &[(&str, &str)] = &[
    ("PISTE_CLIENT_ID", "gateway-local"),
    ("PISTE_CLIENT_SECRET", "gateway-local-secret"),
    ("CHORUS_TECHNICAL_LOGIN", "TECH_1_batiments-rhone@cpro.fr"),
    ("CHORUS_TECHNICAL_PASSWORD", "Rhone-Tech-2026!"),
    ("QUALIFY_SUPPLIER_SIRET", "81234567600017"),
    // SYNDICAT MIXTE TEST: requires a service code and a commitment number.
    ("QUALIFY_BUYER_SIRET", "20001234200016"),
    ("QUALIFY_BUYER_SERVICE", "TRAVAUX"),
    // Its commitment issued to the supplier (a supplier's search lists its EJs of every
    // buyer, so the first one found may be another buyer's).
    ("QUALIFY_COMMITMENT_NUMBER", "2200000001"),
    // DEPARTEMENT DE L'ISERE TEST's infrastructure directorate, as the MOE.
    ("QUALIFY_MOE_SIRET", "21380456000018"),
    ("QUALIFY_MOE_SERVICE", "DIRINFRA"),
];

/// Hosts of the production PISTE (docs/chorus-pro.md#piste-and-authentication).
const PRODUCTION_HOSTS: &[&str] = &["api.piste.gouv.fr", "oauth.piste.gouv.fr"];

#[derive(Debug, Clone)]
pub struct Settings {
    pub api_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub login: String,
    pub password: SecretString,
    pub supplier_siret: String,
    pub buyer_siret: String,
    pub buyer_service: Option<String>,
    /// `QUALIFY_COMMITMENT_NUMBER`: the commitment to put on the invoices when the buyer
    /// requires one; without it, the first one the commitment search finds.
    pub commitment_number: Option<String>,
    pub moe_siret: Option<String>,
    pub moe_service: Option<String>,
    pub try_alternatives: bool,
    /// `QUALIFY_WAIT_SECONDS`: how long one flux is followed before giving up.
    pub wait: Duration,
    /// First pause between two reads of a flux; doubled up to `poll_max`.
    pub poll_start: Duration,
    pub poll_max: Duration,
    /// `FLUX_SYNTAX`, as the gateway reads it.
    pub flux_syntax: String,
    /// `FLUX_SYNTAX_WORKS` (by default `FLUX_SYNTAX`), as the gateway reads it: the syntax of
    /// check 7's works statement.
    pub flux_syntax_works: String,
    /// `QUALIFY_REPORT_DIR` (default `.local/qualify`).
    pub report_dir: PathBuf,
    /// The local emulator (loopback): SIRET keys are checked for shape only, as in the
    /// sandbox, whose test SIRETs often fail the Luhn key.
    pub sandbox: bool,
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` so tests give values without touching the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let given = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let (api_url, token_url, emulator) = urls(&given)?;
        let value = |name: &str| {
            given(name).or_else(|| {
                emulator
                    .then(|| EMULATOR_DEFAULTS.iter().find(|(k, _)| *k == name))
                    .flatten()
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        let required = [
            "PISTE_CLIENT_ID",
            "PISTE_CLIENT_SECRET",
            "CHORUS_TECHNICAL_LOGIN",
            "CHORUS_TECHNICAL_PASSWORD",
            "QUALIFY_SUPPLIER_SIRET",
            "QUALIFY_BUYER_SIRET",
        ];
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|n| value(n).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(format!("missing: {}", missing.join(", ")));
        }
        let wait = match given("QUALIFY_WAIT_SECONDS") {
            None => 600,
            Some(text) => text.trim().parse::<u64>().map_err(|_| {
                format!("QUALIFY_WAIT_SECONDS must be a whole number of seconds, got {text:?}")
            })?,
        };
        let sandbox = is_loopback(&api_url) || api_url.contains("sandbox");
        let (flux_syntax, flux_syntax_works) = flux_syntaxes(&given)?;
        Ok(Settings {
            client_id: value("PISTE_CLIENT_ID").unwrap_or_default(),
            client_secret: SecretString::from(value("PISTE_CLIENT_SECRET").unwrap_or_default()),
            login: value("CHORUS_TECHNICAL_LOGIN").unwrap_or_default(),
            password: SecretString::from(value("CHORUS_TECHNICAL_PASSWORD").unwrap_or_default()),
            supplier_siret: value("QUALIFY_SUPPLIER_SIRET").unwrap_or_default(),
            buyer_siret: value("QUALIFY_BUYER_SIRET").unwrap_or_default(),
            buyer_service: value("QUALIFY_BUYER_SERVICE"),
            commitment_number: value("QUALIFY_COMMITMENT_NUMBER"),
            moe_siret: value("QUALIFY_MOE_SIRET"),
            moe_service: value("QUALIFY_MOE_SERVICE"),
            try_alternatives: given("QUALIFY_TRY_ALTERNATIVES").as_deref() == Some("1"),
            wait: Duration::from_secs(wait),
            poll_start: Duration::from_secs(1),
            poll_max: Duration::from_secs(15),
            flux_syntax,
            flux_syntax_works,
            report_dir: given("QUALIFY_REPORT_DIR")
                .map_or_else(|| PathBuf::from(".local/qualify"), PathBuf::from),
            sandbox,
            api_url,
            token_url,
        })
    }
}

/// `FLUX_SYNTAX` and `FLUX_SYNTAX_WORKS` with the gateway's defaults, checked by its own
/// rule (`shared::config::check_flux_syntax`).
fn flux_syntaxes(given: &impl Fn(&str) -> Option<String>) -> Result<(String, String), String> {
    let read = |name: &'static str, default: &str| {
        let raw = given(name).unwrap_or_else(|| default.to_owned());
        shared::config::check_flux_syntax(name, &raw).map_err(|e| e.to_string())
    };
    let invoices = read("FLUX_SYNTAX", shared::chorus::SYNTAX_UBL_INVOICE)?;
    let works = read("FLUX_SYNTAX_WORKS", &invoices)?;
    Ok((invoices, works))
}

/// The two URLs (the local emulator when neither is set), refused when they look like
/// production unless `QUALIFY_ALLOW_PRODUCTION=1`. The flag tells whether the emulator's
/// defaults apply.
fn urls(given: &impl Fn(&str) -> Option<String>) -> Result<(String, String, bool), String> {
    let (api, token) = (given("CHORUS_API_URL"), given("PISTE_TOKEN_URL"));
    let emulator = api.is_none() && token.is_none();
    let base = format!(
        "http://127.0.0.1:{}",
        given("CHORUS_SANDBOX_PORT").unwrap_or_else(|| "8480".to_owned())
    );
    let (Some(api), Some(token)) = (
        api.or_else(|| emulator.then(|| format!("{base}/cpro"))),
        token.or_else(|| emulator.then(|| format!("{base}/api/oauth/token"))),
    ) else {
        return Err(
            "set both CHORUS_API_URL and PISTE_TOKEN_URL, or neither (the local emulator)".into(),
        );
    };
    if given("QUALIFY_ALLOW_PRODUCTION").as_deref() != Some("1") {
        for url in [&api, &token] {
            if let Some(reason) = production_reason(url) {
                return Err(format!(
                    "{url} {reason}: qualification deposits real invoices; set QUALIFY_ALLOW_PRODUCTION=1 to run it there anyway"
                ));
            }
        }
    }
    Ok((api.trim_end_matches('/').to_owned(), token, emulator))
}

/// Why a URL counts as production: a known production host, or any host other than the
/// loopback whose URL does not say `sandbox`.
pub fn production_reason(url: &str) -> Option<&'static str> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Some("is not a URL");
    };
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    if PRODUCTION_HOSTS.contains(&host.as_str()) {
        return Some("is the production PISTE");
    }
    if is_loopback(url) || url.to_ascii_lowercase().contains("sandbox") {
        return None;
    }
    Some("does not name a sandbox")
}

pub(crate) fn is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        matches!(
            u.host_str().unwrap_or_default(),
            "127.0.0.1" | "localhost" | "[::1]" | "::1"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn production_is_refused_unless_allowed() {
        assert_eq!(
            production_reason("https://api.piste.gouv.fr/cpro"),
            Some("is the production PISTE")
        );
        assert_eq!(
            production_reason("https://sandbox-api.piste.gouv.fr/cpro"),
            None
        );
        assert_eq!(production_reason("http://127.0.0.1:8480/cpro"), None);
        assert!(production_reason("https://chorus.example.com/cpro").is_some());
        let real = [
            ("CHORUS_API_URL", "https://api.piste.gouv.fr/cpro"),
            (
                "PISTE_TOKEN_URL",
                "https://oauth.piste.gouv.fr/api/oauth/token",
            ),
            ("PISTE_CLIENT_ID", "id"),
            ("PISTE_CLIENT_SECRET", "secret"),
            ("CHORUS_TECHNICAL_LOGIN", "login"),
            ("CHORUS_TECHNICAL_PASSWORD", "pw"),
            ("QUALIFY_SUPPLIER_SIRET", "81234567600017"),
            ("QUALIFY_BUYER_SIRET", "21690123100011"),
        ];
        assert!(
            settings(&real)
                .unwrap_err()
                .contains("QUALIFY_ALLOW_PRODUCTION")
        );
        let mut allowed = real.to_vec();
        allowed.push(("QUALIFY_ALLOW_PRODUCTION", "1"));
        assert!(!settings(&allowed).unwrap().sandbox);
    }

    #[test]
    fn the_emulator_needs_nothing_but_a_real_target_needs_everything() {
        let local = settings(&[("CHORUS_SANDBOX_PORT", "8700")]).unwrap();
        assert_eq!(local.api_url, "http://127.0.0.1:8700/cpro");
        assert_eq!(local.moe_siret.as_deref(), Some("21380456000018"));
        let error = settings(&[
            ("CHORUS_API_URL", "https://sandbox-api.piste.gouv.fr/cpro"),
            (
                "PISTE_TOKEN_URL",
                "https://sandbox-oauth.piste.gouv.fr/api/oauth/token",
            ),
        ])
        .unwrap_err();
        assert!(error.contains("PISTE_CLIENT_SECRET"), "{error}");
        assert!(settings(&[("CHORUS_API_URL", "https://sandbox-api.piste.gouv.fr/cpro")]).is_err());
    }

    #[test]
    fn the_works_syntax_follows_the_invoices_one_unless_given_and_both_are_checked() {
        let local = settings(&[]).unwrap();
        assert_eq!(local.flux_syntax, "IN_DP_E1_UBL_INVOICE");
        assert_eq!(local.flux_syntax_works, "IN_DP_E1_UBL_INVOICE");
        let given = settings(&[("FLUX_SYNTAX_WORKS", "IN_DP_E4_UBL_INVOICE")]).unwrap();
        assert_eq!(given.flux_syntax, "IN_DP_E1_UBL_INVOICE");
        assert_eq!(given.flux_syntax_works, "IN_DP_E4_UBL_INVOICE");
        let error = settings(&[("FLUX_SYNTAX_WORKS", "validator)")]).unwrap_err();
        assert!(error.contains("FLUX_SYNTAX_WORKS"), "{error}");
        assert!(error.contains("\"validator)\""), "{error}");
    }
}
