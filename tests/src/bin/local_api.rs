//! `local-api`: the local stand-in for API Gateway (see `gateway_tests::local_api`).
//! `local-api token [--sub S] [--ttl SECONDS] SIRET…` prints a token instead.

use std::sync::Arc;

use gateway_tests::jwt;
use gateway_tests::local_api::{LocalApi, serve};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = env_or("LOCAL_JWT_SECRET", jwt::DEFAULT_SECRET);
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("routes") {
        // The route set, for the check that template, spec and local API agree.
        let routes: Vec<&str> = gateway_tests::local_api::routes()
            .iter()
            .map(|route| route.key())
            .collect();
        println!("{}", serde_json::to_string_pretty(&routes)?);
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("token") {
        let mut sub = "local-user".to_owned();
        let mut ttl = 3600_i64;
        let mut companies = Vec::new();
        let mut it = args.iter().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--sub" => sub = it.next().cloned().unwrap_or(sub),
                "--ttl" => ttl = it.next().and_then(|t| t.parse().ok()).unwrap_or(ttl),
                other => companies.extend(
                    other
                        .split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                ),
            }
        }
        let refs: Vec<&str> = companies.iter().map(String::as_str).collect();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        println!("{}", jwt::token_for(&sub, &refs, now, ttl, &secret));
        return Ok(());
    }

    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = shared::config::Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let api = Arc::new(LocalApi::from_sdk(&config, &sdk, secret));
    let port: u16 = env_or("LOCAL_API_PORT", "3000").parse()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(port, "local API listening");
    serve(listener, api).await?;
    Ok(())
}
