//! The emulator's memory: PISTE tokens, accounts, deposited fluxes and invoices with their
//! life cycle, faults and the journal. Everything behind one `std::sync::Mutex`, never held
//! across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::faults::{Fault, FaultAction, JournalEntry};
use super::seed::{Seed, SeedStructure};
use super::ubl::UblInvoice;

pub const FLUX_PENDING: &str = "IN_DEPOT_PORTAIL_EN_ATTENTE_TRAITEMENT_SE_CPP";
pub const FLUX_INTEGRATED: &str = "IN_INTEGRE";
pub const FLUX_REJECTED: &str = "IN_REJETE";
pub const INVOICE_DEPOSITED: &str = "DEPOSEE";

/// How deposited fluxes and invoices move on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Each read of a flux or invoice (`consulterCRDetaille`, `rechercher/fournisseur`,
    /// `consulter/historique`) answers the current state, then moves it one step.
    OnPoll,
    /// One step each period, whoever looks.
    Every(Duration),
    /// Only `POST /_admin/advance` moves things.
    Manual,
}

impl Progress {
    /// `poll`, `manual`, or a period in seconds (`30`, `30s`, `0.5s`).
    pub fn parse(text: &str) -> Result<Progress, String> {
        let text = text.trim();
        match text {
            "poll" => Ok(Progress::OnPoll),
            "manual" => Ok(Progress::Manual),
            _ => text
                .strip_suffix('s')
                .unwrap_or(text)
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| Progress::Every(Duration::from_secs_f64(s)))
                .ok_or_else(|| format!("progress must be poll, manual or seconds, got {text:?}")),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Progress::OnPoll => "poll".into(),
            Progress::Manual => "manual".into(),
            Progress::Every(period) => format!("{}s", period.as_secs_f64()),
        }
    }
}

/// The value shapes of the answers, where AIFE's published examples and the client
/// libraries disagree (issue 19). Field names are the published ones in both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Shapes {
    /// As client libraries' fixtures: identifiers as strings, every `liste…` a list.
    #[default]
    Libraries,
    /// As AIFE's published examples: `identifiantStructure` of `structures/v1/rechercher`
    /// a JSON number, a `listeErreurDP` of one error a single object.
    Published,
}

impl Shapes {
    /// `libraries` or `published`.
    pub fn parse(text: &str) -> Result<Shapes, String> {
        match text.trim() {
            "libraries" => Ok(Shapes::Libraries),
            "published" => Ok(Shapes::Published),
            other => Err(format!(
                "shapes must be libraries or published, got {other:?}"
            )),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Shapes::Libraries => "libraries",
            Shapes::Published => "published",
        }
    }
}

/// Settings that the admin API can change at run time.
#[derive(Debug, Clone)]
pub struct Settings {
    pub token_lifetime: Duration,
    pub progress: Progress,
    pub shapes: Shapes,
    /// The `syntaxeFlux` values `deposer/flux` takes and `recuperer/formatflux` lists;
    /// starts as the seed's `acceptedSyntaxes` (a test narrows it to see a refusal).
    pub accepted_syntaxes: Vec<String>,
}

/// A status to go through, with its Chorus Pro comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptStep {
    pub statut: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commentaire: Option<String>,
    /// When Chorus Pro says the status was reached (`histoStatutDatePassage`); now when
    /// absent. Lets a test put a payment weeks after the receipt without waiting.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub date_passage: Option<OffsetDateTime>,
}

impl ScriptStep {
    pub fn new(statut: &str, commentaire: Option<&str>) -> ScriptStep {
        ScriptStep {
            statut: statut.to_owned(),
            commentaire: commentaire.map(str::to_owned),
            date_passage: None,
        }
    }

    /// The same step, dated.
    pub fn on(mut self, at: OffsetDateTime) -> ScriptStep {
        self.date_passage = Some(at);
        self
    }
}

/// The scripted path of an invoice number (any supplier): the statuses after `DEPOSEE`,
/// replacing the seed's `invoicePath`; or a forced flux rejection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceScript {
    pub numero_facture: String,
    #[serde(default)]
    pub steps: Vec<ScriptStep>,
    /// When set, the flux carrying this invoice ends `IN_REJETE` with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flux_rejection: Option<String>,
}

/// `PATCH /_admin/accounts/{login}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdate {
    #[serde(default)]
    pub password: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub password_expires_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountUpdateError {
    UnknownLogin,
    InvalidDate(String),
}

