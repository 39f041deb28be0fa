//! Cold start, first event and peak memory of each function's release binary, run as
//! Lambda runs it: against a Lambda Runtime API (a small fake served here) that hands it
//! events one after the other.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::cgroup::LambdaCpu;
use crate::stats::{Summary, percentile, summarize};
use crate::sys::{ChildGuard, peak_rss};

#[derive(Default)]
struct Fake {
    events: Mutex<VecDeque<(String, Value)>>,
    first_next: Mutex<Option<Instant>>,
    sent: Mutex<HashMap<String, Instant>>,
    /// `(request id, answered at, error?, body)`.
    answers: Mutex<Vec<(String, Instant, bool, String)>>,
    answered: AtomicUsize,
    init_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn next(State(fake): State<Arc<Fake>>) -> Response {
    let now = Instant::now();
    lock(&fake.first_next).get_or_insert(now);
    let Some((id, event)) = lock(&fake.events).pop_front() else {
        // Nothing more to hand out: the bench reads the peak memory, then ends the process.
        tokio::time::sleep(Duration::from_secs(600)).await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let deadline = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 300_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:eu-west-3:000000000000:function:bench".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    set("content-type", "application/json".into());
    lock(&fake.sent).insert(id, Instant::now());
    (headers, event.to_string()).into_response()
}

fn answered(fake: &Fake, id: String, error: bool, body: String) -> StatusCode {
    lock(&fake.answers).push((id, Instant::now(), error, body));
    fake.answered.fetch_add(1, Ordering::SeqCst);
    StatusCode::ACCEPTED
}

async fn response(
    State(fake): State<Arc<Fake>>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> StatusCode {
    answered(&fake, id, false, body)
}

async fn error(
    State(fake): State<Arc<Fake>>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> StatusCode {
    answered(&fake, id, true, body)
}

async fn init_error(State(fake): State<Arc<Fake>>, body: String) -> StatusCode {
    *lock(&fake.init_error) = Some(body);
    StatusCode::ACCEPTED
}

pub struct ColdResult {
    pub function: &'static str,
    pub binary_bytes: u64,
    pub ready: Option<Duration>,
    pub first_event: Option<Duration>,
    pub first_note: String,
    pub warm: Summary,
    pub events: usize,
    pub answered: usize,
    pub peak_rss: Option<u64>,
    pub failures: Vec<String>,
    /// Run in the 128 MB CPU share.
    pub lambda_cpu: bool,
}

/// Where the release binaries are.
pub fn release_dir() -> PathBuf {
    std::env::var("BENCH_RELEASE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"))
}

/// A fake Runtime API holding `events`, served on the bench's runtime; its port.
fn serve_fake(
    rt: &Runtime,
    events: Vec<Value>,
) -> Result<(Arc<Fake>, u16, tokio::task::JoinHandle<()>), String> {
    let fake = Arc::new(Fake::default());
    lock(&fake.events).extend(
        events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("bench-{i:03}"), e)),
    );
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(Arc::clone(&fake));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| format!("fake runtime API: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let server = rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((fake, port, server))
}

/// How a function's process is started.
pub struct Launch<'a> {
    pub function: &'static str,
    /// On top of the stack's environment.
    pub env: &'a [(String, String)],
    /// Its output.
    pub log: &'a Path,
    /// The CPU quota it runs in, if any.
    pub cpu: Option<&'a LambdaCpu>,
}

/// The command Lambda would run: the function's binary with the launch's environment and
/// the Runtime API's variables, inside the launch's CPU quota when given.
fn lambda_command(binary: &Path, port: u16, launch: &Launch) -> Result<Command, String> {
    let Launch {
        function,
        env,
        log,
        cpu,
    } = *launch;
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
    let lambda_env = [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/27/[$LATEST]bench".to_owned(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        // The template sets LoggingConfig.LogFormat: JSON.
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
    ];
    let mut command = Command::new(binary);
    command
        // Set in this sandbox, not in Lambda. No function reads the system's roots any more
        // (Mozilla's are compiled in), so it changes nothing, but the process runs as in
        // Lambda.
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(lambda_env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_err));
    if let Some(cpu) = cpu {
        cpu.confine(&mut command);
    }
    Ok(command)
}

