//! The requests the bench sends: the demo's scenario (`tests/demo.sh`), and a 200-line
//! invoice.

use base64::Engine;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::ubl;
use time::{Duration, OffsetDateTime};

/// The emulator's seeded supplier and its technical account.
pub const RHONE_SIRET: &str = gateway_tests::testkit::seeded::RHONE.siret;
pub const RHONE_LOGIN: &str = gateway_tests::testkit::seeded::RHONE.login;
pub const RHONE_PASSWORD: &str = gateway_tests::testkit::seeded::RHONE.password;
/// DEPARTEMENT DE L'ISERE TEST: requires a service code (`DIRINFRA`).
pub const BUYER_SIRET: &str = "21380456000018";
pub const PROJECT_MANAGER_SIRET: &str = "79876543400013";

pub fn settings(email: &str, login: &str, password: Option<&str>, verify: bool) -> Value {
    let mut body = json!({
        "referent_email": email,
        "technical_login": login,
        "verify": verify,
    });
    if let Some(p) = password {
        body["password"] = json!(p);
        body["password_confirmation"] = json!(p);
    }
    body
}

/// The demo's works market (A4, monthly statements), checked against the buyer.
pub fn market(number: &str) -> Value {
    json!({
        "market_number": number,
        "buyer_siret": BUYER_SIRET,
        "buyer_service_code": "DIRINFRA",
        "framework": "A4",
        "project_manager": {"siret": PROJECT_MANAGER_SIRET},
        "label": "Réhabilitation du gymnase"
    })
}

pub fn situation(invoice_number: &str) -> Value {
    json!({"invoice_number": invoice_number, "period": "2026-11"})
}

fn pdf_base64() -> String {
    base64::engine::general_purpose::STANDARD
        .encode(b"%PDF-1.4\n% situation\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
}

fn dates() -> (String, String) {
    let today = OffsetDateTime::now_utc().date();
    let due = today + Duration::days(30);
    (today.to_string(), due.to_string())
}

/// The French VAT number of the company with this SIRET (key from the SIREN).
pub fn vat_id(siret: &str) -> String {
    let siren = siret.get(..9).unwrap_or(siret);
    let key = (12 + 3 * (siren.parse::<u64>().unwrap_or(0) % 97)) % 97;
    format!("FR{key:02}{siren}")
}

fn seller(siret: &str) -> Value {
    json!({"name":"BATIMENTS DU RHONE SAS","vat_id": vat_id(siret),
           "address":{"line1":"1 rue des Artisans","city":"Lyon","postal_code":"69001","country":"FR"},
           "iban":"FR7630006000011234567890189","bic":"AGRIFRPP"})
}

fn buyer() -> Value {
    json!({"name":"DEPARTEMENT DE L'ISERE TEST",
           "address":{"line1":"7 rue Fantin-Latour","city":"Grenoble","postal_code":"38000","country":"FR"}})
}

/// The demo's transmission: two lines (one reverse-charged), a holdback, a small PDF.
pub fn transmission_demo(seller_siret: &str) -> Value {
    let (issue, due) = dates();
    json!({
        "issue_date": issue, "due_date": due, "currency": "EUR",
        "seller": seller(seller_siret), "buyer": buyer(),
        "lines": [
            {"id":"1","description":"Lot 2 gros œuvre, avancement novembre","quantity":"1","unit":"C62","unit_price":"12500.00","vat_category":"S","vat_rate":"20.00"},
            {"id":"2","description":"Lot 3 charpente (sous-traitant, autoliquidation)","quantity":"1","unit":"C62","unit_price":"3000.00","vat_category":"AE","vat_rate":"0.00"}
        ],
        "allowances_charges": [{"charge":false,"amount":"625.00","reason":"Retenue de garantie 5 %","vat_category":"S","vat_rate":"20.00"}],
        "prepaid_amount": "0.00",
        "vat_exemption_reason": "Autoliquidation (article 283-2 nonies du CGI)",
        "note": "Situation n°3",
        "document": {"filename":"situation-03.pdf","content_base64": pdf_base64()}
    })
}

/// A transmission of `n` standard-rated lines.
pub fn transmission_lines(n: usize, seller_siret: &str) -> Value {
    let (issue, due) = dates();
    let lines: Vec<Value> = (1..=n)
        .map(|i| {
            json!({"id": i.to_string(), "description": format!("Poste {i} : travaux de l'avancement de novembre"),
                   "quantity": "1.5", "unit": "C62", "unit_price": format!("{}.25", 100 + i),
                   "vat_category": "S", "vat_rate": "20.00"})
        })
        .collect();
    json!({
        "issue_date": issue, "due_date": due, "currency": "EUR",
        "seller": seller(seller_siret), "buyer": buyer(),
        "lines": lines,
        "prepaid_amount": "0.00",
        "note": "Situation de fin de mois",
        "document": {"filename":"situation.pdf","content_base64": pdf_base64()}
    })
}

fn address(line1: &str, city: &str, postal_code: &str) -> ubl::Address {
    ubl::Address {
        line1: line1.into(),
        line2: None,
        city: city.into(),
        postal_code: postal_code.into(),
        country: "FR".into(),
    }
}

/// The invoice `shared::ubl::prepare` is timed on: 200 lines, as the transmission handler
/// builds it.
pub fn invoice(lines: usize) -> ubl::Invoice {
    let today = OffsetDateTime::now_utc().date();
    ubl::Invoice {
        number: "SIT-014-03".into(),
        issue_date: today,
        due_date: today + Duration::days(30),
        currency: "EUR".into(),
        framework: "A4".into(),
        market_number: "2026-TRV-014".into(),
        commitment_number: None,
        buyer_service_code: Some("DIRINFRA".into()),
        seller: ubl::Seller {
            name: "BATIMENTS DU RHONE SAS".into(),
            siret: RHONE_SIRET.into(),
            vat_id: Some(vat_id(RHONE_SIRET)),
            address: address("1 rue des Artisans", "Lyon", "69001"),
            iban: "FR7630006000011234567890189".into(),
            bic: Some("AGRIFRPP".into()),
        },
        buyer: ubl::Buyer {
            name: "DEPARTEMENT DE L'ISERE TEST".into(),
            siret: BUYER_SIRET.into(),
            vat_id: None,
            address: address("7 rue Fantin-Latour", "Grenoble", "38000"),
        },
        project_manager: Some(ubl::ProjectManager {
            siret: PROJECT_MANAGER_SIRET.into(),
            service_code: None,
        }),
        lines: (1..=lines)
            .map(|i| ubl::Line {
                id: i.to_string(),
                description: format!("Poste {i} : travaux de l'avancement de novembre"),
                quantity: Decimal::new(15, 1),
                unit_code: "C62".into(),
                unit_price: Decimal::new(10_025 + 100 * i as i64, 2),
                vat_category: ubl::VatCategory::S,
                vat_rate: Decimal::new(2000, 2),
            })
            .collect(),
        allowances_charges: vec![ubl::AllowanceCharge {
            charge: false,
            amount: Decimal::new(62_500, 2),
            reason: "Retenue de garantie 5 %".into(),
            vat_category: ubl::VatCategory::S,
            vat_rate: Decimal::new(2000, 2),
        }],
        prepaid_amount: Decimal::ZERO,
        vat_exemption_reason: None,
        note: Some("Situation n°3".into()),
        document: ubl::EmbeddedFile::new(
            "situation-03.pdf",
            ubl::FileContent::Base64(pdf_base64()),
        ),
        attachments: Vec::new(),
    }
}
