//! `POST …/situations/{number}/transmission/resolve`: the company ends the doubt about a
//! deposit whose outcome Chorus Pro never confirmed (`outcome_unknown` past the reconcile
//! grace), with what it saw in the Chorus Pro portal. `found_in_chorus: true` attaches the
//! situation to that invoice, once Chorus Pro confirms it exists; `false` allows one new
//! deposit, made at once. What the company said is audited before anything is done.

use lambda_http::{Body, Response};
use shared::deposit::{PortalCheck, ResolveError};
use shared::domain::InvoiceNumber;
use shared::domain::transmission::TransmissionState;
use shared::http::chorus::chorus_problem;
use shared::http::json::{JsonObject, body_bytes};
use shared::http::{Caller, FieldError, Problem, ProblemCode};
use shared::store::StoreError;
use shared::store::transmission::Tracked;

use crate::{SituationPath, State, audit_request, read_situation};

const BODY_LIMIT: usize = 4 * 1024;

pub async fn resolve(
    state: &State,
    caller: &Caller,
    path: &SituationPath,
    body: &Body,
) -> Result<Response<Body>, Problem> {
    let seen = parse(body_bytes(body, BODY_LIMIT)?)?;
    let (account, market, tracked) = read_situation(state, path).await?;
    allowed(&tracked)?;
    let now = state.clock.now();
    audit(state, caller, &tracked, &seen, now).await?;
    let left = state
        .depositor
        .resolve(&tracked, &account, &seen, now)
        .await
        .map_err(|e| resolve_problem(&e))?;
    tracing::info!(
        state = left.situation.transmission.state.as_str(),
        "deposit outcome resolved by the company"
    );
    Ok(crate::answer(state, &left.situation, &market))
}

fn parse(bytes: &[u8]) -> Result<PortalCheck, Problem> {
    let mut body = JsonObject::parse(bytes)?;
    let found = body.bool("found_in_chorus");
    let number = body.string("chorus_invoice_number");
    let mut faults = Vec::new();
    let seen = match (found, number) {
        (None, _) => {
            faults.push(FieldError::new(
                "found_in_chorus",
                "required",
                "Indiquez si la facture apparaît dans le portail Chorus Pro (true ou false).",
            ));
            None
        }
        (Some(true), None) => {
            faults.push(FieldError::new(
                "chorus_invoice_number",
                "required",
                "Donnez le numéro de la facture trouvée dans le portail Chorus Pro.",
            ));
            None
        }
        (Some(true), Some(raw)) => match InvoiceNumber::parse(&raw) {
            Ok(number) => Some(PortalCheck::Found {
                invoice_number: number.as_str().to_owned(),
            }),
            Err(e) => {
                faults.push(FieldError::new(
                    "chorus_invoice_number",
                    e.code(),
                    e.message_fr(&raw),
                ));
                None
            }
        },
        (Some(false), Some(_)) => {
            faults.push(FieldError::new(
                "chorus_invoice_number",
                "not_expected",
                "Le numéro de facture ne se donne que si la facture a été trouvée (found_in_chorus: true).",
            ));
            None
        }
        (Some(false), None) => Some(PortalCheck::Absent),
    };
    body.finish(faults)?;
    seen.ok_or_else(Problem::internal)
}

/// Only a deposit whose outcome stayed unknown past the grace, when the company was asked.
fn allowed(tracked: &Tracked) -> Result<(), Problem> {
    let transmission = &tracked.situation.transmission;
    if transmission.state == TransmissionState::OutcomeUnknown
        && transmission.company_check_since.is_some()
    {
        return Ok(());
    }
    Err(Problem::new(
        ProblemCode::ActionNotAllowed,
        format!(
            "La situation est dans l'état « {} » : cette action n'est possible que lorsque Chorus Pro n'a pas confirmé un dépôt après le délai de vérification (état « outcome_unknown » avec une action demandée).",
            transmission.state.as_str()
        ),
    ))
}

async fn audit(
    state: &State,
    caller: &Caller,
    tracked: &Tracked,
    seen: &PortalCheck,
    now: time::OffsetDateTime,
) -> Result<(), Problem> {
    let details = match seen {
        PortalCheck::Found { invoice_number } => vec![
            "found_in_chorus=true".to_owned(),
            format!("chorus_invoice_number={invoice_number}"),
        ],
        PortalCheck::Absent => vec!["found_in_chorus=false".to_owned()],
    };
    let action = "deposit_outcome_resolved";
    audit_request(state, caller, &tracked.situation, action, details, now).await
}

fn resolve_problem(err: &ResolveError) -> Problem {
    match err {
        ResolveError::InvoiceNotInChorus => Problem::validation(vec![FieldError::new(
            "chorus_invoice_number",
            "not_in_chorus",
            "Chorus Pro ne connaît aucune facture de ce numéro pour votre entreprise : vérifiez le numéro dans le portail.",
        )]),
        ResolveError::Chorus(e) => chorus_problem(e),
        ResolveError::Deposit(shared::deposit::DepositError::Store(StoreError::Conflict)) => {
            Problem::new(
                ProblemCode::TransmissionInProgress,
                "La situation a changé entre-temps (la passerelle l'a peut-être retrouvée dans Chorus Pro) : consultez-la, puis réessayez si besoin.",
            )
        }
        ResolveError::Deposit(e) => {
            tracing::error!(error = %e, "resolving a deposit failed");
            Problem::service_unavailable()
        }
    }
}
