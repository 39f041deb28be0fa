//! Depositing a situation's invoice in Chorus Pro exactly once, and finding out what became
//! of a deposit whose answer was lost. Used by the transmission function (first attempt,
//! in the caller's request) and by the follow-up function (retries, reconciliation, held
//! transmissions whose credentials were renewed).
//!
//! Exactly once rests on three rules:
//! - the state changes only by conditional writes on the state and revision read, so two
//!   attempts can never both move a transmission to `depositing`;
//! - a deposit is sent only from `depositing`, under a lease; a deposit whose outcome is
//!   not known (timeout after sending, connection cut, a Lambda killed mid-call) becomes
//!   `outcome_unknown`, and is never sent again before Chorus Pro was searched for it;
//! - only after the grace period, with the invoice number still unknown to Chorus Pro, is
//!   it deemed never received and sent again (same file, same number).

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::chorus::{
    ChorusClient, ChorusError, FileUpload, FluxDeposit, FluxDepositResponse,
    InvoiceSubmissionResponse, MainAttachment, SupplierInvoice, SupplierInvoiceSearch,
    TechnicalAccount, WorksInvoiceSearch, parse_chorus_datetime, says_number_already_used,
};
use crate::config::Config;
use crate::domain::situation::StatusEntry;
use crate::domain::transmission::TransmissionState;
use crate::domain::transmission::{follow_up_delay, retry_delay};
use crate::domain::{CompanyAccount, CredentialsStatus};
use crate::mail::Mailer;
use crate::mail::render::RejectionSource;
use crate::secrets::SecretStore;
use crate::store::transmission::{Change, Tracked};
use crate::store::{AuditEntry, Store, StoreError};
use crate::works::{Route, Submission, WorksPayload};

/// What the company saw in the Chorus Pro portal for a deposit whose outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalCheck {
    /// The invoice is there, under this number.
    Found { invoice_number: String },
    /// It is not there: one new deposit is allowed.
    Absent,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Deposit(#[from] DepositError),
    #[error("Chorus Pro has no invoice of that number for this supplier")]
    InvoiceNotInChorus,
    #[error(transparent)]
    Chorus(ChorusError),
}

impl From<StoreError> for ResolveError {
    fn from(e: StoreError) -> Self {
        ResolveError::Deposit(DepositError::Store(e))
    }
}

const PASSWORD_REFUSED: &str = "Mot de passe du compte technique refusé par Chorus Pro";

/// One deposit to send: the transmission, the move that leases it (with the claim's
/// fields on a first attempt), the checked file, and the account it goes with.
struct Outing<'a> {
    tracked: &'a Tracked,
    from: TransmissionState,
    change: Change,
    file: &'a [u8],
    technical: TechnicalAccount,
    account: &'a CompanyAccount,
}

/// Whether an invoice Chorus Pro found under the deposited number can be this
/// transmission's: not deposited before the transmission was claimed. Chorus Pro may give
/// the deposit as a bare date (taken as Paris midnight), hence a margin of a day and the
/// time zones; in doubt (no date), it can be. Attaching to another invoice would follow
/// someone else's; refusing ours would have the company invoice twice — so the margin errs
/// towards "ours".
pub fn could_be_ours(invoice: &SupplierInvoice, claimed_at: Option<OffsetDateTime>) -> bool {
    let deposited = invoice
        .date_depot
        .as_deref()
        .and_then(parse_chorus_datetime);
    match (deposited, claimed_at) {
        (Some(deposited), Some(claimed)) => deposited >= claimed - Duration::hours(26),
        _ => true,
    }
}

/// The invoice number a deposit carries (frozen when the transmission was claimed).
pub fn deposited_number(tracked: &Tracked) -> String {
    tracked.record.deposited_number.clone().unwrap_or_else(|| {
        tracked
            .situation
            .identifiers
            .invoice_number
            .as_str()
            .to_owned()
    })
}

