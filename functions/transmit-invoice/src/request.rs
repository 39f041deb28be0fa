//! The transmission request (contract, "Transmission"): JSON in, a `ubl::Invoice` out,
//! completed with what the gateway already knows (the company, the market, the situation).
//! Structure and type faults answer `malformed_json`; value faults are collected, every
//! one with its field path, into one `validation_failed`.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use shared::domain::FileName;
use shared::http::{FieldError, Problem, ProblemCode};
use shared::ubl::{self, Address, EmbeddedFile, FileContent, VatCategory};
use time::Date;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransmission {
    issue_date: Option<String>,
    due_date: Option<String>,
    currency: Option<String>,
    seller: Option<RawSeller>,
    buyer: Option<RawBuyer>,
    lines: Option<Vec<RawLine>>,
    allowances_charges: Option<Vec<RawAllowanceCharge>>,
    prepaid_amount: Option<String>,
    vat_exemption_reason: Option<String>,
    note: Option<String>,
    document: Option<RawFile>,
    attachments: Option<Vec<RawFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeller {
    name: Option<String>,
    vat_id: Option<String>,
    address: Option<RawAddress>,
    iban: Option<String>,
    bic: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuyer {
    name: Option<String>,
    vat_id: Option<String>,
    address: Option<RawAddress>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddress {
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    id: Option<String>,
    description: Option<String>,
    quantity: Option<String>,
    unit: Option<String>,
    unit_price: Option<String>,
    vat_category: Option<String>,
    vat_rate: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllowanceCharge {
    charge: Option<bool>,
    amount: Option<String>,
    reason: Option<String>,
    vat_category: Option<String>,
    vat_rate: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    filename: Option<String>,
    content_base64: Option<String>,
    /// An uploaded document (`POST …/documents`) instead of `content_base64`.
    document_id: Option<String>,
    /// The document's bytes once read from the bucket (`crate::documents`).
    #[serde(skip)]
    resolved: Option<Vec<u8>>,
}

impl RawFile {
    /// The document this file names, when it names one and is not resolved yet.
    pub fn document_id(&self) -> Option<&str> {
        self.document_id
            .as_deref()
            .filter(|_| self.resolved.is_none())
    }

    /// The decoded size of its inline content, about (base64: 3 bytes in 4 characters).
    pub fn inline_len(&self) -> u64 {
        self.content_base64
            .as_ref()
            .map_or(0, |c| c.len() as u64 / 4 * 3)
    }

    /// Whether it also carries inline content (refused with a document).
    pub fn has_inline_content(&self) -> bool {
        self.content_base64.is_some()
    }

    /// The document's name (unless the request names it) and bytes, read from the bucket.
    pub fn resolve(&mut self, filename: String, bytes: Vec<u8>) {
        self.filename.get_or_insert(filename);
        self.resolved = Some(bytes);
    }
}

impl RawTransmission {
    /// The main document, then the attachments.
    pub fn files_mut(&mut self) -> Vec<&mut RawFile> {
        self.document
            .iter_mut()
            .chain(self.attachments.iter_mut().flatten())
            .collect()
    }
}

// A file is megabytes of base64: never print it.
impl std::fmt::Debug for RawFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawFile")
            .field("filename", &self.filename)
            .finish_non_exhaustive()
    }
}

/// Parses the body; serde's English messages are turned into French ones.
pub fn parse(bytes: &[u8]) -> Result<RawTransmission, Problem> {
    parse_json(bytes)
}

/// A completion's body (`…/transmission/complete`): a comment and files, the files read
/// like a transmission's attachments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompletion {
    pub comment: Option<String>,
    attachments: Option<Vec<RawFile>>,
}

impl RawCompletion {
    pub fn file_count(&self) -> usize {
        self.attachments.as_ref().map_or(0, Vec::len)
    }

    pub fn files_mut(&mut self) -> Vec<&mut RawFile> {
        self.attachments.iter_mut().flatten().collect()
    }

    /// The faults of the files' names and of how each gives its content, before any
    /// uploaded document is read: what `files` would say of the form.
    pub fn form_faults(&self) -> Vec<FieldError> {
        let mut c = Collector(Vec::new());
        for (i, file) in self.attachments.iter().flatten().enumerate() {
            let field = format!("attachments[{i}]");
            if let Some(name) = &file.filename {
                c.file_name(Some(name.clone()), &format!("{field}.filename"));
            } else if file.document_id.is_none() {
                c.file_name(None, &format!("{field}.filename"));
            }
            match (&file.content_base64, &file.document_id) {
                (Some(_), Some(_)) => c.0.push(both_given(&field)),
                (None, None) => c.0.push(FieldError::new(
                    format!("{field}.content_base64"),
                    "required",
                    format!("Le champ « {field}.content_base64 » (ou « {field}.document_id ») est obligatoire."),
                )),
                (Some(text), None) if text.trim().is_empty() => c.0.push(FieldError::new(
                    format!("{field}.content_base64"),
                    "required",
                    format!("Le champ « {field}.content_base64 » est obligatoire."),
                )),
                _ => {}
            }
        }
        c.0
    }

    /// The files, or every fault of their names and contents.
    pub fn files(self) -> Result<(Option<String>, Vec<EmbeddedFile>), Problem> {
        let mut c = Collector(Vec::new());
        let files = c.attachments(self.attachments);
        if c.0.is_empty() {
            Ok((self.comment, files))
        } else {
            Err(Problem::validation(c.0))
        }
    }
}

/// The body as `T`; serde's English messages are turned into French ones.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::new(
            ProblemCode::MalformedJson,
            "Le corps de la requête est vide : un objet JSON est attendu.",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        if let Some(rest) = text.strip_prefix("unknown field `") {
            // Like every route: an unknown field is a validation fault naming the field.
            let name = rest.split('`').next().unwrap_or("");
            return Problem::validation(vec![FieldError::new(
                name,
                "unknown_field",
                format!(
                    "Le champ « {name} » n'est pas reconnu (ligne {}, colonne {}).",
                    e.line(),
                    e.column()
                ),
            )]);
        }
        let detail = if text.starts_with("invalid type") {
            let expected = text
                .split("expected ")
                .nth(1)
                .and_then(|r| r.split(" at line").next())
                .unwrap_or("");
            let expected = match expected {
                "a string" => "un texte (les montants s'écrivent \"12500.00\")",
                "a boolean" => "un booléen",
                "a sequence" => "une liste",
                e if e.starts_with("struct") => "un objet",
                _ => "d'un autre type",
            };
            format!(
                "Une valeur n'a pas le bon type : {expected} est attendu (ligne {}, colonne {}).",
                e.line(),
                e.column()
            )
        } else {
            format!(
                "Le corps de la requête n'est pas du JSON valide (ligne {}, colonne {}).",
                e.line(),
                e.column()
            )
        };
        Problem::new(ProblemCode::MalformedJson, detail)
    })
}

