//! The HTTP face: PISTE's token endpoint, Chorus Pro's `/cpro/…` routes (with faults and
//! the journal around them) and the `/_admin/…` API.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Sandbox;
use super::cpro::Route;
use super::faults::{Fault, FaultAction, LostMode};
use super::state::{AccountUpdate, AccountUpdateError, InvoiceScript, Progress, Shapes};

/// A 10 MB file in base64 inside JSON, with room to spare.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Byte-identical for an unknown client id and a wrong secret, as measured by INV.
const INVALID_CLIENT: &str = r#"{"error":"invalid_client"}"#;
const LDAP_REFUSAL: &str =
    r#"{"codeRetour":401,"libelle":"Impossible d'authentifier l'utilisateur dans le LDAP."}"#;
const JSON_UTF8: &str = "application/json;charset=utf-8";

pub(super) fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/_admin/health", get(|| async { "ok" }))
        .route("/_admin/reset", post(reset))
        .route("/_admin/journal", get(journal).delete(clear_journal))
        .route(
            "/_admin/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_admin/accounts/{login}", patch(update_account))
        .route("/_admin/settings", get(settings).put(update_settings))
        .route("/_admin/deposits", get(deposits))
        .route("/_admin/invoices", get(invoices))
        .route("/_admin/invoices/script", post(script_invoice))
        .route("/_admin/invoices/status", post(force_status))
        .route("/_admin/advance", post(advance))
        .route("/_admin/works", post(works_action))
        .fallback(emulated)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(sandbox)
}

fn raw_json(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, JSON_UTF8)], body).into_response()
}

fn json_answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, JSON_UTF8)],
        body.to_string(),
    )
        .into_response()
}

/// PISTE's refusal of a missing, unknown or expired token: OAuth style, no `codeRetour`.
fn piste_unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, JSON_UTF8),
            (
                header::WWW_AUTHENTICATE,
                r#"Bearer realm="PISTE", error="invalid_token""#,
            ),
        ],
        r#"{"error":"invalid_token","error_description":"The access token is missing, invalid or expired"}"#,
    )
        .into_response()
}

/// PISTE's 401 for a refused technical account, as OCA quotes its header
/// (OCA/l10n-france 14.0 `company.py` L287–L293); the body is unconfirmed: none here.
fn piste_login_refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="PISTE",error="Unauthorized",error_description="login or password incorrects""#,
        )],
        "",
    )
        .into_response()
}

/// PISTE's 403 with an empty object: unknown route, or an application not allowed.
fn piste_forbidden() -> Response {
    raw_json(StatusCode::FORBIDDEN, "{}")
}

/// Closes the connection without an answer. `resume_unwind` ends the connection's task
/// without running the panic hook, so nothing is printed; the server keeps serving.
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("chorus-sandbox: connection dropped on purpose"))
}

