//! The HTTP edge shared by the API functions: the route table (`route.rs`), who calls
//! (claims), how errors are answered (problem+json), and reading JSON bodies field by field.

pub mod chorus;
pub mod claims;
pub mod edge;
pub mod json;
pub mod problem;
pub mod route;

pub use chorus::chorus_problem;
pub use claims::Caller;
pub use edge::{
    answer_in, path_account, path_param, path_siret, route_key, serve, store_problem, unknown_route,
};
pub use json::{JsonObject, json_response};
pub use problem::{FieldError, Problem, ProblemCode};
pub use route::{Function, Route};
