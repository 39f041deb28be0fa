//! Chorus Pro sandbox emulator: an HTTP server that answers like PISTE and Chorus Pro, for
//! the local stack (`cargo run -p gateway-tests --bin chorus-sandbox`) and for tests
//! ([`spawn`] on a free port, one emulator per test).
//!
//! Point the gateway at it with `PISTE_TOKEN_URL=http://127.0.0.1:8480/api/oauth/token`
//! and `CHORUS_API_URL=http://127.0.0.1:8480/cpro`. The PISTE application is client id
//! `gateway-local`, client secret `gateway-local-secret`.
//!
//! # Environment (binary)
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `CHORUS_SANDBOX_PORT` | `8480` | port on 127.0.0.1 |
//! | `CHORUS_SANDBOX_SEED` | `tests/fixtures/chorus-sandbox-seed.json` (from the current directory, then the workspace root, then the copy compiled in) | seed file; an explicit path that cannot be read is an error |
//! | `CHORUS_SANDBOX_PROGRESS` | `poll` | `poll`: each read of a flux or invoice answers its state, then moves it one step; `manual`: only `/_admin/advance` moves things; a number of seconds (`30`, `0.5s`): one step per period |
//! | `CHORUS_SANDBOX_TOKEN_LIFETIME` | seed's `tokenLifetimeSeconds` (3600) | PISTE token lifetime in seconds |
//! | `CHORUS_SANDBOX_SHAPES` | `libraries` | `libraries` or `published`: value shapes where AIFE's published examples and client libraries disagree (see `/_admin/settings`) |
//! | `RUST_LOG` | `info` | one log line per request (method, path, fault; never headers or bodies) |
//!
//! # Seed accounts
//!
//! Suppliers (every SIRET Luhn-valid except the last one, on purpose):
//!
//! | SIRET | idStructureCPP | designation | login | password | for |
//! | --- | --- | --- | --- | --- | --- |
//! | `81234567600017` | 26100001 | BATIMENTS DU RHONE SAS | `TECH_1_batiments-rhone@cpro.fr` | `Rhone-Tech-2026!` | valid account, one structure |
//! | `79876543400013`, `79876543400021` | 26100002, 26100003 | CHARPENTES DES ALPES - GRENOBLE / - CHAMBERY | `TECH_1_charpentes-alpes@cpro.fr` | `Alpes-Tech-2026!` | one account, two structures |
//! | `52345678800018` | 26100004 | MACONNERIE DU JURA | `TECH_1_maconnerie-jura@cpro.fr` | `Jura-Tech-2024!` | password expired 2025-06-30: LDAP 401 |
//! | `44455566800011` | 26100005 | TRAVAUX PUBLICS DE L'EST | `TECH_1_tp-est@cpro.fr` | `Est-Tech-2026!` | free for password renewal/expiry tests |
//! | `12345678200099` | 26100006 | FOURNISSEUR QUALIF | `DEV_FOURNISSEUR_QUALIF@cpp2017.fr` | `Qualif-Tech-2026!` | SIRET fails Luhn, like qualification data |
//!
//! Public buyers:
//!
//! | SIRET | idStructureCPP | designation | requires | services (idService) | EJs it issued to `81234567600017` |
//! | --- | --- | --- | --- | --- | --- |
//! | `21690123100011` | 26200001 | COMMUNE DE VILLEURBANNE TEST | nothing | — | — |
//! | `21380456000018` | 26200002 | DEPARTEMENT DE L'ISERE TEST | service code | `DIRINFRA` (36200021), `SERV_TRAVAUX_EJ` (36200022, requires an EJ), `ANCIEN_SERVICE` (36200023, inactive), `FACTURES_PUBLIQUES` (36200024) | — |
//! | `23750001200016` | 26200003 | REGION TEST EJ OBLIGATOIRE | commitment number | — | `1300012345`, `1300012399` |
//! | `20001234200016` | 26200004 | SYNDICAT MIXTE TEST | both | `TRAVAUX` (36200041) | `2200000001` |
//! | `26690789800016` | 26200005 | CENTRE HOSPITALIER TEST | service code or commitment number | `ACHATS` (36200051), `ARCHIVES` (36200052, inactive) | — |
//! | `11000201100044` | 26200006 | ETAT - DESTINATAIRE QUALIF | commitment number | `SFACETAT` (36200061, requires an EJ) | `1000000001` |
//!
//! *Maîtres d'œuvre* (private structures, `"moe": true`: details and services shown to every account):
//!
//! | SIRET | idStructureCPP | designation | services (idService) |
//! | --- | --- | --- | --- |
//! | `83214567600017` | 26300001 | ATELIER D'ARCHITECTURE MOE TEST | `MOE_TRAVAUX` (36300011), `ANCIEN_MOE` (36300012, inactive), `MOE_VRD` (36300013) |
//! | `85432198100011` | 26300002 | BET STRUCTURE MOE TEST | `ETUDES` (36300021, inactive) |
//!
//! Any seeded structure may serve as a project manager (tests use the suppliers
//! `81234567600017` and `79876543400013`, which have no services).
//!
//! Commitments (EJ) are issued by a buyer **to** a supplier: `engagementsJuridiques/v1/rechercher`
//! matches `structureReceptriceEngagementJuridique` against the supplier's own
//! `idStructureCPP`, as OCA sends it (docs/chorus-pro.md#commitment-ej-search); every seeded
//! EJ is issued to BATIMENTS DU RHONE SAS (26100001). A deposit's commitment number must be
//! one its buyer issued, when the buyer issued any.
//!
//! `structures/v1/rechercher/services` pages: at most the seed's `servicesPerPage` (2) per
//! page whatever is asked, with `parametresRetour.pages` (the Isère buyer and the first
//! MOE have two pages), so that clients must follow the pages.
//!
//! # What it answers
//!
//! - `POST /api/oauth/token` (form `grant_type=client_credentials`, `client_id`,
//!   `client_secret`, `scope`): `{"access_token","token_type":"Bearer","expires_in","scope":"openid"}`;
//!   `400 {"error":"invalid_client"}`, the same bytes for an unknown id and a wrong secret.
//! - `POST /cpro/<path>` for the eighteen paths of [`cpro::Route`] (the gateway's seventeen, and
//!   `transverses/v1/recuperer/formatflux`, which lists the accepted syntaxes). In order: a missing, unknown
//!   or expired bearer token gets PISTE's `401 {"error":"invalid_token",…}` with
//!   `WWW-Authenticate` (no `codeRetour`); an unknown route gets `403 {}`; a missing, wrong
//!   or expired `cpro-account` gets `401 {"codeRetour":401,"libelle":"Impossible
//!   d'authentifier l'utilisateur dans le LDAP."}`; then the call's answer with `codeRetour`
//!   and `libelle` (codes in [`cpro`]).
//! - Deposits follow Chorus Pro's life cycle: `deposer/flux` checks the envelope (fields,
//!   `syntaxeFlux` among the accepted ones (the seed's `acceptedSyntaxes`, or `/_admin/settings`), base64, 10 MB decoded, a readable
//!   UBL `Invoice`/`CreditNote` with a `cbc:ID` and a seller SIRET) and answers
//!   `numeroFluxDepot`; the flux is then `IN_DEPOT_PORTAIL_EN_ATTENTE_TRAITEMENT_SE_CPP`, and
//!   its next step makes it `IN_REJETE` (with `listeErreurDP`: seller not among the
//!   account's structures, invoice number over 20 characters or outside
//!   `[A-Za-z0-9 +_/-]`, number already used by the supplier, buyer unknown, service code
//!   missing/unknown/inactive/`FACTURES_PUBLIQUES`, commitment missing or not published) or
//!   `IN_INTEGRE`. An integrated invoice starts `DEPOSEE` and then follows the seed's
//!   `invoicePath` (`MISE_A_DISPOSITION`, `SERVICE_FAIT`, `MANDATEE`, `MISE_EN_PAIEMENT`)
//!   or its script. Content rules answer through `IN_REJETE` rather than at deposit because
//!   that is where Chorus Pro reports them (the official `consulterCRDetaille` example and
//!   INV's live rejections).
//!
//! # Admin API
//!
//! | request | effect |
//! | --- | --- |
//! | `GET /_admin/health` | `ok` |
//! | `POST /_admin/reset` | back to the seed and the starting settings (tokens, deposits, scripts, faults, journal) |
//! | `GET /_admin/journal?path=/cpro/factures` | `{"entries":[…]}`: every non-admin request (seq, at, method, path, query, headers including `authorization` and `cpro-account`, bodyBytes, body (JSON, or text for the token form) when ≤ 64 KiB, status, fault); `path` filters by prefix |
//! | `DELETE /_admin/journal` | empties the journal |
//! | `POST /_admin/faults` | adds a fault, e.g. `{"path":"/cpro/factures/v1/deposer/flux","kind":"answer_lost","times":1}`; without `times` it stays; kinds: `delay` (`ms`), `timeout` (`ms`, default 120000: hang, then close unprocessed), `status` (`status`: answer it unprocessed), `respond` (`status`, `body`: answer that JSON unprocessed), `too_many_requests` (`retry_after` seconds), `answer_lost` (`mode` `drop`/`hang`: process fully, then lose the answer), `answer_unreadable` (process fully, then answer `200` with an HTML page instead of the JSON: an unreadable answer to a call that landed), `reject_password` (LDAP 401), `piste_unauthorized` (PISTE 401), `piste_login_refused` (PISTE 401 whose `WWW-Authenticate` says `login or password incorrects`), `piste_forbidden` (`403 {}`), `invalid_client` (token endpoint 400) |
//! | `GET /_admin/faults`, `DELETE /_admin/faults` | lists / clears them |
//! | `PATCH /_admin/accounts/{login}` | `{"password":"…","passwordExpiresOn":"2027-12-31"}`: renew or expire a password |
//! | `GET /_admin/settings`, `PUT /_admin/settings` | `{"tokenLifetimeSeconds":2,"progress":"manual","shapes":"published","acceptedSyntaxes":["IN_DP_E2_UBL_INVOICE_MIN"]}`; `acceptedSyntaxes`: what `deposer/flux` takes and `recuperer/formatflux` lists (a syntax left out is refused with `20093`); `shapes`: answers use the field names of AIFE's published examples always, and their value shapes with `published` (`identifiantStructure` of `structures/v1/rechercher` a number, a `listeErreurDP` of one error a single object) or the client libraries' with `libraries` (strings, lists); a reset restores the starting value |
//! | `GET /_admin/deposits` | every flux: number, login, file, syntax, invoice number, state, errors, invoice id |
//! | `GET /_admin/invoices` | every invoice: id, number, flux, status, history, statuses to come |
//! | `POST /_admin/invoices/script` | `{"numeroFacture":"F-1","steps":[{"statut":"MISE_A_DISPOSITION"},{"statut":"A_RECYCLER","commentaire":"Code service erroné"}]}` replaces the path after `DEPOSEE` (now and at integration); `{"numeroFacture":"F-1","fluxRejection":"motif"}` makes its flux end `IN_REJETE` |
//! | `POST /_admin/invoices/status` | `{"numeroFacture":"F-1","statut":"SUSPENDUE","commentaire":"Pièce manquante"}`: that status now, nothing more to come (`A_RECYCLER`, `SUSPENDUE`, `A_COMPLETER` make the invoice recyclable or completable: see `returned.rs`) |
//! | `POST /_admin/works` | `{"numeroFacture":"SIT-1","action":"moe_associate","montant":"15200.00"}`: plays the MOE or the MOA on a works statement (`moe_review`, `moe_refuse`, `moe_ask_completion`, `moe_wrong_recipient`, `moe_no_validation`, `moe_associate`, `moa_validate`, `pay`; see `works.rs`) |
//! | `POST /_admin/advance` | `{"numeroFluxDepot":"…"}` or `{"numeroFacture":"…"}` or `{}` (everything): one step |
//!
//! In-process tests reach the same operations through [`SandboxHandle::sandbox`].

