//! Lambda entry point: the daily password-renewal reminder run (EventBridge Scheduler).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use password_reminder::State;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let state =
        Arc::new(shared::init::cold_start(|config, sdk| Ok(State::from_sdk(config, sdk)?)).await?);
    run(service_fn(move |event: LambdaEvent<Value>| {
        let state = Arc::clone(&state);
        async move { password_reminder::handle(state, event).await }
    }))
    .await
}
