//! `POST …/situations/{number}/transmission/recycle` and `…/transmission/complete`: an
//! invoice Chorus Pro returned to the company is fixed where it is. Recycle (only in
//! `A_RECYCLER`) sends new routing data, checked against the buyer by the same code path as
//! a market's (`shared::buyer`); complete (only in `SUSPENDUE` or `A_COMPLETER`) sends a
//! comment and files. Audited first, then sent once.
//!
//! Exactly once: before Chorus Pro is called, the action is written `sending` (conditional
//! on the revision read, so two requests never both send). A lost answer leaves it there;
//! the next request reads the invoice's status in Chorus Pro before anything else: moved on
//! from the status the action was asked in, the action landed and is recorded as done;
//! still in it, it did not land (Chorus Pro changes the status in the same call that
//! accepts it: the recycle answer carries the new `statutFacture`) and may be sent again.
//! A repeat after success (same `Idempotency-Key`, or the same body once the status moved
//! on) answers the situation as it stands, without a call.

use lambda_http::{Body, Response};
use shared::chorus::{
    ChorusError, CompletionFile, FileUpload, InvoiceCompletion, InvoiceHistoryRequest,
    InvoiceRecycle, RecycleRecipient, RecycleReference, TechnicalAccount, WorksInvoiceRecycle,
};
use shared::domain::market::{CommitmentNumber, ServiceCode};
use shared::domain::{Market, MarketTerms, Siret};
use shared::http::chorus::chorus_problem;
use shared::http::json::{JsonObject, body_bytes};
use shared::http::{Caller, FieldError, Problem, ProblemCode, store_problem};
use shared::store::StoreError;
use shared::store::transmission::{Change, ReturnedAction, Routing, RoutingChange, Tracked};
use shared::ubl::{self, EmbeddedFile, FileContent};

use crate::documents::Carriage;
use time::OffsetDateTime;

use crate::{SituationPath, State, answer, audit_request, body_hash, read_situation, request};

/// A recycle is a few identifiers; a completion carries files, like a transmission.
const RECYCLE_BODY_LIMIT: usize = 8 * 1024;
/// Chorus Pro's `commentaire` is text(2000) (CPP2017 `CompleterFacture.cs`).
const MAX_COMMENT_CHARS: usize = 2000;
/// How long a request holds an action it is sending: longer than one Chorus Pro call.
const SENDING_SECONDS: i64 = 60;
/// The file type Chorus Pro's completion names for an added file (GO, CPP2017: free text).
const COMPLETION_FILE_TYPE: &str = "AUTRE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Recycle,
    Complete,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Recycle => "recycle",
            Kind::Complete => "complete",
        }
    }

    /// The Chorus Pro statuses that allow the action (docs/chorus-pro.md#invoice-statuses).
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Kind::Recycle => &["A_RECYCLER"],
            Kind::Complete => &["SUSPENDUE", "A_COMPLETER"],
        }
    }

    fn allowed_fr(self) -> &'static str {
        match self {
            Kind::Recycle => {
                "le recyclage n'est possible que lorsque Chorus Pro a renvoyé la facture « à recycler » (statut A_RECYCLER)"
            }
            Kind::Complete => {
                "le complément n'est possible que lorsque Chorus Pro a suspendu la facture ou demandé de la compléter (statuts SUSPENDUE, A_COMPLETER)"
            }
        }
    }
}

pub struct Asked {
    pub kind: Kind,
    pub key: Option<String>,
}

/// What the company asks, read and checked in form.
enum Input {
    Recycle(RecycleInput),
    /// Read in form; its uploaded documents are read once the action is to be sent.
    Complete(request::RawCompletion),
}

struct RecycleInput {
    buyer_siret: Option<Siret>,
    buyer_service_code: Option<ServiceCode>,
    commitment_number: Option<CommitmentNumber>,
    comment: Option<String>,
}

