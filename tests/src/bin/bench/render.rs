//! The results table (`tests/bench/RESULTS.md`): the run's header line, one function per
//! section of the table (1 CPU, 2 calls, 3 starts and first events, 4 memory, 5 burst,
//! 6 reminder), the errors, then the notes. Section 7 is `follow::render`'s.

use std::fmt::Write as _;
use std::time::Duration;

use crate::coldstart::{self, ColdResult};
use crate::inprocess::{Calls, Minimum, RouteResult};
use crate::stats::{fmt_bytes, fmt_duration, fmt_mib};
use crate::table::Table;
use crate::{Knobs, Results, burst, initsteps, reminder, sys};

/// The target of issue 18: a function's median start within 2× the hello world's.
const START_RATIO_TARGET: f64 = 2.0;

const COLUMNS: [&str; 7] = [
    "#", "Measure", "Subject", "Result", "Target", "Met", "Notes",
];

/// The whole table of sections 1 to 6, and the notes.
pub fn render(machine: &sys::Machine, r: &Results, took: Duration, knobs: &Knobs) -> String {
    let mut out = header(machine, r, took);
    let mut table = Table::new(&mut out, &COLUMNS);
    cpu_rows(&mut table, &r.routes, knobs.calls + knobs.warmups);
    calls_rows(&mut table, &r.routes);
    start_rows(&mut table, r);
    init_step_rows(&mut table, r);
    cold_rows(&mut table, &r.cold);
    if let Some(burst) = &r.burst {
        burst_rows(&mut table, burst, machine);
    }
    reminder_rows(&mut table, r.reminder.as_ref());
    for e in &r.errors {
        table.row(&["!", "Error", "—", e, "—", "❌", ""]);
    }
    out.push('\n');
    out.push_str(&notes(knobs.calls, knobs.warmups, knobs.cold_events));
    out
}