pub mod cpro;
mod faults;
mod returned;
mod seed;
mod server;
mod state;
pub mod ubl;
mod works;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use faults::{Fault, FaultAction, JournalEntry, LostMode};
pub use seed::{DEFAULT_SEED_PATH, EMBEDDED_SEED, Seed};
pub use state::{
    AccountUpdate, AccountUpdateError, DepositView, InvoiceScript, InvoiceView, Progress,
    ScriptStep, Shapes,
};
pub use works::WorksAction;

use state::State;

/// The default port of the local stack.
pub const DEFAULT_PORT: u16 = 8480;

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// 0 picks a free port.
    pub port: u16,
    pub seed: Seed,
    pub progress: Progress,
    /// Overrides the seed's token lifetime.
    pub token_lifetime: Option<Duration>,
    /// Value shapes of the answers (published examples or client libraries).
    pub shapes: Shapes,
}

impl Default for SandboxConfig {
    /// A free port, the compiled-in seed, one step per poll: what tests want.
    fn default() -> Self {
        SandboxConfig {
            port: 0,
            seed: Seed::embedded(),
            progress: Progress::OnPoll,
            token_lifetime: None,
            shapes: Shapes::Libraries,
        }
    }
}

impl SandboxConfig {
    /// The binary's configuration (see the module documentation for the variables).
    pub fn from_env() -> Result<SandboxConfig, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let port = match var("CHORUS_SANDBOX_PORT") {
            Some(text) => text
                .trim()
                .parse()
                .map_err(|_| format!("CHORUS_SANDBOX_PORT must be a port number, got {text:?}"))?,
            None => DEFAULT_PORT,
        };
        let seed = Seed::from_env_or_default(var("CHORUS_SANDBOX_SEED").as_deref())?;
        let progress = match var("CHORUS_SANDBOX_PROGRESS") {
            Some(text) => Progress::parse(&text)?,
            None => Progress::OnPoll,
        };
        let token_lifetime = match var("CHORUS_SANDBOX_TOKEN_LIFETIME") {
            Some(text) => Some(Duration::from_secs(text.trim().parse().map_err(|_| {
                format!("CHORUS_SANDBOX_TOKEN_LIFETIME must be seconds, got {text:?}")
            })?)),
            None => None,
        };
        let shapes = match var("CHORUS_SANDBOX_SHAPES") {
            Some(text) => Shapes::parse(&text)?,
            None => Shapes::Libraries,
        };
        Ok(SandboxConfig {
            port,
            seed,
            progress,
            token_lifetime,
            shapes,
        })
    }
}

