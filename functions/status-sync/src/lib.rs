//! The follow-up of transmissions (scheduled, every few minutes): for every situation due
//! — found with a query on the follow-up index, never a scan — it retries deposits that did
//! not reach Chorus Pro, reconciles deposits whose answer was lost, releases transmissions
//! held for credentials once a new password is valid, and follows each flux
//! (`consulterCRDetaille`) and each invoice (`consulter/historique`) until a final status,
//! recording every status with its time and Chorus Pro comment.
//!
//! Each situation is handled on its own: one that fails (Chorus Pro refusing a company's
//! password, an item that cannot be read) is counted and retried later with a back-off,
//! and never stops the others.

pub mod overdue;

use serde::Serialize;
use shared::chorus::{
    ChorusError, FluxOutcome, FluxReport, FluxReportRequest, InvoiceHistoryRequest, InvoiceStatus,
    SupplierInvoiceSearch, TechnicalAccount, parse_chorus_datetime, says_number_already_used,
};
use shared::deposit::{DepositError, deposited_number};
use shared::domain::situation::StatusEntry;
use shared::domain::transmission::{TransmissionState, follow_up_delay};
use shared::domain::{CompanyAccount, MarketRef, Siret, SituationNumber};
use shared::follow_settings::{FollowMode, FollowWorker, ShardReach};
use shared::mail::render::RejectionSource;
use shared::store::transmission::{Change, Tracked};
use time::{Duration, OffsetDateTime};

mod changes;
pub mod schedule;
mod works;

/// At most this many situations per run; the rest stay due for the next run.
pub const BATCH: usize = 500;

/// The clients of the cold start and the depositor (shared with the other function that
/// deposits).
pub use shared::services::DepositingState as State;

/// What one run did.
#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub now: String,
    /// Which worker this run was (`k` of `workers`) and its Chorus Pro calls per second.
    pub worker: u8,
    pub workers: u8,
    pub rate_per_second: Option<u32>,
    /// Index entries read to find what is due.
    pub items_read: usize,
    pub due: usize,
    pub deposited: usize,
    pub reconciled: usize,
    pub integrated: usize,
    pub rejected: usize,
    pub status_changes: usize,
    pub held_for_credentials: usize,
    pub waiting: usize,
    pub failed: usize,
    /// Due, but left for the next run for lack of time.
    pub postponed: usize,
    /// How many of the due situations were in each state when this run left them: the
    /// operators' alarms watch `outcome_unknown` and `waiting_credentials`.
    pub states: std::collections::BTreeMap<&'static str, usize>,
    pub actions: Vec<Action>,
    /// The payment deadlines passed and the events published (`overdue`).
    pub overdue: overdue::OverdueReport,
    /// The change-driven part of the run (`changes`).
    pub companies: changes::CompaniesReport,
}

impl SyncReport {
    /// The run's counts as a CloudWatch embedded-metric-format document: printed as one
    /// line on stdout, Lambda's log pipeline turns it into metrics (no extra API call).
    pub fn metrics_line(&self) -> String {
        let metric_names = [
            "Due",
            "Deposited",
            "Integrated",
            "Rejected",
            "Failed",
            "OutcomeUnknown",
            "WaitingCredentials",
        ];
        let metrics: Vec<serde_json::Value> = metric_names
            .iter()
            .map(|name| serde_json::json!({"Name": name, "Unit": "Count"}))
            .collect();
        serde_json::json!({
            "_aws": {
                "Timestamp": time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
                "CloudWatchMetrics": [{"Namespace": "ChorusProGateway", "Dimensions": [[]], "Metrics": metrics}]
            },
            "Due": self.due,
            "Deposited": self.deposited,
            "Integrated": self.integrated,
            "Rejected": self.rejected,
            "Failed": self.failed,
            "OutcomeUnknown": self.states.get("outcome_unknown").copied().unwrap_or(0),
            "WaitingCredentials": self.states.get("waiting_credentials").copied().unwrap_or(0),
        })
        .to_string()
    }
}

