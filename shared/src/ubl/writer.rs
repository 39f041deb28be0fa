//! The UBL 2.1 Invoice writer: one `String` with its capacity reserved up front, elements in
//! the order the OASIS schema sequences require, text escaped for XML 1.0.

use std::fmt::Write as _;

use base64::Engine as _;
use rust_decimal::Decimal;

use super::model::{
    Address, AllowanceCharge, EmbeddedFile, FileContent, Invoice, Line, ProjectManager, VatCategory,
};
use super::totals::{Totals, VatBreakdown, round2};

/// BT-24: plain EN 16931. Chorus Pro routes on BT-23 (`ProfileID`), not on this.
pub const CUSTOMIZATION_ID: &str = "urn:cen.eu:en16931:2017";
/// BT-3: commercial invoice (a *projet de décompte mensuel* is deposited as one too).
const INVOICE_TYPE_CODE: &str = "380";
/// BT-81: credit transfer, the payment means Chorus Pro requires in a flux.
const PAYMENT_MEANS_CREDIT_TRANSFER: &str = "30";
/// ISO 6523 ICD 0009: SIRET. Chorus Pro needs the 14-digit SIRET of every party; the CEN
/// rules (BR-CL-10/11) only accept ICD codes here, so the older Chorus Pro code `1` would fail.
const SCHEME_SIRET: &str = "0009";
/// Description of the main document, so a reader can tell it from the attachments.
const MAIN_DOCUMENT_DESCRIPTION: &str = "Facture (document principal)";

/// Writes the invoice. `totals` must come from `Totals::compute(invoice)`.
pub(crate) fn write_invoice(invoice: &Invoice, totals: &Totals) -> String {
    let mut out = String::with_capacity(estimated_len(invoice));
    let w = &mut out;
    let cur = invoice.currency.as_str();
    w.push_str(concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        "\n",
        r#"<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2""#,
        r#" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2""#,
        r#" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">"#,
        "\n"
    ));
    write_header(w, invoice);
    write_references(w, invoice);
    write_documents(w, invoice);
    let out_of_scope = is_out_of_scope(invoice);
    write_seller(w, invoice, out_of_scope);
    write_buyer(w, invoice, out_of_scope);
    write_payment_means(w, invoice);
    for ac in &invoice.allowances_charges {
        write_allowance_charge(w, ac, cur);
    }
    write_tax_total(w, invoice, totals);
    write_monetary_total(w, invoice, totals);
    for (line, net) in invoice.lines.iter().zip(&totals.line_nets) {
        write_line(w, line, *net, cur);
    }
    w.push_str("</Invoice>\n");
    out
}

/// BR-O-02…04: an invoice out of the scope of VAT may carry no VAT identifier at all.
fn is_out_of_scope(invoice: &Invoice) -> bool {
    invoice.vat_categories().any(|c| c == VatCategory::O)
}

/// BT-24, BT-23, BT-1, BT-2, BT-9, BT-3, BT-22, BT-5.
fn write_header(w: &mut String, invoice: &Invoice) {
    el(w, "cbc:CustomizationID", CUSTOMIZATION_ID);
    el(w, "cbc:ProfileID", &invoice.framework);
    el(w, "cbc:ID", &invoice.number);
    date_el(w, "cbc:IssueDate", invoice.issue_date);
    date_el(w, "cbc:DueDate", invoice.due_date);
    el(w, "cbc:InvoiceTypeCode", INVOICE_TYPE_CODE);
    if let Some(note) = non_blank(&invoice.note) {
        el(w, "cbc:Note", note);
    }
    el(w, "cbc:DocumentCurrencyCode", invoice.currency.as_str());
}

