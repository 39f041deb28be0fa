//! The local API: what API Gateway's HTTP API does in front of the functions, on
//! 127.0.0.1. It verifies the JWT itself (HS256, `LOCAL_JWT_SECRET`, issuer `local`,
//! audience `choruspro-gateway`), matches the same route keys as `infra/template.yaml`,
//! builds the same payload-2.0 event (route key, path parameters, flattened JWT claims)
//! and hands it to the real handler code of the function that owns the route.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body as AxumBody, to_bytes};
use axum::http::{HeaderValue, Request as AxumRequest, Response as AxumResponse, StatusCode};
use base64::Engine;
use serde_json::{Map, Value, json};
use shared::http::{Function, Route, unknown_route};
use shared::http::{Problem, ProblemCode};

use crate::jwt;

/// The largest body the local API accepts, like API Gateway's HTTP API (10 MB); the
/// functions enforce their own smaller limits.
pub const MAX_BODY: usize = 10 * 1024 * 1024;

/// Every route of the local API, with the function that serves it: the API's one route
/// table, `shared::http::Route`.
pub fn routes() -> &'static [Route] {
    Route::ALL
}

pub struct LocalApi {
    pub company_settings: Arc<company_settings::State>,
    pub identifiers: Arc<identifiers::State>,
    pub transmit_invoice: Arc<transmit_invoice::State>,
    pub documents: Arc<documents::State>,
    pub jwt_secret: String,
}

impl LocalApi {
    /// The four HTTP functions' states as each Lambda makes them, and the tokens' secret.
    pub fn from_sdk(
        config: &shared::config::Config,
        sdk: &shared::aws::SdkConfig,
        jwt_secret: String,
    ) -> LocalApi {
        LocalApi {
            company_settings: Arc::new(company_settings::State::from_sdk(config.clone(), sdk)),
            identifiers: Arc::new(identifiers::State::from_sdk(config.clone(), sdk)),
            transmit_invoice: Arc::new(transmit_invoice::State::from_sdk(config.clone(), sdk)),
            documents: Arc::new(documents::State::from_sdk(config.clone(), sdk)),
            jwt_secret,
        }
    }
}

/// Matches `METHOD /path` against a route key, returning its path parameters.
pub fn match_route(route_key: &str, method: &str, path: &str) -> Option<HashMap<String, String>> {
    let (route_method, pattern) = route_key.split_once(' ')?;
    if route_method != method {
        return None;
    }
    let wanted: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let given: Vec<&str> = path.trim_matches('/').split('/').collect();
    if wanted.len() != given.len() {
        return None;
    }
    let mut params = HashMap::new();
    for (w, g) in wanted.iter().zip(&given) {
        if let Some(name) = w.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            if g.is_empty() {
                return None;
            }
            params.insert(name.to_owned(), percent_decode(g));
        } else if w != g {
            return None;
        }
    }
    Some(params)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'%'
            && let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn problem_response(problem: Problem) -> AxumResponse<AxumBody> {
    let mut response = AxumResponse::new(AxumBody::from(problem.to_json()));
    *response.status_mut() =
        StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The parts of a request API Gateway puts in its event.
#[derive(Clone, Copy)]
pub struct EventParts<'a> {
    pub route_key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub path_parameters: &'a HashMap<String, String>,
    pub claims: &'a Map<String, Value>,
}

/// The payload-2.0 event API Gateway would send for this request.
pub fn build_event(parts: &EventParts<'_>) -> Value {
    let EventParts {
        route_key,
        method,
        path,
        query,
        headers,
        body,
        path_parameters,
        claims,
    } = *parts;
    let mut header_map = Map::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let merged = match header_map.get(&name).and_then(Value::as_str) {
            Some(existing) => format!("{existing},{value}"),
            None => value.clone(),
        };
        header_map.insert(name, Value::String(merged));
    }
    let mut query_map = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query_map.insert(
            percent_decode(k),
            Value::String(percent_decode(&v.replace('+', " "))),
        );
    }
    let (body_text, is_base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": {"jwt": {"claims": jwt::flatten_claims(claims), "scopes": null}},
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "local-api"},
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": "27/Nov/2026:00:00:00 +0000",
            "timeEpoch": now_epoch() * 1000
        },
        "isBase64Encoded": is_base64
    });
    if !query_map.is_empty() {
        event["queryStringParameters"] = Value::Object(query_map);
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = json!(path_parameters);
    }
    if !body.is_empty() {
        event["body"] = Value::String(body_text);
    }
    event
}

