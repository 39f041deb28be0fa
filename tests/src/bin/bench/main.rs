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

mod burst;
mod cgroup;
mod coldstart;
mod fixtures;
mod follow;
mod initsteps;
mod inprocess;
mod offthread;
mod reminder;
mod stats;
mod sys;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_tests::jwt;
use gateway_tests::local_api::{EventParts, LocalApi, build_event, serve};
use gateway_tests::sandbox::{Progress, SandboxConfig, Seed, try_spawn};
use serde_json::{Map, Value, json};

use crate::coldstart::ColdResult;
use crate::inprocess::{Calls, InProcess, Minimum, RouteResult};
use crate::stats::{fmt_bytes, fmt_duration};

/// The deployed functions whose starts are measured against the hello world, in the order
/// of the table (`documents`, issue 16, has no first-event row of its own).
const STARTED: [&str; 6] = [
    "company-settings",
    "identifiers",
    "transmit-invoice",
    "status-sync",
    "password-reminder",
    "documents",
];

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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("serve-sandbox") => serve_sandbox(),
        Some("serve-api") => serve_api(),
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

/// The Chorus Pro emulator, in a process of its own; prints its port.
fn serve_sandbox() -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let handle = try_spawn(SandboxConfig {
            port: 0,
            seed: Seed::embedded(),
            progress: Progress::OnPoll,
            token_lifetime: None,
            ..SandboxConfig::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        println!("{}", handle.addr().port());
        std::future::pending::<()>().await;
        drop(handle);
        Ok(())
    })
}

/// The local API (the same router as `local-api`), in a process of its own; prints its port.
fn serve_api() -> Result<(), String> {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let config = shared::config::Config::from_env().map_err(|e| e.to_string())?;
        let sdk = shared::aws::sdk_config().await;
        let api = Arc::new(LocalApi {
            company_settings: Arc::new(company_settings::State::from_sdk(config.clone(), &sdk)),
            identifiers: Arc::new(identifiers::State::from_sdk(config.clone(), &sdk)),
            transmit_invoice: Arc::new(transmit_invoice::State::from_sdk(config.clone(), &sdk)),
            documents: Arc::new(documents::State::from_sdk(config, &sdk)),
            jwt_secret: env_or("LOCAL_JWT_SECRET", jwt::DEFAULT_SECRET),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "{}",
            listener.local_addr().map_err(|e| e.to_string())?.port()
        );
        serve(listener, api).await.map_err(|e| e.to_string())
    })
}

