//! `GET /v1/companies/{siret}/situations?state=&chorus_status=&overdue=&limit=&cursor=`:
//! every situation of the company across its markets, one page at a time in JSON, or every
//! page at once as CSV (`Accept: text/csv`) for the company's accounting.
//!
//! The rows come from one query on the company's partition (`store::company`); each
//! situation's payment clock uses its market's buyer category (the markets are read once).

use std::collections::HashMap;

use lambda_http::{Body, Request, RequestExt, Response};
use shared::chorus::InvoiceStatus;
use shared::domain::payment::{BuyerCategory, PaymentClock, PaymentTerms};
use shared::domain::transmission::TransmissionState;
use shared::domain::{MarketRef, Siret, SituationNumber};
use shared::http::json::text_response;
use shared::http::{FieldError, Problem, json_response, path_siret, store_problem};
use shared::store::company::{CompanyCursor, SituationFilter};
use shared::view::SituationView;

use crate::{PathParams, State, paging};

/// The cursor kind of this list (`paging`): a market list's or a market's situations'
/// cursor is refused here.
const CURSOR_KIND: &str = "c";

/// Every page of the CSV export is read this many situations at a time.
const EXPORT_PAGE: u16 = paging::MAX_LIMIT;

/// Reads the three filters; every unknown value is one field error.
fn read_filter(request: &Request) -> Result<SituationFilter, Vec<FieldError>> {
    let query = request.query_string_parameters_ref();
    let get = |name: &str| {
        query
            .and_then(|q| q.first(name))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut errors = Vec::new();
    let mut filter = SituationFilter::default();
    if let Some(raw) = get("state") {
        filter.state = TransmissionState::parse(&raw);
        if filter.state.is_none() {
            let known: Vec<&str> = TransmissionState::ALL.iter().map(|s| s.as_str()).collect();
            errors.push(unknown_value("state", &raw, &known));
        }
    }
    if let Some(raw) = get("chorus_status") {
        if InvoiceStatus::KNOWN.contains(&raw.as_str()) {
            filter.chorus_status = Some(raw);
        } else {
            errors.push(unknown_value("chorus_status", &raw, InvoiceStatus::KNOWN));
        }
    }
    if let Some(raw) = get("overdue") {
        match raw.as_str() {
            "true" => filter.overdue = Some(true),
            "false" => filter.overdue = Some(false),
            _ => errors.push(unknown_value("overdue", &raw, &["true", "false"])),
        }
    }
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(errors)
    }
}

fn unknown_value(field: &str, raw: &str, known: &[&str]) -> FieldError {
    FieldError::new(
        field,
        "unknown_filter_value",
        format!(
            "Le filtre {field} ne connaît pas la valeur « {raw} ». Valeurs acceptées : {}.",
            known.join(", ")
        ),
    )
}

/// `{market_ref}#{number}`, re-parsed as domain values: a forged cursor is refused.
fn cursor_key(cursor: &CompanyCursor) -> String {
    format!("{}#{}", cursor.0, cursor.1.get())
}

fn parse_cursor(raw: &str) -> Option<CompanyCursor> {
    let (market_ref, number) = raw.rsplit_once('#')?;
    Some((
        MarketRef::parse(market_ref).ok()?,
        SituationNumber::parse(number).ok()?,
    ))
}

fn wants_csv(request: &Request) -> bool {
    request
        .headers()
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/csv"))
}

/// The route: the filters, the page, then JSON or CSV.
pub async fn list(
    state: &State,
    path: &PathParams,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let siret = path_siret(&path.siret)?;
    let filter = read_filter(request);
    let page = paging::read(request, CURSOR_KIND);
    let (filter, page) = match (filter, page) {
        (Ok(filter), Ok(page)) => (filter, page),
        (filter, page) => {
            let mut errors = filter.err().unwrap_or_default();
            errors.extend(page.err().unwrap_or_default());
            return Err(Problem::validation(errors));
        }
    };
    let after = page
        .after
        .map(|raw| {
            parse_cursor(&raw).ok_or_else(|| Problem::validation(vec![paging::invalid_cursor()]))
        })
        .transpose()?;
    let categories = state
        .store
        .market_categories(&siret)
        .await
        .map_err(|e| store_problem(&e))?;
    let rows = Rows {
        state,
        categories: &categories,
    };
    if wants_csv(request) {
        let views = rows.all(&siret, &filter, after).await?;
        return csv_response(&views);
    }
    let found = state
        .store
        .list_company_situations(&siret, &filter, page.limit, after.as_ref())
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(json_response(
        200,
        &paging::SituationPage {
            situations: found.items.iter().map(|s| rows.view(s)).collect(),
            next_cursor: found
                .next_after
                .map(|c| paging::encode(CURSOR_KIND, &cursor_key(&c))),
        },
    ))
}

/// Turns situations into views with their market's payment terms.
struct Rows<'a> {
    state: &'a State,
    categories: &'a HashMap<MarketRef, BuyerCategory>,
}

