//! `POST /v1/companies/{siret}/documents` (contract additions, "Large documents"): a company
//! announces a file (name, type, size), the gateway records it and answers a pre-signed
//! S3 PUT for exactly that file, valid 15 minutes. A transmission then names the file by
//! its `document_id` instead of carrying it in base64 (API Gateway and Lambda cap a request
//! at 10 and 6 MB; Chorus Pro takes 10 MB per file).
//!
//! This function may only write objects under the documents prefix; `transmit-invoice`
//! only reads them (infra/template.yaml).

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::clock::{Clock, SystemClock, rfc3339};
use shared::config::Config;
use shared::documents::DocumentBucket;
use shared::domain::Siret;
use shared::domain::document::{Announced, Document};
use shared::http::json::body_bytes;
use shared::http::{
    Caller, FieldError, JsonObject, Problem, answer_in, json_response, path_param, path_siret,
    store_problem,
};
use shared::store::Store;

/// The announcement is a few hundred bytes.
const BODY_LIMIT: usize = 16 * 1024;

/// What the function holds for its warm life. Without `DOCUMENTS_BUCKET` the bucket is
/// absent and the route answers 503.
pub struct State {
    pub config: Config,
    pub store: Store,
    pub bucket: Option<DocumentBucket>,
    pub clock: Arc<dyn Clock>,
}

impl State {
    pub fn from_sdk(config: Config, sdk: &shared::aws::SdkConfig) -> State {
        let store = Store::new(
            shared::aws::LazyClient::new(sdk, shared::aws::dynamodb::Client::new),
            config.table_name.clone(),
        );
        let bucket = config
            .documents_bucket
            .clone()
            .map(|name| DocumentBucket::from_sdk(sdk, name));
        State {
            config,
            store,
            bucket,
            clock: Arc::new(SystemClock),
        }
    }
}

#[derive(Serialize)]
struct Created {
    document_id: String,
    upload_url: String,
    expires_at: String,
}

/// Its one route (`Route::CreateDocument`): any key is answered by it.
pub async fn handle(state: &State, request: Request) -> Response<Body> {
    let siret = path_param(&request, "siret");
    let span = tracing::info_span!("request", siret = %siret);
    let outcome = Box::pin(async {
        let caller = Caller::from_request(&request)?;
        caller.authorise(&siret)?;
        create(state, &siret, request.body()).await
    });
    answer_in(span, outcome).await
}

/// Checks the announcement, signs the upload, records the document, then answers: a URL
/// is never handed out for a document the gateway does not know.
async fn create(state: &State, raw_siret: &str, body: &Body) -> Result<Response<Body>, Problem> {
    let announced = read_announcement(raw_siret, body_bytes(body, BODY_LIMIT)?)?;
    let (siret, announced) = announced;
    let Some(bucket) = &state.bucket else {
        tracing::error!("DOCUMENTS_BUCKET is not set");
        return Err(Problem::service_unavailable());
    };
    let now = state.clock.now();
    let document = Document::new(siret, announced, now);
    // Signed first (no call to S3): a failure then leaves no record behind.
    let upload = bucket.presign_upload(&document, now).await.map_err(|e| {
        tracing::error!(error = %e, "could not sign the upload");
        Problem::service_unavailable()
    })?;
    state
        .store
        .put_document(&document)
        .await
        .map_err(|e| store_problem(&e))?;
    tracing::info!(
        document_id = document.id.as_str(),
        size = document.announced.size,
        "upload signed"
    );
    Ok(json_response(
        201,
        &Created {
            document_id: document.id.as_str().to_owned(),
            upload_url: upload.url,
            expires_at: rfc3339(document.upload_expires_at),
        },
    ))
}

/// The path's SIRET and the body's announcement, or every fault at once.
fn read_announcement(raw_siret: &str, bytes: &[u8]) -> Result<(Siret, Announced), Problem> {
    let mut faults = Vec::new();
    let siret = path_siret(raw_siret)
        .map_err(|p| faults.extend(p.errors))
        .ok();
    let mut body = JsonObject::parse(bytes)?;
    let filename = body.string("filename").unwrap_or_default();
    let content_type = body.string("content_type").unwrap_or_default();
    let size = body.integer("size");
    let announced = Announced::check(&filename, &content_type, size)
        .map_err(|all| {
            faults.extend(
                all.into_iter()
                    .map(|f| FieldError::new(f.field, f.code, f.message)),
            )
        })
        .ok();
    body.finish(faults)?;
    // Both are there once `finish` found no fault.
    siret.zip(announced).ok_or_else(Problem::internal)
}
