//! The market routes: input to domain, the buyer check, storage, the market view.

use lambda_http::{Body, Request, Response};
use shared::domain::market::{
    BuyerCheck, CommitmentNumber, MarketLabel, MarketNumber, ProjectManager, ServiceCode, TextError,
};
use shared::domain::payment::BuyerCategory;
use shared::domain::{
    CompanyAccount, Framework, Market, MarketRef, MarketTerms, Siret, SiretCheck,
};
use shared::http::json::body_bytes;
use shared::http::{Caller, FieldError, JsonObject, Problem, ProblemCode, json_response};
use shared::store::{AuditEntry, StoreError};
use time::OffsetDateTime;

use shared::http::{path_siret, store_problem};

use crate::{BODY_LIMIT, PathParams, State, buyer, market_not_found, paging, structure};

/// Concurrent saves of one market race on its revision; the loser reads it again and
/// writes again (the buyer check, which does not depend on the stored market, stands).
const SAVE_ATTEMPTS: usize = 3;

struct ProjectManagerInput {
    siret: Option<String>,
    service_code: Option<String>,
}

/// What a `PUT` body says, before validation.
struct MarketInput {
    market_number: Option<String>,
    buyer_siret: Option<String>,
    buyer_service_code: Option<String>,
    commitment_number: Option<String>,
    framework: Option<String>,
    project_manager: Option<ProjectManagerInput>,
    label: Option<String>,
    buyer_category: Option<String>,
    object: JsonObject,
}

/// An optional text field left empty in a form comes as `""`: that is "none", not an
/// empty identifier.
fn optional(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn read_input(body: &Body) -> Result<MarketInput, Problem> {
    let mut object = JsonObject::parse(body_bytes(body, BODY_LIMIT)?)?;
    let project_manager = object.object("project_manager").map(|mut pm| {
        let input = ProjectManagerInput {
            siret: pm.string("siret"),
            service_code: optional(pm.string("service_code")),
        };
        object.absorb(pm);
        input
    });
    Ok(MarketInput {
        market_number: object.string("market_number"),
        buyer_siret: object.string("buyer_siret"),
        buyer_service_code: optional(object.string("buyer_service_code")),
        commitment_number: optional(object.string("commitment_number")),
        framework: object.string("framework"),
        project_manager,
        label: optional(object.string("label")),
        buyer_category: optional(object.string("buyer_category")),
        object,
    })
}

fn siret_field(
    field: &str,
    who: &str,
    raw: &str,
    check: SiretCheck,
    errors: &mut Vec<FieldError>,
) -> Option<Siret> {
    match Siret::parse(raw, check) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(FieldError::new(
                field,
                e.code(),
                format!("{who} : {}", e.message_fr(raw)),
            ));
            None
        }
    }
}

