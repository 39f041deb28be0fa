//! The checks that deposit: an ordinary invoice (A1), a works statement (A4) and its
//! alternatives, the same number twice; then the settings the run recommends.
//! (docs/chorus-pro.md#exactly-once, #works-circuit, #works-flows-e4-e5, #ubl-choices.)

use std::time::{Duration, Instant};

use serde_json::json;
use shared::chorus::paths::{FLUX_DEPOSIT, FLUX_REPORT, SUPPLIER_INVOICES_SEARCH};
use shared::chorus::{
    FluxDeposit, FluxDepositResponse, FluxOutcome, FluxReport, FluxReportRequest, SupplierInvoice,
    SupplierInvoiceSearch, SupplierInvoiceSearchResponse, says_number_already_used,
};
use shared::domain::SiretCheck;
use shared::ubl::{self, CheckOptions};
use time::OffsetDateTime;
use transmit_invoice::request;

use super::Run;
use super::checks::to_json;
use super::report::{Check, Status, WorksTry};

/// `syntaxeFlux` values tried for a works statement with `QUALIFY_TRY_ALTERNATIVES=1`,
/// besides `FLUX_SYNTAX_WORKS` and any E4/E5 syntax `recuperer/formatflux` lists. No public
/// source gives the E4/E5 strings (docs/chorus-pro.md#works-flows-e4-e5): these follow the
/// E1/E2 pattern and are guesses for the platform to confirm or refuse.
pub const WORKS_SYNTAX_ALTERNATIVES: &[&str] =
    &["IN_DP_E4_UBL_INVOICE", "IN_DP_E5_UBL_INVOICE_MIN"];

/// Most syntax alternatives deposited in one run (each takes an invoice number).
const MAX_SYNTAX_ALTERNATIVES: usize = 5;

/// The SIRET `schemeID` the writer uses, and the older one OCA's UBL module sent
/// (docs/chorus-pro.md#ubl-choices).
const SCHEME_GATEWAY: &str = "schemeID=\"0009\"";
const SCHEME_ALTERNATIVE: &str = "schemeID=\"1\"";

/// A minimal PDF, the situation document every invoice embeds.
const PDF: &str = "JVBERi0xLjQKMSAwIG9iajw8Pj5lbmRvYmoKdHJhaWxlcjw8Pj4KJSVFT0YK";

/// An invoice built and checked by the gateway's path.
#[derive(Debug, Clone)]
pub struct Built {
    pub number: String,
    pub xml: String,
}

/// What became of one deposit.
enum Followed {
    /// `deposer/flux` refused it.
    Refused(String),
    /// The flux ended rejected (`IN_REJETE`, `IN_INCIDENTE`) with these reasons.
    Rejected { state: String, reasons: Vec<String> },
    /// Integrated; the invoice as `rechercher/fournisseur` found it, if it did.
    Integrated {
        flux: String,
        invoice: Option<Box<SupplierInvoice>>,
    },
    /// Still not final when the wait ran out, or unreadable.
    Unsettled(String),
}

/// Check 6: an ordinary invoice (A1), deposited, followed, found.
pub async fn ordinary(run: &mut Run<'_>) -> Check {
    let mut check = Check::new("6", "ordinary invoice A1: deposit, follow, find", true);
    let built = match build(run, "ordinary invoice A1 (check 6)", "A1", false) {
        Ok(built) => built,
        Err(error) => return check.finish(Status::Fail, error),
    };
    let syntax = run.settings.flux_syntax.clone();
    let followed = deposit_and_follow(run, &mut check, &built, &built.xml, &syntax).await;
    run.ordinary = Some(built.clone());
    verdict(check, &built.number, &syntax, followed)
}

/// Check 7: a works statement (A4) with the MOE as a UBL flux (`WORKS_SUBMISSION=ubl_flux`),
/// in `FLUX_SYNTAX_WORKS`; with alternatives, each other syntax and the other SIRET scheme,
/// each under its own number.
pub async fn works(run: &mut Run<'_>) -> Vec<Check> {
    let check = Check::new(
        "7",
        "works statement A4 as a UBL flux with the MOE (FLUX_SYNTAX_WORKS, schemeID 0009)",
        false,
    );
    if run.settings.moe_siret.is_none() {
        return vec![check.finish(Status::Skip, "no QUALIFY_MOE_SIRET")];
    }
    let configured = run.settings.flux_syntax_works.clone();
    let mut checks = vec![works_variant(run, check, &configured, false).await];
    if !run.settings.try_alternatives {
        return checks;
    }
    for (k, syntax) in syntax_alternatives(run).into_iter().enumerate() {
        let title = format!("works A4 alternative: syntaxeFlux {syntax}");
        let check = Check::new(&format!("7.{}", k + 1), &title, false);
        checks.push(works_variant(run, check, &syntax, false).await);
    }
    let check = Check::new("7.s", "works A4 alternative: SIRET schemeID 1", false);
    checks.push(works_variant(run, check, &configured, true).await);
    checks
}