/// Every non-admin request: journal, fault, then the emulated answer.
async fn emulated(State(sandbox): State<Sandbox>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts.uri.path().to_owned();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (seq, fault) = {
        let mut state = sandbox.lock();
        let seq = state.journal_push(
            parts.method.as_str(),
            &path,
            parts.uri.query(),
            headers,
            &body,
        );
        let fault = state.take_fault(&path);
        if let Some(fault) = &fault {
            state.journal_update(seq, None, Some(fault.kind()));
        }
        (seq, fault)
    };
    tracing::info!(method = %parts.method, path, fault = fault.as_ref().map(FaultAction::kind), "request");

    let early = match &fault {
        Some(FaultAction::Delay { ms }) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            None
        }
        Some(FaultAction::Timeout { ms }) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            drop_connection()
        }
        Some(FaultAction::Status { status }) => Some(
            (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, "text/plain;charset=utf-8")],
                "Erreur simulee par l'emulateur Chorus Pro",
            )
                .into_response(),
        ),
        Some(FaultAction::Respond { status, body }) => Some(json_answer(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::OK),
            body,
        )),
        Some(FaultAction::TooManyRequests { retry_after }) => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after.to_string())],
                "",
            )
                .into_response(),
        ),
        Some(FaultAction::PisteUnauthorized) => Some(piste_unauthorized()),
        Some(FaultAction::PisteLoginRefused) => Some(piste_login_refused()),
        Some(FaultAction::PisteForbidden) => Some(piste_forbidden()),
        Some(FaultAction::InvalidClient) => Some(raw_json(StatusCode::BAD_REQUEST, INVALID_CLIENT)),
        _ => None,
    };
    if let Some(response) = early {
        sandbox
            .lock()
            .journal_update(seq, Some(response.status().as_u16()), None);
        return response;
    }

    let reject_password = matches!(fault, Some(FaultAction::RejectPassword));
    let response = sandbox.answer(&parts.method, &path, &parts.headers, &body, reject_password);
    sandbox
        .lock()
        .journal_update(seq, Some(response.status().as_u16()), None);
    match fault {
        Some(FaultAction::AnswerLost { mode, ms }) => {
            if mode == LostMode::Hang {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            drop_connection();
        }
        Some(FaultAction::AnswerUnreadable) => unreadable_page(),
        _ => response,
    }
}

/// What `answer_unreadable` answers once the request was processed: a success status
/// with a page that is not JSON.
fn unreadable_page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html;charset=utf-8")],
        "<html><body><h1>Service momentanement perturbe</h1></body></html>",
    )
        .into_response()
}

impl Sandbox {
    fn answer(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &Bytes,
        reject_password: bool,
    ) -> Response {
        if path == "/api/oauth/token" {
            if method != Method::POST {
                return StatusCode::METHOD_NOT_ALLOWED.into_response();
            }
            return self.token(body);
        }
        let Some(route_path) = path.strip_prefix("/cpro/") else {
            return raw_json(StatusCode::NOT_FOUND, "{}");
        };
        let mut state = self.lock();
        // PISTE checks the token before anything reaches Chorus Pro.
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !token.is_some_and(|t| state.token_valid(t.trim())) {
            return piste_unauthorized();
        }
        let Some(route) = Route::from_path(route_path).filter(|_| method == Method::POST) else {
            return piste_forbidden();
        };
        let login = technical_account(headers)
            .filter(|_| !reject_password)
            .and_then(|(login, password)| state.authenticate(&login, &password));
        let Some(login) = login else {
            return raw_json(StatusCode::UNAUTHORIZED, LDAP_REFUSAL);
        };
        let (status, answer) = state.chorus(route, &login, body);
        json_answer(status, &answer)
    }

    /// PISTE `client_credentials`: `grant_type`, `client_id`, `client_secret`, `scope`.
    fn token(&self, body: &Bytes) -> Response {
        let form = parse_form(body);
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return raw_json(
                StatusCode::BAD_REQUEST,
                r#"{"error":"unsupported_grant_type"}"#,
            );
        }
        let mut state = self.lock();
        let allowed = match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => state.application_allowed(id, secret),
            _ => false,
        };
        if !allowed {
            return raw_json(StatusCode::BAD_REQUEST, INVALID_CLIENT);
        }
        let (token, lifetime) = state.issue_token();
        json_answer(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": lifetime.as_secs(),
                "scope": "openid",
            }),
        )
    }
}

/// `cpro-account: base64(login:password)`.
fn technical_account(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers.get("cpro-account")?.to_str().ok()?;
    let decoded = BASE64.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (login, password) = text.split_once(':')?;
    Some((login.to_owned(), password.to_owned()))
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((form_decode(key)?, form_decode(value)?))
        })
        .collect()
}

fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

// --- admin -------------------------------------------------------------------------------------

async fn reset(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct JournalFilter {
    path: Option<String>,
}

async fn journal(
    State(sandbox): State<Sandbox>,
    Query(filter): Query<JournalFilter>,
) -> Json<Value> {
    Json(json!({"entries": sandbox.journal(filter.path.as_deref())}))
}

async fn clear_journal(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.clear_journal();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!({"faults": sandbox.faults()}))
}

