//! Lambda entry point: market and situation identifiers.

shared::http_main!(identifiers);
