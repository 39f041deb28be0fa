//! The EN 16931 UBL 2.1 invoice the gateway deposits in Chorus Pro: input model, totals,
//! pre-deposit checks and the XML writer. Pure: no I/O, no clock, no AWS.
//!
//! The handler's path is [`prepare`]: check everything Chorus Pro and the EN 16931 rules
//! would refuse (a failure is `422 invoice_invalid` with the rule ids, and nothing is sent),
//! then write the XML from totals computed once.
//!
//! Where Chorus Pro routes:
//!
//! | what | EN 16931 | UBL |
//! | --- | --- | --- |
//! | framework (A1, A4, …) | BT-23 | `cbc:ProfileID` |
//! | invoice number | BT-1 | `cbc:ID` |
//! | service code | BT-10 | `cbc:BuyerReference` |
//! | commitment (EJ) | BT-13 | `cac:OrderReference/cbc:ID` |
//! | market number | BT-12 | `cac:ContractDocumentReference/cbc:ID` |
//! | seller, buyer SIRET | BT-29/30, BT-46/47 | `cac:PartyIdentification/cbc:ID` and `cac:PartyLegalEntity/cbc:CompanyID`, `schemeID="0009"` |
//! | project manager (MOE) | none | `cac:AccountingCustomerParty/cac:Party/cac:AgentParty` (see `writer::write_project_manager`) |
//! | IBAN, BIC | BT-84, BT-86 | `cac:PaymentMeans` code 30 |
//! | PDF and attachments | BG-24 | `cac:AdditionalDocumentReference`, base64 |

mod check;
mod codes;
mod model;
mod totals;
mod writer;

#[cfg(test)]
mod tests;

pub use check::{
    CheckOptions, MAX_FILE_BYTES, MAX_TOTAL_FILE_BYTES, RuleViolation, check, check_attachments,
    check_with, total_files_too_large,
};
pub use model::{
    Address, AllowanceCharge, Buyer, EmbeddedFile, FileContent, Invoice, Line, ProjectManager,
    Seller, VatCategory, mime_code_for,
};
pub use totals::{Totals, TotalsError, VatBreakdown, round2};
pub use writer::CUSTOMIZATION_ID;

/// A checked invoice, ready to deposit.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedInvoice {
    /// The UBL 2.1 Invoice, UTF-8.
    pub xml: String,
    pub totals: Totals,
}

/// Checks the invoice, then writes it. On failure, every violation found, in document order.
pub fn prepare(
    invoice: &Invoice,
    options: &CheckOptions,
) -> Result<PreparedInvoice, Vec<RuleViolation>> {
    match check::run(invoice, options) {
        (violations, Some(totals)) if violations.is_empty() => {
            let xml = writer::write_invoice(invoice, &totals);
            match flux_too_large(xml.len() as u64) {
                Some(violation) => Err(vec![violation]),
                None => Ok(PreparedInvoice { xml, totals }),
            }
        }
        (violations, _) => Err(violations),
    }
}

/// The UBL file, its files embedded in base64, is what Chorus Pro receives in one deposit
/// (`MAX_FLUX_BYTES`, docs/chorus-pro.md#limits): past it, nothing is sent. An 8 MB PDF
/// weighs 10.7 MB once in base64, so the largest PDF a deposit carries is about 7.8 MB.
pub fn flux_too_large(flux_bytes: u64) -> Option<RuleViolation> {
    let limit = crate::chorus::MAX_FLUX_BYTES as u64;
    (flux_bytes > limit).then(|| RuleViolation {
        rule_id: "CPRO-FLUX-01",
        message_fr: format!(
            "La facture et ses fichiers font {} octets une fois encodés (base64) dans le fichier déposé, au-delà des {limit} octets (10 Mio) qu'un dépôt Chorus Pro accepte : \
             réduisez la taille des fichiers (un PDF seul : 7,8 Mo au plus).",
            flux_bytes
        ),
    })
}

/// What files of these decoded sizes weigh at least in a deposit (base64 plus the
/// invoice's own XML, counted low): to refuse before reading them.
pub fn flux_bytes_at_least(file_sizes: impl IntoIterator<Item = u64>) -> u64 {
    const INVOICE_XML_AT_LEAST: u64 = 2_000;
    INVOICE_XML_AT_LEAST
        + file_sizes
            .into_iter()
            .map(|n| n.div_ceil(3) * 4)
            .sum::<u64>()
}

/// Computes the totals and writes the XML without the pre-deposit checks (previews,
/// tests). Fails only when an amount overflows.
pub fn to_xml(invoice: &Invoice) -> Result<String, TotalsError> {
    let totals = Totals::compute(invoice)?;
    Ok(writer::write_invoice(invoice, &totals))
}
