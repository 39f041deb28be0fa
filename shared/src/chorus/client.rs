//! The HTTP side: token cache, request sending, answer classification, retries.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

use super::factures::{
    FluxDeposit, FluxDepositResponse, FluxReport, FluxReportRequest, InvoiceHistory,
    InvoiceHistoryRequest, SupplierInvoiceSearch, SupplierInvoiceSearchResponse,
};
use super::returned::{
    FileUpload, FileUploadResponse, InvoiceCompletion, InvoiceCompletionResponse, InvoiceRecycle,
    InvoiceRecycleResponse,
};
use super::structures::{
    ActiveStructuresResponse, CommitmentSearchRequest, CommitmentSearchResponse,
    ServiceReadRequest, ServiceReadResponse, ServiceSearchRequest, ServiceSearchResponse,
    StructureReadRequest, StructureReadResponse, StructureSearchRequest, StructureSearchResponse,
};
use super::works::{
    InvoiceSubmission, InvoiceSubmissionResponse, WorksInvoiceRead, WorksInvoiceReadResponse,
    WorksInvoiceRecycle, WorksInvoiceRecycleResponse, WorksInvoiceSearch,
    WorksInvoiceSearchResponse,
};
use super::{
    ChorusConfig, ChorusError, PisteCredentials, PisteCredentialsSource, TechnicalAccount,
};

// Public so that `make qualify` probes exactly the paths the gateway calls.
pub const STRUCTURES_SEARCH: &str = "structures/v1/rechercher";
pub const STRUCTURE_READ: &str = "structures/v1/consulter";
pub const SERVICES_SEARCH: &str = "structures/v1/rechercher/services";
pub const SERVICE_READ: &str = "structures/v1/consulter/service";
pub const COMMITMENTS_SEARCH: &str = "engagementsJuridiques/v1/rechercher";
pub const SUPPLIER_ACTIVE_STRUCTURES: &str =
    "transverses/v1/recuperer/structures/actives/fournisseur";
pub const FLUX_DEPOSIT: &str = "factures/v1/deposer/flux";
pub const FLUX_REPORT: &str = "transverses/v1/consulterCRDetaille";
pub const SUPPLIER_INVOICES_SEARCH: &str = "factures/v1/rechercher/fournisseur";
pub const INVOICE_HISTORY: &str = "factures/v1/consulter/historique";
pub const INVOICE_RECYCLE: &str = "factures/v1/recycler";
pub const FILE_UPLOAD: &str = "transverses/v1/ajouter/fichier";
pub const INVOICE_COMPLETE: &str = "factures/v1/completer";
/// A document submitted as data with its PDF (`soumettreFacture`): the works route
/// (docs/chorus-pro.md#works-circuit).
pub const INVOICE_SUBMIT: &str = "factures/v1/soumettre";
/// `rechercherFactureTravaux` on PISTE (Pastell).
pub const WORKS_INVOICES_SEARCH: &str = "facturesTravaux/v1/rechercher";
/// `consulterFactureTravaux`: the PISTE sub-path follows the family's pattern; unconfirmed.
pub const WORKS_INVOICE_READ: &str = "facturesTravaux/v1/consulter";
/// `recyclerFactureTravaux`: the PISTE sub-path follows the family's pattern; unconfirmed.
pub const WORKS_INVOICE_RECYCLE: &str = "facturesTravaux/v1/recycler";
/// The `syntaxeFlux` values the platform takes (GO `RecupererFormatFlux`); the gateway
/// itself does not call it, `make qualify` does.
pub const FLUX_FORMATS: &str = "transverses/v1/recuperer/formatflux";

/// `codeRetour` of a search that found nothing (`TRA_MSG_00.015`, Pastell): the search
/// calls answer an empty list instead of an error.
const NO_RESULT: i64 = 20000;
/// The same for `rechercherFactureTravaux` (Pastell's `CPPWrapper`).
const NO_WORKS_RESULT: i64 = 20007;

const JSON_UTF8: &str = "application/json;charset=utf-8";

/// Chorus Pro client for one warm function: build it once per cold start and share it
/// (`Arc`); it caches the PISTE credentials and token for its whole life.
pub struct ChorusClient {
    /// Built at the first call (issue 18): most events of most functions never call Chorus
    /// Pro, and building it is most of what a cold start would otherwise do beyond the
    /// runtime's own work.
    http: OnceLock<reqwest::Client>,
    config: ChorusConfig,
    credentials: Arc<dyn PisteCredentialsSource>,
    // A tokio Mutex, held across the token request, so that concurrent calls wait for one
    // renewal instead of each asking PISTE.
    session: Mutex<PisteSession>,
    /// The rate limit and the `429` pause every call of this client waits for.
    pacer: Arc<super::pacing::Pacer>,
}

#[derive(Default)]
struct PisteSession {
    credentials: Option<PisteCredentials>,
    token: Option<CachedToken>,
    generation: u64,
}

#[derive(Clone)]
struct CachedToken {
    /// `Bearer …`, marked sensitive.
    header: HeaderValue,
    renew_at: Instant,
    /// Lets a caller that saw its token refused drop exactly that token, not a newer one.
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Read,
    /// Sent once: a resend could deposit the invoice twice.
    Deposit,
}

