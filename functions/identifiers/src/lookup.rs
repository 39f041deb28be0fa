//! `GET /v1/companies/{siret}/buyers/{buyer_siret}`: what Chorus Pro says of a public
//! buyer, or of a *maître d'œuvre*, for the caller's screen — its requirements and its
//! services (all pages, `FACTURES_PUBLIQUES` left out), read with the company's technical
//! account through the same calls as a market's check (`structure`). Read-only.

use lambda_http::{Body, Response};
use shared::clock::rfc3339;
use shared::domain::{Siret, market::BuyerRule};
use shared::http::{FieldError, Problem, ProblemCode, json_response};

use crate::structure::{self, Lookup};
use shared::http::path_account;

use crate::{PathParams, State};

#[derive(serde::Serialize)]
struct ServiceView {
    code: String,
    name: Option<String>,
    active: bool,
    /// Read for active services only (`consulter/service`); `null` for an inactive one,
    /// or when Chorus Pro refuses to show it.
    requires_commitment_number: Option<bool>,
}

#[derive(serde::Serialize)]
struct BuyerLookupView {
    siret: String,
    name: Option<String>,
    chorus_structure_id: i64,
    active: bool,
    requires_service_code: bool,
    requires_commitment_number: bool,
    service_or_commitment: bool,
    services: Vec<ServiceView>,
    checked_at: String,
}

fn not_configured() -> Problem {
    Problem::new(
        ProblemCode::CompanyNotConfigured,
        "Aucun compte Chorus Pro n'est enregistré pour cette entreprise : renseignez-le dans « Mon compte » pour consulter un acheteur.",
    )
}

fn not_found(siret: &str) -> Problem {
    Problem::new(
        ProblemCode::BuyerNotFoundOnLookup,
        format!(
            "Aucune structure accessible n'est enregistrée dans Chorus Pro sous le SIRET {siret} : vérifiez-le (il figure sur l'acte d'engagement, le bon de commande ou l'ordre de service)."
        ),
    )
}

pub async fn get(state: &State, path: &PathParams) -> Result<Response<Body>, Problem> {
    let (_, account) = path_account(&state.store, &path.siret, not_configured).await?;
    let raw = path.buyer_siret.as_str();
    // Sandbox accounts look up qualification SIRETs, which may fail the Luhn key.
    let buyer_siret = Siret::parse(raw, account.environment.siret_check()).map_err(|e| {
        Problem::validation(vec![FieldError::new(
            "buyer_siret",
            e.code(),
            e.message_fr(raw),
        )])
    })?;
    let tech = structure::technical_account(state, &account).await?;
    let chorus = &state.chorus;
    let found = match structure::find(chorus, &tech, buyer_siret.as_str()).await? {
        Lookup::Found(found) => found,
        Lookup::Absent | Lookup::Unreadable => return Err(not_found(buyer_siret.as_str())),
    };
    let listed: Vec<_> = structure::all_services(chorus, &tech, found.id)
        .await?
        .into_iter()
        .filter(|s| !s.is_reserved_for_public_bodies())
        .collect();
    let active_ids: Vec<i64> = listed
        .iter()
        .filter(|s| s.est_actif)
        .map(|s| s.id_service)
        .collect();
    let mut rules = structure::services_requiring_commitment(chorus, &tech, found.id, &active_ids)
        .await?
        .into_iter();
    let services = listed
        .into_iter()
        .map(|s| ServiceView {
            requires_commitment_number: if s.est_actif {
                rules.next().flatten()
            } else {
                None
            },
            code: s.code_service,
            name: s.libelle_service,
            active: s.est_actif,
        })
        .collect();
    tracing::info!(services = active_ids.len(), "buyer looked up");
    Ok(json_response(
        200,
        &BuyerLookupView {
            siret: buyer_siret.to_string(),
            name: found.name,
            chorus_structure_id: found.id,
            active: found.active,
            requires_service_code: found.rule.requires_service_code(),
            requires_commitment_number: found.rule.requires_commitment_number(),
            service_or_commitment: found.rule == BuyerRule::Either,
            services,
            checked_at: rfc3339(state.clock.now()),
        },
    ))
}