pub async fn handle(
    state: &State,
    caller: &Caller,
    path: &SituationPath,
    asked: Asked,
    body: &Body,
) -> Result<Response<Body>, Problem> {
    let limit = match asked.kind {
        Kind::Recycle => RECYCLE_BODY_LIMIT,
        Kind::Complete => crate::BODY_LIMIT,
    };
    let bytes = body_bytes(body, limit)?;
    let input = match asked.kind {
        Kind::Recycle => Input::Recycle(parse_recycle(bytes)?),
        Kind::Complete => parse_complete(bytes)?,
    };
    let hash = body_hash(bytes);
    let (account, market, tracked) = read_situation(state, path).await?;
    let now = state.clock.now();
    let tech = shared::buyer::structure::technical_account(&state.secrets, &account).await?;
    let tracked = settle_sending(state, &tech, tracked, now).await?;
    if decide(&tracked, &asked, &hash)? == Decision::Repeat {
        return Ok(answer(state, &tracked.situation, &market));
    }
    let prepared = match input {
        Input::Recycle(wanted) => {
            let old = current_routing(&tracked, &market);
            let new = recycled_routing(&old, &wanted);
            let terms = checked_terms(&market, &new)?;
            shared::buyer::check(&state.chorus, &tech, &account, &terms, now).await?;
            Prepared::Recycle {
                old,
                new,
                comment: wanted.comment,
            }
        }
        Input::Complete(mut raw) => {
            let files = raw.files_mut();
            crate::documents::resolve_documents(state, &path.siret, files, Carriage::FileByFile)
                .await?;
            let (comment, files) = completion_files(raw)?;
            Prepared::Complete { comment, files }
        }
    };
    audit(state, caller, &tracked, &prepared, now).await?;
    let action = ReturnedAction {
        kind: asked.kind.as_str().to_owned(),
        idempotency_key: asked.key.clone(),
        request_hash: hash,
        from_status: tracked
            .situation
            .transmission
            .chorus_status
            .clone()
            .unwrap_or_default(),
        started_at: now,
        sending_until: Some(now + time::Duration::seconds(SENDING_SECONDS)),
        done_at: None,
        routing: prepared.routing_change(caller, now),
    };
    let tracked = write(
        state,
        &tracked,
        Change::default().returned_action(&action),
        now,
    )
    .await?;
    let left = send(state, &tech, &tracked, &action, &prepared).await?;
    tracing::info!(action = asked.kind.as_str(), chorus_status = ?left.situation.transmission.chorus_status, "returned invoice sent again");
    Ok(answer(state, &left.situation, &market))
}

/// What is sent, once checked.
enum Prepared {
    Recycle {
        old: Routing,
        new: Routing,
        comment: Option<String>,
    },
    Complete {
        comment: Option<String>,
        files: Vec<EmbeddedFile>,
    },
}

impl Prepared {
    /// A recycle's change of routing, recorded once Chorus Pro accepted it.
    fn routing_change(&self, caller: &Caller, now: OffsetDateTime) -> Option<RoutingChange> {
        match self {
            Prepared::Recycle { old, new, .. } => Some(RoutingChange {
                at: now,
                actor: caller.sub.clone(),
                old: old.clone(),
                new: new.clone(),
            }),
            Prepared::Complete { .. } => None,
        }
    }
}

fn comment_fault(comment: &Option<String>, faults: &mut Vec<FieldError>) {
    if let Some(text) = comment
        && (text.trim().is_empty() || text.chars().count() > MAX_COMMENT_CHARS)
    {
        faults.push(FieldError::new(
            "comment",
            "invalid_comment",
            "Le commentaire doit faire de 1 à 2000 caractères.",
        ));
    }
}