#[derive(Debug, Clone)]
pub(super) struct Account {
    pub password: String,
    pub expires_on: Date,
    pub structures: Vec<i64>,
}

/// One `listeErreurDP` entry.
#[derive(Debug, Clone)]
pub(super) struct InvoiceError {
    pub buyer: String,
    pub supplier: String,
    pub message: String,
    pub number: String,
}

#[derive(Debug, Clone)]
pub(super) struct Flux {
    pub numero: String,
    pub login: String,
    /// The depositing account's structures at deposit time (who may read the flux).
    pub account_structures: Vec<i64>,
    pub syntaxe: String,
    pub nom_fichier: String,
    pub deposited_at: OffsetDateTime,
    pub state: String,
    pub state_at: OffsetDateTime,
    pub last_step: Instant,
    pub invoice: UblInvoice,
    pub errors: Vec<InvoiceError>,
    pub invoice_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub(super) struct HistoryEntry {
    pub id: i64,
    pub statut: String,
    pub commentaire: Option<String>,
    pub at: OffsetDateTime,
    /// When the emulator recorded the status (a scripted step may date `at` otherwise):
    /// the `dateHeureEtatCourant` the supplier search shows and filters on
    /// (docs/chorus-pro.md#change-driven-follow-up).
    pub recorded_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(super) struct Invoice {
    pub id: i64,
    pub numero: String,
    pub numero_flux: String,
    pub supplier_id: i64,
    pub buyer_id: i64,
    pub data: UblInvoice,
    pub deposited_at: OffsetDateTime,
    pub history: Vec<HistoryEntry>,
    pub pending: VecDeque<ScriptStep>,
    pub last_step: Instant,
    /// A document of the works circuit (`works.rs`); `None` for an ordinary invoice.
    pub works: Option<super::works::WorksDoc>,
}

impl Invoice {
    pub fn current(&self) -> Option<&HistoryEntry> {
        self.history.last()
    }
}

/// What `GET /_admin/deposits` shows of a flux.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositView {
    pub numero_flux_depot: String,
    pub login: String,
    pub nom_fichier: String,
    pub syntaxe_flux: String,
    pub numero_facture: String,
    pub etat: String,
    pub erreurs: Vec<String>,
    #[serde(rename = "identifiantFactureCPP")]
    pub identifiant_facture_cpp: Option<i64>,
    /// Not a Chorus Pro field: digests of the files the deposited UBL embeds.
    pub embedded_files: Vec<super::ubl::EmbeddedFileDigest>,
}

/// What `GET /_admin/invoices` shows of an invoice.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceView {
    #[serde(rename = "identifiantFactureCPP")]
    pub identifiant_facture_cpp: i64,
    pub numero_facture: String,
    pub numero_flux_depot: String,
    pub statut: String,
    pub historique: Vec<ScriptStep>,
    pub a_venir: Vec<ScriptStep>,
}

pub struct State {
    seed: Seed,
    /// The settings the emulator started with, restored by a reset.
    initial: Settings,
    pub(super) settings: Settings,
    tokens: HashMap<String, Instant>,
    pub(super) accounts: HashMap<String, Account>,
    pub(super) fluxes: Vec<Flux>,
    pub(super) invoices: Vec<Invoice>,
    scripts: HashMap<String, InvoiceScript>,
    faults: Vec<Fault>,
    journal: Vec<JournalEntry>,
    next_flux: u64,
    next_invoice: i64,
    next_history: i64,
    next_journal: u64,
    /// Files added with `transverses/v1/ajouter/fichier`, for `factures/v1/completer`.
    pub(super) files: Vec<UploadedFile>,
    pub(super) next_file: i64,
}

/// A file added to a technical account.
#[derive(Debug, Clone)]
pub(super) struct UploadedFile {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub size: usize,
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]");

pub fn parse_date(text: &str) -> Result<Date, String> {
    Date::parse(text.trim(), DATE).map_err(|_| format!("expected YYYY-MM-DD, got {text:?}"))
}

/// Chorus Pro's date-time form, e.g. `2018-02-16T15:10:25.536+01:00` (here in UTC).
pub fn chorus_datetime(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+00:00"
    ))
    .unwrap_or_default()
}

pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// A random starting number, so two emulators (or two runs) do not hand out the same
/// flux numbers and invoice ids to a shared store.
fn random_start() -> u64 {
    let random = u64::try_from(uuid::Uuid::new_v4().as_u128() % 800_000_000).unwrap_or(0);
    100_000_000 + random
}

impl State {
    pub fn new(
        seed: Seed,
        progress: Progress,
        token_lifetime: Option<Duration>,
        shapes: Shapes,
    ) -> State {
        let settings = Settings {
            token_lifetime: token_lifetime
                .unwrap_or(Duration::from_secs(seed.token_lifetime_seconds)),
            progress,
            shapes,
            accepted_syntaxes: seed.accepted_syntaxes.clone(),
        };
        let mut state = State {
            seed,
            initial: settings.clone(),
            settings,
            tokens: HashMap::new(),
            accounts: HashMap::new(),
            fluxes: Vec::new(),
            invoices: Vec::new(),
            scripts: HashMap::new(),
            faults: Vec::new(),
            journal: Vec::new(),
            next_flux: random_start(),
            next_invoice: i64::try_from(random_start()).unwrap_or(100_000_000),
            next_history: 1,
            next_journal: 1,
            files: Vec::new(),
            next_file: 1,
        };
        state.load_accounts();
        state
    }

    fn load_accounts(&mut self) {
        self.accounts = self
            .seed
            .technical_accounts
            .iter()
            .map(|a| {
                let structures = a
                    .structures
                    .iter()
                    .filter_map(|siret| self.structure_by_siret(siret).map(|s| s.id_structure_cpp))
                    .collect();
                let account = Account {
                    password: a.password.clone(),
                    // A seed date that does not parse counts as already expired.
                    expires_on: parse_date(&a.password_expires_on).unwrap_or(Date::MIN),
                    structures,
                };
                (a.login.clone(), account)
            })
            .collect();
    }

    /// Back to the seed: tokens, deposits, faults, scripts, journal and settings.
    pub fn reset(&mut self) {
        let initial = self.initial.clone();
        *self = State::new(
            self.seed.clone(),
            initial.progress,
            Some(initial.token_lifetime),
            initial.shapes,
        );
    }

    pub fn seed(&self) -> &Seed {
        &self.seed
    }

    // --- PISTE -----------------------------------------------------------------------

    pub fn application_allowed(&self, client_id: &str, client_secret: &str) -> bool {
        self.seed
            .piste_applications
            .iter()
            .any(|a| a.client_id == client_id && a.client_secret == client_secret)
    }

    pub fn issue_token(&mut self) -> (String, Duration) {
        let token = format!("sbx-{}", uuid::Uuid::new_v4().simple());
        let lifetime = self.settings.token_lifetime;
        self.tokens.insert(token.clone(), Instant::now() + lifetime);
        (token, lifetime)
    }

