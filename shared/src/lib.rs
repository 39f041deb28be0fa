//! Everything the choruspro-gateway functions share: pure domain rules, the HTTP edge
//! (claims, problem+json), and the adapters to DynamoDB, Secrets Manager and Chorus Pro.
//!
//! Data flows one way: HTTP event -> function handler -> domain rule -> ports -> adapters.

pub mod aws;
pub mod chorus;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod secrets;
pub mod services;
pub mod store;
