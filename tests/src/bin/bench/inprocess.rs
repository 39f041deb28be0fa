//! Warm handler CPU time per route, and calls per operation.
//!
//! Each function's handler is called in-process, warm, on a current-thread tokio runtime:
//! the handler, the AWS SDK's and reqwest's connection tasks all run on this thread, and
//! `CLOCK_THREAD_CPUTIME_ID` around `block_on` gives the CPU the request cost without the
//! time spent waiting for moto or the emulator (which run in other processes).
//!
//! SDK calls are counted by an interceptor on the clients (one count per attempt sent);
//! PISTE and Chorus Pro calls are read from the emulator's journal.
//!
//! This file holds the measuring; `routes` what is measured (each route, its minimum),
//! `setup` the data the other sections need, written through the same handlers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use gateway_tests::testkit::{CallCounter, lambda_request, response_json};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shared::config::Config;
use tokio::runtime::Runtime;

use crate::fixtures::{self, RHONE_LOGIN};
use crate::stats::{Summary, summarize};

mod routes;
mod setup;

/// The CPU the calling thread spends inside AWS SDK operations, from the first interceptor
/// hook of an operation to its last (operations running at the same time, as two reads in
/// `join!`, are counted once), and the number of operations. What the SDK does before its
/// first hook (building the operation's runtime plugins and configuration) is outside that
/// window: it is calibrated once, on a lone `GetItem`, and counted per operation (see
/// `InProcess::pre_hook`).
#[derive(Clone, Debug, Default)]
pub struct SdkCpu(Arc<Mutex<SdkCpuState>>);

#[derive(Debug, Default)]
struct SdkCpuState {
    active: u32,
    since: Duration,
    total: Duration,
    operations: u32,
}

impl SdkCpu {
    /// CPU inside SDK operations and how many ran, since the last call.
    pub fn take(&self) -> (Duration, u32) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (
            std::mem::take(&mut state.total),
            std::mem::take(&mut state.operations),
        )
    }
}

impl Intercept for SdkCpu {
    fn name(&self) -> &'static str {
        "bench-sdk-cpu"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if state.active == 0 {
            state.since = crate::sys::thread_cpu();
        }
        state.active += 1;
        state.operations += 1;
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.active = state.active.saturating_sub(1);
        if state.active == 0 {
            let spent = crate::sys::thread_cpu().saturating_sub(state.since);
            state.total += spent;
        }
        Ok(())
    }
}

/// The calls one operation made, per call (averaged over the timed calls).
#[derive(Clone, Debug, Default)]
pub struct Calls {
    pub ddb: BTreeMap<String, f64>,
    pub sm: BTreeMap<String, f64>,
    pub piste: f64,
    pub chorus: BTreeMap<String, f64>,
}

impl Calls {
    pub fn ddb_total(&self) -> f64 {
        self.ddb.values().sum()
    }
    pub fn sm_total(&self) -> f64 {
        self.sm.values().sum()
    }
    pub fn chorus_total(&self) -> f64 {
        self.chorus.values().sum()
    }
}

/// The fewest calls the operation needs, by service, and why the gateway makes more when
/// it does.
#[derive(Clone, Copy, Debug)]
pub struct Minimum {
    pub ddb: u32,
    pub sm: u32,
    pub piste: u32,
    pub chorus: u32,
    /// What the minimum is made of.
    pub reasoning: &'static str,
    /// Why the measured count is higher (shown only when it is).
    pub excess: &'static str,
}

pub struct RouteResult {
    pub function: &'static str,
    pub label: String,
    pub target: Option<Duration>,
    pub cpu: Summary,
    /// `cpu` without what was spent inside AWS SDK operations: the handler's own work.
    pub own: Summary,
    /// The kernel's share of the CPU over all the timed calls.
    pub kernel_share: f64,
    pub wall: Summary,
    pub unexpected: usize,
    pub first_unexpected: Option<String>,
    pub calls: Option<Calls>,
    pub minimum: Option<Minimum>,
}

#[derive(Clone, Copy)]
enum Function {
    Settings,
    Identifiers,
    Transmit,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Function::Settings => "company-settings",
            Function::Identifiers => "identifiers",
            Function::Transmit => "transmit-invoice",
        }
    }
}

