//! The market as the API shows it, with what Chorus Pro said of its buyer.

use crate::clock::rfc3339;
use crate::domain::market::{BuyerCheck, Market};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProjectManagerView {
    pub siret: String,
    pub service_code: Option<String>,
}

/// The `buyer` object of the market answer: what was found in Chorus Pro.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuyerView {
    pub siret: String,
    /// `checked`, or `unchecked` when the company had no Chorus Pro account.
    pub status: &'static str,
    pub name: Option<String>,
    pub chorus_structure_id: Option<i64>,
    /// `none`, `service_code`, `commitment_number`, `service_code_and_commitment_number`,
    /// `service_code_or_commitment_number`.
    pub requirement: Option<&'static str>,
    pub requires_service_code: Option<bool>,
    /// By the buyer itself or by the market's service.
    pub requires_commitment_number: Option<bool>,
    /// `not_given`, `found`, `not_published` (the number could not be confirmed).
    pub commitment_number_check: Option<&'static str>,
    pub checked_at: Option<String>,
    /// What to do, in French, when the buyer could not be checked.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MarketView {
    pub market_ref: String,
    pub market_number: String,
    pub buyer_siret: String,
    pub buyer_service_code: Option<String>,
    pub commitment_number: Option<String>,
    pub framework: &'static str,
    pub project_manager: Option<ProjectManagerView>,
    pub label: Option<String>,
    pub buyer_category: &'static str,
    pub buyer: BuyerView,
    pub created_at: String,
    pub updated_at: String,
}

impl Market {
    pub fn view(&self) -> MarketView {
        let t = &self.terms;
        let buyer = match &self.buyer {
            BuyerCheck::Unchecked => BuyerView {
                siret: t.buyer_siret.to_string(),
                status: "unchecked",
                name: None,
                chorus_structure_id: None,
                requirement: None,
                requires_service_code: None,
                requires_commitment_number: None,
                commitment_number_check: None,
                checked_at: None,
                note: Some(
                    "Acheteur non vérifié dans Chorus Pro : l'entreprise n'avait pas de compte Chorus Pro enregistré. Renseignez-le dans « Mon compte », puis enregistrez de nouveau ce marché pour le faire vérifier."
                        .to_owned(),
                ),
            },
            BuyerCheck::Checked(record) => BuyerView {
                siret: t.buyer_siret.to_string(),
                status: "checked",
                name: record.name.clone(),
                chorus_structure_id: Some(record.chorus_structure_id),
                requirement: Some(record.rule.as_str()),
                requires_service_code: Some(record.rule.requires_service_code()),
                requires_commitment_number: Some(
                    record.rule.requires_commitment_number() || record.service_requires_commitment,
                ),
                commitment_number_check: Some(record.commitment.as_str()),
                checked_at: Some(rfc3339(record.checked_at)),
                note: None,
            },
        };
        MarketView {
            market_ref: self.market_ref.to_string(),
            market_number: t.market_number.to_string(),
            buyer_siret: t.buyer_siret.to_string(),
            buyer_service_code: t.buyer_service_code.as_ref().map(ToString::to_string),
            commitment_number: t.commitment_number.as_ref().map(ToString::to_string),
            framework: t.framework.code(),
            project_manager: t.project_manager.as_ref().map(|p| ProjectManagerView {
                siret: p.siret.to_string(),
                service_code: p.service_code.as_ref().map(ToString::to_string),
            }),
            label: t.label.as_ref().map(ToString::to_string),
            buyer_category: t.buyer_category.as_str(),
            buyer,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}
