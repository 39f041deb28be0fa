//! Lambda entry point: the scheduled follow-up of transmissions (EventBridge Scheduler).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use status_sync::State;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = shared::config::Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let state = Arc::new(State::from_sdk(config, &sdk)?);
    run(service_fn(move |_event: LambdaEvent<Value>| {
        let state = Arc::clone(&state);
        async move {
            let report = status_sync::run_once(&state).await;
            // Embedded metric format must be a bare JSON line on stdout, not a tracing event.
            println!("{}", report.metrics_line());
            serde_json::to_value(report).map_err(Error::from)
        }
    }))
    .await
}
