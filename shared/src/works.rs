//! How each framework travels to Chorus Pro and how it is followed: the one table
//! ([`route_of`]), the works submission built from the checked invoice ([`WorksPayload`]),
//! and the deployment setting where the sources disagree ([`WorksSubmission`],
//! `WORKS_SUBMISSION`). Reasons and sources: docs/chorus-pro.md#works-circuit.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::chorus::{
    InvoiceSubmission, MODE_PDF_API, SubmissionFramework, SubmissionRecipient,
    SubmissionReferences, SubmissionSupplier, SubmissionTotals,
};
use crate::domain::Framework;
use crate::ubl::{FileContent, Invoice, Totals};

/// How a document is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submission {
    /// `factures/v1/deposer/flux` with the UBL file ([`Route::flux_syntax`]: `FLUX_SYNTAX`,
    /// `FLUX_SYNTAX_WORKS` for a works document).
    UblFlux,
    /// `transverses/v1/ajouter/fichier` (the PDF) then `factures/v1/soumettre` in
    /// `DEPOT_PDF_API` mode, with the works fields.
    PdfApi,
}

/// How a document is followed once Chorus Pro has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Its own statuses, to `MISE_EN_PAIEMENT` or `REJETEE`.
    Invoice,
    /// Its statuses, then the following documents (`pieceSuivante`: the MOE's état
    /// d'acompte, the MOA's) to the payment of the last one.
    WorksDocuments,
}

/// The route of one transmission, recorded when it is claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub submission: Submission,
    pub follow_up: FollowUp,
}

/// The deployment's choice for works documents (`WORKS_SUBMISSION`), where the sources
/// leave the way open: `pdf_api` (default) or `ubl_flux`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorksSubmission {
    #[default]
    PdfApi,
    UblFlux,
}

impl WorksSubmission {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "pdf_api" => Some(WorksSubmission::PdfApi),
            "ubl_flux" => Some(WorksSubmission::UblFlux),
            _ => None,
        }
    }
}

/// THE table: framework → how it is sent → how it is followed.
///
/// | framework | sent | followed |
/// | --- | --- | --- |
/// | A1, A2, A9, A12 (invoices) | UBL flux | invoice |
/// | A4, A5, A7, A10, A13, A14, A22 (statements, through the MOE) | `WORKS_SUBMISSION` | works documents |
/// | A8 (signed final account, to the MOA) | `WORKS_SUBMISSION` | works documents |
pub fn route_of(framework: Framework, works: WorksSubmission) -> Route {
    let works_submission = match works {
        WorksSubmission::PdfApi => Submission::PdfApi,
        WorksSubmission::UblFlux => Submission::UblFlux,
    };
    match framework {
        Framework::A1 | Framework::A2 | Framework::A9 | Framework::A12 => Route {
            submission: Submission::UblFlux,
            follow_up: FollowUp::Invoice,
        },
        Framework::A4
        | Framework::A5
        | Framework::A7
        | Framework::A8
        | Framework::A10
        | Framework::A13
        | Framework::A14
        | Framework::A22 => Route {
            submission: works_submission,
            follow_up: FollowUp::WorksDocuments,
        },
    }
}

impl Route {
    /// The `syntaxeFlux` a UBL flux of this route is deposited with: works documents have
    /// their own (`FLUX_SYNTAX_WORKS`, by default the invoices' `FLUX_SYNTAX`).
    pub fn flux_syntax(self, config: &crate::config::Config) -> &str {
        match self.follow_up {
            FollowUp::Invoice => &config.flux_syntax,
            FollowUp::WorksDocuments => &config.flux_syntax_works,
        }
    }

    /// As recorded on the transmission (`deposit_route`).
    pub fn code(self) -> &'static str {
        match (self.submission, self.follow_up) {
            (Submission::UblFlux, FollowUp::Invoice) => "ubl_flux",
            (Submission::UblFlux, FollowUp::WorksDocuments) => "ubl_flux_works",
            (Submission::PdfApi, _) => "pdf_api_works",
        }
    }

    /// A recorded code; a transmission claimed before routes existed is an ordinary flux.
    pub fn from_code(code: Option<&str>) -> Route {
        let (submission, follow_up) = match code {
            Some("pdf_api_works") => (Submission::PdfApi, FollowUp::WorksDocuments),
            Some("ubl_flux_works") => (Submission::UblFlux, FollowUp::WorksDocuments),
            _ => (Submission::UblFlux, FollowUp::Invoice),
        };
        Route {
            submission,
            follow_up,
        }
    }
}

/// Whether a transmission is followed, and returned, as a works document.
pub fn followed_as_works(tracked: &crate::store::transmission::Tracked) -> bool {
    Route::from_code(tracked.record.deposit_route.as_deref()).follow_up == FollowUp::WorksDocuments
}

/// What is stored for a works submission: the request without its attachment id, and the
/// PDF to add first.
#[derive(Clone, Serialize, Deserialize)]
pub struct WorksPayload {
    pub submission: InvoiceSubmission,
    pub pdf_name: String,
    pub pdf_mime: String,
    pub pdf_base64: String,
}

impl std::fmt::Debug for WorksPayload {
    // The PDF is megabytes of base64: its size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorksPayload")
            .field("submission", &self.submission)
            .field("pdf_name", &self.pdf_name)
            .field("pdf_len", &self.pdf_base64.len())
            .finish()
    }
}

/// Why a works statement cannot be submitted (French, for the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorksInputError(pub String);

fn text(amount: Decimal) -> String {
    format!("{:.2}", amount)
}