/// A moto of the bench's own, as the stack runs it, on a free port; its PISTE credentials
/// secret and verified SES sender as `tests/stack/init_aws.py` creates them.
fn start_moto(logs: &Path) -> Result<(sys::ChildGuard, u16), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let python = root().join(".venv/bin/python");
    let log = std::fs::File::create(logs.join("bench-moto.log")).map_err(|e| e.to_string())?;
    let child = std::process::Command::new(&python)
        .arg(root().join("tests/stack/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e} (make venv)", python.display()))?;
    let mut child = sys::ChildGuard::new(child);
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if child.exited() || Instant::now() > until {
            return Err("moto did not start: see .local/logs/bench-moto.log".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((child, port))
}

async fn init_aws(
    sdk: &shared::aws::SdkConfig,
    config: &shared::config::Config,
) -> Result<(), String> {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(&config.piste_credentials_secret)
        .secret_string(
            json!({
                "client_id": env_or("PISTE_CLIENT_ID", "gateway-local"),
                "client_secret": env_or("PISTE_CLIENT_SECRET", "gateway-local-secret"),
            })
            .to_string(),
        )
        .send()
        .await
        .map_err(|e| format!("PISTE secret: {}", shared::aws::error_text(&e)))?;
    let sender = env_or("SENDER_EMAIL", "rappels@choruspro-gateway.local");
    let domain = sender
        .split_once('@')
        .map(|(_, d)| d)
        .unwrap_or("choruspro-gateway.local");
    shared::aws::sesv2::Client::new(sdk)
        .create_email_identity()
        .email_identity(domain)
        .send()
        .await
        .map_err(|e| format!("SES identity: {}", shared::aws::error_text(&e)))?;
    Ok(())
}

/// An API Gateway (payload 2.0) event for a company's own caller.
fn http_event(
    route: &str,
    path: &str,
    params: &[(&str, &str)],
    company: &str,
    body: Option<&Value>,
) -> Value {
    let method = route.split(' ').next().unwrap_or("GET");
    let mut claims = Map::new();
    claims.insert("sub".into(), "bench".into());
    claims.insert("companies".into(), json!([company]));
    let params = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    let headers = [("content-type".to_owned(), "application/json".to_owned())];
    build_event(&EventParts {
        route_key: route,
        method,
        path,
        query: "",
        headers: &headers,
        body: &bytes,
        path_parameters: &params,
        claims: &claims,
    })
}

fn scheduled_event() -> Value {
    json!({"scheduled_time": shared::clock::rfc3339(time::OffsetDateTime::now_utc())})
}

fn http_ok(v: &Value) -> bool {
    v["statusCode"].as_u64().is_some_and(|s| s < 400)
}

/// A moto of the bench's own, and the in-process functions pointed at it.
struct Aws {
    in_process: InProcess,
    endpoint: String,
    moto: sys::ChildGuard,
}

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

fn bench() -> Result<(), String> {
    let started = Instant::now();
    let machine = sys::machine();
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let calls = env_usize("BENCH_CALLS", 200);
    let warmups = env_usize("BENCH_WARMUPS", 20);
    let cold_events = env_usize("BENCH_COLD_EVENTS", 50).max(2);
    let starts = env_usize("BENCH_STARTS", 30).max(1);
    let companies = env_usize("BENCH_COMPANIES", 200);
    let per_company = env_usize("BENCH_SITUATIONS", 10);
    let callers = env_usize("BENCH_CALLERS", 32);
    let sections = env_or("BENCH_SECTIONS", "1,3,5,6,7");
    let section = |n: &str| sections.split(',').any(|s| s.trim() == n);
    let logs = root().join(".local/logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;

    // The functions log as Lambda does (JSON, INFO), here into nothing.
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .with_writer(std::io::sink)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
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
    // What the functions' processes get on top of the stack's environment.
    let overrides = |endpoint: &str, table: &str| -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), endpoint.to_owned()),
            ("TABLE_NAME".into(), table.to_owned()),
            ("SECRET_PREFIX".into(), secret_prefix.clone()),
            ("CHORUS_API_URL".into(), format!("{emulator}/cpro")),
            (
                "PISTE_TOKEN_URL".into(),
                format!("{emulator}/api/oauth/token"),
            ),
        ]
    };
    let config = {
        let pairs = overrides("", &format!("{tables}-none"));
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        gateway_tests::testkit::stack_config(&refs)
    };
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // A fresh moto for each section: moto slows down as it fills (its Query reads and sorts
    // the whole table, a transaction copies it), and its memory is only freed with it.
    let fresh_aws = || -> Result<Aws, String> {
        let (moto, port) = start_moto(&logs)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let sdk = io.block_on(shared::aws::config_loader().endpoint_url(&endpoint).load());
        io.block_on(init_aws(&sdk, &config))?;
        let in_process = InProcess::new(&sdk, &config, &emulator, warmups, calls)?;
        Ok(Aws {
            in_process,
            endpoint,
            moto,
        })
    };

    let mut results = Results {
        routes: Vec::new(),
        starts: None,
        lambda_starts: None,
        lambda_cpu: None,
        init_steps: None,
        lambda_init_steps: None,
        cold: Vec::new(),
        burst: None,
        reminder: None,
        errors: Vec::new(),
        sections: Vec::new(),
    };
    let mut section_started = Instant::now();
    let mut lap = |results: &mut Results, name: &'static str| {
        results.sections.push((name, section_started.elapsed()));
        section_started = Instant::now();
    };
    lap(&mut results, "start-up");

    // 1 and 2 -----------------------------------------------------------------------------
    if section("1") {
        eprintln!(
            "1-2. warm handlers in-process ({warmups} warm-ups, {calls} timed calls per route)"
        );
        match fresh_aws().and_then(|aws| aws.in_process.run_all(&run, &tables)) {
            Ok(rows) => results.routes = rows,
            Err(e) => results.errors.push(format!("in-process: {e}")),
        }
        lap(&mut results, "1-2");
    }

    // 3 and 4 -----------------------------------------------------------------------------
    if section("3") {
        eprintln!(
            "3-4. cold start and peak memory of the release binaries ({cold_events} events each)"
        );
        let outcome = fresh_aws().and_then(|aws| {
            let overrides = |table: &str| overrides(&aws.endpoint, table);
            let plan = ColdPlan {
                tables: tables.clone(),
                run: &run,
                events: cold_events,
                logs: &logs,
                cpu: None,
            };
            cold_section(
                &io,
                &aws.in_process,
                &overrides,
                &plan,
                starts,
                &mut results,
            )
        });
        match outcome {
            Ok(rows) => results.cold = rows,
            Err(e) => results.errors.push(format!("cold start: {e}")),
        }
        lap(&mut results, "3-4");
    }

    // The starts of section 3 alone (no moto, no event): BENCH_SECTIONS=starts.
    if section("starts") && !section("3") {
        eprintln!("3. cold starts against the hello world ({starts} each)");
        let env = overrides("http://127.0.0.1:9", &format!("{tables}-starts"));
        let plan = ColdPlan {
            tables: tables.clone(),
            run: &run,
            events: 0,
            logs: &logs,
            cpu: None,
        };
        drop(start_section(&io, &env, &plan, starts, &mut results));
        lap(&mut results, "3 (starts)");
    }

    // 5 -------------------------------------------------------------------------------------
    let burst = section("5").then(|| {
        eprintln!(
            "5. month-end burst: {} situations of {companies} companies, {callers} callers",
            companies * per_company
        );
        let aws = fresh_aws()?;
        let table = format!("{tables}-burst");
        let sirets: Vec<String> = (0..companies)
            .map(|_| gateway_tests::testkit::random_siret())
            .collect();
        let setup_started = Instant::now();
        aws.in_process.functions(&table)?;
        aws.in_process.burst_companies(
            &table,
            &format!("{tables}-burst-staging"),
            &run,
            &sirets,
            per_company,
        )?;
        let setup = setup_started.elapsed();
        eprintln!("  set-up (untimed): {:.0} s", setup.as_secs_f64());
        let mut env = overrides(&aws.endpoint, &table);
        env.push((
            "LOCAL_JWT_SECRET".into(),
            env_or("LOCAL_JWT_SECRET", jwt::DEFAULT_SECRET),
        ));
        let (api_child, api_port) =
            sys::spawn_server(&["serve-api"], &env, &logs.join("bench-local-api.log"))?;
        let pids = burst::Pids {
            gateway: api_child.pid(),
            moto: aws.moto.pid(),
            emulator: emulator_child.pid(),
        };
        let outcome = burst::run(
            &format!("http://127.0.0.1:{api_port}"),
            &env_or("LOCAL_JWT_SECRET", jwt::DEFAULT_SECRET),
            &sirets,
            per_company,
            callers,
            setup,
            &pids,
        );
        drop(api_child);
        outcome
    });
    if let Some(Err(e)) = &burst {
        eprintln!("  burst failed: {e}");
    }
    if burst.is_some() {
        lap(&mut results, "5");
    }
    results.burst = burst;
    drop(emulator_child);

    // 6 -------------------------------------------------------------------------------------
    if !section("6") {
        eprintln!("6. reminder run skipped (BENCH_SECTIONS={sections})");
    } else {
        eprintln!(
            "6. reminder run over 100,000 companies (cargo test … {} --ignored)",
            reminder::TEST
        );
        let outcome = start_moto(&logs).and_then(|(moto, port)| {
            let outcome = reminder::run(&format!("http://127.0.0.1:{port}"));
            drop(moto);
            outcome
        });
        if let Err(e) = &outcome {
            eprintln!("  reminder run failed: {e}");
        }
        results.reminder = Some(outcome);
        lap(&mut results, "6");
    }

    // 7 -------------------------------------------------------------------------------------
    let follow_section = section("7").then(|| {
        let companies = env_usize("BENCH_FOLLOW_COMPANIES", 1000);
        eprintln!(
            "7. follow-up at scale: {companies} companies (cargo test … {} --ignored)",
            follow::TEST
        );
        let outcome = start_moto(&logs).and_then(|(moto, port)| {
            // The PISTE credentials secret the functions read, as in every section's moto.
            let endpoint = format!("http://127.0.0.1:{port}");
            let sdk = io.block_on(shared::aws::config_loader().endpoint_url(&endpoint).load());
            let outcome = io
                .block_on(init_aws(&sdk, &config))
                .and_then(|()| follow::run(&endpoint, companies));
            drop(moto);
            outcome
        });
        if let Err(e) = &outcome {
            eprintln!("  follow-up run failed: {e}");
        }
        lap(&mut results, "7");
        follow::render(&outcome)
    });

    let mut report = render(
        &machine,
        &results,
        started.elapsed(),
        calls,
        warmups,
        cold_events,
    );
    report.push_str(&follow_section.unwrap_or_default());
    println!("{report}");
    let path = std::env::var("BENCH_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("tests/bench/RESULTS.md"));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("written to {}", path.display());
    if results.errors.is_empty() {
        Ok(())
    } else {
        Err(results.errors.join("; "))
    }
}