/// One cold start of the launch's function from `binary`: spawn → its first
/// `GET …/invocation/next`, then the process is ended (no event is handed out).
pub fn start_until_ready(rt: &Runtime, launch: &Launch, binary: &Path) -> Result<Duration, String> {
    let (function, log) = (launch.function, launch.log);
    let (fake, port, server) = serve_fake(rt, Vec::new())?;
    let mut command = lambda_command(binary, port, launch)?;
    let spawned_at = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let mut child = ChildGuard::new(child);
    let give_up = spawned_at + Duration::from_secs(30);
    let outcome = loop {
        if let Some(at) = *lock(&fake.first_next) {
            break Ok(at.saturating_duration_since(spawned_at));
        }
        if let Some(e) = lock(&fake.init_error).clone() {
            break Err(format!("{function}: init error: {e}"));
        }
        if child.exited() {
            break Err(format!("{function} stopped (see {})", log.display()));
        }
        if Instant::now() > give_up {
            break Err(format!("{function}: not ready after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    drop(child);
    server.abort();
    outcome
}

/// Runs the launch's release binary against a fake Runtime API with `events`; `describe`
/// tells what the first event's answer says.
pub fn run_function(
    rt: &Runtime,
    launch: &Launch,
    events: Vec<Value>,
    describe: impl Fn(&Value) -> String,
    ok: impl Fn(&Value) -> bool,
) -> Result<ColdResult, String> {
    let binary = release_dir().join(launch.function);
    let binary_bytes = std::fs::metadata(&binary)
        .map_err(|e| {
            format!(
                "{}: {e} (build it with cargo build --release)",
                binary.display()
            )
        })?
        .len();
    let count = events.len();
    let (fake, port, server) = serve_fake(rt, events)?;
    let mut command = lambda_command(&binary, port, launch)?;
    let spawned_at = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let mut child = ChildGuard::new(child);
    let mut failures = wait_for_answers(&fake, &mut child, count, launch.log);
    // The runtime asks for the next event as soon as it answered: the process is idle now.
    std::thread::sleep(Duration::from_millis(50));
    let peak = peak_rss(child.pid());
    drop(child);
    server.abort();

    let ready = lock(&fake.first_next).map(|at| at.saturating_duration_since(spawned_at));
    let answers = read_answers(&fake, &mut failures, describe, ok);
    Ok(ColdResult {
        function: launch.function,
        binary_bytes,
        ready,
        first_event: answers.first_event,
        first_note: answers.first_note,
        warm: summarize(&answers.warm),
        events: count,
        answered: answers.answered,
        peak_rss: peak,
        failures,
        lambda_cpu: launch.cpu.is_some(),
    })
}

/// Waits until the process answered `count` events, stopped, failed to start, or 300 s
/// went by; what went wrong.
fn wait_for_answers(fake: &Fake, child: &mut ChildGuard, count: usize, log: &Path) -> Vec<String> {
    let give_up = Instant::now() + Duration::from_secs(300);
    let mut failures = Vec::new();
    while fake.answered.load(Ordering::SeqCst) < count {
        if child.exited() {
            failures.push(format!("the process stopped (see {})", log.display()));
            break;
        }
        if let Some(e) = lock(&fake.init_error).clone() {
            failures.push(format!("init error: {e}"));
            break;
        }
        if Instant::now() > give_up {
            failures.push("gave up after 300 s".into());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    failures
}

/// The answers the fake Runtime API received, read.
struct Answers {
    first_event: Option<Duration>,
    first_note: String,
    warm: Vec<Duration>,
    answered: usize,
}

/// The first event's time and what its answer says, the others' times; the first three
/// answers that are errors or not `ok` go into `failures`.
fn read_answers(
    fake: &Fake,
    failures: &mut Vec<String>,
    describe: impl Fn(&Value) -> String,
    ok: impl Fn(&Value) -> bool,
) -> Answers {
    let sent = lock(&fake.sent).clone();
    let answers = lock(&fake.answers).clone();
    let mut read = Answers {
        first_event: None,
        first_note: String::new(),
        warm: Vec::new(),
        answered: answers.len(),
    };
    for (id, at, is_error, body) in &answers {
        let took = sent.get(id).map(|s| at.saturating_duration_since(*s));
        let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        if (*is_error || !ok(&value)) && failures.len() < 3 {
            failures.push(format!(
                "{id}: {}",
                body.chars().take(300).collect::<String>()
            ));
        }
        if id == "bench-000" {
            read.first_event = took;
            read.first_note = describe(&value);
        } else if let Some(t) = took {
            read.warm.push(t);
        }
    }
    read
}

/// The reference every function's start is compared with: lambda_runtime's echo handler
/// (`tests/hello-world`), same release profile.
pub const REFERENCE: &str = "hello-world";

/// One binary's starts, spawn → ready, and their ratio to the reference's.
pub struct StartRow {
    /// The function, or `{function} (before)` for a binary of `BENCH_BEFORE_DIR`.
    pub function: String,
    pub starts: Vec<Duration>,
    pub median: Duration,
    pub p90: Duration,
    /// Median over the reference's median, p90 over its p90.
    pub ratio_median: f64,
    pub ratio_p90: f64,
}

/// `rounds` cold starts of the reference and of each function, interleaved (one of each
/// per round, in turn) so that the machine's load weighs on all alike.
pub fn interleaved_starts(
    rt: &Runtime,
    functions: &[&'static str],
    env: &[(String, String)],
    logs: &Path,
    rounds: usize,
    cpu: Option<&LambdaCpu>,
) -> Result<Vec<StartRow>, String> {
    let binaries = start_binaries(functions);
    let mut starts = vec![Vec::with_capacity(rounds); binaries.len()];
    for _ in 0..rounds {
        for (i, (_, function, binary)) in binaries.iter().enumerate() {
            let log = logs.join(format!("bench-start-{function}.log"));
            let launch = Launch {
                function,
                env,
                log: &log,
                cpu,
            };
            starts[i].push(start_until_ready(rt, &launch, binary)?);
        }
    }
    let summaries: Vec<(Duration, Duration)> = starts
        .iter()
        .map(|s| (percentile(s, 0.5), percentile(s, 0.9)))
        .collect();
    let (reference_median, reference_p90) = summaries[0];
    let ratio = |d: Duration, of: Duration| d.as_secs_f64() / of.as_secs_f64().max(1e-9);
    Ok(binaries
        .into_iter()
        .zip(starts)
        .zip(summaries)
        .map(|(((label, _, _), starts), (median, p90))| StartRow {
            function: label,
            starts,
            median,
            p90,
            ratio_median: ratio(median, reference_median),
            ratio_p90: ratio(p90, reference_p90),
        })
        .collect())
}

/// `(label, function, binary)`: the reference, each function, and each function as built
/// before a change when `BENCH_BEFORE_DIR` names a directory of earlier release binaries
/// (a before/after comparison in one interleaved run).
fn start_binaries(functions: &[&'static str]) -> Vec<(String, &'static str, PathBuf)> {
    let before = std::env::var("BENCH_BEFORE_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let mut binaries = vec![(
        REFERENCE.to_owned(),
        REFERENCE,
        release_dir().join(REFERENCE),
    )];
    for function in functions {
        binaries.push((
            (*function).to_owned(),
            *function,
            release_dir().join(function),
        ));
        if let Some(dir) = &before {
            binaries.push((
                format!("{function} (before)"),
                *function,
                dir.join(function),
            ));
        }
    }
    binaries
}
