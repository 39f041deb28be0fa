//! Unit tests of totals and writer, the refused cases, and the matrix checked by the
//! official EN 16931 validator (`../shared/validation/ubl_validate.py`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use rust_decimal::Decimal;
use time::{Date, Month};

use super::*;
use crate::domain::SiretCheck;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("test decimal")
}

fn date(y: i32, m: u8, d: u8) -> Date {
    Date::from_calendar_date(y, Month::try_from(m).expect("month"), d).expect("date")
}

const SELLER_SIRET: &str = "73282932000074";
const SELLER_VAT: &str = "FR44732829320";
const BUYER_SIRET: &str = "21750001600019";
const MOE_SIRET: &str = "44306184100047";

fn address(line1: &str, city: &str, postal_code: &str) -> Address {
    Address {
        line1: line1.to_owned(),
        line2: None,
        city: city.to_owned(),
        postal_code: postal_code.to_owned(),
        country: "FR".to_owned(),
    }
}

fn pdf(name: &str) -> EmbeddedFile {
    EmbeddedFile::new(
        name,
        FileContent::Bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec()),
    )
}

fn line(
    id: &str,
    description: &str,
    quantity: &str,
    unit_price: &str,
    category: VatCategory,
    rate: &str,
) -> Line {
    Line {
        id: id.to_owned(),
        description: description.to_owned(),
        quantity: dec(quantity),
        unit_code: "C62".to_owned(),
        unit_price: dec(unit_price),
        vat_category: category,
        vat_rate: dec(rate),
    }
}

fn allowance(amount: &str, reason: &str, category: VatCategory, rate: &str) -> AllowanceCharge {
    AllowanceCharge {
        charge: false,
        amount: dec(amount),
        reason: reason.to_owned(),
        vat_category: category,
        vat_rate: dec(rate),
    }
}

fn charge(amount: &str, reason: &str, category: VatCategory, rate: &str) -> AllowanceCharge {
    AllowanceCharge {
        charge: true,
        ..allowance(amount, reason, category, rate)
    }
}

/// A plain A1 invoice: one standard-rated line, no project manager.
fn simple_a1() -> Invoice {
    Invoice {
        number: "F-2026-0042".to_owned(),
        issue_date: date(2026, 11, 30),
        due_date: date(2026, 12, 30),
        currency: "EUR".to_owned(),
        framework: "A1".to_owned(),
        market_number: "2026-FOU-007".to_owned(),
        commitment_number: None,
        buyer_service_code: None,
        seller: Seller {
            name: "ENTREPRISE BTP EXEMPLE".to_owned(),
            siret: SELLER_SIRET.to_owned(),
            vat_id: Some(SELLER_VAT.to_owned()),
            address: address("1 rue des Artisans", "Lyon", "69001"),
            iban: "FR76 3000 6000 0112 3456 7890 189".to_owned(),
            bic: Some("AGRIFRPP".to_owned()),
        },
        buyer: Buyer {
            name: "COMMUNE DE PARIS".to_owned(),
            siret: BUYER_SIRET.to_owned(),
            vat_id: None,
            address: address("Place de l'Hôtel de Ville", "Paris", "75004"),
        },
        project_manager: None,
        lines: vec![line(
            "1",
            "Fourniture de barrières",
            "12",
            "85.50",
            VatCategory::S,
            "20.00",
        )],
        allowances_charges: Vec::new(),
        prepaid_amount: Decimal::ZERO,
        vat_exemption_reason: None,
        note: None,
        document: pdf("facture-F-2026-0042.pdf"),
        attachments: Vec::new(),
    }
}

/// A monthly works statement (A4) with the project manager, EJ, service code, attachments.
fn works_a4() -> Invoice {
    Invoice {
        number: "SIT-2026-014-03".to_owned(),
        framework: "A4".to_owned(),
        market_number: "2026-TRV-014".to_owned(),
        commitment_number: Some("1300012399".to_owned()),
        buyer_service_code: Some("DIRINFRA".to_owned()),
        project_manager: Some(ProjectManager {
            siret: MOE_SIRET.to_owned(),
            service_code: Some("MOE_TRAVAUX".to_owned()),
        }),
        lines: vec![
            line(
                "1",
                "Lot 2 gros œuvre, avancement novembre",
                "1",
                "12500.00",
                VatCategory::S,
                "20.00",
            ),
            line(
                "2",
                "Lot 3 charpente, avancement novembre",
                "0.35",
                "18000",
                VatCategory::S,
                "20",
            ),
        ],
        note: Some("Situation n°3".to_owned()),
        document: pdf("situation-03.pdf"),
        attachments: vec![
            EmbeddedFile::new(
                "avancement.csv",
                FileContent::Base64("bG90O2F2YW5jZW1lbnQKMjs0MCUK".to_owned()),
            ),
            EmbeddedFile::new(
                "photo-chantier.png",
                FileContent::Bytes(vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]),
            ),
        ],
        ..simple_a1()
    }
}

/// A subcontractor's monthly statement (A10) under reverse charge.
fn reverse_charge() -> Invoice {
    Invoice {
        number: "ST-2026-11".to_owned(),
        framework: "A10".to_owned(),
        lines: vec![
            line(
                "1",
                "Plomberie, avancement novembre",
                "1",
                "8400.00",
                VatCategory::AE,
                "0",
            ),
            line(
                "2",
                "Électricité, avancement novembre",
                "1",
                "3150.40",
                VatCategory::AE,
                "0",
            ),
        ],
        allowances_charges: vec![allowance(
            "150.00",
            "Retenue propreté chantier",
            VatCategory::AE,
            "0",
        )],
        vat_exemption_reason: Some("Autoliquidation - article 283-2 nonies du CGI".to_owned()),
        ..works_a4()
    }
}