/// What the gateway adds to the request.
pub struct Context<'a> {
    pub invoice_number: &'a str,
    pub seller_siret: &'a str,
    pub buyer_siret: &'a str,
    pub framework: &'a str,
    pub market_number: &'a str,
    pub commitment_number: Option<&'a str>,
    pub buyer_service_code: Option<&'a str>,
    pub project_manager: Option<ubl::ProjectManager>,
}

struct Collector(Vec<FieldError>);

impl Collector {
    fn required<T>(&mut self, value: Option<T>, field: &str) -> Option<T> {
        if value.is_none() {
            self.0.push(FieldError::new(
                field,
                "required",
                format!("Le champ « {field} » est obligatoire."),
            ));
        }
        value
    }

    fn text(&mut self, value: Option<String>, field: &str) -> String {
        match value {
            Some(v) if !v.trim().is_empty() => v,
            _ => {
                self.0.push(FieldError::new(
                    field,
                    "required",
                    format!("Le champ « {field} » est obligatoire."),
                ));
                String::new()
            }
        }
    }

    /// A file name of the safe set, or a field error saying why not.
    fn file_name(&mut self, value: Option<String>, field: &str) -> String {
        let raw = value.unwrap_or_default();
        if let Err(e) = FileName::parse(&raw) {
            self.0
                .push(FieldError::new(field, e.code(), e.message_fr(&raw)));
        }
        raw
    }

