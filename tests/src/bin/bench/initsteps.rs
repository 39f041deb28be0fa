//! Where a cold start's time goes (issue 18): each step of the functions' initialisation,
//! timed alone in a fresh process (`bench init-step <step>`, this binary, release build), so
//! that what a process does once (reading TLS roots, the crypto library's set-up, faulting
//! its code in) counts as it does at a cold start.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cgroup::LambdaCpu;
use crate::stats::percentile;

/// The steps, in the order a function meets them, and what each is.
pub const STEPS: &[(&str, &str)] = &[
    (
        "config",
        "Config::from_env: the environment, read once into the typed configuration",
    ),
    (
        "aws_config_chains",
        "aws-config's load as before issue 18's second pass: the default region and credentials chains built (IMDS, ECS, profile, web identity clients, and with them the HTTPS connector and the system's TLS roots)",
    ),
    (
        "aws_config",
        "shared::aws::sdk_config as now: aws-config's load, the region and credentials taken from the environment Lambda sets (no chain, no client, no TLS roots before the first event)",
    ),
    (
        "dynamodb_client",
        "aws_sdk_dynamodb::Client::new (what every function uses)",
    ),
    (
        "secretsmanager_client",
        "aws_sdk_secretsmanager::Client::new",
    ),
    ("sesv2_client", "aws_sdk_sesv2::Client::new"),
    (
        "chorus_http_platform_roots",
        "reqwest client as built before issue 18: rustls-platform-verifier, which reads and parses the system's TLS roots",
    ),
    (
        "chorus_http_client",
        "ChorusClient::build_http_client as built now (shared::chorus)",
    ),
    (
        "native_roots",
        "the system's TLS roots read and parsed (rustls-native-certs into a RootCertStore): what the AWS SDK's own HTTPS client did once per process, at the first event that called AWS, until issue 18's third pass gave the SDK the Chorus Pro client's HTTPS stack (Mozilla's roots compiled in)",
    ),
];

/// In the child process: the step's prerequisites, then the step alone, timed; prints µs.
pub fn run_step(step: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let took = rt.block_on(time_step(step))?;
    println!("{}", took.as_micros());
    Ok(())
}

async fn time_step(step: &str) -> Result<Duration, String> {
    let config = || shared::config::Config::from_env().map_err(|e| e.to_string());
    let started;
    match step {
        "config" => {
            started = Instant::now();
            config()?;
        }
        "aws_config" => {
            started = Instant::now();
            shared::aws::sdk_config().await;
        }
        "aws_config_chains" => {
            started = Instant::now();
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(shared::aws::http_client())
                .load()
                .await;
        }
        "dynamodb_client" | "secretsmanager_client" | "sesv2_client" => {
            let sdk = shared::aws::sdk_config().await;
            started = Instant::now();
            match step {
                "dynamodb_client" => drop(aws_sdk_dynamodb::Client::new(&sdk)),
                "secretsmanager_client" => drop(aws_sdk_secretsmanager::Client::new(&sdk)),
                _ => drop(shared::aws::sesv2::Client::new(&sdk)),
            }
        }
        "chorus_http_platform_roots" => {
            let chorus = shared::services::chorus_config(&config()?);
            let builder = gateway_tests::testkit::http_client_builder();
            started = Instant::now();
            builder
                .connect_timeout(chorus.connect_timeout)
                .timeout(chorus.request_timeout)
                .build()
                .map_err(|e| e.to_string())?;
        }
        "chorus_http_client" => {
            let chorus = shared::services::chorus_config(&config()?);
            started = Instant::now();
            shared::chorus::ChorusClient::build_http_client(&chorus).map_err(|e| e.to_string())?;
        }
        "native_roots" => {
            started = Instant::now();
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
        }
        other => return Err(format!("unknown init step {other:?}")),
    }
    Ok(started.elapsed())
}

pub struct StepRow {
    pub step: &'static str,
    pub what: &'static str,
    pub median: Duration,
    pub p90: Duration,
    pub samples: usize,
}

/// `rounds` fresh processes per step, interleaved, with the functions' environment (and,
/// given `cpu`, in its quota).
pub fn measure(
    env: &[(String, String)],
    rounds: usize,
    cpu: Option<&LambdaCpu>,
) -> Result<Vec<StepRow>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut samples = vec![Vec::with_capacity(rounds); STEPS.len()];
    for _ in 0..rounds {
        for (i, (step, _)) in STEPS.iter().enumerate() {
            let mut command = Command::new(&exe);
            command
                .args(["init-step", step])
                .env_remove("SSL_CERT_DIR")
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdin(Stdio::null())
                .stderr(Stdio::null());
            if let Some(cpu) = cpu {
                cpu.confine(&mut command);
            }
            let out = command.output().map_err(|e| format!("init-step: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let micros: u64 = text
                .trim()
                .parse()
                .map_err(|_| format!("init-step {step}: {text:?}"))?;
            samples[i].push(Duration::from_micros(micros));
        }
    }
    Ok(STEPS
        .iter()
        .zip(samples)
        .map(|((step, what), s)| StepRow {
            step,
            what,
            median: percentile(&s, 0.5),
            p90: percentile(&s, 0.9),
            samples: s.len(),
        })
        .collect())
}
