//! `make qualify`: the qualification scenario against a Chorus Pro (the real sandbox, or
//! the emulator), settling what public sources leave unconfirmed (docs/chorus-pro.md#unconfirmed).
//!
//! Every call goes through the gateway's own client (`shared::chorus::ChorusClient`: its
//! token cache, `cpro-account` header and 401/403 rule), sent once with
//! [`ChorusClient::probe`] so the raw answer can be shown next to what the gateway reads in
//! it; invoices are built by the transmission's own path (`transmit_invoice::request`, then
//! `shared::ubl::prepare`). One line per check is printed; `report.md` and `report.json`
//! hold the exchanges, bodies elided ([`report::elide`]) and secrets removed
//! ([`report::Redactor`]).

mod changes;
mod checks;
mod deposits;
mod recommend;
pub mod report;
mod settings;
mod works_route;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::ExposeSecret;
use serde_json::Value;
use shared::chorus::{
    ActiveStructure, ChorusClient, ChorusConfig, ChorusError, Probe, StaticPisteCredentials,
    StructureSummary, TechnicalAccount,
};
use time::OffsetDateTime;

pub use report::{Check, Exchange, FILE_FIELDS, Report, Status, WorksTry};
pub use settings::{Settings, production_reason};

/// What a run produced.
pub struct Outcome {
    pub report: Report,
    pub markdown: PathBuf,
    pub json: PathBuf,
}

impl Outcome {
    /// The process exit status: 0 when every mandatory check passed.
    pub fn exit_code(&self) -> u8 {
        if self.report.mandatory_passed { 0 } else { 1 }
    }
}

/// Runs every check, prints one line each to `out`, writes the two report files.
/// `Err` only when the run could not start or the report could not be written.
pub async fn run(settings: &Settings, out: &mut dyn Write) -> Result<Outcome, String> {
    let mut run = Run::new(settings, out)?;
    let line = format!(
        "Qualifying {} (token {}) as {} for supplier {}",
        settings.api_url, settings.token_url, settings.login, settings.supplier_siret
    );
    run.print(&line);
    let check = checks::token(&mut run).await;
    run.record(check);
    let check = checks::account(&mut run).await;
    run.record(check);
    let check = checks::formats(&mut run).await;
    run.record(check);
    let check = checks::buyer(&mut run).await;
    run.record(check);
    let check = checks::moe(&mut run).await;
    run.record(check);
    let check = deposits::ordinary(&mut run).await;
    run.record(check);
    let check = changes::change_search(&mut run).await;
    run.record(check);
    for check in deposits::works(&mut run).await {
        run.record(check);
    }
    let check = works_route::submit(&mut run).await;
    run.record(check);
    let check = deposits::duplicate(&mut run).await;
    run.record(check);
    let check = checks::wrong_password(&mut run).await;
    run.record(check);
    let check = checks::unknown_route(&mut run).await;
    run.record(check);
    run.finish()
}

/// The state of one run: the client, what earlier checks learnt, the report so far.
pub(crate) struct Run<'a> {
    pub settings: &'a Settings,
    pub client: ChorusClient,
    pub account: TechnicalAccount,
    out: &'a mut dyn Write,
    pub redactor: report::Redactor,
    pub report: Report,
    numbers: Numbers,
    /// The supplier among the account's active structures (check 2).
    pub supplier: Option<ActiveStructure>,
    /// The buyer's structure (check 4).
    pub buyer: Option<StructureSummary>,
    /// What `recuperer/formatflux` listed (check 3).
    pub formats: Option<Vec<String>>,
    /// The commitment number the invoices carry, when the buyer needs one (check 4).
    pub commitment: Option<String>,
    /// The ordinary invoice deposited by check 6: its number and file, for check 8.
    pub ordinary: Option<deposits::Built>,
}