    fn amount(&mut self, value: Option<String>, field: &str) -> Decimal {
        let Some(raw) = self.required(value, field) else {
            return Decimal::ZERO;
        };
        // Decimal strings only: digits, one dot, an optional leading minus.
        let shaped = !raw.is_empty()
            && raw.trim_start_matches('-').split('.').count() <= 2
            && raw
                .trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
            && !raw.trim_start_matches('-').starts_with('.')
            && !raw.ends_with('.');
        match (shaped, Decimal::from_str(&raw)) {
            (true, Ok(d)) => d,
            _ => {
                self.0.push(FieldError::new(
                    field,
                    "invalid_amount",
                    format!("« {raw} » n'est pas un montant décimal valide pour « {field} » (exemple : \"12500.00\")."),
                ));
                Decimal::ZERO
            }
        }
    }

    fn date(&mut self, value: Option<String>, field: &str) -> Date {
        let Some(raw) = self.required(value, field) else {
            return Date::MIN;
        };
        shared::clock::parse_iso_date(&raw).unwrap_or_else(|| {
            self.0.push(FieldError::new(
                field,
                "invalid_date",
                format!(
                    "« {raw} » n'est pas une date valide pour « {field} » (format AAAA-MM-JJ)."
                ),
            ));
            Date::MIN
        })
    }

    fn category(&mut self, value: Option<String>, field: &str) -> VatCategory {
        let Some(raw) = self.required(value, field) else {
            return VatCategory::S;
        };
        match serde_json::from_value::<VatCategory>(serde_json::Value::String(raw.clone())) {
            Ok(c) => c,
            Err(_) => {
                self.0.push(FieldError::new(
                    field,
                    "invalid_vat_category",
                    format!("La catégorie de TVA « {raw} » n'existe pas : S, AE, E, Z ou O."),
                ));
                VatCategory::S
            }
        }
    }

    fn address(&mut self, value: Option<RawAddress>, field: &str) -> Address {
        let Some(a) = self.required(value, field) else {
            return Address {
                line1: String::new(),
                line2: None,
                city: String::new(),
                postal_code: String::new(),
                country: String::new(),
            };
        };
        Address {
            line1: self.text(a.line1, &format!("{field}.line1")),
            line2: a.line2,
            city: self.text(a.city, &format!("{field}.city")),
            postal_code: self.text(a.postal_code, &format!("{field}.postal_code")),
            country: self.text(a.country, &format!("{field}.country")),
        }
    }

    fn file(&mut self, value: Option<RawFile>, field: &str) -> Option<EmbeddedFile> {
        let file = self.required(value, field)?;
        let filename = self.file_name(file.filename, &format!("{field}.filename"));
        let content = match (file.resolved, file.content_base64, file.document_id) {
            (Some(bytes), None, _) => FileContent::Bytes(bytes),
            (None, inline, None) => {
                FileContent::Base64(self.text(inline, &format!("{field}.content_base64")))
            }
            (_, Some(_), Some(_)) | (Some(_), Some(_), None) => {
                self.0.push(both_given(field));
                FileContent::Bytes(Vec::new())
            }
            // Named but not read (a route that does not read documents).
            (None, None, Some(_)) => {
                self.0.push(FieldError::new(
                    format!("{field}.document_id"),
                    "document_not_supported",
                    format!("« {field} » ne peut pas désigner un document déposé sur cette route : joignez-le en content_base64."),
                ));
                FileContent::Bytes(Vec::new())
            }
        };
        Some(EmbeddedFile::new(filename, content))
    }
}