async fn works_variant(run: &mut Run<'_>, check: Check, syntax: &str, scheme_1: bool) -> Check {
    let mut check = check.trying(WorksTry::UblFlux {
        syntax: syntax.to_owned(),
        gateway_scheme: !scheme_1,
    });
    let purpose = format!("works A4 (check {}), {syntax}", check.id);
    let built = match build(run, &purpose, "A4", true) {
        Ok(built) => built,
        Err(error) => return check.finish(Status::Fail, error),
    };
    let file = if scheme_1 {
        check.note("the gateway's file with every schemeID=\"0009\" replaced by schemeID=\"1\"");
        built.xml.replace(SCHEME_GATEWAY, SCHEME_ALTERNATIVE)
    } else {
        built.xml.clone()
    };
    check.note("the MOE is in cac:AccountingCustomerParty/cac:Party/cac:AgentParty (writer::write_project_manager)");
    let followed = deposit_and_follow(run, &mut check, &built, &file, syntax).await;
    if let Followed::Integrated {
        invoice: Some(found),
        ..
    } = &followed
    {
        check.note(format!(
            "status after integration: {} (a MOE status such as MISE_A_DISPOSITION_MOE would show the works circuit)",
            found.statut.as_ref().map_or("none", |s| s.as_str())
        ));
    }
    verdict(check, &built.number, syntax, followed)
}

