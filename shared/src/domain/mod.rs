//! Pure rules of the domain: no I/O, no AWS, no HTTP.

pub mod account;
pub mod email;
pub mod siret;

pub use account::{
    CompanyAccount, CredentialsStatus, Environment, PasswordPair, TechnicalLogin,
};
pub use email::Email;
pub use siret::{Siret, SiretCheck, SiretError};