    pub fn token_valid(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires)
    }

    /// The login of a valid `login:password` pair whose password has not expired.
    pub fn authenticate(&self, login: &str, password: &str) -> Option<String> {
        let account = self.accounts.get(login)?;
        (account.password == password && today() <= account.expires_on).then(|| login.to_owned())
    }

    pub fn update_account(
        &mut self,
        login: &str,
        update: &AccountUpdate,
    ) -> Result<(), AccountUpdateError> {
        let expires_on = update
            .password_expires_on
            .as_deref()
            .map(parse_date)
            .transpose()
            .map_err(AccountUpdateError::InvalidDate)?;
        let account = self
            .accounts
            .get_mut(login)
            .ok_or(AccountUpdateError::UnknownLogin)?;
        if let Some(password) = &update.password {
            account.password = password.clone();
        }
        if let Some(expires_on) = expires_on {
            account.expires_on = expires_on;
        }
        Ok(())
    }

    // --- structures --------------------------------------------------------------------

    pub fn structure_by_siret(&self, siret: &str) -> Option<&SeedStructure> {
        self.seed.structures.iter().find(|s| s.siret == siret)
    }

    pub fn structure_by_id(&self, id: i64) -> Option<&SeedStructure> {
        self.seed
            .structures
            .iter()
            .find(|s| s.id_structure_cpp == id)
    }

    pub(super) fn account(&self, login: &str) -> Option<&Account> {
        self.accounts.get(login)
    }

    /// Public structures and MOE are visible to every account; a supplier's only to its
    /// accounts.
    pub fn visible_structure(&self, login: &str, id: i64) -> Option<&SeedStructure> {
        let structure = self.structure_by_id(id)?;
        let attached = self
            .account(login)
            .is_some_and(|a| a.structures.contains(&id));
        (structure.public || structure.moe || attached).then_some(structure)
    }

    pub fn accepts_syntax(&self, syntaxe: &str) -> bool {
        self.settings.accepted_syntaxes.iter().any(|s| s == syntaxe)
    }

    // --- deposits and life cycle -----------------------------------------------------------

    pub(super) fn record_deposit(
        &mut self,
        login: &str,
        syntaxe: &str,
        nom_fichier: &str,
        invoice: UblInvoice,
    ) -> String {
        let numero = format!("CPP0011110{:015}", self.next_flux);
        self.next_flux += 1;
        let now = OffsetDateTime::now_utc();
        let account_structures = self
            .account(login)
            .map(|a| a.structures.clone())
            .unwrap_or_default();
        self.fluxes.push(Flux {
            numero: numero.clone(),
            login: login.to_owned(),
            account_structures,
            syntaxe: syntaxe.to_owned(),
            nom_fichier: nom_fichier.to_owned(),
            deposited_at: now,
            state: FLUX_PENDING.to_owned(),
            state_at: now,
            last_step: Instant::now(),
            invoice,
            errors: Vec::new(),
            invoice_id: None,
        });
        numero
    }

    /// Moves a pending flux to `IN_INTEGRE` or `IN_REJETE`, as Chorus Pro's integration
    /// does; an integrated flux creates its invoice in `DEPOSEE`.
    pub(super) fn process_flux(&mut self, index: usize) -> bool {
        let Some(flux) = self.fluxes.get(index) else {
            return false;
        };
        if flux.state != FLUX_PENDING {
            return false;
        }
        let outcome = self.integration_outcome(flux);
        let numero_flux = flux.numero.clone();
        let data = flux.invoice.clone();
        let now = OffsetDateTime::now_utc();
        let (state, errors, invoice_id) = match outcome {
            Err(errors) => (FLUX_REJECTED, errors, None),
            Ok((supplier_id, buyer_id)) => {
                let id = self.next_invoice;
                self.next_invoice += 1;
                let pending: VecDeque<ScriptStep> = match self.scripts.get(&data.number) {
                    Some(script) => script.steps.iter().cloned().collect(),
                    None => self
                        .seed
                        .invoice_path
                        .iter()
                        .map(|s| ScriptStep::new(s, None))
                        .collect(),
                };
                let first = self.history_entry(INVOICE_DEPOSITED, None);
                self.invoices.push(Invoice {
                    id,
                    numero: data.number.clone(),
                    numero_flux,
                    supplier_id,
                    buyer_id,
                    data,
                    deposited_at: now,
                    history: vec![first],
                    pending,
                    last_step: Instant::now(),
                    works: None,
                });
                (FLUX_INTEGRATED, Vec::new(), Some(id))
            }
        };
        if let Some(flux) = self.fluxes.get_mut(index) {
            flux.state = state.to_owned();
            flux.state_at = now;
            flux.errors = errors;
            flux.invoice_id = invoice_id;
        }
        true
    }

    /// The checks Chorus Pro runs while integrating; `Ok((supplier, buyer))` or the
    /// `listeErreurDP` entries.
    fn integration_outcome(&self, flux: &Flux) -> Result<(i64, i64), Vec<InvoiceError>> {
        let invoice = &flux.invoice;
        let seller_siret = invoice.seller_sirets.first().cloned().unwrap_or_default();
        let buyer_siret = invoice.buyer_sirets.first().cloned().unwrap_or_default();
        let mut messages: Vec<String> = Vec::new();
        if let Some(reason) = self
            .scripts
            .get(&invoice.number)
            .and_then(|s| s.flux_rejection.clone())
        {
            messages.push(reason);
        }

        let supplier = invoice.seller_sirets.iter().find_map(|siret| {
            self.structure_by_siret(siret)
                .filter(|s| flux.account_structures.contains(&s.id_structure_cpp))
        });
        if supplier.is_none() {
            let known = invoice
                .seller_sirets
                .iter()
                .any(|s| self.structure_by_siret(s).is_some());
            messages.push(if known {
                "L'identifiant fournisseur de la demande de paiement (balise : AccountingSupplierParty.Party.PartyIdentification.ID.value) n'est pas une structure du compte technique qui a depose le flux. ".into()
            } else {
                "L'identifiant fournisseur de la demande de paiement (balise : AccountingSupplierParty.Party.PartyIdentification.ID.value) n'est pas reference dans notre systeme. ".into()
            });
        }

        let number = &invoice.number;
        if number.chars().count() > 20 {
            messages.push("Le champ identifiant de la facture (FichierXml.Invoice.ID.value) ne doit pas depasser 20 caracteres".into());
        }
        if !number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '+' | '_' | '/' | '-'))
        {
            messages.push("Le champ identifiant de la facture (FichierXml.Invoice.ID.value) contient des caracteres non autorises".into());
        }
        if let Some(supplier) = supplier
            && self
                .invoices
                .iter()
                .any(|i| i.supplier_id == supplier.id_structure_cpp && &i.numero == number)
        {
            messages.push(format!(
                "Le numero de facture {number} a deja ete utilise par ce fournisseur"
            ));
        }

        let buyer = invoice
            .buyer_sirets
            .iter()
            .find_map(|siret| self.structure_by_siret(siret).filter(|s| s.public));
        match buyer {
            None => messages.push("L'identifiant destinataire de la demande de paiement (balise : AccountingCustomerParty.Party.PartyIdentification.ID.value) n'est pas reference dans notre systeme. ".into()),
            Some(buyer) => messages.extend(buyer_requirement_errors(buyer, invoice)),
        }

        match (supplier, buyer) {
            (Some(supplier), Some(buyer)) if messages.is_empty() => {
                Ok((supplier.id_structure_cpp, buyer.id_structure_cpp))
            }
            _ => Err(messages
                .into_iter()
                .map(|message| InvoiceError {
                    buyer: buyer_siret.clone(),
                    supplier: seller_siret.clone(),
                    // Chorus Pro cuts its reasons at about 200 characters (INV).
                    message: message.chars().take(200).collect(),
                    number: number.clone(),
                })
                .collect()),
        }
    }

    /// A new invoice identifier.
    pub(super) fn next_invoice_id(&mut self) -> i64 {
        let id = self.next_invoice;
        self.next_invoice += 1;
        id
    }

    pub(super) fn history_entry(
        &mut self,
        statut: &str,
        commentaire: Option<String>,
    ) -> HistoryEntry {
        let id = self.next_history;
        self.next_history += 1;
        let now = OffsetDateTime::now_utc();
        HistoryEntry {
            id,
            statut: statut.to_owned(),
            commentaire,
            at: now,
            recorded_at: now,
        }
    }

    /// The invoice's next scripted status, if any.
    pub(super) fn advance_invoice(&mut self, index: usize) -> bool {
        let Some(step) = self
            .invoices
            .get_mut(index)
            .and_then(|i| i.pending.pop_front())
        else {
            return false;
        };
        let mut entry = self.history_entry(&step.statut, step.commentaire);
        if let Some(at) = step.date_passage {
            entry.at = at;
        }
        if let Some(invoice) = self.invoices.get_mut(index) {
            invoice.history.push(entry);
            invoice.last_step = Instant::now();
        }
        true
    }

    /// In `Every` mode, catches up with the clock before any answer.
    pub fn tick(&mut self) {
        let Progress::Every(period) = self.settings.progress else {
            return;
        };
        let now = Instant::now();
        for index in 0..self.fluxes.len() {
            let due = self.fluxes[index].state == FLUX_PENDING
                && now.duration_since(self.fluxes[index].last_step) >= period;
            if due {
                let stepped_at = self.fluxes[index].last_step + period;
                self.fluxes[index].last_step = stepped_at;
                self.process_flux(index);
                // The invoice's first step counts from the integration.
                if let Some(invoice) = self.invoices.last_mut()
                    && Some(invoice.id) == self.fluxes[index].invoice_id
                {
                    invoice.last_step = stepped_at;
                }
            }
        }
        for index in 0..self.invoices.len() {
            while !self.invoices[index].pending.is_empty()
                && now.duration_since(self.invoices[index].last_step) >= period
            {
                let stepped_at = self.invoices[index].last_step + period;
                self.advance_invoice(index);
                self.invoices[index].last_step = stepped_at;
            }
        }
    }

    pub fn polled(&self) -> bool {
        self.settings.progress == Progress::OnPoll
    }

    // --- admin ----------------------------------------------------------------------------

    pub fn script(&mut self, script: InvoiceScript) {
        for invoice in self
            .invoices
            .iter_mut()
            .filter(|i| i.numero == script.numero_facture)
        {
            invoice.pending = script.steps.iter().cloned().collect();
        }
        self.scripts.insert(script.numero_facture.clone(), script);
    }

    /// Copies every invoice of the supplier structure `from` to the structure `to`, with
    /// new identifiers (the bench's many companies); the pairs (old id, new id).
    pub fn copy_invoices(&mut self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let copies: Vec<Invoice> = self
            .invoices
            .iter()
            .filter(|i| i.supplier_id == from)
            .cloned()
            .collect();
        let mut pairs = Vec::with_capacity(copies.len());
        for mut invoice in copies {
            let old = invoice.id;
            invoice.id = self.next_invoice;
            self.next_invoice += 1;
            invoice.supplier_id = to;
            pairs.push((old, invoice.id));
            self.invoices.push(invoice);
        }
        pairs
    }

    /// Puts the invoices with these identifiers in `statut` now (numbers repeat between
    /// suppliers; identifiers do not).
    pub fn force_status_of(&mut self, ids: &[i64], statut: &str) -> usize {
        let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
        let indexes: Vec<usize> = (0..self.invoices.len())
            .filter(|&i| wanted.contains(&self.invoices[i].id))
            .collect();
        for &index in &indexes {
            let entry = self.history_entry(statut, None);
            let invoice = &mut self.invoices[index];
            invoice.pending.clear();
            invoice.history.push(entry);
            invoice.last_step = Instant::now();
        }
        indexes.len()
    }

    /// Puts every invoice with this number in `statut` now; what was still to come is
    /// dropped, so the forced status stays.
    pub fn force_status(
        &mut self,
        numero_facture: &str,
        statut: &str,
        commentaire: Option<String>,
    ) -> usize {
        let indexes: Vec<usize> = (0..self.invoices.len())
            .filter(|&i| self.invoices[i].numero == numero_facture)
            .collect();
        for &index in &indexes {
            let entry = self.history_entry(statut, commentaire.clone());
            let invoice = &mut self.invoices[index];
            invoice.pending.clear();
            invoice.history.push(entry);
            invoice.last_step = Instant::now();
        }
        indexes.len()
    }

    /// One step for the matching fluxes and invoices (all when both filters are empty).
    pub fn advance(&mut self, numero_flux: Option<&str>, numero_facture: Option<&str>) -> usize {
        let everything = numero_flux.is_none() && numero_facture.is_none();
        let mut moved = 0;
        let invoices_before = self.invoices.len();
        for index in 0..self.fluxes.len() {
            let flux = &self.fluxes[index];
            let matches = everything
                || numero_flux == Some(flux.numero.as_str())
                || numero_facture == Some(flux.invoice.number.as_str());
            if matches && self.process_flux(index) {
                moved += 1;
            }
        }
        // Invoices created just now stay in DEPOSEE for this step.
        for index in 0..invoices_before {
            let invoice = &self.invoices[index];
            let matches = everything
                || numero_flux == Some(invoice.numero_flux.as_str())
                || numero_facture == Some(invoice.numero.as_str());
            if matches && self.advance_invoice(index) {
                moved += 1;
            }
        }
        moved
    }

    pub fn deposits(&self) -> Vec<DepositView> {
        self.fluxes
            .iter()
            .map(|f| DepositView {
                numero_flux_depot: f.numero.clone(),
                login: f.login.clone(),
                nom_fichier: f.nom_fichier.clone(),
                syntaxe_flux: f.syntaxe.clone(),
                numero_facture: f.invoice.number.clone(),
                etat: f.state.clone(),
                erreurs: f.errors.iter().map(|e| e.message.clone()).collect(),
                identifiant_facture_cpp: f.invoice_id,
                embedded_files: f.invoice.embedded_files.clone(),
            })
            .collect()
    }

    pub fn invoice_views(&self) -> Vec<InvoiceView> {
        self.invoices
            .iter()
            .map(|i| InvoiceView {
                identifiant_facture_cpp: i.id,
                numero_facture: i.numero.clone(),
                numero_flux_depot: i.numero_flux.clone(),
                statut: i.current().map(|h| h.statut.clone()).unwrap_or_default(),
                historique: i
                    .history
                    .iter()
                    .map(|h| ScriptStep {
                        statut: h.statut.clone(),
                        commentaire: h.commentaire.clone(),
                        date_passage: None,
                    })
                    .collect(),
                a_venir: i.pending.iter().cloned().collect(),
            })
            .collect()
    }

    // --- faults and journal -------------------------------------------------------------------

    pub fn add_fault(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.faults.clone()
    }

    /// The first fault matching `path`, counted down (and removed when used up).
    pub fn take_fault(&mut self, path: &str) -> Option<FaultAction> {
        let index = self.faults.iter().position(|f| path.starts_with(&f.path))?;
        let fault = &mut self.faults[index];
        let action = fault.action.clone();
        if let Some(times) = fault.times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.faults.remove(index);
            }
        }
        Some(action)
    }

    pub fn journal_push(
        &mut self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: BTreeMap<String, String>,
        body: &[u8],
    ) -> u64 {
        let seq = self.next_journal;
        self.next_journal += 1;
        let json = (body.len() <= 64 * 1024 && !body.is_empty()).then(|| {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()))
        });
        self.journal.push(JournalEntry {
            seq,
            at: shared::clock::rfc3339(OffsetDateTime::now_utc()),
            received: std::time::Instant::now(),
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.map(str::to_owned),
            headers,
            body_bytes: body.len(),
            body: json,
            status: None,
            fault: None,
        });
        seq
    }

    pub fn journal_update(&mut self, seq: u64, status: Option<u16>, fault: Option<&str>) {
        if let Some(entry) = self.journal.iter_mut().find(|e| e.seq == seq) {
            if status.is_some() {
                entry.status = status;
            }
            if let Some(fault) = fault {
                entry.fault = Some(fault.to_owned());
            }
        }
    }

    pub fn journal(&self, path_prefix: Option<&str>) -> Vec<JournalEntry> {
        self.journal
            .iter()
            .filter(|e| path_prefix.is_none_or(|p| e.path.starts_with(p)))
            .cloned()
            .collect()
    }

    pub fn clear_journal(&mut self) {
        self.journal.clear();
    }
}