impl<'a> Run<'a> {
    fn new(settings: &'a Settings, out: &'a mut dyn Write) -> Result<Run<'a>, String> {
        let config = ChorusConfig::new(settings.api_url.clone(), settings.token_url.clone());
        let http = ChorusClient::build_http_client(&config).map_err(|e| e.to_string())?;
        let credentials =
            StaticPisteCredentials::new(settings.client_id.clone(), settings.client_secret.clone());
        let client = ChorusClient::new(http, config, Arc::new(credentials));
        let account = TechnicalAccount::new(settings.login.clone(), settings.password.clone());
        let mut redactor = report::Redactor::default();
        let password = settings.password.expose_secret();
        redactor.add(password);
        redactor.add(settings.client_secret.expose_secret());
        redactor.add(&base64_pair(&settings.login, password));
        redactor.add(&base64_pair(&settings.login, checks::WRONG_PASSWORD));
        let now = OffsetDateTime::now_utc();
        Ok(Run {
            settings,
            client,
            account,
            out,
            redactor,
            report: empty_report(settings, now),
            numbers: Numbers::new(now),
            supplier: None,
            buyer: None,
            formats: None,
            commitment: None,
            ordinary: None,
        })
    }

    fn print(&mut self, line: &str) {
        let clean = self.redactor.clean(line);
        // The report files hold the same; a closed stdout must not stop the run.
        let _ = writeln!(self.out, "{clean}");
    }

    fn record(&mut self, check: Check) {
        self.print(&Report::line(&check));
        self.report.checks.push(check);
    }

    /// A new invoice number for `purpose`, listed in the report.
    pub fn number(&mut self, purpose: &str) -> Result<String, String> {
        let number = self.numbers.next()?;
        self.report.invoice_numbers.push(report::NumberUse {
            number: number.clone(),
            purpose: purpose.to_owned(),
        });
        Ok(number)
    }

    /// Sends one call through the gateway's client and records it in `check`.
    pub async fn exchange(
        &self,
        check: &mut Check,
        account: &TechnicalAccount,
        path: &'static str,
        body: &Value,
    ) -> Result<Probe, ChorusError> {
        let answer = self.client.probe(account, path, body).await;
        let (status, www_authenticate, received, reading) = match &answer {
            Ok(probe) => (
                Some(probe.status),
                probe.www_authenticate.clone(),
                report::elide(&probe.body()),
                match probe.outcome() {
                    Ok(_) => "the gateway reads: accepted (codeRetour 0)".to_owned(),
                    Err(error) => format!("the gateway reads: {error}"),
                },
            ),
            Err(error) => (None, None, Value::Null, format!("no answer: {error}")),
        };
        check.exchanges.push(Exchange {
            call: format!("POST {path}"),
            sent: report::elide(body),
            status,
            www_authenticate,
            received,
            reading,
        });
        answer
    }

    fn finish(mut self) -> Result<Outcome, String> {
        self.report.finished_at = shared::clock::rfc3339(OffsetDateTime::now_utc());
        self.report.mandatory_passed = self
            .report
            .checks
            .iter()
            .all(|c| !c.mandatory || c.status == Status::Pass);
        let (settings, notes) = recommend::recommendations(&self.report);
        self.report.recommended_settings = settings;
        self.report.recommendation_notes = notes;
        let (markdown, json) = self
            .report
            .write_files(&self.settings.report_dir, &self.redactor)
            .map_err(|e| format!("the report could not be written: {e}"))?;
        let lines: Vec<String> = std::iter::once(format!(
            "Report: {} and {}; recommended settings:",
            markdown.display(),
            json.display()
        ))
        .chain(
            self.report
                .recommended_settings
                .iter()
                .map(|s| format!("  {s}")),
        )
        .collect();
        for line in lines {
            self.print(&line);
        }
        Ok(Outcome {
            report: self.report,
            markdown,
            json,
        })
    }
}

fn empty_report(settings: &Settings, now: OffsetDateTime) -> Report {
    Report {
        started_at: shared::clock::rfc3339(now),
        finished_at: String::new(),
        api_url: settings.api_url.clone(),
        token_url: settings.token_url.clone(),
        supplier_siret: settings.supplier_siret.clone(),
        buyer_siret: settings.buyer_siret.clone(),
        moe_siret: settings.moe_siret.clone(),
        flux_syntax: settings.flux_syntax.clone(),
        flux_syntax_works: settings.flux_syntax_works.clone(),
        try_alternatives: settings.try_alternatives,
        emulator: settings::is_loopback(&settings.api_url),
        invoice_numbers: Vec::new(),
        checks: Vec::new(),
        mandatory_passed: false,
        recommended_settings: Vec::new(),
        recommendation_notes: Vec::new(),
    }
}

/// The `cpro-account` value, only to be searched for and removed from printed text.
fn base64_pair(login: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
}

/// `QUAL-<yyyymmdd>-<n>`: `n` is the run's second of the day times ten plus a counter, so
/// two runs a second apart never share a number (the sandbox keeps every number it saw)
/// and the whole stays within Chorus Pro's 20 characters.
struct Numbers {
    date: String,
    base: u32,
    used: u32,
}

/// Deposits one run may make with distinct numbers (the counter is one digit).
const MAX_NUMBERS: u32 = 10;

impl Numbers {
    fn new(now: OffsetDateTime) -> Numbers {
        let seconds =
            u32::from(now.hour()) * 3600 + u32::from(now.minute()) * 60 + u32::from(now.second());
        Numbers {
            date: format!(
                "{:04}{:02}{:02}",
                now.year(),
                u8::from(now.month()),
                now.day()
            ),
            base: seconds * 10,
            used: 0,
        }
    }

    fn next(&mut self) -> Result<String, String> {
        if self.used >= MAX_NUMBERS {
            return Err(format!(
                "more than {MAX_NUMBERS} deposits in one run: fewer alternatives"
            ));
        }
        let number = format!("QUAL-{}-{}", self.date, self.base + self.used);
        self.used += 1;
        Ok(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fit_chorus_pro() {
        let late = time::macros::datetime!(2026-12-31 23:59:59 UTC);
        let mut numbers = Numbers::new(late);
        let first = numbers.next().unwrap();
        assert_eq!(first, "QUAL-20261231-863990");
        assert!(first.len() <= 20);
        for _ in 1..MAX_NUMBERS {
            assert!(numbers.next().unwrap().len() <= 20);
        }
        assert!(numbers.next().is_err());
    }
}