/// One call of an interleaved measurement.
struct Probe<'a> {
    function: &'static str,
    label: &'static str,
    target: Option<Duration>,
    minimum: Option<Minimum>,
    call: Box<dyn FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>> + 'a>,
}

/// The three HTTP functions' warm state on one table, with counted clients.
pub struct Functions {
    pub table: String,
    settings: company_settings::State,
    identifiers: identifiers::State,
    transmit: transmit_invoice::State,
}

/// The in-process bench: a current-thread runtime, the SDK configuration, the call counters.
///
/// moto copies a whole table for each item of a `TransactWriteItems` (its rollback
/// snapshot), so a write transaction costs time in proportion to the table's size: each
/// group of routes works in a table of its own, and bulk set-up is written in a small
/// staging table and copied (see [`InProcess::staged`]).
pub struct InProcess {
    rt: Runtime,
    /// Where the functions' AWS SDK clients do their I/O, off the measured thread.
    _io: Runtime,
    aws_http: SharedHttpClient,
    http: reqwest::Client,
    emulator: String,
    sdk: shared::aws::SdkConfig,
    config: Config,
    ddb: aws_sdk_dynamodb::Client,
    ddb_calls: CallCounter,
    sm_calls: CallCounter,
    sdk_cpu: SdkCpu,
    /// The SDK's CPU per operation before its first interceptor hook (calibrated on the
    /// lone `GetItem` reference; zero until then).
    pre_hook: std::cell::Cell<Duration>,
    warmups: usize,
    calls: usize,
}