/// One request as every attempt sends it (the body shared, not copied).
struct Outgoing<'a> {
    url: &'a str,
    path: &'static str,
    body: &'a bytes::Bytes,
    cpro_account: &'a HeaderValue,
}

/// What one answer means for the call.
enum Verdict {
    Answer(Value),
    /// PISTE refused the token or the application (no Chorus Pro envelope).
    PisteRefused,
    Failed(ChorusError),
    /// Worth another attempt for a read.
    Transient {
        may_have_reached_chorus: bool,
        retry_after: Option<Duration>,
    },
}

enum TokenVerdict {
    Token(SecretString, Duration),
    Failed(ChorusError),
    Transient(Option<Duration>),
}

impl ChorusClient {
    /// A client on a ready-made `reqwest::Client` (tests, `make qualify`).
    pub fn new(
        http: reqwest::Client,
        config: ChorusConfig,
        credentials: Arc<dyn PisteCredentialsSource>,
    ) -> Self {
        let client = Self::lazy(config, credentials);
        let _ = client.http.set(http);
        client
    }

    /// A client whose `reqwest::Client` is built at its first call, from `config` (what the
    /// functions hold: a cold start builds nothing here).
    pub fn lazy(config: ChorusConfig, credentials: Arc<dyn PisteCredentialsSource>) -> Self {
        let mut config = config;
        config.api_url = config.api_url.trim_end_matches('/').to_owned();
        ChorusClient {
            http: OnceLock::new(),
            config,
            credentials,
            session: Mutex::new(PisteSession::default()),
            pacer: Arc::new(super::pacing::Pacer::unlimited()),
        }
    }

