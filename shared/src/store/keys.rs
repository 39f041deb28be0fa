//! The key layout of the single table, in one place.
//!
//! | item | PK | SK |
//! | --- | --- | --- |
//! | company account | `COMPANY#{siret}` | `ACCOUNT` |
//! | audit entry | `COMPANY#{siret}` | `AUDIT#{rfc3339}#{id}` |

use crate::domain::Siret;

pub const PK: &str = "PK";
pub const SK: &str = "SK";

pub fn company_pk(siret: &Siret) -> String {
    format!("COMPANY#{siret}")
}

pub const ACCOUNT_SK: &str = "ACCOUNT";

pub fn audit_sk(at: &str, id: &str) -> String {
    format!("AUDIT#{at}#{id}")
}

pub const AUDIT_PREFIX: &str = "AUDIT#";
