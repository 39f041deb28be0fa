//! `make qualify` against the emulator (issue 15, "Show"): every mandatory check passes, a
//! check fails when the emulator refuses a syntax, and no secret reaches the printed lines
//! or the report files. Each test runs the qualification as a library call against an
//! emulator of its own (`gateway_tests::sandbox::spawn`), with the seeded accounts and
//! structures (tests/src/sandbox/mod.rs).

use std::path::PathBuf;
use std::time::Duration;

use gateway_tests::qualify::{FILE_FIELDS, Outcome, Settings, Status, run};
use gateway_tests::sandbox::{SandboxConfig, SandboxHandle, spawn};

const CLIENT_SECRET: &str = "gateway-local-secret";
const PASSWORD: &str = gateway_tests::testkit::seeded::RHONE.password;

/// The variables a vendor would set, pointed at this test's emulator.
fn settings(sandbox: &SandboxHandle, alternatives: bool) -> (Settings, PathBuf) {
    let dir = std::env::temp_dir().join(format!("qualify-{}", uuid::Uuid::new_v4().simple()));
    // SYNDICAT MIXTE TEST as the buyer (service code and commitment required), its
    // commitment issued to this supplier, the seeded MOE.
    let mut vars = binary_vars(sandbox, &dir);
    vars.push((
        "QUALIFY_TRY_ALTERNATIVES",
        if alternatives { "1" } else { "0" }.to_owned(),
    ));
    let mut settings = Settings::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("settings");
    // The emulator moves a flux on each read: no need to wait between reads.
    settings.poll_start = Duration::from_millis(10);
    (settings, dir)
}

/// Through the admin API, as a developer would: the emulator no longer accepts E1 UBL.
async fn refuse_e1_ubl(sandbox: &SandboxHandle) {
    let answer = gateway_tests::testkit::http_client()
        .put(format!("{}/_admin/settings", sandbox.base_url()))
        .json(&serde_json::json!({"acceptedSyntaxes": ["IN_DP_E2_UBL_INVOICE_MIN"]}))
        .send()
        .await
        .expect("admin answers");
    assert!(answer.status().is_success());
}

async fn qualify(settings: &Settings) -> (Outcome, String) {
    let mut printed = Vec::new();
    let outcome = run(settings, &mut printed).await.expect("qualify runs");
    (outcome, String::from_utf8(printed).expect("utf-8"))
}

