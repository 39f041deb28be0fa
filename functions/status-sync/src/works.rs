//! The follow-up of a works statement (docs/chorus-pro.md#works-circuit): its own statuses
//! as for any invoice (the MOE's receipt, review, refusal, completion request…), then the
//! documents that followed it (`pieceSuivante`: the MOE's état d'acompte, then the MOA's),
//! each read with `consulterFactureTravaux`, to the payment of the last one. What was
//! claimed and what the MOE admitted are recorded with them (`works` of the view); the
//! payment of the last document is written into the situation's history as
//! `MISE_EN_PAIEMENT`: the situation is then paid (`Situation::paid_on`, the one rule of
//! the clock, the overdue pass and list, and the payment's event), its own status unchanged.
//!
//! The follow-up ends when the statement's own status ends it without handing over
//! (`REFUSEE_MOE`), or when the last following document's does (`MISE_EN_PAIEMENT`,
//! `REFUSEE_MOA`): the rules are `InvoiceStatus::ends_works_document` and `hands_over`.

use shared::chorus::{
    ChorusError, InvoiceStatus, TechnicalAccount, WorksInvoice, WorksInvoiceRead,
    parse_chorus_datetime,
};
use shared::deposit::DepositError;
use shared::domain::CompanyAccount;
use shared::domain::situation::StatusEntry;
use shared::domain::transmission::{TransmissionState, follow_up_delay};
use shared::domain::works::{FollowingDocument, WorksProgress, parse_amount, short_framework};
use shared::store::transmission::{Change, Tracked};
use time::OffsetDateTime;

use super::State;

/// At most this many documents after the statement (A16, A19, and room for one more).
const MAX_CHAIN: usize = 4;

/// Whether this transmission is followed through the works circuit.
pub fn is_works(tracked: &Tracked) -> bool {
    shared::works::followed_as_works(tracked)
}

/// One look at a works statement: its statuses (the ordinary step), then its documents.
pub async fn follow(
    state: &State,
    tracked: Tracked,
    account: &CompanyAccount,
    now: OffsetDateTime,
) -> Result<Tracked, DepositError> {
    let after_statuses = super::follow_invoice(state, tracked, account, now).await?;
    if after_statuses.record.last_error.is_some() {
        // Chorus Pro did not answer the statuses: the ordinary back-off stands.
        return Ok(after_statuses);
    }
    let Some(id) = after_statuses.situation.transmission.chorus_invoice_id else {
        return Ok(after_statuses);
    };
    let technical = state.depositor.technical_account(account).await?;
    let chain = match read_chain(state, &technical, id).await {
        Ok(chain) => chain,
        Err(e) => {
            tracing::warn!(error = %e, "works documents unreadable; looked at again later");
            return Ok(after_statuses);
        }
    };
    record(state, &after_statuses, chain, now).await
}

/// The statement and the documents that followed it, in order.
async fn read_chain(
    state: &State,
    technical: &TechnicalAccount,
    id: i64,
) -> Result<Vec<WorksInvoice>, ChorusError> {
    let mut chain = Vec::new();
    let mut next = Some(id);
    while let Some(id) = next.take() {
        if chain.len() > MAX_CHAIN {
            break;
        }
        let read = state
            .chorus
            .read_works_invoice(
                technical,
                &WorksInvoiceRead {
                    id_facture_travaux: id,
                },
            )
            .await?;
        let doc = read.facture_travaux;
        next = doc
            .piece_suivante
            .as_ref()
            .map(|p| p.id_piece_suivante)
            .filter(|n| *n != id && *n != 0);
        chain.push(doc);
    }
    Ok(chain)
}

/// What the chain says, as the situation keeps it.
fn progress_of(tracked: &Tracked, chain: &[WorksInvoice]) -> WorksProgress {
    let history = &tracked.situation.transmission.status_history;
    let received_by_moe_at = history
        .iter()
        .find(|e| e.status == "MISE_A_DISPOSITION_MOE")
        .map(|e| e.at);
    let statement = chain.first();
    let following: Vec<FollowingDocument> = chain
        .iter()
        .skip(1)
        .map(|d| FollowingDocument {
            framework: short_framework(d.cadre_facturation.as_deref().unwrap_or("?")),
            chorus_id: d.id_facture_travaux,
            number: Some(d.numero_facture_travaux.clone()).filter(|n| !n.is_empty()),
            status: d.statut_facture_travaux.clone(),
            amount_to_pay: parse_amount(d.montant_a_payer.as_deref()),
            at: d
                .date_statut_facture_travaux
                .as_deref()
                .and_then(parse_chorus_datetime),
        })
        .collect();
    WorksProgress {
        moe_status: statement
            .and_then(|d| d.statut_facture_travaux.clone())
            .or_else(|| tracked.situation.transmission.chorus_status.clone()),
        received_by_moe_at,
        amount_claimed: statement.and_then(|d| parse_amount(d.montant_ht.as_deref())),
        // What the MOE admitted: the HT amount of its état d'acompte (the first document
        // after the statement), which may differ from the claim (AIFE: the MOE corrects).
        amount_accepted: chain
            .get(1)
            .and_then(|d| parse_amount(d.montant_ht.as_deref())),
        following_documents: following,
    }
}