#[derive(Debug, thiserror::Error)]
pub enum DepositError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the invoice file of this transmission is gone")]
    PayloadMissing,
    #[error("the technical account could not be read: {0}")]
    Secret(String),
}

/// Everything a deposit needs, built once per cold start.
#[derive(Clone)]
pub struct Depositor {
    pub store: Store,
    pub secrets: SecretStore,
    pub chorus: Arc<ChorusClient>,
    pub mailer: Option<Arc<dyn Mailer>>,
    pub config: Config,
}

/// What a deposit got back, by route.
enum Delivered {
    Flux(FluxDepositResponse),
    Submitted(InvoiceSubmissionResponse),
}

/// The route a transmission was claimed with.
fn route_of_record(tracked: &Tracked) -> Route {
    Route::from_code(tracked.record.deposit_route.as_deref())
}

/// A works statement Chorus Pro took: it has its id at once, so it is followed as a
/// document from now on. An answer without the id proves nothing: searched for like a lost one.
fn submitted(done: InvoiceSubmissionResponse, now: OffsetDateTime) -> (TransmissionState, Change) {
    match done.identifiant_facture_cpp {
        Some(id) => {
            tracing::info!(chorus_invoice_id = id, "works statement submitted");
            let status = done.statut_facture.as_deref().or(Some("DEPOSEE"));
            let note = format!("Soumis à Chorus Pro (n° Chorus Pro {id})");
            let change = Change::default()
                .attached(id, status, None)
                .history(entry(now, "DEPOSE", Some(note)))
                .due(now + follow_up_delay(0));
            (TransmissionState::Integrated, change)
        }
        None => {
            let change = Change::default()
                .outcome_unknown(now, "Chorus Pro a répondu sans l'identifiant du document")
                .due(now + Duration::seconds(30));
            (TransmissionState::OutcomeUnknown, change)
        }
    }
}

/// `{market_ref}#{number:03}`: whose file a payload is.
pub fn payload_owner(tracked: &Tracked) -> String {
    format!(
        "{}#{:03}",
        tracked.situation.market_ref,
        tracked.situation.number.get()
    )
}

fn entry(at: OffsetDateTime, status: &str, comment: Option<String>) -> StatusEntry {
    StatusEntry {
        at,
        status: status.to_owned(),
        comment,
    }
}

fn dur(d: std::time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::minutes(2))
}

impl Depositor {
    /// A transmission held for its credentials (`waiting_credentials`) that still cannot
    /// go: looked at again in 30 minutes (cheap: one read of the account).
    pub async fn still_held(
        &self,
        tracked: &Tracked,
        now: OffsetDateTime,
    ) -> Result<Tracked, StoreError> {
        let from = tracked.situation.transmission.state;
        self.store
            .transition(
                tracked,
                from,
                from,
                Change::default().due(now + Duration::minutes(30)),
                now,
            )
            .await
    }

    /// Deposits now if the transmission may be deposited (`pending`, `failed_retrying`,
    /// or `waiting_credentials` once the credentials are good again). Returns the record
    /// as left. A conflict means another attempt moved it: the caller re-reads.
    pub async fn attempt(
        &self,
        tracked: Tracked,
        account: &CompanyAccount,
        now: OffsetDateTime,
    ) -> Result<Tracked, DepositError> {
        let from = tracked.situation.transmission.state;
        if let Some(why) = self.refusal(account, now) {
            if from == TransmissionState::WaitingCredentials {
                return Ok(self.still_held(&tracked, now).await?);
            }
            return self
                .hold(&tracked, from, Change::default(), why, account, now)
                .await;
        }
        let payload_id = tracked
            .record
            .payload_id
            .clone()
            .ok_or(DepositError::PayloadMissing)?;
        let file = self
            .store
            .get_payload(
                &tracked.situation.siret,
                &payload_owner(&tracked),
                &payload_id,
            )
            .await?
            .ok_or(DepositError::PayloadMissing)?;
        let technical = self.technical_account(account).await?;
        let outing = Outing {
            tracked: &tracked,
            from,
            change: Change::default(),
            file: &file,
            technical,
            account,
        };
        self.send(outing, now).await
    }

