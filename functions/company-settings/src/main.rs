//! Lambda entry point: the company's Chorus Pro account settings.

use company_settings::{State, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        |config, sdk| Ok(State::from_sdk(config, sdk)?),
        |state, request| async move { handle(&state, request).await },
    )
    .await
}
