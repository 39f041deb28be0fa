//! The situation routes: the invoice number of each monthly statement, unique in the
//! company, frozen once transmitted (except after a Chorus Pro rejection).

use lambda_http::{Body, Request, Response};
use shared::domain::market::CommitmentNumber;
use shared::domain::payment::PaymentTerms;
use shared::domain::situation::{InvoiceNumberHolder, Period, Registration, plan_registration};
use shared::domain::{
    InvoiceNumber, MarketRef, Siret, Situation, SituationIdentifiers, SituationNumber,
};
use shared::http::json::body_bytes;
use shared::http::{Caller, FieldError, JsonObject, Problem, ProblemCode, json_response};
use shared::services::payment_terms;
use shared::store::AuditEntry;
use shared::store::situation::{GuardWrite, SaveSituationError};
use time::OffsetDateTime;

use shared::http::{path_siret, store_problem};

use crate::{BODY_LIMIT, PathParams, State, market_not_found, paging};

/// A save that lost a race on the situation reads it again and decides again, a few
/// times at most.
const SAVE_ATTEMPTS: usize = 3;

fn market_ref_error(raw: &str, errors: &mut Vec<FieldError>) -> Option<MarketRef> {
    MarketRef::parse(raw)
        .map_err(|e| errors.push(FieldError::new("market_ref", e.code(), e.message_fr(raw))))
        .ok()
}

fn number_error(raw: &str, errors: &mut Vec<FieldError>) -> Option<SituationNumber> {
    SituationNumber::parse(raw)
        .map_err(|e| errors.push(FieldError::new("number", e.code(), e.message_fr(raw))))
        .ok()
}

/// Reads and validates a `PUT` body, with the faults of the path, in one answer.
fn validate(body: &Body, mut errors: Vec<FieldError>) -> Result<SituationIdentifiers, Problem> {
    let mut object = JsonObject::parse(body_bytes(body, BODY_LIMIT)?)?;
    let invoice_number = match object.string("invoice_number") {
        None => {
            errors.push(FieldError::new(
                "invoice_number",
                "required",
                "Le numéro de facture est obligatoire : c'est le numéro sous lequel la situation sera transmise à Chorus Pro.",
            ));
            None
        }
        Some(raw) => InvoiceNumber::parse(&raw)
            .map_err(|e| {
                errors.push(FieldError::new(
                    "invoice_number",
                    e.code(),
                    e.message_fr(&raw),
                ))
            })
            .ok(),
    };
    // An optional field left empty in a form comes as "": that is "none".
    let period = object
        .string("period")
        .filter(|p| !p.is_empty())
        .and_then(|raw| {
            let parsed = Period::parse(&raw);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "period",
                    Period::ERROR_CODE,
                    Period::message_fr(&raw),
                ));
            }
            parsed
        });
    let commitment_number = object
        .string("commitment_number")
        .filter(|c| !c.is_empty())
        .and_then(|raw| {
            CommitmentNumber::parse(&raw)
                .map_err(|e| {
                    errors.push(FieldError::new(
                        "commitment_number",
                        e.code(),
                        e.message_fr("Le numéro d'engagement juridique", &raw),
                    ));
                })
                .ok()
        });
    object.finish(errors)?;
    let invoice_number = invoice_number.ok_or_else(Problem::internal)?;
    Ok(SituationIdentifiers {
        invoice_number,
        period,
        commitment_number,
    })
}

/// The situation a `PUT` registers: its key and the identifiers wanted.
struct SituationPut {
    siret: Siret,
    market_ref: MarketRef,
    number: SituationNumber,
    wanted: SituationIdentifiers,
}

impl SituationPut {
    /// The path and the body, every fault in one answer.
    fn read(path: &PathParams, body: &Body) -> Result<Self, Problem> {
        let siret = path_siret(&path.siret)?;
        let mut errors = Vec::new();
        let market_ref = market_ref_error(&path.market_ref, &mut errors);
        let number = number_error(&path.number, &mut errors);
        let wanted = validate(body, errors)?;
        let (Some(market_ref), Some(number)) = (market_ref, number) else {
            return Err(Problem::internal());
        };
        Ok(Self {
            siret,
            market_ref,
            number,
            wanted,
        })
    }