fn two_vat_rates() -> Invoice {
    Invoice {
        lines: vec![
            line(
                "1",
                "Travaux de rénovation énergétique",
                "1",
                "9000.00",
                VatCategory::S,
                "5.5",
            ),
            line(
                "2",
                "Travaux d'amélioration",
                "1",
                "4000.00",
                VatCategory::S,
                "10",
            ),
            line(
                "3",
                "Fourniture hors travaux",
                "3",
                "333.33",
                VatCategory::S,
                "20",
            ),
        ],
        ..works_a4()
    }
}

fn allowances_and_charges() -> Invoice {
    Invoice {
        lines: vec![
            line("1", "Gros œuvre", "1", "12500.00", VatCategory::S, "20"),
            line(
                "2",
                "Travaux d'amélioration",
                "2",
                "1000.00",
                VatCategory::S,
                "10",
            ),
        ],
        allowances_charges: vec![
            allowance("625.00", "Remise commerciale 5 %", VatCategory::S, "20"),
            allowance("100.00", "Remise sur amélioration", VatCategory::S, "10"),
            charge("240.00", "Frais de mise en décharge", VatCategory::S, "20"),
            charge("35.50", "Frais de transport", VatCategory::S, "10"),
        ],
        ..works_a4()
    }
}

fn prepaid() -> Invoice {
    Invoice {
        prepaid_amount: dec("5000.00"),
        note: Some("Avance forfaitaire déduite".to_owned()),
        ..works_a4()
    }
}

fn two_hundred_lines() -> Invoice {
    let lines = (1..=200)
        .map(|i| Line {
            id: i.to_string(),
            description: format!("Poste {i} : maçonnerie, avancement du mois"),
            // Three-decimal quantities and four-decimal prices: every line net is rounded.
            quantity: Decimal::new(1_000 + i * 37, 3),
            unit_code: if i % 3 == 0 { "MTK" } else { "HUR" }.to_owned(),
            unit_price: Decimal::new(45_0000 + i * 1_234, 4),
            vat_category: VatCategory::S,
            vat_rate: if i % 4 == 0 { dec("10") } else { dec("20") },
        })
        .collect();
    Invoice {
        lines,
        ..works_a4()
    }
}

/// `& < > " '`, accents, œ and € in every free-text field.
fn special_characters() -> Invoice {
    const T: &str = "& < > \" ' é œ €";
    let mut inv = works_a4();
    inv.note = Some(format!("Note {T}"));
    inv.market_number = format!("M<{T}>");
    inv.commitment_number = Some(format!("EJ&{T}"));
    inv.buyer_service_code = Some(format!("SVC {T}"));
    inv.seller.name = format!("Société Œuvre & Fils <{T}>");
    inv.seller.address = Address {
        line1: format!("1 rue \"{T}\""),
        line2: Some(format!("Bâtiment 'A' {T}")),
        city: format!("Saint-Étienne {T}"),
        postal_code: "42000".to_owned(),
        country: "FR".to_owned(),
    };
    inv.buyer.name = format!("Communauté d'agglomération {T}");
    inv.buyer.address.line1 = format!("Hôtel de ville {T}");
    inv.buyer.address.city = format!("Cœur-de-ville {T}");
    inv.project_manager = Some(ProjectManager {
        siret: MOE_SIRET.to_owned(),
        service_code: Some(format!("MOE {T}")),
    });
    inv.lines = vec![
        line(
            "1 & <a>",
            &format!("Ligne {T}"),
            "1",
            "1000",
            VatCategory::S,
            "20",
        ),
        line(
            "2 \"'\"",
            &format!("Peinture œuvre {T}"),
            "2.5",
            "99.99",
            VatCategory::S,
            "20",
        ),
    ];
    inv.allowances_charges = vec![
        allowance("10", &format!("Remise {T}"), VatCategory::S, "20"),
        charge("5", &format!("Frais {T}"), VatCategory::S, "20"),
    ];
    inv.document = pdf("Relevé & métré œuvre €.pdf");
    inv.attachments = vec![EmbeddedFile::new(
        "Détail <lot> 'A'.csv",
        FileContent::Bytes(format!("poste;libellé\n1;{T}\n").into_bytes()),
    )];
    inv
}

fn exempt() -> Invoice {
    Invoice {
        lines: vec![line(
            "1",
            "Formation sécurité chantier",
            "2",
            "750",
            VatCategory::E,
            "0",
        )],
        vat_exemption_reason: Some("Exonération de TVA, article 261-4-4° a du CGI".to_owned()),
        ..simple_a1()
    }
}

fn zero_rated() -> Invoice {
    Invoice {
        lines: vec![line(
            "1",
            "Livraison intracommunautaire de matériaux",
            "1",
            "2300",
            VatCategory::Z,
            "0",
        )],
        ..simple_a1()
    }
}

fn out_of_scope() -> Invoice {
    Invoice {
        lines: vec![line(
            "1",
            "Indemnité de résiliation",
            "1",
            "1800",
            VatCategory::O,
            "0",
        )],
        vat_exemption_reason: Some("TVA non applicable, indemnité hors champ".to_owned()),
        ..simple_a1()
    }
}

fn mixed_categories() -> Invoice {
    Invoice {
        lines: vec![
            line("1", "Travaux propres", "1", "5000", VatCategory::S, "20"),
            line(
                "2",
                "Travaux sous-traités",
                "1",
                "3000",
                VatCategory::AE,
                "0",
            ),
            line("3", "Formation", "1", "400", VatCategory::E, "0"),
            line("4", "Matériaux export", "1", "250", VatCategory::Z, "0"),
        ],
        vat_exemption_reason: Some(
            "Autoliquidation ; exonération article 261-4-4° a du CGI".to_owned(),
        ),
        ..works_a4()
    }
}

fn matrix() -> Vec<(&'static str, Invoice)> {
    vec![
        ("simple_a1", simple_a1()),
        ("works_a4_project_manager", works_a4()),
        ("reverse_charge_ae", reverse_charge()),
        ("two_vat_rates", two_vat_rates()),
        ("allowances_and_charges", allowances_and_charges()),
        ("prepaid_amount", prepaid()),
        ("two_hundred_lines", two_hundred_lines()),
        ("special_characters", special_characters()),
        ("exempt_e", exempt()),
        ("zero_rated_z", zero_rated()),
        ("out_of_scope_o", out_of_scope()),
        ("mixed_s_ae_e_z", mixed_categories()),
    ]
}

