//! What a qualification run found: one [`Check`] per question, each with the exchanges it
//! made, rendered as `report.md` and `report.json`. Every text leaves through
//! [`Redactor::clean`], so a secret that slipped into a body is still never written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One request and what came back, bodies already elided.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// `POST <path>` (relative to the API base) or the token URL.
    pub call: String,
    pub sent: Value,
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub www_authenticate: Option<String>,
    pub received: Value,
    /// How the gateway's own client reads that answer.
    pub reading: String,
}

/// The works route a check tried, kept with it: the recommendations read this, never the
/// check's title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "route", rename_all = "snake_case")]
pub enum WorksTry {
    /// `WORKS_SUBMISSION=ubl_flux`: a UBL flux of this `syntaxeFlux`, with the gateway's
    /// SIRET `schemeID` (`gateway_scheme`) or the alternative one.
    UblFlux {
        syntax: String,
        gateway_scheme: bool,
    },
    /// `WORKS_SUBMISSION=pdf_api`: `ajouter/fichier`, then `soumettre` in `DEPOT_PDF_API` mode.
    PdfApi,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: String,
    pub title: String,
    pub mandatory: bool,
    pub status: Status,
    /// One line: what was sent, what came back, the verdict.
    pub summary: String,
    /// For a works statement's check: the route and syntax it tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub works: Option<WorksTry>,
    pub exchanges: Vec<Exchange>,
    pub notes: Vec<String>,
}

impl Check {
    pub fn new(id: &str, title: &str, mandatory: bool) -> Check {
        Check {
            id: id.to_owned(),
            title: title.to_owned(),
            mandatory,
            status: Status::Skip,
            summary: String::new(),
            works: None,
            exchanges: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The works route this check tries.
    pub fn trying(mut self, works: WorksTry) -> Check {
        self.works = Some(works);
        self
    }

    pub fn finish(mut self, status: Status, summary: impl Into<String>) -> Check {
        self.status = status;
        self.summary = summary.into();
        self
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

/// An invoice number this run deposited (the sandbox keeps them: listed so none is reused).
#[derive(Debug, Clone, Serialize)]
pub struct NumberUse {
    pub number: String,
    pub purpose: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: String,
    pub finished_at: String,
    pub api_url: String,
    pub token_url: String,
    pub supplier_siret: String,
    pub buyer_siret: String,
    pub moe_siret: Option<String>,
    pub flux_syntax: String,
    /// `FLUX_SYNTAX_WORKS` (by default `FLUX_SYNTAX`): check 7's syntax.
    pub flux_syntax_works: String,
    pub try_alternatives: bool,
    /// The target is the local emulator (loopback): its answers are the emulator's.
    pub emulator: bool,
    pub invoice_numbers: Vec<NumberUse>,
    pub checks: Vec<Check>,
    /// Every mandatory check passed: the exit status is 0.
    pub mandatory_passed: bool,
    /// `NAME=value` lines derived from what passed.
    pub recommended_settings: Vec<String>,
    pub recommendation_notes: Vec<String>,
}

impl Report {
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    pub fn status_of(&self, id: &str) -> Option<Status> {
        self.check(id).map(|c| c.status)
    }

    /// Writes `report.md` and `report.json` into `dir`; gives their paths.
    pub fn write_files(
        &self,
        dir: &Path,
        redactor: &Redactor,
    ) -> std::io::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let md = dir.join("report.md");
        let json = dir.join("report.json");
        std::fs::write(&md, redactor.clean(&self.to_markdown()))?;
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&json, redactor.clean(&text))?;
        Ok((md, json))
    }

    /// The one line printed per check.
    pub fn line(check: &Check) -> String {
        format!(
            "{} {} {:<4} {} — {}",
            check.status.label(),
            if check.mandatory {
                "[mandatory]"
            } else {
                "[optional] "
            },
            check.id,
            check.title,
            check.summary
        )
    }

    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        self.markdown_head(&mut md);
        md.push_str("\n## Invoice numbers deposited\n\n");
        if self.invoice_numbers.is_empty() {
            md.push_str("None.\n");
        }
        for n in &self.invoice_numbers {
            let _ = writeln!(md, "- `{}`: {}", n.number, n.purpose);
        }
        md.push_str("\n## Details\n");
        for check in &self.checks {
            markdown_check(&mut md, check);
        }
        md.push_str("\n## Recommended settings\n\nDerived from the checks that passed.\n\n```sh\n");
        for line in &self.recommended_settings {
            let _ = writeln!(md, "{line}");
        }
        md.push_str("```\n\n");
        for note in &self.recommendation_notes {
            let _ = writeln!(md, "- {note}");
        }
        md
    }

    fn markdown_head(&self, md: &mut String) {
        let verdict = if self.mandatory_passed {
            "every mandatory check passed".to_owned()
        } else {
            let failed: Vec<&str> = self
                .checks
                .iter()
                .filter(|c| c.mandatory && c.status != Status::Pass)
                .map(|c| c.id.as_str())
                .collect();
            format!("mandatory checks not passed: {}", failed.join(", "))
        };
        let _ = writeln!(md, "# Chorus Pro qualification report\n");
        let _ = writeln!(md, "- API: `{}`", self.api_url);
        let _ = writeln!(md, "- PISTE token: `{}`", self.token_url);
        let _ = writeln!(md, "- Run: {} → {}", self.started_at, self.finished_at);
        let _ = writeln!(
            md,
            "- Supplier SIRET `{}`, buyer SIRET `{}`, MOE SIRET {}",
            self.supplier_siret,
            self.buyer_siret,
            self.moe_siret
                .as_deref()
                .map_or("(none)".to_owned(), |s| format!("`{s}`"))
        );
        let _ = writeln!(
            md,
            "- `FLUX_SYNTAX` tested: `{}`; `FLUX_SYNTAX_WORKS`: `{}`; alternatives: {}",
            self.flux_syntax,
            self.flux_syntax_works,
            if self.try_alternatives {
                "tried"
            } else {
                "not tried"
            }
        );
        if self.emulator {
            md.push_str("- Target: the local emulator. Its answers follow docs/chorus-pro.md; the wordings it invents (e.g. the duplicate-number message) are not Chorus Pro's.\n");
        }
        let _ = writeln!(md, "- **Result: {verdict}**\n");
        md.push_str(
            "| # | check | mandatory | result | summary |\n| --- | --- | --- | --- | --- |\n",
        );
        for c in &self.checks {
            let _ = writeln!(
                md,
                "| {} | {} | {} | **{}** | {} |",
                c.id,
                c.title,
                if c.mandatory { "yes" } else { "no" },
                c.status.label(),
                c.summary.replace('|', "\\|")
            );
        }
    }
}

/// Longest body shown in `report.md` (the JSON report keeps it whole, elided).
const MARKDOWN_BODY_LIMIT: usize = 4000;

fn markdown_check(md: &mut String, check: &Check) {
    let _ = writeln!(
        md,
        "\n### {} {} ({}) — {}\n\n{}\n",
        check.id,
        check.title,
        if check.mandatory {
            "mandatory"
        } else {
            "optional"
        },
        check.status.label(),
        check.summary
    );
    for note in &check.notes {
        let _ = writeln!(md, "- {note}");
    }
    for exchange in &check.exchanges {
        let status = exchange
            .status
            .map_or("—".to_owned(), |s| format!("HTTP {s}"));
        let _ = writeln!(
            md,
            "\n`{}` → {status}; {}\n",
            exchange.call, exchange.reading
        );
        if let Some(header) = &exchange.www_authenticate {
            let _ = writeln!(md, "`WWW-Authenticate: {header}`\n");
        }
        let _ = writeln!(md, "sent:\n\n```json\n{}\n```\n", shown(&exchange.sent));
        let _ = writeln!(
            md,
            "received:\n\n```json\n{}\n```",
            shown(&exchange.received)
        );
    }
}

fn shown(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    if text.len() <= MARKDOWN_BODY_LIMIT {
        return text;
    }
    let mut cut = MARKDOWN_BODY_LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n… ({} characters in all, see report.json)",
        &text[..cut],
        text.len()
    )
}