    /// The first attempt, in the caller's request: `tracked` is `not_transmitted`, `claim`
    /// holds the transmission's fields (its payload among them, already stored) and `file`
    /// the invoice just checked. The claim and the deposit's lease are one conditional
    /// write, so a request that wins it deposits at once. If the technical account cannot
    /// be read, the claim alone is written (`pending`): nothing was sent, and the next
    /// request or the follow-up deposits it.
    pub async fn first_attempt(
        &self,
        tracked: &Tracked,
        claim: Change,
        file: &[u8],
        account: &CompanyAccount,
        now: OffsetDateTime,
    ) -> Result<Tracked, DepositError> {
        let from = TransmissionState::NotTransmitted;
        if let Some(why) = self.refusal(account, now) {
            return self.hold(tracked, from, claim, why, account, now).await;
        }
        let technical = match self.technical_account(account).await {
            Ok(technical) => technical,
            Err(e) => {
                // Nothing is sent from `pending`, and this request gives up: the claim is
                // due at once, for the next request or the follow-up to deposit.
                tracing::error!(error = %e, "technical account unreadable: the claim waits");
                return Ok(self
                    .store
                    .transition(
                        tracked,
                        from,
                        TransmissionState::Pending,
                        claim.and(Change::default().due(now)),
                        now,
                    )
                    .await?);
            }
        };
        let outing = Outing {
            tracked,
            from,
            change: claim,
            file,
            technical,
            account,
        };
        self.send(outing, now).await
    }