impl Rows<'_> {
    fn view(&self, situation: &shared::domain::Situation) -> SituationView {
        let terms = PaymentTerms::at(
            self.categories.get(&situation.market_ref).copied(),
            &self.state.config.late_payment_rates,
            self.state.clock.now(),
        );
        situation.view(terms)
    }

    /// Every page from `after` on, for the export: each view, and whether its invoice is
    /// payable at all (not when a new number is needed: `Transmission::needs_new_number`).
    async fn all(
        &self,
        siret: &Siret,
        filter: &SituationFilter,
        mut after: Option<CompanyCursor>,
    ) -> Result<Vec<(SituationView, bool)>, Problem> {
        let mut views = Vec::new();
        loop {
            let found = self
                .state
                .store
                .list_company_situations(siret, filter, EXPORT_PAGE, after.as_ref())
                .await
                .map_err(|e| store_problem(&e))?;
            views.extend(
                found
                    .items
                    .iter()
                    .map(|s| (self.view(s), !s.transmission.needs_new_number())),
            );
            match found.next_after {
                Some(next) => after = Some(next),
                None => return Ok(views),
            }
        }
    }
}

/// One line of the export: what an accountant follows, amounts with a decimal comma (the
/// `;` separator is the one French spreadsheets expect, and so is the comma).
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    market_ref: &'a str,
    number: u16,
    invoice_number: &'a str,
    period: &'a str,
    state: &'a str,
    chorus_status: &'a str,
    chorus_invoice_id: String,
    amount_due: String,
    buyer_category: &'a str,
    deadline_days: i64,
    clock_started_at: &'a str,
    due_on: String,
    paid_on: String,
    overdue: &'a str,
    days_late: String,
    late_interest: String,
    fixed_indemnity: String,
    interest_rate: String,
    next_action: &'a str,
    updated_at: &'a str,
}

fn comma(value: Option<rust_decimal::Decimal>) -> String {
    value
        .map(|v| {
            // Two places, or the rate as configured when it has more (`10.125`).
            let exact = v.normalize();
            let text = match exact.scale() > 2 {
                true => exact.to_string(),
                false => format!("{v:.2}"),
            };
            text.replace('.', ",")
        })
        .unwrap_or_default()
}

fn date(value: Option<time::Date>) -> String {
    value.map(shared::clock::iso_date).unwrap_or_default()
}

fn csv_row(view: &SituationView, payable: bool) -> CsvRow<'_> {
    let p: &PaymentClock = &view.payment;
    let overdue = p.days_late.is_some_and(|d| d > 0) && p.paid_on.is_none() && payable;
    CsvRow {
        market_ref: &view.market_ref,
        number: view.number,
        invoice_number: &view.invoice_number,
        period: view.period.as_deref().unwrap_or_default(),
        state: view.transmission.state,
        chorus_status: view
            .transmission
            .chorus_status
            .as_deref()
            .unwrap_or_default(),
        chorus_invoice_id: view
            .transmission
            .chorus_invoice_id
            .map(|i| i.to_string())
            .unwrap_or_default(),
        amount_due: comma(p.amount_due),
        buyer_category: p.buyer_category,
        deadline_days: p.deadline_days,
        clock_started_at: p.clock_started_at.as_deref().unwrap_or_default(),
        due_on: date(p.due_on),
        paid_on: date(p.paid_on),
        overdue: if overdue { "oui" } else { "non" },
        days_late: p.days_late.map(|d| d.to_string()).unwrap_or_default(),
        late_interest: comma(p.late_interest),
        fixed_indemnity: comma(p.fixed_indemnity),
        interest_rate: comma(p.interest_rate),
        next_action: view.next_action.as_deref().unwrap_or_default(),
        updated_at: &view.updated_at,
    }
}

/// The export: UTF-8 with a byte-order mark (so that a spreadsheet reads the accents),
/// `;`-separated, one header line.
fn csv_response(views: &[(SituationView, bool)]) -> Result<Response<Body>, Problem> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    for (view, payable) in views {
        writer.serialize(csv_row(view, *payable)).map_err(|e| {
            tracing::error!(error = %e, "CSV row not written");
            Problem::internal()
        })?;
    }
    let bytes = writer.into_inner().map_err(|e| {
        tracing::error!(error = %e, "CSV not finished");
        Problem::internal()
    })?;
    let text = String::from_utf8(bytes).map_err(|_| Problem::internal())?;
    Ok(text_response(
        lambda_http::http::StatusCode::OK,
        text,
        &[
            ("content-type", "text/csv; charset=utf-8"),
            (
                "content-disposition",
                "attachment; filename=\"situations.csv\"",
            ),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_name_a_situation_or_are_refused() {
        let m = MarketRef::parse("gymnase-2026").unwrap();
        let key = cursor_key(&(m.clone(), SituationNumber::new(12).unwrap()));
        assert_eq!(key, "gymnase-2026#12");
        assert_eq!(
            parse_cursor(&key),
            Some((m, SituationNumber::new(12).unwrap()))
        );
        assert_eq!(parse_cursor("gymnase-2026"), None);
        assert_eq!(parse_cursor("gymnase-2026#0"), None);
        assert_eq!(parse_cursor("#3"), None);
        assert_eq!(parse_cursor("a b#3"), None);
    }

    #[test]
    fn amounts_take_a_decimal_comma() {
        let d = |s: &str| s.parse::<rust_decimal::Decimal>().ok();
        assert_eq!(comma(d("64.5")), "64,50");
        assert_eq!(comma(d("15949.99")), "15949,99");
        assert_eq!(comma(d("10.125")), "10,125");
        assert_eq!(comma(None), "");
    }
}
