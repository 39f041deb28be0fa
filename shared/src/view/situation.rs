//! The situation as the API shows it: its transmission, earlier submissions, next action,
//! works circuit and payment clock.

use crate::clock::rfc3339;
use crate::domain::payment::{PaymentClock, PaymentTerms};
use crate::domain::situation::Situation;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusEntryView {
    pub at: String,
    pub status: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransmissionView {
    pub state: &'static str,
    pub flux_number: Option<String>,
    pub chorus_invoice_id: Option<i64>,
    pub chorus_status: Option<String>,
    pub status_history: Vec<StatusEntryView>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreviousSubmissionView {
    pub invoice_number: String,
    pub state: &'static str,
    pub chorus_status: Option<String>,
    pub flux_number: Option<String>,
    pub chorus_invoice_id: Option<i64>,
    pub replaced_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SituationView {
    pub market_ref: String,
    pub number: u16,
    pub invoice_number: String,
    pub period: Option<String>,
    pub commitment_number: Option<String>,
    pub transmission: TransmissionView,
    pub previous_submissions: Vec<PreviousSubmissionView>,
    pub next_action: Option<String>,
    /// The works circuit (`null` for an ordinary invoice).
    pub works: Option<super::works::WorksView>,
    pub payment: PaymentClock,
    pub created_at: String,
    pub updated_at: String,
}

impl Situation {
    pub fn view(&self, terms: PaymentTerms<'_>) -> SituationView {
        SituationView {
            market_ref: self.market_ref.to_string(),
            number: self.number.get(),
            invoice_number: self.identifiers.invoice_number.to_string(),
            period: self.identifiers.period.map(|p| p.to_string()),
            commitment_number: self
                .identifiers
                .commitment_number
                .as_ref()
                .map(ToString::to_string),
            transmission: TransmissionView {
                state: self.transmission.state.as_str(),
                flux_number: self.transmission.flux_number.clone(),
                chorus_invoice_id: self.transmission.chorus_invoice_id,
                chorus_status: self.transmission.chorus_status.clone(),
                status_history: self
                    .transmission
                    .status_history
                    .iter()
                    .map(|e| StatusEntryView {
                        at: rfc3339(e.at),
                        status: e.status.clone(),
                        comment: e.comment.clone(),
                    })
                    .collect(),
            },
            previous_submissions: self
                .previous_submissions
                .iter()
                .map(|p| PreviousSubmissionView {
                    invoice_number: p.invoice_number.clone(),
                    state: p.state.as_str(),
                    chorus_status: p.chorus_status.clone(),
                    flux_number: p.flux_number.clone(),
                    chorus_invoice_id: p.chorus_invoice_id,
                    replaced_at: rfc3339(p.replaced_at),
                })
                .collect(),
            next_action: self.next_action(),
            works: self.transmission.works.as_ref().map(|w| w.view()),
            payment: self.payment(terms),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}