    /// The HTTP client, built on first use (two calls racing at the first use both build
    /// one, and one is kept).
    fn http(&self) -> Result<&reqwest::Client, ChorusError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let built = Self::build_http_client(&self.config)?;
        Ok(self.http.get_or_init(|| built))
    }

    /// Whether the HTTP client has been built yet (what a cold start leaves unbuilt).
    pub fn http_client_built(&self) -> bool {
        self.http.get().is_some()
    }

    /// The same client, its calls paced by `pacer` (status-sync's shared rate limit).
    pub fn with_pacer(mut self, pacer: Arc<super::pacing::Pacer>) -> Self {
        self.pacer = pacer;
        self
    }

    /// The pacer every call waits for.
    pub fn pacer(&self) -> &super::pacing::Pacer {
        &self.pacer
    }

    /// The `reqwest::Client`: both timeouts set, Mozilla's roots compiled in (`crate::tls`).
    /// Built at the first call of a `lazy` client.
    pub fn build_http_client(config: &ChorusConfig) -> Result<reqwest::Client, ChorusError> {
        let tls = crate::tls::client_config().map_err(|_| ChorusError::InvalidConfiguration {
            reason: "the TLS configuration could not be built".into(),
        })?;
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("choruspro-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| ChorusError::InvalidConfiguration {
                reason: "the HTTP client could not be built".into(),
            })
    }

    pub fn config(&self) -> &ChorusConfig {
        &self.config
    }

    /// `structures/v1/rechercher`; a search without result gives an empty list.
    pub async fn search_structures(
        &self,
        account: &TechnicalAccount,
        request: &StructureSearchRequest,
    ) -> Result<StructureSearchResponse, ChorusError> {
        empty_when_no_result(
            self.call(account, STRUCTURES_SEARCH, request, CallKind::Read)
                .await,
        )
    }

    /// `structures/v1/consulter`: what the structure requires (`parametres`).
    pub async fn read_structure(
        &self,
        account: &TechnicalAccount,
        request: &StructureReadRequest,
    ) -> Result<StructureReadResponse, ChorusError> {
        self.call(account, STRUCTURE_READ, request, CallKind::Read)
            .await
    }

    /// `structures/v1/rechercher/services`; no result gives an empty list.
    pub async fn search_services(
        &self,
        account: &TechnicalAccount,
        request: &ServiceSearchRequest,
    ) -> Result<ServiceSearchResponse, ChorusError> {
        empty_when_no_result(
            self.call(account, SERVICES_SEARCH, request, CallKind::Read)
                .await,
        )
    }

    /// `structures/v1/consulter/service`: does the service require a commitment number?
    pub async fn read_service(
        &self,
        account: &TechnicalAccount,
        request: &ServiceReadRequest,
    ) -> Result<ServiceReadResponse, ChorusError> {
        self.call(account, SERVICE_READ, request, CallKind::Read)
            .await
    }

    /// `engagementsJuridiques/v1/rechercher`; no result gives an empty list.
    pub async fn search_commitments(
        &self,
        account: &TechnicalAccount,
        request: &CommitmentSearchRequest,
    ) -> Result<CommitmentSearchResponse, ChorusError> {
        empty_when_no_result(
            self.call(account, COMMITMENTS_SEARCH, request, CallKind::Read)
                .await,
        )
    }

    /// `transverses/v1/recuperer/structures/actives/fournisseur`: the structures the
    /// technical account may invoice for. Cheap and harmless, so it is also the call that
    /// verifies a technical account (as partiduo does).
    pub async fn supplier_active_structures(
        &self,
        account: &TechnicalAccount,
    ) -> Result<ActiveStructuresResponse, ChorusError> {
        self.call(
            account,
            SUPPLIER_ACTIVE_STRUCTURES,
            &serde_json::json!({}),
            CallKind::Read,
        )
        .await
    }

    /// `factures/v1/deposer/flux`, sent exactly once. On failure, check
    /// [`ChorusError::deposit_may_be_recorded`] before depositing again.
    pub async fn deposit_flux(
        &self,
        account: &TechnicalAccount,
        request: &FluxDeposit<'_>,
    ) -> Result<FluxDepositResponse, ChorusError> {
        self.call(account, FLUX_DEPOSIT, request, CallKind::Deposit)
            .await
    }

    /// `transverses/v1/consulterCRDetaille`: the flux state and its rejections.
    pub async fn read_flux_report(
        &self,
        account: &TechnicalAccount,
        request: &FluxReportRequest,
    ) -> Result<FluxReport, ChorusError> {
        self.call(account, FLUX_REPORT, request, CallKind::Read)
            .await
    }

    /// `factures/v1/rechercher/fournisseur`; no result (`codeRetour` 20000) gives an
    /// empty list.
    pub async fn search_supplier_invoices(
        &self,
        account: &TechnicalAccount,
        request: &SupplierInvoiceSearch,
    ) -> Result<SupplierInvoiceSearchResponse, ChorusError> {
        empty_when_no_result(
            self.call(account, SUPPLIER_INVOICES_SEARCH, request, CallKind::Read)
                .await,
        )
    }

    /// `factures/v1/consulter/historique`: the current status and its history.
    pub async fn read_invoice_history(
        &self,
        account: &TechnicalAccount,
        request: &InvoiceHistoryRequest,
    ) -> Result<InvoiceHistory, ChorusError> {
        self.call(account, INVOICE_HISTORY, request, CallKind::Read)
            .await
    }

    /// `factures/v1/recycler`, sent once (like a deposit): a lost answer is settled by
    /// reading the invoice's status, never by sending it again blindly.
    pub async fn recycle_invoice(
        &self,
        account: &TechnicalAccount,
        request: &InvoiceRecycle,
    ) -> Result<InvoiceRecycleResponse, ChorusError> {
        self.call(account, INVOICE_RECYCLE, request, CallKind::Deposit)
            .await
    }

    /// `transverses/v1/ajouter/fichier`: retried like a read, since a file added twice is
    /// only an unused file in the account, never a second action on the invoice.
    pub async fn upload_file(
        &self,
        account: &TechnicalAccount,
        request: &FileUpload,
    ) -> Result<FileUploadResponse, ChorusError> {
        self.call(account, FILE_UPLOAD, request, CallKind::Read)
            .await
    }

    /// `factures/v1/completer`, sent once (like a deposit).
    pub async fn complete_invoice(
        &self,
        account: &TechnicalAccount,
        request: &InvoiceCompletion,
    ) -> Result<InvoiceCompletionResponse, ChorusError> {
        self.call(account, INVOICE_COMPLETE, request, CallKind::Deposit)
            .await
    }

    /// `factures/v1/soumettre`, sent exactly once (like a deposit): its PDF must have been
    /// added first with [`Self::upload_file`].
    pub async fn submit_invoice(
        &self,
        account: &TechnicalAccount,
        request: &InvoiceSubmission,
    ) -> Result<InvoiceSubmissionResponse, ChorusError> {
        self.call(account, INVOICE_SUBMIT, request, CallKind::Deposit)
            .await
    }

    /// `facturesTravaux/v1/rechercher` as the supplier; no result (20000 or 20007) gives an
    /// empty list.
    pub async fn search_works_invoices(
        &self,
        account: &TechnicalAccount,
        request: &WorksInvoiceSearch,
    ) -> Result<WorksInvoiceSearchResponse, ChorusError> {
        let answer = self
            .call(account, WORKS_INVOICES_SEARCH, request, CallKind::Read)
            .await;
        match answer {
            Err(ChorusError::BusinessRefusal {
                code_retour: NO_WORKS_RESULT,
                ..
            }) => Ok(WorksInvoiceSearchResponse::default()),
            other => empty_when_no_result(other),
        }
    }

    /// `facturesTravaux/v1/consulter`: one works document, its status and the next one.
    pub async fn read_works_invoice(
        &self,
        account: &TechnicalAccount,
        request: &WorksInvoiceRead,
    ) -> Result<WorksInvoiceReadResponse, ChorusError> {
        self.call(account, WORKS_INVOICE_READ, request, CallKind::Read)
            .await
    }

    /// `facturesTravaux/v1/recycler`, sent once (like the ordinary recycle): a lost answer
    /// is settled by reading the document's status.
    pub async fn recycle_works_invoice(
        &self,
        account: &TechnicalAccount,
        request: &WorksInvoiceRecycle,
    ) -> Result<WorksInvoiceRecycleResponse, ChorusError> {
        self.call(account, WORKS_INVOICE_RECYCLE, request, CallKind::Deposit)
            .await
    }

    /// The PISTE token's generation: 1 for the first token this client obtained, one more
    /// for each renewal. Obtains a token when none is cached. Lets qualification show that
    /// a second call reuses the token.
    pub async fn token_generation(&self) -> Result<u64, ChorusError> {
        Ok(self.bearer().await?.generation)
    }

    /// One call sent once, with the same token and `cpro-account` header as every call, but
    /// no retry and no token renewal: the raw answer, for qualification (`make qualify`),
    /// which must show what the platform really answers. [`Probe::outcome`] says how the
    /// typed calls would read it. `Err` only when no answer came at all.
    pub async fn probe(
        &self,
        account: &TechnicalAccount,
        path: &'static str,
        body: &Value,
    ) -> Result<Probe, ChorusError> {
        let url = format!("{}/{}", self.config.api_url, path);
        let cpro_account = cpro_account_header(account)?;
        let token = self.bearer().await?;
        let started = Instant::now();
        let response = self
            .http()?
            .post(&url)
            .timeout(self.config.request_timeout)
            .header(AUTHORIZATION, token.header.clone())
            .header("cpro-account", cpro_account)
            .header(CONTENT_TYPE, JSON_UTF8)
            .header(ACCEPT, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|error| {
                log_transport_error(path, 1, started, &error);
                ChorusError::Unavailable {
                    may_have_reached_chorus: !error.is_connect(),
                }
            })?;
        let status = response.status().as_u16();
        let www_authenticate = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|_| ChorusError::Unavailable {
                may_have_reached_chorus: true,
            })?;
        Ok(Probe {
            path,
            status,
            www_authenticate,
            bytes: bytes.to_vec(),
        })
    }

    async fn call<Q, R>(
        &self,
        account: &TechnicalAccount,
        path: &'static str,
        request: &Q,
        kind: CallKind,
    ) -> Result<R, ChorusError>
    where
        Q: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let body = serde_json::to_vec(request).map_err(|_| ChorusError::InvalidConfiguration {
            reason: format!("the request to {path} could not be encoded"),
        })?;
        let (status, answer) = self.exchange(account, path, body, kind).await?;
        read_answer(path, status, answer)
    }

    /// Sends one call, with the token renewal and (for reads) the retries; gives the HTTP
    /// status and the JSON answer of a success.
    async fn exchange(
        &self,
        account: &TechnicalAccount,
        path: &'static str,
        body: Vec<u8>,
        kind: CallKind,
    ) -> Result<(u16, Value), ChorusError> {
        let url = format!("{}/{}", self.config.api_url, path);
        // Shared by the attempts, not copied for each (a deposit's body is megabytes).
        let body = bytes::Bytes::from(body);
        let cpro_account = cpro_account_header(account)?;
        let outgoing = Outgoing {
            url: &url,
            path,
            body: &body,
            cpro_account: &cpro_account,
        };
        let mut attempt: u32 = 0;
        let mut retries: u32 = 0;
        let mut token_renewed = false;
        loop {
            attempt += 1;
            let token = self.bearer().await?;
            let (status, verdict) = self.send_once(&outgoing, &token, attempt).await;
            match verdict {
                Verdict::Answer(answer) => return Ok((status.unwrap_or(200), answer)),
                Verdict::Failed(error) => return Err(error),
                Verdict::PisteRefused => {
                    if token_renewed {
                        return Err(ChorusError::GatewayNotAuthorised);
                    }
                    token_renewed = true;
                    self.forget_token(token.generation).await;
                }
                Verdict::Transient {
                    may_have_reached_chorus,
                    retry_after,
                } => {
                    let unavailable = ChorusError::Unavailable {
                        may_have_reached_chorus,
                    };
                    if kind == CallKind::Deposit || retries >= self.config.max_retries {
                        return Err(unavailable);
                    }
                    let Some(delay) = self.retry_delay(retries, retry_after) else {
                        return Err(unavailable);
                    };
                    retries += 1;
                    tracing::debug!(path, attempt, delay_ms = millis(delay), "Chorus Pro retry");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One attempt: paced, sent, read into a verdict (with the status when one came).
    async fn send_once(
        &self,
        outgoing: &Outgoing<'_>,
        token: &CachedToken,
        attempt: u32,
    ) -> (Option<u16>, Verdict) {
        self.pacer.wait_turn().await;
        let started = Instant::now();
        let http = match self.http() {
            Ok(http) => http,
            Err(error) => return (None, Verdict::Failed(error)),
        };
        let sent = http
            .post(outgoing.url)
            .timeout(self.config.request_timeout)
            .header(AUTHORIZATION, token.header.clone())
            .header("cpro-account", outgoing.cpro_account.clone())
            .header(CONTENT_TYPE, JSON_UTF8)
            .header(ACCEPT, "application/json")
            .body(outgoing.body.clone())
            .send()
            .await;
        match sent {
            Err(error) => {
                log_transport_error(outgoing.path, attempt, started, &error);
                let verdict = Verdict::Transient {
                    // Refused before anything was written: Chorus Pro saw nothing.
                    may_have_reached_chorus: !error.is_connect(),
                    retry_after: None,
                };
                (None, verdict)
            }
            Ok(response) => {
                let status = response.status();
                let verdict = self.read_response(outgoing.path, response).await;
                tracing::debug!(
                    path = outgoing.path,
                    attempt,
                    status = status.as_u16(),
                    duration_ms = millis(started.elapsed()),
                    "Chorus Pro call"
                );
                (Some(status.as_u16()), verdict)
            }
        }
    }

    /// What an answer means; a `429` also slows every call of this client down.
    async fn read_response(&self, path: &'static str, response: reqwest::Response) -> Verdict {
        let status = response.status();
        let hints = hints(response.headers());
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.pacer.slow_down(hints.retry_after);
        }
        match response.bytes().await {
            Ok(bytes) => classify(path, status, &bytes, hints),
            // The status came, the body did not: the request was processed.
            Err(_) => Verdict::Transient {
                may_have_reached_chorus: true,
                retry_after: None,
            },
        }
    }

    /// The cached token, or a new one; concurrent callers wait on the session lock, so a
    /// warm function asks PISTE once per token lifetime.
    async fn bearer(&self) -> Result<CachedToken, ChorusError> {
        let mut session = self.session.lock().await;
        if let Some(token) = &session.token
            && Instant::now() < token.renew_at
        {
            return Ok(token.clone());
        }
        let credentials = match &session.credentials {
            Some(credentials) => credentials.clone(),
            None => {
                let loaded = self.credentials.load().await?;
                session.credentials = Some(loaded.clone());
                loaded
            }
        };
        let requested_at = Instant::now();
        match self.request_token(&credentials).await {
            Ok((access_token, lifetime)) => {
                let mut header =
                    HeaderValue::from_str(&format!("Bearer {}", access_token.expose_secret()))
                        .map_err(|_| ChorusError::UnexpectedResponse {
                            status: 200,
                            may_have_reached_chorus: false,
                        })?;
                header.set_sensitive(true);
                session.generation += 1;
                let usable_for = lifetime.saturating_sub(self.config.token_renewal_margin);
                let token = CachedToken {
                    header,
                    renew_at: requested_at.checked_add(usable_for).unwrap_or(requested_at),
                    generation: session.generation,
                };
                session.token = Some(token.clone());
                Ok(token)
            }
            Err(error) => {
                if matches!(error, ChorusError::GatewayNotAuthorised) {
                    // Read the secret again next time: it may have been rotated.
                    session.credentials = None;
                }
                Err(error)
            }
        }
    }

    async fn forget_token(&self, generation: u64) {
        let mut session = self.session.lock().await;
        if session
            .token
            .as_ref()
            .is_some_and(|token| token.generation == generation)
        {
            session.token = None;
        }
    }

    /// OAuth2 `client_credentials` against PISTE, with the read retry policy.
    async fn request_token(
        &self,
        credentials: &PisteCredentials,
    ) -> Result<(SecretString, Duration), ChorusError> {
        let form = SecretString::from(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=openid",
            form_encode(&credentials.client_id),
            form_encode(credentials.client_secret.expose_secret()),
        ));
        let mut attempt: u32 = 0;
        let mut retries: u32 = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let sent = self
                .http()?
                .post(&self.config.token_url)
                .timeout(self.config.request_timeout)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .body(form.expose_secret().to_owned())
                .send()
                .await;
            let verdict = match sent {
                Err(error) => {
                    log_transport_error("oauth/token", attempt, started, &error);
                    TokenVerdict::Transient(None)
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let verdict = match response.bytes().await {
                        Ok(bytes) => classify_token(status, &bytes, retry_after),
                        Err(_) => TokenVerdict::Transient(None),
                    };
                    tracing::debug!(
                        path = "oauth/token",
                        attempt,
                        status = status.as_u16(),
                        duration_ms = millis(started.elapsed()),
                        "PISTE token request"
                    );
                    verdict
                }
            };
            match verdict {
                TokenVerdict::Token(token, lifetime) => return Ok((token, lifetime)),
                TokenVerdict::Failed(error) => return Err(error),
                TokenVerdict::Transient(retry_after) => {
                    // The token endpoint is PISTE, not Chorus Pro: nothing reached Chorus.
                    let unavailable = ChorusError::Unavailable {
                        may_have_reached_chorus: false,
                    };
                    if retries >= self.config.max_retries {
                        return Err(unavailable);
                    }
                    let Some(delay) = self.retry_delay(retries, retry_after) else {
                        return Err(unavailable);
                    };
                    retries += 1;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// How long to wait before retry number `retries + 1`; `None` when the server asks for
    /// longer than `max_retry_after`.
    fn retry_delay(&self, retries: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(asked) if asked > self.config.max_retry_after => None,
            Some(asked) => Some(asked),
            None => Some(self.backoff(retries)),
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so that functions
    /// failing together do not come back together.
    fn backoff(&self, retries: u32) -> Duration {
        let base = self
            .config
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retries))
            .min(self.config.max_backoff);
        let half = base / 2;
        let jitter = rand::random_range(0..=millis(half));
        half + Duration::from_millis(jitter)
    }
}

impl std::fmt::Debug for ChorusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChorusClient")
            .field("api_url", &self.config.api_url)
            .field("token_url", &self.config.token_url)
            .finish_non_exhaustive()
    }
}

/// A raw answer of [`ChorusClient::probe`].
#[derive(Debug, Clone)]
pub struct Probe {
    pub path: &'static str,
    pub status: u16,
    /// Where PISTE says why it refused (OCA: `login or password incorrects`).
    pub www_authenticate: Option<String>,
    bytes: Vec<u8>,
}

impl Probe {
    /// The body as JSON, or as a JSON string when it is not JSON (`null` when empty).
    pub fn body(&self) -> Value {
        if self.bytes.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.bytes).into_owned()))
    }

    /// What the typed calls conclude from this answer (the 401/403 rule, `codeRetour`):
    /// a PISTE refusal is `GatewayNotAuthorised` at once, since a probe renews nothing.
    pub fn outcome(&self) -> Result<Value, ChorusError> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let hints = Hints {
            retry_after: None,
            login_refused: self
                .www_authenticate
                .as_deref()
                .is_some_and(says_login_refused),
        };
        match classify(self.path, status, &self.bytes, hints) {
            Verdict::Answer(answer) => Ok(answer),
            Verdict::Failed(error) => Err(error),
            Verdict::PisteRefused => Err(ChorusError::GatewayNotAuthorised),
            Verdict::Transient {
                may_have_reached_chorus,
                ..
            } => Err(ChorusError::Unavailable {
                may_have_reached_chorus,
            }),
        }
    }

    /// The answer read into the gateway's own type, as the typed call would.
    pub fn read<R: DeserializeOwned>(&self) -> Result<R, ChorusError> {
        read_answer(self.path, self.status, self.outcome()?)
    }

    /// Same for a search: "no result" (`codeRetour` 20000) is an empty answer.
    pub fn read_search<R: DeserializeOwned + Default>(&self) -> Result<R, ChorusError> {
        empty_when_no_result(self.read())
    }
}

