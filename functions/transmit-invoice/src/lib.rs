//! `POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission`:
//! builds the situation's EN 16931 invoice, checks it, and deposits it in Chorus Pro with
//! the company's technical account — once, whatever fails and however often it is asked.
//!
//! The first attempt happens in the request; what cannot finish there (Chorus Pro down, a
//! lost answer, a refused password) is left in a state the follow-up function
//! (`status-sync`) picks up. The answer is always the situation as it stands.

// Public for `make qualify`, which builds its invoices through this same path.
mod documents;
pub mod request;
mod resolve;
mod returned;
mod works;

use std::time::Duration as StdDuration;

use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};
use shared::deposit::{DepositError, payload_owner};
use shared::documents::DocumentBucket;
use shared::domain::transmission::TransmissionState;
use shared::domain::{
    CompanyAccount, Market, MarketRef, Siret, SiretCheck, Situation, SituationNumber,
};
use shared::http::json::body_bytes;
use shared::http::{Caller, FieldError, Problem, ProblemCode, json_response};
use shared::http::{Route, answer_in, path_param, store_problem};
use shared::services::DepositingState;
use shared::services::payment_terms;
use shared::store::StoreError;
use shared::store::transmission::{Change, Claim, Tracked};
use shared::ubl::{self, CheckOptions};

/// API Gateway hands a Lambda at most 6 MB: the whole request, PDF included, must fit.
pub const BODY_LIMIT: usize = 6 * 1024 * 1024;
/// The invoice files are kept this long for retries, then the table's TTL removes them.
const PAYLOAD_DAYS: i64 = 90;
/// How long a second request waits for a deposit in flight before answering 409.
const WAIT_FOR_DEPOSIT: StdDuration = StdDuration::from_secs(10);

/// The clients of the cold start and the depositor (shared with the other function that
/// deposits), plus the documents bucket this function alone reads.
pub struct State {
    pub depositing: DepositingState,
    /// `None` without `DOCUMENTS_BUCKET`: a `document_id` then answers 503.
    pub documents: Option<DocumentBucket>,
}

impl State {
    pub fn from_sdk(config: shared::config::Config, sdk: &shared::aws::SdkConfig) -> Self {
        let documents = config
            .documents_bucket
            .clone()
            .map(|bucket| DocumentBucket::from_sdk(sdk, bucket));
        State {
            depositing: DepositingState::from_sdk(config, sdk),
            documents,
        }
    }
}

impl std::ops::Deref for State {
    type Target = DepositingState;
    fn deref(&self) -> &DepositingState {
        &self.depositing
    }
}

impl std::ops::DerefMut for State {
    fn deref_mut(&mut self) -> &mut DepositingState {
        &mut self.depositing
    }
}

pub async fn handle(state: &State, request: Request) -> Response<Body> {
    let siret = path_param(&request, "siret");
    let market_ref = path_param(&request, "market_ref");
    let number = path_param(&request, "number");
    let span = tracing::info_span!("request", siret = %siret, market_ref = %market_ref, situation = %number);
    let outcome = Box::pin(async {
        let caller = Caller::from_request(&request)?;
        caller.authorise(&siret)?;
        // A value that is not visible ASCII is kept (lossily) so that it is refused,
        // never mistaken for no key at all.
        let key = request
            .headers()
            .get("idempotency-key")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
        match Route::of(&request) {
            Some(Route::ResolveTransmission) => {
                let path = SituationPath::parse(&siret, &market_ref, &number, None)?;
                resolve::resolve(state, &caller, &path, request.body()).await
            }
            Some(route @ (Route::RecycleTransmission | Route::CompleteTransmission)) => {
                let kind = if route == Route::RecycleTransmission {
                    returned::Kind::Recycle
                } else {
                    returned::Kind::Complete
                };
                let path = SituationPath::parse(&siret, &market_ref, &number, key.as_deref())?;
                let asked = returned::Asked { kind, key };
                returned::handle(state, &caller, &path, asked, request.body()).await
            }
            // `Transmit`, and (as always) any other key.
            _ => transmit(state, &siret, &market_ref, &number, key, request.body()).await,
        }
    });
    answer_in(span, outcome).await
}

/// The situation a request is about, from its path.
pub(crate) struct SituationPath {
    pub siret: Siret,
    pub market_ref: MarketRef,
    pub number: SituationNumber,
}

