//! Section 7, the follow-up at scale (issue 20): many companies with 10 open invoices each,
//! 1 % of the invoices changing between two runs; the change-driven path ("after") against each
//! open invoice consulted on its own ("before", `FOLLOW_MODE=full`). The ignored test
//! `follow_up_at_scale` (`tests/tests/follow_changes.rs`) seeds and measures; this module
//! runs it against the bench's moto and turns its figures into a table.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::sys::{run_ignored_test, tail};
use crate::table::Table;

pub const TEST: &str = "follow_up_at_scale";

/// Chorus Pro calls per second by default (`CHORUS_RATE_PER_SECOND`).
const DEFAULT_RATE: f64 = 10.0;
/// Calls one 5-minute run can make at that rate: 300 s less the run's safety margin (two
/// 10 s timeouts and 5 s, `run_until`).
const CALLS_PER_RUN: f64 = DEFAULT_RATE * (300.0 - 25.0);
/// Situations the former path takes per run (`status_sync::BATCH`).
const BATCH: f64 = 500.0;
/// Companies one run looks at, at most (`status_sync::changes::COMPANIES_PER_RUN`).
const COMPANIES_PER_RUN: f64 = 2_000.0;
/// Each open invoice is still consulted on its own this often (`FOLLOW_FULL_CHECK_HOURS`).
const FULL_CHECK_HOURS: f64 = 72.0;

/// One measured run, as the test prints it.
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub chorus: u64,
    pub reads: u64,
    pub wall: f64,
    pub due: u64,
    pub visited: u64,
    pub searches: u64,
    pub followed: u64,
    pub failed: u64,
}

pub struct FollowResult {
    pub companies: u64,
    pub open: u64,
    pub seeded: f64,
    pub unchanged: Run,
    pub changed: Run,
    pub before: Run,
    pub passed: bool,
    pub took: Duration,
}

fn number_after(text: &str, word: &str) -> Option<f64> {
    let at = text.find(word)? + word.len();
    text[at..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| !w.is_empty())?
        .parse()
        .ok()
}

fn count(text: &str, word: &str) -> u64 {
    number_after(text, word).map_or(0, |v| v as u64)
}

fn run_from(line: &str) -> Run {
    Run {
        chorus: count(line, "chorus "),
        reads: count(line, "dynamodb reads "),
        wall: number_after(line, "wall ").unwrap_or(0.0),
        due: count(line, "situations due "),
        visited: count(line, "companies visited "),
        searches: count(line, "searches "),
        followed: count(line, "changes followed "),
        failed: count(line, "failed "),
    }
}

/// Runs the test against the moto at `endpoint`, `companies` companies.
pub fn run(endpoint: &str, companies: usize) -> Result<FollowResult, String> {
    let started = Instant::now();
    let output = run_ignored_test(
        "follow_changes",
        TEST,
        &[
            ("AWS_ENDPOINT_URL", endpoint.to_owned()),
            ("FOLLOW_BENCH_COMPANIES", companies.to_string()),
        ],
    )?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let Some(at) = lines.iter().position(|l| l.starts_with("follow-up bench:")) else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail = tail(&stderr, 2000);
        return Err(format!("the follow-up test printed no figures:\n{tail}"));
    };
    let head = lines[at];
    let find = |prefix: &str| {
        lines[at..]
            .iter()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| run_from(l))
            .unwrap_or_default()
    };
    eprintln!("  {head}");
    Ok(FollowResult {
        companies: count(head, "companies "),
        open: count(head, "open situations "),
        seeded: number_after(head, "seeded in ").unwrap_or(0.0),
        unchanged: find("after, nothing changed"),
        changed: find("after, 1 % changed"),
        before: find("before"),
        passed: output.status.success(),
        took: started.elapsed(),
    })
}

fn row(table: &mut Table, name: &str, run: &Run, per: &str) {
    table.row(&[
        name,
        &run.due.max(run.visited).to_string(),
        &run.chorus.to_string(),
        &run.reads.to_string(),
        &format!("{:.1} s", run.wall),
        &format!("{:.0} s", run.chorus as f64 / DEFAULT_RATE),
        per,
    ]);
}

