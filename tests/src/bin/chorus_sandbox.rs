//! The Chorus Pro sandbox emulator of the local stack (see `gateway_tests::sandbox`).

use std::process::ExitCode;

use gateway_tests::sandbox::{SandboxConfig, try_spawn};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs to stderr, coloured only on a terminal (`make up` sends them to a file).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = match SandboxConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("chorus-sandbox: {error}");
            return ExitCode::FAILURE;
        }
    };
    let port = config.port;
    let handle = match try_spawn(config).await {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("chorus-sandbox: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "chorus-sandbox listening on {}\n  PISTE_TOKEN_URL={}\n  CHORUS_API_URL={}",
        handle.base_url(),
        handle.token_url(),
        handle.api_url()
    );
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("chorus-sandbox: cannot wait for Ctrl-C: {error}");
    }
    handle.shutdown().await;
    ExitCode::SUCCESS
}
