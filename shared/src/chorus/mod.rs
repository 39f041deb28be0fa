//! Chorus Pro client: PISTE token, `cpro-account` header, typed calls, error mapping,
//! retries.
//!
//! Every call is `POST {api_url}/{path}` with a JSON body and two credentials: the
//! gateway's PISTE bearer token (one PISTE application for all companies, the
//! "concentrateur" model) and the company's technical account in `cpro-account`.
//!
//! # Telling a refused technical account from a refused gateway
//!
//! Both layers answer 401/403, so the client decides on the body and `WWW-Authenticate` (docs/chorus-pro.md#piste-and-authentication and #answer-envelope-and-error-codes):
//!
//! - a 401/403 whose JSON body carries `codeRetour` (e.g.
//!   `{"codeRetour":401,"libelle":"Impossible d'authentifier l'utilisateur dans le LDAP."}`)
//!   comes from Chorus Pro behind an accepted PISTE token: the technical account is refused
//!   ([`ChorusError::CredentialsRejected`]); so is a PISTE 401 whose `WWW-Authenticate`
//!   says `login or password incorrects` (OCA's quote), without a token renewal;
//! - any other 401/403 (no body, `{}`, an OAuth-style `{"error":…}`, an echo of the
//!   request) comes from PISTE: the token is dropped, a new one is requested and that one
//!   call is sent again once; if PISTE refuses again, [`ChorusError::GatewayNotAuthorised`].
//!   A PISTE refusal means the request never reached Chorus Pro, so this single resend is
//!   safe even for a deposit.
//!
//! Unconfirmed: the exact answer for an *expired* technical-account password (the sources
//! only show the wrong-password body). With this rule an expired password that came back
//! without `codeRetour` would be reported as `GatewayNotAuthorised`.
//!
//! # Retries
//!
//! Reads and token requests are retried on timeouts, connection errors, 5xx and 429, at
//! most [`ChorusConfig::max_retries`] times, with jittered exponential backoff. A 429's
//! `Retry-After` (seconds) is waited for when it is at most
//! [`ChorusConfig::max_retry_after`]; a longer one ends the attempts at once (waiting less
//! than asked would only earn another 429, waiting longer would eat the function's time).
//! `deposer/flux` is never retried: its error says whether the request may have reached
//! Chorus Pro (see [`ChorusError::Unavailable`]).
//!
//! # Secrets
//!
//! Passwords, the client secret and tokens are `SecretString`s or sensitive header
//! values; they never appear in `Debug`, `Display`, error text or logs. Logs are
//! `tracing` debug events with the path, status, attempt and duration only.

mod client;
mod error;
mod factures;
pub mod lenient;
mod pacing;
mod returned;
mod status;
mod structures;
mod works;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use secrecy::SecretString;

pub use client::{ChorusClient, Probe};
pub use pacing::Pacer;

/// The paths of the calls, relative to the API base.
pub mod paths {
    pub use super::client::{
        COMMITMENTS_SEARCH, FILE_UPLOAD, FLUX_DEPOSIT, FLUX_FORMATS, FLUX_REPORT, INVOICE_COMPLETE,
        INVOICE_HISTORY, INVOICE_RECYCLE, SERVICE_READ, SERVICES_SEARCH, STRUCTURE_READ,
        STRUCTURES_SEARCH, SUPPLIER_ACTIVE_STRUCTURES, SUPPLIER_INVOICES_SEARCH,
    };
    pub use super::client::{
        INVOICE_SUBMIT, WORKS_INVOICE_READ, WORKS_INVOICE_RECYCLE, WORKS_INVOICES_SEARCH,
    };
}
pub use error::ChorusError;
pub use factures::{
    FluxDeposit, FluxDepositResponse, FluxFile, FluxFormat, FluxFormats, FluxReport,
    FluxReportRequest, HistoryPaging, InvoiceError, InvoiceHistory, InvoiceHistoryRequest,
    MAX_FLUX_BYTES, SYNTAX_UBL_INVOICE, StatusHistory, StatusHistoryEntry, SupplierInvoice,
    SupplierInvoiceSearch, SupplierInvoiceSearchResponse, TechnicalError, search_datetime,
};
pub use lenient::parse_datetime as parse_chorus_datetime;
pub use returned::{
    CompletionFile, FileUpload, FileUploadResponse, InvoiceCompletion, InvoiceCompletionResponse,
    InvoiceRecycle, InvoiceRecycleResponse, RecycleRecipient, RecycleReference,
};
pub use status::{FluxOutcome, FluxState, InvoiceStatus, says_number_already_used};
pub use structures::{
    ActiveStructure, ActiveStructuresResponse, BuyerRequirement, Commitment,
    CommitmentSearchRequest, CommitmentSearchResponse, Paging, PagingResult, SERVICES_PER_PAGE,
    ServiceGeneralInformation, ServiceParameters, ServiceReadRequest, ServiceReadResponse,
    ServiceSearchRequest, ServiceSearchResponse, ServiceSummary, StructureCriteria,
    StructureGeneralInformation, StructureParameters, StructureReadRequest, StructureReadResponse,
    StructureSearchRequest, StructureSearchResponse, StructureSummary,
};
pub use works::{
    FollowingPiece, InvoiceSubmission, InvoiceSubmissionResponse, MODE_PDF_API, MainAttachment,
    SubmissionFramework, SubmissionRecipient, SubmissionReferences, SubmissionSupplier,
    SubmissionTotals, WorksInvoice, WorksInvoiceRead, WorksInvoiceReadResponse,
    WorksInvoiceRecycle, WorksInvoiceRecycleResponse, WorksInvoiceSearch,
    WorksInvoiceSearchResponse, WorksInvoiceSummary,
};

