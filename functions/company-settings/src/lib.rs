//! The company's Chorus Pro account ("Mon compte"): `PUT`, `GET`, `DELETE`
//! `/v1/companies/{siret}/chorus-account`.
//!
//! The handler translates HTTP to domain and back; the domain decides; the store and the
//! secret store talk to AWS. Every outcome becomes a response: internal error text is
//! logged (without secrets), never echoed.

mod settings;
mod verify;

use lambda_http::{Body, Request, RequestExt, Response};
use shared::http::route_key;
use shared::http::{Caller, Problem, ProblemCode};
use tracing::Instrument;

/// Built once per cold start and shared by every invocation.
pub type State = shared::services::HttpState;

/// Request bodies of this route are small; anything bigger is refused before parsing.
pub const BODY_LIMIT: usize = 64 * 1024;

pub const ROUTES: &[&str] = &[
    "PUT /v1/companies/{siret}/chorus-account",
    "GET /v1/companies/{siret}/chorus-account",
    "DELETE /v1/companies/{siret}/chorus-account",
    "POST /v1/companies/{siret}/chorus-account/verify",
];

pub async fn handle(state: &State, request: Request) -> Response<Body> {
    let route = route_key(&request);
    let path_siret = request
        .path_parameters_ref()
        .and_then(|p| p.first("siret"))
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!("request", route = %route, siret = %path_siret);
    let outcome = async {
        let caller = Caller::from_request(&request)?;
        caller.authorise(&path_siret)?;
        match route.as_str() {
            "PUT /v1/companies/{siret}/chorus-account" => {
                settings::put(state, &caller, &path_siret, request.body()).await
            }
            "GET /v1/companies/{siret}/chorus-account" => settings::get(state, &path_siret).await,
            "DELETE /v1/companies/{siret}/chorus-account" => {
                settings::delete(state, &caller, &path_siret).await
            }
            "POST /v1/companies/{siret}/chorus-account/verify" => {
                settings::verify(state, &caller, &path_siret).await
            }
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