fn both_given(field: &str) -> FieldError {
    FieldError::new(
        format!("{field}.document_id"),
        "document_or_content",
        format!(
            "« {field} » donne à la fois document_id et content_base64 : gardez l'un des deux."
        ),
    )
}

impl Collector {
    /// The seller: the request's name, address and bank account, the company's SIRET.
    fn seller(&mut self, s: RawSeller, ctx: &Context<'_>) -> ubl::Seller {
        ubl::Seller {
            name: self.text(s.name, "seller.name"),
            siret: ctx.seller_siret.to_owned(),
            vat_id: s.vat_id,
            address: self.address(s.address, "seller.address"),
            iban: self.text(s.iban, "seller.iban"),
            bic: s.bic,
        }
    }

    /// The buyer: the request's name and address, the market's buyer SIRET.
    fn buyer(&mut self, b: RawBuyer, ctx: &Context<'_>) -> ubl::Buyer {
        ubl::Buyer {
            name: self.text(b.name, "buyer.name"),
            siret: ctx.buyer_siret.to_owned(),
            vat_id: b.vat_id,
            address: self.address(b.address, "buyer.address"),
        }
    }

    /// Line `i` (`lines[i]`); the unit is C62 (one) when none is given.
    fn line(&mut self, i: usize, l: RawLine) -> ubl::Line {
        let f = |name: &str| format!("lines[{i}].{name}");
        ubl::Line {
            id: self.text(l.id, &f("id")),
            description: self.text(l.description, &f("description")),
            quantity: self.amount(l.quantity, &f("quantity")),
            unit_code: l.unit.unwrap_or_else(|| "C62".to_owned()),
            unit_price: self.amount(l.unit_price, &f("unit_price")),
            vat_category: self.category(l.vat_category, &f("vat_category")),
            vat_rate: self.amount(l.vat_rate, &f("vat_rate")),
        }
    }

    /// The lines, at least the list (required).
    fn lines(&mut self, raw: Option<Vec<RawLine>>) -> Vec<ubl::Line> {
        let raw_lines = self.required(raw, "lines").unwrap_or_default();
        raw_lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| self.line(i, l))
            .collect()
    }

    /// Document-level allowances and charges (`allowances_charges[i]`), none by default.
    fn allowances_charges(
        &mut self,
        raw: Option<Vec<RawAllowanceCharge>>,
    ) -> Vec<ubl::AllowanceCharge> {
        raw.unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let f = |name: &str| format!("allowances_charges[{i}].{name}");
                ubl::AllowanceCharge {
                    charge: self.required(a.charge, &f("charge")).unwrap_or(false),
                    amount: self.amount(a.amount, &f("amount")),
                    reason: self.text(a.reason, &f("reason")),
                    vat_category: self.category(a.vat_category, &f("vat_category")),
                    vat_rate: self.amount(a.vat_rate, &f("vat_rate")),
                }
            })
            .collect()
    }

    /// The attached files (`attachments[i]`), none by default.
    fn attachments(&mut self, raw: Option<Vec<RawFile>>) -> Vec<EmbeddedFile> {
        raw.unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, a)| self.file(Some(a), &format!("attachments[{i}]")))
            .collect()
    }
}