    /// How to register the identifiers over what is stored: `None` when they are stored
    /// already (a retry), else the registration and the guard it writes.
    fn plan(
        &self,
        existing: Option<&Situation>,
    ) -> Result<Option<(Registration, GuardWrite)>, Problem> {
        let registration = plan_registration(existing, &self.wanted).map_err(|refusal| {
            tracing::info!(?refusal, "situation identifiers frozen");
            Problem::new(
                ProblemCode::AlreadyTransmitted,
                refusal.message_fr(self.number, &self.market_ref),
            )
        })?;
        Ok(match registration {
            Registration::Unchanged => None,
            Registration::Create => Some((registration, GuardWrite::Take)),
            Registration::Update { number, .. } => Some((registration, GuardWrite::Change(number))),
        })
    }

    fn registered(
        &self,
        existing: Option<&Situation>,
        registration: Registration,
        now: OffsetDateTime,
    ) -> Situation {
        Situation::registered(
            existing,
            &self.siret,
            &self.market_ref,
            self.number,
            self.wanted.clone(),
            registration,
            now,
        )
    }

    /// The audit entry of the save: what changed, and what was done.
    fn audit(
        &self,
        caller: &Caller,
        existing: Option<&Situation>,
        registration: Registration,
        now: OffsetDateTime,
    ) -> AuditEntry {
        let action = match registration {
            Registration::Update { reopen: true, .. } => "situation_renumbered_after_rejection",
            Registration::Update { .. } => "situation_updated",
            _ => "situation_created",
        };
        AuditEntry {
            at: now,
            actor: caller.sub.clone(),
            action: action.into(),
            fields: self.wanted.changed_fields(existing.map(|s| &s.identifiers)),
        }
    }
}

/// `409 invoice_number_taken`, naming the situation that holds the number.
fn number_taken(holder: &InvoiceNumberHolder, wanted: &InvoiceNumber) -> Problem {
    tracing::info!(
        holder_market_ref = %holder.market_ref,
        holder_situation = holder.situation,
        retired = holder.retired,
        "invoice number taken"
    );
    let message = holder.message_fr(wanted);
    Problem::new(ProblemCode::InvoiceNumberTaken, message.clone()).with_errors(vec![
        FieldError::new("invoice_number", "invoice_number_taken", message),
    ])
}

/// Registers the identifiers over what was read; a concurrent save makes it read again
/// and decide again, a few times at most.
async fn save(
    state: &State,
    caller: &Caller,
    put: &SituationPut,
    mut existing: Option<Situation>,
    terms: PaymentTerms<'_>,
) -> Result<Response<Body>, Problem> {
    for attempt in 1..=SAVE_ATTEMPTS {
        let Some((registration, guards)) = put.plan(existing.as_ref())? else {
            // A retry of what is stored: nothing to write.
            let current = existing.as_ref().ok_or_else(Problem::internal)?;
            return Ok(json_response(200, &current.view(terms)));
        };
        let now = state.clock.now();
        let new = put.registered(existing.as_ref(), registration, now);
        let audit = put.audit(caller, existing.as_ref(), registration, now);
        let saved = state
            .store
            .save_situation(&new, existing.as_ref(), guards, &audit)
            .await;
        match saved {
            Ok(()) => {
                tracing::info!(action = audit.action.as_str(), fields = ?audit.fields, "situation saved");
                let status = if existing.is_some() { 200 } else { 201 };
                return Ok(json_response(status, &new.view(terms)));
            }
            Err(SaveSituationError::NumberTaken(holder)) => {
                return Err(number_taken(&holder, &put.wanted.invoice_number));
            }
            Err(SaveSituationError::Conflict) if attempt < SAVE_ATTEMPTS => {
                tracing::warn!(
                    attempt,
                    "concurrent save of the situation, reading it again"
                );
                existing = state
                    .store
                    .get_situation(&put.siret, &put.market_ref, put.number)
                    .await
                    .map_err(|e| store_problem(&e))?;
            }
            Err(SaveSituationError::Conflict) => break,
            Err(SaveSituationError::Store(e)) => return Err(store_problem(&e)),
        }
    }
    Err(Problem::new(
        ProblemCode::Conflict,
        "La situation a été modifiée en même temps par une autre requête ; rechargez-la puis réessayez.",
    ))
}

