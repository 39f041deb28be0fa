//! Change-driven follow-up (docs/chorus-pro.md#change-driven-follow-up): the run visits
//! companies, several at once, each under a lease so that two workers never handle the same
//! company. A visit follows the company's due situations as before (deposits, reconciliation,
//! fluxes by `consulterCRDetaille`, the safety-net consultations), then, when its look is
//! due, searches once (paged) what changed in Chorus Pro since its watermark, less an
//! overlap, and consults only the invoices that changed. The watermark moves on only when
//! every change of the window was handled: a run that fails half-way repeats the window.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
use serde::Serialize;
use shared::chorus::{ChorusError, InvoiceStatus, SupplierInvoiceSearch, parse_chorus_datetime};
use shared::deposit::DepositError;
use shared::domain::transmission::TransmissionState;
use shared::domain::{CompanyAccount, MarketRef, Siret, SituationNumber};
use shared::follow_settings::{FollowSettings, FollowWorker};
use shared::mail::render::RejectionSource;
use shared::store::follow::{CompanyFollow, FollowRelease, OpenInvoice};
use shared::store::transmission::Tracked;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::{State, Step, SyncReport, Trigger, follow_keeping, out_of_time, record, schedule};

/// At most this many companies looked at per run beyond those with due situations.
pub const COMPANIES_PER_RUN: usize = 2_000;

/// What the change-driven part of a run did.
#[derive(Debug, Default, Serialize)]
pub struct CompaniesReport {
    /// Companies whose look was due (index entries read to find them: `items_read`).
    pub due: usize,
    pub items_read: usize,
    pub visited: usize,
    /// Held by another worker: left to it.
    pub busy: usize,
    /// Change searches made (one per company looked at, more with pages).
    pub searches: usize,
    /// Invoices the searches returned, and those consulted because they changed.
    pub changes_seen: usize,
    pub changes_followed: usize,
    /// Looks that failed: their window is searched again.
    pub windows_repeated: usize,
    /// `429` answers that paused every Chorus Pro call of the function so far.
    pub pauses: u64,
}

/// One company's visit, merged into the run's report when it ends.
#[derive(Default)]
struct Visit {
    outcomes: Vec<(MarketRef, SituationNumber, Result<Step, DepositError>)>,
    busy: bool,
    failed: usize,
    postponed: usize,
    searches: usize,
    changes_seen: usize,
    changes_followed: usize,
    window_repeated: bool,
}

/// The companies to visit in the order the indexes gave them (the worker's own shards
/// first), each with its due situations.
#[derive(Default)]
struct ToVisit {
    order: Vec<(Siret, Vec<(MarketRef, SituationNumber)>)>,
    at: BTreeMap<Siret, usize>,
}

impl ToVisit {
    /// The company's due situations, the company added at the end when new.
    fn company(&mut self, siret: Siret) -> &mut Vec<(MarketRef, SituationNumber)> {
        let order = &mut self.order;
        let index = *self.at.entry(siret.clone()).or_insert_with(|| {
            order.push((siret, Vec::new()));
            order.len() - 1
        });
        &mut order[index].1
    }
}

