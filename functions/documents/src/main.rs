//! Lambda entry point: pre-signed uploads of large documents.

use documents::{State, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        |config, sdk| Ok(State::from_sdk(config, sdk)),
        |state, request| async move { handle(&state, request).await },
    )
    .await
}