/// `(route key, concrete path, path parameters, companies in the token, body)`.
struct Call {
    route: &'static str,
    path: String,
    params: Vec<(&'static str, String)>,
    company: String,
    body: Option<Value>,
}

impl Call {
    fn request(&self) -> Request {
        let params: Vec<(&str, &str)> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        lambda_request(
            self.route,
            &self.path,
            &params,
            &[self.company.as_str()],
            self.body.as_ref(),
        )
    }
}

fn settings_call(route: &'static str, siret: &str, body: Option<Value>) -> Call {
    let suffix = if route.ends_with("/verify") {
        "/verify"
    } else {
        ""
    };
    Call {
        route,
        path: format!("/v1/companies/{siret}/chorus-account{suffix}"),
        params: vec![("siret", siret.to_owned())],
        company: siret.to_owned(),
        body,
    }
}

fn market_call(route: &'static str, siret: &str, market: &str, body: Option<Value>) -> Call {
    let path = if route.contains("{market_ref}") {
        format!("/v1/companies/{siret}/markets/{market}")
    } else {
        format!("/v1/companies/{siret}/markets")
    };
    let mut params = vec![("siret", siret.to_owned())];
    if route.contains("{market_ref}") {
        params.push(("market_ref", market.to_owned()));
    }
    Call {
        route,
        path,
        params,
        company: siret.to_owned(),
        body,
    }
}

fn situation_call(
    route: &'static str,
    siret: &str,
    market: &str,
    number: Option<usize>,
    body: Option<Value>,
) -> Call {
    let mut params = vec![
        ("siret", siret.to_owned()),
        ("market_ref", market.to_owned()),
    ];
    let mut path = format!("/v1/companies/{siret}/markets/{market}/situations");
    if let Some(n) = number {
        params.push(("number", n.to_string()));
        path.push_str(&format!("/{n}"));
    }
    if route.ends_with("/transmission") {
        path.push_str("/transmission");
    }
    Call {
        route,
        path,
        params,
        company: siret.to_owned(),
        body,
    }
}

const PUT_SETTINGS: &str = "PUT /v1/companies/{siret}/chorus-account";
const GET_SETTINGS: &str = "GET /v1/companies/{siret}/chorus-account";
const DELETE_SETTINGS: &str = "DELETE /v1/companies/{siret}/chorus-account";
const VERIFY_SETTINGS: &str = "POST /v1/companies/{siret}/chorus-account/verify";
const PUT_MARKET: &str = "PUT /v1/companies/{siret}/markets/{market_ref}";
const GET_MARKET: &str = "GET /v1/companies/{siret}/markets/{market_ref}";
const LIST_MARKETS: &str = "GET /v1/companies/{siret}/markets";
const PUT_SITUATION: &str = "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}";
const GET_SITUATION: &str = "GET /v1/companies/{siret}/markets/{market_ref}/situations/{number}";
const LIST_SITUATIONS: &str = "GET /v1/companies/{siret}/markets/{market_ref}/situations";
const TRANSMIT: &str =
    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission";

/// The clients of one warm function, with call counters, as `State::from_sdk` builds them.
/// Their HTTP transport runs on the bench's I/O thread (see [`crate::offthread`]).
fn function_state(
    config: &Config,
    sdk: &shared::aws::SdkConfig,
    http: &SharedHttpClient,
    counters: (&CallCounter, &CallCounter),
    sdk_cpu: &SdkCpu,
) -> shared::services::State {
    let (ddb_calls, sm_calls) = counters;
    let ddb = aws_sdk_dynamodb::config::Builder::from(sdk)
        .http_client(http.clone())
        .interceptor(ddb_calls.clone())
        .interceptor(sdk_cpu.clone())
        .build();
    let sm = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .http_client(http.clone())
        .interceptor(sm_calls.clone())
        .interceptor(sdk_cpu.clone())
        .build();
    let store = shared::store::Store::new(
        aws_sdk_dynamodb::Client::from_conf(ddb),
        config.table_name.clone(),
    );
    let secrets = shared::secrets::SecretStore::new(
        aws_sdk_secretsmanager::Client::from_conf(sm),
        config.secret_prefix.clone(),
    );
    shared::services::State::from_clients(config.clone(), store, secrets)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl InProcess {
    pub fn new(
        sdk: &shared::aws::SdkConfig,
        config: &Config,
        emulator: &str,
        warmups: usize,
        calls: usize,
    ) -> Result<InProcess, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-aws-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(InProcess {
            rt,
            aws_http: crate::offthread::OffThread::default_client(io.handle().clone()),
            _io: io,
            http: gateway_tests::testkit::http_client(),
            emulator: emulator.to_owned(),
            sdk: sdk.clone(),
            config: config.clone(),
            ddb: aws_sdk_dynamodb::Client::new(sdk),
            ddb_calls: CallCounter::default(),
            sm_calls: CallCounter::default(),
            sdk_cpu: SdkCpu::default(),
            pre_hook: std::cell::Cell::new(Duration::ZERO),
            warmups,
            calls,
        })
    }

    /// A new table, and the three functions' state on it (one set of clients per function,
    /// as each Lambda builds its own).
    pub fn functions(&self, table: &str) -> Result<Functions, String> {
        self.rt
            .block_on(gateway_tests::testkit::try_create_table(&self.ddb, table))?;
        let mut config = self.config.clone();
        config.table_name = table.to_owned();
        let sdk = &self.sdk;
        let state = || {
            function_state(
                &config,
                sdk,
                &self.aws_http,
                (&self.ddb_calls, &self.sm_calls),
                &self.sdk_cpu,
            )
        };
        let settings = state();
        let identifiers = state();
        let transmit = transmit_invoice::State {
            documents: None,
            depositing: shared::services::DepositingState::new(
                state(),
                shared::services::alert_mailer(&config, sdk),
            ),
        };
        Ok(Functions {
            table: table.to_owned(),
            settings,
            identifiers,
            transmit,
        })
    }

    /// One untimed call (set-up): its status and body.
    fn run(&self, f: &Functions, function: Function, call: &Call) -> (u16, Value) {
        let response = self.rt.block_on(f.handle(function, call.request()));
        response_json(&response)
    }

    fn expect(
        &self,
        f: &Functions,
        function: Function,
        call: &Call,
        status: u16,
    ) -> Result<Value, String> {
        let (got, body) = self.run(f, function, call);
        if got == status {
            Ok(body)
        } else {
            Err(format!(
                "set-up {} {} answered {got}, expected {status}: {body}",
                call.route, call.path
            ))
        }
    }

    fn journal_clear(&self) {
        let url = format!("{}/_admin/journal", self.emulator);
        let _ = self.rt.block_on(self.http.delete(url).send());
    }

    /// PISTE token requests and Chorus Pro calls (by path) since the journal was emptied.
    fn journal_counts(&self) -> (u64, BTreeMap<String, u64>) {
        let url = format!("{}/_admin/journal", self.emulator);
        let journal: Value = self
            .rt
            .block_on(async { self.http.get(url).send().await?.json().await })
            .unwrap_or(Value::Null);
        let mut piste = 0;
        let mut chorus = BTreeMap::new();
        for entry in journal["entries"].as_array().into_iter().flatten() {
            let path = entry["path"].as_str().unwrap_or("");
            if path.starts_with("/api/oauth") {
                piste += 1;
            } else if let Some(call) = path.strip_prefix("/cpro/") {
                *chorus.entry(call.to_owned()).or_default() += 1;
            }
        }
        (piste, chorus)
    }

    /// The SDK's CPU before an operation's first interceptor hook: a lone `GetItem`'s CPU
    /// outside its hook window (the store's few µs of item parsing included).
    fn calibrate_pre_hook(
        &self,
        f: &Functions,
        siret: &shared::domain::Siret,
    ) -> Result<RouteResult, String> {
        let mut outside = Vec::with_capacity(self.calls);
        for i in 0..self.warmups + self.calls {
            self.sdk_cpu.take();
            let before = crate::sys::thread_cpu();
            let found = self.rt.block_on(f.settings.store.get_account(siret));
            let used = crate::sys::thread_cpu().saturating_sub(before);
            let (window, operations) = self.sdk_cpu.take();
            if !matches!(found, Ok(Some(_))) || operations != 1 {
                return Err(format!(
                    "calibration GetItem: {found:?}, {operations} operations"
                ));
            }
            if i >= self.warmups {
                outside.push(used.saturating_sub(window));
            }
        }
        let summary = summarize(&outside);
        self.pre_hook.set(summary.median);
        eprintln!(
            "  calibration: the SDK's CPU before an operation's first hook, median {:.1} µs",
            summary.median.as_secs_f64() * 1e6
        );
        Ok(RouteResult {
            function: "aws-sdk-dynamodb",
            label: "reference: an operation's CPU before its first interceptor hook (lone GetItem; subtracted per operation from the routes' own share)".into(),
            target: None,
            cpu: summary,
            own: summary,
            kernel_share: 0.0,
            wall: summarize(&[]),
            unexpected: 0,
            first_unexpected: None,
            calls: None,
            minimum: None,
        })
    }

    /// The handler's own share of `used`: without the SDK operations' window, nor their
    /// work before it.
    fn own_share(&self, used: Duration) -> Duration {
        let (window, operations) = self.sdk_cpu.take();
        used.saturating_sub(window)
            .saturating_sub(self.pre_hook.get() * operations)
    }

    /// Warm-ups, then the timed calls; `make(i)` gives the i-th call (warm-ups first).
    fn measure(
        &self,
        f: &Functions,
        route: Route,
        mut make: impl FnMut(usize) -> Call,
    ) -> RouteResult {
        let mut answers = Answers::expecting(route.expected);
        for i in 0..self.warmups {
            let request = make(i).request();
            let response = self.rt.block_on(f.handle(route.function, request));
            answers.check(&response, i);
        }
        self.ddb_calls.take();
        self.sm_calls.take();
        self.journal_clear();
        let usage_before = crate::sys::thread_user_sys();
        let samples = self.timed_calls(f, &route, &mut make, &mut answers);
        let kernel_share = kernel_share(usage_before, crate::sys::thread_user_sys());
        let calls = self.calls_per_call();
        let result = RouteResult {
            function: route.function.name(),
            label: route.label.to_owned(),
            target: route.target,
            cpu: summarize(&samples.cpu),
            own: summarize(&samples.own),
            kernel_share,
            wall: summarize(&samples.wall),
            unexpected: answers.unexpected,
            first_unexpected: answers.first,
            calls: route.minimum.map(|_| calls),
            minimum: route.minimum,
        };
        let unexpected = if result.unexpected > 0 {
            format!("  ({} unexpected answers)", result.unexpected)
        } else {
            String::new()
        };
        log_route(&result, &unexpected);
        result
    }

    /// The timed calls of `measure`, after its warm-ups.
    fn timed_calls(
        &self,
        f: &Functions,
        route: &Route,
        make: &mut impl FnMut(usize) -> Call,
        answers: &mut Answers,
    ) -> Samples {
        let mut samples = Samples::with_capacity(self.calls);
        for i in 0..self.calls {
            let request = make(self.warmups + i).request();
            self.sdk_cpu.take();
            let started = Instant::now();
            let before = crate::sys::thread_cpu();
            let response = self.rt.block_on(f.handle(route.function, request));
            let used = crate::sys::thread_cpu().saturating_sub(before);
            samples.wall.push(started.elapsed());
            samples.cpu.push(used);
            samples.own.push(self.own_share(used));
            answers.check(&response, self.warmups + i);
        }
        samples
    }

    /// The calls counted since the counters and the journal were emptied, per timed call.
    fn calls_per_call(&self) -> Calls {
        let n = self.calls as f64;
        let (piste, chorus) = self.journal_counts();
        Calls {
            ddb: per_call(&self.ddb_calls.take(), n),
            sm: per_call(&self.sm_calls.take(), n),
            piste: piste as f64 / n,
            chorus: per_call(&chorus, n),
        }
    }

    /// Several calls measured in turn, one of each per round, so that they meet the same
    /// machine; SDK calls are counted for the probes with a minimum (the others are
    /// references).
    fn measure_interleaved(&self, mut probes: Vec<Probe<'_>>) -> Vec<RouteResult> {
        let mut tallies: Vec<Tally> = probes.iter().map(|_| Tally::default()).collect();
        for i in 0..self.warmups + self.calls {
            if i == self.warmups {
                self.journal_clear();
            }
            for (probe, tally) in probes.iter_mut().zip(tallies.iter_mut()) {
                let call = self.time_probe(probe);
                if i >= self.warmups {
                    let own = self.own_share(call.used);
                    tally.add(call, own);
                }
            }
        }
        // None of these calls Chorus Pro: what the journal holds belongs to no probe.
        let (piste, chorus) = self.journal_counts();
        probes
            .iter()
            .zip(tallies)
            .map(|(probe, tally)| tally.into_result(probe, piste, &chorus, self.calls))
            .inspect(|result| log_route(result, ""))
            .collect()
    }

    /// One call of a probe, timed, with the SDK calls it made.
    fn time_probe(&self, probe: &mut Probe<'_>) -> ProbeCall {
        let future = (probe.call)();
        self.ddb_calls.take();
        self.sm_calls.take();
        self.sdk_cpu.take();
        let usage = crate::sys::thread_user_sys();
        let started = Instant::now();
        let before = crate::sys::thread_cpu();
        let ok = self.rt.block_on(future);
        let used = crate::sys::thread_cpu().saturating_sub(before);
        let elapsed = started.elapsed();
        let after = crate::sys::thread_user_sys();
        let (ddb, sm) = (self.ddb_calls.take(), self.sm_calls.take());
        ProbeCall {
            ok,
            used,
            elapsed,
            user: after.0.saturating_sub(usage.0),
            sys: after.1.saturating_sub(usage.1),
            ddb,
            sm,
        }
    }
}

impl Functions {
    async fn handle(&self, function: Function, request: Request) -> Response<Body> {
        match function {
            Function::Settings => company_settings::handle(&self.settings, request).await,
            Function::Identifiers => identifiers::handle(&self.identifiers, request).await,
            Function::Transmit => transmit_invoice::handle(&self.transmit, request).await,
        }
    }
}

fn kernel_share(before: (Duration, Duration), after: (Duration, Duration)) -> f64 {
    let user = after.0.saturating_sub(before.0).as_secs_f64();
    let sys = after.1.saturating_sub(before.1).as_secs_f64();
    if user + sys > 0.0 {
        sys / (user + sys)
    } else {
        0.0
    }
}

const fn min(
    ddb: u32,
    sm: u32,
    chorus: u32,
    reasoning: &'static str,
    excess: &'static str,
) -> Minimum {
    Minimum {
        ddb,
        sm,
        piste: 0,
        chorus,
        reasoning,
        excess,
    }
}

const RHONE_EMAIL: &str = "compta@batiments-rhone.fr";

/// The seeded supplier's settings with `password` (none: unchanged), checked in Chorus Pro
/// when `verify`.
fn rhone(password: Option<&str>, verify: bool) -> Option<Value> {
    Some(fixtures::settings(
        RHONE_EMAIL,
        RHONE_LOGIN,
        password,
        verify,
    ))
}

/// What one measured route is: its row's function and label, the status it answers, its
/// CPU target and the fewest calls it needs.
struct Route<'a> {
    function: Function,
    label: &'a str,
    expected: u16,
    target: Option<Duration>,
    minimum: Option<Minimum>,
}

