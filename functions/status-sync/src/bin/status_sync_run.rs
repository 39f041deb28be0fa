//! `status-sync-run [--now RFC3339]`: one follow-up run against the local stack, its clock
//! at NOW when given; prints the run's report as JSON (`make run FN=status-sync`).

use std::sync::Arc;

use shared::clock::{FixedClock, parse_rfc3339};
use status_sync::State;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber_init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let now = match args.iter().position(|a| a == "--now") {
        Some(i) => Some(
            args.get(i + 1)
                .and_then(|t| parse_rfc3339(t))
                .ok_or("--now needs an RFC 3339 time, e.g. 2027-11-20T06:00:00Z")?,
        ),
        None => None,
    };
    let config = shared::config::Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let mut state = State::paced(config, &sdk);
    if let Some(at) = now {
        state.clock = Arc::new(FixedClock::new(at));
    }
    let report = status_sync::run_once(&state).await;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn tracing_subscriber_init() {
    // Logs to stderr, the report alone on stdout.
    let _ = lambda_runtime::tracing::subscriber::fmt()
        .with_writer(std::io::stderr)
        .json()
        .try_init();
}