impl SituationPath {
    /// Every fault of the path (and of the `Idempotency-Key`, when given) at once.
    fn parse(
        raw_siret: &str,
        raw_market: &str,
        raw_number: &str,
        idempotency_key: Option<&str>,
    ) -> Result<SituationPath, Problem> {
        let mut faults = Vec::new();
        let siret = Siret::parse(raw_siret, SiretCheck::ShapeOnly)
            .map_err(|e| faults.push(FieldError::new("siret", e.code(), e.message_fr(raw_siret))))
            .ok();
        let market_ref = MarketRef::parse(raw_market)
            .map_err(|e| {
                faults.push(FieldError::new(
                    "market_ref",
                    e.code(),
                    e.message_fr(raw_market),
                ))
            })
            .ok();
        let number = SituationNumber::parse(raw_number)
            .map_err(|e| {
                faults.push(FieldError::new(
                    "number",
                    e.code(),
                    e.message_fr(raw_number),
                ))
            })
            .ok();
        if let Some(key) = idempotency_key
            && (key.is_empty()
                || key.len() > 255
                || !key.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        {
            faults.push(FieldError::new(
                "Idempotency-Key",
                "invalid_idempotency_key",
                "L'en-tête Idempotency-Key doit faire 1 à 255 caractères ASCII visibles.",
            ));
        }
        match (siret, market_ref, number) {
            (Some(siret), Some(market_ref), Some(number)) if faults.is_empty() => {
                Ok(SituationPath {
                    siret,
                    market_ref,
                    number,
                })
            }
            _ => Err(Problem::validation(faults)),
        }
    }
}

/// The company's account and the situation, read together; the 404s in the order
/// company, market, situation.
pub(crate) async fn read_situation(
    state: &State,
    path: &SituationPath,
) -> Result<(CompanyAccount, Market, Tracked), Problem> {
    let read = state
        .store
        .get_transmission_context(&path.siret, &path.market_ref, path.number)
        .await
        .map_err(|e| store_problem(&e))?;
    let account = read.account.ok_or_else(company_not_configured)?;
    let market = read.market.ok_or_else(market_not_found)?;
    let tracked = read.tracked.ok_or_else(situation_not_found)?;
    Ok((account, market, tracked))
}

fn company_not_configured() -> Problem {
    Problem::new(
        ProblemCode::CompanyNotConfigured,
        "Aucun compte Chorus Pro n'est enregistré pour cette entreprise : renseignez-le dans « Mon compte » avant de transmettre.",
    )
}

fn market_not_found() -> Problem {
    Problem::new(
        ProblemCode::MarketNotFound,
        "Ce marché n'est pas enregistré pour cette entreprise.",
    )
}

fn situation_not_found() -> Problem {
    Problem::new(
        ProblemCode::SituationNotFound,
        "Cette situation n'est pas enregistrée pour ce marché.",
    )
}

async fn transmit(
    state: &State,
    raw_siret: &str,
    raw_market: &str,
    raw_number: &str,
    idempotency_key: Option<String>,
    body: &Body,
) -> Result<Response<Body>, Problem> {
    let bytes = body_bytes(body, BODY_LIMIT)?;
    let path = SituationPath::parse(
        raw_siret,
        raw_market,
        raw_number,
        idempotency_key.as_deref(),
    )?;
    let SituationPath {
        siret,
        market_ref,
        number,
    } = path;

    // One read for all three: the 404s in the order company, market, situation.
    let read = state
        .store
        .get_transmission_context(&siret, &market_ref, number)
        .await
        .map_err(|e| store_problem(&e))?;
    let account = read.account.ok_or_else(company_not_configured)?;
    let market = read.market.ok_or_else(market_not_found)?;
    let mut next = Some(read.tracked.ok_or_else(situation_not_found)?);
    let asked = Asked {
        bytes,
        key: idempotency_key.as_deref(),
        account: &account,
        market: &market,
    };
    for _ in 0..3 {
        let tracked = match next.take() {
            Some(tracked) => tracked,
            None => state
                .store
                .get_tracked(&siret, &market_ref, number)
                .await
                .map_err(|e| store_problem(&e))?
                .ok_or_else(situation_not_found)?,
        };
        if tracked.situation.transmission.state != TransmissionState::NotTransmitted {
            refuse_reused_key(&tracked, asked.key, bytes)?;
            // Already under way or done: never a second deposit; the same answer.
            return existing(state, tracked, &account, &market).await;
        }
        if let Some(left) = claim_and_deposit(state, &asked, &tracked).await? {
            tracing::info!(invoice_number = %left.situation.identifiers.invoice_number, state = left.situation.transmission.state.as_str(), "transmission claimed");
            return Ok(answer(state, &left.situation, &market));
        }
    }
    Err(Problem::new(
        ProblemCode::TransmissionInProgress,
        "La situation est modifiée ou transmise en même temps par une autre requête : réessayez dans un instant.",
    ))
}

/// A transmission request: its body and key, for the company's account and market.
struct Asked<'a> {
    bytes: &'a [u8],
    key: Option<&'a str>,
    account: &'a CompanyAccount,
    market: &'a Market,
}

