//! Check 6.c: the change search the follow-up relies on (docs/chorus-pro.md,
//! "Change-driven follow-up", unconfirmed item 24): `rechercher/fournisseur` with
//! `periodeDateHeureEtatCourantDu`/`Au` finds the invoice check 6 deposited within a period
//! around now, not within a period that ended before it; the `dateHeureEtatCourant` form
//! Chorus Pro sends is noted.

use serde_json::Value;
use shared::chorus::paths::SUPPLIER_INVOICES_SEARCH;
use shared::chorus::{SupplierInvoiceSearch, SupplierInvoiceSearchResponse};
use time::{Duration, OffsetDateTime};

use super::Run;
use super::report::{Check, Status};

/// Pages read at most per search (100 invoices each).
const MAX_PAGES: u32 = 5;

/// Whether the invoice `number` is among those whose status was set between `from` and
/// `to` (every page up to `MAX_PAGES`); `Err` when a search failed.
async fn changed_within(
    run: &Run<'_>,
    check: &mut Check,
    number: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Option<Option<String>>, String> {
    let account = run.account.clone();
    for page in 1..=MAX_PAGES {
        let search = SupplierInvoiceSearch::changed_between(from, to, page, 100);
        let body = serde_json::to_value(&search).unwrap_or(Value::Null);
        let found: SupplierInvoiceSearchResponse = run
            .exchange(check, &account, SUPPLIER_INVOICES_SEARCH, &body)
            .await
            .and_then(|probe| probe.read_search())
            .map_err(|e| format!("{SUPPLIER_INVOICES_SEARCH}: {e}"))?;
        if let Some(invoice) = found
            .liste_factures
            .iter()
            .find(|i| i.numero_facture == number)
        {
            return Ok(Some(invoice.date_heure_etat_courant.clone()));
        }
        let pages = found.parametres_retour.as_ref().map_or(1, |p| p.pages);
        if i64::from(page) >= pages {
            break;
        }
    }
    Ok(None)
}

/// Check 6.c (optional): the change search, around now and before the deposit.
pub async fn change_search(run: &mut Run<'_>) -> Check {
    let mut check = Check::new(
        "6.c",
        "change search (rechercher/fournisseur by periodeDateHeureEtatCourantDu/Au)",
        false,
    );
    let Some(number) = run.ordinary.as_ref().map(|b| b.number.clone()) else {
        return check.finish(Status::Skip, "no invoice deposited by check 6");
    };
    let now = OffsetDateTime::now_utc();
    let around = changed_within(
        run,
        &mut check,
        &number,
        now - Duration::days(1),
        now + Duration::hours(3),
    )
    .await;
    let before = changed_within(
        run,
        &mut check,
        &number,
        now - Duration::days(3),
        now - Duration::days(2),
    )
    .await;
    match (around, before) {
        (Err(e), _) | (_, Err(e)) => check.finish(Status::Fail, e),
        (Ok(Some(at)), Ok(None)) => {
            check.note(format!("dateHeureEtatCourant as sent: {at:?}"));
            check.finish(Status::Pass, format!("{number} found changed within the last day, not two days ago"))
        }
        (Ok(None), _) => check.finish(
            Status::Fail,
            format!("{number} not found by a period around now: the fields may be ignored or read otherwise"),
        ),
        (Ok(Some(_)), Ok(Some(_))) => check.finish(
            Status::Fail,
            format!("{number} found by a period that ended two days ago: the period is ignored"),
        ),
    }
}