fn parse_recycle(bytes: &[u8]) -> Result<RecycleInput, Problem> {
    let mut body = JsonObject::parse(bytes)?;
    let siret = body.string("buyer_siret");
    let service = body.string("buyer_service_code");
    let commitment = body.string("commitment_number");
    let comment = body.string("comment");
    let mut faults = Vec::new();
    let buyer_siret = siret.as_deref().and_then(|raw| {
        Siret::parse(raw, shared::domain::SiretCheck::ShapeOnly)
            .map_err(|e| faults.push(FieldError::new("buyer_siret", e.code(), e.message_fr(raw))))
            .ok()
    });
    let buyer_service_code = service.as_deref().and_then(|raw| {
        ServiceCode::parse(raw)
            .map_err(|e| {
                let message = e.message_fr("Le code service de l'acheteur", raw);
                faults.push(FieldError::new("buyer_service_code", e.code(), message));
            })
            .ok()
    });
    let commitment_number = commitment.as_deref().and_then(|raw| {
        CommitmentNumber::parse(raw)
            .map_err(|e| {
                let message = e.message_fr("Le numéro d'engagement juridique", raw);
                faults.push(FieldError::new("commitment_number", e.code(), message));
            })
            .ok()
    });
    if siret.is_none() && service.is_none() && commitment.is_none() {
        faults.push(FieldError::new(
            "buyer_siret",
            "required",
            "Indiquez au moins une donnée d'acheminement à corriger : buyer_siret, buyer_service_code ou commitment_number.",
        ));
    }
    comment_fault(&comment, &mut faults);
    body.finish(faults)?;
    Ok(RecycleInput {
        buyer_siret,
        buyer_service_code,
        commitment_number,
        comment,
    })
}

/// The completion's form: a comment within bounds, something to send, and the files'
/// names and contents when given inline (uploaded documents are read later).
fn parse_complete(bytes: &[u8]) -> Result<Input, Problem> {
    let raw: request::RawCompletion = request::parse_json(bytes)?;
    let mut faults = Vec::new();
    comment_fault(&raw.comment, &mut faults);
    if raw.comment.is_none() && raw.file_count() == 0 {
        faults.push(FieldError::new(
            "attachments",
            "required",
            "Joignez au moins une pièce (attachments) ou un commentaire (comment) pour compléter la facture.",
        ));
    }
    faults.extend(raw.form_faults());
    if !faults.is_empty() {
        return Err(Problem::validation(faults));
    }
    Ok(Input::Complete(raw))
}

/// The completion's files, every one resolved, checked like a transmission's.
fn completion_files(
    raw: request::RawCompletion,
) -> Result<(Option<String>, Vec<EmbeddedFile>), Problem> {
    let (comment, files) = raw.files()?;
    ubl::check_attachments(&files).map_err(|violations| {
        let errors: Vec<FieldError> = violations
            .into_iter()
            .map(|v| FieldError::new("attachments", v.rule_id, v.message_fr))
            .collect();
        Problem::validation(errors)
    })?;
    Ok((comment, files))
}

/// Where the invoice is addressed now: the last recycle's routing, or the market's (with
/// the situation's own commitment number, as the deposit carried it).
fn current_routing(tracked: &Tracked, market: &Market) -> Routing {
    if let Some(last) = tracked.record.routing_changes.last() {
        return last.new.clone();
    }
    let terms = &market.terms;
    Routing {
        buyer_siret: terms.buyer_siret.to_string(),
        buyer_service_code: terms.buyer_service_code.as_ref().map(|c| c.to_string()),
        commitment_number: tracked
            .situation
            .commitment_under(terms)
            .map(|c| c.to_string()),
    }
}

/// The routing after the recycle: what is given replaces what was there. A new buyer
/// drops the old service code (a service belongs to its structure).
fn recycled_routing(old: &Routing, wanted: &RecycleInput) -> Routing {
    let new_buyer = wanted
        .buyer_siret
        .as_ref()
        .map(|s| s.to_string())
        .filter(|s| *s != old.buyer_siret);
    let service = match (&wanted.buyer_service_code, &new_buyer) {
        (Some(code), _) => Some(code.to_string()),
        (None, Some(_)) => None,
        (None, None) => old.buyer_service_code.clone(),
    };
    Routing {
        buyer_siret: new_buyer.unwrap_or_else(|| old.buyer_siret.clone()),
        buyer_service_code: service,
        commitment_number: wanted
            .commitment_number
            .as_ref()
            .map(|c| c.to_string())
            .or_else(|| old.commitment_number.clone()),
    }
}