/// BT-10 buyer reference (service code), BT-13 order (commitment), BT-12 contract (market).
fn write_references(w: &mut String, invoice: &Invoice) {
    if let Some(service) = non_blank(&invoice.buyer_service_code) {
        el(w, "cbc:BuyerReference", service);
    }
    if let Some(ej) = non_blank(&invoice.commitment_number) {
        w.push_str("<cac:OrderReference>");
        el(w, "cbc:ID", ej);
        w.push_str("</cac:OrderReference>\n");
    }
    w.push_str("<cac:ContractDocumentReference>");
    el(w, "cbc:ID", &invoice.market_number);
    w.push_str("</cac:ContractDocumentReference>\n");
}

/// BG-24: the main document first, then the attachments.
fn write_documents(w: &mut String, invoice: &Invoice) {
    write_embedded(w, &invoice.document, Some(MAIN_DOCUMENT_DESCRIPTION));
    for file in &invoice.attachments {
        write_embedded(w, file, None);
    }
}

/// BG-4 seller.
fn write_seller(w: &mut String, invoice: &Invoice, out_of_scope: bool) {
    w.push_str("<cac:AccountingSupplierParty><cac:Party>\n");
    siret_identification(w, &invoice.seller.siret);
    write_address(w, &invoice.seller.address);
    if !out_of_scope && let Some(vat) = non_blank(&invoice.seller.vat_id) {
        write_vat_id(w, vat);
    }
    write_legal_entity(w, &invoice.seller.name, &invoice.seller.siret);
    w.push_str("</cac:Party></cac:AccountingSupplierParty>\n");
}

/// BG-7 buyer: the public body Chorus Pro delivers to, even on a works statement.
fn write_buyer(w: &mut String, invoice: &Invoice, out_of_scope: bool) {
    w.push_str("<cac:AccountingCustomerParty><cac:Party>\n");
    siret_identification(w, &invoice.buyer.siret);
    write_address(w, &invoice.buyer.address);
    if !out_of_scope && let Some(vat) = non_blank(&invoice.buyer.vat_id) {
        write_vat_id(w, vat);
    }
    // BT-47: the SIRET again, so that reverse charge holds without a buyer VAT id (BR-AE-02).
    write_legal_entity(w, &invoice.buyer.name, &invoice.buyer.siret);
    if let Some(pm) = &invoice.project_manager {
        write_project_manager(w, pm);
    }
    w.push_str("</cac:Party></cac:AccountingCustomerParty>\n");
}

/// BG-16/BG-17 payment instructions.
fn write_payment_means(w: &mut String, invoice: &Invoice) {
    w.push_str("<cac:PaymentMeans>");
    el(w, "cbc:PaymentMeansCode", PAYMENT_MEANS_CREDIT_TRANSFER);
    w.push_str("<cac:PayeeFinancialAccount><cbc:ID>");
    for c in invoice.seller.iban.chars().filter(|c| !c.is_whitespace()) {
        push_char(w, c.to_ascii_uppercase());
    }
    w.push_str("</cbc:ID>");
    if let Some(bic) = non_blank(&invoice.seller.bic) {
        w.push_str("<cac:FinancialInstitutionBranch>");
        el(w, "cbc:ID", bic.trim());
        w.push_str("</cac:FinancialInstitutionBranch>");
    }
    w.push_str("</cac:PayeeFinancialAccount></cac:PaymentMeans>\n");
}

/// BG-23, inside the one TaxTotal in the invoice currency (BR-CO-15).
fn write_tax_total(w: &mut String, invoice: &Invoice, totals: &Totals) {
    let cur = invoice.currency.as_str();
    w.push_str("<cac:TaxTotal>");
    amount_el(w, "cbc:TaxAmount", cur, totals.vat_total);
    w.push('\n');
    for b in &totals.vat_breakdown {
        write_breakdown(w, b, invoice, cur);
    }
    w.push_str("</cac:TaxTotal>\n");
}

