//! The bench's own processes: the Chorus Pro emulator and the local API (this binary,
//! `serve-sandbox` and `serve-api`), and a moto per section with what the stack's
//! `tests/stack/init_aws.py` creates in it for the functions.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_tests::jwt;
use gateway_tests::local_api::{LocalApi, serve};
use gateway_tests::sandbox::{Progress, SandboxConfig, Seed, try_spawn};
use serde_json::json;

use crate::{env_or, root, sys};

/// The Chorus Pro emulator, in a process of its own; prints its port.
pub fn serve_sandbox() -> Result<(), String> {
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
pub fn serve_api() -> Result<(), String> {
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
        let secret = env_or("LOCAL_JWT_SECRET", jwt::DEFAULT_SECRET);
        let api = Arc::new(LocalApi::from_sdk(&config, &sdk, secret));
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
pub fn start_moto(logs: &Path) -> Result<(sys::ChildGuard, u16), String> {
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

pub async fn init_aws(
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