/// What the cold-start runs of section 3 use: tables named from `tables`, `events` events
/// per function, logs in `logs`, in `cpu` when given.
struct ColdPlan<'a> {
    tables: String,
    run: &'a str,
    events: usize,
    logs: &'a Path,
    cpu: Option<&'a cgroup::LambdaCpu>,
}

/// The starts of section 3: each binary against the hello world, interleaved, and each
/// initialisation step alone; at full CPU, then in a 128 MB Lambda's CPU share where a
/// cgroup can be made (returned, for the events that follow).
fn start_section(
    io: &tokio::runtime::Runtime,
    env: &[(String, String)],
    plan: &ColdPlan,
    starts: usize,
    results: &mut Results,
) -> Option<cgroup::LambdaCpu> {
    let interleaved =
        |cpu| coldstart::interleaved_starts(io, &STARTED, env, plan.logs, starts, cpu);
    eprintln!("  {starts} starts of each binary, interleaved, against the hello world");
    results.starts = Some(interleaved(None));
    eprintln!("  where the initialisation goes: each step alone, {starts} fresh processes");
    results.init_steps = Some(initsteps::measure(env, starts, None));
    let lambda_cpu = cgroup::LambdaCpu::create(&format!("choruspro-bench-{}", plan.run));
    results.lambda_cpu = Some(match &lambda_cpu {
        Ok(cpu) => Ok(cpu.description.clone()),
        Err(why) => Err(why.clone()),
    });
    let cpu = match lambda_cpu {
        Ok(cpu) => cpu,
        Err(why) => {
            eprintln!("  128 MB CPU share: skipped, cgroups not writable ({why})");
            return None;
        }
    };
    eprintln!("  128 MB CPU share: {}", cpu.description);
    results.lambda_starts = Some(interleaved(Some(&cpu)));
    results.lambda_init_steps = Some(initsteps::measure(env, starts, Some(&cpu)));
    Some(cpu)
}

