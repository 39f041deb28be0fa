//! What every HTTP function does the same way at its edge: the route it was called by, the
//! company SIRET of the path, and the answer when the gateway's own storage fails.

use lambda_http::{Request, RequestExt};

use super::{FieldError, Problem};
use crate::domain::{Siret, SiretCheck};
use crate::store::StoreError;

/// `METHOD /path/{param}` as API Gateway names the route (`requestContext.routeKey`).
pub fn route_key(request: &Request) -> String {
    match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
            ctx.route_key.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// The company's SIRET from the path. The token already vouches for it, and sandbox SIRETs
/// may fail the Luhn key, so its shape only is checked.
pub fn path_siret(raw: &str) -> Result<Siret, Problem> {
    Siret::parse(raw, SiretCheck::ShapeOnly).map_err(|e| {
        Problem::validation(vec![FieldError::new("siret", e.code(), e.message_fr(raw))])
    })
}

/// DynamoDB or Secrets Manager failed: logged, answered `503 service_unavailable`.
pub fn store_problem(err: &StoreError) -> Problem {
    tracing::error!(error = %err, "store failure");
    Problem::service_unavailable()
}
