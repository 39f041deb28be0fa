//! Market and situation identifiers: `PUT`/`GET` `/v1/companies/{siret}/markets/{market_ref}`,
//! the market list, `PUT`/`GET` of a market's monthly situations and their list, and the
//! read-only buyer look-up `GET /v1/companies/{siret}/buyers/{buyer_siret}`.
//!
//! A market of a company with a Chorus Pro account is checked against what its public
//! buyer requires, and its *maître d'œuvre* found, before it is saved (see `buyer`); a company without one may register
//! markets all the same, marked `unchecked` (saving them again once the account exists
//! checks them). A situation's invoice number is unique in the company, under
//! concurrency, by a guard item written in the situation's own transaction
//! (`shared::store::situation`).
//!
//! Handlers translate HTTP to domain and back; the domain decides; every outcome becomes a
//! response, internal error text is logged (never a secret), never echoed.

mod buyer;
mod company;
mod lookup;
mod markets;
mod paging;
mod situations;
mod structure;

use lambda_http::{Body, Request, RequestExt, Response};
use shared::http::{Caller, Problem, ProblemCode, route_key};
use tracing::Instrument;

/// Built once per cold start and shared by every invocation.
pub type State = shared::services::HttpState;

/// Bodies of these routes are a few hundred bytes; anything bigger is refused unread.
pub const BODY_LIMIT: usize = 16 * 1024;

pub const ROUTES: &[&str] = &[
    "PUT /v1/companies/{siret}/markets/{market_ref}",
    "GET /v1/companies/{siret}/markets/{market_ref}",
    "GET /v1/companies/{siret}/markets",
    "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}",
    "GET /v1/companies/{siret}/markets/{market_ref}/situations/{number}",
    "GET /v1/companies/{siret}/markets/{market_ref}/situations",
    "GET /v1/companies/{siret}/buyers/{buyer_siret}",
    "GET /v1/companies/{siret}/situations",
];

/// The path parameters of a request, raw.
pub(crate) struct PathParams {
    pub siret: String,
    pub market_ref: String,
    pub number: String,
    pub buyer_siret: String,
}

pub async fn handle(state: &State, request: Request) -> Response<Body> {
    let route = route_key(&request);
    let param = |name: &str| {
        request
            .path_parameters_ref()
            .and_then(|p| p.first(name))
            .unwrap_or_default()
            .to_owned()
    };
    let path = PathParams {
        siret: param("siret"),
        market_ref: param("market_ref"),
        number: param("number"),
        buyer_siret: param("buyer_siret"),
    };
    let span = tracing::info_span!(
        "request",
        route = %route,
        siret = %path.siret,
        market_ref = %path.market_ref,
        situation = %path.number,
        buyer_siret = %path.buyer_siret,
    );
    let outcome = async {
        let caller = Caller::from_request(&request)?;
        caller.authorise(&path.siret)?;
        match route.as_str() {
            "PUT /v1/companies/{siret}/markets/{market_ref}" => {
                markets::put(state, &caller, &path, request.body()).await
            }
            "GET /v1/companies/{siret}/markets/{market_ref}" => markets::get(state, &path).await,
            "GET /v1/companies/{siret}/markets" => markets::list(state, &path, &request).await,
            "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}" => {
                situations::put(state, &caller, &path, request.body()).await
            }
            "GET /v1/companies/{siret}/markets/{market_ref}/situations/{number}" => {
                situations::get(state, &path).await
            }
            "GET /v1/companies/{siret}/markets/{market_ref}/situations" => {
                situations::list(state, &path, &request).await
            }
            "GET /v1/companies/{siret}/buyers/{buyer_siret}" => lookup::get(state, &path).await,
            "GET /v1/companies/{siret}/situations" => company::list(state, &path, &request).await,
            _ => Err(Problem::new(
                ProblemCode::NotFound,
                "Cette route n'existe pas.",
            )),
        }
    };
    async {
        let response = match outcome.await {
            Ok(response) => response,
            Err(problem) => problem.into_response(),
        };
        tracing::info!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

pub(crate) fn market_not_found(market_ref: &str) -> Problem {
    Problem::new(
        ProblemCode::MarketNotFound,
        format!(
            "Aucun marché de référence « {market_ref} » n'est enregistré pour cette entreprise : enregistrez-le d'abord (PUT …/markets/{market_ref})."
        ),
    )
}
