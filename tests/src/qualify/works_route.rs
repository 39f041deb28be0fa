//! Check 7.w: a works statement (A4) by the works route the gateway uses by default
//! (`WORKS_SUBMISSION=pdf_api`): its PDF added with `transverses/v1/ajouter/fichier`, then
//! `factures/v1/soumettre` in `DEPOT_PDF_API` mode with the MOE as validator; then looked
//! for with `facturesTravaux/v1/rechercher` and read with `facturesTravaux/v1/consulter`.
//! Passes when the platform took it and shows it in the MOE's hands (a `…_MOE` status):
//! that settles docs/chorus-pro.md#unconfirmed items 21 and 22.

use std::time::Instant;

use shared::chorus::paths::{
    FILE_UPLOAD, INVOICE_SUBMIT, WORKS_INVOICE_READ, WORKS_INVOICES_SEARCH,
};
use shared::chorus::{
    FileUpload, FileUploadResponse, InvoiceSubmissionResponse, MainAttachment, WorksInvoiceRead,
    WorksInvoiceReadResponse, WorksInvoiceSearch, WorksInvoiceSearchResponse,
};
use shared::domain::Framework;
use shared::works::works_payload;

use super::Run;
use super::checks::to_json;
use super::deposits::build_invoice;
use super::report::{Check, Status, WorksTry};

pub async fn submit(run: &mut Run<'_>) -> Check {
    let mut check = Check::new(
        "7.w",
        "works A4 by the works route (soumettre DEPOT_PDF_API, MOE as validator)",
        false,
    )
    .trying(WorksTry::PdfApi);
    if run.settings.moe_siret.is_none() {
        return check.finish(Status::Skip, "no QUALIFY_MOE_SIRET");
    }
    let (number, invoice, prepared) = match build_invoice(run, "works A4 (check 7.w)", "A4", true) {
        Ok(built) => built,
        Err(error) => return check.finish(Status::Fail, error),
    };
    let supplier = run.supplier.as_ref().map(|s| s.id_structure_cpp);
    let payload = match works_payload(&invoice, &prepared.totals, Framework::A4, supplier) {
        Ok(payload) => payload,
        Err(error) => return check.finish(Status::Fail, error.0),
    };
    let upload = FileUpload::new(
        &payload.pdf_name,
        &payload.pdf_mime,
        payload.pdf_base64.clone(),
    );
    let added = run
        .exchange(&mut check, &run.account, FILE_UPLOAD, &to_json(&upload))
        .await
        .and_then(|probe| probe.read::<FileUploadResponse>());
    let added = match added {
        Ok(added) => added,
        Err(error) => return check.finish(Status::Fail, format!("ajouter/fichier: {error}")),
    };
    let mut submission = payload.submission;
    submission.piece_jointe_principale = vec![MainAttachment {
        piece_jointe_principale_designation: payload.pdf_name,
        piece_jointe_principale_id: added.piece_jointe_id,
    }];
    let done = run
        .exchange(
            &mut check,
            &run.account,
            INVOICE_SUBMIT,
            &to_json(&submission),
        )
        .await
        .and_then(|probe| probe.read::<InvoiceSubmissionResponse>());
    let id = match done {
        Ok(done) => done.identifiant_facture_cpp,
        Err(error) => {
            return check.finish(
                Status::Fail,
                format!("{number}: soumettre refused: {error}"),
            );
        }
    };
    check.note(format!("soumettre answered identifiantFactureCPP {id:?}"));
    let status = find_status(run, &mut check, &number).await;
    if let Some(id) = id {
        read_document(run, &mut check, id).await;
    }
    match status {
        Some(status) if status.ends_with("_MOE") => check.finish(
            Status::Pass,
            format!("{number}: submitted, found among works documents in {status}: keep WORKS_SUBMISSION=pdf_api"),
        ),
        Some(status) => check.finish(
            Status::Fail,
            format!("{number}: submitted, found among works documents in {status}, not a MOE status: see the portal before choosing WORKS_SUBMISSION"),
        ),
        None => check.finish(
            Status::Fail,
            format!("{number}: submitted, but rechercherFactureTravaux does not find it"),
        ),
    }
}

/// `rechercherFactureTravaux` by number until found or `QUALIFY_WAIT_SECONDS`: its status.
async fn find_status(run: &Run<'_>, check: &mut Check, number: &str) -> Option<String> {
    let request = to_json(&WorksInvoiceSearch::by_number(number));
    let deadline = Instant::now() + run.settings.wait;
    let mut pause = run.settings.poll_start;
    loop {
        let answer = run
            .exchange(check, &run.account, WORKS_INVOICES_SEARCH, &request)
            .await
            .and_then(|probe| probe.read_search::<WorksInvoiceSearchResponse>());
        let found = answer.ok().and_then(|found| {
            found
                .liste_factures_travaux
                .into_iter()
                .find(|d| d.numero_facture_travaux == number)
        });
        let status = found.map(|doc| doc.statut_facture_travaux.unwrap_or_default());
        // Chorus Pro takes a moment to hand a deposited document to the MOE.
        let settled = status
            .as_deref()
            .is_some_and(|s| s != "DEPOSEE" && !s.is_empty());
        if settled || Instant::now() + pause > deadline {
            return status;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(run.settings.poll_max);
    }
}

async fn read_document(run: &Run<'_>, check: &mut Check, id: i64) {
    let request = to_json(&WorksInvoiceRead {
        id_facture_travaux: id,
    });
    let read = run
        .exchange(check, &run.account, WORKS_INVOICE_READ, &request)
        .await
        .and_then(|probe| probe.read::<WorksInvoiceReadResponse>());
    match read {
        Ok(read) => check.note(format!(
            "consulterFactureTravaux: status {:?}, montantHT {:?}",
            read.facture_travaux.statut_facture_travaux, read.facture_travaux.montant_ht
        )),
        Err(error) => check.note(format!("consulterFactureTravaux: {error}")),
    }
}