// ---------------------------------------------------------------------------------------
// Totals and rounding
// ---------------------------------------------------------------------------------------

#[test]
fn ubl_round2_is_half_away_from_zero() {
    assert_eq!(round2(dec("0.125")), dec("0.13"));
    assert_eq!(round2(dec("-0.125")), dec("-0.13"));
    assert_eq!(round2(dec("0.135")), dec("0.14"));
    assert_eq!(round2(dec("2.5049")), dec("2.50"));
}

#[test]
fn ubl_line_net_is_quantity_times_price_rounded() {
    let inv = Invoice {
        lines: vec![
            line("1", "a", "3", "33.333", VatCategory::S, "20"),
            line("2", "b", "0.35", "18000", VatCategory::S, "20"),
            line("3", "c", "1", "0.125", VatCategory::S, "20"),
            line("4", "d", "-2", "10.005", VatCategory::S, "20"),
        ],
        ..simple_a1()
    };
    let t = Totals::compute(&inv).expect("totals");
    assert_eq!(
        t.line_nets,
        vec![dec("100.00"), dec("6300.00"), dec("0.13"), dec("-20.01")]
    );
    assert_eq!(t.line_total, dec("6380.12"));
    assert!(t.verify(&inv).is_empty());
}

#[test]
fn ubl_vat_is_rounded_per_breakdown_not_per_line() {
    // Per line: 3 × round(0.006) = 0.03; per breakdown: round(0.018) = 0.02 (EN 16931).
    let inv = Invoice {
        lines: (1..=3)
            .map(|i| line(&i.to_string(), "x", "1", "0.03", VatCategory::S, "20"))
            .collect(),
        ..simple_a1()
    };
    let t = Totals::compute(&inv).expect("totals");
    assert_eq!(t.vat_breakdown.len(), 1);
    assert_eq!(t.vat_breakdown[0].taxable, dec("0.09"));
    assert_eq!(t.vat_breakdown[0].vat, dec("0.02"));
    assert_eq!(t.vat_total, dec("0.02"));
    assert_eq!(t.tax_inclusive, dec("0.11"));
}

#[test]
fn ubl_breakdown_groups_equal_rates_and_sorts() {
    let inv = Invoice {
        lines: vec![
            line("1", "a", "1", "100", VatCategory::S, "20.00"),
            line("2", "b", "1", "100", VatCategory::S, "5.5"),
            line("3", "c", "1", "100", VatCategory::S, "20"),
            line("4", "d", "1", "50", VatCategory::AE, "0"),
            line("5", "e", "1", "50", VatCategory::AE, "0.00"),
        ],
        ..simple_a1()
    };
    let t = Totals::compute(&inv).expect("totals");
    let keys: Vec<_> = t
        .vat_breakdown
        .iter()
        .map(|b| (b.category, b.rate, b.taxable, b.vat))
        .collect();
    assert_eq!(
        keys,
        vec![
            (VatCategory::S, dec("5.5"), dec("100"), dec("5.50")),
            (VatCategory::S, dec("20"), dec("200"), dec("40.00")),
            (VatCategory::AE, Decimal::ZERO, dec("100"), Decimal::ZERO),
        ]
    );
}

#[test]
fn ubl_allowances_charges_prepaid_and_payable() {
    let mut inv = allowances_and_charges();
    inv.prepaid_amount = dec("1000");
    let t = Totals::compute(&inv).expect("totals");
    assert_eq!(t.line_total, dec("14500.00"));
    assert_eq!(t.allowance_total, dec("725.00"));
    assert_eq!(t.charge_total, dec("275.50"));
    assert_eq!(t.tax_exclusive, dec("14050.50"));
    // 20 %: 12500 - 625 + 240 = 12115 → 2423.00; 10 %: 2000 - 100 + 35.50 = 1935.50 → 193.55.
    let b: Vec<_> = t
        .vat_breakdown
        .iter()
        .map(|b| (b.rate, b.taxable, b.vat))
        .collect();
    assert_eq!(
        b,
        vec![
            (dec("10"), dec("1935.50"), dec("193.55")),
            (dec("20"), dec("12115.00"), dec("2423.00"))
        ]
    );
    assert_eq!(t.vat_total, dec("2616.55"));
    assert_eq!(t.tax_inclusive, dec("16667.05"));
    assert_eq!(t.prepaid, dec("1000"));
    assert_eq!(t.payable, dec("15667.05"));
    assert!(t.verify(&inv).is_empty());
}

#[test]
fn ubl_verify_catches_inconsistent_totals() {
    let inv = allowances_and_charges();
    let mut t = Totals::compute(&inv).expect("totals");
    t.payable += dec("0.01");
    t.vat_breakdown[0].vat += dec("0.01");
    let broken = t.verify(&inv);
    assert!(broken.contains(&"BR-CO-16"), "{broken:?}");
    assert!(broken.contains(&"BR-CO-14"), "{broken:?}");
    assert!(broken.contains(&"BR-CO-17"), "{broken:?}");
}

#[test]
fn ubl_overflow_is_an_error_not_a_panic() {
    let inv = Invoice {
        lines: vec![Line {
            quantity: Decimal::MAX,
            ..line("1", "a", "1", "10", VatCategory::S, "20")
        }],
        ..simple_a1()
    };
    assert!(Totals::compute(&inv).is_err());
    assert!(to_xml(&inv).is_err());
    let violations = check(&inv).expect_err("refused");
    assert!(
        violations.iter().any(|v| v.rule_id == "CPRO-DEC-01"),
        "{violations:?}"
    );
}