fn status(outcome: &Outcome, id: &str) -> Status {
    outcome
        .report
        .status_of(id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mandatory_check_passes_against_the_emulator_and_nothing_secret_is_printed() {
    let sandbox = spawn(SandboxConfig::default()).await;
    let (settings, dir) = settings(&sandbox, true);
    let (outcome, printed) = qualify(&settings).await;

    assert_eq!(outcome.exit_code(), 0, "{printed}");
    for id in [
        "1", "2", "3", "4", "5", "6", "7", "7.s", "7.w", "8", "9a", "9b",
    ] {
        assert_eq!(status(&outcome, id), Status::Pass, "check {id}:\n{printed}");
    }
    // The change search (optional): the emulator honours the period, as the follow-up needs.
    assert_eq!(status(&outcome, "6.c"), Status::Pass, "{printed}");
    // The guessed E4 syntax is unknown to the emulator: that alternative fails, visibly.
    assert_eq!(status(&outcome, "7.1"), Status::Fail, "{printed}");
    assert!(printed.contains("FAIL [optional]  7.1"), "{printed}");
    assert!(printed.lines().filter(|l| l.starts_with("PASS ")).count() >= 11);
    // The duplicate: refused at integration, and the gateway recognises the wording.
    let duplicate = outcome.report.check("8").expect("check 8");
    assert!(
        duplicate.summary.contains("refused at integration"),
        "{}",
        duplicate.summary
    );
    // Invoice numbers: QUAL-<yyyymmdd>-<n>, at most 20 characters, all distinct.
    let numbers: Vec<&str> = outcome
        .report
        .invoice_numbers
        .iter()
        .map(|n| n.number.as_str())
        .collect();
    assert!(numbers.len() >= 5, "{numbers:?}");
    assert!(
        numbers
            .iter()
            .all(|n| n.starts_with("QUAL-") && n.len() <= 20),
        "{numbers:?}"
    );
    let distinct: std::collections::HashSet<&str> = numbers.iter().copied().collect();
    assert_eq!(distinct.len(), numbers.len());
    assert!(
        outcome
            .report
            .recommended_settings
            .contains(&"FLUX_SYNTAX=IN_DP_E1_UBL_INVOICE".to_owned())
    );

    let markdown = std::fs::read_to_string(&outcome.markdown).expect("report.md");
    let json = std::fs::read_to_string(&outcome.json).expect("report.json");
    assert!(markdown.contains("## Recommended settings"));
    for field in ["fichierFlux", "pieceJointeFichier"] {
        assert!(
            markdown.contains(&format!("\"{field}\": \"<elided: ")),
            "the body is shown, its file ({field}) elided"
        );
    }
    // Both works routes pass against the emulator: the works route is kept, no flux syntax.
    let recommended = &outcome.report.recommended_settings;
    assert!(
        recommended.contains(&"WORKS_SUBMISSION=pdf_api".to_owned()),
        "{recommended:?}"
    );
    assert!(
        !recommended
            .iter()
            .any(|s| s.starts_with("FLUX_SYNTAX_WORKS")),
        "{recommended:?}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("report.json is JSON");
    assert_eq!(parsed["mandatory_passed"], true);
    assert_no_secret(
        &sandbox,
        &[&printed, &markdown, &json],
        &["fichierFlux", "pieceJointeFichier"],
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Every file a body sent, whatever its field: a text of base64 that decodes to a PDF or an
/// XML document (what qualification sends), with its field's name.
fn files_in(body: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use base64::Engine as _;
    let is_file = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_ok_and(|bytes| bytes.starts_with(b"%PDF") || bytes.starts_with(b"<?xml"))
    };
    match body {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value.as_str() {
                    Some(text) if is_file(text) => out.push((key.clone(), text.to_owned())),
                    _ => files_in(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| files_in(item, out)),
        _ => {}
    }
}

/// Every secret the emulator saw (tokens, `cpro-account` values, every file sent, found by
/// its content whatever its field) and the configured ones; none may appear. Each field in
/// `expected_file_fields` must have carried a file (so the search is seen to work), and
/// every field that carried one must be in `report::FILE_FIELDS`. The message never shows
/// the secret itself.
fn assert_no_secret(sandbox: &SandboxHandle, texts: &[&str], expected_file_fields: &[&str]) {
    let mut files = Vec::new();
    let mut secrets: Vec<String> = vec![
        PASSWORD.to_owned(),
        CLIENT_SECRET.to_owned(),
        "qualify-wrong-password".to_owned(),
    ];
    for entry in sandbox.sandbox().journal(None) {
        if let Some(bearer) = entry.headers.get("authorization") {
            secrets.push(bearer.trim_start_matches("Bearer ").to_owned());
        }
        if let Some(account) = entry.headers.get("cpro-account") {
            secrets.push(account.clone());
        }
        if let Some(body) = &entry.body {
            files_in(body, &mut files);
        }
    }
    let tokens = secrets.iter().filter(|s| s.starts_with("sbx-")).count();
    assert!(tokens >= 1, "the journal holds the tokens it issued");
    let fields: std::collections::BTreeSet<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
    for field in expected_file_fields {
        assert!(
            fields.contains(field),
            "no file sent in {field}: {fields:?}"
        );
    }
    for (field, _) in &files {
        assert!(
            FILE_FIELDS.contains(&field.as_str()),
            "{field} carries a file and is not in report::FILE_FIELDS"
        );
    }
    // Any stretch of a file would do; its start is what a careless print shows.
    secrets.extend(
        files
            .iter()
            .map(|(_, file)| file.chars().take(64).collect::<String>()),
    );
    for (k, secret) in secrets.iter().enumerate() {
        for (t, text) in texts.iter().enumerate() {
            assert!(
                !text.contains(secret.as_str()),
                "secret #{k} found in text #{t}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syntax_the_emulator_refuses_fails_the_formats_and_the_deposit() {
    let sandbox = spawn(SandboxConfig::default()).await;
    refuse_e1_ubl(&sandbox).await;
    let (settings, dir) = settings(&sandbox, false);
    let (outcome, printed) = qualify(&settings).await;

    assert_eq!(outcome.exit_code(), 1, "{printed}");
    assert_eq!(status(&outcome, "3"), Status::Fail, "{printed}");
    assert!(
        printed.contains("FLUX_SYNTAX=IN_DP_E1_UBL_INVOICE is NOT listed"),
        "{printed}"
    );
    assert_eq!(status(&outcome, "6"), Status::Fail, "{printed}");
    let ordinary = outcome.report.check("6").expect("check 6");
    assert!(
        ordinary.summary.contains("codeRetour 20093"),
        "{}",
        ordinary.summary
    );
    assert!(printed.contains("FAIL [mandatory] 6"), "{printed}");
    // Not ready: the report says so, and recommends no syntax that failed.
    assert!(!outcome.report.mandatory_passed);
    assert!(
        !outcome
            .report
            .recommended_settings
            .contains(&"FLUX_SYNTAX=IN_DP_E1_UBL_INVOICE".to_owned())
    );
    let markdown = std::fs::read_to_string(&outcome.markdown).expect("report.md");
    assert!(
        markdown.contains("mandatory checks not passed: 6"),
        "{markdown}"
    );
    assert_no_secret(&sandbox, &[&printed, &markdown], &["fichierFlux"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_production_host_is_refused_without_the_flag() {
    let vars = [
        ("CHORUS_API_URL", "https://api.piste.gouv.fr/cpro"),
        (
            "PISTE_TOKEN_URL",
            "https://oauth.piste.gouv.fr/api/oauth/token",
        ),
    ];
    let error = Settings::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect_err("production refused");
    assert!(error.contains("QUALIFY_ALLOW_PRODUCTION=1"), "{error}");
}

/// The `qualify` binary (`make qualify`) with exactly these variables (nothing inherited):
/// its exit code, stdout and stderr. Run off the runtime's threads, so an emulator of the
/// test keeps answering.
async fn qualify_binary(vars: Vec<(&'static str, String)>) -> (Option<i32>, String, String) {
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_qualify"))
            .env_clear()
            .envs(vars)
            .output()
            .expect("the qualify binary runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .expect("joined")
}

/// What a vendor sets, pointed at `sandbox`, for the binary (no alternatives: shorter).
fn binary_vars(sandbox: &SandboxHandle, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("CHORUS_API_URL", sandbox.api_url()),
        ("PISTE_TOKEN_URL", sandbox.token_url()),
        ("PISTE_CLIENT_ID", "gateway-local".to_owned()),
        ("PISTE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        (
            "CHORUS_TECHNICAL_LOGIN",
            gateway_tests::testkit::seeded::RHONE.login.to_owned(),
        ),
        ("CHORUS_TECHNICAL_PASSWORD", PASSWORD.to_owned()),
        ("QUALIFY_SUPPLIER_SIRET", "81234567600017".to_owned()),
        ("QUALIFY_BUYER_SIRET", "20001234200016".to_owned()),
        ("QUALIFY_BUYER_SERVICE", "TRAVAUX".to_owned()),
        ("QUALIFY_COMMITMENT_NUMBER", "2200000001".to_owned()),
        ("QUALIFY_MOE_SIRET", "21380456000018".to_owned()),
        ("QUALIFY_MOE_SERVICE", "DIRINFRA".to_owned()),
        ("QUALIFY_WAIT_SECONDS", "20".to_owned()),
        ("QUALIFY_REPORT_DIR", dir.display().to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_0_when_every_mandatory_check_passes_and_1_when_one_fails() {
    let sandbox = spawn(SandboxConfig::default()).await;
    let dir = std::env::temp_dir().join(format!("qualify-{}", uuid::Uuid::new_v4().simple()));
    let (code, stdout, stderr) = qualify_binary(binary_vars(&sandbox, &dir)).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("PASS [mandatory] 6"), "{stdout}");
    assert!(stdout.contains("  WORKS_SUBMISSION=pdf_api"), "{stdout}");
    assert!(dir.join("report.md").exists() && dir.join("report.json").exists());
    assert_no_secret(&sandbox, &[&stdout, &stderr], &["fichierFlux"]);

    // The same run once the emulator refuses the E1 syntax: check 6 (mandatory) fails.
    refuse_e1_ubl(&sandbox).await;
    let (code, stdout, stderr) = qualify_binary(binary_vars(&sandbox, &dir)).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL [mandatory] 6"), "{stdout}");
    assert_no_secret(&sandbox, &[&stdout, &stderr], &["fichierFlux"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_binary_exits_2_before_any_call_on_a_production_host_a_missing_variable_or_a_bad_syntax()
 {
    let production = vec![
        (
            "CHORUS_API_URL",
            "https://api.piste.gouv.fr/cpro".to_owned(),
        ),
        (
            "PISTE_TOKEN_URL",
            "https://oauth.piste.gouv.fr/api/oauth/token".to_owned(),
        ),
        ("PISTE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("CHORUS_TECHNICAL_PASSWORD", PASSWORD.to_owned()),
    ];
    let (code, stdout, stderr) = qualify_binary(production).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("QUALIFY_ALLOW_PRODUCTION=1"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");

    let missing = vec![
        (
            "CHORUS_API_URL",
            "https://sandbox-api.piste.gouv.fr/cpro".to_owned(),
        ),
        (
            "PISTE_TOKEN_URL",
            "https://sandbox-oauth.piste.gouv.fr/api/oauth/token".to_owned(),
        ),
        ("PISTE_CLIENT_ID", "gateway-local".to_owned()),
        ("CHORUS_TECHNICAL_PASSWORD", PASSWORD.to_owned()),
    ];
    let (code, stdout, stderr) = qualify_binary(missing).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("missing: PISTE_CLIENT_SECRET, CHORUS_TECHNICAL_LOGIN"),
        "{stderr}"
    );

    // The emulator's defaults (no URL), with a works syntax the gateway would refuse.
    let bad_syntax = vec![
        ("CHORUS_SANDBOX_PORT", "9".to_owned()),
        ("FLUX_SYNTAX_WORKS", "E4".to_owned()),
    ];
    let (code, stdout, stderr) = qualify_binary(bad_syntax).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("FLUX_SYNTAX_WORKS must be"), "{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains(PASSWORD) && !text.contains(CLIENT_SECRET));
    }
}