impl LocalApi {
    pub async fn handle(&self, request: AxumRequest<AxumBody>) -> AxumResponse<AxumBody> {
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        // Every header kept, as API Gateway hands them to a Lambda (as text): a value that
        // is not visible ASCII (an `Idempotency-Key` with accents) reaches the handler,
        // which refuses it, instead of vanishing.
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| {
                let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_owned(), text)
            })
            .collect();
        let Some((route, params)) = routes()
            .iter()
            .find_map(|route| match_route(route.key(), &method, &path).map(|p| (*route, p)))
        else {
            return problem_response(unknown_route());
        };
        let token = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let claims = match token.map(|t| jwt::verify(t, &self.jwt_secret)) {
            Some(Ok(claims)) => claims,
            _ => return problem_response(Problem::unauthenticated()),
        };
        let body = match to_bytes(request.into_body(), MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return problem_response(Problem::new(
                    ProblemCode::PayloadTooLarge,
                    "La requête dépasse la taille maximale acceptée par l'API (10 Mo).",
                ));
            }
        };
        let event = build_event(&EventParts {
            route_key: route.key(),
            method: &method,
            path: &path,
            query: &query,
            headers: &headers,
            body: &body,
            path_parameters: &params,
            claims: &claims,
        });
        let lambda_request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "could not build the lambda event");
                return problem_response(Problem::internal());
            }
        };
        let response = match route.function() {
            Function::CompanySettings => {
                company_settings::handle(&self.company_settings, lambda_request).await
            }
            Function::Identifiers => identifiers::handle(&self.identifiers, lambda_request).await,
            Function::TransmitInvoice => {
                transmit_invoice::handle(&self.transmit_invoice, lambda_request).await
            }
            Function::Documents => documents::handle(&self.documents, lambda_request).await,
        };
        to_axum(response)
    }
}

fn to_axum(response: lambda_http::Response<lambda_http::Body>) -> AxumResponse<AxumBody> {
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut out = AxumResponse::new(AxumBody::from(bytes));
    *out.status_mut() =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &parts.headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.headers_mut().append(n, v);
        }
    }
    out
}

/// Serves the local API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, api: Arc<LocalApi>) -> std::io::Result<()> {
    let app = axum::Router::new().fallback(move |request: AxumRequest<AxumBody>| {
        let api = Arc::clone(&api);
        async move { api.handle(request).await }
    });
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_route_keys() {
        let p = match_route(
            "PUT /v1/companies/{siret}/chorus-account",
            "PUT",
            "/v1/companies/123/chorus-account",
        )
        .unwrap();
        assert_eq!(p["siret"], "123");
        assert!(
            match_route(
                "PUT /v1/companies/{siret}/chorus-account",
                "GET",
                "/v1/companies/123/chorus-account"
            )
            .is_none()
        );
        assert!(
            match_route(
                "PUT /v1/companies/{siret}/chorus-account",
                "PUT",
                "/v1/companies/123/other"
            )
            .is_none()
        );
        assert!(
            match_route(
                "PUT /v1/companies/{siret}/chorus-account",
                "PUT",
                "/v1/companies//chorus-account"
            )
            .is_none()
        );
        let p = match_route("GET /v1/m/{ref}", "GET", "/v1/m/a%2Fb").unwrap();
        assert_eq!(p["ref"], "a/b");
    }

    #[test]
    fn event_is_accepted_by_lambda_http() {
        let claims = jwt::verify(
            &jwt::token_for(
                "u",
                &["1"],
                time::OffsetDateTime::now_utc().unix_timestamp(),
                60,
                "s",
            ),
            "s",
        )
        .unwrap();
        let mut params = HashMap::new();
        params.insert("siret".to_owned(), "1".to_owned());
        let event = build_event(&EventParts {
            route_key: "GET /v1/companies/{siret}/chorus-account",
            method: "GET",
            path: "/v1/companies/1/chorus-account",
            query: "a=1",
            headers: &[("Content-Type".into(), "application/json".into())],
            body: b"",
            path_parameters: &params,
            claims: &claims,
        });
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        use lambda_http::RequestExt;
        assert_eq!(request.path_parameters().first("siret"), Some("1"));
    }
}