#[test]
fn ubl_contract_json_parts_deserialize() {
    // The transmission body's lines, allowances/charges, addresses and the market's
    // project manager read straight into the model (API contract, "Transmission").
    let l: Line = serde_json::from_str(
        r#"{"id": "1", "description": "Lot 2 gros œuvre", "quantity": "1", "unit": "C62",
            "unit_price": "12500.00", "vat_category": "AE", "vat_rate": "0"}"#,
    )
    .expect("line");
    assert_eq!(
        l,
        line(
            "1",
            "Lot 2 gros œuvre",
            "1",
            "12500.00",
            VatCategory::AE,
            "0"
        )
    );
    let ac: AllowanceCharge = serde_json::from_str(
        r#"{"charge": false, "amount": "625.00", "reason": "Remise", "vat_category": "S", "vat_rate": "20.00"}"#,
    )
    .expect("allowance");
    assert_eq!(ac, allowance("625.00", "Remise", VatCategory::S, "20.00"));
    let a: Address = serde_json::from_str(
        r#"{"line1": "1 rue des Artisans", "city": "Lyon", "postal_code": "69001", "country": "FR"}"#,
    )
    .expect("address");
    assert_eq!(a, address("1 rue des Artisans", "Lyon", "69001"));
    let pm: ProjectManager =
        serde_json::from_str(r#"{"siret": "44306184100047", "service_code": "MOE"}"#).expect("pm");
    assert_eq!(pm.service_code.as_deref(), Some("MOE"));
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

#[test]
fn ubl_text_is_escaped_and_invalid_characters_dropped() {
    let mut s = String::new();
    super::writer::push_text(&mut s, "a&b<c>\"d'e\u{1}f\tg\u{FFFE}é€");
    assert_eq!(s, "a&amp;b&lt;c&gt;&quot;d&apos;ef\tgé€");
}

#[test]
fn ubl_writer_carries_the_chorus_routing_data() {
    let xml = prepare(&works_a4(), &CheckOptions::default())
        .expect("valid")
        .xml;
    for needle in [
        "<cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>",
        "<cbc:ProfileID>A4</cbc:ProfileID>",
        "<cbc:ID>SIT-2026-014-03</cbc:ID>",
        "<cbc:IssueDate>2026-11-30</cbc:IssueDate>",
        "<cbc:DueDate>2026-12-30</cbc:DueDate>",
        "<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>",
        "<cbc:BuyerReference>DIRINFRA</cbc:BuyerReference>",
        "<cac:OrderReference><cbc:ID>1300012399</cbc:ID></cac:OrderReference>",
        "<cac:ContractDocumentReference><cbc:ID>2026-TRV-014</cbc:ID></cac:ContractDocumentReference>",
        "<cbc:ID schemeID=\"0009\">73282932000074</cbc:ID>",
        "<cbc:CompanyID schemeID=\"0009\">21750001600019</cbc:CompanyID>",
        "<cbc:CompanyID>FR44732829320</cbc:CompanyID>",
        "<cac:AgentParty><cac:PartyIdentification><cbc:ID schemeID=\"0009\">44306184100047</cbc:ID>",
        "<cac:Contact><cbc:ID>MOE_TRAVAUX</cbc:ID></cac:Contact></cac:AgentParty>",
        "<cbc:PaymentMeansCode>30</cbc:PaymentMeansCode>",
        "<cbc:ID>FR7630006000011234567890189</cbc:ID>",
        "<cac:FinancialInstitutionBranch><cbc:ID>AGRIFRPP</cbc:ID>",
        "mimeCode=\"application/pdf\" filename=\"situation-03.pdf\">JVBERi0x",
        "mimeCode=\"text/csv\" filename=\"avancement.csv\">bG90O2F2YW5jZW1lbnQKMjs0MCUK<",
        "<cbc:PayableAmount currencyID=\"EUR\">22560.00</cbc:PayableAmount>",
    ] {
        assert!(xml.contains(needle), "missing {needle}\n{xml}");
    }
    // The AgentParty closes the buyer's party, after its legal entity (schema order).
    let buyer = &xml[xml.find("<cac:AccountingCustomerParty>").expect("buyer")..];
    assert!(buyer.find("</cac:PartyLegalEntity>") < buyer.find("<cac:AgentParty>"));
}

#[test]
fn ubl_out_of_scope_invoice_carries_no_vat_identifier() {
    let xml = prepare(&out_of_scope(), &CheckOptions::default())
        .expect("valid")
        .xml;
    assert!(!xml.contains("<cac:PartyTaxScheme>"));
    assert!(xml.contains("<cbc:TaxExemptionReasonCode>VATEX-EU-O</cbc:TaxExemptionReasonCode>"));
    assert!(!xml.contains("<cbc:Percent>"));
}

#[test]
fn ubl_matrix_passes_the_pre_deposit_checks() {
    for (name, inv) in matrix() {
        if let Err(v) = check(&inv) {
            panic!("{name}: {v:#?}");
        }
    }
}

#[test]
fn ubl_two_hundred_lines_prepare_time() {
    // Debug build: only a guard against something quadratic. The release figure is in the
    // report (target ≤ 2 ms).
    let inv = two_hundred_lines();
    let started = std::time::Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        let prepared = prepare(&inv, &CheckOptions::default()).expect("valid");
        assert!(prepared.xml.len() > 100_000);
    }
    let each = started.elapsed() / rounds;
    eprintln!("prepare(200 lines), debug build: {each:?} per invoice");
    assert!(each < std::time::Duration::from_millis(200), "{each:?}");
}

// ---------------------------------------------------------------------------------------
// Refused before sending
// ---------------------------------------------------------------------------------------

fn refused_with(inv: &Invoice, rule: &str) -> Vec<RuleViolation> {
    refused_with_options(inv, &CheckOptions::default(), rule)
}

fn refused_with_options(inv: &Invoice, options: &CheckOptions, rule: &str) -> Vec<RuleViolation> {
    let violations = check_with(inv, options).expect_err("must be refused");
    assert!(
        violations.iter().any(|v| v.rule_id == rule),
        "expected {rule}, got {violations:#?}"
    );
    for v in &violations {
        assert!(!v.message_fr.is_empty());
    }
    assert!(prepare(inv, options).is_err());
    violations
}