/// The buyer's rules on service code and commitment number (docs/chorus-pro.md#buyer-requirements).
pub(super) fn buyer_requirement_errors(buyer: &SeedStructure, invoice: &UblInvoice) -> Vec<String> {
    let mut errors = Vec::new();
    let flags = &buyer.parametres;
    let service_code = invoice.service_code.as_deref();
    let commitment = invoice.commitment_number.as_deref();
    let service =
        service_code.and_then(|code| buyer.services.iter().find(|s| s.code_service == code));
    if let Some(code) = service_code {
        match service {
            None => errors.push(format!(
                "Le code service {code} n'existe pas pour le destinataire {}",
                buyer.siret
            )),
            Some(s) if !s.est_actif => errors.push(format!(
                "Le service {code} du destinataire {} n'est pas actif",
                buyer.siret
            )),
            Some(s) if s.code_service == "FACTURES_PUBLIQUES" => errors.push(
                "Le service FACTURES_PUBLIQUES est reserve aux factures entre entites publiques"
                    .into(),
            ),
            Some(_) => {}
        }
    }
    if flags.gestion_numero_ej_ou_code_service {
        if service_code.is_none() && commitment.is_none() {
            errors.push(format!(
                "Le code service ou le numero d'engagement doit etre renseigne pour le destinataire {}",
                buyer.siret
            ));
        }
    } else {
        if flags.code_service_doit_etre_renseigne && service_code.is_none() {
            errors.push(format!(
                "Le code service doit etre renseigne pour le destinataire {} (balise : BuyerReference)",
                buyer.siret
            ));
        }
        if flags.numero_ej_doit_etre_renseigne && commitment.is_none() {
            errors.push(format!(
                "Le numero d'engagement doit etre renseigne pour le destinataire {} (balise : OrderReference.ID)",
                buyer.siret
            ));
        }
    }
    if let Some(s) = service
        && s.numero_engagement
        && commitment.is_none()
    {
        errors.push(format!(
            "Le service {} exige un numero d'engagement (balise : OrderReference.ID)",
            s.code_service
        ));
    }
    if let Some(number) = commitment
        && !buyer.engagements.is_empty()
        && !buyer
            .engagements
            .iter()
            .any(|e| e.numero_engagement_juridique == number)
    {
        errors.push(format!(
            "Le numero d'engagement {number} n'existe pas pour le destinataire {}",
            buyer.siret
        ));
    }
    errors
}