/// The market's terms with the new routing, for the buyer check.
fn checked_terms(market: &Market, routing: &Routing) -> Result<MarketTerms, Problem> {
    let mut terms = market.terms.clone();
    terms.buyer_siret = Siret::parse(&routing.buyer_siret, shared::domain::SiretCheck::ShapeOnly)
        .map_err(|_| Problem::internal())?;
    terms.buyer_service_code = routing
        .buyer_service_code
        .as_deref()
        .map(ServiceCode::parse)
        .transpose()
        .map_err(|_| Problem::internal())?;
    terms.commitment_number = routing
        .commitment_number
        .as_deref()
        .map(CommitmentNumber::parse)
        .transpose()
        .map_err(|_| Problem::internal())?;
    Ok(terms)
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Send,
    Repeat,
}

/// Whether the action is sent, answered as already done, or refused.
fn decide(tracked: &Tracked, asked: &Asked, hash: &str) -> Result<Decision, Problem> {
    let transmission = &tracked.situation.transmission;
    let status = transmission.chorus_status.as_deref();
    let last = tracked
        .record
        .returned_action
        .as_ref()
        .filter(|a| a.kind == asked.kind.as_str());
    if let Some(action) = last
        && asked.key.is_some()
        && action.idempotency_key == asked.key
    {
        if action.request_hash != hash {
            return Err(Problem::new(
                ProblemCode::IdempotencyKeyReused,
                "Cette clé Idempotency-Key a déjà servi pour cette action sur cette situation avec un autre contenu : renvoyez la requête d'origine à l'identique, ou utilisez une nouvelle clé.",
            ));
        }
        if action.done_at.is_some() {
            return Ok(Decision::Repeat);
        }
    }
    let allowed = transmission.chorus_invoice_id.is_some()
        && status.is_some_and(|s| asked.kind.allowed().contains(&s));
    if allowed {
        return Ok(Decision::Send);
    }
    if last.is_some_and(|a| a.done_at.is_some() && a.request_hash == hash) {
        return Ok(Decision::Repeat);
    }
    Err(Problem::new(
        ProblemCode::ActionNotAllowed,
        format!(
            "La facture est au statut Chorus Pro « {} » (transmission « {} ») : {}.",
            status.unwrap_or("aucun"),
            transmission.state.as_str(),
            asked.kind.allowed_fr()
        ),
    ))
}

/// An action left `sending` by a request that lost Chorus Pro's answer (or died): still
/// held, the caller waits; past its hold, the invoice's status in Chorus Pro says whether
/// it landed.
async fn settle_sending(
    state: &State,
    tech: &TechnicalAccount,
    tracked: Tracked,
    now: OffsetDateTime,
) -> Result<Tracked, Problem> {
    let Some(action) = tracked.record.returned_action.clone() else {
        return Ok(tracked);
    };
    let Some(until) = action.sending_until else {
        return Ok(tracked);
    };
    if until > now {
        return Err(Problem::new(
            ProblemCode::TransmissionInProgress,
            "Une autre requête est en train d'envoyer cette action à Chorus Pro : consultez la situation dans un instant.",
        ));
    }
    let Some(id) = tracked.situation.transmission.chorus_invoice_id else {
        return Ok(tracked);
    };
    let history = state
        .chorus
        .read_invoice_history(tech, &InvoiceHistoryRequest::new(id))
        .await
        .map_err(|e| chorus_problem(&e))?;
    let current = history
        .statut_courant_code
        .as_ref()
        .map(|s| s.as_str().to_owned());
    let landed = current.as_deref().is_some_and(|s| s != action.from_status);
    tracing::info!(landed, "an action left sending was looked up in Chorus Pro");
    let change = match current {
        Some(status) if landed => landed_change(&tracked, &action, &status, now),
        _ => Change::default().returned_action(&ReturnedAction {
            sending_until: None,
            ..action
        }),
    };
    write(state, &tracked, change, now).await
}

