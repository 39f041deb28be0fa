//! The HTTP edge shared by the API functions: who calls (claims), how errors are answered
//! (problem+json), and reading JSON bodies field by field.

pub mod chorus;
pub mod claims;
pub mod edge;
pub mod json;
pub mod problem;

pub use chorus::chorus_problem;
pub use claims::Caller;
pub use edge::{path_siret, route_key, store_problem};
pub use json::{JsonObject, json_response};
pub use problem::{FieldError, Problem, ProblemCode};