/// Reads a success answer into its type. An answer that does not fit is
/// [`ChorusError::UnexpectedAnswer`], logged with the path and where in the answer it went
/// wrong; the serde message is stripped of values, and the answer itself is never logged.
fn read_answer<R: DeserializeOwned>(
    path: &'static str,
    status: u16,
    answer: Value,
) -> Result<R, ChorusError> {
    serde_path_to_error::deserialize(answer).map_err(|e| {
        let error = super::lenient::describe_error(&e);
        tracing::warn!(path, status, error = %error, "Chorus Pro answer cannot be read");
        ChorusError::UnexpectedAnswer { path, error }
    })
}

fn empty_when_no_result<T: Default>(result: Result<T, ChorusError>) -> Result<T, ChorusError> {
    match result {
        Err(ChorusError::BusinessRefusal {
            code_retour: NO_RESULT,
            ..
        }) => Ok(T::default()),
        other => other,
    }
}

/// What the headers of an answer add to its status and body.
#[derive(Debug, Clone, Copy, Default)]
struct Hints {
    retry_after: Option<Duration>,
    /// PISTE's `WWW-Authenticate` says the technical account's login or password was
    /// refused (docs/chorus-pro.md, "Who answers 401/403, and how to tell").
    login_refused: bool,
}

fn hints(headers: &HeaderMap) -> Hints {
    Hints {
        retry_after: retry_after(headers),
        login_refused: headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(says_login_refused),
    }
}

