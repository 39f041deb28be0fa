//! The company's Chorus Pro account ("Mon compte"): `PUT`, `GET`, `DELETE`
//! `/v1/companies/{siret}/chorus-account`.
//!
//! The handler translates HTTP to domain and back; the domain decides; the store and the
//! secret store talk to AWS. Every outcome becomes a response: internal error text is
//! logged (without secrets), never echoed.

mod settings;
mod verify;

use lambda_http::{Body, Request, Response};
use shared::http::{Caller, Route, answer_in, path_param, route_key, unknown_route};

/// Built once per cold start and shared by every invocation.
pub type State = shared::services::State;

/// Request bodies of this route are small; anything bigger is refused before parsing.
pub const BODY_LIMIT: usize = 64 * 1024;

pub async fn handle(state: &State, request: Request) -> Response<Body> {
    let route = route_key(&request);
    let path_siret = path_param(&request, "siret");
    let span = tracing::info_span!("request", route = %route, siret = %path_siret);
    let outcome = Box::pin(async {
        let caller = Caller::from_request(&request)?;
        caller.authorise(&path_siret)?;
        match Route::from_key(&route) {
            Some(Route::PutChorusAccount) => {
                settings::put(state, &caller, &path_siret, request.body()).await
            }
            Some(Route::GetChorusAccount) => settings::get(state, &path_siret).await,
            Some(Route::DeleteChorusAccount) => settings::delete(state, &caller, &path_siret).await,
            Some(Route::VerifyChorusAccount) => settings::verify(state, &caller, &path_siret).await,
            _ => Err(unknown_route()),
        }
    });
    answer_in(span, outcome).await
}