/// The emulator's state, shared by the server and the test that started it; its methods
/// are the admin API.
#[derive(Clone)]
pub struct Sandbox {
    state: Arc<Mutex<State>>,
}

impl Sandbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data here: keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn reset(&self) {
        self.lock().reset();
    }

    /// Requests received, oldest first, whose path starts with `path_prefix`.
    pub fn journal(&self, path_prefix: Option<&str>) -> Vec<JournalEntry> {
        self.lock().journal(path_prefix)
    }

    pub fn clear_journal(&self) {
        self.lock().clear_journal();
    }

    pub fn add_fault(&self, fault: Fault) {
        self.lock().add_fault(fault);
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.lock().faults()
    }

    pub fn clear_faults(&self) {
        self.lock().clear_faults();
    }

    pub fn update_account(
        &self,
        login: &str,
        update: &AccountUpdate,
    ) -> Result<(), AccountUpdateError> {
        self.lock().update_account(login, update)
    }

    /// Applies to tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().settings.token_lifetime = lifetime;
    }

    pub fn set_progress(&self, progress: Progress) {
        self.lock().settings.progress = progress;
    }

    pub fn set_shapes(&self, shapes: Shapes) {
        self.lock().settings.shapes = shapes;
    }

    /// The `syntaxeFlux` values accepted from now on (until a reset).
    pub fn set_accepted_syntaxes(&self, syntaxes: Vec<String>) {
        self.lock().settings.accepted_syntaxes = syntaxes;
    }

    pub fn shapes(&self) -> Shapes {
        self.lock().settings.shapes
    }

    pub fn script_invoice(&self, script: InvoiceScript) {
        self.lock().script(script);
    }

    /// Plays the MOE or the MOA on a works statement (`works.rs`).
    pub fn works_action(&self, action: WorksAction) -> Result<serde_json::Value, String> {
        self.lock().works_action(action)
    }

    /// Number of invoices changed.
    pub fn force_invoice_status(
        &self,
        numero_facture: &str,
        statut: &str,
        commentaire: Option<&str>,
    ) -> usize {
        self.lock()
            .force_status(numero_facture, statut, commentaire.map(str::to_owned))
    }

    /// Copies a supplier structure's invoices to another (bench seeding); (old, new) ids.
    pub fn copy_invoices(&self, from_structure: i64, to_structure: i64) -> Vec<(i64, i64)> {
        self.lock().copy_invoices(from_structure, to_structure)
    }

    /// Puts the invoices with these Chorus Pro identifiers in `statut`; number changed.
    pub fn force_status_of(&self, ids: &[i64], statut: &str) -> usize {
        self.lock().force_status_of(ids, statut)
    }

    /// One step for what matches (everything when both are `None`); number moved.
    pub fn advance(&self, numero_flux_depot: Option<&str>, numero_facture: Option<&str>) -> usize {
        self.lock().advance(numero_flux_depot, numero_facture)
    }

    pub fn deposits(&self) -> Vec<DepositView> {
        self.lock().deposits()
    }

    pub fn invoices(&self) -> Vec<InvoiceView> {
        self.lock().invoice_views()
    }

    /// Files added with `transverses/v1/ajouter/fichier`: login, name, size.
    pub fn uploaded_files(&self) -> Vec<(String, String, usize)> {
        self.lock().uploaded_files()
    }

    fn settings_json(&self) -> serde_json::Value {
        let state = self.lock();
        serde_json::json!({
            "tokenLifetimeSeconds": state.settings.token_lifetime.as_secs(),
            "progress": state.settings.progress.describe(),
            "shapes": state.settings.shapes.describe(),
            "acceptedSyntaxes": state.settings.accepted_syntaxes,
        })
    }
}