/// The market number, required: the contract's number, sent to Chorus Pro.
fn market_number(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<MarketNumber> {
    let Some(raw) = raw else {
        errors.push(FieldError::new(
            "market_number",
            "required",
            "Le numéro de marché est obligatoire : c'est le numéro du contrat, transmis à Chorus Pro.",
        ));
        return None;
    };
    text_field(
        "market_number",
        "Le numéro de marché",
        raw,
        MarketNumber::parse,
        errors,
    )
}

/// The buyer's SIRET, required: the invoice's recipient in Chorus Pro.
fn buyer_siret(
    raw: Option<&str>,
    check: SiretCheck,
    errors: &mut Vec<FieldError>,
) -> Option<Siret> {
    match raw {
        None | Some("") => {
            errors.push(FieldError::new(
                "buyer_siret",
                "required",
                "Le SIRET de l'acheteur public (destinataire de la facture dans Chorus Pro) est obligatoire.",
            ));
            None
        }
        Some(raw) => siret_field("buyer_siret", "Acheteur public", raw, check, errors),
    }
}

/// A service code given in `field`; `what` names it in the French message.
fn service_code(
    field: &str,
    what: &str,
    raw: &str,
    errors: &mut Vec<FieldError>,
) -> Option<ServiceCode> {
    ServiceCode::parse(raw)
        .map_err(|e| errors.push(FieldError::new(field, e.code(), e.message_fr(what, raw))))
        .ok()
}

/// A text identifier given in `field` (`what` names it in the French message).
fn text_field<T>(
    field: &str,
    what: &str,
    raw: &str,
    parse: fn(&str) -> Result<T, TextError>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    parse(raw)
        .map_err(|e| errors.push(FieldError::new(field, e.code(), e.message_fr(what, raw))))
        .ok()
}

/// The framework, A1 when none is given.
fn framework(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Framework> {
    match raw {
        None => Some(Framework::A1),
        Some(raw) => Framework::parse(raw)
            .map_err(|e| errors.push(FieldError::new("framework", e.code(), e.message_fr())))
            .ok(),
    }
}

/// What the body says of the *maître d'œuvre*.
enum ProjectManagerField {
    Absent,
    Given(ProjectManager),
    /// Given, with faults already collected.
    Faulty,
}

impl ProjectManagerField {
    fn into_option(self) -> Option<ProjectManager> {
        match self {
            Self::Given(pm) => Some(pm),
            Self::Absent | Self::Faulty => None,
        }
    }
}

fn project_manager(
    input: Option<ProjectManagerInput>,
    check: SiretCheck,
    errors: &mut Vec<FieldError>,
) -> ProjectManagerField {
    let Some(pm) = input else {
        return ProjectManagerField::Absent;
    };
    let siret = match pm.siret.as_deref() {
        None | Some("") => {
            errors.push(FieldError::new(
                "project_manager.siret",
                "required",
                "Le SIRET du maître d'œuvre est obligatoire quand « project_manager » est renseigné.",
            ));
            None
        }
        Some(raw) => siret_field(
            "project_manager.siret",
            "Maître d'œuvre",
            raw,
            check,
            errors,
        ),
    };
    let code = match pm.service_code.as_deref() {
        None => Some(None),
        Some(raw) => service_code(
            "project_manager.service_code",
            "Le code service du maître d'œuvre",
            raw,
            errors,
        )
        .map(Some),
    };
    match (siret, code) {
        (Some(siret), Some(service_code)) => ProjectManagerField::Given(ProjectManager {
            siret,
            service_code,
        }),
        _ => ProjectManagerField::Faulty,
    }
}

/// The buyer's category, the default one when none is given (or a wrong one, reported).
fn buyer_category(raw: Option<&str>, errors: &mut Vec<FieldError>) -> BuyerCategory {
    let Some(raw) = raw else {
        return BuyerCategory::default();
    };
    BuyerCategory::parse(raw).unwrap_or_else(|| {
        errors.push(FieldError::new(
            "buyer_category",
            BuyerCategory::ERROR_CODE,
            BuyerCategory::message_fr(raw),
        ));
        BuyerCategory::default()
    })
}

/// A works framework needs a *maître d'œuvre*; any other framework has none.
fn check_project_manager_fits(
    framework: Framework,
    project_manager: &ProjectManagerField,
    errors: &mut Vec<FieldError>,
) {
    match (project_manager, framework.is_works_statement()) {
        (ProjectManagerField::Absent, true) => errors.push(FieldError::new(
            "project_manager",
            "required",
            format!(
                "Le cadre {framework} est un document de travaux : Chorus Pro l'adresse d'abord au maître d'œuvre, qui le valide. Renseignez « project_manager » (SIRET et, s'il en a un, code service du maître d'œuvre)."
            ),
        )),
        (ProjectManagerField::Given(_), false) => errors.push(FieldError::new(
            "project_manager",
            "not_applicable",
            format!(
                "Le maître d'œuvre ne s'indique que pour les cadres de travaux (A4, A5, A7, A10, A13, A14, A22), pas pour le cadre {framework} : retirez « project_manager » ou choisissez le cadre de travaux du marché."
            ),
        )),
        _ => {}
    }
}

/// Turns the body into the market's terms, collecting every fault (with those of the
/// path) for one answer. `check`: how strictly SIRETs are checked (sandbox accounts:
/// shape only).
fn validate(
    input: MarketInput,
    mut errors: Vec<FieldError>,
    check: SiretCheck,
) -> Result<MarketTerms, Problem> {
    let e = &mut errors;
    let market_number = market_number(input.market_number.as_deref(), e);
    let buyer_siret = buyer_siret(input.buyer_siret.as_deref(), check, e);
    let buyer_service_code = input.buyer_service_code.as_deref().and_then(|raw| {
        service_code(
            "buyer_service_code",
            "Le code service de l'acheteur",
            raw,
            e,
        )
    });
    let commitment_number = input.commitment_number.as_deref().and_then(|raw| {
        let what = "Le numéro d'engagement juridique";
        text_field("commitment_number", what, raw, CommitmentNumber::parse, e)
    });
    let framework = framework(input.framework.as_deref(), e);
    let project_manager = project_manager(input.project_manager, check, e);
    let label = input
        .label
        .as_deref()
        .and_then(|raw| text_field("label", "Le libellé du marché", raw, MarketLabel::parse, e));
    let buyer_category = buyer_category(input.buyer_category.as_deref(), e);
    if let Some(framework) = framework {
        check_project_manager_fits(framework, &project_manager, e);
    }
    input.object.finish(errors)?;
    match (market_number, buyer_siret, framework) {
        (Some(market_number), Some(buyer_siret), Some(framework)) => Ok(MarketTerms {
            market_number,
            buyer_siret,
            buyer_service_code,
            commitment_number,
            framework,
            project_manager: project_manager.into_option(),
            label,
            buyer_category,
        }),
        // `finish` answered for every missing part above.
        _ => Err(Problem::internal()),
    }
}

/// A `PUT` read and validated: the market's key, the terms wanted, and what is stored.
struct MarketPut {
    siret: Siret,
    market_ref: MarketRef,
    terms: MarketTerms,
    account: Option<CompanyAccount>,
    existing: Option<Market>,
}

/// The path and the body, every fault in one answer; the account and the market as
/// stored (read only for a valid path).
async fn read_put(state: &State, path: &PathParams, body: &Body) -> Result<MarketPut, Problem> {
    let siret = path_siret(&path.siret)?;
    let mut path_errors = Vec::new();
    let market_ref = MarketRef::parse(&path.market_ref)
        .map_err(|e| {
            path_errors.push(FieldError::new(
                "market_ref",
                e.code(),
                e.message_fr(&path.market_ref),
            ));
        })
        .ok();
    let input = read_input(body)?;
    // Reads happen only for a valid path; a wrong one is reported with the body's faults.
    let (account, existing) = match &market_ref {
        Some(market_ref) => tokio::try_join!(
            state.store.get_account(&siret),
            state.store.get_market(&siret, market_ref)
        )
        .map_err(|e| store_problem(&e))?,
        None => (None, None),
    };
    let check = account
        .as_ref()
        .map_or(state.config.default_environment, |a| a.environment)
        .siret_check();
    let terms = validate(input, path_errors, check)?;
    let Some(market_ref) = market_ref else {
        return Err(Problem::internal());
    };
    Ok(MarketPut {
        siret,
        market_ref,
        terms,
        account,
        existing,
    })
}

/// The buyer checked in Chorus Pro, or unchecked when the company has no account yet.
/// Checked before anything is written: a market that cannot be invoiced changes nothing.
async fn check_buyer(
    state: &State,
    account: Option<&CompanyAccount>,
    terms: &MarketTerms,
) -> Result<BuyerCheck, Problem> {
    match account {
        Some(account) => Ok(BuyerCheck::Checked(
            check_in_chorus(state, account, terms).await?,
        )),
        None => {
            tracing::info!("company has no Chorus Pro account: market saved unchecked");
            Ok(BuyerCheck::Unchecked)
        }
    }
}

impl MarketPut {
    /// The market to write over `existing` (the next revision), or the first one.
    fn next_version(&self, buyer: &BuyerCheck, now: OffsetDateTime) -> Market {
        let existing = self.existing.as_ref();
        Market {
            siret: self.siret.clone(),
            market_ref: self.market_ref.clone(),
            terms: self.terms.clone(),
            buyer: buyer.clone(),
            created_at: existing.map_or(now, |m| m.created_at),
            updated_at: now,
            revision: existing.map_or(1, |m| m.revision + 1),
        }
    }

    /// The audit entry of the save: what changed, and what was done.
    fn audit(&self, caller: &Caller, now: OffsetDateTime) -> AuditEntry {
        let fields = self
            .terms
            .changed_fields(self.existing.as_ref().map(|m| &m.terms));
        let action = match (&self.existing, fields.is_empty()) {
            (None, _) => "market_created",
            (Some(_), false) => "market_updated",
            // Saved again unchanged: the buyer was checked again.
            (Some(_), true) => "market_checked",
        };
        AuditEntry {
            at: now,
            actor: caller.sub.clone(),
            action: action.into(),
            fields,
        }
    }
}

/// `201` for a new market, `200` for a saved one, with the market's view.
fn saved_answer(market: &Market, audit: &AuditEntry, created: bool) -> Response<Body> {
    tracing::info!(
        action = audit.action.as_str(),
        fields = ?audit.fields,
        framework = market.terms.framework.code(),
        buyer = if matches!(market.buyer, BuyerCheck::Checked(_)) { "checked" } else { "unchecked" },
        "market saved"
    );
    json_response(if created { 201 } else { 200 }, &market.view())
}

/// Writes the market on the revision read; a concurrent save makes it read again and
/// write again, a few times at most.
async fn save(
    state: &State,
    caller: &Caller,
    mut put: MarketPut,
    buyer: BuyerCheck,
) -> Result<Response<Body>, Problem> {
    for attempt in 1..=SAVE_ATTEMPTS {
        let now = state.clock.now();
        let market = put.next_version(&buyer, now);
        let audit = put.audit(caller, now);
        let read_revision = put.existing.as_ref().map(|m| m.revision);
        match state
            .store
            .save_market(&market, read_revision, &audit)
            .await
        {
            Ok(()) => return Ok(saved_answer(&market, &audit, put.existing.is_none())),
            Err(StoreError::Conflict) if attempt < SAVE_ATTEMPTS => {
                tracing::warn!(attempt, "concurrent save of the market, reading it again");
                put.existing = state
                    .store
                    .get_market(&put.siret, &put.market_ref)
                    .await
                    .map_err(|e| store_problem(&e))?;
            }
            Err(StoreError::Conflict) => break,
            Err(e) => return Err(store_problem(&e)),
        }
    }
    Err(Problem::new(
        ProblemCode::Conflict,
        "Le marché a été modifié en même temps par une autre requête ; rechargez-le puis réessayez.",
    ))
}

pub async fn put(
    state: &State,
    caller: &Caller,
    path: &PathParams,
    body: &Body,
) -> Result<Response<Body>, Problem> {
    let put = read_put(state, path, body).await?;
    let buyer = check_buyer(state, put.account.as_ref(), &put.terms).await?;
    save(state, caller, put, buyer).await
}

/// The buyer and, for works, the *maître d'œuvre*, both in Chorus Pro, at once.
async fn check_in_chorus(
    state: &State,
    account: &CompanyAccount,
    terms: &MarketTerms,
) -> Result<shared::domain::market::BuyerRecord, Problem> {
    let tech = structure::technical_account(state, account).await?;
    let project_manager = async {
        match &terms.project_manager {
            Some(moe) => buyer::check_project_manager(state, &tech, moe).await,
            None => Ok(()),
        }
    };
    let (record, ()) =
        tokio::try_join!(buyer::check(state, &tech, account, terms), project_manager)?;
    Ok(record)
}

fn path_market_ref(path: &PathParams) -> Result<MarketRef, Problem> {
    MarketRef::parse(&path.market_ref).map_err(|e| {
        Problem::validation(vec![FieldError::new(
            "market_ref",
            e.code(),
            e.message_fr(&path.market_ref),
        )])
    })
}

pub async fn get(state: &State, path: &PathParams) -> Result<Response<Body>, Problem> {
    let siret = path_siret(&path.siret)?;
    let market_ref = path_market_ref(path)?;
    let market = state
        .store
        .get_market(&siret, &market_ref)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(|| market_not_found(market_ref.as_str()))?;
    Ok(json_response(200, &market.view()))
}

#[derive(serde::Serialize)]
struct MarketList {
    markets: Vec<shared::view::MarketView>,
    next_cursor: Option<String>,
}

pub async fn list(
    state: &State,
    path: &PathParams,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let siret = path_siret(&path.siret)?;
    let page = paging::read(request, "m").map_err(Problem::validation)?;
    let after = page
        .after
        .map(|raw| {
            MarketRef::parse(&raw).map_err(|_| Problem::validation(vec![paging::invalid_cursor()]))
        })
        .transpose()?;
    let found = state
        .store
        .list_markets(&siret, page.limit, after.as_ref())
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(json_response(
        200,
        &MarketList {
            markets: found.items.iter().map(Market::view).collect(),
            next_cursor: found.next_after.map(|r| paging::encode("m", r.as_str())),
        },
    ))
}