/// OCA quotes PISTE's header for a refused technical account:
/// `Bearer realm="PISTE",error="Unauthorized",error_description="login or password incorrects"`.
fn says_login_refused(www_authenticate: &str) -> bool {
    www_authenticate
        .to_ascii_lowercase()
        .contains("login or password")
}

/// Reads one answer of `path` (see the module documentation for the 401/403 rule).
///
/// A success status whose body is not JSON is an answer this client cannot read
/// ([`ChorusError::UnexpectedAnswer`], like JSON of the wrong shape): the request reached
/// Chorus Pro. A status Chorus Pro is not documented to send is
/// [`ChorusError::UnexpectedResponse`] (docs/chorus-pro.md#answers-the-client-cannot-read).
fn classify(path: &'static str, status: StatusCode, body: &[u8], hints: Hints) -> Verdict {
    let retry_after = hints.retry_after;
    let parsed: Result<Value, serde_json::Error> = serde_json::from_slice(body);
    let json = parsed.as_ref().ok();
    let code_retour = json.and_then(code_retour);
    let refusal = |code_retour: i64| {
        Verdict::Failed(ChorusError::BusinessRefusal {
            code_retour,
            libelle: json
                .and_then(|v| v.get("libelle"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    };
    match status.as_u16() {
        200..=299 => match code_retour {
            Some(code) if code != 0 => refusal(code),
            _ => match parsed {
                Ok(answer) => Verdict::Answer(answer),
                Err(error) => Verdict::Failed(not_json(path, status, body.len(), &error)),
            },
        },
        401 | 403 if code_retour.is_some() || hints.login_refused => {
            Verdict::Failed(ChorusError::CredentialsRejected)
        }
        401 | 403 => Verdict::PisteRefused,
        400 => match code_retour {
            Some(code) if code != 0 => refusal(code),
            _ => Verdict::Failed(ChorusError::UnexpectedResponse {
                status: 400,
                may_have_reached_chorus: false,
            }),
        },
        // PISTE throttling refuses before forwarding anything.
        429 => Verdict::Transient {
            may_have_reached_chorus: false,
            retry_after,
        },
        500..=599 => Verdict::Transient {
            may_have_reached_chorus: true,
            retry_after,
        },
        other => Verdict::Failed(ChorusError::UnexpectedResponse {
            status: other,
            may_have_reached_chorus: false,
        }),
    }
}

/// A success body that is not JSON (an HTML page, an empty body): logged with the path,
/// its size and where the parser stopped, never the body itself.
fn not_json(
    path: &'static str,
    status: StatusCode,
    size: usize,
    error: &serde_json::Error,
) -> ChorusError {
    let error = format!("the body is not JSON ({size} bytes): {error}");
    tracing::warn!(path, status = status.as_u16(), error = %error, "Chorus Pro answer cannot be read");
    ChorusError::UnexpectedAnswer { path, error }
}

fn classify_token(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> TokenVerdict {
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        access_token: SecretString,
        #[serde(default)]
        expires_in: Option<Value>,
    }
    match status.as_u16() {
        200..=299 => match serde_json::from_slice::<TokenAnswer>(body) {
            Ok(answer) => {
                let seconds = answer
                    .expires_in
                    .as_ref()
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
                    // PISTE documents 3600 s; a missing value is taken as that.
                    .unwrap_or(3600);
                TokenVerdict::Token(
                    answer.access_token,
                    // A day at most, so a bogus value cannot pin a token forever.
                    Duration::from_secs(seconds.min(86_400)),
                )
            }
            Err(_) => TokenVerdict::Failed(ChorusError::UnexpectedResponse {
                status: status.as_u16(),
                may_have_reached_chorus: false,
            }),
        },
        // `invalid_client` (400, byte-identical for an unknown id and a wrong secret),
        // or any other refusal of the application.
        400 | 401 | 403 => {
            tracing::debug!(status = status.as_u16(), "PISTE refused the token request");
            TokenVerdict::Failed(ChorusError::GatewayNotAuthorised)
        }
        429 | 500..=599 => TokenVerdict::Transient(retry_after),
        other => TokenVerdict::Failed(ChorusError::UnexpectedResponse {
            status: other,
            may_have_reached_chorus: false,
        }),
    }
}

fn code_retour(answer: &Value) -> Option<i64> {
    let code = answer.get("codeRetour")?;
    code.as_i64().or_else(|| code.as_str()?.trim().parse().ok())
}

/// `Retry-After` in seconds; the HTTP-date form is ignored (backoff applies instead).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// `base64("login:password")`, as a sensitive header value.
fn cpro_account_header(account: &TechnicalAccount) -> Result<HeaderValue, ChorusError> {
    let pair = SecretString::from(format!(
        "{}:{}",
        account.login,
        account.password.expose_secret()
    ));
    let encoded = SecretString::from(BASE64.encode(pair.expose_secret()));
    let mut value = HeaderValue::from_str(encoded.expose_secret()).map_err(|_| {
        ChorusError::InvalidConfiguration {
            reason: "the cpro-account header could not be built".into(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

fn log_transport_error(path: &str, attempt: u32, started: Instant, error: &reqwest::Error) {
    let kind = if error.is_connect() {
        "connect"
    } else if error.is_timeout() {
        "timeout"
    } else {
        "transport"
    };
    tracing::debug!(
        path,
        attempt,
        error = kind,
        duration_ms = millis(started.elapsed()),
        "Chorus Pro call failed"
    );
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(status: u16, body: &str) -> Verdict {
        classify(
            STRUCTURES_SEARCH,
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
            Hints::default(),
        )
    }

    #[test]
    fn piste_saying_login_or_password_means_the_technical_account() {
        let mut headers = HeaderMap::new();
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"Bearer realm="PISTE",error="Unauthorized",error_description="login or password incorrects""#,
            ),
        );
        let refused = classify(
            STRUCTURES_SEARCH,
            StatusCode::UNAUTHORIZED,
            b"",
            hints(&headers),
        );
        assert!(matches!(
            refused,
            Verdict::Failed(ChorusError::CredentialsRejected)
        ));
        let mut token_expired = HeaderMap::new();
        token_expired.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="PISTE",error="invalid_token""#),
        );
        let renew = classify(
            STRUCTURES_SEARCH,
            StatusCode::UNAUTHORIZED,
            b"",
            hints(&token_expired),
        );
        assert!(matches!(renew, Verdict::PisteRefused));
    }

    #[test]
    fn ldap_body_means_the_technical_account() {
        let ldap = r#"{"codeRetour":401,"libelle":"Impossible d'authentifier l'utilisateur dans le LDAP."}"#;
        assert!(matches!(
            verdict(401, ldap),
            Verdict::Failed(ChorusError::CredentialsRejected)
        ));
        assert!(matches!(
            verdict(401, r#"{"error":"invalid_token"}"#),
            Verdict::PisteRefused
        ));
        assert!(matches!(verdict(403, "{}"), Verdict::PisteRefused));
        assert!(matches!(verdict(403, ""), Verdict::PisteRefused));
    }

    #[test]
    fn non_zero_code_retour_is_a_refusal_on_200_and_400() {
        for status in [200, 400] {
            match verdict(status, r#"{"codeRetour":20001,"libelle":"GDP_MSG_11.022"}"#) {
                Verdict::Failed(ChorusError::BusinessRefusal {
                    code_retour,
                    libelle,
                }) => {
                    assert_eq!(code_retour, 20001);
                    assert_eq!(libelle, "GDP_MSG_11.022");
                }
                _ => panic!("expected a refusal for HTTP {status}"),
            }
        }
        assert!(matches!(
            verdict(200, r#"{"codeRetour":0,"x":1}"#),
            Verdict::Answer(_)
        ));
    }

    #[test]
    fn throttling_did_not_reach_chorus_but_5xx_may_have() {
        assert!(matches!(
            verdict(429, ""),
            Verdict::Transient {
                may_have_reached_chorus: false,
                ..
            }
        ));
        assert!(matches!(
            verdict(502, ""),
            Verdict::Transient {
                may_have_reached_chorus: true,
                ..
            }
        ));
    }

    /// Issue 19: a success whose body is not JSON is an answer the client cannot read
    /// (`chorus_unexpected_answer`), not an unavailable Chorus Pro; it reached Chorus Pro.
    #[test]
    fn a_success_that_is_not_json_is_an_unreadable_answer_of_its_call() {
        for body in [
            "<html><body>Maintenance</body></html>",
            "",
            "{\"codeRetour\":0,",
        ] {
            match verdict(200, body) {
                Verdict::Failed(error @ ChorusError::UnexpectedAnswer { path, .. }) => {
                    assert_eq!(path, STRUCTURES_SEARCH);
                    assert!(error.deposit_may_be_recorded(), "{error}");
                    let text = error.to_string();
                    assert!(text.contains("not JSON"), "{text}");
                    assert!(!text.contains("Maintenance"), "never the body: {text}");
                }
                _ => panic!("expected an unreadable answer for {body:?}"),
            }
        }
        assert!(matches!(
            verdict(204, ""),
            Verdict::Failed(ChorusError::UnexpectedAnswer { .. })
        ));
    }

    /// A status Chorus Pro is not documented to send (a 404 or 302 of a proxy, a 400 without
    /// `codeRetour`) is not read as an answer, and nothing was processed.
    #[test]
    fn an_undocumented_status_is_an_unexpected_response_that_processed_nothing() {
        for (status, body) in [
            (404, "<html>Not Found</html>"),
            (302, ""),
            (400, "{}"),
            (409, "{}"),
        ] {
            match verdict(status, body) {
                Verdict::Failed(
                    error @ ChorusError::UnexpectedResponse {
                        status: seen,
                        may_have_reached_chorus: false,
                    },
                ) => {
                    assert_eq!(seen, status);
                    assert!(!error.deposit_may_be_recorded());
                }
                _ => panic!("expected an unexpected response for HTTP {status}"),
            }
        }
    }

    #[tokio::test]
    async fn the_http_client_is_built_at_the_first_call_not_before() {
        // Nothing listens on port 9 of the loopback: the call fails, after building.
        let mut config = ChorusConfig::new("http://127.0.0.1:9/cpro", "http://127.0.0.1:9/token");
        config.max_retries = 0;
        let credentials = super::super::StaticPisteCredentials(PisteCredentials {
            client_id: "id".into(),
            client_secret: SecretString::from("secret"),
        });
        let client = ChorusClient::lazy(config, Arc::new(credentials));
        assert!(!client.http_client_built());
        let account = TechnicalAccount::new("TECH_1_x@cpro.fr", "pwd");
        let answer = client
            .probe(&account, STRUCTURES_SEARCH, &serde_json::json!({}))
            .await;
        assert!(answer.is_err(), "nothing listens there");
        assert!(client.http_client_built());
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(form_encode("gateway-local"), "gateway-local");
    }

    #[test]
    fn cpro_account_is_base64_of_login_colon_password() {
        let account = TechnicalAccount::new("TECH_1_x@cpro.fr", "pwd");
        let header = cpro_account_header(&account).unwrap();
        assert!(header.is_sensitive());
        assert_eq!(
            header.to_str().unwrap(),
            BASE64.encode("TECH_1_x@cpro.fr:pwd")
        );
    }
}
