//! The reminder run over 100,000 companies, 1,000 due: the password-reminder test that
//! measures it (`tests/tests/password_reminder.rs`,
//! `a_run_over_100_000_companies_reads_only_the_1_000_due`, ignored in `make test`), run
//! here and its figures read from its output.

use std::time::{Duration, Instant};

use crate::sys::{run_ignored_test, tail};

pub const TEST: &str = "a_run_over_100_000_companies_reads_only_the_1_000_due";

pub struct ReminderResult {
    pub companies: Option<u64>,
    pub items_read: Option<u64>,
    pub sent: Option<u64>,
    pub failed: Option<u64>,
    pub run_time: Option<String>,
    pub second_items_read: Option<u64>,
    pub second_time: Option<String>,
    pub seeding: Option<String>,
    pub passed: bool,
    pub took: Duration,
}

/// The number just before `word` in `text` (`"1000 items read"` → 1000).
fn number_before(text: &str, word: &str) -> Option<u64> {
    let at = text.find(word)?;
    text[..at].split_whitespace().last()?.parse().ok()
}

/// The word just after `word` in `text`, trailing punctuation removed.
fn word_after(text: &str, word: &str) -> Option<String> {
    let at = text.find(word)? + word.len();
    text[at..]
        .split_whitespace()
        .next()
        .map(|w| w.trim_end_matches([';', ',']).to_owned())
}

/// Runs the test against the moto at `endpoint`.
pub fn run(endpoint: &str) -> Result<ReminderResult, String> {
    let started = Instant::now();
    let output = run_ignored_test(
        "password_reminder",
        TEST,
        &[("AWS_ENDPOINT_URL", endpoint.to_owned())],
    )?;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("seeded "))
        .map(str::to_owned)
        .ok_or_else(|| {
            let stderr = String::from_utf8_lossy(&output.stderr);
            format!(
                "the reminder test printed no figures:\n{}\n{}",
                tail(&stdout, 1500),
                tail(&stderr, 1500)
            )
        })?;
    eprintln!("  {line}");
    // "seeded N accounts in T; run: C companies, R items read, S sent, F failed in D;
    //  second run the same day: R2 items read in D2"
    let (first, second) = line.split_once("second run").unwrap_or((&line, ""));
    Ok(ReminderResult {
        companies: number_before(first, "companies"),
        items_read: number_before(first, "items read"),
        sent: number_before(first, "sent"),
        failed: number_before(first, "failed"),
        run_time: word_after(first, "failed in"),
        second_items_read: number_before(second, "items read"),
        second_time: word_after(second, "items read in"),
        seeding: word_after(first, "accounts in"),
        passed: output.status.success(),
        took,
    })
}
