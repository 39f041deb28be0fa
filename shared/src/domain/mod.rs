//! Pure rules of the domain: no I/O, no AWS, no HTTP.

pub mod account;
pub mod document;
pub mod email;
pub mod file_name;
pub mod invoice_number;
pub mod market;
pub mod payment;
pub mod siret;
pub mod situation;
pub mod transmission;
pub mod works;

pub use account::{CompanyAccount, CredentialsStatus, Environment, PasswordPair, TechnicalLogin};
pub use email::Email;
pub use file_name::FileName;
pub use invoice_number::InvoiceNumber;
pub use market::{Framework, Market, MarketRef, MarketTerms};
pub use siret::{Siret, SiretCheck, SiretError};
pub use situation::{Situation, SituationIdentifiers, SituationNumber};
