//! Lambda entry point: pre-signed uploads of large documents (a state built without fail).

shared::http_main!(documents, |config, sdk| Ok(documents::State::from_sdk(
    config, sdk
)));
