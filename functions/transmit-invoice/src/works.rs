//! The file a transmission sends, by its framework's route (`shared::works::route_of`): the
//! UBL invoice for a flux, the works submission (its PDF and its amounts) for the works
//! route. A works statement with a negative amount or without its PDF is refused here, in
//! French, before anything is stored or sent.

use shared::config::Config;
use shared::domain::{CompanyAccount, Market};
use shared::http::{FieldError, Problem, ProblemCode};
use shared::ubl::{Invoice, PreparedInvoice};
use shared::works::{Route, Submission, WorksInputError, route_of, works_payload};

/// What a transmission stores and sends.
pub(crate) struct Prepared {
    pub file: Vec<u8>,
    pub amount_due: rust_decimal::Decimal,
    pub route: Route,
}

pub(crate) fn file_to_send(
    invoice: &Invoice,
    prepared: PreparedInvoice,
    market: &Market,
    account: &CompanyAccount,
    config: &Config,
) -> Result<Prepared, Problem> {
    let framework = market.terms.framework;
    let route = route_of(framework, config.works_submission);
    let file = match route.submission {
        Submission::UblFlux => prepared.xml.into_bytes(),
        Submission::PdfApi => {
            let payload = works_payload(
                invoice,
                &prepared.totals,
                framework,
                account.chorus_structure_id,
            )
            .map_err(works_invalid)?;
            serde_json::to_vec(&payload).map_err(|_| Problem::service_unavailable())?
        }
    };
    Ok(Prepared {
        file,
        amount_due: prepared.totals.payable,
        route,
    })
}

fn works_invalid(error: WorksInputError) -> Problem {
    Problem::new(
        ProblemCode::InvoiceInvalid,
        "Le projet de décompte ne peut pas être soumis au circuit des travaux : rien n'a été envoyé.",
    )
    .with_errors(vec![FieldError::new("invoice", "WORKS", error.0)])
}