    /// Why the account's credentials cannot be used now, if they cannot.
    fn refusal(&self, account: &CompanyAccount, now: OffsetDateTime) -> Option<&'static str> {
        match account.effective_status(self.config.password_lifetime, now) {
            CredentialsStatus::Expired => Some("Mot de passe du compte technique expiré"),
            CredentialsStatus::Rejected => Some(PASSWORD_REFUSED),
            _ => None,
        }
    }

    /// Holds the transmission until the credentials are renewed.
    async fn hold(
        &self,
        tracked: &Tracked,
        from: TransmissionState,
        change: Change,
        why: &str,
        account: &CompanyAccount,
        now: OffsetDateTime,
    ) -> Result<Tracked, DepositError> {
        let held = Change::default()
            .held(&account.password_version, why)
            .due(now + Duration::minutes(30));
        Ok(self
            .store
            .transition(
                tracked,
                from,
                TransmissionState::WaitingCredentials,
                change.and(held),
                now,
            )
            .await?)
    }

    /// Leases the deposit (`from` → `depositing`, with the outing's change), sends it once
    /// the way its route says, and records what Chorus Pro answered.
    async fn send(&self, outing: Outing<'_>, now: OffsetDateTime) -> Result<Tracked, DepositError> {
        let works = self.works_payload_of(&outing)?;
        let depositing = self.lease(&outing, now).await?;
        tracing::info!(attempt = depositing.record.attempts, route = ?route_of_record(&depositing), "depositing");
        let answer = match works {
            None => {
                let deposit = self.flux_of(&depositing, outing.file);
                self.chorus
                    .deposit_flux(&outing.technical, &deposit)
                    .await
                    .map(Delivered::Flux)
            }
            Some(payload) => self
                .submit_works(&outing.technical, payload)
                .await
                .map(Delivered::Submitted),
        };
        let now = OffsetDateTime::now_utc().max(now);
        self.record_answer(&depositing, answer, outing.account, now)
            .await
    }

    /// The works submission of this outing, when its route sends one (read before the
    /// lease: a payload that cannot be read sends nothing).
    fn works_payload_of(&self, outing: &Outing<'_>) -> Result<Option<WorksPayload>, DepositError> {
        let route = outing
            .change
            .route_code()
            .map(str::to_owned)
            .or_else(|| outing.tracked.record.deposit_route.clone());
        match Route::from_code(route.as_deref()).submission {
            Submission::UblFlux => Ok(None),
            Submission::PdfApi => serde_json::from_slice(outing.file)
                .map(Some)
                .map_err(|_| DepositError::PayloadMissing),
        }
    }

    /// The PDF added to the account, then the works statement submitted once with it
    /// (docs/chorus-pro.md#works-circuit). A failure to add the file sent nothing.
    async fn submit_works(
        &self,
        technical: &TechnicalAccount,
        payload: WorksPayload,
    ) -> Result<InvoiceSubmissionResponse, ChorusError> {
        let upload = FileUpload::new(&payload.pdf_name, &payload.pdf_mime, payload.pdf_base64);
        let added = match self.chorus.upload_file(technical, &upload).await {
            Ok(added) => added,
            Err(e) if e.deposit_may_be_recorded() => {
                return Err(ChorusError::Unavailable {
                    may_have_reached_chorus: false,
                });
            }
            Err(e) => return Err(e),
        };
        let mut submission = payload.submission;
        submission.piece_jointe_principale = vec![MainAttachment {
            piece_jointe_principale_designation: payload.pdf_name,
            piece_jointe_principale_id: added.piece_jointe_id,
        }];
        self.chorus.submit_invoice(technical, &submission).await
    }

    /// `from` → `depositing` under a lease, which is also the due time: if this Lambda dies
    /// mid-deposit, the follow-up finds the transmission when the lease has run out and
    /// reconciles it.
    async fn lease(&self, outing: &Outing<'_>, now: OffsetDateTime) -> Result<Tracked, StoreError> {
        let until = now + dur(self.config.deposit_lease);
        let attempts = match outing.from {
            TransmissionState::NotTransmitted => 1,
            _ => outing.tracked.record.attempts + 1,
        };
        let lease = Change::default().lease(until, attempts).due(until);
        self.store
            .transition(
                outing.tracked,
                outing.from,
                TransmissionState::Depositing,
                outing.change.clone().and(lease),
                now,
            )
            .await
    }

    /// The flux a deposit sends: the checked file under its recorded name, in the syntax of
    /// its route (`FLUX_SYNTAX`, or `FLUX_SYNTAX_WORKS` for a works document).
    fn flux_of<'f>(&self, depositing: &Tracked, file: &'f [u8]) -> FluxDeposit<'f> {
        let name = depositing
            .record
            .flux_file_name
            .clone()
            .unwrap_or_else(|| format!("{}.xml", deposited_number(depositing)));
        let mut deposit = FluxDeposit::ubl(name, file);
        deposit.syntaxe_flux = route_of_record(depositing)
            .flux_syntax(&self.config)
            .to_owned();
        deposit
    }

    /// Records what Chorus Pro answered a deposit: one state for each kind of answer.
    async fn record_answer(
        &self,
        depositing: &Tracked,
        answer: Result<Delivered, ChorusError>,
        account: &CompanyAccount,
        now: OffsetDateTime,
    ) -> Result<Tracked, DepositError> {
        use TransmissionState::*;
        let (to, change) = match answer {
            Ok(Delivered::Submitted(done)) => submitted(done, now),
            Ok(Delivered::Flux(done)) => {
                tracing::info!(flux_number = %done.numero_flux_depot, "deposited");
                let note = format!("Flux {} déposé dans Chorus Pro", done.numero_flux_depot);
                let change = Change::default()
                    .deposited(&done.numero_flux_depot, now)
                    .history(entry(now, "DEPOSE", Some(note)))
                    .due(now + follow_up_delay(0));
                (Deposited, change)
            }
            Err(ChorusError::CredentialsRejected) => {
                let held = self
                    .hold(
                        depositing,
                        Depositing,
                        Change::default(),
                        PASSWORD_REFUSED,
                        account,
                        now,
                    )
                    .await?;
                self.credentials_refused(account, RejectionSource::Transmission, now)
                    .await;
                return Ok(held);
            }
            Err(ChorusError::BusinessRefusal { libelle, .. })
                if says_number_already_used(&libelle) =>
            {
                return self
                    .number_already_used(depositing, account, &libelle, now)
                    .await;
            }
            Err(ChorusError::BusinessRefusal {
                code_retour,
                libelle,
            }) => {
                let reason =
                    format!("Dépôt refusé par Chorus Pro (code {code_retour}) : {libelle}");
                let change = Change::default().last_error(reason.clone()).history(entry(
                    now,
                    "DEPOT_REFUSE",
                    Some(reason),
                ));
                (Rejected, change)
            }
            Err(e) if e.deposit_may_be_recorded() => {
                tracing::warn!(error = %e, "deposit outcome unknown: reconcile before any new attempt");
                let change = Change::default()
                    .outcome_unknown(now, &e.to_string())
                    .due(now + Duration::seconds(30));
                (OutcomeUnknown, change)
            }
            Err(e) => {
                tracing::warn!(error = %e, "deposit did not reach Chorus Pro; retried later");
                let change = Change::default()
                    .last_error(e.to_string())
                    .due(now + retry_delay(depositing.record.attempts));
                (FailedRetrying, change)
            }
        };
        let change = change.and(Change::default().clear_lease());
        Ok(self
            .store
            .transition(depositing, Depositing, to, change, now)
            .await?)
    }

    /// Finds out whether a deposit whose outcome is unknown reached Chorus Pro, by
    /// searching its invoice number. Found, the situation is attached to that invoice.
    /// Not found proves nothing (a flux Chorus Pro has not processed yet is no invoice):
    /// the search goes on, and past the grace period the company is asked to look in the
    /// portal and say what it saw (`resolve`). Nothing is ever deposited again from here.
    pub async fn reconcile(
        &self,
        tracked: Tracked,
        account: &CompanyAccount,
        now: OffsetDateTime,
    ) -> Result<Tracked, DepositError> {
        let tracked = self.expire_dead_attempt(tracked, now).await?;
        let from = TransmissionState::OutcomeUnknown;
        let technical = self.technical_account(account).await?;
        match self.find_our_invoice(&technical, &tracked).await {
            Ok(Some(invoice)) => {
                tracing::info!(
                    chorus_invoice_id = invoice.identifiant_facture_cpp,
                    "lost deposit found in Chorus Pro"
                );
                let comment = match &invoice.numero_flux_depot {
                    Some(flux) => {
                        format!("Flux {flux} retrouvé dans Chorus Pro après une réponse perdue")
                    }
                    None => "Dépôt retrouvé dans Chorus Pro après une réponse perdue".to_owned(),
                };
                Ok(self.attach(&tracked, from, &invoice, comment, now).await?)
            }
            Ok(None) => Ok(self.keep_searching(&tracked, now).await?),
            Err(ChorusError::CredentialsRejected) => {
                self.credentials_refused(account, RejectionSource::StatusSync, now)
                    .await;
                Ok(self
                    .store
                    .transition(
                        &tracked,
                        from,
                        from,
                        Change::default().due(now + Duration::minutes(30)),
                        now,
                    )
                    .await?)
            }
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation search failed; tried again later");
                Ok(self
                    .store
                    .transition(
                        &tracked,
                        from,
                        from,
                        Change::default().due(now + Duration::minutes(2)),
                        now,
                    )
                    .await?)
            }
        }
    }

    /// An attempt that died holding its lease (`depositing`): what it sent is unknown.
    async fn expire_dead_attempt(
        &self,
        tracked: Tracked,
        now: OffsetDateTime,
    ) -> Result<Tracked, StoreError> {
        let state = tracked.situation.transmission.state;
        if state != TransmissionState::Depositing {
            return Ok(tracked);
        }
        let since = tracked.record.lease_until.unwrap_or(now);
        self.store
            .transition(
                &tracked,
                state,
                TransmissionState::OutcomeUnknown,
                Change::default()
                    .outcome_unknown(since, "Tentative de dépôt interrompue")
                    .due(now),
                now,
            )
            .await
    }

    /// Still unknown to Chorus Pro: searched again soon within the grace period, then
    /// every half hour, with the company asked (once) to check the portal.
    async fn keep_searching(
        &self,
        tracked: &Tracked,
        now: OffsetDateTime,
    ) -> Result<Tracked, StoreError> {
        let from = TransmissionState::OutcomeUnknown;
        let since = tracked.record.unknown_since.unwrap_or(now);
        let grace_ends = since + dur(self.config.reconcile_grace);
        let change = if now < grace_ends {
            Change::default().due(now + (grace_ends - now).min(Duration::minutes(5)))
        } else {
            if tracked.situation.transmission.company_check_since.is_none() {
                tracing::warn!(
                    "deposit still unknown to Chorus Pro after the grace period: the company is asked to check the portal"
                );
            }
            let asked = tracked
                .situation
                .transmission
                .company_check_since
                .unwrap_or(now);
            Change::default()
                .company_asked(asked)
                .due(now + Duration::minutes(30))
        };
        self.store
            .transition(tracked, from, from, change, now)
            .await
    }

    /// Chorus Pro refused a deposit because its invoice number is already used by this
    /// supplier: evidence that an earlier deposit of the same invoice landed. The doubt is
    /// written first (`outcome_unknown`, the company asked at once to check the portal),
    /// then the invoice is searched for and, found, the situation attached to it. Never
    /// `rejected`, never a request for a new number.
    pub async fn number_already_used(
        &self,
        tracked: &Tracked,
        account: &CompanyAccount,
        refusal: &str,
        now: OffsetDateTime,
    ) -> Result<Tracked, DepositError> {
        let refusal = refusal.trim();
        let doubt = self
            .store
            .transition(
                tracked,
                tracked.situation.transmission.state,
                TransmissionState::OutcomeUnknown,
                Change::default()
                    .outcome_unknown(
                        now,
                        &format!("Numéro de facture déjà utilisé dans Chorus Pro : {refusal}"),
                    )
                    .company_asked(now)
                    .history(entry(now, "NUMERO_DEJA_UTILISE", Some(refusal.to_owned())))
                    .due(now + Duration::minutes(5)),
                now,
            )
            .await?;
        let number = deposited_number(&doubt);
        let technical = self.technical_account(account).await?;
        match self.find_document(&technical, &doubt, &number).await {
            Ok(Some(invoice)) if could_be_ours(&invoice, doubt.record.transmitted_at) => {
                let comment = format!(
                    "La facture « {number} » déposée plus tôt a été retrouvée dans Chorus Pro"
                );
                let from = TransmissionState::OutcomeUnknown;
                Ok(self.attach(&doubt, from, &invoice, comment, now).await?)
            }
            Ok(Some(other)) => Ok(self.number_taken_by(&doubt, &other, now).await?),
            Ok(None) => Ok(doubt),
            Err(e) => {
                tracing::warn!(error = %e, "search after a duplicate number failed; tried again later");
                Ok(doubt)
            }
        }
    }

    /// The number is held by another invoice of the supplier, deposited before this
    /// transmission began (one entered on the portal, say): a real collision, so the
    /// situation is `rejected` and needs a new number.
    async fn number_taken_by(
        &self,
        doubt: &Tracked,
        other: &SupplierInvoice,
        now: OffsetDateTime,
    ) -> Result<Tracked, StoreError> {
        let reason = format!(
            "Le numéro « {} » est déjà celui d'une autre facture de l'entreprise dans Chorus Pro (déposée le {}, n° Chorus Pro {})",
            other.numero_facture,
            other.date_depot.as_deref().unwrap_or("?"),
            other.identifiant_facture_cpp
        );
        tracing::warn!("invoice number held by an earlier invoice: a real collision");
        let change = Change::default()
            .last_error(reason.clone())
            .doubt_cleared()
            .history(entry(now, "NUMERO_DEJA_UTILISE", Some(reason)));
        self.store
            .transition(
                doubt,
                TransmissionState::OutcomeUnknown,
                TransmissionState::Rejected,
                change,
                now,
            )
            .await
    }

    /// The company says what the Chorus Pro portal shows for a deposit whose outcome stayed
    /// unknown past the grace: the invoice it found there (checked in Chorus Pro, then
    /// attached), or nothing (one new deposit, at once).
    pub async fn resolve(
        &self,
        tracked: &Tracked,
        account: &CompanyAccount,
        seen: &PortalCheck,
        now: OffsetDateTime,
    ) -> Result<Tracked, ResolveError> {
        let from = TransmissionState::OutcomeUnknown;
        match seen {
            PortalCheck::Found { invoice_number } => {
                let technical = self.technical_account(account).await?;
                let invoice = self
                    .find_document(&technical, tracked, invoice_number)
                    .await
                    .map_err(ResolveError::Chorus)?
                    .ok_or(ResolveError::InvoiceNotInChorus)?;
                let comment = format!(
                    "Rattachée par l'entreprise à la facture « {} » trouvée dans le portail Chorus Pro",
                    invoice.numero_facture
                );
                Ok(self.attach(tracked, from, &invoice, comment, now).await?)
            }
            PortalCheck::Absent => {
                let pending = self
                    .store
                    .transition(
                        tracked,
                        from,
                        TransmissionState::Pending,
                        Change::default().doubt_cleared().due(now),
                        now,
                    )
                    .await?;
                Ok(self.attempt(pending, account, now).await?)
            }
        }
    }

    /// The works document of that number among the supplier's (`rechercherFactureTravaux`),
    /// shaped like an invoice found by the ordinary search.
    async fn find_works_document(
        &self,
        technical: &TechnicalAccount,
        number: &str,
    ) -> Result<Option<SupplierInvoice>, ChorusError> {
        let found = self
            .chorus
            .search_works_invoices(technical, &WorksInvoiceSearch::by_number(number))
            .await?;
        Ok(found
            .liste_factures_travaux
            .into_iter()
            .find(|d| d.numero_facture_travaux == number)
            .map(|d| SupplierInvoice {
                identifiant_facture_cpp: d.id_facture_travaux,
                numero_facture: d.numero_facture_travaux,
                statut: d.statut_facture_travaux.map(Into::into),
                date_depot: d.date_depot_facture_travaux,
                ..SupplierInvoice::default()
            }))
    }

    /// The document of that number among the supplier's, searched the way its route was
    /// sent: a works submission among works documents, a flux among invoices.
    async fn find_document(
        &self,
        technical: &TechnicalAccount,
        tracked: &Tracked,
        number: &str,
    ) -> Result<Option<SupplierInvoice>, ChorusError> {
        match route_of_record(tracked).submission {
            Submission::PdfApi => self.find_works_document(technical, number).await,
            Submission::UblFlux => self.find_invoice(technical, number).await,
        }
    }

    /// The invoice of that number among the supplier's, if Chorus Pro has it.
    async fn find_invoice(
        &self,
        technical: &TechnicalAccount,
        number: &str,
    ) -> Result<Option<SupplierInvoice>, ChorusError> {
        let found = self
            .chorus
            .search_supplier_invoices(technical, &SupplierInvoiceSearch::by_invoice_number(number))
            .await?;
        Ok(found
            .liste_factures
            .into_iter()
            .find(|i| i.numero_facture == number))
    }

    /// The invoice of the deposited number, if Chorus Pro has one that can be this
    /// transmission's (`could_be_ours`).
    async fn find_our_invoice(
        &self,
        technical: &TechnicalAccount,
        tracked: &Tracked,
    ) -> Result<Option<SupplierInvoice>, ChorusError> {
        let found = self
            .find_document(technical, tracked, &deposited_number(tracked))
            .await?;
        Ok(found.filter(|i| could_be_ours(i, tracked.record.transmitted_at)))
    }

    /// The situation is the Chorus Pro invoice `invoice`: followed from its status on.
    async fn attach(
        &self,
        tracked: &Tracked,
        from: TransmissionState,
        invoice: &SupplierInvoice,
        comment: String,
        now: OffsetDateTime,
    ) -> Result<Tracked, StoreError> {
        // The gateway's own record of the deposit (as `attempt` writes it): Chorus Pro's
        // statuses, `DEPOSEE` included, come with the invoice's history, every one of them
        // (none seen yet for this invoice).
        let change = Change::default()
            .attached(
                invoice.identifiant_facture_cpp,
                invoice.statut.as_ref().map(|s| s.as_str()),
                invoice.numero_flux_depot.as_deref(),
            )
            .history(entry(now, "DEPOSE", Some(comment)))
            .due(now + follow_up_delay(0));
        self.store
            .transition(tracked, from, TransmissionState::Integrated, change, now)
            .await
    }

    /// The company's technical account, for the deposit or a search on its behalf.
    pub async fn technical_account(
        &self,
        account: &CompanyAccount,
    ) -> Result<TechnicalAccount, DepositError> {
        self.secrets
            .technical_account_of(account)
            .await
            .map_err(|e| DepositError::Secret(e.to_string()))
    }

    /// Chorus Pro refused the stored password: the account becomes `rejected` (if that
    /// password is still the one in force) and the referent is told once.
    pub async fn credentials_refused(
        &self,
        account: &CompanyAccount,
        source: RejectionSource,
        now: OffsetDateTime,
    ) {
        let audit = AuditEntry {
            at: now,
            actor: "choruspro-gateway".into(),
            action: "credentials_rejected".into(),
            fields: vec!["credentials_status".into()],
        };
        if account.credentials_status != CredentialsStatus::Rejected {
            match self
                .store
                .record_verification(
                    &account.siret,
                    &account.password_version,
                    None,
                    CredentialsStatus::Rejected.into(),
                    now,
                    &audit,
                )
                .await
            {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => tracing::error!(error = %e, "could not record the refused credentials"),
            }
        }
        if let Some(mailer) = &self.mailer {
            crate::reminder::alert::notify_credentials_rejected(
                &self.store,
                mailer.as_ref(),
                account,
                self.config.password_lifetime,
                source,
                now,
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_invoice_deposited_before_the_claim_is_not_ours() {
        let claimed = Some(datetime!(2026-12-03 10:00 UTC));
        let deposited = |date: Option<&str>| SupplierInvoice {
            date_depot: date.map(str::to_owned),
            ..SupplierInvoice::default()
        };
        for (date, claimed_at, ours) in [
            (Some("2026-12-03"), claimed, true),
            (Some("2026-12-04"), claimed, true),
            (Some("2026-12-02"), claimed, false),
            // Claimed just after midnight: the day before still counts (the margin).
            (
                Some("2026-12-02"),
                Some(datetime!(2026-12-02 23:30 UTC)),
                true,
            ),
            (Some("2026-12-01"), claimed, false),
            (Some("2026-11-15T09:00:00Z"), claimed, false),
            (Some("2026-12-03T09:59:00Z"), claimed, true),
            (None, claimed, true),
            (Some("2026-11-01"), None, true),
            (Some("pas une date"), claimed, true),
        ] {
            assert_eq!(
                could_be_ours(&deposited(date), claimed_at),
                ours,
                "{date:?}"
            );
        }
    }
}
