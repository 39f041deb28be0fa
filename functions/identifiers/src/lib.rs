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

use lambda_http::{Body, Request, Response};
use shared::http::{Caller, Problem, ProblemCode, Route, answer_in, path_param, route_key};

/// Built once per cold start and shared by every invocation.
pub type State = shared::services::State;

/// Bodies of these routes are a few hundred bytes; anything bigger is refused unread.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The path parameters of a request, raw.
pub(crate) struct PathParams {
    pub siret: String,
    pub market_ref: String,
    pub number: String,
    pub buyer_siret: String,
}

impl PathParams {
    fn of(request: &Request) -> PathParams {
        PathParams {
            siret: path_param(request, "siret"),
            market_ref: path_param(request, "market_ref"),
            number: path_param(request, "number"),
            buyer_siret: path_param(request, "buyer_siret"),
        }
    }
}

pub async fn handle(state: &State, request: Request) -> Response<Body> {
    let route = route_key(&request);
    let path = PathParams::of(&request);
    let span = tracing::info_span!(
        "request",
        route = %route,
        siret = %path.siret,
        market_ref = %path.market_ref,
        situation = %path.number,
        buyer_siret = %path.buyer_siret,
    );
    let outcome = Box::pin(async {
        let caller = Caller::from_request(&request)?;
        caller.authorise(&path.siret)?;
        dispatch(state, &caller, &path, &request, Route::from_key(&route)).await
    });
    answer_in(span, outcome).await
}

/// The handler of the route.
async fn dispatch(
    state: &State,
    caller: &Caller,
    path: &PathParams,
    request: &Request,
    route: Option<Route>,
) -> Result<Response<Body>, Problem> {
    match route {
        Some(Route::PutMarket) => markets::put(state, caller, path, request.body()).await,
        Some(Route::GetMarket) => markets::get(state, path).await,
        Some(Route::ListMarkets) => markets::list(state, path, request).await,
        Some(Route::PutSituation) => situations::put(state, caller, path, request.body()).await,
        Some(Route::GetSituation) => situations::get(state, path).await,
        Some(Route::ListMarketSituations) => situations::list(state, path, request).await,
        Some(Route::GetBuyer) => lookup::get(state, path).await,
        Some(Route::ListCompanySituations) => company::list(state, path, request).await,
        _ => Err(shared::http::unknown_route()),
    }
}

pub(crate) fn market_not_found(market_ref: &str) -> Problem {
    Problem::new(
        ProblemCode::MarketNotFound,
        format!(
            "Aucun marché de référence « {market_ref} » n'est enregistré pour cette entreprise : enregistrez-le d'abord (PUT …/markets/{market_ref})."
        ),
    )
}
