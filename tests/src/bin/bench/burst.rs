//! The month-end burst: many companies' situations transmitted through the local API by
//! concurrent callers; throughput, latency, and where the CPU went.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway_tests::jwt;
use gateway_tests::testkit::random_siret;
use serde_json::Value;

use crate::fixtures::{self, RHONE_LOGIN, RHONE_PASSWORD};
use crate::stats::{Summary, summarize};
use crate::sys::{machine_busy, process_cpu};

pub struct Pids {
    pub gateway: u32,
    pub moto: Option<u32>,
    pub emulator: u32,
}

#[derive(Default)]
pub struct Cpu {
    pub gateway: Duration,
    pub moto: Duration,
    pub emulator: Duration,
    pub callers: Duration,
    pub machine: Duration,
}

fn snapshot(pids: &Pids) -> Cpu {
    Cpu {
        gateway: process_cpu(pids.gateway).unwrap_or_default(),
        moto: pids.moto.and_then(process_cpu).unwrap_or_default(),
        emulator: process_cpu(pids.emulator).unwrap_or_default(),
        callers: process_cpu(std::process::id()).unwrap_or_default(),
        machine: machine_busy().unwrap_or_default(),
    }
}

pub struct BurstResult {
    pub companies: usize,
    pub transmissions: usize,
    pub callers: usize,
    pub setup: Duration,
    pub wall: Duration,
    pub latency: Summary,
    pub statuses: BTreeMap<u16, usize>,
    pub states: BTreeMap<String, usize>,
    pub cpu: Cpu,
    pub first_failure: Option<String>,
}