/// The title, and when, where and how long the run took, section by section.
fn header(machine: &sys::Machine, r: &Results, took: Duration) -> String {
    let mut out = String::new();
    let now = time::OffsetDateTime::now_utc();
    let _ = writeln!(out, "# `make bench` results\n");
    let _ = writeln!(
        out,
        "Measured {} on {} cores, {}, {}; load average at start {}; whole run {:.0} s ({}).\n",
        shared::clock::rfc3339(now),
        machine.cores,
        machine.model,
        machine.rustc,
        machine.load_at_start,
        took.as_secs_f64(),
        r.sections
            .iter()
            .map(|(name, d)| format!("{name}: {:.0} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out
}

// 1. CPU ---------------------------------------------------------------------------------

/// Section 1: each route's warm CPU, judged on the handler's own share.
fn cpu_rows(table: &mut Table, routes: &[RouteResult], calls_made: usize) {
    for route in routes {
        let target = route.target.map(fmt_duration);
        let (measure, label) = match route.label.strip_prefix("reference: ") {
            Some(label) => ("Reference: warm CPU per call", label),
            None => ("Warm handler CPU per request", route.label.as_str()),
        };
        table.row(&[
            "1",
            measure,
            &format!("{}: {label}", route.function),
            &cpu_result(route),
            &target
                .map(|t| format!("≤ {t}"))
                .unwrap_or_else(|| "—".into()),
            &cpu_met(route),
            &cpu_notes(route, calls_made),
        ]);
    }
}

/// Judged on the handler's own CPU; the AWS SDK's is shown beside it.
fn cpu_met(route: &RouteResult) -> String {
    match route.target {
        None => "—".to_owned(),
        Some(t) if route.own.p99 <= t => yes(true).to_owned(),
        Some(t) if route.own.median <= t => format!("{} median, ❌ p99", yes(true)),
        Some(_) => yes(false).to_owned(),
    }
}

fn cpu_notes(route: &RouteResult, calls_made: usize) -> String {
    let mut notes = String::new();
    if route.target.is_some_and(|t| route.cpu.median > t) {
        notes = "with the AWS SDK's own CPU: ❌".into();
    }
    if route.unexpected > 0 {
        notes = format!(
            "{} of {} calls answered otherwise than expected: {}",
            route.unexpected,
            calls_made,
            route.first_unexpected.clone().unwrap_or_default()
        );
    }
    notes
}

fn cpu_result(route: &RouteResult) -> String {
    if route.own.median == route.cpu.median && route.own.p99 == route.cpu.p99 {
        format!(
            "median {} · p99 {} (kernel {:.0} %; wall median {})",
            fmt_duration(route.cpu.median),
            fmt_duration(route.cpu.p99),
            100.0 * route.kernel_share,
            fmt_duration(route.wall.median)
        )
    } else {
        format!(
            "own: median {} · p99 {}; with the AWS SDK: median {} · p99 {} (kernel {:.0} %; wall median {})",
            fmt_duration(route.own.median),
            fmt_duration(route.own.p99),
            fmt_duration(route.cpu.median),
            fmt_duration(route.cpu.p99),
            100.0 * route.kernel_share,
            fmt_duration(route.wall.median)
        )
    }
}

// 2. Calls -------------------------------------------------------------------------------

/// Section 2: each counted route's calls against the minimum it needs.
fn calls_rows(table: &mut Table, routes: &[RouteResult]) {
    for route in routes {
        let (Some(c), Some(m)) = (&route.calls, &route.minimum) else {
            continue;
        };
        let (met, diff) = compare(c, m);
        let notes = if met {
            format!("minimum: {}", m.reasoning)
        } else {
            format!(
                "{diff}. Minimum: {}. Why more: {}",
                m.reasoning,
                if m.excess.is_empty() {
                    "(to be explained)"
                } else {
                    m.excess
                }
            )
        };
        table.row(&[
            "2",
            "Calls per operation (warm)",
            &format!("{}: {}", route.function, route.label),
            &fmt_calls(c),
            &format!(
                "= minimum: DynamoDB {} · Secrets Manager {} · PISTE {} · Chorus Pro {}",
                m.ddb, m.sm, m.piste, m.chorus
            ),
            if met { "✅" } else { "❌" },
            &notes,
        ]);
    }
}

fn fmt_count(v: f64) -> String {
    if (v - v.round()).abs() < 0.005 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

fn fmt_ops(ops: &std::collections::BTreeMap<String, f64>) -> String {
    ops.iter()
        .map(|(k, v)| format!("{k} {}", fmt_count(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_calls(c: &Calls) -> String {
    let part = |name: &str, total: f64, ops: &std::collections::BTreeMap<String, f64>| {
        if ops.is_empty() {
            format!("{name} 0")
        } else {
            format!("{name} {} ({})", fmt_count(total), fmt_ops(ops))
        }
    };
    format!(
        "{} · {} · PISTE {} · {}",
        part("DynamoDB", c.ddb_total(), &c.ddb),
        part("Secrets Manager", c.sm_total(), &c.sm),
        fmt_count(c.piste),
        part("Chorus Pro", c.chorus_total(), &c.chorus),
    )
}

/// `(met, difference)` of measured calls against the minimum.
fn compare(c: &Calls, m: &Minimum) -> (bool, String) {
    let diffs = [
        ("DynamoDB", c.ddb_total(), m.ddb),
        ("Secrets Manager", c.sm_total(), m.sm),
        ("PISTE", c.piste, m.piste),
        ("Chorus Pro", c.chorus_total(), m.chorus),
    ];
    let mut parts = Vec::new();
    for (name, got, min) in diffs {
        let d = got - f64::from(min);
        if d.abs() >= 0.005 {
            parts.push(format!(
                "{}{} {name}",
                if d > 0.0 { "+" } else { "" },
                fmt_count(d)
            ));
        }
    }
    (parts.is_empty(), parts.join(", "))
}

// 3. Starts against the hello world --------------------------------------------------------

/// The 128 MB share's description, or why there is none.
fn share(r: &Results) -> Option<String> {
    r.lambda_cpu.as_ref().map(|q| match q {
        Ok(quota) => quota.clone(),
        Err(why) => format!("skipped: cgroups not writable ({why})"),
    })
}

/// Section 3: the interleaved starts at full CPU and in the 128 MB share.
fn start_rows(table: &mut Table, r: &Results) {
    let share = share(r);
    for (starts, label) in [
        (&r.starts, "Cold start vs hello world (interleaved)"),
        (
            &r.lambda_starts,
            "Cold start vs hello world at a 128 MB CPU share",
        ),
    ] {
        match starts {
            Some(Ok(rows)) => binary_start_rows(table, rows, label, share.as_deref()),
            Some(Err(e)) => table.row(&["3", label, "—", "failed", "—", "❌", e]),
            None => {}
        }
    }
}

/// One row per binary of an interleaved run: absolute figures and ratios to the reference.
fn binary_start_rows(
    table: &mut Table,
    rows: &[coldstart::StartRow],
    label: &str,
    share: Option<&str>,
) {
    let in_share = label.contains("128 MB");
    for r in rows {
        let reference = r.function == coldstart::REFERENCE;
        let (target, met) = if reference {
            ("reference".to_owned(), "—")
        } else {
            (
                format!("median ≤ {START_RATIO_TARGET:.1}× the hello world"),
                yes(r.ratio_median <= START_RATIO_TARGET),
            )
        };
        let notes = match (reference, in_share) {
            (true, true) => share.unwrap_or_default().to_owned(),
            (true, false) => "lambda_runtime echo handler, same release profile".to_owned(),
            _ => String::new(),
        };
        let result = start_result(r, reference);
        table.row(&["3", label, &r.function, &result, &target, met, &notes]);
    }
}

fn start_result(r: &coldstart::StartRow, reference: bool) -> String {
    if reference {
        format!(
            "median {} · p90 {} ({} starts)",
            fmt_duration(r.median),
            fmt_duration(r.p90),
            r.starts.len()
        )
    } else {
        format!(
            "median {} ({:.2}×) · p90 {} ({:.2}×) ({} starts)",
            fmt_duration(r.median),
            r.ratio_median,
            fmt_duration(r.p90),
            r.ratio_p90,
            r.starts.len()
        )
    }
}

// 3. Where a cold start goes ---------------------------------------------------------------

/// Section 3: each initialisation step alone, at full CPU and in the 128 MB share; then why
/// the share was skipped, when it was.
fn init_step_rows(table: &mut Table, r: &Results) {
    for (steps, label) in [
        (
            &r.init_steps,
            "Where a cold start goes: one step alone, in a fresh process",
        ),
        (
            &r.lambda_init_steps,
            "Where a cold start goes, at a 128 MB CPU share",
        ),
    ] {
        match steps {
            Some(Ok(rows)) => step_rows(table, rows, label),
            Some(Err(e)) => table.row(&["3", label, "—", "failed", "—", "❌", e]),
            None => {}
        }
    }
    if let (Some(why), None) = (&share(r), &r.lambda_starts) {
        let measure = "Cold start at a 128 MB CPU share";
        table.row(&["3", measure, "—", why, "—", "—", ""]);
    }
}

fn step_rows(table: &mut Table, rows: &[initsteps::StepRow], label: &str) {
    for s in rows {
        let result = format!(
            "median {} · p90 {} ({} processes)",
            fmt_duration(s.median),
            fmt_duration(s.p90),
            s.samples
        );
        table.row(&["3", label, s.step, &result, "—", "—", s.what]);
    }
}

// 3. Cold start, size; 4. memory -----------------------------------------------------------

/// Sections 3 and 4: each function's start, first and warm events, size and peak memory;
/// in the 128 MB share, its first and warm events only.
fn cold_rows(table: &mut Table, cold: &[ColdResult]) {
    for c in cold {
        let fail = c.failures.join("; ");
        if c.lambda_cpu {
            table.row(&[
                "3",
                "First event, then warm events, at a 128 MB CPU share",
                c.function,
                &first_and_warm(c),
                "—",
                "—",
                &fail,
            ]);
            continue;
        }
        table.row(&[
            "3",
            "Cold start: process start → ready for the first event",
            c.function,
            &c.ready
                .map(fmt_duration)
                .unwrap_or_else(|| "not ready".into()),
            "≤ 50 ms",
            yes(c.ready.is_some_and(|d| d <= Duration::from_millis(50))),
            &fail,
        ]);
        let first = first_and_warm(c);
        table.row(&[
            "3",
            "First event, then warm events",
            c.function,
            &first,
            "—",
            "—",
            "",
        ]);
        size_and_memory_rows(table, c);
    }
}

/// Issue 18's target for every release binary, in bytes (8 MB, not 8 MiB).
const MAX_BINARY_BYTES: u64 = 8_000_000;

fn size_and_memory_rows(table: &mut Table, c: &ColdResult) {
    table.row(&[
        "3",
        "Release binary size (stripped, LTO)",
        c.function,
        &fmt_bytes(c.binary_bytes),
        "≤ 8 MB (issue 18)",
        yes(c.binary_bytes <= MAX_BINARY_BYTES),
        "",
    ]);
    table.row(&[
        "4",
        &format!("Peak memory (VmHWM) after {} events", c.answered),
        c.function,
        &c.peak_rss.map(fmt_mib).unwrap_or_else(|| "—".into()),
        "≤ 64 MiB (128 MB Lambda, half spare)",
        yes(c.peak_rss.is_some_and(|b| b <= 64 * 1024 * 1024)),
        if c.answered < c.events {
            "not every event was answered"
        } else {
            ""
        },
    ]);
}

fn first_and_warm(c: &ColdResult) -> String {
    format!(
        "first {} ({}); next {} median {} · p99 {}",
        c.first_event
            .map(fmt_duration)
            .unwrap_or_else(|| "—".into()),
        c.first_note,
        c.warm.count,
        fmt_duration(c.warm.median),
        fmt_duration(c.warm.p99)
    )
}

// 5. Burst ---------------------------------------------------------------------------------

/// Section 5: the burst's throughput, latency and where its CPU went.
fn burst_rows(
    table: &mut Table,
    burst: &Result<burst::BurstResult, String>,
    machine: &sys::Machine,
) {
    let b = match burst {
        Ok(b) => b,
        Err(e) => return table.row(&["5", "Month-end burst", "—", "failed", "—", "❌", e]),
    };
    let subject = format!(
        "{} situations of {} companies, {} concurrent callers, local API",
        b.transmissions, b.companies, b.callers
    );
    table.row(&[
        "5",
        "Month-end burst: throughput",
        &subject,
        &format!(
            "{:.1} transmissions/s ({} in {:.1} s)",
            b.transmissions as f64 / b.wall.as_secs_f64(),
            b.transmissions,
            b.wall.as_secs_f64()
        ),
        "—",
        "—",
        &burst_answers(b),
    ]);
    let latency = format!(
        "p50 {} · p99 {} · max {}",
        fmt_duration(b.latency.median),
        fmt_duration(b.latency.p99),
        fmt_duration(b.latency.max)
    );
    let measure = "Month-end burst: latency";
    table.row(&["5", measure, &subject, &latency, "—", "—", ""]);
    let (cpu, machine_cpu) = burst_cpu(b, machine);
    let measure = "Month-end burst: where the time goes (CPU)";
    table.row(&["5", measure, &subject, &cpu, "—", "—", &machine_cpu]);
}

/// The answers by status and by transmission state, the first other answer, the set-up.
fn burst_answers(b: &burst::BurstResult) -> String {
    let ok = b.statuses.get(&202).copied().unwrap_or(0);
    let states = b
        .states
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{ok} answered 202 (states: {states}){}; set-up (untimed) {:.0} s",
        b.first_failure
            .as_ref()
            .map(|f| format!("; first other answer: {f}"))
            .unwrap_or_default(),
        b.setup.as_secs_f64()
    )
}

/// `(the processes' shares, the machine's CPU during the burst)`.
fn burst_cpu(b: &burst::BurstResult, machine: &sys::Machine) -> (String, String) {
    let (g, m, e) = (b.cpu.gateway, b.cpu.moto, b.cpu.emulator);
    let sum = (g + m + e).as_secs_f64().max(1e-9);
    let other = b.cpu.machine.saturating_sub(g + m + e + b.cpu.callers);
    let shares = format!(
        "gateway {:.0} % ({:.1} s, {:.1} ms per transmission) · moto {:.0} % ({:.1} s) · emulator {:.0} % ({:.1} s)",
        100.0 * g.as_secs_f64() / sum,
        g.as_secs_f64(),
        1000.0 * g.as_secs_f64() / b.transmissions.max(1) as f64,
        100.0 * m.as_secs_f64() / sum,
        m.as_secs_f64(),
        100.0 * e.as_secs_f64() / sum,
        e.as_secs_f64()
    );
    let whole = format!(
        "CPU seconds during the burst ({:.1} s wall × {} cores = {:.0} s available): machine busy {:.1} s, of which the callers (bench) {:.1} s and other processes {:.1} s",
        b.wall.as_secs_f64(),
        machine.cores,
        b.wall.as_secs_f64() * machine.cores as f64,
        b.cpu.machine.as_secs_f64(),
        b.cpu.callers.as_secs_f64(),
        other.as_secs_f64()
    );
    (shares, whole)
}

// 6. Reminder ------------------------------------------------------------------------------

/// Section 6: the reminder run's figures as its test printed them, or why there are none.
fn reminder_rows(table: &mut Table, reminder: Option<&Result<reminder::ReminderResult, String>>) {
    const MEASURE: &str = "Reminder run";
    const SUBJECT: &str = "100,000 companies, 1,000 due";
    let m = match reminder {
        Some(Ok(m)) => m,
        Some(Err(e)) => return table.row(&["6", MEASURE, SUBJECT, "failed", "—", "❌", e]),
        None => {
            let skipped = "skipped (BENCH_SECTIONS)";
            return table.row(&["6", MEASURE, SUBJECT, skipped, "—", "—", ""]);
        }
    };
    let only_due = m.items_read == Some(1000) && m.companies == Some(1000);
    table.row(&[
        "6",
        MEASURE,
        SUBJECT,
        &format!(
            "{} items read, {} companies, {} e-mails sent, {} failed, in {}; a second run the same day reads {} items in {}",
            opt(m.items_read),
            opt(m.companies),
            opt(m.sent),
            opt(m.failed),
            m.run_time.clone().unwrap_or_else(|| "?".into()),
            opt(m.second_items_read),
            m.second_time.clone().unwrap_or_else(|| "?".into()),
        ),
        "reads only the 1,000 due",
        yes(only_due && m.passed),
        &format!(
            "seeding 100,000 accounts (untimed) took {}; the test {} ({:.0} s with the seeding)",
            m.seeding.clone().unwrap_or_else(|| "?".into()),
            if m.passed { "passed" } else { "FAILED" },
            m.took.as_secs_f64()
        ),
    ]);
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

fn yes(met: bool) -> &'static str {
    if met { "✅" } else { "❌" }
}

fn notes(calls: usize, warmups: usize, cold_events: usize) -> String {
    format!(
        "Notes
- **Set-up.** The bench runs a fresh moto for each section (the stack's `tests/stack/moto_server.py`, which processes one request at a time, on a free port: moto slows down as it fills), a Chorus Pro emulator of its own (the stack's, in a process of its own) and, for the burst, a local API of its own (the same router as `local-api`); the functions' code is the release build (LTO). Nothing is shared with tests running at the same time, and each process's CPU is the bench's alone — but the machine may be shared: see the load average above and the burst's \"other processes\". moto copies a whole table for each item of a `TransactWriteItems` (its rollback snapshot), so each group of routes works in a table of its own, and bulk set-up (situations to transmit, the burst's companies) is written by the handlers in a small staging table and copied over.
- **1. CPU.** Each handler is called in-process, warm, {calls} times after {warmups} warm-ups, on a current-thread tokio runtime; the figure is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) around the call, excluding the AWS network I/O: the functions' AWS SDK clients use the functions' HTTP client (`shared::aws::https`: reqwest, rustls) polled on an I/O thread of the bench's own, so connecting, writing, reading and HTTP framing are not on the measured thread (a task hand-off per call is). \"With the AWS SDK\" is everything else on the thread: the handler, the domain, the JSON, logging (JSON at INFO as in Lambda, into a sink), and the SDK's own work per operation (runtime plugins and configuration layering, serialisation, SigV4 signing, deserialisation, interceptors). \"Own\" is the handler's share: without the CPU spent between each SDK operation's first and last interceptor hooks (measured per call by an interceptor) and without the SDK's work before its first hook, calibrated on a lone `GetItem` and subtracted per operation (an estimate: it differs a little between operations). Chorus Pro calls go through reqwest on the measured thread, so the routes that call Chorus Pro (verify=true, the buyer check, the deposit) include that HTTP work on loopback. Building the API Gateway event is outside the measure; moto and the emulator answer over plain HTTP on 127.0.0.1. Met is judged on the own share: ✅ when its p99 is within the target, \"✅ median, ❌ p99\" when only the median is. \"Kernel\" is the system share of the thread's CPU over the timed calls (getrusage). The reference rows time an SDK call alone, and a route with logging off, to show where a request's CPU goes.
- **2. Calls.** DynamoDB and Secrets Manager calls are counted by an SDK interceptor on the function's clients (each attempt sent), PISTE and Chorus Pro calls from the emulator's journal, averaged over the timed calls of a warm function (its PISTE token and PISTE credentials cached). The minimum is reasoned per operation, next to each row.
- **3-4. Cold start and memory.** Each release binary (`cargo build --release`: LTO, one codegen unit, opt-level s, `panic = \"abort\"` as cargo-lambda deploys them, stripped) is started with the stack's environment (`SSL_CERT_DIR` removed: it is set in this sandbox and not in Lambda) and `AWS_LAMBDA_RUNTIME_API` pointing at a fake Runtime API served by the bench. \"Ready\" is from spawn to the function's first `GET …/invocation/next`: exec, the runtime, the configuration and the SDK's (since issue 18 no client is built before the first event that uses it, and no network call happens before the first event). The first event includes the first connections and, for the functions that call Chorus Pro, the PISTE credentials and token. Peak memory is VmHWM from `/proc/<pid>/status` after {cold_events} events. **Against the hello world** (issue 18): `tests/hello-world`, lambda_runtime's echo handler as its `basic-lambda` example writes it (default tracing subscriber, multi-thread tokio runtime), built in the same `cargo build --release`; each round starts the hello world then each function once, in turn, spawn → first `GET …/invocation/next` (the process is then ended), so the machine's load weighs on all alike; the ratio is a function's median over the hello world's median (p90 over p90). **At a 128 MB CPU share**: the same, each process moved between fork and exec into a cgroup of the bench's own whose CFS quota is 1 ms per 13.82 ms period, 7.2 % of a CPU: Lambda gives CPU in proportion to memory, a full vCPU at 1,769 MB (AWS Lambda Developer Guide, \"Configure Lambda function memory\"); skipped with a note where no cgroup can be written. The first-event and warm-event rows are measured again in it. **Where a cold start goes**: each step of the functions' initialisation alone, timed in a fresh process of this binary (release build, the same libraries), so that what a process does once (reading TLS roots, the crypto library's set-up) counts as it does at a cold start; the rows for the reqwest client as built before and for the system's TLS roots show what the functions no longer do before their first event.
- **5. Burst.** The companies are random SIRETs using the emulator's seeded technical account (`TECH_1_batiments-rhone@cpro.fr`, settings saved with verify=false), each with one market (checked against the buyer in Chorus Pro) and its situations, set up beforehand and untimed. Chorus Pro accepts a deposit from any seller with valid credentials and rejects a seller outside the account's structures only when it integrates the flux, later, outside what is measured: the burst's answers are real deposits. Callers send situation k of every company before situation k+1, 32 at a time, each with its own company's token. \"Gateway\" CPU includes the local API's own work (JWT check, event building), which API Gateway does in AWS; in Lambda 32 callers would meet 32 instances, here one process (2 worker threads) serves them all. moto's one-request-at-a-time processing bounds the throughput.
- **6. Reminder.** The password-reminder engineer's ignored test `{}` (it seeds 100,000 accounts in a table of its own, 1,000 of them due, and runs the reminder in-process against moto; test profile build), run against the bench's moto; its figures as it prints them.
",
        reminder::TEST
    )
}