#[test]
fn ubl_refuses_bad_invoice_numbers() {
    for number in ["SIT-2026-014-03-EXTRA", "SIT_2026/é", "F#12", "F.12"] {
        refused_with(
            &Invoice {
                number: number.to_owned(),
                ..works_a4()
            },
            "CPRO-NUM-01",
        );
    }
    refused_with(
        &Invoice {
            number: " ".to_owned(),
            ..works_a4()
        },
        "BR-02",
    );
    // 20 characters of the allowed set pass.
    assert!(
        check(&Invoice {
            number: "AZaz09 +_/-AZaz09 +-".to_owned(),
            ..works_a4()
        })
        .is_ok()
    );
}

#[test]
fn ubl_refuses_long_or_empty_references() {
    refused_with(
        &Invoice {
            commitment_number: Some("E".repeat(51)),
            ..works_a4()
        },
        "CPRO-EJ-01",
    );
    refused_with(
        &Invoice {
            commitment_number: Some(String::new()),
            ..works_a4()
        },
        "CPRO-EJ-01",
    );
    assert!(
        check(&Invoice {
            commitment_number: Some("E".repeat(50)),
            ..works_a4()
        })
        .is_ok()
    );
    refused_with(
        &Invoice {
            market_number: String::new(),
            ..works_a4()
        },
        "CPRO-MARCHE-01",
    );
    refused_with(
        &Invoice {
            market_number: "M".repeat(51),
            ..works_a4()
        },
        "CPRO-MARCHE-01",
    );
    refused_with(
        &Invoice {
            buyer_service_code: Some("FACTURES_PUBLIQUES".to_owned()),
            ..works_a4()
        },
        "CPRO-SERVICE-02",
    );
}

#[test]
fn ubl_refuses_bad_sirets() {
    let mut inv = works_a4();
    inv.seller.siret = "7328293200007".to_owned();
    let v = refused_with(&inv, "CPRO-SIRET-01");
    assert!(v[0].message_fr.contains("vendeur"), "{v:?}");
    let mut inv = works_a4();
    inv.buyer.siret = "21750001600018".to_owned(); // wrong Luhn key
    refused_with(&inv, "CPRO-SIRET-02");
    // The sandbox's fictitious SIRETs fail the key: shape only there.
    let sandbox = CheckOptions {
        siret_check: SiretCheck::ShapeOnly,
        ..CheckOptions::default()
    };
    assert!(check_with(&inv, &sandbox).is_ok());
    let mut inv = works_a4();
    inv.project_manager = Some(ProjectManager {
        siret: "443061841".to_owned(),
        service_code: None,
    });
    refused_with(&inv, "CPRO-MOE-02");
}

#[test]
fn ubl_refuses_frameworks() {
    refused_with(
        &Invoice {
            framework: "A3".to_owned(),
            ..works_a4()
        },
        "CPRO-CADRE-01",
    );
    refused_with(
        &Invoice {
            framework: "M1".to_owned(),
            ..works_a4()
        },
        "CPRO-CADRE-01",
    );
    refused_with(
        &Invoice {
            project_manager: None,
            ..works_a4()
        },
        "CPRO-MOE-01",
    );
    assert!(
        check(&Invoice {
            project_manager: None,
            ..simple_a1()
        })
        .is_ok()
    );
}

#[test]
fn ubl_refuses_missing_or_bad_payment_account() {
    let mut inv = works_a4();
    inv.seller.iban = "  ".to_owned();
    refused_with(&inv, "BR-61");
    inv.seller.iban = "FR7630006000011234567890188".to_owned();
    refused_with(&inv, "CPRO-IBAN-01");
    let mut inv = works_a4();
    inv.seller.bic = Some("AGRI FRPP".to_owned());
    refused_with(&inv, "CPRO-BIC-01");
}

#[test]
fn ubl_refuses_missing_or_non_pdf_document() {
    refused_with(
        &Invoice {
            document: pdf("situation.pdf").with_content(Vec::new()),
            ..works_a4()
        },
        "CPRO-PDF-01",
    );
    refused_with(
        &Invoice {
            document: EmbeddedFile::new("situation.png", FileContent::Bytes(vec![1, 2, 3])),
            ..works_a4()
        },
        "CPRO-PDF-02",
    );
    // Named .pdf, but not a PDF inside (raw bytes, and base64 as the API receives it).
    refused_with(
        &Invoice {
            document: pdf("situation.pdf").with_content(b"PK\x03\x04 not a pdf".to_vec()),
            ..works_a4()
        },
        "CPRO-PDF-03",
    );
    refused_with(
        &Invoice {
            document: EmbeddedFile::new("situation.pdf", FileContent::Base64("UEsDBA==".into())),
            ..works_a4()
        },
        "CPRO-PDF-03",
    );
}