/// Groups the due situations by company, adds the companies whose look is due, and visits
/// them `FOLLOW_CONCURRENCY` at a time, in the order read.
pub(crate) async fn visit_companies(
    state: &State,
    due: Vec<(Siret, MarketRef, SituationNumber)>,
    worker: &FollowWorker,
    now: OffsetDateTime,
    deadline: Option<std::time::Instant>,
    report: &mut SyncReport,
) {
    let mut companies = ToVisit::default();
    for (siret, market_ref, number) in due {
        companies.company(siret).push((market_ref, number));
    }
    match state
        .store
        .due_companies(now, COMPANIES_PER_RUN, worker)
        .await
    {
        Ok((sirets, read)) => {
            report.companies.due = sirets.len();
            report.companies.items_read = read;
            for siret in sirets {
                companies.company(siret);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read the companies to look at");
            report.failed += 1;
        }
    }
    let mut visits = futures_util::stream::iter(companies.order)
        .map(|(siret, due)| async move {
            // A span per visit, not entered across awaits: visits interleave.
            let span = tracing::info_span!("company", siret = %siret);
            let visit = visit(state, &siret, due, now, deadline)
                .instrument(span)
                .await;
            (siret, visit)
        })
        .buffer_unordered(state.config.follow.concurrency);
    while let Some((siret, visit)) = visits.next().await {
        merge(report, &siret, visit);
    }
    report.companies.pauses = state.chorus.pacer().pauses();
}

fn merge(report: &mut SyncReport, siret: &Siret, visit: Visit) {
    let companies = &mut report.companies;
    companies.visited += usize::from(!visit.busy);
    companies.busy += usize::from(visit.busy);
    companies.searches += visit.searches;
    companies.changes_seen += visit.changes_seen;
    companies.changes_followed += visit.changes_followed;
    companies.windows_repeated += usize::from(visit.window_repeated);
    report.failed += visit.failed;
    report.postponed += visit.postponed;
    let _company = tracing::info_span!("company", siret = %siret).entered();
    for (market_ref, number, result) in visit.outcomes {
        let _situation = situation_span(&market_ref, number).entered();
        record(report, siret, &market_ref, number, result);
    }
}

/// What a visit learns as it goes: the open invoices and the watermark to write back.
struct Learnt {
    open: BTreeMap<i64, OpenInvoice>,
    watermark: Option<OffsetDateTime>,
    /// Situations already followed in this visit (not consulted twice).
    followed: BTreeSet<(MarketRef, SituationNumber)>,
}

impl Learnt {
    fn new(held: &CompanyFollow) -> Learnt {
        Learnt {
            open: held.open.clone(),
            // Without open invoices the old watermark means nothing: the first invoice
            // registered sets it again.
            watermark: held.watermark.filter(|_| !held.open.is_empty()),
            followed: BTreeSet::new(),
        }
    }

    /// Notes the situation as the follow-up left it: followed on while integrated and not
    /// final, out of the open invoices otherwise.
    fn note(
        &mut self,
        market_ref: &MarketRef,
        number: SituationNumber,
        left: &Tracked,
        now: OffsetDateTime,
    ) {
        self.followed.insert((market_ref.clone(), number));
        self.open
            .retain(|_, o| !(o.market_ref == *market_ref && o.number == number));
        let transmission = &left.situation.transmission;
        let Some(id) = transmission.chorus_invoice_id else {
            return;
        };
        let status = transmission.chorus_status.as_deref().unwrap_or("DEPOSEE");
        if transmission.state != TransmissionState::Integrated
            || InvoiceStatus::from(status).ends_follow_up()
        {
            return;
        }
        self.open.insert(
            id,
            OpenInvoice {
                market_ref: market_ref.clone(),
                number,
                status: status.to_owned(),
            },
        );
        // Its whole history was just read: changes from its last status on are to come.
        let last = transmission.status_history.last().map_or(now, |e| e.at);
        self.watermark = Some(self.watermark.map_or(last, |w| w.min(last)).min(now));
    }
}

async fn visit(
    state: &State,
    siret: &Siret,
    due: Vec<(MarketRef, SituationNumber)>,
    now: OffsetDateTime,
    deadline: Option<std::time::Instant>,
) -> Visit {
    let mut visit = Visit::default();
    if out_of_time(state, deadline) {
        // Not even taken: the next run finds it due as it is.
        visit.postponed += due.len();
        return visit;
    }
    let settings = &state.config.follow;
    let held = match state
        .store
        .lease_company(siret, now + settings.lease, now)
        .await
    {
        Ok(Some(held)) => held,
        Ok(None) => {
            tracing::info!("held by another worker: left to it");
            visit.busy = true;
            return visit;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not take the company; retried next run");
            visit.failed += 1;
            return visit;
        }
    };
    let mut learnt = Learnt::new(&held);
    let mut complete = true;
    for (market_ref, number) in due {
        if out_of_time(state, deadline) {
            visit.postponed += 1;
            complete = false;
            continue;
        }
        let span = situation_span(&market_ref, number);
        let result = follow_keeping(state, siret, &market_ref, number, now, Trigger::Due)
            .instrument(span)
            .await;
        keep(&mut visit, &mut learnt, market_ref, number, result, now);
    }
    let look_due = !held.open.is_empty() && held.next_look_at.is_none_or(|at| at <= now);
    let mut looked = None;
    if look_due && complete && !out_of_time(state, deadline) {
        looked = Some(look(state, &held, &mut learnt, &mut visit, now).await);
    }
    let release = release_for(settings, &held, learnt, looked, now);
    if let Err(e) = state.store.release_company(&held, &release).await {
        tracing::warn!(error = %e, "could not record the look; its window is searched again");
        visit.failed += 1;
    }
    visit
}

/// The log context of one situation (inside its company's span).
fn situation_span(market_ref: &MarketRef, number: SituationNumber) -> tracing::Span {
    tracing::info_span!("situation", market_ref = %market_ref, situation = number.get())
}

/// Records one follow-up's outcome in the visit and what it learnt.
fn keep(
    visit: &mut Visit,
    learnt: &mut Learnt,
    market_ref: MarketRef,
    number: SituationNumber,
    result: Result<(Step, Option<Tracked>), DepositError>,
    now: OffsetDateTime,
) {
    let result = result.map(|(step, left)| {
        if let Some(left) = &left {
            learnt.note(&market_ref, number, left, now);
        }
        step
    });
    visit.outcomes.push((market_ref, number, result));
}

/// What to write back: the watermark moves on only after a complete look (to the latest
/// change seen, never past `now`); a failed look is tried again soon.
fn release_for(
    settings: &FollowSettings,
    held: &CompanyFollow,
    learnt: Learnt,
    looked: Option<Result<Option<OffsetDateTime>, ()>>,
    now: OffsetDateTime,
) -> FollowRelease {
    let by_cadence = schedule::next_look(settings, &learnt.open, now);
    let (watermark, next_look_at) = match looked {
        Some(Ok(seen)) => {
            let latest = seen.map(|s| s.min(now));
            (learnt.watermark.max(latest), by_cadence)
        }
        Some(Err(())) => (learnt.watermark, Some(now + schedule::LOOK_RETRY)),
        // Not looked at: the look keeps its time, unless a new invoice needs one sooner.
        None => {
            let kept = held.next_look_at.filter(|_| !held.open.is_empty());
            let next = match (kept, by_cadence) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (learnt.watermark, next)
        }
    };
    FollowRelease {
        watermark,
        next_look_at: next_look_at.filter(|_| !learnt.open.is_empty()),
        open: learnt.open,
    }
}

/// The change search over the company's window, page after page, and a consultation of
/// each invoice that changed. `Ok(latest change seen)` when the whole window was read (to
/// its last page, within `search_max_pages`) and handled.
async fn look(
    state: &State,
    held: &CompanyFollow,
    learnt: &mut Learnt,
    visit: &mut Visit,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, ()> {
    let siret = &held.siret;
    let account = match state.store.get_account(siret).await {
        Ok(Some(account)) => account,
        // Deleted settings: nothing can be asked of Chorus Pro for this company any more
        // (each situation's own follow-up says so when it comes due): it leaves the index.
        Ok(None) => {
            learnt.open.clear();
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the account");
            return Err(());
        }
    };
    let settings = &state.config.follow;
    let from = learnt.watermark.unwrap_or(now) - settings.overlap;
    let to = now + settings.overlap;
    let mut latest: Option<OffsetDateTime> = None;
    let mut handled = true;
    let mut read_to_the_end = false;
    for page in 1..=settings.search_max_pages {
        visit.searches += 1;
        let search =
            SupplierInvoiceSearch::changed_between(from, to, page, settings.search_page_size);
        let found = match search_changes(state, &account, &search, now).await {
            Ok(found) => found,
            Err(()) => {
                visit.window_repeated = true;
                return Err(());
            }
        };
        for invoice in &found.liste_factures {
            visit.changes_seen += 1;
            let at = invoice
                .date_heure_etat_courant
                .as_deref()
                .and_then(parse_chorus_datetime);
            latest = latest.max(at);
            handled &= follow_change(state, held, learnt, visit, invoice, now).await;
        }
        let pages = found.parametres_retour.as_ref().map_or(1, |p| p.pages);
        if i64::from(page) >= pages {
            read_to_the_end = true;
            break;
        }
    }
    if !read_to_the_end {
        // Pages left past the cap: the order of the answers is not published, so what was
        // not read may have changed before the latest change read. The watermark stays
        // and the window is searched again (what was read is not consulted twice).
        tracing::warn!(
            pages = settings.search_max_pages,
            "more changes than one look reads: the window is searched again"
        );
    }
    if !handled || !read_to_the_end {
        visit.window_repeated = true;
        return Err(());
    }
    Ok(latest)
}

/// One page of the search; a refused password holds the company like any other call.
async fn search_changes(
    state: &State,
    account: &CompanyAccount,
    search: &SupplierInvoiceSearch,
    now: OffsetDateTime,
) -> Result<shared::chorus::SupplierInvoiceSearchResponse, ()> {
    let technical = match state.depositor.technical_account(account).await {
        Ok(technical) => technical,
        Err(e) => {
            tracing::warn!(error = %e, "no technical account to search with");
            return Err(());
        }
    };
    match state
        .chorus
        .search_supplier_invoices(&technical, search)
        .await
    {
        Ok(found) => Ok(found),
        Err(e) => {
            if matches!(e, ChorusError::CredentialsRejected) {
                state
                    .depositor
                    .credentials_refused(account, RejectionSource::StatusSync, now)
                    .await;
            }
            tracing::warn!(error = %e, "change search failed; the window is searched again");
            Err(())
        }
    }
}

/// Consults an invoice the search returned, when it is one of the company's open invoices
/// and its status differs from the one recorded (the overlap returns some twice).
/// `false` when its follow-up failed or could not read Chorus Pro.
async fn follow_change(
    state: &State,
    held: &CompanyFollow,
    learnt: &mut Learnt,
    visit: &mut Visit,
    invoice: &shared::chorus::SupplierInvoice,
    now: OffsetDateTime,
) -> bool {
    let Some(open) = learnt.open.get(&invoice.identifiant_facture_cpp).cloned() else {
        return true;
    };
    let status = invoice.statut.as_ref().map(|s| s.as_str());
    let key = (open.market_ref.clone(), open.number);
    if status == Some(open.status.as_str()) || learnt.followed.contains(&key) {
        return true;
    }
    visit.changes_followed += 1;
    let result = follow_keeping(
        state,
        &held.siret,
        &open.market_ref,
        open.number,
        now,
        Trigger::Changed,
    )
    .instrument(situation_span(&open.market_ref, open.number))
    .await;
    // A Chorus Pro failure is recorded on the situation as a back-off (`last_error`), not
    // returned: either way the change was not read, and the window is searched again.
    let handled = matches!(&result, Ok((_, Some(left))) if left.record.last_error.is_none());
    keep(visit, learnt, open.market_ref, open.number, result, now);
    handled
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::SiretCheck;
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-03 10:00 UTC);
    const MARK: OffsetDateTime = datetime!(2026-12-03 08:00 UTC);

    fn open(status: &str) -> BTreeMap<i64, OpenInvoice> {
        let invoice = OpenInvoice {
            market_ref: MarketRef::parse("M-1").unwrap(),
            number: SituationNumber::new(1).unwrap(),
            status: status.to_owned(),
        };
        BTreeMap::from([(7, invoice)])
    }

    fn held(status: &str, next: Option<OffsetDateTime>) -> CompanyFollow {
        CompanyFollow {
            siret: Siret::parse("21750001600019", SiretCheck::Full).unwrap(),
            lease_id: "lease".into(),
            watermark: Some(MARK),
            next_look_at: next,
            open: open(status),
        }
    }

    fn release(
        held: &CompanyFollow,
        looked: Option<Result<Option<OffsetDateTime>, ()>>,
    ) -> FollowRelease {
        let learnt = Learnt::new(held);
        release_for(&FollowSettings::default(), held, learnt, looked, NOW)
    }

    #[test]
    fn companies_are_visited_in_the_order_read() {
        let siret = |s: &str| Siret::parse(s, SiretCheck::ShapeOnly).unwrap();
        let (late, early) = (siret("99000000000002"), siret("11000000000001"));
        let mut companies = ToVisit::default();
        let first = (
            MarketRef::parse("M-1").unwrap(),
            SituationNumber::new(1).unwrap(),
        );
        companies.company(late.clone()).push(first.clone());
        companies.company(early.clone());
        companies.company(late.clone()).push(first.clone());
        let order: Vec<(Siret, usize)> = companies
            .order
            .into_iter()
            .map(|(s, due)| (s, due.len()))
            .collect();
        assert_eq!(order, vec![(late, 2), (early, 0)]);
    }

    #[test]
    fn a_complete_look_moves_the_watermark_to_the_latest_change_seen() {
        let company = held("MISE_A_DISPOSITION", Some(NOW));
        let seen = NOW - Duration::minutes(3);
        let done = release(&company, Some(Ok(Some(seen))));
        assert_eq!(done.watermark, Some(seen));
        assert_eq!(done.next_look_at, Some(NOW + Duration::minutes(60)));
        // Never past the gateway's clock (a status dated in the future).
        let ahead = release(&company, Some(Ok(Some(NOW + Duration::days(30)))));
        assert_eq!(ahead.watermark, Some(NOW));
        // Nothing seen: the watermark stays.
        assert_eq!(release(&company, Some(Ok(None))).watermark, Some(MARK));
    }

    #[test]
    fn a_failed_look_keeps_its_window_and_is_tried_again_soon() {
        let company = held("SERVICE_FAIT", Some(NOW));
        let failed = release(&company, Some(Err(())));
        assert_eq!(failed.watermark, Some(MARK));
        assert_eq!(failed.next_look_at, Some(NOW + schedule::LOOK_RETRY));
    }

    #[test]
    fn without_a_look_the_next_one_keeps_its_time_and_an_empty_company_leaves() {
        let later = NOW + Duration::hours(20);
        let kept = release(&held("SERVICE_FAIT", Some(later)), None);
        assert_eq!(
            (kept.watermark, kept.next_look_at),
            (Some(MARK), Some(later))
        );
        // A look further than the cadence of what is open is brought forward.
        let sooner = release(&held("MISE_A_DISPOSITION", Some(later)), None);
        assert_eq!(sooner.next_look_at, Some(NOW + Duration::minutes(60)));
        let mut empty = held("SERVICE_FAIT", Some(later));
        empty.open.clear();
        assert_eq!(release(&empty, None).next_look_at, None);
    }
}