/// Section 3: the starts, then each function's events, at full CPU and again in the 128 MB
/// share when there is one.
fn cold_section(
    io: &tokio::runtime::Runtime,
    setup: &InProcess,
    overrides: &dyn Fn(&str) -> Vec<(String, String)>,
    plan: &ColdPlan,
    starts: usize,
    results: &mut Results,
) -> Result<Vec<ColdResult>, String> {
    let env = overrides(&format!("{}-starts", plan.tables));
    let lambda_cpu = start_section(io, &env, plan, starts, results);
    let mut rows = cold_starts(io, setup, overrides, plan)?;
    if let Some(cpu) = &lambda_cpu {
        let in_share = ColdPlan {
            tables: format!("{}-q", plan.tables),
            cpu: Some(cpu),
            ..*plan
        };
        rows.extend(cold_starts(io, setup, overrides, &in_share)?);
    }
    Ok(rows)
}

fn cold_starts(
    io: &tokio::runtime::Runtime,
    setup: &InProcess,
    overrides: &dyn Fn(&str) -> Vec<(String, String)>,
    plan: &ColdPlan,
) -> Result<Vec<ColdResult>, String> {
    let ColdPlan {
        ref tables,
        run,
        events,
        logs,
        cpu,
    } = *plan;
    let a = fixtures::RHONE_SIRET;
    let quota = if cpu.is_some() { "-lambda-cpu" } else { "" };
    let log = |f: &str| logs.join(format!("bench-{f}{quota}.log"));
    let mut rows = Vec::new();
    let mut record = |result: Result<ColdResult, String>| {
        let r = result?;
        eprintln!(
            "  {:<18} ready {:>8}  first event {:>8}  warm median {:>8}  peak {}  {}",
            r.function,
            r.ready.map(fmt_duration).unwrap_or_default(),
            r.first_event.map(fmt_duration).unwrap_or_default(),
            fmt_duration(r.warm.median),
            r.peak_rss.map(fmt_mib).unwrap_or_default(),
            r.failures.first().cloned().unwrap_or_default()
        );
        rows.push(r);
        Ok::<(), String>(())
    };
    // Each function works in a table of its own, set up just before it runs.

    // company-settings: a read first, then saves checked in Chorus Pro, reads, verifications.
    let table = format!("{tables}-cold-settings");
    setup.cold_settings(&table)?;
    let settings_path = format!("/v1/companies/{a}/chorus-account");
    let verify_path = format!("{settings_path}/verify");
    let put_body = fixtures::settings(
        "compta@batiments-rhone.fr",
        fixtures::RHONE_LOGIN,
        Some(fixtures::RHONE_PASSWORD),
        true,
    );
    let settings_events: Vec<Value> = (0..events)
        .map(|i| match i % 3 {
            0 => http_event(
                "GET /v1/companies/{siret}/chorus-account",
                &settings_path,
                &[("siret", a)],
                a,
                None,
            ),
            1 => http_event(
                "PUT /v1/companies/{siret}/chorus-account",
                &settings_path,
                &[("siret", a)],
                a,
                Some(&put_body),
            ),
            _ => http_event(
                "POST /v1/companies/{siret}/chorus-account/verify",
                &verify_path,
                &[("siret", a)],
                a,
                None,
            ),
        })
        .collect();
    let env = overrides(&table);
    let log_path = log("company-settings");
    let launch = coldstart::Launch {
        function: "company-settings",
        env: &env,
        log: &log_path,
        cpu,
    };
    record(coldstart::run_function(
        io,
        &launch,
        settings_events,
        |v| format!("GET settings → {}", v["statusCode"]),
        http_ok,
    ))?;

    // identifiers: a read first, then checked market saves, new situations, lists.
    let table = format!("{tables}-cold-identifiers");
    setup.cold_markets(&table, run, &["gymnase", "froid"], 0)?;
    let market_path = format!("/v1/companies/{a}/markets/gymnase");
    let market_body = fixtures::market("2026-TRV-014");
    let identifier_events: Vec<Value> = (0..events)
        .map(|i| match i % 3 {
            0 => http_event(
                "GET /v1/companies/{siret}/markets/{market_ref}",
                &market_path,
                &[("siret", a), ("market_ref", "gymnase")],
                a,
                None,
            ),
            1 => http_event(
                "PUT /v1/companies/{siret}/markets/{market_ref}",
                &market_path,
                &[("siret", a), ("market_ref", "gymnase")],
                a,
                Some(&market_body),
            ),
            _ => {
                let n = (i / 3 + 1).to_string();
                http_event(
                    "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}",
                    &format!("/v1/companies/{a}/markets/froid/situations/{n}"),
                    &[("siret", a), ("market_ref", "froid"), ("number", &n)],
                    a,
                    Some(&fixtures::situation(&format!("F{run}-{n}"))),
                )
            }
        })
        .collect();
    let env = overrides(&table);
    let log_path = log("identifiers");
    let launch = coldstart::Launch {
        function: "identifiers",
        env: &env,
        log: &log_path,
        cpu,
    };
    record(coldstart::run_function(
        io,
        &launch,
        identifier_events,
        |v| format!("GET market → {}", v["statusCode"]),
        http_ok,
    ))?;

    // transmit-invoice: one 200-line situation transmitted per event.
    let table = format!("{tables}-cold-transmit");
    let transmit = setup.cold_markets(&table, run, &["froid-tx"], events)?;
    let body = fixtures::transmission_lines(200, a);
    let transmit_events: Vec<Value> = (1..=events)
        .map(|n| {
            let n = n.to_string();
            http_event(
                "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission",
                &format!("/v1/companies/{a}/markets/froid-tx/situations/{n}/transmission"),
                &[("siret", a), ("market_ref", "froid-tx"), ("number", &n)],
                a,
                Some(&body),
            )
        })
        .collect();
    let env = overrides(&table);
    let log_path = log("transmit-invoice");
    let launch = coldstart::Launch {
        function: "transmit-invoice",
        env: &env,
        log: &log_path,
        cpu,
    };
    record(coldstart::run_function(
        io,
        &launch,
        transmit_events,
        |v| {
            format!(
                "POST transmission (200 lines, deposit) → {}",
                v["statusCode"]
            )
        },
        http_ok,
    ))?;

    // status-sync: the transmissions just deposited, due now; then runs with nothing due.
    let due = setup.make_due(&transmit, "froid-tx", events)?;
    let env = overrides(&table);
    let log_path = log("status-sync");
    let launch = coldstart::Launch {
        function: "status-sync",
        env: &env,
        log: &log_path,
        cpu,
    };
    record(coldstart::run_function(
        io,
        &launch,
        (0..events).map(|_| scheduled_event()).collect(),
        move |v| {
            format!(
                "a run following {} of the {due} transmissions due",
                v["due"]
            )
        },
        |v| v["failed"].as_u64() == Some(0),
    ))?;

    // password-reminder: 20 companies at their J-30 today; then runs with nothing due.
    let table = format!("{tables}-cold-reminders");
    setup.cold_reminders(&table, run, 20)?;
    let env = overrides(&table);
    let log_path = log("password-reminder");
    let launch = coldstart::Launch {
        function: "password-reminder",
        env: &env,
        log: &log_path,
        cpu,
    };
    record(coldstart::run_function(
        io,
        &launch,
        (0..events).map(|_| scheduled_event()).collect(),
        |v| {
            format!(
                "a run with {} companies due, {} e-mails sent",
                v["companies"], v["sent"]
            )
        },
        |v| v["failed"].as_u64() == Some(0),
    ))?;
    Ok(rows)
}