/// One conditional write that keeps the transmission's state; a concurrent change is a 409.
async fn write(
    state: &State,
    tracked: &Tracked,
    change: Change,
    now: OffsetDateTime,
) -> Result<Tracked, Problem> {
    let at = tracked.situation.transmission.state;
    match state.store.transition(tracked, at, at, change, now).await {
        Ok(t) => Ok(t),
        Err(StoreError::Conflict) => Err(Problem::new(
            ProblemCode::TransmissionInProgress,
            "La situation a changé entre-temps (une autre requête ou le suivi l'a mise à jour) : consultez-la, puis réessayez si besoin.",
        )),
        Err(e) => Err(store_problem(&e)),
    }
}

async fn audit(
    state: &State,
    caller: &Caller,
    tracked: &Tracked,
    prepared: &Prepared,
    now: OffsetDateTime,
) -> Result<(), Problem> {
    let situation = &tracked.situation;
    let status = situation
        .transmission
        .chorus_status
        .as_deref()
        .unwrap_or("");
    let mut details = vec![format!("chorus_status={status}")];
    let action = match prepared {
        Prepared::Recycle { old, new, .. } => {
            details.push(format!("old_routing={}", routing_text(old)));
            details.push(format!("new_routing={}", routing_text(new)));
            "invoice_recycle_asked"
        }
        Prepared::Complete { comment, files } => {
            details.push(format!("comment={}", comment.is_some()));
            details.extend(files.iter().map(|f| format!("attachment={}", f.filename)));
            "invoice_completion_asked"
        }
    };
    audit_request(state, caller, situation, action, details, now).await
}

fn routing_text(r: &Routing) -> String {
    format!(
        "{}|{}|{}",
        r.buyer_siret,
        r.buyer_service_code.as_deref().unwrap_or(""),
        r.commitment_number.as_deref().unwrap_or("")
    )
}

/// Sends the action, then records what Chorus Pro answered.
async fn send(
    state: &State,
    tech: &TechnicalAccount,
    tracked: &Tracked,
    action: &ReturnedAction,
    prepared: &Prepared,
) -> Result<Tracked, Problem> {
    let id = tracked
        .situation
        .transmission
        .chorus_invoice_id
        .ok_or_else(Problem::internal)?;
    let outcome = match prepared {
        // A works document is recycled by the works service (AIFE recycle-works-invoice).
        Prepared::Recycle { new, .. } if shared::works::followed_as_works(tracked) => {
            recycle_works(state, tech, id, new).await
        }
        Prepared::Recycle { new, comment, .. } => {
            recycle(state, tech, id, new, comment.clone()).await
        }
        Prepared::Complete { comment, files } => {
            complete(state, tech, id, comment.clone(), files).await
        }
    };
    let now = state.clock.now();
    match outcome {
        Ok(status) => {
            write(
                state,
                tracked,
                landed_change(tracked, action, &status, now),
                now,
            )
            .await
        }
        Err(error) => Err(failed(state, tracked, action, &error, now).await),
    }
}

/// An action Chorus Pro accepted (its answer, or found landed after a lost one): done, the
/// invoice's new status, a recycle's routing change recorded, and the follow-up due at
/// once, from the new status.
fn landed_change(
    tracked: &Tracked,
    action: &ReturnedAction,
    status: &str,
    now: OffsetDateTime,
) -> Change {
    let done = ReturnedAction {
        sending_until: None,
        done_at: Some(now),
        ..action.clone()
    };
    let change = Change::default()
        .returned_action(&done)
        .chorus_status(Some(status))
        .checks_done(0)
        .due(now);
    match &action.routing {
        Some(routing) => {
            let mut changes = tracked.record.routing_changes.clone();
            changes.push(routing.clone());
            change.routing_changes(&changes)
        }
        None => change,
    }
}