/// Runs `work` on every job with `concurrency` tasks pulling from one queue.
async fn pool<J, F, Fut>(jobs: Vec<J>, concurrency: usize, work: F)
where
    J: Send + 'static,
    F: Fn(J) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let work = Arc::new(work);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let queue = Arc::clone(&queue);
        let work = Arc::clone(&work);
        tasks.spawn(async move {
            loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                match job {
                    Some(job) => work(job).await,
                    None => break,
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

struct Company {
    siret: String,
    token: String,
}

/// A `PUT` of the set-up, answered 201.
struct SetupCall {
    company: Arc<Company>,
    path: String,
    body: Value,
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let response = http
        .request(method, url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, text))
}

/// Settings (verify=false), one market and `per_company` situations for each company,
/// through the API; then, timed, every situation transmitted by `callers` at once.
pub fn run(
    api: &str,
    jwt_secret: &str,
    run: &str,
    companies: usize,
    per_company: usize,
    callers: usize,
    pids: &Pids,
) -> Result<BurstResult, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(callers)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let companies: Vec<Arc<Company>> = (0..companies)
        .map(|_| {
            let siret = random_siret();
            let token = jwt::token_for("bench-burst", &[siret.as_str()], now, 7200, jwt_secret);
            Arc::new(Company { siret, token })
        })
        .collect();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();

    // --- set-up, untimed: settings, then markets, then situations ---------------------
    let setup_started = Instant::now();
    let situations: Vec<(Arc<Company>, usize)> = (1..=per_company)
        .flat_map(|k| companies.iter().map(move |c| (Arc::clone(c), k)))
        .collect();
    let settings: Vec<SetupCall> = companies
        .iter()
        .map(|c| SetupCall {
            company: Arc::clone(c),
            path: format!("/v1/companies/{}/chorus-account", c.siret),
            body: fixtures::settings(
                "compta@entreprise-test.fr",
                RHONE_LOGIN,
                Some(RHONE_PASSWORD),
                false,
            ),
        })
        .collect();
    let markets: Vec<SetupCall> = companies
        .iter()
        .map(|c| SetupCall {
            company: Arc::clone(c),
            path: format!("/v1/companies/{}/markets/fin-de-mois", c.siret),
            body: fixtures::market("2026-TRV-100"),
        })
        .collect();
    let numbered: Vec<SetupCall> = situations
        .iter()
        .map(|(c, k)| SetupCall {
            company: Arc::clone(c),
            path: format!(
                "/v1/companies/{}/markets/fin-de-mois/situations/{k}",
                c.siret
            ),
            body: fixtures::situation(&format!("B{run}-{k:02}")),
        })
        .collect();
    for step in [settings, markets, numbered] {
        let http = http.clone();
        let api = api.to_owned();
        let failures = Arc::clone(&failures);
        rt.block_on(pool(step, 8, move |call: SetupCall| {
            let http = http.clone();
            let url = format!("{api}{}", call.path);
            let failures = Arc::clone(&failures);
            async move {
                let bytes = serde_json::to_vec(&call.body).unwrap_or_default();
                let outcome =
                    send(&http, reqwest::Method::PUT, url, &call.company.token, bytes).await;
                match outcome {
                    Ok((201, _)) => {}
                    Ok((status, text)) => {
                        lock(&failures).push(format!("PUT {}: {status} {text}", call.path))
                    }
                    Err(e) => lock(&failures).push(format!("PUT {}: {e}", call.path)),
                }
            }
        }));
    }
    let setup = setup_started.elapsed();
    if let Some(first) = lock(&failures).first() {
        return Err(format!(
            "burst set-up failed ({} failures), first: {first}",
            lock(&failures).len()
        ));
    }
    eprintln!(
        "  set-up: {} companies, {} situations in {:.1} s",
        companies.len(),
        situations.len(),
        setup.as_secs_f64()
    );

    // --- the burst, timed ---------------------------------------------------------------
    // One body per company: its VAT number follows from its SIREN.
    let bodies: Arc<std::collections::HashMap<String, Vec<u8>>> = Arc::new(
        companies
            .iter()
            .map(|c| {
                let body = serde_json::to_vec(&fixtures::transmission_demo(&c.siret));
                (c.siret.clone(), body.unwrap_or_default())
            })
            .collect(),
    );
    let results: Arc<Mutex<Vec<(Duration, u16, String)>>> = Arc::default();
    let before = snapshot(pids);
    let started = Instant::now();
    {
        let http = http.clone();
        let api = api.to_owned();
        let results = Arc::clone(&results);
        let bodies = Arc::clone(&bodies);
        rt.block_on(pool(situations.clone(), callers, move |(c, k)| {
            let http = http.clone();
            let url = format!(
                "{api}/v1/companies/{}/markets/fin-de-mois/situations/{k}/transmission",
                c.siret
            );
            let body = bodies.get(&c.siret).cloned().unwrap_or_default();
            let results = Arc::clone(&results);
            async move {
                let sent = Instant::now();
                let outcome = send(&http, reqwest::Method::POST, url, &c.token, body).await;
                let took = sent.elapsed();
                let (status, text) = outcome.unwrap_or_else(|e| (0, e));
                lock(&results).push((took, status, text));
            }
        }));
    }
    let wall = started.elapsed();
    let after = snapshot(pids);
    let results = std::mem::take(&mut *lock(&results));
    let mut statuses = BTreeMap::new();
    let mut states = BTreeMap::new();
    let mut first_failure = None;
    for (_, status, text) in &results {
        *statuses.entry(*status).or_default() += 1;
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let state = value["transmission"]["state"]
            .as_str()
            .or_else(|| value["state"].as_str())
            .unwrap_or("?")
            .to_owned();
        *states.entry(state).or_default() += 1;
        if *status != 202 && first_failure.is_none() {
            first_failure = Some(format!(
                "{status} {}",
                text.chars().take(300).collect::<String>()
            ));
        }
    }
    let latencies: Vec<Duration> = results.iter().map(|(d, _, _)| *d).collect();
    Ok(BurstResult {
        companies: companies.len(),
        transmissions: results.len(),
        callers,
        setup,
        wall,
        latency: summarize(&latencies),
        statuses,
        states,
        cpu: Cpu {
            gateway: after.gateway.saturating_sub(before.gateway),
            moto: after.moto.saturating_sub(before.moto),
            emulator: after.emulator.saturating_sub(before.emulator),
            callers: after.callers.saturating_sub(before.callers),
            machine: after.machine.saturating_sub(before.machine),
        },
        first_failure,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