/// Every field that carries a file (base64), elided whatever its size: what the gateway's
/// client sends (`fichierFlux` of `deposer/flux`, `pieceJointeFichier` of `ajouter/fichier`,
/// shared/src/chorus) and what an answer may carry (`fichierCR`, `fichier`, `pieceJointe`).
/// A new file field of the client belongs here (tests/tests/qualify.rs looks for every file
/// sent in the report).
pub const FILE_FIELDS: &[&str] = &[
    "fichierFlux",
    "pieceJointeFichier",
    "fichierCR",
    "fichier",
    "pieceJointe",
];

/// Keys whose values are secrets: replaced by their length.
const SECRET_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
    "motDePasse",
    "cpro-account",
    "authorization",
];

/// Longer strings are file contents (base64) whatever their key.
const LONG_TEXT: usize = 2000;

/// A body as it may be shown: secrets and file contents replaced by their size.
pub fn elide(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, inner) in map {
                let mut elided = FILE_FIELDS.iter().chain(SECRET_FIELDS);
                let shown = if elided.any(|k| k.eq_ignore_ascii_case(key)) {
                    elided_marker(inner)
                } else {
                    elide(inner)
                };
                out.insert(key.clone(), shown);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(elide).collect()),
        Value::String(text) if text.len() > LONG_TEXT => elided_marker(value),
        other => other.clone(),
    }
}

fn elided_marker(value: &Value) -> Value {
    let size = match value {
        Value::String(text) => text.len(),
        other => other.to_string().len(),
    };
    Value::String(format!("<elided: {size} characters>"))
}

/// The secret values of a run; every printed or written text goes through [`Redactor::clean`].
#[derive(Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Values shorter than 4 characters are ignored (they would blank ordinary words).
    pub fn add(&mut self, secret: &str) {
        if secret.len() >= 4 && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
            // Longest first, so a secret containing another is replaced whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "<elided>");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_and_files_are_elided() {
        let body = json!({"fichierFlux": "PEludm9pY2UvPg==", "nomFichier": "F.xml",
                          "pieceJointeFichier": "JVBERi0xLjQK", "pieceJointeNom": "A4.pdf",
                          "nested": [{"client_secret": "s3cr3t"}], "big": "A".repeat(3000)});
        let shown = elide(&body);
        assert_eq!(shown["fichierFlux"], "<elided: 16 characters>");
        assert_eq!(shown["nomFichier"], "F.xml");
        assert_eq!(shown["pieceJointeFichier"], "<elided: 12 characters>");
        assert_eq!(shown["pieceJointeNom"], "A4.pdf");
        assert_eq!(
            shown["nested"][0]["client_secret"],
            "<elided: 6 characters>"
        );
        assert_eq!(shown["big"], "<elided: 3000 characters>");
        let mut redactor = Redactor::default();
        redactor.add("Rhone-Tech-2026!");
        redactor.add("ab");
        assert_eq!(redactor.clean("pw Rhone-Tech-2026! ab"), "pw <elided> ab");
    }
}