fn fmt_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
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

fn yes(met: bool) -> &'static str {
    if met { "✅" } else { "❌" }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn render(
    machine: &sys::Machine,
    r: &Results,
    took: Duration,
    calls: usize,
    warmups: usize,
    cold_events: usize,
) -> String {
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
    let _ = writeln!(
        out,
        "| # | Measure | Subject | Result | Target | Met | Notes |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
    let mut row = |n: &str,
                   measure: &str,
                   subject: &str,
                   result: &str,
                   target: &str,
                   met: &str,
                   notes: &str| {
        let _ = writeln!(
            out,
            "| {n} | {} | {} | {} | {} | {met} | {} |",
            cell(measure),
            cell(subject),
            cell(result),
            cell(target),
            cell(notes)
        );
    };

    // 1. CPU
    for route in &r.routes {
        let target = route.target.map(fmt_duration);
        // Judged on the handler's own CPU; the AWS SDK's is shown beside it.
        let met = match route.target {
            None => "—".to_owned(),
            Some(t) if route.own.p99 <= t => yes(true).to_owned(),
            Some(t) if route.own.median <= t => format!("{} median, ❌ p99", yes(true)),
            Some(_) => yes(false).to_owned(),
        };
        let mut notes = String::new();
        if route.target.is_some_and(|t| route.cpu.median > t) {
            notes = "with the AWS SDK's own CPU: ❌".into();
        }
        if route.unexpected > 0 {
            notes = format!(
                "{} of {} calls answered otherwise than expected: {}",
                route.unexpected,
                calls + warmups,
                route.first_unexpected.clone().unwrap_or_default()
            );
        }
        let (measure, label) = match route.label.strip_prefix("reference: ") {
            Some(label) => ("Reference: warm CPU per call", label),
            None => ("Warm handler CPU per request", route.label.as_str()),
        };
        row(
            "1",
            measure,
            &format!("{}: {label}", route.function),
            &if route.own.median == route.cpu.median && route.own.p99 == route.cpu.p99 {
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
            },
            &target
                .map(|t| format!("≤ {t}"))
                .unwrap_or_else(|| "—".into()),
            &met,
            &notes,
        );
    }
    // 2. Calls
    for route in &r.routes {
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
        row(
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
        );
    }
    // 3. Cold start against the hello world, at full CPU and in a 128 MB share
    let share = r.lambda_cpu.as_ref().map(|q| match q {
        Ok(quota) => quota.clone(),
        Err(why) => format!("skipped: cgroups not writable ({why})"),
    });
    for (starts, label) in [
        (&r.starts, "Cold start vs hello world (interleaved)"),
        (
            &r.lambda_starts,
            "Cold start vs hello world at a 128 MB CPU share",
        ),
    ] {
        match starts {
            Some(Ok(rows)) => start_rows(&mut row, rows, label, share.as_deref()),
            Some(Err(e)) => row("3", label, "—", "failed", "—", "❌", e),
            None => {}
        }
    }
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
            Some(Ok(rows)) => {
                for s in rows {
                    let result = format!(
                        "median {} · p90 {} ({} processes)",
                        fmt_duration(s.median),
                        fmt_duration(s.p90),
                        s.samples
                    );
                    row("3", label, s.step, &result, "—", "—", s.what);
                }
            }
            Some(Err(e)) => row("3", label, "—", "failed", "—", "❌", e),
            None => {}
        }
    }
    if let (Some(why), None) = (&share, &r.lambda_starts) {
        row(
            "3",
            "Cold start at a 128 MB CPU share",
            "—",
            why,
            "—",
            "—",
            "",
        );
    }
    // 3. Cold start, size; 4. memory
    for c in &r.cold {
        let fail = c.failures.join("; ");
        if c.lambda_cpu {
            row(
                "3",
                "First event, then warm events, at a 128 MB CPU share",
                c.function,
                &first_and_warm(c),
                "—",
                "—",
                &fail,
            );
            continue;
        }
        row(
            "3",
            "Cold start: process start → ready for the first event",
            c.function,
            &c.ready
                .map(fmt_duration)
                .unwrap_or_else(|| "not ready".into()),
            "≤ 50 ms",
            yes(c.ready.is_some_and(|d| d <= Duration::from_millis(50))),
            &fail,
        );
        row(
            "3",
            "First event, then warm events",
            c.function,
            &first_and_warm(c),
            "—",
            "—",
            "",
        );
        row(
            "3",
            "Release binary size (stripped, LTO)",
            c.function,
            &fmt_bytes(c.binary_bytes),
            "≤ 15 MB",
            yes(c.binary_bytes <= 15_000_000),
            "",
        );
        row(
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
        );
    }
    // 5. Burst
    match &r.burst {
        Some(Ok(b)) => {
            let subject = format!(
                "{} situations of {} companies, {} concurrent callers, local API",
                b.transmissions, b.companies, b.callers
            );
            let ok = b.statuses.get(&202).copied().unwrap_or(0);
            let states = b
                .states
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            row(
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
                &format!(
                    "{ok} answered 202 (states: {states}){}; set-up (untimed) {:.0} s",
                    b.first_failure
                        .as_ref()
                        .map(|f| format!("; first other answer: {f}"))
                        .unwrap_or_default(),
                    b.setup.as_secs_f64()
                ),
            );
            row(
                "5",
                "Month-end burst: latency",
                &subject,
                &format!(
                    "p50 {} · p99 {} · max {}",
                    fmt_duration(b.latency.median),
                    fmt_duration(b.latency.p99),
                    fmt_duration(b.latency.max)
                ),
                "—",
                "—",
                "",
            );
            let (g, m, e) = (b.cpu.gateway, b.cpu.moto, b.cpu.emulator);
            let sum = (g + m + e).as_secs_f64().max(1e-9);
            let other = b.cpu.machine.saturating_sub(g + m + e + b.cpu.callers);
            row(
                "5",
                "Month-end burst: where the time goes (CPU)",
                &subject,
                &format!(
                    "gateway {:.0} % ({:.1} s, {:.1} ms per transmission) · moto {:.0} % ({:.1} s) · emulator {:.0} % ({:.1} s)",
                    100.0 * g.as_secs_f64() / sum,
                    g.as_secs_f64(),
                    1000.0 * g.as_secs_f64() / b.transmissions.max(1) as f64,
                    100.0 * m.as_secs_f64() / sum,
                    m.as_secs_f64(),
                    100.0 * e.as_secs_f64() / sum,
                    e.as_secs_f64()
                ),
                "—",
                "—",
                &format!(
                    "CPU seconds during the burst ({:.1} s wall × {} cores = {:.0} s available): machine busy {:.1} s, of which the callers (bench) {:.1} s and other processes {:.1} s",
                    b.wall.as_secs_f64(),
                    machine.cores,
                    b.wall.as_secs_f64() * machine.cores as f64,
                    b.cpu.machine.as_secs_f64(),
                    b.cpu.callers.as_secs_f64(),
                    other.as_secs_f64()
                ),
            );
        }
        Some(Err(e)) => row("5", "Month-end burst", "—", "failed", "—", "❌", e),
        None => {}
    }
    // 6. Reminder
    match &r.reminder {
        Some(Ok(m)) => {
            let only_due = m.items_read == Some(1000) && m.companies == Some(1000);
            row(
                "6",
                "Reminder run",
                "100,000 companies, 1,000 due",
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
            );
        }
        Some(Err(e)) => row(
            "6",
            "Reminder run",
            "100,000 companies, 1,000 due",
            "failed",
            "—",
            "❌",
            e,
        ),
        None => row(
            "6",
            "Reminder run",
            "100,000 companies, 1,000 due",
            "skipped (BENCH_SECTIONS)",
            "—",
            "—",
            "",
        ),
    }
    for e in &r.errors {
        row("!", "Error", "—", e, "—", "❌", "");
    }
    out.push('\n');
    out.push_str(&notes(calls, warmups, cold_events));
    out
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