#[derive(Debug, Serialize)]
pub struct Action {
    pub siret: String,
    pub market_ref: String,
    pub number: u16,
    pub from: &'static str,
    pub to: &'static str,
    pub note: String,
}

/// A run alone (worker 0 of 1: every shard, the whole rate).
pub async fn run_once(state: &State) -> SyncReport {
    run_until(state, FollowWorker::ALONE, None).await
}

/// A run as one of several workers (the tests'; a Lambda run reads its worker from the
/// schedule's input, main.rs).
pub async fn run_as(state: &State, worker: FollowWorker) -> SyncReport {
    run_until(state, worker, None).await
}

/// Stops taking new situations once `deadline` is near (the Lambda's own deadline less a
/// margin for the slowest Chorus Pro call): what is left stays due for the next run.
/// `FOLLOW_MODE=changes` (the default) visits companies (`changes`), several at once;
/// `full` follows each due situation on its own, one after the other, as before.
/// `worker` says which shards it reads first and its share of the rate limit.
pub async fn run_until(
    state: &State,
    worker: FollowWorker,
    deadline: Option<std::time::Instant>,
) -> SyncReport {
    let now = state.clock.now();
    let mut report = SyncReport {
        now: shared::clock::rfc3339(now),
        worker: worker.index(),
        workers: worker.count(),
        rate_per_second: state
            .chorus
            .pacer()
            .share_among(worker.workers())
            .map(|r| r.get()),
        ..SyncReport::default()
    };
    // Each visit of the change-driven path holds its company's lease: the workers may all
    // read every shard. The full path holds none: each reads its own shards only.
    let reach = match state.config.follow.mode {
        FollowMode::Changes => ShardReach::OwnFirst,
        FollowMode::Full => ShardReach::OwnOnly,
    };
    let (due, read) = match state
        .store
        .due_transmissions(now, BATCH, &worker, reach)
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "could not read what is due");
            report.failed += 1;
            return report;
        }
    };
    report.items_read = read;
    report.due = due.len();
    match state.config.follow.mode {
        FollowMode::Full => Box::pin(follow_each(state, due, now, deadline, &mut report)).await,
        FollowMode::Changes => {
            Box::pin(changes::visit_companies(
                state,
                due,
                &worker,
                now,
                deadline,
                &mut report,
            ))
            .await
        }
    }
    report.overdue = Box::pin(overdue::run(state, now, &worker)).await;
    report
}

/// Whether the run must stop taking work.
fn out_of_time(state: &State, deadline: Option<std::time::Instant>) -> bool {
    let margin = state.config.chorus_request_timeout * 2 + std::time::Duration::from_secs(5);
    deadline.is_some_and(|d| std::time::Instant::now() + margin >= d)
}

/// The path before change-driven follow-up: each due situation on its own, in turn.
async fn follow_each(
    state: &State,
    due: Vec<(Siret, MarketRef, SituationNumber)>,
    now: OffsetDateTime,
    deadline: Option<std::time::Instant>,
    report: &mut SyncReport,
) {
    for (siret, market_ref, number) in due {
        if out_of_time(state, deadline) {
            tracing::warn!("time is running out: the rest waits for the next run");
            report.postponed += 1;
            continue;
        }
        let span = tracing::info_span!("situation", siret = %siret, market_ref = %market_ref, situation = number.get());
        let _entered = span.enter();
        let result = follow(state, &siret, &market_ref, number, now).await;
        record(report, &siret, &market_ref, number, result);
    }
}