#[test]
fn ubl_refuses_files_chorus_pro_or_en16931_would_not_take() {
    let with_attachment = |f: EmbeddedFile| Invoice {
        attachments: vec![f],
        ..works_a4()
    };
    // Over 10 MB decoded.
    refused_with(
        &with_attachment(EmbeddedFile::new(
            "gros.pdf",
            FileContent::Bytes(vec![0; 10_000_001]),
        )),
        "CPRO-PJ-01",
    );
    // 51 characters, extension included.
    let long = format!("{}.pdf", "n".repeat(47));
    refused_with(
        &with_attachment(EmbeddedFile::new(long, FileContent::Bytes(vec![1]))),
        "CPRO-PJ-02",
    );
    // No extension; an extension Chorus Pro does not take.
    refused_with(
        &with_attachment(EmbeddedFile::new("annexe", FileContent::Bytes(vec![1]))),
        "CPRO-PJ-03",
    );
    refused_with(
        &with_attachment(EmbeddedFile::new("script.exe", FileContent::Bytes(vec![1]))),
        "CPRO-PJ-03",
    );
    // Chorus Pro takes .docx, but EN 16931 does not let an UBL invoice embed it.
    refused_with(
        &with_attachment(EmbeddedFile::new("cctp.docx", FileContent::Bytes(vec![1]))),
        "BR-CL-24",
    );
    // Not base64; empty.
    refused_with(
        &with_attachment(EmbeddedFile::new(
            "a.csv",
            FileContent::Base64("pas du base64 !".to_owned()),
        )),
        "CPRO-PJ-04",
    );
    refused_with(
        &with_attachment(EmbeddedFile::new("a.csv", FileContent::Bytes(Vec::new()))),
        "CPRO-PJ-04",
    );
    // Declared type that contradicts the extension.
    refused_with(
        &with_attachment(EmbeddedFile {
            filename: "plan.png".to_owned(),
            mime_code: "application/pdf".to_owned(),
            content: FileContent::Bytes(vec![1]),
        }),
        "CPRO-PJ-07",
    );
    // Two files with one name.
    refused_with(&with_attachment(pdf("situation-03.pdf")), "CPRO-PJ-06");
}

#[test]
fn ubl_refuses_a_total_over_the_configured_limit() {
    let inv = Invoice {
        attachments: (0..3)
            .map(|i| {
                EmbeddedFile::new(
                    format!("plan-{i}.pdf"),
                    FileContent::Bytes(vec![0; 400_000]),
                )
            })
            .collect(),
        ..works_a4()
    };
    assert!(check(&inv).is_ok());
    let small = CheckOptions {
        max_total_file_bytes: 1_000_000,
        ..CheckOptions::default()
    };
    refused_with_options(&inv, &small, "CPRO-PJ-05");
}

#[test]
fn ubl_refuses_vat_category_mistakes() {
    let with_lines = |lines: Vec<Line>, reason: Option<&str>| Invoice {
        lines,
        vat_exemption_reason: reason.map(str::to_owned),
        ..works_a4()
    };
    refused_with(
        &with_lines(vec![line("1", "a", "1", "10", VatCategory::S, "0")], None),
        "BR-S-05",
    );
    refused_with(
        &with_lines(vec![line("1", "a", "1", "10", VatCategory::Z, "20")], None),
        "BR-Z-05",
    );
    refused_with(
        &with_lines(
            vec![line("1", "a", "1", "10", VatCategory::E, "5.5")],
            Some("x"),
        ),
        "BR-E-05",
    );
    refused_with(
        &with_lines(
            vec![line("1", "a", "1", "10", VatCategory::AE, "20")],
            Some("x"),
        ),
        "BR-AE-05",
    );
    refused_with(
        &with_lines(
            vec![line("1", "a", "1", "10", VatCategory::O, "20")],
            Some("x"),
        ),
        "BR-O-05",
    );
    refused_with(
        &with_lines(vec![line("1", "a", "1", "10", VatCategory::S, "120")], None),
        "CPRO-TAUX-01",
    );
    refused_with(
        &with_lines(
            vec![line("1", "a", "1", "10", VatCategory::S, "5.555")],
            None,
        ),
        "CPRO-TAUX-01",
    );
    // Reverse charge, exemption, out of scope: the reason is required.
    refused_with(
        &with_lines(vec![line("1", "a", "1", "10", VatCategory::AE, "0")], None),
        "BR-AE-10",
    );
    refused_with(
        &with_lines(
            vec![line("1", "a", "1", "10", VatCategory::E, "0")],
            Some(" "),
        ),
        "BR-E-10",
    );
    refused_with(
        &with_lines(vec![line("1", "a", "1", "10", VatCategory::O, "0")], None),
        "BR-O-10",
    );
    // Out of scope cannot be mixed.
    refused_with(
        &with_lines(
            vec![
                line("1", "a", "1", "10", VatCategory::O, "0"),
                line("2", "b", "1", "10", VatCategory::S, "20"),
            ],
            Some("x"),
        ),
        "BR-O-11",
    );
    // Allowance and charge rates follow the same rules.
    let mut inv = works_a4();
    inv.allowances_charges = vec![allowance("10", "r", VatCategory::S, "0")];
    refused_with(&inv, "BR-S-06");
    inv.allowances_charges = vec![charge("10", "r", VatCategory::AE, "20")];
    inv.vat_exemption_reason = Some("Autoliquidation".to_owned());
    refused_with(&inv, "BR-AE-07");
}

#[test]
fn ubl_refuses_missing_vat_identifiers() {
    let mut inv = works_a4();
    inv.seller.vat_id = None;
    refused_with(&inv, "BR-S-02");
    let mut inv = reverse_charge();
    inv.seller.vat_id = Some(String::new());
    refused_with(&inv, "BR-AE-02");
    let mut inv = exempt();
    inv.seller.vat_id = None;
    refused_with(&inv, "BR-E-02");
    // Out of scope needs none (and gets none written).
    let mut inv = out_of_scope();
    inv.seller.vat_id = None;
    assert!(check(&inv).is_ok());
    // A public buyer without VAT id is fine under reverse charge (its SIRET is BT-47).
    assert!(reverse_charge().buyer.vat_id.is_none());
    let mut inv = works_a4();
    inv.seller.vat_id = Some("XX44732829320".to_owned());
    refused_with(&inv, "BR-CO-09");
    inv.seller.vat_id = Some("FR45732829320".to_owned());
    refused_with(&inv, "CPRO-TVA-01");
    inv.seller.vat_id = Some("FR44999999999".to_owned());
    refused_with(&inv, "CPRO-TVA-01");
    inv.seller.vat_id = Some("FR 44 732829320".to_owned());
    refused_with(&inv, "CPRO-TVA-01");
}