/// The invoice the request describes, or every fault at once.
pub fn to_invoice(raw: RawTransmission, ctx: &Context<'_>) -> Result<ubl::Invoice, Problem> {
    let mut c = Collector(Vec::new());
    let issue_date = c.date(raw.issue_date, "issue_date");
    let due_date = c.date(raw.due_date, "due_date");
    let seller = c.required(raw.seller, "seller");
    let buyer = c.required(raw.buyer, "buyer");
    let seller = seller.map(|s| c.seller(s, ctx));
    let buyer = buyer.map(|b| c.buyer(b, ctx));
    let lines = c.lines(raw.lines);
    let allowances_charges = c.allowances_charges(raw.allowances_charges);
    let prepaid_amount = match raw.prepaid_amount {
        None => Decimal::ZERO,
        some => c.amount(some, "prepaid_amount"),
    };
    let document = c.file(raw.document, "document");
    let attachments = c.attachments(raw.attachments);

    let (Some(seller), Some(buyer), Some(document), true) =
        (seller, buyer, document, c.0.is_empty())
    else {
        return Err(Problem::validation(c.0));
    };
    Ok(ubl::Invoice {
        number: ctx.invoice_number.to_owned(),
        issue_date,
        due_date,
        currency: raw.currency.unwrap_or_else(|| "EUR".to_owned()),
        framework: ctx.framework.to_owned(),
        market_number: ctx.market_number.to_owned(),
        commitment_number: ctx.commitment_number.map(str::to_owned),
        buyer_service_code: ctx.buyer_service_code.map(str::to_owned),
        seller,
        buyer,
        project_manager: ctx.project_manager.clone(),
        lines,
        allowances_charges,
        prepaid_amount,
        vat_exemption_reason: raw.vat_exemption_reason,
        note: raw.note,
        document,
        attachments,
    })
}

/// `422 invoice_invalid`, listing every rule broken (the rule id as the code).
pub fn invalid(violations: Vec<ubl::RuleViolation>) -> Problem {
    let detail = format!(
        "La facture construite à partir de la situation ne respecte pas {} règle{} (EN 16931 ou Chorus Pro) : rien n'a été envoyé.",
        violations.len(),
        if violations.len() > 1 { "s" } else { "" }
    );
    Problem::new(ProblemCode::InvoiceInvalid, detail).with_errors(
        violations
            .into_iter()
            .map(|v| FieldError::new("invoice", v.rule_id, v.message_fr))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            invoice_number: "SIT-2026-014-03",
            seller_siret: "81234567600017",
            buyer_siret: "21690123100011",
            framework: "A1",
            market_number: "2026-TRV-014",
            commitment_number: None,
            buyer_service_code: None,
            project_manager: None,
        }
    }

    #[test]
    fn unknown_fields_and_types_are_malformed_in_french() {
        let p = parse(br#"{"issue_date": "2026-11-30", "colour": 1}"#).unwrap_err();
        assert_eq!(p.code, ProblemCode::ValidationFailed);
        assert_eq!(p.errors[0].code, "unknown_field");
        assert!(p.detail.contains("« colour »"), "{}", p.detail);
        assert!(parse(br#"{"allowances_charges": null, "attachments": null}"#).is_ok());
        let p = parse(br#"{"lines": [{"unit_price": 12.5}]}"#).unwrap_err();
        assert!(p.detail.contains("montants"), "{}", p.detail);
        assert!(parse(b"").is_err());
    }

    #[test]
    fn every_value_fault_is_listed() {
        let raw = parse(
            br#"{"issue_date": "30/11/2026", "lines": [{"id": "1", "description": "x", "quantity": "1",
                "unit_price": "12,50", "vat_category": "X", "vat_rate": "20"}], "prepaid_amount": "1e3"}"#,
        )
        .unwrap();
        let p = to_invoice(raw, &ctx()).unwrap_err();
        let codes: Vec<(&str, &str)> = p
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert!(codes.contains(&("issue_date", "invalid_date")), "{codes:?}");
        assert!(codes.contains(&("due_date", "required")), "{codes:?}");
        assert!(codes.contains(&("seller", "required")), "{codes:?}");
        assert!(
            codes.contains(&("lines[0].unit_price", "invalid_amount")),
            "{codes:?}"
        );
        assert!(
            codes.contains(&("lines[0].vat_category", "invalid_vat_category")),
            "{codes:?}"
        );
        assert!(
            codes.contains(&("prepaid_amount", "invalid_amount")),
            "{codes:?}"
        );
        assert!(codes.contains(&("document", "required")), "{codes:?}");
    }
}