/// The section as Markdown: the before/after table, then the capacity of one schedule.
pub fn render(result: &Result<FollowResult, String>) -> String {
    let mut out = String::from("\n## 7. Follow-up at scale (issue 20)\n\n");
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "Not measured: {e}");
            return out;
        }
    };
    let _ = writeln!(
        out,
        "{} companies with 10 open invoices each ({} open situations), seeded in {:.0} s (untimed); the test {} ({:.0} s in all).\n",
        r.companies,
        r.open,
        r.seeded,
        if r.passed { "passed" } else { "FAILED" },
        r.took.as_secs_f64()
    );
    runs_table(&mut out, r);
    capacity(&mut out, r);
    out
}

/// The before/after table: one row per run.
fn runs_table(out: &mut String, r: &FollowResult) {
    let mut table = Table::new(
        out,
        &[
            "run",
            "situations or companies handled",
            "Chorus Pro calls",
            "DynamoDB reads",
            "wall (calls unpaced)",
            "wall at the default 10 calls/s",
            "per",
        ],
    );
    let per_open = |v: u64, run: &Run| v as f64 / run.due.max(1) as f64;
    row(
        &mut table,
        "before: each open invoice consulted (`FOLLOW_MODE=full`), one run",
        &r.before,
        &format!(
            "{:.2} calls and {:.2} reads per open situation; {} per run at most (BATCH)",
            per_open(r.before.chorus, &r.before),
            per_open(r.before.reads, &r.before),
            BATCH
        ),
    );
    let per_company = |v: u64, run: &Run| v as f64 / run.visited.max(1) as f64;
    for (name, run) in [
        ("after: change searches, nothing changed", &r.unchanged),
        (
            "after: change searches, 1 % of invoices changed",
            &r.changed,
        ),
    ] {
        row(
            &mut table,
            name,
            run,
            &format!(
                "{:.2} calls and {:.2} reads per company looked at; {} searches, {} invoices consulted, {} failed",
                per_company(run.chorus, run),
                per_company(run.reads, run),
                run.searches,
                run.followed,
                run.failed
            ),
        );
    }
}

/// The largest number of open situations one 5-minute schedule follows at the default
/// rate, with every invoice waiting for its buyer (a look an hour: the strictest cadence).
/// The largest number of open situations one 5-minute schedule follows with every company
/// looked at hourly: the hour's calls (12 runs) pay each company's look and the safety net's
/// consultations (each open invoice once every `FULL_CHECK_HOURS`), and a run looks at
/// `COMPANIES_PER_RUN` companies at most.
fn capacity(out: &mut String, r: &FollowResult) {
    let per_look = r.changed.chorus as f64 / r.changed.visited.max(1) as f64;
    let per_company_open = r.open as f64 / r.companies.max(1) as f64;
    let per_consultation = r.before.chorus as f64 / r.before.due.max(1) as f64;
    let safety_net = per_company_open * per_consultation / FULL_CHECK_HOURS;
    let by_calls = CALLS_PER_RUN * 12.0 / (per_look + safety_net).max(f64::EPSILON);
    let companies = by_calls.min(COMPANIES_PER_RUN * 12.0);
    let limit = if by_calls < COMPANIES_PER_RUN * 12.0 {
        "the rate limit"
    } else {
        "the companies a run takes"
    };
    let before_open = (CALLS_PER_RUN * 12.0 / per_consultation.max(f64::EPSILON)).min(BATCH * 12.0);
    let _ = writeln!(
        out,
        "\nCapacity of one 5-minute schedule at the default rate ({CALLS_PER_RUN:.0} calls per run: 10 a second over the 275 s a run may use), every company looked at hourly: **after**, a company costs {per_look:.2} calls per look plus {safety_net:.2} an hour for the safety net (each of its {per_company_open:.0} open invoices consulted once every {FULL_CHECK_HOURS:.0} h at {per_consultation:.2} calls: the one part of the calls that grows with the open situations, not with the changes), and a run looks at {COMPANIES_PER_RUN:.0} companies at most, so **{companies:.0} companies an hour, {:.0} open situations** (bound by {limit}); **before**, each open situation costs {per_consultation:.2} calls per consultation and a run takes at most {BATCH:.0} of them, so **{before_open:.0} open situations** consulted hourly. Extrapolated from {} companies (moto holds one request at a time: seeding 10,000 companies takes about ten times the seeding above).",
        companies * per_company_open,
        r.companies
    );
}