pub async fn put(
    state: &State,
    caller: &Caller,
    path: &PathParams,
    body: &Body,
) -> Result<Response<Body>, Problem> {
    let put = SituationPut::read(path, body)?;
    let (market, existing) = tokio::try_join!(
        state.store.get_market(&put.siret, &put.market_ref),
        state
            .store
            .get_situation(&put.siret, &put.market_ref, put.number)
    )
    .map_err(|e| store_problem(&e))?;
    let Some(market) = market else {
        return Err(market_not_found(put.market_ref.as_str()));
    };
    let terms = payment_terms(&state.config, state.clock.as_ref(), Some(&market));
    save(state, caller, &put, existing, terms).await
}

fn path_values(
    path: &PathParams,
    with_number: bool,
) -> Result<(Siret, MarketRef, Option<SituationNumber>), Problem> {
    let siret = path_siret(&path.siret)?;
    let mut errors = Vec::new();
    let market_ref = market_ref_error(&path.market_ref, &mut errors);
    let number = if with_number {
        number_error(&path.number, &mut errors)
    } else {
        None
    };
    match market_ref {
        Some(market_ref) if errors.is_empty() => Ok((siret, market_ref, number)),
        _ => Err(Problem::validation(errors)),
    }
}

pub async fn get(state: &State, path: &PathParams) -> Result<Response<Body>, Problem> {
    let (siret, market_ref, number) = path_values(path, true)?;
    let number = number.ok_or_else(Problem::internal)?;
    // The market too: its buyer category sets the payment deadline.
    let (market, situation) = tokio::try_join!(
        state.store.get_market(&siret, &market_ref),
        state.store.get_situation(&siret, &market_ref, number)
    )
    .map_err(|e| store_problem(&e))?;
    let Some(market) = market else {
        return Err(market_not_found(market_ref.as_str()));
    };
    match situation {
        Some(situation) => {
            let terms = payment_terms(&state.config, state.clock.as_ref(), Some(&market));
            Ok(json_response(200, &situation.view(terms)))
        }
        None => {
            // The market exists: the situation is what the caller must register.
            Err(Problem::new(
                ProblemCode::SituationNotFound,
                format!(
                    "Aucune situation n° {number} n'est enregistrée pour le marché « {market_ref} » : enregistrez-la d'abord avec son numéro de facture."
                ),
            ))
        }
    }
}

pub async fn list(
    state: &State,
    path: &PathParams,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let (siret, market_ref, _) = path_values(path, false)?;
    let page = paging::read(request, "s").map_err(Problem::validation)?;
    let after = page
        .after
        .map(|raw| {
            SituationNumber::parse(&raw)
                .map_err(|_| Problem::validation(vec![paging::invalid_cursor()]))
        })
        .transpose()?;
    let (market, found) = tokio::try_join!(
        state.store.get_market(&siret, &market_ref),
        state
            .store
            .list_situations(&siret, &market_ref, page.limit, after)
    )
    .map_err(|e| store_problem(&e))?;
    let Some(market) = market else {
        return Err(market_not_found(market_ref.as_str()));
    };
    let terms = payment_terms(&state.config, state.clock.as_ref(), Some(&market));
    Ok(json_response(
        200,
        &paging::SituationPage {
            situations: found.items.iter().map(|s| s.view(terms)).collect(),
            next_cursor: found
                .next_after
                .map(|n| paging::encode("s", &n.to_string())),
        },
    ))
}