/// Whether nothing more is to be awaited for this statement.
fn circuit_ended(progress: &WorksProgress) -> bool {
    let own = InvoiceStatus::from(progress.moe_status.as_deref().unwrap_or_default());
    if !own.ends_works_document() {
        return false;
    }
    if !own.hands_over() {
        return true;
    }
    progress
        .last_document()
        .and_then(|d| d.status.as_deref())
        .map(InvoiceStatus::from)
        .is_some_and(|s| s.ends_works_document() && !s.hands_over())
}

/// The payment of the last document, once, in the situation's history.
fn payment_entry(
    tracked: &Tracked,
    progress: &WorksProgress,
    now: OffsetDateTime,
) -> Option<StatusEntry> {
    let last = progress.last_document()?;
    if last.status.as_deref() != Some("MISE_EN_PAIEMENT") {
        return None;
    }
    let history = &tracked.situation.transmission.status_history;
    if history.iter().any(|e| e.status == "MISE_EN_PAIEMENT") {
        return None;
    }
    let amount = last
        .amount_to_pay
        .map_or_else(String::new, |a| format!(", montant à payer {a:.2} €"));
    Some(StatusEntry {
        at: last.at.unwrap_or(now),
        status: "MISE_EN_PAIEMENT".into(),
        comment: Some(format!(
            "Mise en paiement de la pièce suivante {} n° {}{amount}",
            last.framework,
            last.number
                .clone()
                .unwrap_or_else(|| last.chorus_id.to_string())
        )),
    })
}

async fn record(
    state: &State,
    tracked: &Tracked,
    chain: Vec<WorksInvoice>,
    now: OffsetDateTime,
) -> Result<Tracked, DepositError> {
    let from = TransmissionState::Integrated;
    let progress = progress_of(tracked, &chain);
    let changed = tracked.situation.transmission.works.as_ref() != Some(&progress);
    let mut change = Change::default().works(&progress);
    if let Some(paid) = payment_entry(tracked, &progress, now) {
        change = change.history(paid);
    }
    if circuit_ended(&progress) {
        tracing::info!(status = ?progress.moe_status, "works circuit ended: follow-up ends");
    } else {
        let checks = if changed {
            0
        } else {
            tracked.record.checks_done
        };
        change = change
            .checks_done(checks)
            .due(now + follow_up_delay(checks));
    }
    Ok(state
        .store
        .transition(tracked, from, from, change, now)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(status: &str) -> FollowingDocument {
        FollowingDocument {
            framework: "A19".into(),
            chorus_id: 3,
            number: None,
            status: Some(status.into()),
            amount_to_pay: None,
            at: None,
        }
    }

    fn progress(own: &str, last: Option<&str>) -> WorksProgress {
        WorksProgress {
            moe_status: Some(own.into()),
            following_documents: last.map(doc).into_iter().collect(),
            ..WorksProgress::default()
        }
    }

    #[test]
    fn the_circuit_ends_on_a_refusal_or_on_the_payment_of_the_last_document() {
        assert!(!circuit_ended(&progress("MISE_A_DISPOSITION_MOE", None)));
        assert!(!circuit_ended(&progress("A_COMPLETER", None)));
        assert!(!circuit_ended(&progress(
            "ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE",
            None
        )));
        assert!(circuit_ended(&progress("REFUSEE_MOE", None)));
        assert!(!circuit_ended(&progress("ASSOCIEE", None)));
        assert!(!circuit_ended(&progress("ASSOCIEE", Some("TRANSMISE_MOA"))));
        assert!(!circuit_ended(&progress("ASSOCIEE", Some("ASSOCIEE"))));
        assert!(circuit_ended(&progress(
            "ASSOCIEE",
            Some("MISE_EN_PAIEMENT")
        )));
        assert!(circuit_ended(&progress("ASSOCIEE", Some("REFUSEE_MOA"))));
    }
}
