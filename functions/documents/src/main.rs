//! Lambda entry point: pre-signed uploads of large documents.

shared::http_main!(documents);
