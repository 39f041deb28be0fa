//! Lambda entry point: transmit a situation to Chorus Pro.

use std::sync::Arc;

use lambda_http::{Error, Request, run, service_fn};
use transmit_invoice::State;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let state =
        Arc::new(shared::init::cold_start(|config, sdk| Ok(State::from_sdk(config, sdk)?)).await?);
    run(service_fn(move |request: Request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Error>(transmit_invoice::handle(&state, request).await) }
    }))
    .await
}
