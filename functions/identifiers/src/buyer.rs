//! A market's buyer and *maître d'œuvre*, checked by `shared::buyer` (the same code path
//! as a recycled invoice's new routing), with this function's clients and clock.

use shared::chorus::TechnicalAccount;
use shared::domain::market::{BuyerRecord, ProjectManager};
use shared::domain::{CompanyAccount, MarketTerms};
use shared::http::Problem;

use crate::State;

/// What Chorus Pro says of the market's buyer, or why the market cannot be invoiced.
pub async fn check(
    state: &State,
    tech: &TechnicalAccount,
    account: &CompanyAccount,
    terms: &MarketTerms,
) -> Result<BuyerRecord, Problem> {
    shared::buyer::check(&state.chorus, tech, account, terms, state.clock.now()).await
}

/// The *maître d'œuvre* must be a structure Chorus Pro knows, active, its service known.
pub async fn check_project_manager(
    state: &State,
    tech: &TechnicalAccount,
    moe: &ProjectManager,
) -> Result<(), Problem> {
    shared::buyer::check_project_manager(&state.chorus, tech, moe).await
}
