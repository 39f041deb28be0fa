//! Warm handler CPU time per route, and calls per operation.
//!
//! Each function's handler is called in-process, warm, on a current-thread tokio runtime:
//! the handler, the AWS SDK's and reqwest's connection tasks all run on this thread, and
//! `CLOCK_THREAD_CPUTIME_ID` around `block_on` gives the CPU the request cost without the
//! time spent waiting for moto or the emulator (which run in other processes).
//!
//! SDK calls are counted by an interceptor on the clients (one count per attempt sent);
//! PISTE and Chorus Pro calls are read from the emulator's journal.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use gateway_tests::testkit::{CallCounter, lambda_request, random_siret, response_json};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shared::config::Config;
use shared::ubl;
use tokio::runtime::Runtime;

use crate::fixtures::{self, RHONE_LOGIN, RHONE_PASSWORD, RHONE_SIRET};
use crate::stats::{Summary, summarize};

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
) -> Result<shared::services::State, String> {
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
        .map_err(|e| format!("chorus client: {e}"))
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
        let settings = state()?;
        let identifiers = state()?;
        let transmit = transmit_invoice::State {
            documents: None,
            depositing: shared::services::DepositingState::new(
                state()?,
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

    /// Runs `write` against the staging functions, then copies the accounts, markets and
    /// situations it wrote into `target`: the items are the handlers' own, and no
    /// transaction ever meets a big table. Accounts and markets stay in staging when
    /// `keep_parents` (the next situations need them); everything else leaves it.
    pub fn staged(
        &self,
        staging: &Functions,
        target: &str,
        keep_parents: bool,
        write: impl FnOnce(&Functions) -> Result<(), String>,
    ) -> Result<(), String> {
        write(staging)?;
        self.rt.block_on(move_items(
            &self.ddb,
            &staging.table,
            Some(target),
            keep_parents,
        ))
    }

    /// Empties the staging table.
    fn clear(&self, staging: &Functions) -> Result<(), String> {
        self.rt
            .block_on(move_items(&self.ddb, &staging.table, None, false))
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

/// The routes, measured in the table's order: each group of routes in a table of its own.
impl InProcess {
    /// Every route, then `ubl::prepare` on a 200-line invoice. `run` makes invoice numbers
    /// unique; tables are named `{tables}-…`.
    pub fn run_all(&self, run: &str, tables: &str) -> Result<Vec<RouteResult>, String> {
        let staging = self.functions(&format!("{tables}-staging"))?;
        let mut rows = self.settings_routes(tables)?;
        rows.extend(self.identifiers_routes(run, tables)?);
        rows.extend(self.transmit_routes(run, tables, &staging)?);
        rows.push(self.measure_prepare());
        Ok(rows)
    }

    /// company-settings: where a GET's CPU goes, the saves, then new companies.
    fn settings_routes(&self, tables: &str) -> Result<Vec<RouteResult>, String> {
        let f = self.functions(&format!("{tables}-settings"))?;
        let s = Function::Settings;
        let rhone_checked = rhone(Some(RHONE_PASSWORD), true);
        self.expect(
            &f,
            s,
            &settings_call(PUT_SETTINGS, RHONE_SIRET, rhone_checked),
            201,
        )?;
        // A company whose settings are saved without a Chorus Pro check.
        let b = random_siret();
        let b_unchecked = rhone(Some("Bench-Pass-0"), false);
        self.expect(&f, s, &settings_call(PUT_SETTINGS, &b, b_unchecked), 201)?;
        eprintln!(
            "  timing {} calls per route after {} warm-ups",
            self.calls, self.warmups
        );
        let mut rows = self.settings_references(&f)?;
        rows.extend(self.settings_saves(&f, &b));
        rows.extend(self.settings_new_companies(&f));
        Ok(rows)
    }

    /// GET settings, and where its CPU goes: the SDK calls alone, and the route without
    /// logging.
    fn settings_references(&self, f: &Functions) -> Result<Vec<RouteResult>, String> {
        let siret = shared::domain::Siret::parse(RHONE_SIRET, shared::domain::SiretCheck::Full)
            .map_err(|e| format!("{e:?}"))?;
        let version = self
            .rt
            .block_on(f.settings.store.get_account(&siret))
            .map_err(|e| e.to_string())?
            .map(|acc| acc.password_version)
            .ok_or("the account just saved is missing")?;
        let mut rows = vec![self.calibrate_pre_hook(f, &siret)?];
        let mut probes = get_settings_probes(f);
        probes.extend(sdk_alone_probes(f, &siret, &version));
        // One after the other, not interleaved: alternating four code paths call by call
        // leaves each one's caches cold, and showed as +150 µs on GET settings alone.
        for probe in probes {
            rows.extend(self.measure_interleaved(vec![probe]));
        }
        Ok(rows)
    }

    /// PUT settings unchanged, with a new password, checked in Chorus Pro; POST verify.
    fn settings_saves(&self, f: &Functions, b: &str) -> Vec<RouteResult> {
        let s = Function::Settings;
        let unchanged = route(
            s,
            "PUT settings, unchanged (a client retry, verify=false)",
            200,
            min(1, 0, 0, "GetItem: nothing changes, nothing is written", ""),
        );
        let new_password = route(
            s,
            "PUT settings, new password (verify=false)",
            200,
            min(
                2,
                2,
                0,
                "GetItem (revision) + TransactWriteItems (account + audit); PutSecretValue (AWSPENDING) + UpdateSecretVersionStage (AWSCURRENT moved to it from the version the account item named)",
                "promote() fell back to reading the stages (DescribeSecret): AWSCURRENT was not on the version the account item named",
            ),
        );
        let checked = route(
            s,
            "PUT settings, password checked in Chorus Pro (verify=true)",
            200,
            min(
                2,
                2,
                1,
                "as with verify=false, plus one Chorus Pro call that needs the login, the password and the SIRET (structures actives); the PISTE token is cached by the warm function",
                "promote() fell back to reading the stages, as with verify=false",
            ),
        );
        let verify = route(s, "POST verify (Chorus Pro)", 200, VERIFY_MINIMUM);
        vec![
            self.measure(f, unchanged, |_| {
                settings_call(PUT_SETTINGS, RHONE_SIRET, rhone(None, false))
            }),
            self.measure(f, new_password, |i| {
                let password = format!("Bench-Pass-{}", i + 1);
                settings_call(PUT_SETTINGS, b, rhone(Some(&password), false))
            }),
            self.measure(f, checked, |_| {
                settings_call(PUT_SETTINGS, RHONE_SIRET, rhone(Some(RHONE_PASSWORD), true))
            }),
            self.measure(f, verify, |_| {
                settings_call(VERIFY_SETTINGS, RHONE_SIRET, None)
            }),
        ]
    }

    /// Last, as they fill the table: new companies, then their deletion.
    fn settings_new_companies(&self, f: &Functions) -> Vec<RouteResult> {
        let s = Function::Settings;
        let fresh: Vec<String> = (0..self.warmups + self.calls)
            .map(|_| random_siret())
            .collect();
        let created = route(
            s,
            "PUT settings, new company (verify=false)",
            201,
            NEW_COMPANY_MINIMUM,
        );
        let deleted = route(s, "DELETE settings", 204, DELETE_MINIMUM);
        vec![
            self.measure(f, created, |i| {
                settings_call(PUT_SETTINGS, &fresh[i], rhone(Some("Bench-Pass-1"), false))
            }),
            self.measure(f, deleted, |i| {
                settings_call(DELETE_SETTINGS, &fresh[i], None)
            }),
        ]
    }

    /// identifiers: market saves and reads, then situations.
    fn identifiers_routes(&self, run: &str, tables: &str) -> Result<Vec<RouteResult>, String> {
        let (f, c) = self.identifiers_set_up(run, tables)?;
        let mut rows = self.market_routes(&f, &c);
        rows.extend(self.situation_routes(&f, run));
        Ok(rows)
    }

    /// The supplier's checked settings, its markets `gymnase`, `liste` (12 situations) and
    /// `tx`; a company without settings and its market. Returns the functions and that
    /// company's SIRET.
    fn identifiers_set_up(&self, run: &str, tables: &str) -> Result<(Functions, String), String> {
        let f = self.functions(&format!("{tables}-identifiers"))?;
        let (a, id) = (RHONE_SIRET, Function::Identifiers);
        let rhone_checked = rhone(Some(RHONE_PASSWORD), true);
        self.expect(
            &f,
            Function::Settings,
            &settings_call(PUT_SETTINGS, a, rhone_checked),
            201,
        )?;
        for (market, number) in [("gymnase", "2026-TRV-014"), ("liste", "2026-TRV-015")] {
            let body = Some(fixtures::market(number));
            self.expect(&f, id, &market_call(PUT_MARKET, a, market, body), 201)?;
        }
        let body = Some(fixtures::market("2026-TRV-017"));
        self.expect(&f, id, &market_call(PUT_MARKET, a, "tx", body), 201)?;
        for n in 1..=12 {
            let body = Some(fixtures::situation(&format!("L{run}-{n:03}")));
            let call = situation_call(PUT_SITUATION, a, "liste", Some(n), body);
            self.expect(&f, id, &call, 201)?;
        }
        let c = random_siret();
        let body = Some(fixtures::market("2026-TRV-018"));
        self.expect(
            &f,
            id,
            &market_call(PUT_MARKET, &c, "sans-compte", body),
            201,
        )?;
        Ok((f, c))
    }

    /// PUT market checked in Chorus Pro, unchecked; GET market, GET markets.
    fn market_routes(&self, f: &Functions, c: &str) -> Vec<RouteResult> {
        let id = Function::Identifiers;
        let checked = route(
            id,
            "PUT market, buyer checked in Chorus Pro",
            200,
            CHECKED_MARKET_MINIMUM,
        );
        let unchecked = route(
            id,
            "PUT market, company without settings (unchecked)",
            200,
            min(
                3,
                0,
                0,
                "GetItem account (none) + GetItem market + TransactWriteItems",
                "",
            ),
        );
        let get = route(id, "GET market", 200, min(1, 0, 0, "GetItem", ""));
        let list_minimum = min(1, 0, 0, "one Query (MARKET# prefix)", "");
        let list = route(id, "GET markets (3)", 200, list_minimum);
        vec![
            self.measure(f, checked, |_| {
                let body = Some(fixtures::market("2026-TRV-014"));
                market_call(PUT_MARKET, RHONE_SIRET, "gymnase", body)
            }),
            self.measure(f, unchecked, |_| {
                let body = Some(fixtures::market("2026-TRV-018"));
                market_call(PUT_MARKET, c, "sans-compte", body)
            }),
            self.measure(f, get, |_| {
                market_call(GET_MARKET, RHONE_SIRET, "gymnase", None)
            }),
            self.measure(f, list, |_| {
                market_call(LIST_MARKETS, RHONE_SIRET, "", None)
            }),
        ]
    }

    /// GET situation, GET situations, PUT a new situation.
    fn situation_routes(&self, f: &Functions, run: &str) -> Vec<RouteResult> {
        let id = Function::Identifiers;
        let get = route(id, "GET situation", 200, min(1, 0, 0, "GetItem", ""));
        let list = route(
            id,
            "GET situations (12)",
            200,
            min(
                2,
                0,
                0,
                "GetItem market (404 when unknown) + one Query (SITUATION#{market}# prefix)",
                "",
            ),
        );
        let new = route(
            id,
            "PUT situation, new",
            201,
            min(
                3,
                0,
                0,
                "GetItem market + GetItem situation (in parallel) + TransactWriteItems (situation + invoice-number guard + audit)",
                "",
            ),
        );
        vec![
            self.measure(f, get, |_| {
                situation_call(GET_SITUATION, RHONE_SIRET, "liste", Some(1), None)
            }),
            self.measure(f, list, |_| {
                situation_call(LIST_SITUATIONS, RHONE_SIRET, "liste", None, None)
            }),
            self.measure(f, new, |i| {
                let body = Some(fixtures::situation(&format!("T{run}-{:03}", i + 1)));
                situation_call(PUT_SITUATION, RHONE_SIRET, "tx", Some(i + 1), body)
            }),
        ]
    }

    /// transmit-invoice: a demo invoice then its repeat, and a 200-line invoice, each on a
    /// table of its own.
    fn transmit_routes(
        &self,
        run: &str,
        tables: &str,
        staging: &Functions,
    ) -> Result<Vec<RouteResult>, String> {
        let demo_body = fixtures::transmission_demo(RHONE_SIRET);
        let big_body = fixtures::transmission_lines(200, RHONE_SIRET);
        let mut rows = Vec::new();
        for (market, label, body) in [
            (
                "tx",
                "POST transmission, demo invoice (2 lines, Chorus Pro deposit)",
                &demo_body,
            ),
            (
                "tx200",
                "POST transmission, 200-line invoice (Chorus Pro deposit)",
                &big_body,
            ),
        ] {
            let f = self.functions(&format!("{tables}-{market}"))?;
            self.transmission_set_up(staging, &f, run, market)?;
            let deposit = Route {
                target: None,
                ..route(Function::Transmit, label, 202, TRANSMISSION_MINIMUM)
            };
            rows.push(self.measure(&f, deposit, |i| {
                situation_call(
                    TRANSMIT,
                    RHONE_SIRET,
                    market,
                    Some(i + 1),
                    Some(body.clone()),
                )
            }));
            if market == "tx" {
                rows.push(self.measure_repeat(&f, market, &demo_body));
            }
        }
        Ok(rows)
    }

    /// The supplier's settings and `market`, then as many situations as calls, written in
    /// staging and moved to `f`'s table 20 at a time.
    fn transmission_set_up(
        &self,
        staging: &Functions,
        f: &Functions,
        run: &str,
        market: &str,
    ) -> Result<(), String> {
        let (a, id) = (RHONE_SIRET, Function::Identifiers);
        self.clear(staging)?;
        self.staged(staging, &f.table, true, |st| {
            let rhone_checked = rhone(Some(RHONE_PASSWORD), true);
            let call = settings_call(PUT_SETTINGS, a, rhone_checked);
            self.expect(st, Function::Settings, &call, 201)?;
            let body = Some(fixtures::market("2026-TRV-016"));
            self.expect(st, id, &market_call(PUT_MARKET, a, market, body), 201)?;
            Ok(())
        })?;
        let prefix = if market == "tx" { "D" } else { "W" };
        for chunk in (1..=self.warmups + self.calls)
            .collect::<Vec<_>>()
            .chunks(20)
        {
            self.staged(staging, &f.table, true, |st| {
                for &n in chunk {
                    let body = Some(fixtures::situation(&format!("{prefix}{run}-{n:03}")));
                    let call = situation_call(PUT_SITUATION, a, market, Some(n), body);
                    self.expect(st, id, &call, 201)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// POST transmission of a situation already deposited: its view, read once.
    fn measure_repeat(&self, f: &Functions, market: &str, demo_body: &Value) -> RouteResult {
        let repeat = Route {
            target: None,
            ..route(
                Function::Transmit,
                "POST transmission again (already deposited)",
                202,
                min(
                    1,
                    0,
                    0,
                    "BatchGetItem (account, market, situation): it is transmitted, the answer is its view",
                    "more than the one read a repeat needs",
                ),
            )
        };
        self.measure(f, repeat, |_| {
            situation_call(
                TRANSMIT,
                RHONE_SIRET,
                market,
                Some(1),
                Some(demo_body.clone()),
            )
        })
    }

    /// `shared::ubl::prepare` (checks + totals + XML) of a 200-line invoice: pure CPU.
    fn measure_prepare(&self) -> RouteResult {
        let invoice = fixtures::invoice(200);
        let options = ubl::CheckOptions {
            siret_check: shared::domain::SiretCheck::Full,
            max_total_file_bytes: ubl::MAX_TOTAL_FILE_BYTES,
            today: Some(time::OffsetDateTime::now_utc().date() + time::Duration::days(1)),
        };
        let mut unexpected = 0;
        let mut first_unexpected = None;
        let mut cpu = Vec::new();
        let mut wall = Vec::new();
        for i in 0..self.warmups + self.calls {
            let started = Instant::now();
            let before = crate::sys::thread_cpu();
            let prepared = ubl::prepare(std::hint::black_box(&invoice), &options);
            let used = crate::sys::thread_cpu().saturating_sub(before);
            let elapsed = started.elapsed();
            if let Err(violations) = &prepared {
                unexpected += 1;
                first_unexpected.get_or_insert_with(|| format!("{violations:?}"));
            }
            drop(std::hint::black_box(prepared));
            if i >= self.warmups {
                cpu.push(used);
                wall.push(elapsed);
            }
        }
        let result = RouteResult {
            function: "shared::ubl",
            label: "prepare(): check + totals + UBL XML, 200-line invoice (pure)".into(),
            target: Some(Duration::from_millis(2)),
            cpu: summarize(&cpu),
            own: summarize(&cpu),
            kernel_share: 0.0,
            wall: summarize(&wall),
            unexpected,
            first_unexpected,
            calls: None,
            minimum: None,
        };
        eprintln!(
            "  {:<18} {:<58} cpu median {:>7.1} µs  p99 {:>7.1} µs",
            result.function,
            result.label,
            result.cpu.median.as_secs_f64() * 1e6,
            result.cpu.p99.as_secs_f64() * 1e6,
        );
        result
    }
}
/// The data of the cold-start runs, written through the same handlers (untimed).
impl InProcess {
    /// The seeded supplier's settings (checked in Chorus Pro), in a new table.
    pub fn cold_settings(&self, table: &str) -> Result<Functions, String> {
        let f = self.functions(table)?;
        self.expect(
            &f,
            Function::Settings,
            &settings_call(
                PUT_SETTINGS,
                RHONE_SIRET,
                Some(fixtures::settings(
                    "compta@batiments-rhone.fr",
                    RHONE_LOGIN,
                    Some(RHONE_PASSWORD),
                    true,
                )),
            ),
            201,
        )?;
        Ok(f)
    }

    /// The settings and `markets`, each with `situations` situations ready to transmit.
    pub fn cold_markets(
        &self,
        table: &str,
        run: &str,
        markets: &[&str],
        situations: usize,
    ) -> Result<Functions, String> {
        let f = self.cold_settings(table)?;
        for (i, market) in markets.iter().enumerate() {
            let number = format!("2026-TRV-02{i}");
            self.expect(
                &f,
                Function::Identifiers,
                &market_call(
                    PUT_MARKET,
                    RHONE_SIRET,
                    market,
                    Some(fixtures::market(&number)),
                ),
                201,
            )?;
            for n in 1..=situations {
                let invoice = format!("C{i}{run}-{n:03}");
                self.expect(
                    &f,
                    Function::Identifiers,
                    &situation_call(
                        PUT_SITUATION,
                        RHONE_SIRET,
                        market,
                        Some(n),
                        Some(fixtures::situation(&invoice)),
                    ),
                    201,
                )?;
            }
        }
        Ok(f)
    }

    /// Moves the transmissions of `market` to due now, as if the two minutes before their
    /// first follow-up had passed (the follow-up's own rescheduling write).
    pub fn make_due(&self, f: &Functions, market: &str, count: usize) -> Result<usize, String> {
        let store = &f.transmit.store;
        let siret = shared::domain::Siret::parse(RHONE_SIRET, shared::domain::SiretCheck::Full)
            .map_err(|e| format!("{e:?}"))?;
        let market_ref = shared::domain::MarketRef::parse(market).map_err(|e| format!("{e:?}"))?;
        let now = time::OffsetDateTime::now_utc();
        let mut moved = 0;
        for n in 1..=count {
            let number = shared::domain::SituationNumber::parse(&n.to_string())
                .map_err(|e| format!("{e:?}"))?;
            let tracked = self
                .rt
                .block_on(store.get_tracked(&siret, &market_ref, number))
                .map_err(|e| e.to_string())?;
            let Some(tracked) = tracked else { continue };
            let state = tracked.situation.transmission.state;
            self.rt
                .block_on(
                    store.transition(
                        &tracked,
                        state,
                        state,
                        shared::store::transmission::Change::default()
                            .due(now - time::Duration::seconds(1)),
                        now,
                    ),
                )
                .map_err(|e| e.to_string())?;
            moved += 1;
        }
        Ok(moved)
    }

    /// A new table with `count` companies whose password reaches its first reminder (J-30)
    /// today.
    pub fn cold_reminders(
        &self,
        table: &str,
        run: &str,
        count: usize,
    ) -> Result<Functions, String> {
        use shared::domain::{
            CompanyAccount, CredentialsStatus, Email, Environment, Siret, SiretCheck,
            TechnicalLogin,
        };
        let f = self.functions(table)?;
        let now = time::OffsetDateTime::now_utc();
        let set_at = now - time::Duration::days(335);
        for i in 0..count {
            let siret =
                Siret::parse(&random_siret(), SiretCheck::Full).map_err(|e| format!("{e:?}"))?;
            let account = CompanyAccount {
                technical_login: TechnicalLogin::parse(&format!("TECH_{siret}@cpp2017.fr"))
                    .map_err(|e| format!("{e:?}"))?,
                referent_email: Email::parse(&format!("bench-{run}-{i}@entreprise-test.fr"))
                    .map_err(|e| format!("{e:?}"))?,
                siret: siret.clone(),
                environment: Environment::Production,
                password_set_at: set_at,
                password_version: uuid::Uuid::new_v4().to_string(),
                credentials_status: CredentialsStatus::Valid,
                verified_at: Some(set_at),
                created_at: set_at,
                updated_at: set_at,
                revision: 1,
                next_reminder_on: Some(now.date()),
                chorus_structure_id: None,
                notify_overdue: true,
            };
            let audit = shared::store::AuditEntry {
                at: set_at,
                actor: "bench".into(),
                action: "account_created".into(),
                fields: Vec::new(),
            };
            self.rt
                .block_on(f.settings.store.save_account(&account, None, &audit))
                .map_err(|e| e.to_string())?;
        }
        Ok(f)
    }

    /// Settings (verify=false, the seeded technical account), one checked market and
    /// `situations` situations for each company, each company staged then moved into
    /// `target`. Returns the SIRETs.
    pub fn burst_companies(
        &self,
        target: &str,
        staging: &str,
        run: &str,
        companies: &[String],
        situations: usize,
    ) -> Result<(), String> {
        let staging = self.functions(staging)?;
        for siret in companies {
            self.staged(&staging, target, false, |st| {
                self.expect(
                    st,
                    Function::Settings,
                    &settings_call(
                        PUT_SETTINGS,
                        siret,
                        Some(fixtures::settings(
                            "compta@entreprise-test.fr",
                            RHONE_LOGIN,
                            Some(RHONE_PASSWORD),
                            false,
                        )),
                    ),
                    201,
                )?;
                self.expect(
                    st,
                    Function::Identifiers,
                    &market_call(
                        PUT_MARKET,
                        siret,
                        "fin-de-mois",
                        Some(fixtures::market("2026-TRV-100")),
                    ),
                    201,
                )?;
                for k in 1..=situations {
                    let number = format!("B{run}-{k:02}");
                    self.expect(
                        st,
                        Function::Identifiers,
                        &situation_call(
                            PUT_SITUATION,
                            siret,
                            "fin-de-mois",
                            Some(k),
                            Some(fixtures::situation(&number)),
                        ),
                        201,
                    )?;
                }
                Ok(())
            })?;
        }
        Ok(())
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

const VERIFY_MINIMUM: Minimum = min(
    2,
    1,
    1,
    "GetItem + TransactWriteItems (verdict + audit); GetSecretValue (the version the item names); one Chorus Pro call",
    "the verdict lost a race with another write (recorded again, and the account read for the answer)",
);

const NEW_COMPANY_MINIMUM: Minimum = min(
    2,
    1,
    0,
    "GetItem (is there an account?) + TransactWriteItems (account + audit); CreateSecret (its first version is AWSCURRENT at once)",
    "the secret existed (a deleted company's, restored) and its new version had to be promoted",
);

const DELETE_MINIMUM: Minimum = min(
    2,
    1,
    0,
    "GetItem (revision) + TransactWriteItems (delete + audit); DeleteSecret",
    "",
);

const CHECKED_MARKET_MINIMUM: Minimum = min(
    3,
    1,
    4,
    "GetItem account + GetItem market (in parallel) + TransactWriteItems (market + audit); GetSecretValue; Chorus Pro: structure search, structure read, service search, service read (a buyer that requires a service code)",
    "",
);

const TRANSMISSION_MINIMUM: Minimum = min(
    4,
    1,
    1,
    "BatchGetItem (account, market, situation) + BatchWriteItem (the invoice file, kept for retries) + UpdateItem (claim and lease: not_transmitted → depositing) + UpdateItem (→ deposited); GetSecretValue; one deposit",
    "more reads or writes than the claim-and-lease design needs",
);

/// The CPU target of a warm route: its handler's own share.
const ROUTE_TARGET: Option<Duration> = Some(Duration::from_micros(200));

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

/// A route held to [`ROUTE_TARGET`].
fn route(function: Function, label: &str, expected: u16, minimum: Minimum) -> Route<'_> {
    Route {
        function,
        label,
        expected,
        target: ROUTE_TARGET,
        minimum: Some(minimum),
    }
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

/// GET settings through the handler, then the same with logging off (a reference).
fn get_settings_probes(f: &Functions) -> Vec<Probe<'_>> {
    let get = move || settings_call(GET_SETTINGS, RHONE_SIRET, None).request();
    vec![
        Probe {
            function: "company-settings",
            label: "GET settings",
            target: ROUTE_TARGET,
            minimum: Some(min(1, 0, 0, "GetItem", "")),
            call: Box::new(move || {
                Box::pin(async move {
                    let response = f.handle(Function::Settings, get()).await;
                    response.status().as_u16() == 200
                })
            }),
        },
        Probe {
            function: "company-settings",
            label: "reference: GET settings with logging off",
            target: None,
            minimum: None,
            call: Box::new(move || {
                Box::pin(async move {
                    use tracing::instrument::WithSubscriber;
                    let response = f
                        .handle(Function::Settings, get())
                        .with_subscriber(tracing::subscriber::NoSubscriber::default())
                        .await;
                    response.status().as_u16() == 200
                })
            }),
        },
    ]
}

/// One SDK call alone, with no handler around it: a DynamoDB read, a Secrets Manager read
/// (references).
fn sdk_alone_probes<'a>(
    f: &'a Functions,
    siret: &'a shared::domain::Siret,
    version: &'a str,
) -> Vec<Probe<'a>> {
    vec![
        Probe {
            function: "aws-sdk-dynamodb",
            label: "reference: one GetItem alone (Store::get_account, no handler)",
            target: None,
            minimum: None,
            call: Box::new(move || {
                Box::pin(async move {
                    let found = f.settings.store.get_account(siret).await;
                    found.is_ok_and(|a| a.is_some())
                })
            }),
        },
        Probe {
            function: "aws-sdk-secretsmanager",
            label: "reference: one GetSecretValue alone (SecretStore::technical_account, no handler)",
            target: None,
            minimum: None,
            call: Box::new(move || {
                Box::pin(async move {
                    let secrets = &f.settings.secrets;
                    secrets.technical_account(siret, version).await.is_ok()
                })
            }),
        },
    ]
}

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Copies every item of `from` into `to` (Scan, BatchWriteItem) and removes them from
/// `from`, but for accounts and markets when `keep_parents`.
async fn move_items(
    ddb: &aws_sdk_dynamodb::Client,
    from: &str,
    to: Option<&str>,
    keep_parents: bool,
) -> Result<(), String> {
    let items = scan_all(ddb, from).await?;
    for chunk in items.chunks(25) {
        let puts = copies(chunk)?;
        if let Some(to) = to.filter(|_| !puts.is_empty()) {
            write_batch(ddb, to, puts).await?;
        }
        write_batch(ddb, from, deletions(chunk, keep_parents)?).await?;
    }
    Ok(())
}

/// Every item of `table`, page after page.
async fn scan_all(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("scan {table}: {}", shared::aws::error_text(&e)))?;
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// One BatchWriteItem, with its unprocessed items sent again (10 tries).
async fn write_batch(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> Result<(), String> {
    let mut pending = requests;
    for _ in 0..10 {
        if pending.is_empty() {
            return Ok(());
        }
        let out = ddb
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await
            .map_err(|e| format!("batch write {table}: {}", shared::aws::error_text(&e)))?;
        pending = out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
    }
    Err(format!("batch write {table}: items left unprocessed"))
}

fn sort_key(item: &Item) -> &str {
    item.get("SK")
        .and_then(|v| v.as_s().ok())
        .map_or("", |s| s.as_str())
}

/// The puts that copy the items the measured paths read: moto's Query reads the whole
/// table, so audit entries and invoice-number guards would only slow it down.
fn copies(chunk: &[Item]) -> Result<Vec<aws_sdk_dynamodb::types::WriteRequest>, String> {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    chunk
        .iter()
        .filter(|item| {
            let sk = sort_key(item);
            sk == "ACCOUNT" || sk.starts_with("MARKET#") || sk.starts_with("SITUATION#")
        })
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item.clone()))
                .build()
                .map(|p| WriteRequest::builder().put_request(p).build())
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The deletes that empty the chunk from its table, but for accounts and markets when
/// `keep_parents`.
fn deletions(
    chunk: &[Item],
    keep_parents: bool,
) -> Result<Vec<aws_sdk_dynamodb::types::WriteRequest>, String> {
    use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
    chunk
        .iter()
        .filter(|item| {
            let sk = sort_key(item);
            !(keep_parents && (sk == "ACCOUNT" || sk.starts_with("MARKET#")))
        })
        .map(|item| {
            let key = item
                .iter()
                .filter(|(k, _)| *k == "PK" || *k == "SK")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .map_err(|e| e.to_string())
        })
        .collect()
}
