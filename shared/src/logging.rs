//! The functions' log subscriber (issue 18). It is what lambda_runtime's
//! `init_default_subscriber` makes — JSON when `AWS_LAMBDA_LOG_FORMAT` is `JSON` (Lambda's
//! advanced logging controls), plain text otherwise, no timestamp (CloudWatch adds one), the
//! level from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, INFO by default — with
//! tracing-subscriber's `Targets` filter instead of its `EnvFilter`: the same `target=level`
//! directives (`RUST_LOG=info,cold_start=debug`), without the regular-expression engine
//! `EnvFilter` links for its span and field filters, which the functions never use.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber, writing to stdout (what Lambda sends to CloudWatch).
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// The same, writing to `writer` (the local runners write to stderr).
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let var = |name| std::env::var(name).ok();
    let filter = log_filter(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let format = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(writer);
    // A second subscriber (a test that installed one first) is not an error.
    let _ = if json {
        format.json().finish().with(filter).try_init()
    } else {
        format.finish().with(filter).try_init()
    };
}

/// The filter, as lambda_runtime builds its `EnvFilter`: `RUST_LOG`'s directives when it
/// has any that parse (those that do not are ignored, as `from_env_lossy` does; with only
/// targeted ones, other targets are off); otherwise one level for all, Lambda's
/// `AWS_LAMBDA_LOG_LEVEL` when set, else `RUST_LOG` read as a level, else INFO.
pub fn log_filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    if let Some(directives) = rust_log.and_then(valid_directives) {
        return directives;
    }
    let level = match lambda_level {
        Some(text) => LevelFilter::from_str(text.trim()).ok(),
        None => rust_log.and_then(|text| LevelFilter::from_str(text.trim()).ok()),
    };
    Targets::new().with_default(level.unwrap_or(LevelFilter::INFO))
}

/// The directives of `text` that parse, if any does.
fn valid_directives(text: &str) -> Option<Targets> {
    let valid: Vec<Targets> = text
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .filter_map(|d| Targets::from_str(d.trim()).ok())
        .collect();
    let default = valid.iter().filter_map(Targets::default_level).next_back();
    let targeted = valid.into_iter().flat_map(|t| t.into_iter());
    let mut directives: Targets = targeted.collect();
    if let Some(level) = default {
        directives = directives.with_default(level);
    }
    let any = directives.default_level().is_some() || directives.iter().next().is_some();
    any.then_some(directives)
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_then_info() {
        struct Case {
            lambda: Option<&'static str>,
            rust_log: Option<&'static str>,
            target: &'static str,
            enabled: &'static [Level],
            disabled: &'static [Level],
        }
        let cases = [
            Case {
                lambda: None,
                rust_log: None,
                target: "any",
                enabled: &[Level::INFO, Level::ERROR],
                disabled: &[Level::DEBUG],
            },
            Case {
                lambda: Some("DEBUG"),
                rust_log: None,
                target: "any",
                enabled: &[Level::DEBUG],
                disabled: &[Level::TRACE],
            },
            Case {
                lambda: Some("WARN"),
                rust_log: Some(""),
                target: "any",
                enabled: &[Level::WARN],
                disabled: &[Level::INFO],
            },
            Case {
                lambda: Some("WARN"),
                rust_log: Some("debug"),
                target: "any",
                enabled: &[Level::DEBUG],
                disabled: &[Level::TRACE],
            },
            Case {
                lambda: None,
                rust_log: Some("warn"),
                target: "any",
                enabled: &[Level::WARN],
                disabled: &[Level::INFO],
            },
            Case {
                lambda: None,
                rust_log: Some("info,cold_start=debug"),
                target: "cold_start",
                enabled: &[Level::DEBUG],
                disabled: &[Level::TRACE],
            },
            Case {
                lambda: None,
                rust_log: Some("info,cold_start=debug"),
                target: "shared::deposit",
                enabled: &[Level::INFO],
                disabled: &[Level::DEBUG],
            },
            Case {
                lambda: None,
                rust_log: Some("cold_start=debug"),
                target: "other",
                enabled: &[],
                disabled: &[Level::ERROR],
            },
            Case {
                lambda: None,
                rust_log: Some("cold_start=loud,debug"),
                target: "other",
                enabled: &[Level::DEBUG],
                disabled: &[Level::TRACE],
            },
            Case {
                lambda: None,
                rust_log: Some("=?,"),
                target: "any",
                enabled: &[Level::INFO],
                disabled: &[Level::DEBUG],
            },
            Case {
                lambda: Some("FATAL"),
                rust_log: None,
                target: "any",
                enabled: &[Level::INFO],
                disabled: &[Level::DEBUG],
            },
            Case {
                lambda: None,
                rust_log: Some("shared"),
                target: "shared",
                enabled: &[Level::TRACE],
                disabled: &[],
            },
            Case {
                lambda: None,
                rust_log: Some("shared"),
                target: "other",
                enabled: &[],
                disabled: &[Level::ERROR],
            },
        ];
        for case in cases {
            let filter = log_filter(case.lambda, case.rust_log);
            let name = format!("{:?} / {:?} on {}", case.lambda, case.rust_log, case.target);
            for level in case.enabled {
                assert!(
                    filter.would_enable(case.target, level),
                    "{name}: {level} should be on"
                );
            }
            for level in case.disabled {
                assert!(
                    !filter.would_enable(case.target, level),
                    "{name}: {level} should be off"
                );
            }
        }
    }
}