async fn add_fault(State(sandbox): State<Sandbox>, Json(fault): Json<Fault>) -> StatusCode {
    sandbox.add_fault(fault);
    StatusCode::CREATED
}

async fn clear_faults(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.clear_faults();
    StatusCode::NO_CONTENT
}

async fn update_account(
    State(sandbox): State<Sandbox>,
    Path(login): Path<String>,
    Json(update): Json<AccountUpdate>,
) -> Response {
    match sandbox.update_account(&login, &update) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(AccountUpdateError::UnknownLogin) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown technical account"})),
        )
            .into_response(),
        Err(AccountUpdateError::InvalidDate(reason)) => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": reason}))).into_response()
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsUpdate {
    token_lifetime_seconds: Option<u64>,
    progress: Option<String>,
    shapes: Option<String>,
    accepted_syntaxes: Option<Vec<String>>,
}

async fn settings(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(sandbox.settings_json())
}

async fn update_settings(
    State(sandbox): State<Sandbox>,
    Json(update): Json<SettingsUpdate>,
) -> Response {
    let progress = match update.progress.as_deref().map(Progress::parse).transpose() {
        Ok(progress) => progress,
        Err(reason) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": reason}))).into_response();
        }
    };
    let shapes = match update.shapes.as_deref().map(Shapes::parse).transpose() {
        Ok(shapes) => shapes,
        Err(reason) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": reason}))).into_response();
        }
    };
    if let Some(progress) = progress {
        sandbox.set_progress(progress);
    }
    if let Some(shapes) = shapes {
        sandbox.set_shapes(shapes);
    }
    if let Some(syntaxes) = update.accepted_syntaxes {
        sandbox.set_accepted_syntaxes(syntaxes);
    }
    if let Some(seconds) = update.token_lifetime_seconds {
        sandbox.set_token_lifetime(Duration::from_secs(seconds));
    }
    Json(sandbox.settings_json()).into_response()
}

async fn deposits(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!({"deposits": sandbox.deposits()}))
}

async fn invoices(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!({"invoices": sandbox.invoices()}))
}

async fn works_action(
    State(sandbox): State<Sandbox>,
    Json(action): Json<super::WorksAction>,
) -> Response {
    match sandbox.works_action(action) {
        Ok(done) => Json(done).into_response(),
        Err(why) => (StatusCode::NOT_FOUND, Json(json!({"error": why}))).into_response(),
    }
}

async fn script_invoice(
    State(sandbox): State<Sandbox>,
    Json(script): Json<InvoiceScript>,
) -> StatusCode {
    sandbox.script_invoice(script);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForcedStatus {
    numero_facture: String,
    statut: String,
    #[serde(default)]
    commentaire: Option<String>,
}

async fn force_status(
    State(sandbox): State<Sandbox>,
    Json(forced): Json<ForcedStatus>,
) -> Response {
    let changed = sandbox.force_invoice_status(
        &forced.numero_facture,
        &forced.statut,
        forced.commentaire.as_deref(),
    );
    if changed == 0 {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no integrated invoice has that number"})),
        )
            .into_response();
    }
    Json(json!({"invoices": changed})).into_response()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AdvanceTarget {
    numero_flux_depot: Option<String>,
    numero_facture: Option<String>,
}

async fn advance(State(sandbox): State<Sandbox>, body: Bytes) -> Json<Value> {
    // An empty body advances everything.
    let target: AdvanceTarget = serde_json::from_slice(&body).unwrap_or_default();
    let moved = sandbox.advance(
        target.numero_flux_depot.as_deref(),
        target.numero_facture.as_deref(),
    );
    Json(json!({"moved": moved}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_is_decoded() {
        let form = parse_form(
            b"grant_type=client_credentials&client_id=a%2Bb&client_secret=x+y&scope=openid",
        );
        assert_eq!(form["client_id"], "a+b");
        assert_eq!(form["client_secret"], "x y");
    }
}