/// BG-22.
fn write_monetary_total(w: &mut String, invoice: &Invoice, totals: &Totals) {
    let cur = invoice.currency.as_str();
    w.push_str("<cac:LegalMonetaryTotal>");
    amount_el(w, "cbc:LineExtensionAmount", cur, totals.line_total);
    amount_el(w, "cbc:TaxExclusiveAmount", cur, totals.tax_exclusive);
    amount_el(w, "cbc:TaxInclusiveAmount", cur, totals.tax_inclusive);
    if invoice.allowances_charges.iter().any(|ac| !ac.charge) {
        amount_el(w, "cbc:AllowanceTotalAmount", cur, totals.allowance_total);
    }
    if invoice.allowances_charges.iter().any(|ac| ac.charge) {
        amount_el(w, "cbc:ChargeTotalAmount", cur, totals.charge_total);
    }
    if !totals.prepaid.is_zero() {
        amount_el(w, "cbc:PrepaidAmount", cur, totals.prepaid);
    }
    amount_el(w, "cbc:PayableAmount", cur, totals.payable);
    w.push_str("</cac:LegalMonetaryTotal>\n");
}

/// BG-25, with its net amount (BT-131) as `Totals` computed it.
fn write_line(w: &mut String, line: &Line, net: Decimal, cur: &str) {
    w.push_str("<cac:InvoiceLine>");
    el(w, "cbc:ID", &line.id);
    w.push_str("<cbc:InvoicedQuantity unitCode=\"");
    push_text(w, &line.unit_code);
    w.push_str("\">");
    push_decimal(w, line.quantity);
    w.push_str("</cbc:InvoicedQuantity>");
    amount_el(w, "cbc:LineExtensionAmount", cur, net);
    w.push_str("<cac:Item>");
    el(w, "cbc:Name", &line.description);
    w.push_str("<cac:ClassifiedTaxCategory>");
    tax_category_body(w, line.vat_category, line.vat_rate);
    w.push_str("</cac:ClassifiedTaxCategory></cac:Item><cac:Price><cbc:PriceAmount currencyID=\"");
    push_text(w, cur);
    w.push_str("\">");
    push_decimal(w, line.unit_price);
    w.push_str("</cbc:PriceAmount></cac:Price></cac:InvoiceLine>\n");
}

/// Where the *maître d'œuvre* ("valideur" in Chorus Pro) goes. Its UBL place is not
/// published anywhere we could read (the EDI annex's "Entité Valideur" table is the
/// reference to check in qualification), so this is the ONE place to change.
///
/// Chosen: `cac:AccountingCustomerParty/cac:Party/cac:AgentParty`, with the MOE SIRET as
/// `cac:PartyIdentification/cbc:ID[@schemeID="0009"]` and its service code as
/// `cac:Contact/cbc:ID`. Why:
/// - UBL defines `Party/AgentParty` as "a party who acts as an agent for this party"; under
///   the CCAG-Travaux the MOE acts for the *maître d'ouvrage* (the buyer), which is also how
///   Chorus Pro models it (`cadreDeFacturation.codeStructureValideur`: an attribute of the
///   buyer-side circuit, not a commercial party of the invoice).
/// - `Contact/ID` for a service code mirrors Chorus Pro's own E1 UBL convention for the
///   buyer's service (OCA `l10n_fr_chorus_ubl`, `_ubl_get_contact_id`).
/// - It leaves every EN 16931 role its meaning: the buyer stays the MOA (Chorus Pro's
///   recipient), `PayeeParty` would redirect payment (Chorus Pro reads it as a factor),
///   `Delivery/DeliveryParty` is the works site, a `TaxRepresentativeParty` needs a VAT id,
///   an `AdditionalDocumentReference` or a `UBLExtensions` block is opaque to any reader.
/// - EN 16931 does not model it, so the CEN rules only warn (UBL-CR-258); no fatal finding.
fn write_project_manager(w: &mut String, pm: &ProjectManager) {
    w.push_str("<cac:AgentParty>");
    siret_identification(w, &pm.siret);
    if let Some(service) = non_blank(&pm.service_code) {
        w.push_str("<cac:Contact>");
        el(w, "cbc:ID", service);
        w.push_str("</cac:Contact>");
    }
    w.push_str("</cac:AgentParty>\n");
}

