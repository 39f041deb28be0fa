//! Lambda entry point: the scheduled follow-up of transmissions (EventBridge Scheduler).
//! Each schedule's input names its worker (`{"worker": k, "workers": N, …}`); an input
//! without them is a run alone, one that names no valid worker is refused.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::follow_settings::FollowWorker;
use status_sync::State;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let state =
        Arc::new(shared::init::cold_start(|config, sdk| Ok(State::paced(config, sdk))).await?);
    run(service_fn(move |event: LambdaEvent<Value>| {
        let state = Arc::clone(&state);
        async move {
            let worker = FollowWorker::from_event(&event.payload).map_err(|e| {
                tracing::error!(error = %e, "run refused: nothing read, nothing changed");
                Error::from(e.to_string())
            })?;
            // The invocation's deadline, as milliseconds since the epoch.
            let left_ms = event.context.deadline.saturating_sub(
                u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
                    .unwrap_or(0),
            );
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(left_ms);
            let report = status_sync::run_until(&state, worker, Some(deadline)).await;
            // Embedded metric format must be a bare JSON line on stdout, not a tracing event.
            println!("{}", report.metrics_line());
            serde_json::to_value(report).map_err(Error::from)
        }
    }))
    .await
}