/// One situation's outcome in the run's report.
fn record(
    report: &mut SyncReport,
    siret: &Siret,
    market_ref: &MarketRef,
    number: SituationNumber,
    result: Result<Step, DepositError>,
) {
    match result {
        Ok(Some((from, to, note))) => {
            tally(report, from, to, &note);
            *report.states.entry(to.as_str()).or_default() += 1;
            tracing::info!(from = from.as_str(), to = to.as_str(), note = %note, "followed");
            report.actions.push(Action {
                siret: siret.to_string(),
                market_ref: market_ref.to_string(),
                number: number.get(),
                from: from.as_str(),
                to: to.as_str(),
                note,
            });
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "follow-up failed; retried next run");
            report.failed += 1;
        }
    }
}

fn tally(report: &mut SyncReport, from: TransmissionState, to: TransmissionState, note: &str) {
    use TransmissionState::*;
    match (from, to) {
        (_, Deposited) if from != Deposited => report.deposited += 1,
        (OutcomeUnknown, Integrated) => report.reconciled += 1,
        (Deposited, Integrated) => report.integrated += 1,
        (_, Rejected) if from != Rejected => report.rejected += 1,
        (_, WaitingCredentials) => report.held_for_credentials += 1,
        (Integrated, Integrated) if note.starts_with("statut") => report.status_changes += 1,
        _ => report.waiting += 1,
    }
}

type Step = Option<(TransmissionState, TransmissionState, String)>;

async fn follow(
    state: &State,
    siret: &Siret,
    market_ref: &MarketRef,
    number: SituationNumber,
    now: OffsetDateTime,
) -> Result<Step, DepositError> {
    Ok(
        follow_keeping(state, siret, market_ref, number, now, Trigger::Due)
            .await?
            .0,
    )
}

/// Why a situation is followed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// It is due in the follow-up index.
    Due,
    /// The change search found its invoice changed: followed whenever it is due.
    Changed,
}

/// `follow`, also giving the situation as it was left (when it was written).
pub(crate) async fn follow_keeping(
    state: &State,
    siret: &Siret,
    market_ref: &MarketRef,
    number: SituationNumber,
    now: OffsetDateTime,
    trigger: Trigger,
) -> Result<(Step, Option<Tracked>), DepositError> {
    let Some(tracked) = state.store.get_tracked(siret, market_ref, number).await? else {
        return Ok((None, None));
    };
    // The index may lag the item: only what is due by the item itself is handled.
    if trigger == Trigger::Due && tracked.record.next_check_at.is_some_and(|at| at > now) {
        return Ok((None, None));
    }
    let from = tracked.situation.transmission.state;
    let Some(account) = state.store.get_account(siret).await? else {
        return stop_following(state, &tracked, now).await;
    };
    let held_version = tracked.record.blocked_password_version.as_deref();
    if from == TransmissionState::WaitingCredentials
        && !account.releases_hold(held_version, state.config.password_lifetime, now)
    {
        return keep_holding(state, &tracked, now).await;
    }
    let left = advance(state, tracked, &account, now).await?;
    let to = left.situation.transmission.state;
    let note = left
        .situation
        .transmission
        .status_history
        .last()
        .map(|e| format!("statut {}", e.status))
        .unwrap_or_default();
    Ok((Some((from, to, note)), Some(left)))
}

/// No settings any more: nothing can be asked of Chorus Pro for this company.
async fn stop_following(
    state: &State,
    tracked: &Tracked,
    now: OffsetDateTime,
) -> Result<(Step, Option<Tracked>), DepositError> {
    let from = tracked.situation.transmission.state;
    let change = Change::default().last_error("Compte Chorus Pro supprimé : suivi arrêté");
    let left = state
        .store
        .transition(tracked, from, from, change, now)
        .await?;
    let step = (
        from,
        left.situation.transmission.state,
        "compte supprimé, suivi arrêté".into(),
    );
    Ok((Some(step), Some(left)))
}