fn estimated_len(invoice: &Invoice) -> usize {
    let files: usize = std::iter::once(&invoice.document)
        .chain(&invoice.attachments)
        .map(|f| {
            400 + match &f.content {
                FileContent::Bytes(b) => b.len().div_ceil(3) * 4,
                FileContent::Base64(s) => s.len(),
            }
        })
        .sum();
    4096 + invoice.lines.len() * 640 + invoice.allowances_charges.len() * 400 + files
}

fn siret_identification(w: &mut String, siret: &str) {
    w.push_str("<cac:PartyIdentification><cbc:ID schemeID=\"");
    w.push_str(SCHEME_SIRET);
    w.push_str("\">");
    push_text(w, siret.trim());
    w.push_str("</cbc:ID></cac:PartyIdentification>\n");
}

fn write_address(w: &mut String, a: &Address) {
    w.push_str("<cac:PostalAddress>");
    el(w, "cbc:StreetName", &a.line1);
    if let Some(line2) = non_blank(&a.line2) {
        el(w, "cbc:AdditionalStreetName", line2);
    }
    el(w, "cbc:CityName", &a.city);
    el(w, "cbc:PostalZone", &a.postal_code);
    w.push_str("<cac:Country>");
    el(w, "cbc:IdentificationCode", a.country.trim());
    w.push_str("</cac:Country></cac:PostalAddress>\n");
}

fn write_vat_id(w: &mut String, vat: &str) {
    w.push_str("<cac:PartyTaxScheme>");
    el(w, "cbc:CompanyID", vat.trim());
    w.push_str("<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>\n");
}

fn write_legal_entity(w: &mut String, name: &str, siret: &str) {
    w.push_str("<cac:PartyLegalEntity>");
    el(w, "cbc:RegistrationName", name);
    w.push_str("<cbc:CompanyID schemeID=\"");
    w.push_str(SCHEME_SIRET);
    w.push_str("\">");
    push_text(w, siret.trim());
    w.push_str("</cbc:CompanyID></cac:PartyLegalEntity>\n");
}

fn write_embedded(w: &mut String, file: &EmbeddedFile, description: Option<&str>) {
    w.push_str("<cac:AdditionalDocumentReference>");
    // BT-122: the file name, which `check` keeps unique.
    el(w, "cbc:ID", &file.filename);
    if let Some(d) = description {
        el(w, "cbc:DocumentDescription", d);
    }
    w.push_str("<cac:Attachment><cbc:EmbeddedDocumentBinaryObject mimeCode=\"");
    push_text(w, &file.mime_code);
    w.push_str("\" filename=\"");
    push_text(w, &file.filename);
    w.push_str("\">");
    match &file.content {
        FileContent::Bytes(bytes) => {
            base64::engine::general_purpose::STANDARD.encode_string(bytes, w)
        }
        // Escaped like any text: `check` refuses what is not base64, but the XML stays well formed.
        FileContent::Base64(text) => push_text(w, text),
    }
    w.push_str(
        "</cbc:EmbeddedDocumentBinaryObject></cac:Attachment></cac:AdditionalDocumentReference>\n",
    );
}

fn write_allowance_charge(w: &mut String, ac: &AllowanceCharge, cur: &str) {
    w.push_str("<cac:AllowanceCharge><cbc:ChargeIndicator>");
    w.push_str(if ac.charge { "true" } else { "false" });
    w.push_str("</cbc:ChargeIndicator>");
    el(w, "cbc:AllowanceChargeReason", &ac.reason);
    amount_el(w, "cbc:Amount", cur, round2(ac.amount));
    w.push_str("<cac:TaxCategory>");
    tax_category_body(w, ac.vat_category, ac.vat_rate);
    w.push_str("</cac:TaxCategory></cac:AllowanceCharge>\n");
}

