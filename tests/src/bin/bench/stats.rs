//! Percentiles.

use std::time::Duration;

#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub count: usize,
    pub median: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Nearest-rank percentile of sorted values.
fn rank(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// The nearest-rank percentile `p` (0 to 1) of unsorted values.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    rank(&sorted, p)
}

pub fn summarize(values: &[Duration]) -> Summary {
    let mut sorted = values.to_vec();
    sorted.sort();
    Summary {
        count: sorted.len(),
        median: rank(&sorted, 0.5),
        p99: rank(&sorted, 0.99),
        max: sorted.last().copied().unwrap_or_default(),
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1_000.0 {
        format!("{micros:.0} µs")
    } else if micros < 10_000.0 {
        format!("{:.2} ms", micros / 1e3)
    } else if micros < 1_000_000.0 {
        format!("{:.0} ms", micros / 1e3)
    } else {
        format!("{:.1} s", micros / 1e6)
    }
}

pub fn fmt_bytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1_000_000.0)
}

pub fn fmt_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