/// `factures/v1/recycler`; the status the invoice is in afterwards.
async fn recycle(
    state: &State,
    tech: &TechnicalAccount,
    id: i64,
    routing: &Routing,
    comment: Option<String>,
) -> Result<String, ChorusError> {
    let request = InvoiceRecycle {
        identifiant_facture_cpp: id,
        destinataire: RecycleRecipient {
            code_destinataire: routing.buyer_siret.clone(),
            code_service_executant: routing.buyer_service_code.clone(),
        },
        reference: routing
            .commitment_number
            .clone()
            .map(|numero_bon_commande| RecycleReference {
                numero_bon_commande,
            }),
        commentaire: comment,
    };
    let answer = state.chorus.recycle_invoice(tech, &request).await?;
    // AIFE's example answers the new status (`DEPOSEE`); never keep `A_RECYCLER`, which
    // would let the same recycle be sent again.
    Ok(answer
        .statut_facture
        .filter(|s| s != "A_RECYCLER")
        .unwrap_or_else(|| "DEPOSEE".to_owned()))
}

/// `facturesTravaux/v1/recycler` (`recyclerFactureTravaux`: no comment field); the status
/// the document is in afterwards, never `A_RECYCLER` (as for `recycle`).
async fn recycle_works(
    state: &State,
    tech: &TechnicalAccount,
    id: i64,
    routing: &Routing,
) -> Result<String, ChorusError> {
    let request = WorksInvoiceRecycle {
        id_facture_travaux: id,
        identifiant_destinataire: routing.buyer_siret.clone(),
        code_service_executant: routing.buyer_service_code.clone(),
        numero_bon_commande: routing.commitment_number.clone(),
    };
    let answer = state.chorus.recycle_works_invoice(tech, &request).await?;
    Ok(answer
        .statut_facture_travaux
        .filter(|s| s != "A_RECYCLER")
        .unwrap_or_else(|| "DEPOSEE".to_owned()))
}

/// Each file added to the account (`ajouter/fichier`), then `factures/v1/completer`
/// naming them; the status afterwards (`COMPLETEE`: AIFE's life cycle).
async fn complete(
    state: &State,
    tech: &TechnicalAccount,
    id: i64,
    comment: Option<String>,
    files: &[EmbeddedFile],
) -> Result<String, ChorusError> {
    let mut added = Vec::with_capacity(files.len());
    for file in files {
        let content = match &file.content {
            FileContent::Base64(text) => text.clone(),
            FileContent::Bytes(bytes) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(bytes)
            }
        };
        let upload = FileUpload::new(&file.filename, &file.mime_code, content);
        let answer = state.chorus.upload_file(tech, &upload).await?;
        added.push(CompletionFile {
            piece_jointe_complementaire_designation: file.filename.clone(),
            piece_jointe_complementaire_id: answer.piece_jointe_id,
            piece_jointe_complementaire_type: COMPLETION_FILE_TYPE.to_owned(),
        });
    }
    let request = InvoiceCompletion {
        identifiant_facture_cpp: id,
        commentaire: comment,
        piece_jointe_complementaire: added,
    };
    state.chorus.complete_invoice(tech, &request).await?;
    Ok("COMPLETEE".to_owned())
}

/// A failed call: an action that may have reached Chorus Pro stays `sending` (its hold
/// ended, so the next request looks the invoice up first); one that certainly did not is
/// cleared, and may simply be asked again.
async fn failed(
    state: &State,
    tracked: &Tracked,
    action: &ReturnedAction,
    error: &ChorusError,
    now: OffsetDateTime,
) -> Problem {
    let may_have_landed = error.deposit_may_be_recorded();
    let left = ReturnedAction {
        sending_until: may_have_landed.then_some(now),
        ..action.clone()
    };
    if let Err(e) = write(
        state,
        tracked,
        Change::default().returned_action(&left),
        now,
    )
    .await
    {
        tracing::error!(
            code = e.code.as_str(),
            "an action's failure could not be recorded"
        );
    }
    action_problem(error, may_have_landed)
}