/// Held for its credentials, still no valid password: looked at again in 30 minutes.
async fn keep_holding(
    state: &State,
    tracked: &Tracked,
    now: OffsetDateTime,
) -> Result<(Step, Option<Tracked>), DepositError> {
    let from = tracked.situation.transmission.state;
    state.depositor.still_held(tracked, now).await?;
    let step = (
        from,
        from,
        "en attente d'un nouveau mot de passe valide".into(),
    );
    Ok((Some(step), None))
}

/// The one step a transmission's state calls for (a held one's credentials are valid).
async fn advance(
    state: &State,
    tracked: Tracked,
    account: &CompanyAccount,
    now: OffsetDateTime,
) -> Result<Tracked, DepositError> {
    use TransmissionState::*;
    let from = tracked.situation.transmission.state;
    // Each step's future boxed: together they outgrow a 2 MiB stack in debug builds.
    Ok(match from {
        WaitingCredentials | Pending | FailedRetrying => {
            Box::pin(state.depositor.attempt(tracked, account, now)).await?
        }
        Depositing | OutcomeUnknown => {
            Box::pin(state.depositor.reconcile(tracked, account, now)).await?
        }
        Deposited => Box::pin(follow_flux(state, tracked, account, now)).await?,
        Integrated if works::is_works(&tracked) => {
            Box::pin(works::follow(state, tracked, account, now)).await?
        }
        Integrated => Box::pin(follow_invoice(state, tracked, account, now)).await?,
        Rejected | NotTransmitted => {
            // Nothing to follow: out of the index.
            state
                .store
                .transition(&tracked, from, from, Change::default(), now)
                .await?
        }
    })
}

/// A Chorus Pro call failed: back off and note it; a refused password also holds the
/// company's next deposits and alerts its referent.
async fn backoff(
    state: &State,
    tracked: &Tracked,
    account: &CompanyAccount,
    err: ChorusError,
    now: OffsetDateTime,
) -> Result<Tracked, DepositError> {
    let from = tracked.situation.transmission.state;
    if matches!(err, ChorusError::CredentialsRejected) {
        state
            .depositor
            .credentials_refused(account, RejectionSource::StatusSync, now)
            .await;
    }
    let checks = tracked.record.checks_done + 1;
    Ok(state
        .store
        .transition(
            tracked,
            from,
            from,
            Change::default()
                .checks_done(checks)
                .last_error(err.to_string())
                .due(now + follow_up_delay(checks).max(Duration::minutes(5))),
            now,
        )
        .await?)
}

fn entry(at: OffsetDateTime, status: &str, comment: Option<String>) -> StatusEntry {
    StatusEntry {
        at,
        status: status.to_owned(),
        comment,
    }
}

/// Chorus Pro's timestamps, when readable; else when the gateway saw them.
fn chorus_time(raw: Option<&str>, fallback: OffsetDateTime) -> OffsetDateTime {
    raw.and_then(parse_chorus_datetime).unwrap_or(fallback)
}

/// What one look at a deposited flux found.
struct FluxSeen<'a> {
    tracked: &'a Tracked,
    report: FluxReport,
    /// The flux state as Chorus Pro names it (`INCONNU` when absent).
    name: String,
    /// When Chorus Pro says the flux reached it.
    at: OffsetDateTime,
}

/// Follows a deposited flux (`consulterCRDetaille`): one step for each outcome.
async fn follow_flux(
    state: &State,
    tracked: Tracked,
    account: &CompanyAccount,
    now: OffsetDateTime,
) -> Result<Tracked, DepositError> {
    let from = TransmissionState::Deposited;
    let Some(flux) = tracked.situation.transmission.flux_number.clone() else {
        return Ok(state
            .store
            .transition(&tracked, from, from, Change::default(), now)
            .await?);
    };
    let technical = state.depositor.technical_account(account).await?;
    let report = match state
        .chorus
        .read_flux_report(&technical, &FluxReportRequest::new(flux.clone()))
        .await
    {
        Ok(r) => r,
        Err(e) => return backoff(state, &tracked, account, e, now).await,
    };
    let outcome = report.etat_courant_depot_flux.as_ref().map(|s| s.outcome());
    let seen = FluxSeen {
        tracked: &tracked,
        name: report
            .etat_courant_depot_flux
            .as_ref()
            .map_or_else(|| "INCONNU".to_owned(), |s| s.as_str().to_owned()),
        at: chorus_time(report.date_heure_etat_courant_flux.as_deref(), now),
        report,
    };
    match outcome {
        Some(FluxOutcome::Integrated) => {
            flux_integrated(state, &seen, &flux, &technical, account, now).await
        }
        Some(FluxOutcome::Rejected) => flux_rejected(state, &seen, account, now).await,
        other => flux_in_process(state, &seen, other, now).await,
    }
}