#[test]
fn ubl_refuses_line_and_amount_mistakes() {
    refused_with(
        &Invoice {
            lines: Vec::new(),
            ..works_a4()
        },
        "BR-16",
    );
    let bad_line = |l: Line| Invoice {
        lines: vec![l],
        ..works_a4()
    };
    refused_with(
        &bad_line(line(" ", "a", "1", "10", VatCategory::S, "20")),
        "BR-21",
    );
    refused_with(
        &bad_line(line("1", "", "1", "10", VatCategory::S, "20")),
        "BR-25",
    );
    refused_with(
        &bad_line(line("1", "a", "1", "-10", VatCategory::S, "20")),
        "BR-27",
    );
    refused_with(
        &bad_line(line("1", "a", "1.1234567", "10", VatCategory::S, "20")),
        "CPRO-DEC-01",
    );
    refused_with(
        &bad_line(Line {
            unit_code: "heures".to_owned(),
            ..line("1", "a", "1", "10", VatCategory::S, "20")
        }),
        "BR-CL-23",
    );
    refused_with(
        &bad_line(line("1", "a", "-1", "10", VatCategory::S, "20")),
        "CPRO-MONTANT-01",
    );
    refused_with(
        &Invoice {
            lines: vec![
                line("1", "a", "1", "10", VatCategory::S, "20"),
                line("1", "b", "1", "10", VatCategory::S, "20"),
            ],
            ..works_a4()
        },
        "CPRO-LIGNE-01",
    );
    let with_ac = |ac: AllowanceCharge| Invoice {
        allowances_charges: vec![ac],
        ..works_a4()
    };
    refused_with(
        &with_ac(allowance("10", " ", VatCategory::S, "20")),
        "BR-33",
    );
    refused_with(&with_ac(charge("10", "", VatCategory::S, "20")), "BR-38");
    refused_with(
        &with_ac(allowance("-10", "r", VatCategory::S, "20")),
        "CPRO-REMISE-01",
    );
    refused_with(
        &with_ac(allowance("10.001", "r", VatCategory::S, "20")),
        "BR-DEC-01",
    );
    refused_with(
        &with_ac(charge("10.001", "r", VatCategory::S, "20")),
        "BR-DEC-05",
    );
    refused_with(
        &with_ac(allowance("10", "r", VatCategory::S, "10")),
        "CPRO-REMISE-02",
    );
    refused_with(
        &Invoice {
            prepaid_amount: dec("-1"),
            ..works_a4()
        },
        "CPRO-MONTANT-02",
    );
    refused_with(
        &Invoice {
            prepaid_amount: dec("1.001"),
            ..works_a4()
        },
        "BR-DEC-16",
    );
    refused_with(
        &Invoice {
            prepaid_amount: dec("999999"),
            ..works_a4()
        },
        "CPRO-MONTANT-02",
    );
}

#[test]
fn ubl_refuses_dates_codes_and_control_characters() {
    refused_with(
        &Invoice {
            due_date: date(2026, 11, 29),
            ..works_a4()
        },
        "CPRO-DATE-01",
    );
    let today = CheckOptions {
        today: Some(date(2026, 11, 29)),
        ..CheckOptions::default()
    };
    refused_with_options(&works_a4(), &today, "CPRO-DATE-02");
    refused_with(
        &Invoice {
            currency: "EURO".to_owned(),
            ..works_a4()
        },
        "BR-CL-04",
    );
    let mut inv = works_a4();
    inv.buyer.address.country = "France".to_owned();
    refused_with(&inv, "BR-CL-14");
    inv.buyer.address.country = String::new();
    refused_with(&inv, "BR-11");
    let mut inv = works_a4();
    inv.seller.name = "ENTREPRISE\u{7} BTP".to_owned();
    refused_with(&inv, "CPRO-TEXT-01");
    let mut inv = works_a4();
    inv.seller.name = " ".to_owned();
    refused_with(&inv, "BR-06");
    inv.buyer.name = String::new();
    refused_with(&inv, "BR-07");
}

#[test]
fn ubl_reports_every_violation_at_once() {
    let mut inv = works_a4();
    inv.number = "NUMÉRO TROP LONG POUR CHORUS".to_owned();
    inv.seller.iban = String::new();
    inv.project_manager = None;
    let rules: Vec<_> = check(&inv)
        .expect_err("refused")
        .into_iter()
        .map(|v| v.rule_id)
        .collect();
    assert_eq!(rules, vec!["CPRO-NUM-01", "CPRO-MOE-01", "BR-61"]);
}

impl EmbeddedFile {
    fn with_content(self, bytes: Vec<u8>) -> Self {
        EmbeddedFile {
            content: FileContent::Bytes(bytes),
            ..self
        }
    }
}

// ---------------------------------------------------------------------------------------
// The official EN 16931 validator
// ---------------------------------------------------------------------------------------

struct ValidatorCommand {
    python: PathBuf,
    script: PathBuf,
    artefacts: Option<PathBuf>,
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Why the validator cannot run: its files are not beside the clone (skipped outside CI), or
/// they are but cannot be used (a failure everywhere: "when found, it runs").
enum ValidatorMissing {
    NotFound(String),
    Unusable(String),
}

/// Finds the validator and a Python that can run it, or says exactly what is missing.
fn locate_validator() -> Result<ValidatorCommand, ValidatorMissing> {
    let root = workspace_root();
    let (script, artefacts) = match std::env::var_os("EN16931_ARTEFACTS") {
        // Either the validation folder (with the script) or its `en16931-ubl` data folder.
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.join("ubl_validate.py").is_file() {
                (dir.join("ubl_validate.py"), None)
            } else if dir.join("xslt/EN16931-UBL-validation.xslt").is_file() {
                let script = dir
                    .parent()
                    .map(|p| p.join("ubl_validate.py"))
                    .filter(|p| p.is_file())
                    .unwrap_or_else(|| root.join("../shared/validation/ubl_validate.py"));
                (script, Some(dir))
            } else {
                return Err(ValidatorMissing::Unusable(format!(
                    "EN16931_ARTEFACTS={} holds neither ubl_validate.py nor xslt/EN16931-UBL-validation.xslt",
                    dir.display()
                )));
            }
        }
        None => (root.join("../shared/validation/ubl_validate.py"), None),
    };
    if !script.is_file() {
        return Err(ValidatorMissing::NotFound(format!(
            "not found at {} (set EN16931_ARTEFACTS to the validation folder)",
            script.display()
        )));
    }
    let venv = root.join(".venv/bin/python");
    let python = if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    };
    let probe = Command::new(&python)
        .args(["-c", "import saxonche, lxml"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(ValidatorMissing::Unusable(format!(
                "{} cannot import saxonche/lxml ({}): run `{} -m pip install saxonche==13.1.1 lxml==6.1.3` \
                 (or `make venv`, tests/requirements.txt lists them)",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim(),
                python.display()
            )));
        }
        Err(e) => {
            return Err(ValidatorMissing::Unusable(format!(
                "cannot run {}: {e}",
                python.display()
            )));
        }
    }
    Ok(ValidatorCommand {
        python,
        script,
        artefacts,
    })
}

