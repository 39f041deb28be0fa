//! Everything the choruspro-gateway functions share: pure domain rules, the HTTP edge
//! (claims, problem+json), and the adapters to DynamoDB, Secrets Manager and Chorus Pro.
//!
//! Data flows one way: HTTP event -> function handler -> domain rule -> ports -> adapters.

pub mod aws;
pub mod buyer;
pub mod chorus;
pub mod clock;
pub mod config;
pub mod deposit;
#[cfg(feature = "documents")]
pub mod documents;
pub mod domain;
pub mod follow_settings;
pub mod http;
pub mod init;
pub mod logging;
pub mod mail;
pub mod reminder;
pub mod secrets;
pub mod services;
pub mod store;
pub mod tls;
pub mod ubl;
pub mod view;
pub mod works;