/// Integrated: the invoice is found among the flux's and followed from then on.
async fn flux_integrated(
    state: &State,
    seen: &FluxSeen<'_>,
    flux: &str,
    technical: &TechnicalAccount,
    account: &CompanyAccount,
    now: OffsetDateTime,
) -> Result<Tracked, DepositError> {
    let (tracked, from) = (seen.tracked, TransmissionState::Deposited);
    let number = deposited_number(tracked);
    let found = match state
        .chorus
        .search_supplier_invoices(technical, &SupplierInvoiceSearch::by_flux(flux))
        .await
    {
        Ok(f) => f,
        Err(e) => return backoff(state, tracked, account, e, now).await,
    };
    let Some(invoice) = found
        .liste_factures
        .iter()
        .find(|i| i.numero_facture == number)
    else {
        // Integrated but not yet searchable: look again soon.
        let checks = tracked.record.checks_done + 1;
        let change = Change::default()
            .checks_done(checks)
            .due(now + follow_up_delay(checks));
        return Ok(state
            .store
            .transition(tracked, from, from, change, now)
            .await?);
    };
    let status = invoice.statut.as_ref().map_or("DEPOSEE", |s| s.as_str());
    let file = seen.report.nom_fichier.clone().unwrap_or_default();
    let note = format!("Flux {file} intégré par Chorus Pro")
        .trim_end()
        .to_owned();
    let change = Change::default()
        .attached(invoice.identifiant_facture_cpp, Some(status), None)
        .history(entry(seen.at, &seen.name, Some(note)))
        .due(now);
    Ok(state
        .store
        .transition(tracked, from, TransmissionState::Integrated, change, now)
        .await?)
}

/// Rejected: the reasons are recorded, each as Chorus Pro gave it; a number already used
/// means an earlier deposit landed, which the depositor attaches to.
async fn flux_rejected(
    state: &State,
    seen: &FluxSeen<'_>,
    account: &CompanyAccount,
    now: OffsetDateTime,
) -> Result<Tracked, DepositError> {
    let tracked = seen.tracked;
    let reasons = rejection_reasons(&seen.report, &deposited_number(tracked));
    if let Some(reason) = reasons.iter().find(|r| says_number_already_used(r)) {
        return state
            .depositor
            .number_already_used(tracked, account, reason, now)
            .await;
    }
    let mut change = Change::default().chorus_status(None);
    if reasons.is_empty() {
        let none = "Chorus Pro n'a pas donné de motif : consultez le compte rendu du flux sur le portail Chorus Pro.";
        change = change.history(entry(seen.at, &seen.name, Some(none.into())));
    }
    for reason in &reasons {
        change = change.history(entry(seen.at, &seen.name, Some(reason.clone())));
    }
    let summary = match reasons.is_empty() {
        true => seen.name.clone(),
        false => reasons.join(" ; "),
    };
    Ok(state
        .store
        .transition(
            tracked,
            TransmissionState::Deposited,
            TransmissionState::Rejected,
            change.last_error(summary),
            now,
        )
        .await?)
}