/// What the company is told when an action failed. An answer that may mean the action
/// landed (lost, or unreadable) is never a reason to send it blindly again: the next
/// request reads the invoice's status first (`settle_sending`).
fn action_problem(error: &ChorusError, may_have_landed: bool) -> Problem {
    match error {
        ChorusError::BusinessRefusal {
            code_retour,
            libelle,
        } => {
            tracing::info!(code_retour, "Chorus Pro refused the action");
            Problem::new(
                ProblemCode::ActionNotAllowed,
                format!(
                    "Chorus Pro refuse l'action (code {code_retour} : {libelle}) : rien n'a été modifié. Consultez le statut de la facture dans Chorus Pro."
                ),
            )
        }
        // Chorus Pro answered, in a shape the gateway cannot read: said as such (issue 19),
        // with the lost answer's way out.
        ChorusError::UnexpectedAnswer { path, .. } => Problem::new(
            ProblemCode::ChorusUnexpectedAnswer,
            format!(
                "Chorus Pro a répondu à l'action par une réponse que la passerelle ne sait pas lire (appel {path}) : l'action a peut-être été prise en compte. Ne la refaites pas dans le portail Chorus Pro ; renvoyez la même requête dans quelques minutes : la passerelle vérifiera d'abord le statut de la facture dans Chorus Pro et ne l'enverra pas deux fois. Si l'erreur persiste, contactez le support de la passerelle."
            ),
        ),
        _ if may_have_landed => Problem::new(
            ProblemCode::ChorusUnavailable,
            "Chorus Pro n'a pas confirmé l'action : renvoyez la même requête dans un instant ; la passerelle vérifiera d'abord dans Chorus Pro si elle a été prise en compte, et ne l'enverra pas deux fois.",
        ),
        other => chorus_problem(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19: an unreadable answer to an action is said as such (502), not as an
    /// unavailable Chorus Pro, and still tells the company to ask again, not to redo it.
    #[test]
    fn an_unreadable_answer_to_an_action_is_502_and_asks_for_the_same_request_again() {
        let error = ChorusError::UnexpectedAnswer {
            path: "factures/v1/recycler",
            error: "the body is not JSON (41 bytes): expected value at line 1 column 1".into(),
        };
        assert!(
            error.deposit_may_be_recorded(),
            "settled by reading the status"
        );
        let problem = action_problem(&error, error.deposit_may_be_recorded());
        assert_eq!(problem.code, ProblemCode::ChorusUnexpectedAnswer);
        assert_eq!(problem.status(), 502);
        assert!(
            problem.detail.contains("ne sait pas lire"),
            "{}",
            problem.detail
        );
        assert!(
            problem.detail.contains("renvoyez la même requête"),
            "{}",
            problem.detail
        );
        assert!(
            problem.detail.contains("factures/v1/recycler"),
            "{}",
            problem.detail
        );
        assert!(!problem.detail.contains("not JSON"), "{}", problem.detail);
    }

    #[test]
    fn a_lost_answer_stays_unavailable_and_a_refusal_not_allowed() {
        let lost = ChorusError::Unavailable {
            may_have_reached_chorus: true,
        };
        let problem = action_problem(&lost, lost.deposit_may_be_recorded());
        assert_eq!(problem.code, ProblemCode::ChorusUnavailable);
        assert!(
            problem.detail.contains("n'a pas confirmé"),
            "{}",
            problem.detail
        );
        let odd_status = ChorusError::UnexpectedResponse {
            status: 404,
            may_have_reached_chorus: false,
        };
        let problem = action_problem(&odd_status, odd_status.deposit_may_be_recorded());
        assert_eq!(problem.code, ProblemCode::ChorusUnavailable);
        assert!(problem.detail.contains("404"), "{}", problem.detail);
        let refused = ChorusError::BusinessRefusal {
            code_retour: 20001,
            libelle: "statut incompatible".into(),
        };
        assert_eq!(
            action_problem(&refused, false).code,
            ProblemCode::ActionNotAllowed
        );
    }
}
