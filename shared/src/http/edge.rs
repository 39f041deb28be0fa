//! What every HTTP function does the same way at its edge: its Lambda entry point, the
//! route it was called by, the path parameters, the company SIRET of the path, the answer
//! of every outcome (logged with its status) and the answer when the gateway's own storage
//! fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;

use super::{FieldError, Problem, ProblemCode};
use crate::aws::SdkConfig;
use crate::config::Config;
use crate::domain::{CompanyAccount, Siret, SiretCheck};
use crate::store::{Store, StoreError};

/// `METHOD /path/{param}` as API Gateway names the route (`requestContext.routeKey`).
pub fn route_key(request: &Request) -> String {
    match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
            ctx.route_key.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// The Lambda entry point of an HTTP function: the log subscriber (`crate::logging`), the
/// cold start (`build` makes the state from the configuration, see `crate::init`), then every
/// event answered by `handle` with the state kept warm.
pub async fn serve<S, F>(
    build: impl FnOnce(Config, &SdkConfig) -> Result<S, crate::init::InitError>,
    handle: impl Fn(Arc<S>, Request) -> F,
) -> Result<(), lambda_http::Error>
where
    S: Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send,
{
    crate::logging::init();
    let state = Arc::new(crate::init::cold_start(build).await?);
    lambda_http::run(lambda_http::service_fn(move |request: Request| {
        let answer = handle(Arc::clone(&state), request);
        async move { Ok::<_, lambda_http::Error>(answer.await) }
    }))
    .await
}

/// The `main` of an HTTP function crate, in one line: `shared::http_main!(identifiers);`
/// serves `identifiers::handle` with the state `identifiers::State::from_sdk` makes (through
/// `serve`); a state made otherwise is built by the closure given after the crate's name.
#[macro_export]
macro_rules! http_main {
    ($function:ident) => {
        $crate::http_main!($function, |config, sdk| Ok($function::State::from_sdk(
            config, sdk
        )));
    };
    ($function:ident, $build:expr) => {
        #[tokio::main]
        async fn main() -> Result<(), lambda_http::Error> {
            $crate::http::serve($build, |state, request| async move {
                $function::handle(&state, request).await
            })
            .await
        }
    };
}

/// A path parameter of the request as it came, empty when the route has none of that name.
pub fn path_param(request: &Request, name: &str) -> String {
    request
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .unwrap_or_default()
        .to_owned()
}

/// The answer to a key of no route (API Gateway itself answers unknown paths; this is for a
/// route key a function does not serve).
pub fn unknown_route() -> Problem {
    Problem::new(ProblemCode::NotFound, "Cette route n'existe pas.")
}

/// Runs a request's `outcome` in its `span`: a problem becomes its problem+json answer, and
/// the status of the answer is logged (`answered`) in the span. The outcome comes boxed: a
/// handler's future is large, and held inline it would be copied from frame to frame (a
/// debug build's 2 MiB test thread overflows).
pub async fn answer_in(
    span: tracing::Span,
    outcome: Pin<Box<impl Future<Output = Result<Response<Body>, Problem>>>>,
) -> Response<Body> {
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

/// The company's SIRET from the path. The token already vouches for it, and sandbox SIRETs
/// may fail the Luhn key, so its shape only is checked.
pub fn path_siret(raw: &str) -> Result<Siret, Problem> {
    Siret::parse(raw, SiretCheck::ShapeOnly).map_err(|e| {
        Problem::validation(vec![FieldError::new("siret", e.code(), e.message_fr(raw))])
    })
}

/// The path's SIRET and the company's account, `missing()` when the company has none (each
/// route says in its own words what the company must do first).
pub async fn path_account(
    store: &Store,
    raw_siret: &str,
    missing: impl FnOnce() -> Problem,
) -> Result<(Siret, CompanyAccount), Problem> {
    let siret = path_siret(raw_siret)?;
    let account = store
        .get_account(&siret)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(missing)?;
    Ok((siret, account))
}

/// DynamoDB or Secrets Manager failed: logged, answered `503 service_unavailable`.
pub fn store_problem(err: &StoreError) -> Problem {
    tracing::error!(error = %err, "store failure");
    Problem::service_unavailable()
}