/// The reasons of a rejected flux that concern this invoice, trimmed.
fn rejection_reasons(report: &FluxReport, number: &str) -> Vec<String> {
    let of_this_invoice = report
        .liste_erreur_dp
        .iter()
        .filter(|e| e.numero_dp.as_deref().is_none_or(|n| n == number))
        .filter_map(|e| e.libelle_erreur_dp.clone());
    let technical = report
        .liste_erreur_technique
        .iter()
        .filter_map(|e| e.libelle_erreur.clone());
    of_this_invoice
        .chain(technical)
        .map(|r| r.trim().to_owned())
        .collect()
}

/// Still in process (or a state to show): noted once, then looked at again later.
async fn flux_in_process(
    state: &State,
    seen: &FluxSeen<'_>,
    outcome: Option<FluxOutcome>,
    now: OffsetDateTime,
) -> Result<Tracked, DepositError> {
    let (tracked, from) = (seen.tracked, TransmissionState::Deposited);
    let checks = tracked.record.checks_done + 1;
    let mut change = Change::default()
        .checks_done(checks)
        .due(now + follow_up_delay(checks));
    let history = &tracked.situation.transmission.status_history;
    let new_state = history.last().is_none_or(|e| e.status != seen.name);
    if new_state && seen.name != "INCONNU" {
        let comment = (outcome == Some(FluxOutcome::NeedsAttention))
            .then(|| "Le flux demande une intervention du support Chorus Pro.".to_owned());
        change = change.history(entry(seen.at, &seen.name, comment));
    }
    Ok(state
        .store
        .transition(tracked, from, from, change, now)
        .await?)
}

async fn follow_invoice(
    state: &State,
    tracked: Tracked,
    account: &CompanyAccount,
    now: OffsetDateTime,
) -> Result<Tracked, DepositError> {
    let from = TransmissionState::Integrated;
    let Some(id) = tracked.situation.transmission.chorus_invoice_id else {
        return Ok(state
            .store
            .transition(&tracked, from, from, Change::default(), now)
            .await?);
    };
    let technical = state.depositor.technical_account(account).await?;
    let history = match state
        .chorus
        .read_invoice_history(&technical, &InvoiceHistoryRequest::new(id))
        .await
    {
        Ok(h) => h,
        Err(e) => return backoff(state, &tracked, account, e, now).await,
    };
    // Oldest first. Chorus Pro sends the newest first (Pastell): reversed, then sorted by
    // time, entries of the same second keep their order.
    let mut entries: Vec<(OffsetDateTime, String, Option<String>)> = history
        .entries()
        .iter()
        .rev()
        .filter_map(|e| {
            let code = e.histo_statut_code.as_ref()?.as_str().to_owned();
            Some((
                chorus_time(e.histo_statut_date_passage.as_deref(), now),
                code,
                e.histo_statut_commentaire.clone(),
            ))
        })
        .collect();
    entries.sort_by_key(|e| e.0);
    let seen = usize::try_from(tracked.record.chorus_history_seen).unwrap_or(0);
    let current = history
        .statut_courant_code
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .or_else(|| entries.last().map(|e| e.1.clone()))
        .or_else(|| tracked.situation.transmission.chorus_status.clone())
        .unwrap_or_else(|| "DEPOSEE".into());
    let checks = tracked.record.checks_done + 1;
    let mut change = Change::default()
        .chorus_status(Some(&current))
        .chorus_history_seen(entries.len().max(seen))
        .clear_last_error();
    let fresh = entries.len() > seen;
    for (at, code, comment) in entries.into_iter().skip(seen) {
        change = change.history(entry(at, &code, comment));
    }
    if InvoiceStatus::from(current.as_str()).ends_follow_up() {
        tracing::info!(status = %current, "final status: follow-up ends");
    } else {
        let checks = if fresh { 0 } else { checks };
        change = change
            .checks_done(checks)
            .due(now + schedule::invoice_recheck(&state.config.follow, checks));
    }
    Ok(state
        .store
        .transition(&tracked, from, from, change, now)
        .await?)
}
