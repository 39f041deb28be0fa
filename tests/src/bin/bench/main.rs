//! `make bench` (issue 7, "Proof under faults and load"): measures the gateway on the local
//! stack and in-process, prints one table and writes it to `tests/bench/RESULTS.md`.
//!
//! 1. Warm handler CPU time per route (in-process, thread CPU time, 200 calls after 20
//!    warm-ups), and `shared::ubl::prepare` on a 200-line invoice.
//! 2. Calls per operation (DynamoDB, Secrets Manager by SDK interceptor; PISTE and Chorus
//!    Pro from the emulator's journal) against the minimum each operation needs.
//! 3. Cold start of each release binary against a fake Lambda Runtime API, first event,
//!    binary size; the starts interleaved with a hello world's (issue 18), where the
//!    initialisation goes step by step, and both again at a 128 MB Lambda's CPU share.
//! 4. Peak memory (VmHWM) after 50 events.
//! 5. The month-end burst through the local API.
//! 6. The reminder run over 100,000 companies (the password-reminder engineer's test).
//! 7. The follow-up at scale: change searches against each invoice consulted (`follow`).
//!
//! Expects the stack's environment (`eval "$(tests/stack/stack.sh env)"`, `make up`). It
//! starts a moto of its own (the stack's `tests/stack/moto_server.py` on a free port), its
//! own Chorus Pro emulator and local API (this binary, `serve-sandbox` and `serve-api`,
//! release builds): nothing is shared with tests running at the same time, and the CPU of
//! each process is the bench's alone. All of it ends with the bench.
//!
//! Knobs: `BENCH_CALLS` (200), `BENCH_WARMUPS` (20), `BENCH_COLD_EVENTS` (50),
//! `BENCH_COMPANIES` (200), `BENCH_SITUATIONS` (10 per company), `BENCH_CALLERS` (32),
//! `BENCH_SECTIONS` (`1,3,5,6,7`: which to run, 1 being 1-2 and 3 being 3-4; `starts` for
//! section 3's starts alone), `BENCH_STARTS` (30: cold starts of each binary, interleaved
//! with the hello world's), `BENCH_BEFORE_DIR` (earlier release binaries, started in the
//! same rounds for a before/after comparison), `BENCH_RESULTS` (where to write the table),
//! `BENCH_FOLLOW_COMPANIES` (1000: section 7's companies).
//!
//! Where things are: this file reads the knobs, sets the run up (`Bench::set_up`), runs the
//! sections in turn (`Bench::measure`) and writes the report; `servers` starts the bench's
//! own emulator, local API and motos; `inprocess` measures sections 1-2 (one function per
//! group of routes), `cold` and `coldstart` sections 3-4, `burst` 5, `reminder` 6, `follow`
//! 7; `render` writes the table of sections 1-6 (one function per section) through `table`,
//! the one Markdown table writer, which `follow` uses for section 7's.

mod burst;
mod cgroup;
mod cold;
mod coldstart;
mod fixtures;
mod follow;
mod initsteps;
mod inprocess;
mod offthread;
mod reminder;
mod render;
mod servers;
mod stats;
mod sys;
mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gateway_tests::jwt;
use tokio::runtime::Runtime;

use crate::cold::ColdPlan;
use crate::coldstart::ColdResult;
use crate::inprocess::{InProcess, RouteResult};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The knobs of a run (see the top of this file).
struct Knobs {
    calls: usize,
    warmups: usize,
    cold_events: usize,
    starts: usize,
    companies: usize,
    per_company: usize,
    callers: usize,
    sections: String,
}

impl Knobs {
    fn from_env() -> Knobs {
        Knobs {
            calls: env_usize("BENCH_CALLS", 200),
            warmups: env_usize("BENCH_WARMUPS", 20),
            cold_events: env_usize("BENCH_COLD_EVENTS", 50).max(2),
            starts: env_usize("BENCH_STARTS", 30).max(1),
            companies: env_usize("BENCH_COMPANIES", 200),
            per_company: env_usize("BENCH_SITUATIONS", 10),
            callers: env_usize("BENCH_CALLERS", 32),
            sections: env_or("BENCH_SECTIONS", "1,3,5,6,7"),
        }
    }

