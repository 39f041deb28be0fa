//! The structure look-ups live in `shared::buyer::structure` (the transmission's recycle
//! checks a new recipient with them too); this module gives them this function's `State`.

pub use shared::buyer::structure::{Lookup, all_services, find, services_requiring_commitment};

use shared::chorus::TechnicalAccount;
use shared::domain::CompanyAccount;
use shared::http::Problem;

use crate::State;

/// The company's technical account, from the secret version its account item names.
pub async fn technical_account(
    state: &State,
    account: &CompanyAccount,
) -> Result<TechnicalAccount, Problem> {
    shared::buyer::structure::technical_account(&state.secrets, account).await
}