/// Builds and checks the invoice, stores it, then claims and deposits it: the record as
/// left, or `None` when another request moved the situation first (decide again).
async fn claim_and_deposit(
    state: &State,
    asked: &Asked<'_>,
    tracked: &Tracked,
) -> Result<Option<Tracked>, Problem> {
    let prepared = prepare_invoice(state, asked, tracked).await?;
    let now = state.clock.now();
    let payload_id = uuid::Uuid::new_v4().simple().to_string();
    let expires = (now + time::Duration::days(PAYLOAD_DAYS)).unix_timestamp();
    let situation = &tracked.situation;
    let file = prepared.file.as_slice();
    state
        .store
        .put_payload(
            &situation.siret,
            &payload_owner(tracked),
            &payload_id,
            file,
            expires,
        )
        .await
        .map_err(|e| store_problem(&e))?;
    let number = situation.identifiers.invoice_number.as_str();
    let claim = Change::default()
        .claim(&Claim {
            invoice_number: number.to_owned(),
            payload_id,
            request_hash: body_hash(asked.bytes),
            flux_file_name: flux_file_name(number),
            environment: asked.account.environment.as_str().to_owned(),
            idempotency_key: asked.key.map(str::to_owned),
            amount_due: prepared.amount_due,
            at: now,
        })
        .route(prepared.route.code());
    // The deposit's lease, the hold or the waiting claim adds its due time.
    match state
        .depositor
        .first_attempt(tracked, claim, file, asked.account, now)
        .await
    {
        Ok(left) => Ok(Some(left)),
        // Another request claimed it or moved it on, or the identifiers changed.
        Err(DepositError::Store(StoreError::Conflict)) => Ok(None),
        Err(e) => {
            // Whatever was written stays: the follow-up function takes it from there.
            tracing::error!(error = %e, "deposit attempt failed");
            match reread_tracked(state, tracked).await? {
                // Nothing was written: the caller may simply ask again.
                t if t.situation.transmission.state == TransmissionState::NotTransmitted => {
                    Err(Problem::service_unavailable())
                }
                t => Ok(Some(t)),
            }
        }
    }
}

/// The situation's invoice, from the request (its uploaded documents read) and what the
/// gateway knows, checked, and the file its route sends (`works::route_of`).
async fn prepare_invoice(
    state: &State,
    asked: &Asked<'_>,
    tracked: &Tracked,
) -> Result<works::Prepared, Problem> {
    let mut raw = request::parse(asked.bytes)?;
    let route =
        shared::works::route_of(asked.market.terms.framework, state.config.works_submission);
    let carriage = documents::Carriage::of(route);
    documents::resolve_documents(state, &tracked.situation.siret, raw.files_mut(), carriage)
        .await?;
    let invoice = request::to_invoice(raw, &context(tracked, asked.market, asked.account))?;
    let today = state.clock.now().date();
    let options = CheckOptions {
        siret_check: asked.account.environment.siret_check(),
        max_total_file_bytes: ubl::MAX_TOTAL_FILE_BYTES,
        today: Some(today.next_day().unwrap_or(today)),
    };
    let prepared = ubl::prepare(&invoice, &options).map_err(request::invalid)?;
    works::file_to_send(
        &invoice,
        prepared,
        asked.market,
        asked.account,
        &state.config,
    )
}

/// Records what a caller asked of a situation (who, when, what), before it is acted on: the
/// situation and its invoice number, then `details`.
pub(crate) async fn audit_request(
    state: &State,
    caller: &Caller,
    situation: &Situation,
    action: &str,
    details: Vec<String>,
    now: time::OffsetDateTime,
) -> Result<(), Problem> {
    let mut fields = vec![
        format!(
            "situation={}/{}",
            situation.market_ref,
            situation.number.get()
        ),
        format!("invoice_number={}", situation.identifiers.invoice_number),
    ];
    fields.extend(details);
    let entry = shared::store::AuditEntry {
        at: now,
        actor: caller.sub.clone(),
        action: action.to_owned(),
        fields,
    };
    state
        .store
        .append_audit(&situation.siret, &entry)
        .await
        .map_err(|e| store_problem(&e))
}

