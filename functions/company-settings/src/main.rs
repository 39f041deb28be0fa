//! Lambda entry point: the company's Chorus Pro account settings.

use std::sync::Arc;

use company_settings::State;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let state =
        Arc::new(shared::init::cold_start(|config, sdk| Ok(State::from_sdk(config, sdk)?)).await?);
    run(service_fn(move |request: Request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Error>(company_settings::handle(&state, request).await) }
    }))
    .await
}