/// Where PISTE and Chorus Pro are, and how patient the client is.
#[derive(Debug, Clone)]
pub struct ChorusConfig {
    /// API base as the real one, without trailing slash:
    /// `https://sandbox-api.piste.gouv.fr/cpro`.
    pub api_url: String,
    /// OAuth token endpoint: `https://sandbox-oauth.piste.gouv.fr/api/oauth/token`.
    pub token_url: String,
    /// Time allowed to open the TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole attempt (send, wait, read the answer).
    pub request_timeout: Duration,
    /// Further attempts after the first, for reads and token requests.
    pub max_retries: u32,
    /// Backoff before the first retry; doubles each time, capped by `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` the client is willing to wait.
    pub max_retry_after: Duration,
    /// A token is renewed this long before PISTE's `expires_in` runs out.
    pub token_renewal_margin: Duration,
}

impl ChorusConfig {
    pub const SANDBOX_API_URL: &str = "https://sandbox-api.piste.gouv.fr/cpro";
    pub const SANDBOX_TOKEN_URL: &str = "https://sandbox-oauth.piste.gouv.fr/api/oauth/token";
    pub const PRODUCTION_API_URL: &str = "https://api.piste.gouv.fr/cpro";
    pub const PRODUCTION_TOKEN_URL: &str = "https://oauth.piste.gouv.fr/api/oauth/token";

    /// Defaults: 5 s to connect, 30 s per attempt (OCA uses 30 s), 2 retries from 200 ms
    /// to 2 s, `Retry-After` up to 10 s, renewal 60 s before expiry (INV, partiduo).
    pub fn new(api_url: impl Into<String>, token_url: impl Into<String>) -> Self {
        ChorusConfig {
            api_url: api_url.into().trim_end_matches('/').to_owned(),
            token_url: token_url.into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
            token_renewal_margin: Duration::from_secs(60),
        }
    }
}

/// A company's Chorus Pro technical account (*compte technique*), sent in `cpro-account`.
#[derive(Clone)]
pub struct TechnicalAccount {
    pub login: String,
    pub password: SecretString,
}

impl TechnicalAccount {
    pub fn new(login: impl Into<String>, password: impl Into<SecretString>) -> Self {
        TechnicalAccount {
            login: login.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for TechnicalAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TechnicalAccount")
            .field("login", &self.login)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// The gateway's own PISTE application credentials.
#[derive(Clone)]
pub struct PisteCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl std::fmt::Debug for PisteCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PisteCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .finish()
    }
}

/// Where the gateway's PISTE credentials come from (Secrets Manager in AWS). Called
/// lazily, once per warm function, and again only after PISTE answered `invalid_client`
/// (so a rotated secret is picked up).
pub trait PisteCredentialsSource: Send + Sync {
    fn load(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<PisteCredentials, ChorusError>> + Send + '_>>;
}

/// Fixed credentials, for tests and the local stack.
#[derive(Debug, Clone)]
pub struct StaticPisteCredentials(pub PisteCredentials);

impl StaticPisteCredentials {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<SecretString>) -> Self {
        StaticPisteCredentials(PisteCredentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        })
    }
}

impl PisteCredentialsSource for StaticPisteCredentials {
    fn load(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<PisteCredentials, ChorusError>> + Send + '_>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let account = TechnicalAccount::new("TECH_1_x@cpro.fr", "p4ssw0rd-secret");
        let text = format!("{account:?}");
        assert!(text.contains("TECH_1_x@cpro.fr"));
        assert!(!text.contains("p4ssw0rd-secret"));
        let source = StaticPisteCredentials::new("app", "client-secret-value");
        assert!(!format!("{source:?}").contains("client-secret-value"));
    }

    #[test]
    fn config_drops_trailing_slash() {
        let config = ChorusConfig::new("http://127.0.0.1:8480/cpro/", "http://t");
        assert_eq!(config.api_url, "http://127.0.0.1:8480/cpro");
    }
}