    /// Whether `BENCH_SECTIONS` names section `n`.
    fn section(&self, n: &str) -> bool {
        self.sections.split(',').any(|s| s.trim() == n)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("serve-sandbox") => servers::serve_sandbox(),
        Some("serve-api") => servers::serve_api(),
        Some("init-step") => initsteps::run_step(args.get(1).map_or("", String::as_str)),
        None => bench(),
        Some(other) => Err(format!(
            "unknown command {other:?}: bench [serve-sandbox|serve-api]"
        )),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A moto of the bench's own, and the in-process functions pointed at it.
struct Aws {
    in_process: InProcess,
    endpoint: String,
    moto: sys::ChildGuard,
}

#[derive(Default)]
struct Results {
    routes: Vec<RouteResult>,
    /// Interleaved starts against the hello world, at full CPU and in the 128 MB share.
    starts: Option<Result<Vec<coldstart::StartRow>, String>>,
    lambda_starts: Option<Result<Vec<coldstart::StartRow>, String>>,
    /// The cgroup's quota, or why there is none.
    lambda_cpu: Option<Result<String, String>>,
    /// Each initialisation step alone, at full CPU and in the 128 MB share.
    init_steps: Option<Result<Vec<initsteps::StepRow>, String>>,
    lambda_init_steps: Option<Result<Vec<initsteps::StepRow>, String>>,
    cold: Vec<ColdResult>,
    burst: Option<Result<burst::BurstResult, String>>,
    reminder: Option<Result<reminder::ReminderResult, String>>,
    errors: Vec<String>,
    /// How long each section took (wall).
    sections: Vec<(&'static str, Duration)>,
}

impl Results {
    /// Records the time since `since` as section `name`'s, and starts the next one's.
    fn lap(&mut self, name: &'static str, since: &mut Instant) {
        self.sections.push((name, since.elapsed()));
        *since = Instant::now();
    }
}

/// Set-up, the sections the knobs name, then the report.
fn bench() -> Result<(), String> {
    let started = Instant::now();
    let machine = sys::machine();
    let (bench, emulator) = Bench::set_up()?;
    let (results, follow_section) = bench.measure(emulator);
    let mut report = render::render(&machine, &results, started.elapsed(), &bench.knobs);
    report.push_str(&follow_section.unwrap_or_default());
    write_report(&report)?;
    if results.errors.is_empty() {
        Ok(())
    } else {
        Err(results.errors.join("; "))
    }
}

/// Prints the table and writes it to `BENCH_RESULTS` (`tests/bench/RESULTS.md`).
fn write_report(report: &str) -> Result<(), String> {
    println!("{report}");
    let path = std::env::var("BENCH_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("tests/bench/RESULTS.md"));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&path, report).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("written to {}", path.display());
    Ok(())
}

/// What every section shares: the knobs, the run's names, the bench's Chorus Pro emulator,
/// the functions' configuration and the bench's I/O runtime.
struct Bench {
    knobs: Knobs,
    run: String,
    logs: PathBuf,
    emulator: String,
    secret_prefix: String,
    tables: String,
    config: shared::config::Config,
    io: Runtime,
}

impl Bench {
    /// The knobs, the functions' logging, and the bench's Chorus Pro emulator (returned, to
    /// be ended after the burst).
    fn set_up() -> Result<(Bench, sys::ChildGuard), String> {
        // Before any child is started: without the stack the process ends here.
        gateway_tests::testkit::require_stack();
        let knobs = Knobs::from_env();
        let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
        let logs = root().join(".local/logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;

        // The functions log as Lambda does (JSON, INFO), here into nothing.
        tracing_subscriber::fmt()
            .json()
            .with_target(false)
            .without_time()
            .with_writer(std::io::sink)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .init();

        eprintln!("bench {run}: a Chorus Pro emulator, and a moto per section, of its own…");
        let (emulator_child, emulator_port) = sys::spawn_server(
            &["serve-sandbox"],
            &[("RUST_LOG".into(), "warn".into())],
            &logs.join("bench-chorus-sandbox.log"),
        )?;
        let emulator = format!("http://127.0.0.1:{emulator_port}");
        let secret_prefix = format!("choruspro-gateway-bench-{run}");
        let tables = format!("bench-{run}");
        let none = format!("{tables}-none");
        let config = functions_config(&function_env(&emulator, &secret_prefix, "", &none));
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let bench = Bench {
            knobs,
            run,
            logs,
            emulator,
            secret_prefix,
            tables,
            config,
            io,
        };
        Ok((bench, emulator_child))
    }

    /// What the functions' processes get on top of the stack's environment.
    fn overrides(&self, endpoint: &str, table: &str) -> Vec<(String, String)> {
        function_env(&self.emulator, &self.secret_prefix, endpoint, table)
    }

    /// Each section the knobs name, in turn (their order matters: each runs alone on the
    /// machine); the emulator ends after the burst. The results, and section 7's table.
    fn measure(&self, emulator: sys::ChildGuard) -> (Results, Option<String>) {
        let section = |n: &str| self.knobs.section(n);
        let mut results = Results::default();
        let mut since = Instant::now();
        results.lap("start-up", &mut since);
        if section("1") {
            self.routes_section(&mut results);
            results.lap("1-2", &mut since);
        }
        if section("3") {
            self.cold_section(&mut results);
            results.lap("3-4", &mut since);
        }
        // The starts of section 3 alone (no moto, no event): BENCH_SECTIONS=starts.
        if section("starts") && !section("3") {
            self.starts_section(&mut results);
            results.lap("3 (starts)", &mut since);
        }
        results.burst = section("5").then(|| self.burst_section(&emulator));
        if let Some(Err(e)) = &results.burst {
            eprintln!("  burst failed: {e}");
        }
        if results.burst.is_some() {
            results.lap("5", &mut since);
        }
        drop(emulator);
        if !section("6") {
            eprintln!(
                "6. reminder run skipped (BENCH_SECTIONS={})",
                self.knobs.sections
            );
        } else {
            results.reminder = Some(self.reminder_section());
            results.lap("6", &mut since);
        }
        let follow_section = section("7").then(|| {
            let outcome = self.follow_section();
            results.lap("7", &mut since);
            follow::render(&outcome)
        });
        (results, follow_section)
    }

    /// A fresh moto for each section: moto slows down as it fills (its Query reads and sorts
    /// the whole table, a transaction copies it), and its memory is only freed with it.
    fn fresh_aws(&self) -> Result<Aws, String> {
        let (moto, port) = servers::start_moto(&self.logs)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let sdk = self.sdk_for(&endpoint);
        self.io.block_on(servers::init_aws(&sdk, &self.config))?;
        let k = &self.knobs;
        let in_process = InProcess::new(&sdk, &self.config, &self.emulator, k.warmups, k.calls)?;
        Ok(Aws {
            in_process,
            endpoint,
            moto,
        })
    }

    fn sdk_for(&self, endpoint: &str) -> shared::aws::SdkConfig {
        self.io
            .block_on(shared::aws::config_loader().endpoint_url(endpoint).load())
    }

    /// Sections 1 and 2: every route warm, in-process.
    fn routes_section(&self, results: &mut Results) {
        let (warmups, calls) = (self.knobs.warmups, self.knobs.calls);
        eprintln!(
            "1-2. warm handlers in-process ({warmups} warm-ups, {calls} timed calls per route)"
        );
        match self
            .fresh_aws()
            .and_then(|aws| aws.in_process.run_all(&self.run, &self.tables))
        {
            Ok(rows) => results.routes = rows,
            Err(e) => results.errors.push(format!("in-process: {e}")),
        }
    }

    /// Sections 3 and 4: the starts, then each release binary's events.
    fn cold_section(&self, results: &mut Results) {
        eprintln!(
            "3-4. cold start and peak memory of the release binaries ({} events each)",
            self.knobs.cold_events
        );
        let outcome = self.fresh_aws().and_then(|aws| {
            let overrides = |table: &str| self.overrides(&aws.endpoint, table);
            let plan = self.cold_plan(self.knobs.cold_events);
            let starts = self.knobs.starts;
            cold::cold_section(
                &self.io,
                &aws.in_process,
                &overrides,
                &plan,
                starts,
                results,
            )
        });
        match outcome {
            Ok(rows) => results.cold = rows,
            Err(e) => results.errors.push(format!("cold start: {e}")),
        }
    }

    /// Section 3's starts alone, against a moto that is not there.
    fn starts_section(&self, results: &mut Results) {
        let starts = self.knobs.starts;
        eprintln!("3. cold starts against the hello world ({starts} each)");
        let env = self.overrides("http://127.0.0.1:9", &format!("{}-starts", self.tables));
        let plan = self.cold_plan(0);
        drop(cold::start_section(&self.io, &env, &plan, starts, results));
    }

    fn cold_plan(&self, events: usize) -> ColdPlan<'_> {
        ColdPlan {
            tables: self.tables.clone(),
            run: &self.run,
            events,
            logs: &self.logs,
            cpu: None,
        }
    }

    /// Section 5: the companies set up (untimed), then the burst through a local API of the
    /// bench's own.
    fn burst_section(&self, emulator: &sys::ChildGuard) -> Result<burst::BurstResult, String> {
        let Knobs {
            companies,
            per_company,
            callers,
            ..
        } = self.knobs;
        eprintln!(
            "5. month-end burst: {} situations of {companies} companies, {callers} callers",
            companies * per_company
        );
        let aws = self.fresh_aws()?;
        let table = format!("{}-burst", self.tables);
        let (sirets, setup) = self.burst_set_up(&aws, &table)?;
        let jwt_secret = env_or("LOCAL_JWT_SECRET", jwt::DEFAULT_SECRET);
        let mut env = self.overrides(&aws.endpoint, &table);
        env.push(("LOCAL_JWT_SECRET".into(), jwt_secret.clone()));
        let (api_child, api_port) =
            sys::spawn_server(&["serve-api"], &env, &self.logs.join("bench-local-api.log"))?;
        let pids = burst::Pids {
            gateway: api_child.pid(),
            moto: aws.moto.pid(),
            emulator: emulator.pid(),
        };
        let plan = burst::Plan {
            api: format!("http://127.0.0.1:{api_port}"),
            jwt_secret,
            companies: sirets,
            per_company,
            callers,
            setup,
        };
        let outcome = burst::run(&plan, &pids);
        drop(api_child);
        outcome
    }

    /// The burst's companies, their markets and situations, written by the handlers; the
    /// SIRETs, and how long it took.
    fn burst_set_up(&self, aws: &Aws, table: &str) -> Result<(Vec<String>, Duration), String> {
        let sirets: Vec<String> = (0..self.knobs.companies)
            .map(|_| gateway_tests::testkit::random_siret())
            .collect();
        let setup_started = Instant::now();
        aws.in_process.functions(table)?;
        aws.in_process.burst_companies(
            table,
            &format!("{}-burst-staging", self.tables),
            &self.run,
            &sirets,
            self.knobs.per_company,
        )?;
        let setup = setup_started.elapsed();
        eprintln!("  set-up (untimed): {:.0} s", setup.as_secs_f64());
        Ok((sirets, setup))
    }

    /// Section 6: the password-reminder engineer's test, against a moto of its own.
    fn reminder_section(&self) -> Result<reminder::ReminderResult, String> {
        eprintln!(
            "6. reminder run over 100,000 companies (cargo test … {} --ignored)",
            reminder::TEST
        );
        let outcome = servers::start_moto(&self.logs).and_then(|(moto, port)| {
            let outcome = reminder::run(&format!("http://127.0.0.1:{port}"));
            drop(moto);
            outcome
        });
        if let Err(e) = &outcome {
            eprintln!("  reminder run failed: {e}");
        }
        outcome
    }

    /// Section 7: the follow-up at scale, its test against a moto of its own.
    fn follow_section(&self) -> Result<follow::FollowResult, String> {
        let companies = env_usize("BENCH_FOLLOW_COMPANIES", 1000);
        eprintln!(
            "7. follow-up at scale: {companies} companies (cargo test … {} --ignored)",
            follow::TEST
        );
        let outcome = servers::start_moto(&self.logs).and_then(|(moto, port)| {
            // The PISTE credentials secret the functions read, as in every section's moto.
            let endpoint = format!("http://127.0.0.1:{port}");
            let sdk = self.sdk_for(&endpoint);
            let outcome = self
                .io
                .block_on(servers::init_aws(&sdk, &self.config))
                .and_then(|()| follow::run(&endpoint, companies));
            drop(moto);
            outcome
        });
        if let Err(e) = &outcome {
            eprintln!("  follow-up run failed: {e}");
        }
        outcome
    }
}

/// What the functions' processes get on top of the stack's environment: the bench's
/// emulator, secrets, table and moto.
fn function_env(
    emulator: &str,
    secret_prefix: &str,
    endpoint: &str,
    table: &str,
) -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL".into(), endpoint.to_owned()),
        ("TABLE_NAME".into(), table.to_owned()),
        ("SECRET_PREFIX".into(), secret_prefix.to_owned()),
        ("CHORUS_API_URL".into(), format!("{emulator}/cpro")),
        (
            "PISTE_TOKEN_URL".into(),
            format!("{emulator}/api/oauth/token"),
        ),
    ]
}

/// The in-process functions' configuration: the stack's, with the functions' overrides but
/// for the endpoint (the SDK configuration carries it).
fn functions_config(overrides: &[(String, String)]) -> shared::config::Config {
    let refs: Vec<(&str, &str)> = overrides
        .iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    gateway_tests::testkit::stack_config(&refs)
}
