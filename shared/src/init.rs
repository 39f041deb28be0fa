//! The cold start, one helper for every function (issue 18): the environment read once
//! into the `Config`, the AWS SDK configuration, then the function's state, each step timed.
//! Nothing here opens a connection or builds a client: SDK clients are `LazyClient`s and
//! the Chorus Pro client builds its HTTP client at its first call, so a function pays for
//! a client only at the first event that needs it.
//!
//! The steps' durations are logged once, at DEBUG, under the target `cold_start`
//! (`RUST_LOG=info,cold_start=debug` shows them and nothing else of DEBUG).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::aws::SdkConfig;
use crate::config::Config;

/// What stops a cold start (Lambda reports it as an init error).
pub type InitError = Box<dyn std::error::Error + Send + Sync>;

/// The durations of a cold start's steps.
pub struct InitSteps {
    last: Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl InitSteps {
    pub fn start() -> Self {
        InitSteps {
            last: Instant::now(),
            steps: Vec::with_capacity(4),
        }
    }

    /// Ends the step `name`, begun when the previous one ended.
    pub fn done(&mut self, name: &'static str) {
        let now = Instant::now();
        self.steps
            .push((name, now.saturating_duration_since(self.last)));
        self.last = now;
    }

    /// `config=12 aws_config=830 state=40` (µs), the order kept.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for (name, took) in &self.steps {
            let _ = write!(
                text,
                "{}{name}={}",
                if text.is_empty() { "" } else { " " },
                took.as_micros()
            );
        }
        text
    }

    pub fn log(&self) {
        tracing::debug!(target: "cold_start", steps_us = %self.summary(), "cold start steps");
    }
}

/// The cold start of a function: its configuration, the SDK's, then `build` makes the state
/// it keeps warm (building no client: see the module's note).
pub async fn cold_start<S>(
    build: impl FnOnce(Config, &SdkConfig) -> Result<S, InitError>,
) -> Result<S, InitError> {
    let mut steps = InitSteps::start();
    let config = Config::from_env()?;
    steps.done("config");
    let sdk = crate::aws::sdk_config().await;
    steps.done("aws_config");
    let state = build(config, &sdk)?;
    steps.done("state");
    steps.log();
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_each_step_in_order() {
        let mut steps = InitSteps::start();
        steps.done("config");
        steps.done("aws_config");
        let summary = steps.summary();
        let names: Vec<&str> = summary
            .split(' ')
            .map(|part| part.split_once('=').map_or("", |(name, _)| name))
            .collect();
        assert_eq!(names, ["config", "aws_config"]);
    }
}