/// The answers other than the one expected: how many, and the first.
struct Answers {
    expected: u16,
    unexpected: usize,
    first: Option<String>,
}

impl Answers {
    fn expecting(expected: u16) -> Self {
        Answers {
            expected,
            unexpected: 0,
            first: None,
        }
    }

    fn check(&mut self, response: &Response<Body>, i: usize) {
        let status = response.status().as_u16();
        if status != self.expected {
            self.unexpected += 1;
            if self.first.is_none() {
                let (_, body) = response_json(response);
                self.first = Some(format!("call {i}: {status} {body}"));
            }
        }
    }
}

/// Each timed call's CPU, own share and wall time.
#[derive(Default)]
struct Samples {
    cpu: Vec<Duration>,
    own: Vec<Duration>,
    wall: Vec<Duration>,
}

impl Samples {
    fn with_capacity(calls: usize) -> Self {
        Samples {
            cpu: Vec::with_capacity(calls),
            own: Vec::with_capacity(calls),
            wall: Vec::with_capacity(calls),
        }
    }
}

/// One timed call of a probe.
struct ProbeCall {
    ok: bool,
    used: Duration,
    elapsed: Duration,
    user: Duration,
    sys: Duration,
    ddb: BTreeMap<String, u64>,
    sm: BTreeMap<String, u64>,
}