/// The submission of a checked works statement: the PDF must be there (it *is* the
/// document in `DEPOT_PDF_API` mode) and no amount may be negative.
pub fn works_payload(
    invoice: &Invoice,
    totals: &Totals,
    framework: Framework,
    supplier_id: Option<i64>,
) -> Result<WorksPayload, WorksInputError> {
    refuse_negative_amounts(totals)?;
    let pdf_base64 = pdf_of(invoice)?;
    let manager = invoice.project_manager.as_ref();
    let submission = InvoiceSubmission {
        mode_depot: MODE_PDF_API.into(),
        numero_facture_saisi: invoice.number.clone(),
        date_facture: crate::clock::iso_date(invoice.issue_date),
        destinataire: SubmissionRecipient {
            code_destinataire: invoice.buyer.siret.clone(),
            code_service_executant: invoice.buyer_service_code.clone(),
        },
        fournisseur: SubmissionSupplier {
            id_fournisseur: supplier_id,
            code_fournisseur: invoice.seller.siret.clone(),
        },
        cadre_de_facturation: SubmissionFramework {
            code_cadre_facturation: framework.chorus_value().into(),
            code_structure_valideur: manager.map(|m| m.siret.clone()),
            code_service_valideur: manager.and_then(|m| m.service_code.clone()),
        },
        references: SubmissionReferences {
            devise_facture: invoice.currency.clone(),
            type_facture: "FACTURE".into(),
            type_tva: "TVA_SUR_DEBIT".into(),
            mode_paiement: "VIREMENT".into(),
            numero_marche: invoice.market_number.clone(),
            numero_bon_commande: invoice.commitment_number.clone(),
        },
        montant_total: SubmissionTotals {
            montant_ht_total: text(totals.tax_exclusive),
            montant_tva: text(totals.vat_total),
            montant_ttc_total: text(totals.tax_inclusive),
            montant_a_payer: text(totals.payable),
        },
        piece_jointe_principale: Vec::new(),
    };
    Ok(WorksPayload {
        submission,
        pdf_name: invoice.document.filename.clone(),
        pdf_mime: invoice.document.mime_code.clone(),
        pdf_base64,
    })
}

fn refuse_negative_amounts(totals: &Totals) -> Result<(), WorksInputError> {
    let negative = [
        ("hors taxes", totals.tax_exclusive),
        ("de TVA", totals.vat_total),
        ("TTC", totals.tax_inclusive),
        ("à payer", totals.payable),
    ]
    .into_iter()
    .find(|(_, amount)| amount.is_sign_negative() && !amount.is_zero());
    match negative {
        Some((what, amount)) => Err(WorksInputError(format!(
            "Le montant {what} du projet de décompte est négatif ({amount}) : un décompte de travaux ne peut pas être négatif ; corrigez les lignes (une moins-value se déduit dans le cumul)."
        ))),
        None => Ok(()),
    }
}

fn pdf_of(invoice: &Invoice) -> Result<String, WorksInputError> {
    use base64::Engine as _;
    let missing = || {
        WorksInputError(
            "Le PDF du projet de décompte manque (document) : en dépôt de travaux, le PDF est la pièce principale que le maître d'œuvre reçoit."
                .into(),
        )
    };
    if invoice.document.mime_code != "application/pdf" {
        return Err(missing());
    }
    let base64 = match &invoice.document.content {
        FileContent::Base64(text) => text.trim().to_owned(),
        FileContent::Bytes(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes),
    };
    if base64.is_empty() {
        return Err(missing());
    }
    Ok(base64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_invoices_stay_on_the_flux_and_works_documents_follow_the_setting() {
        for f in [Framework::A1, Framework::A2, Framework::A9, Framework::A12] {
            for s in [WorksSubmission::PdfApi, WorksSubmission::UblFlux] {
                assert_eq!(route_of(f, s).code(), "ubl_flux", "{f}");
            }
        }
        for f in [Framework::A4, Framework::A7, Framework::A8, Framework::A22] {
            assert_eq!(route_of(f, WorksSubmission::PdfApi).code(), "pdf_api_works");
            assert_eq!(
                route_of(f, WorksSubmission::UblFlux).code(),
                "ubl_flux_works"
            );
        }
    }

    #[test]
    fn a_works_document_sent_as_a_flux_takes_the_works_syntax_and_an_invoice_the_invoices_one() {
        let config = crate::config::Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some("t".to_owned()),
            "WORKS_SUBMISSION" => Some("ubl_flux".to_owned()),
            "FLUX_SYNTAX_WORKS" => Some("IN_DP_E4_UBL_INVOICE".to_owned()),
            _ => None,
        })
        .unwrap();
        let works = route_of(Framework::A4, config.works_submission);
        assert_eq!(works.code(), "ubl_flux_works");
        assert_eq!(works.flux_syntax(&config), "IN_DP_E4_UBL_INVOICE");
        let invoice = route_of(Framework::A1, config.works_submission);
        assert_eq!(invoice.flux_syntax(&config), "IN_DP_E1_UBL_INVOICE");
        // A transmission recorded before routes existed is an invoice.
        assert_eq!(
            Route::from_code(None).flux_syntax(&config),
            "IN_DP_E1_UBL_INVOICE"
        );
        assert_eq!(
            Route::from_code(Some("ubl_flux_works")).flux_syntax(&config),
            "IN_DP_E4_UBL_INVOICE"
        );
    }

    #[test]
    fn a_route_survives_its_record() {
        for code in ["ubl_flux", "ubl_flux_works", "pdf_api_works"] {
            assert_eq!(Route::from_code(Some(code)).code(), code);
        }
        assert_eq!(Route::from_code(None).code(), "ubl_flux");
        assert_eq!(
            WorksSubmission::parse("pdf_api"),
            Some(WorksSubmission::PdfApi)
        );
        assert_eq!(WorksSubmission::parse("E4"), None);
    }
}