/// A scratch folder removed when the test ends, pass or fail; kept (and named) when
/// `UBL_KEEP_MATRIX=1`, to read the invoices or run the validator by hand.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::env::var("UBL_KEEP_MATRIX").as_deref() == Ok("1") {
            eprintln!("matrix kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct ValidatorReport {
    rules: String,
    files: Vec<ValidatedFile>,
}

#[derive(Debug, serde::Deserialize)]
struct ValidatedFile {
    file: String,
    fatal: u32,
    warnings: u32,
    findings: Vec<Finding>,
}

#[derive(Debug, serde::Deserialize)]
struct Finding {
    flag: String,
    rule: String,
    message: String,
    location: String,
}

#[test]
fn ubl_matrix_passes_the_official_en16931_validator() {
    // A lone clone has no validator beside it: skipped, and said so in `make test`'s
    // summary; CI always has it, so there a missing validator fails. A validator that is
    // there but cannot run (no saxonche/lxml, a wrong EN16931_ARTEFACTS) fails everywhere.
    let validator = match locate_validator() {
        Ok(v) => v,
        Err(ValidatorMissing::NotFound(missing))
            if std::env::var("CI").as_deref() != Ok("true") =>
        {
            eprintln!("EN 16931 official rules: SKIPPED ({missing})");
            report_en16931(&format!("SKIPPED ({missing})"));
            return;
        }
        Err(ValidatorMissing::NotFound(missing)) => {
            panic!("{missing} (CI=true: the validator must run)")
        }
        Err(ValidatorMissing::Unusable(why)) => {
            panic!("EN 16931 validator found but unusable: {why}")
        }
    };

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir =
        ScratchDir(std::env::temp_dir().join(format!("ubl-matrix-{}-{nanos}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("scratch dir");

    let mut files = Vec::new();
    for (name, inv) in matrix() {
        let prepared =
            prepare(&inv, &CheckOptions::default()).unwrap_or_else(|v| panic!("{name}: {v:#?}"));
        let path = dir.0.join(format!("{name}.xml"));
        std::fs::write(&path, prepared.xml.as_bytes()).expect("write xml");
        files.push((name, path));
    }
    // Proof that the harness can fail: the same invoice with a wrong amount due.
    let tampered = prepare(&works_a4(), &CheckOptions::default())
        .expect("valid")
        .xml
        .replace(
            ">22560.00</cbc:PayableAmount>",
            ">22560.01</cbc:PayableAmount>",
        );
    let tampered_path = dir.0.join("tampered_payable.xml");
    std::fs::write(&tampered_path, tampered).expect("write xml");

    // One run for all files: the CEN stylesheet is compiled once.
    let mut cmd = Command::new(&validator.python);
    cmd.arg(&validator.script).arg("--json");
    if let Some(artefacts) = &validator.artefacts {
        cmd.arg("--artefacts").arg(artefacts);
    }
    cmd.args(files.iter().map(|(_, p)| p)).arg(&tampered_path);
    let started = std::time::Instant::now();
    let out = cmd.output().expect("run the validator");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "validator failed to run ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: ValidatorReport = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "unreadable validator output ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    eprintln!(
        "{} — {} files in {:?}",
        report.rules,
        report.files.len(),
        started.elapsed()
    );

    let mut failures = Vec::new();
    for (name, path) in &files {
        let result = report
            .files
            .iter()
            .find(|f| Path::new(&f.file) == path.as_path())
            .unwrap_or_else(|| panic!("{name}: not in the validator report"));
        let mut warning_rules: Vec<&str> = result
            .findings
            .iter()
            .filter(|f| f.flag != "fatal")
            .map(|f| f.rule.as_str())
            .collect();
        warning_rules.sort_unstable();
        warning_rules.dedup();
        eprintln!(
            "  {name:<26} fatal {}  warnings {} {:?}",
            result.fatal, result.warnings, warning_rules
        );
        for f in result.findings.iter().filter(|f| f.flag == "fatal") {
            failures.push(format!(
                "{name}: [{}] {} at {}",
                f.rule, f.message, f.location
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "fatal EN 16931 findings:\n{}",
        failures.join("\n")
    );

    let tampered = report
        .files
        .iter()
        .find(|f| Path::new(&f.file) == tampered_path.as_path())
        .expect("tampered file in the report");
    assert!(
        tampered
            .findings
            .iter()
            .any(|f| f.flag == "fatal" && f.rule == "BR-CO-16"),
        "the validator must catch a wrong amount due: {:?}",
        tampered.findings
    );
    report_en16931(&format!("{} files, 0 fatal", files.len()));
}

/// The validator's outcome for `make test`'s summary (`EN16931_STATUS_FILE`, when set).
fn report_en16931(line: &str) {
    if let Some(path) = std::env::var_os("EN16931_STATUS_FILE") {
        let _ = std::fs::write(path, format!("EN 16931 official rules: {line}\n"));
    }
}