/// The other syntaxes to try: the guesses, and what `recuperer/formatflux` listed for E4/E5.
fn syntax_alternatives(run: &Run<'_>) -> Vec<String> {
    let listed = run.formats.clone().unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    let candidates = WORKS_SYNTAX_ALTERNATIVES
        .iter()
        .map(|s| (*s).to_owned())
        .chain(
            listed
                .into_iter()
                .filter(|f| f.contains("_E4_") || f.contains("_E5_")),
        );
    for candidate in candidates {
        if candidate != run.settings.flux_syntax_works && !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out.truncate(MAX_SYNTAX_ALTERNATIVES);
    out
}

/// Check 8: the ordinary invoice's number deposited again: what Chorus Pro answers, and whether
/// the gateway recognises it as "number already used" (the exactly-once evidence).
pub async fn duplicate(run: &mut Run<'_>) -> Check {
    let mut check = Check::new("8", "same invoice number deposited twice", false);
    let Some(built) = run.ordinary.clone() else {
        return check.finish(Status::Skip, "no ordinary invoice was built (check 6)");
    };
    let syntax = run.settings.flux_syntax.clone();
    let followed = deposit_and_follow(run, &mut check, &built, &built.xml, &syntax).await;
    let number = &built.number;
    let (reasons, when) = match followed {
        Followed::Refused(reason) => (vec![reason], "at deposit"),
        Followed::Rejected { state, reasons } => {
            check.note(format!("the second flux ended {state}"));
            (reasons, "at integration")
        }
        Followed::Integrated { .. } => {
            return check.finish(
                Status::Fail,
                format!("{number} was integrated a second time: Chorus Pro does not refuse a used number, so exactly-once cannot take a refusal as evidence"),
            );
        }
        Followed::Unsettled(why) => return check.finish(Status::Fail, why),
    };
    let recognised = reasons.iter().any(|r| says_number_already_used(r));
    let quoted = reasons.join(" | ");
    if recognised {
        check.finish(
            Status::Pass,
            format!("second deposit of {number} refused {when}: \"{quoted}\"; the gateway recognises it as the number already used"),
        )
    } else {
        check.finish(
            Status::Fail,
            format!("second deposit of {number} refused {when}: \"{quoted}\"; the gateway does NOT recognise that wording (shared::chorus::says_number_already_used)"),
        )
    }
}

fn verdict(check: Check, number: &str, syntax: &str, followed: Followed) -> Check {
    match followed {
        Followed::Refused(reason) => check.finish(
            Status::Fail,
            format!("{number} as {syntax}: deposit refused: {reason}"),
        ),
        Followed::Rejected { state, reasons } => check.finish(
            Status::Fail,
            format!("{number} as {syntax}: flux {state}: {}", reasons.join(" | ")),
        ),
        Followed::Integrated { flux, invoice: Some(found) } => check.finish(
            Status::Pass,
            format!(
                "{number} as {syntax}: flux {flux} IN_INTEGRE; found by rechercher/fournisseur as identifiantFactureCPP {} ({})",
                found.identifiant_facture_cpp,
                found.statut.as_ref().map_or("no status", |s| s.as_str())
            ),
        ),
        Followed::Integrated { flux, invoice: None } => check.finish(
            Status::Fail,
            format!("{number} as {syntax}: flux {flux} IN_INTEGRE but rechercher/fournisseur by numeroFacture does not find it"),
        ),
        Followed::Unsettled(why) => check.finish(Status::Fail, format!("{number} as {syntax}: {why}")),
    }
}

/// Deposits `file` as the invoice `built`, follows its flux to a final state (bounded by
/// `QUALIFY_WAIT_SECONDS`), then searches the invoice by number.
async fn deposit_and_follow(
    run: &mut Run<'_>,
    check: &mut Check,
    built: &Built,
    file: &str,
    syntax: &str,
) -> Followed {
    let mut deposit = FluxDeposit::ubl(
        transmit_invoice::flux_file_name(&built.number),
        file.as_bytes(),
    );
    deposit.syntaxe_flux = syntax.to_owned();
    let answer = run
        .exchange(check, &run.account, FLUX_DEPOSIT, &to_json(&deposit))
        .await
        .and_then(|probe| probe.read::<FluxDepositResponse>());
    let flux = match answer {
        Ok(done) => done.numero_flux_depot,
        Err(error) => return Followed::Refused(error.to_string()),
    };
    let report = match follow(run, check, &flux).await {
        Ok(report) => report,
        Err(why) => return Followed::Unsettled(why),
    };
    let state = report
        .etat_courant_depot_flux
        .as_ref()
        .map_or(String::new(), |s| s.as_str().to_owned());
    match report.etat_courant_depot_flux.map(|s| s.outcome()) {
        Some(FluxOutcome::Integrated) => Followed::Integrated {
            invoice: find(run, check, &built.number).await.map(Box::new),
            flux,
        },
        Some(FluxOutcome::Rejected) => Followed::Rejected {
            state,
            reasons: report
                .liste_erreur_dp
                .iter()
                .filter_map(|e| e.libelle_erreur_dp.clone())
                .chain(
                    report
                        .liste_erreur_technique
                        .iter()
                        .filter_map(|e| e.libelle_erreur.clone()),
                )
                .collect(),
        },
        _ => Followed::Unsettled(format!(
            "flux {flux} ended {state}, neither integrated nor rejected"
        )),
    }
}

/// `consulterCRDetaille` until the flux is no longer pending; the first and the last
/// answers are recorded (a real flux may take dozens of reads).
async fn follow(run: &Run<'_>, check: &mut Check, flux: &str) -> Result<FluxReport, String> {
    let request = to_json(&FluxReportRequest::new(flux));
    let deadline = Instant::now() + run.settings.wait;
    let mut pause = run.settings.poll_start;
    let mut reads = 0;
    loop {
        reads += 1;
        let mut scratch = Check::new("", "", false);
        let answer = run
            .exchange(&mut scratch, &run.account, FLUX_REPORT, &request)
            .await
            .and_then(|probe| probe.read::<FluxReport>());
        let done = match &answer {
            Ok(report) => report.etat_courant_depot_flux.as_ref().is_some_and(|s| {
                !matches!(s.outcome(), FluxOutcome::Pending | FluxOutcome::Unknown)
            }),
            Err(_) => true,
        };
        let timed_out = Instant::now() + pause > deadline;
        if reads == 1 || done || timed_out {
            check.exchanges.append(&mut scratch.exchanges);
        }
        if done || timed_out {
            check.note(format!(
                "flux {flux} read {reads} time(s) with consulterCRDetaille"
            ));
            return match answer {
                Ok(report) if done => Ok(report),
                Ok(report) => Err(format!(
                    "flux {flux} still {} after {} s (QUALIFY_WAIT_SECONDS)",
                    report
                        .etat_courant_depot_flux
                        .map_or(String::new(), |s| s.as_str().to_owned()),
                    run.settings.wait.as_secs()
                )),
                Err(error) => Err(format!("consulterCRDetaille: {error}")),
            };
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2)
            .min(run.settings.poll_max)
            .max(Duration::from_millis(1));
    }
}

/// `rechercher/fournisseur` by invoice number: the invoice with exactly that number.
async fn find(run: &Run<'_>, check: &mut Check, number: &str) -> Option<SupplierInvoice> {
    let request = to_json(&SupplierInvoiceSearch::by_invoice_number(number));
    let answer = run
        .exchange(check, &run.account, SUPPLIER_INVOICES_SEARCH, &request)
        .await
        .and_then(|probe| probe.read_search::<SupplierInvoiceSearchResponse>());
    match answer {
        Ok(found) => {
            let count = found.liste_factures.len();
            if count > 1 {
                check.note(format!("{count} invoices found for {number}"));
            }
            found
                .liste_factures
                .into_iter()
                .find(|i| i.numero_facture == number)
        }
        Err(error) => {
            check.note(format!("rechercher/fournisseur: {error}"));
            None
        }
    }
}

/// Builds an invoice through the transmission's own path: the request JSON parsed by
/// `transmit_invoice::request`, completed with the market's data, checked and written by
/// `ubl::prepare`.
fn build(run: &mut Run<'_>, purpose: &str, framework: &str, works: bool) -> Result<Built, String> {
    let (number, _, prepared) = build_invoice(run, purpose, framework, works)?;
    Ok(Built {
        number,
        xml: prepared.xml,
    })
}

/// An invoice built and checked by the gateway's path: its number, the invoice and what
/// `ubl::prepare` made of it.
pub(super) fn build_invoice(
    run: &mut Run<'_>,
    purpose: &str,
    framework: &str,
    works: bool,
) -> Result<(String, ubl::Invoice, ubl::PreparedInvoice), String> {
    let number = run.number(purpose)?;
    let today = OffsetDateTime::now_utc().date();
    let body = request_body(run, today);
    let raw = request::parse(body.to_string().as_bytes()).map_err(|p| p.detail)?;
    let project_manager = works.then(|| ubl::ProjectManager {
        siret: run.settings.moe_siret.clone().unwrap_or_default(),
        service_code: run.settings.moe_service.clone(),
    });
    let context = request::Context {
        invoice_number: &number,
        seller_siret: &run.settings.supplier_siret,
        buyer_siret: &run.settings.buyer_siret,
        framework,
        market_number: "QUAL-MARCHE-2026",
        commitment_number: run.commitment.as_deref(),
        buyer_service_code: run.settings.buyer_service.as_deref(),
        project_manager,
    };
    let invoice = request::to_invoice(raw, &context).map_err(|p| {
        let fields: Vec<String> = p
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        format!("{} {}", p.detail, fields.join("; "))
    })?;
    let options = CheckOptions {
        siret_check: if run.settings.sandbox {
            SiretCheck::ShapeOnly
        } else {
            SiretCheck::Full
        },
        max_total_file_bytes: ubl::MAX_TOTAL_FILE_BYTES,
        today: today.next_day(),
    };
    let prepared = ubl::prepare(&invoice, &options).map_err(|violations| {
        let rules: Vec<String> = violations
            .iter()
            .map(|v| format!("{}: {}", v.rule_id, v.message_fr))
            .collect();
        format!("the gateway refuses its own invoice: {}", rules.join("; "))
    })?;
    Ok((number, invoice, prepared))
}

/// A transmission request (contract, "Transmission") for the configured parties.
fn request_body(run: &Run<'_>, today: time::Date) -> serde_json::Value {
    let seller_name = run
        .supplier
        .as_ref()
        .and_then(|s| s.designation_structure.clone())
        .unwrap_or_else(|| "FOURNISSEUR QUALIFICATION".to_owned());
    let buyer_name = run
        .buyer
        .as_ref()
        .and_then(|b| b.designation_structure.clone())
        .unwrap_or_else(|| "ACHETEUR PUBLIC".to_owned());
    let iso = |d: time::Date| shared::clock::iso_date(d);
    json!({
        "issue_date": iso(today),
        "due_date": iso(today + time::Duration::days(30)),
        "currency": "EUR",
        "seller": {
            "name": seller_name,
            "vat_id": french_vat(&run.settings.supplier_siret),
            "address": {"line1": "1 rue de la Qualification", "city": "Lyon", "postal_code": "69001", "country": "FR"},
            "iban": "FR7630006000011234567890189",
            "bic": "AGRIFRPP"
        },
        "buyer": {
            "name": buyer_name,
            "address": {"line1": "1 place de la Mairie", "city": "Lyon", "postal_code": "69001", "country": "FR"}
        },
        "lines": [{"id": "1", "description": "Qualification Chorus Pro, travaux du mois", "quantity": "1",
                   "unit": "C62", "unit_price": "1000.00", "vat_category": "S", "vat_rate": "20.00"}],
        "note": "Facture de qualification, sans valeur",
        "document": {"filename": "qualification.pdf", "content_base64": PDF}
    })
}

/// `FR` + key + SIREN, the French VAT number of a SIRET's company (the check CPRO-TVA-01
/// compares them).
fn french_vat(siret: &str) -> Option<String> {
    let siren: u64 = siret.get(..9)?.parse().ok()?;
    Some(format!("FR{:02}{:09}", (12 + 3 * (siren % 97)) % 97, siren))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_number_follows_the_siren() {
        assert_eq!(
            french_vat("81234567600017").as_deref(),
            Some("FR19812345676")
        );
        assert_eq!(french_vat("8123"), None);
    }
}