fn write_breakdown(w: &mut String, b: &VatBreakdown, invoice: &Invoice, cur: &str) {
    w.push_str("<cac:TaxSubtotal>");
    amount_el(w, "cbc:TaxableAmount", cur, b.taxable);
    amount_el(w, "cbc:TaxAmount", cur, b.vat);
    w.push_str("<cac:TaxCategory>");
    el(w, "cbc:ID", b.category.code());
    if b.category != VatCategory::O {
        w.push_str("<cbc:Percent>");
        push_decimal(w, b.rate);
        w.push_str("</cbc:Percent>");
    }
    // BR-S-10/BR-Z-10 forbid a reason on S and Z; BR-AE-10, BR-E-10, BR-O-10 require one.
    if b.category.needs_exemption_reason() {
        // The codes are unambiguous for these two; an exemption (E) has many legal grounds,
        // so only the caller's text says which.
        match b.category {
            VatCategory::AE => el(w, "cbc:TaxExemptionReasonCode", "VATEX-EU-AE"),
            VatCategory::O => el(w, "cbc:TaxExemptionReasonCode", "VATEX-EU-O"),
            _ => {}
        }
        if let Some(reason) = non_blank(&invoice.vat_exemption_reason) {
            el(w, "cbc:TaxExemptionReason", reason);
        }
    }
    w.push_str(
        "<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory></cac:TaxSubtotal>\n",
    );
}

/// The children of a `TaxCategory`/`ClassifiedTaxCategory`: no rate for O (BR-O-05…07).
fn tax_category_body(w: &mut String, category: VatCategory, rate: Decimal) {
    el(w, "cbc:ID", category.code());
    if category != VatCategory::O {
        w.push_str("<cbc:Percent>");
        push_decimal(w, rate);
        w.push_str("</cbc:Percent>");
    }
    w.push_str("<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>");
}

fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

fn el(w: &mut String, name: &str, text: &str) {
    w.push('<');
    w.push_str(name);
    w.push('>');
    push_text(w, text);
    w.push_str("</");
    w.push_str(name);
    w.push('>');
}

fn amount_el(w: &mut String, name: &str, currency: &str, amount: Decimal) {
    w.push('<');
    w.push_str(name);
    w.push_str(" currencyID=\"");
    push_text(w, currency);
    w.push_str("\">");
    // Amounts are already rounded; the precision pads `12500` to `12500.00`.
    let _ = write!(w, "{amount:.2}");
    w.push_str("</");
    w.push_str(name);
    w.push('>');
}

fn date_el(w: &mut String, name: &str, date: time::Date) {
    w.push('<');
    w.push_str(name);
    w.push('>');
    // `time::Date`'s Display is ISO 8601 `YYYY-MM-DD` for years 0–9999.
    let _ = write!(w, "{date}");
    w.push_str("</");
    w.push_str(name);
    w.push('>');
}

fn push_decimal(w: &mut String, value: Decimal) {
    // Writing into a String cannot fail.
    let _ = write!(w, "{value}");
}

/// Whether a byte may start something to escape or drop. 0xEF leads U+FFFE/U+FFFF, which
/// XML 1.0 forbids; the slow path looks closer.
fn needs_care(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0xEF)
        || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

/// Appends `text` escaped for element content and attribute values alike. Characters XML
/// 1.0 cannot carry (C0 controls but tab/LF/CR, U+FFFE, U+FFFF) are dropped: the writer
/// must always produce a well-formed document, and `check` reports them to the caller.
pub(crate) fn push_text(w: &mut String, text: &str) {
    if !text.bytes().any(needs_care) {
        w.push_str(text);
        return;
    }
    for c in text.chars() {
        push_char(w, c);
    }
}

fn push_char(w: &mut String, c: char) {
    match c {
        '&' => w.push_str("&amp;"),
        '<' => w.push_str("&lt;"),
        '>' => w.push_str("&gt;"),
        '"' => w.push_str("&quot;"),
        '\'' => w.push_str("&apos;"),
        c if is_xml_char(c) => w.push(c),
        _ => {}
    }
}

/// XML 1.0 `Char` production (Rust `char`s are never surrogates).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}
