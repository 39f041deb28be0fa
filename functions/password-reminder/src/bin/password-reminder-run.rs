//! `password-reminder-run [--now 2027-11-20T06:00:00Z]`: one reminder run against the stack
//! the environment points at (`make run FN=password-reminder NOW=…`), with the clock at
//! `--now` when given; prints the run's result as JSON on stdout, logs on stderr.

use std::process::ExitCode;
use std::sync::Arc;

use password_reminder::State;
use shared::clock::{Clock, FixedClock, SystemClock, parse_rfc3339};
use shared::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    shared::logging::init_with_writer(std::io::stderr);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clock: Arc<dyn Clock> = match args.as_slice() {
        [] => Arc::new(SystemClock),
        [flag, now] if flag == "--now" => match parse_rfc3339(now) {
            Some(at) => Arc::new(FixedClock::new(at)),
            None => {
                return usage(&format!(
                    "--now {now:?} is not an RFC 3339 time (2027-11-20T06:00:00Z)"
                ));
            }
        },
        _ => return usage("unexpected arguments"),
    };
    let sdk = shared::aws::sdk_config().await;
    let built = Config::from_env().and_then(|config| State::from_sdk(config, &sdk));
    let mut state = match built {
        Ok(state) => state,
        Err(e) => return usage(&e.to_string()),
    };
    state.clock = clock;
    let outcome = password_reminder::run_once(Arc::new(state), None).await;
    let (report, code) = match outcome {
        Ok(report) => (report, ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e}");
            (e.into_report(), ExitCode::FAILURE)
        }
    };
    match serde_json::to_string_pretty(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("error: result not printable: {e}"),
    }
    code
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("error: {problem}\nusage: password-reminder-run [--now RFC3339]");
    ExitCode::from(2)
}
