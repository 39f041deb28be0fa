//! The `works` object of the situation view.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::clock::rfc3339;
use crate::domain::works::WorksProgress;

/// The `works` object of the situation view (the contract's additions of 2026-12-03).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorksView {
    pub moe_status: Option<String>,
    pub received_by_moe_at: Option<String>,
    pub amount_claimed: Option<String>,
    pub amount_accepted: Option<String>,
    pub following_documents: Vec<FollowingDocumentView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowingDocumentView {
    pub framework: String,
    pub chorus_id: i64,
    pub status: Option<String>,
    pub amount_to_pay: Option<String>,
    pub at: Option<String>,
}

fn amount(value: Option<Decimal>) -> Option<String> {
    value.map(|d| format!("{:.2}", d))
}

impl WorksProgress {
    pub fn view(&self) -> WorksView {
        WorksView {
            moe_status: self.moe_status.clone(),
            received_by_moe_at: self.received_by_moe_at.map(rfc3339),
            amount_claimed: amount(self.amount_claimed),
            amount_accepted: amount(self.amount_accepted),
            following_documents: self
                .following_documents
                .iter()
                .map(|d| FollowingDocumentView {
                    framework: d.framework.clone(),
                    chorus_id: d.chorus_id,
                    status: d.status.clone(),
                    amount_to_pay: amount(d.amount_to_pay),
                    at: d.at.map(rfc3339),
                })
                .collect(),
        }
    }
}