/// A running emulator. Dropping it stops the server.
pub struct SandboxHandle {
    addr: SocketAddr,
    base_url: String,
    sandbox: Sandbox,
    task: tokio::task::JoinHandle<()>,
}

impl SandboxHandle {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The `CHORUS_API_URL` to use: `http://127.0.0.1:<port>/cpro`.
    pub fn api_url(&self) -> String {
        format!("{}/cpro", self.base_url)
    }

    /// The `PISTE_TOKEN_URL` to use: `http://127.0.0.1:<port>/api/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/api/oauth/token", self.base_url)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin operations, without HTTP.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Stops accepting connections (connections already open end with the runtime).
    pub async fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an emulator on 127.0.0.1 (`config.port`, 0 for a free one).
///
/// # Panics
/// When the port cannot be bound; use [`try_spawn`] to handle that.
pub async fn spawn(config: SandboxConfig) -> SandboxHandle {
    let port = config.port;
    match try_spawn(config).await {
        Ok(handle) => handle,
        Err(error) => panic!("chorus-sandbox cannot listen on 127.0.0.1:{port}: {error}"),
    }
}

pub async fn try_spawn(config: SandboxConfig) -> std::io::Result<SandboxHandle> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
    let addr = listener.local_addr()?;
    let sandbox = Sandbox {
        state: Arc::new(Mutex::new(State::new(
            config.seed,
            config.progress,
            config.token_lifetime,
            config.shapes,
        ))),
    };
    let app = server::router(sandbox.clone());
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "chorus-sandbox stopped");
        }
    });
    Ok(SandboxHandle {
        addr,
        base_url: format!("http://{addr}"),
        sandbox,
        task,
    })
}