/// A probe's timed calls, summed up.
#[derive(Default)]
struct Tally {
    samples: Samples,
    user: Duration,
    sys: Duration,
    unexpected: usize,
    ddb: BTreeMap<String, u64>,
    sm: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, call: ProbeCall, own: Duration) {
        self.samples.cpu.push(call.used);
        self.samples.own.push(own);
        self.samples.wall.push(call.elapsed);
        self.user += call.user;
        self.sys += call.sys;
        self.unexpected += usize::from(!call.ok);
        for (into, from) in [(&mut self.ddb, call.ddb), (&mut self.sm, call.sm)] {
            for (k, v) in from {
                *into.entry(k).or_default() += v;
            }
        }
    }

    /// The probe's row; `piste` and `chorus` from the journal over all the probes' calls.
    fn into_result(
        self,
        probe: &Probe<'_>,
        piste: u64,
        chorus: &BTreeMap<String, u64>,
        calls: usize,
    ) -> RouteResult {
        let n = calls as f64;
        let total = (self.user + self.sys).as_secs_f64();
        RouteResult {
            function: probe.function,
            label: probe.label.to_owned(),
            target: probe.target,
            cpu: summarize(&self.samples.cpu),
            own: summarize(&self.samples.own),
            kernel_share: if total > 0.0 {
                self.sys.as_secs_f64() / total
            } else {
                0.0
            },
            wall: summarize(&self.samples.wall),
            unexpected: self.unexpected,
            first_unexpected: None,
            calls: probe.minimum.map(|_| Calls {
                ddb: per_call(&self.ddb, n),
                sm: per_call(&self.sm, n),
                piste: piste as f64 / n,
                chorus: per_call(chorus, n),
            }),
            minimum: probe.minimum,
        }
    }
}

/// Counts over `n` calls, per call.
fn per_call(counts: &BTreeMap<String, u64>, n: f64) -> BTreeMap<String, f64> {
    counts
        .iter()
        .map(|(k, v)| (k.clone(), *v as f64 / n))
        .collect()
}

/// The route's figures on the bench's output, as they are measured.
fn log_route(result: &RouteResult, suffix: &str) {
    eprintln!(
        "  {:<18} {:<58} own median {:>7.1} µs  p99 {:>7.1} µs  with the SDK median {:>7.1} µs  wall median {:>6.2} ms{suffix}",
        result.function,
        result.label,
        result.own.median.as_secs_f64() * 1e6,
        result.own.p99.as_secs_f64() * 1e6,
        result.cpu.median.as_secs_f64() * 1e6,
        ms(result.wall.median),
    );
}