/// The target of issue 18: a function's median start within 2× the hello world's.
const START_RATIO_TARGET: f64 = 2.0;

/// Writes one row of the table: number, measure, subject, result, target, met, notes.
type TableRow<'a> = dyn FnMut(&str, &str, &str, &str, &str, &str, &str) + 'a;

/// One row per binary of an interleaved run: absolute figures and ratios to the reference.
fn start_rows(row: &mut TableRow, rows: &[coldstart::StartRow], label: &str, share: Option<&str>) {
    let in_share = label.contains("128 MB");
    for r in rows {
        let reference = r.function == coldstart::REFERENCE;
        let result = if reference {
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
        };
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
        row("3", label, &r.function, &result, &target, met, &notes);
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

fn notes(calls: usize, warmups: usize, cold_events: usize) -> String {
    format!(
        "Notes
- **Set-up.** The bench runs a fresh moto for each section (the stack's `tests/stack/moto_server.py`, which processes one request at a time, on a free port: moto slows down as it fills), a Chorus Pro emulator of its own (the stack's, in a process of its own) and, for the burst, a local API of its own (the same router as `local-api`); the functions' code is the release build (LTO). Nothing is shared with tests running at the same time, and each process's CPU is the bench's alone — but the machine may be shared: see the load average above and the burst's \"other processes\". moto copies a whole table for each item of a `TransactWriteItems` (its rollback snapshot), so each group of routes works in a table of its own, and bulk set-up (situations to transmit, the burst's companies) is written by the handlers in a small staging table and copied over.
- **1. CPU.** Each handler is called in-process, warm, {calls} times after {warmups} warm-ups, on a current-thread tokio runtime; the figure is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) around the call, excluding the AWS network I/O: the functions' AWS SDK clients use the SDK's default HTTP client (hyper, rustls) polled on an I/O thread of the bench's own, so connecting, writing, reading and HTTP framing are not on the measured thread (a task hand-off per call is). \"With the AWS SDK\" is everything else on the thread: the handler, the domain, the JSON, logging (JSON at INFO as in Lambda, into a sink), and the SDK's own work per operation (runtime plugins and configuration layering, serialisation, SigV4 signing, deserialisation, interceptors). \"Own\" is the handler's share: without the CPU spent between each SDK operation's first and last interceptor hooks (measured per call by an interceptor) and without the SDK's work before its first hook, calibrated on a lone `GetItem` and subtracted per operation (an estimate: it differs a little between operations). Chorus Pro calls go through reqwest on the measured thread, so the routes that call Chorus Pro (verify=true, the buyer check, the deposit) include that HTTP work on loopback. Building the API Gateway event is outside the measure; moto and the emulator answer over plain HTTP on 127.0.0.1. Met is judged on the own share: ✅ when its p99 is within the target, \"✅ median, ❌ p99\" when only the median is. \"Kernel\" is the system share of the thread's CPU over the timed calls (getrusage). The reference rows time an SDK call alone, and a route with logging off, to show where a request's CPU goes.
- **2. Calls.** DynamoDB and Secrets Manager calls are counted by an SDK interceptor on the function's clients (each attempt sent), PISTE and Chorus Pro calls from the emulator's journal, averaged over the timed calls of a warm function (its PISTE token and PISTE credentials cached). The minimum is reasoned per operation, next to each row.
- **3-4. Cold start and memory.** Each release binary (`cargo build --release`: LTO, one codegen unit, opt-level s, stripped) is started with the stack's environment (`SSL_CERT_DIR` removed: it is set in this sandbox and not in Lambda; with it, rustls-native-certs reads the 146 files of /etc/ssl/certs, once per process, when the first AWS SDK client is built, at the first event that calls AWS) and `AWS_LAMBDA_RUNTIME_API` pointing at a fake Runtime API served by the bench. \"Ready\" is from spawn to the function's first `GET …/invocation/next`: exec, the runtime, the configuration and the SDK's (since issue 18 no client is built before the first event that uses it, and no network call happens before the first event). The first event includes the first connections and, for the functions that call Chorus Pro, the PISTE credentials and token. Peak memory is VmHWM from `/proc/<pid>/status` after {cold_events} events. **Against the hello world** (issue 18): `tests/hello-world`, lambda_runtime's echo handler as its `basic-lambda` example writes it (default tracing subscriber, multi-thread tokio runtime), built in the same `cargo build --release`; each round starts the hello world then each function once, in turn, spawn → first `GET …/invocation/next` (the process is then ended), so the machine's load weighs on all alike; the ratio is a function's median over the hello world's median (p90 over p90). **At a 128 MB CPU share**: the same, each process moved between fork and exec into a cgroup of the bench's own whose CFS quota is 1 ms per 13.82 ms period, 7.2 % of a CPU: Lambda gives CPU in proportion to memory, a full vCPU at 1,769 MB (AWS Lambda Developer Guide, \"Configure Lambda function memory\"); skipped with a note where no cgroup can be written. The first-event and warm-event rows are measured again in it. **Where a cold start goes**: each step of the functions' initialisation alone, timed in a fresh process of this binary (release build, the same libraries), so that what a process does once (reading TLS roots, the crypto library's set-up) counts as it does at a cold start; the rows for the reqwest client as built before and for the system's TLS roots show what the functions no longer do before their first event.
- **5. Burst.** The companies are random SIRETs using the emulator's seeded technical account (`TECH_1_batiments-rhone@cpro.fr`, settings saved with verify=false), each with one market (checked against the buyer in Chorus Pro) and its situations, set up beforehand and untimed. Chorus Pro accepts a deposit from any seller with valid credentials and rejects a seller outside the account's structures only when it integrates the flux, later, outside what is measured: the burst's answers are real deposits. Callers send situation k of every company before situation k+1, 32 at a time, each with its own company's token. \"Gateway\" CPU includes the local API's own work (JWT check, event building), which API Gateway does in AWS; in Lambda 32 callers would meet 32 instances, here one process (2 worker threads) serves them all. moto's one-request-at-a-time processing bounds the throughput.
- **6. Reminder.** The password-reminder engineer's ignored test `{}` (it seeds 100,000 accounts in a table of its own, 1,000 of them due, and runs the reminder in-process against moto; test profile build), run against the bench's moto; its figures as it prints them.
",
        reminder::TEST
    )
}
