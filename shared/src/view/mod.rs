//! What the HTTP API answers (the contract's shapes), built from the domain's types: each
//! `view` method turns a domain value into the JSON the caller reads. The domain files hold
//! the rules; these hold the shapes, so that a field of an answer is added here without
//! touching a rule.

pub mod account;
pub mod market;
pub mod situation;
pub mod works;

pub use account::AccountView;
pub use market::{BuyerView, MarketView, ProjectManagerView};
pub use situation::{PreviousSubmissionView, SituationView, StatusEntryView, TransmissionView};
pub use works::{FollowingDocumentView, WorksView};
