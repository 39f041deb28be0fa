//! The month-end burst: many companies' situations transmitted through the local API by
//! concurrent callers; throughput, latency, and where the CPU went.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway_tests::jwt;
use serde_json::Value;

use crate::fixtures;
use crate::stats::{Summary, summarize};
use crate::sys::{machine_busy, process_cpu};

pub struct Pids {
    pub gateway: u32,
    pub moto: u32,
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
        moto: process_cpu(pids.moto).unwrap_or_default(),
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

/// What the burst sends: every situation of `companies` (`per_company` each, set up
/// beforehand, in `setup`) through the API at `api`, by `callers` at once.
pub struct Plan {
    pub api: String,
    pub jwt_secret: String,
    pub companies: Vec<String>,
    pub per_company: usize,
    pub callers: usize,
    pub setup: Duration,
}

/// One answer: how long it took, its status and its body.
type Answer = (Duration, u16, String);

/// The burst, situation k of every company before k+1; what the processes in `pids` spent.
pub fn run(plan: &Plan, pids: &Pids) -> Result<BurstResult, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let http = gateway_tests::testkit::http_client_builder()
        .pool_max_idle_per_host(plan.callers)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let companies = callers_of(plan);
    let situations: Vec<(Arc<Company>, usize)> = (1..=plan.per_company)
        .flat_map(|k| companies.iter().map(move |c| (Arc::clone(c), k)))
        .collect();
    let bodies = bodies(&companies);

    // --- the burst, timed ---------------------------------------------------------------
    let before = snapshot(pids);
    let started = Instant::now();
    let answers = rt.block_on(send_all(plan, &http, situations, bodies));
    let wall = started.elapsed();
    let after = snapshot(pids);
    Ok(tally(
        plan,
        companies.len(),
        answers,
        wall,
        spent(&before, &after),
    ))
}

/// Each company with a token of its own.
fn callers_of(plan: &Plan) -> Vec<Arc<Company>> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    plan.companies
        .iter()
        .map(|siret| {
            let token = jwt::token_for(
                "bench-burst",
                &[siret.as_str()],
                now,
                7200,
                &plan.jwt_secret,
            );
            Arc::new(Company {
                siret: siret.clone(),
                token,
            })
        })
        .collect()
}

/// One body per company: its VAT number follows from its SIREN.
fn bodies(companies: &[Arc<Company>]) -> Arc<HashMap<String, Vec<u8>>> {
    Arc::new(
        companies
            .iter()
            .map(|c| {
                let body = serde_json::to_vec(&fixtures::transmission_demo(&c.siret));
                (c.siret.clone(), body.unwrap_or_default())
            })
            .collect(),
    )
}

/// Every situation transmitted, `plan.callers` at a time; the answers.
async fn send_all(
    plan: &Plan,
    http: &reqwest::Client,
    situations: Vec<(Arc<Company>, usize)>,
    bodies: Arc<HashMap<String, Vec<u8>>>,
) -> Vec<Answer> {
    let results: Arc<Mutex<Vec<Answer>>> = Arc::default();
    {
        let http = http.clone();
        let api = plan.api.clone();
        let results = Arc::clone(&results);
        pool(situations, plan.callers, move |(c, k)| {
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
        })
        .await;
    }
    std::mem::take(&mut *lock(&results))
}

/// The CPU each process spent between two snapshots.
fn spent(before: &Cpu, after: &Cpu) -> Cpu {
    Cpu {
        gateway: after.gateway.saturating_sub(before.gateway),
        moto: after.moto.saturating_sub(before.moto),
        emulator: after.emulator.saturating_sub(before.emulator),
        callers: after.callers.saturating_sub(before.callers),
        machine: after.machine.saturating_sub(before.machine),
    }
}

/// The answers counted by status and by transmission state, their latencies, the first
/// answer other than 202.
fn tally(
    plan: &Plan,
    companies: usize,
    results: Vec<Answer>,
    wall: Duration,
    cpu: Cpu,
) -> BurstResult {
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
    BurstResult {
        companies,
        transmissions: results.len(),
        callers: plan.callers,
        setup: plan.setup,
        wall,
        latency: summarize(&latencies),
        statuses,
        states,
        cpu,
        first_failure,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
