//! Runs `transmit-invoice`'s handler once in a process of its own, as its Lambda would
//! (the configuration from the environment, the clients of a cold start, one request),
//! then prints the answer's status and body and the process's peak resident memory
//! (`VmHWM`): `status=202 peak_rss_kib=41234` then the body. For the memory of a deposit
//! (issue 16: an 8 MB document must leave half of a 128 MB Lambda free), measured without
//! the test harness or the emulator in the same process.
//!
//! Usage: `transmit-once SIRET MARKET_REF NUMBER BODY_FILE` (the stack's environment).

use lambda_http::Body;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [siret, market_ref, number, body_file] = args.as_slice() else {
        return Err("usage: transmit-once SIRET MARKET_REF NUMBER BODY_FILE".into());
    };
    let config = shared::config::Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let state = transmit_invoice::State::from_sdk(config, &sdk);
    let path =
        format!("/v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission");
    let mut request = gateway_tests::testkit::lambda_request(
        "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission",
        &path,
        &[
            ("siret", siret),
            ("market_ref", market_ref),
            ("number", number),
        ],
        &[siret],
        None,
    );
    *request.body_mut() = Body::Binary(std::fs::read(body_file)?);
    let response = transmit_invoice::handle(&state, request).await;
    let status = response.status().as_u16();
    let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
    println!(
        "status={status} peak_rss_kib={}",
        peak_rss_kib().unwrap_or(0)
    );
    println!("{body}");
    Ok(())
}

/// `VmHWM` of this process, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