/// SHA-256 of the request body, normalised: the JSON re-serialised with its keys sorted and
/// no spacing, so the same request formatted differently is the same request.
pub(crate) fn body_hash(bytes: &[u8]) -> String {
    fn sorted(value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                let ordered: std::collections::BTreeMap<String, Value> =
                    map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(ordered.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    let canonical = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| serde_json::to_vec(&sorted(v)).ok());
    format!(
        "{:x}",
        Sha256::digest(canonical.as_deref().unwrap_or(bytes))
    )
}

/// The same `Idempotency-Key` with another body is another request under a used key:
/// refused, so that a client bug never passes for a repeat.
fn refuse_reused_key(tracked: &Tracked, key: Option<&str>, body: &[u8]) -> Result<(), Problem> {
    let record = &tracked.record;
    let same_key = key.is_some() && record.idempotency_key.as_deref() == key;
    match &record.request_hash {
        Some(stored) if same_key && *stored != body_hash(body) => Err(Problem::new(
            ProblemCode::IdempotencyKeyReused,
            "Cette clé Idempotency-Key a déjà servi à transmettre cette situation avec un autre contenu : renvoyez la requête d'origine à l'identique, ou utilisez une nouvelle clé.",
        )),
        _ => Ok(()),
    }
}

/// The deposit's `nomFichier`: the invoice number in a safe set, `.xml`.
pub fn flux_file_name(invoice_number: &str) -> String {
    let safe: String = invoice_number
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.xml")
}

fn context<'a>(
    tracked: &'a Tracked,
    market: &'a Market,
    account: &'a CompanyAccount,
) -> request::Context<'a> {
    let terms = &market.terms;
    request::Context {
        invoice_number: tracked.situation.identifiers.invoice_number.as_str(),
        seller_siret: account.siret.as_str(),
        buyer_siret: terms.buyer_siret.as_str(),
        framework: terms.framework.code(),
        market_number: terms.market_number.as_str(),
        commitment_number: tracked
            .situation
            .commitment_under(terms)
            .map(|c| c.as_str()),
        buyer_service_code: terms.buyer_service_code.as_ref().map(|c| c.as_str()),
        project_manager: terms
            .project_manager
            .as_ref()
            .map(|pm| ubl::ProjectManager {
                siret: pm.siret.to_string(),
                service_code: pm.service_code.as_ref().map(|c| c.as_str().to_owned()),
            }),
    }
}

async fn reread(
    state: &State,
    siret: &Siret,
    market_ref: &MarketRef,
    number: SituationNumber,
) -> Result<Tracked, Problem> {
    state
        .store
        .get_tracked(siret, market_ref, number)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(Problem::internal)
}

async fn reread_tracked(state: &State, tracked: &Tracked) -> Result<Tracked, Problem> {
    let situation = &tracked.situation;
    reread(
        state,
        &situation.siret,
        &situation.market_ref,
        situation.number,
    )
    .await
}

/// A transmission already started: a deposit in flight (`depositing` under its lease) is
/// waited for a little, so that concurrent callers get the same answer as the one that
/// deposits; an attempt that died is taken over — a `pending` claim by depositing (nothing
/// was sent from `pending`), a `depositing` lease by reconciling with Chorus Pro; the
/// answer is the situation as it stands.
async fn existing(
    state: &State,
    tracked: Tracked,
    account: &CompanyAccount,
    market: &Market,
) -> Result<Response<Body>, Problem> {
    let mut tracked = tracked;
    let started = std::time::Instant::now();
    loop {
        let now = state.clock.now();
        let record = &tracked.record;
        let takeover = match tracked.situation.transmission.state {
            TransmissionState::Depositing => {
                Some(record.lease_until.is_none_or(|until| until <= now))
            }
            // A claim is due when it may be taken over (at once when its request gave up).
            TransmissionState::Pending => Some(record.next_check_at.is_none_or(|at| at <= now)),
            _ => None,
        };
        match takeover {
            // Done, or in a state only the follow-up moves.
            None => break,
            // In flight: wait for it.
            Some(false) => {
                if started.elapsed() >= WAIT_FOR_DEPOSIT {
                    return Err(Problem::new(
                        ProblemCode::TransmissionInProgress,
                        "Cette situation est en cours de dépôt dans Chorus Pro par une autre requête : consultez-la dans quelques instants.",
                    ));
                }
                tokio::time::sleep(StdDuration::from_millis(200)).await;
            }
            Some(true) => {
                let outcome =
                    if tracked.situation.transmission.state == TransmissionState::Depositing {
                        state
                            .depositor
                            .reconcile(tracked.clone(), account, now)
                            .await
                    } else {
                        state.depositor.attempt(tracked.clone(), account, now).await
                    };
                match outcome {
                    Ok(left) => {
                        tracked = left;
                        continue;
                    }
                    // Another request moved it first: look again.
                    Err(DepositError::Store(StoreError::Conflict)) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "taking over a transmission failed");
                        tracked = reread_tracked(state, &tracked).await?;
                        break;
                    }
                }
            }
        }
        tracked = reread_tracked(state, &tracked).await?;
    }
    Ok(answer(state, &tracked.situation, market))
}

/// `202` with the situation as it stands, its payment clock under the market's terms.
pub(crate) fn answer(state: &State, situation: &Situation, market: &Market) -> Response<Body> {
    let terms = payment_terms(&state.config, state.clock.as_ref(), Some(market));
    json_response(202, &situation.view(terms))
}
