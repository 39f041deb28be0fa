//! The transmission of a situation to Chorus Pro (issue 5, "Show"): exactly one deposit
//! whatever fails, and every status followed until payment.
//!
//! One test goes through the local API and the stack's emulator (the happy path to
//! `MISE_EN_PAIEMENT`). The others run the handlers in-process, each against an emulator of
//! its own (`Progress::Manual`: nothing moves unless the test says so, faults reach only
//! that test) and against a DynamoDB table of its own in the stack's moto: `status-sync`
//! reads every due situation of its table, so a shared table would let one test's run
//! follow (and deposit!) another test's transmissions in the wrong emulator. Each company
//! is a random SIRET attached, in that test's emulator, to a technical account of its own.
//!
//! The follow-up function runs with a `FixedClock` moved ahead between runs, so back-offs
//! of minutes or hours cost no real time.

mod subscriber;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::types::AttributeValue;
use gateway_tests::sandbox::{
    AccountUpdate, DepositView, Fault, FaultAction, InvoiceScript, LostMode, Progress,
    SandboxConfig, SandboxHandle, ScriptStep, Seed, Shapes, spawn,
};
use gateway_tests::testkit::{
    CallCounter, PDF, Stack, create_table, invoice_body, lambda_request, random_siret,
    response_json, route_answer, sandbox_url, stack_config,
};
use serde_json::{Map, Value, json};
use shared::clock::FixedClock;
use shared::domain::{MarketRef, Siret, SiretCheck, SituationNumber};
use shared::store::transmission::Tracked;
use subscriber::{drain, story, subscribed_queue};
use time::{Duration, OffsetDateTime};

const TRANSMIT_ROUTE: &str =
    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission";
const RESOLVE_ROUTE: &str =
    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission/resolve";
const RECYCLE_ROUTE: &str =
    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission/recycle";
const COMPLETE_ROUTE: &str =
    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission/complete";
const ACCOUNT_ROUTE: &str = "PUT /v1/companies/{siret}/chorus-account";
const MARKET_ROUTE: &str = "PUT /v1/companies/{siret}/markets/{market_ref}";
const SITUATION_PUT_ROUTE: &str =
    "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}";
const SITUATION_GET_ROUTE: &str =
    "GET /v1/companies/{siret}/markets/{market_ref}/situations/{number}";

const DEPOSIT_PATH: &str = "/cpro/factures/v1/deposer/flux";
const TOKEN_PATH: &str = "/api/oauth/token";

// Seeded in tests/fixtures/chorus-sandbox-seed.json (table in tests/src/sandbox/mod.rs).
const ALPES_SIRET: &str = gateway_tests::testkit::seeded::ALPES.siret;
const ALPES_LOGIN: &str = gateway_tests::testkit::seeded::ALPES.login;
const ALPES_PASSWORD: &str = gateway_tests::testkit::seeded::ALPES.password;
const JURA_LOGIN: &str = gateway_tests::testkit::seeded::JURA.login;
const JURA_PASSWORD: &str = gateway_tests::testkit::seeded::JURA.password;
const VILLEURBANNE: &str = "21690123100011"; // requires nothing
const ISERE: &str = "21380456000018"; // service code required: DIRINFRA

// ---------------------------------------------------------------------------------------
// Small helpers

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
}

/// A fresh invoice number (Chorus Pro: at most 20 characters).
fn invoice_number(tag: &str) -> String {
    format!("TX-{tag}-{}", suffix())
}

/// `FR` + key + SIREN: the seller's VAT id must match its SIRET (CPRO-TVA-01).
fn statuses(view: &Value) -> Vec<String> {
    view["transmission"]["status_history"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["status"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `wanted` appears in `seen` in that order (other entries may come between).
fn in_order(seen: &[String], wanted: &[&str]) -> bool {
    let mut rest = seen.iter();
    wanted.iter().all(|w| rest.any(|s| s == w))
}

fn deposits_of<'a>(deposits: &'a [DepositView], number: &str) -> Vec<&'a DepositView> {
    deposits
        .iter()
        .filter(|d| d.numero_facture == number)
        .collect()
}

/// A transmission request as API Gateway hands it over, with an optional `Idempotency-Key`.
fn transmit_request(
    siret: &str,
    market_ref: &str,
    number: u16,
    key: Option<&str>,
    body: &[u8],
) -> lambda_http::Request {
    transmission_request(TRANSMIT_ROUTE, siret, market_ref, number, key, body)
}

/// A request to one of the transmission routes (`…/transmission`, `…/transmission/resolve`).
fn transmission_request(
    route: &str,
    siret: &str,
    market_ref: &str,
    number: u16,
    key: Option<&str>,
    body: &[u8],
) -> lambda_http::Request {
    let number = number.to_string();
    let base =
        format!("/v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission");
    let path = match route.strip_prefix(TRANSMIT_ROUTE) {
        Some(rest) => format!("{base}{rest}"),
        None => base,
    };
    let params = [
        ("siret", siret),
        ("market_ref", market_ref),
        ("number", number.as_str()),
    ];
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(key) = key {
        headers.push(("Idempotency-Key".to_owned(), key.to_owned()));
    }
    let caller = ("transmission-test", &[siret][..]);
    gateway_tests::testkit::api_request(route, &path, &params, caller, body, &headers)
}

// ---------------------------------------------------------------------------------------
// The in-process harness

/// Which technical account the company uses in the test's emulator.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Account {
    /// An account of its own, valid until 2099.
    Own,
    /// The seeded Jura account (its password expired in 2025), attached to the company.
    Jura,
}

struct Options {
    account: Account,
    /// The emulator's value shapes (issue 19); this test's emulator only.
    shapes: Shapes,
    reconcile_grace_seconds: u64,
    chorus_timeout_ms: u64,
    /// `DEPOSIT_LEASE_SECONDS`: short, so that the lease tests end quickly.
    deposit_lease_seconds: u64,
    /// The EventBridge bus of this test's functions (the stack's when `None`).
    event_bus: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            account: Account::Own,
            shapes: Shapes::Libraries,
            reconcile_grace_seconds: 1,
            chorus_timeout_ms: 1_500,
            deposit_lease_seconds: 2,
            event_bus: None,
        }
    }
}

/// One company with its Chorus Pro account saved and a market (A1, Villeurbanne), the four
/// functions in-process, an emulator and a table of its own.
struct Harness {
    emulator: SandboxHandle,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    sdk: shared::aws::SdkConfig,
    config: shared::config::Config,
    settings: company_settings::State,
    identifiers: identifiers::State,
    transmit: Arc<transmit_invoice::State>,
    sync: status_sync::State,
    clock: Arc<FixedClock>,
    last_sync: Mutex<OffsetDateTime>,
    siret: String,
    login: String,
    password: String,
    market_ref: String,
}

impl Harness {
    async fn new(options: Options) -> Harness {
        let stack = Stack::connect().await;
        let siret = random_siret();
        let mut seed = Seed::embedded();
        seed.structures.push(
            serde_json::from_value(json!({
                "idStructureCPP": 27_000_000 + i64::from(rand::random::<u16>()),
                "siret": siret,
                "designation": "ENTREPRISE TEST TRANSMISSION",
                "public": false
            }))
            .unwrap(),
        );
        let (login, password) = match options.account {
            Account::Own => {
                let login = format!("TECH_1_tx-{}@cpro.fr", suffix().to_lowercase());
                let password = format!("Tx-Tech-{}!", suffix());
                seed.technical_accounts.push(
                    serde_json::from_value(json!({
                        "login": login, "password": password,
                        "passwordExpiresOn": "2099-12-31", "structures": [siret]
                    }))
                    .unwrap(),
                );
                (login, password)
            }
            Account::Jura => {
                let jura = seed
                    .technical_accounts
                    .iter_mut()
                    .find(|a| a.login == JURA_LOGIN)
                    .expect("Jura is seeded");
                jura.structures.push(siret.clone());
                // Still valid while the market is registered; expired by the test after.
                jura.password_expires_on = "2099-12-31".into();
                (JURA_LOGIN.to_owned(), JURA_PASSWORD.to_owned())
            }
        };
        let emulator = spawn(SandboxConfig {
            seed,
            progress: Progress::Manual,
            shapes: options.shapes,
            ..SandboxConfig::default()
        })
        .await;

        let table = format!("choruspro-gateway-txtest-{}", suffix().to_lowercase());
        create_table(&stack.ddb, &table).await;
        let grace = options.reconcile_grace_seconds.to_string();
        let timeout = options.chorus_timeout_ms.to_string();
        let lease = options.deposit_lease_seconds.to_string();
        let api = emulator.api_url();
        let token = emulator.token_url();
        let bus = options.event_bus.clone().unwrap_or_default();
        let mut overrides = vec![
            ("TABLE_NAME", table.as_str()),
            ("CHORUS_API_URL", &api),
            ("PISTE_TOKEN_URL", &token),
            ("RECONCILE_GRACE_SECONDS", &grace),
            ("DEPOSIT_LEASE_SECONDS", &lease),
            ("CHORUS_TIMEOUT_MS", &timeout),
        ];
        if options.event_bus.is_some() {
            overrides.push(("EVENT_BUS_NAME", &bus));
        }
        let config = stack_config(&overrides);
        let sdk = shared::aws::sdk_config().await;
        let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
        let mut sync = status_sync::State::from_sdk(config.clone(), &sdk);
        sync.clock = clock.clone();
        let harness = Harness {
            settings: company_settings::State::from_sdk(config.clone(), &sdk),
            identifiers: identifiers::State::from_sdk(config.clone(), &sdk),
            transmit: Arc::new(transmit_invoice::State::from_sdk(config.clone(), &sdk)),
            sync,
            clock,
            last_sync: Mutex::new(OffsetDateTime::now_utc()),
            emulator,
            ddb: stack.ddb.clone(),
            table,
            sdk,
            config,
            siret,
            login,
            password,
            market_ref: format!("m-{}", suffix().to_lowercase()),
        };
        let verify = options.account == Account::Own;
        let (status, answer) = harness
            .save_account(&harness.password.clone(), verify)
            .await;
        assert_eq!(status, 201, "{answer}");
        let (status, answer) = harness
            .put_market(json!({"market_number": format!("2026-TX-{}", suffix()), "buyer_siret": VILLEURBANNE, "label": "Voirie"}))
            .await;
        assert_eq!(status, 201, "{answer}");
        harness
    }

    fn sandbox(&self) -> &gateway_tests::sandbox::Sandbox {
        self.emulator.sandbox()
    }

    async fn save_account(&self, password: &str, verify: bool) -> (u16, Value) {
        let request = lambda_request(
            ACCOUNT_ROUTE,
            &Stack::account_path(&self.siret),
            &[("siret", &self.siret)],
            &[&self.siret],
            Some(&json!({
                "referent_email": "compta@entreprise-btp.fr",
                "technical_login": self.login,
                "password": password,
                "password_confirmation": password,
                "verify": verify
            })),
        );
        route_answer(
            ACCOUNT_ROUTE,
            &company_settings::handle(&self.settings, request).await,
        )
    }

    async fn get_account(&self) -> Value {
        let request = lambda_request(
            "GET /v1/companies/{siret}/chorus-account",
            &Stack::account_path(&self.siret),
            &[("siret", &self.siret)],
            &[&self.siret],
            None,
        );
        route_answer(
            "GET /v1/companies/{siret}/chorus-account",
            &company_settings::handle(&self.settings, request).await,
        )
        .1
    }

    async fn put_market(&self, body: Value) -> (u16, Value) {
        let path = format!("/v1/companies/{}/markets/{}", self.siret, self.market_ref);
        let request = lambda_request(
            MARKET_ROUTE,
            &path,
            &[("siret", &self.siret), ("market_ref", &self.market_ref)],
            &[&self.siret],
            Some(&body),
        );
        route_answer(
            MARKET_ROUTE,
            &identifiers::handle(&self.identifiers, request).await,
        )
    }

    fn situation_path(&self, number: u16) -> String {
        format!(
            "/v1/companies/{}/markets/{}/situations/{number}",
            self.siret, self.market_ref
        )
    }

    /// Registers situation `number` under `invoice_number`.
    async fn put_situation(&self, number: u16, invoice_number: &str) -> (u16, Value) {
        let n = number.to_string();
        let request = lambda_request(
            SITUATION_PUT_ROUTE,
            &self.situation_path(number),
            &[
                ("siret", &self.siret),
                ("market_ref", &self.market_ref),
                ("number", &n),
            ],
            &[&self.siret],
            Some(&json!({"invoice_number": invoice_number, "period": "2026-11"})),
        );
        route_answer(
            SITUATION_PUT_ROUTE,
            &identifiers::handle(&self.identifiers, request).await,
        )
    }

    async fn situation(&self, number: u16, invoice_number: &str) {
        let (status, answer) = self.put_situation(number, invoice_number).await;
        assert_eq!(status, 201, "{answer}");
    }

    /// The situation view, as `GET …/situations/{number}` answers it.
    async fn get(&self, number: u16) -> Value {
        let n = number.to_string();
        let request = lambda_request(
            SITUATION_GET_ROUTE,
            &self.situation_path(number),
            &[
                ("siret", &self.siret),
                ("market_ref", &self.market_ref),
                ("number", &n),
            ],
            &[&self.siret],
            None,
        );
        let (status, view) = route_answer(
            SITUATION_GET_ROUTE,
            &identifiers::handle(&self.identifiers, request).await,
        );
        assert_eq!(status, 200, "{view}");
        view
    }

    async fn tracked(&self, number: u16) -> Tracked {
        self.transmit
            .store
            .get_tracked(
                &Siret::parse(&self.siret, SiretCheck::ShapeOnly).unwrap(),
                &MarketRef::parse(&self.market_ref).unwrap(),
                SituationNumber::new(number).unwrap(),
            )
            .await
            .unwrap()
            .expect("the situation exists")
    }

    fn body(&self) -> Value {
        invoice_body(&self.siret)
    }

    async fn post_bytes(&self, number: u16, key: Option<&str>, body: &[u8]) -> (u16, Value) {
        let request = transmit_request(&self.siret, &self.market_ref, number, key, body);
        route_answer(
            TRANSMIT_ROUTE,
            &transmit_invoice::handle(&self.transmit, request).await,
        )
    }

    /// `POST …/transmission/resolve`: what the company saw in the Chorus Pro portal.
    async fn resolve(&self, number: u16, body: Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(&body).unwrap();
        let request = transmission_request(
            RESOLVE_ROUTE,
            &self.siret,
            &self.market_ref,
            number,
            None,
            &bytes,
        );
        route_answer(
            RESOLVE_ROUTE,
            &transmit_invoice::handle(&self.transmit, request).await,
        )
    }

    /// `POST …/transmission/recycle` or `…/transmission/complete` (`route`).
    async fn act(&self, route: &str, number: u16, key: Option<&str>, body: Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(&body).unwrap();
        let request =
            transmission_request(route, &self.siret, &self.market_ref, number, key, &bytes);
        route_answer(
            route,
            &transmit_invoice::handle(&self.transmit, request).await,
        )
    }

    /// Situation `number` deposited, followed to `MISE_A_DISPOSITION`, then returned by
    /// Chorus Pro in `status` and followed to it; its invoice number.
    async fn returned(&self, number: u16, tag: &str, status: Option<&str>) -> String {
        let invoice = invoice_number(tag);
        self.situation(number, &invoice).await;
        let (code, answer) = self.post(number, None).await;
        assert_eq!(code, 202, "{answer}");
        self.follow_until(number, &invoice, "MISE_A_DISPOSITION", 8)
            .await;
        if let Some(status) = status {
            let forced = self.sandbox().force_invoice_status(
                &invoice,
                status,
                Some("Renvoyée par l'acheteur"),
            );
            assert_eq!(forced, 1);
            self.follow_until(number, &invoice, status, 2).await;
        }
        invoice
    }

    async fn verify_account(&self) -> (u16, Value) {
        let request = lambda_request(
            "POST /v1/companies/{siret}/chorus-account/verify",
            &format!("{}/verify", Stack::account_path(&self.siret)),
            &[("siret", &self.siret)],
            &[&self.siret],
            None,
        );
        route_answer(
            "POST /v1/companies/{siret}/chorus-account/verify",
            &company_settings::handle(&self.settings, request).await,
        )
    }

    async fn post(&self, number: u16, key: Option<&str>) -> (u16, Value) {
        self.post_bytes(number, key, &serde_json::to_vec(&self.body()).unwrap())
            .await
    }

    /// One run of the follow-up, its clock `ahead` past the previous run (or now).
    async fn sync_after(&self, ahead: Duration) -> status_sync::SyncReport {
        let at = {
            let mut last = self.last_sync.lock().unwrap();
            *last = (*last).max(OffsetDateTime::now_utc()) + ahead;
            *last
        };
        self.clock.set(at);
        status_sync::run_once(&self.sync).await
    }

    fn journal_count(&self, path: &str) -> usize {
        self.sandbox().journal(Some(path)).len()
    }

    fn deposits(&self, number: &str) -> Vec<DepositView> {
        deposits_of(&self.sandbox().deposits(), number)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Moves the emulator one step for this invoice, then runs the follow-up; until the
    /// situation's Chorus Pro status is `status` (at most `runs` times).
    async fn follow_until(&self, number: u16, invoice: &str, status: &str, runs: usize) -> Value {
        for _ in 0..runs {
            self.sandbox().advance(None, Some(invoice));
            let report = self.sync_after(Duration::hours(7)).await;
            assert_eq!(report.failed, 0, "{report:?}");
            let view = self.get(number).await;
            if view["transmission"]["chorus_status"] == status {
                return view;
            }
        }
        panic!(
            "{invoice} never reached {status}: {}",
            self.get(number).await
        );
    }

    /// Items of the company's partition whose SK starts with `prefix`.
    async fn items(&self, prefix: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("COMPANY#{}", self.siret)),
            )
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items()
            .to_vec()
    }

    /// Drops the test's table (a failed test leaves it for inspection).
    async fn finish(self) {
        let _ = self.ddb.delete_table().table_name(&self.table).send().await;
    }
}

// ---------------------------------------------------------------------------------------
// 1. Through the local API, to payment

/// ALPES's account saved, a market `tx-{name}-…` and its situation 3 registered, all through
/// the local API: the token, the market's ref, the situation's path, its invoice number.
async fn a_situation_through_the_api(
    stack: &Stack,
    name: &str,
    tag: &str,
) -> (String, String, String, String) {
    let siret = ALPES_SIRET;
    let token = stack.token(&[siret]);
    save_the_account_through_the_api(stack, &token, siret).await;
    let market_ref = format!("tx-{name}-{}", suffix().to_lowercase());
    let market = format!("/v1/companies/{siret}/markets/{market_ref}");
    let situation = format!("{market}/situations/3");
    let number = invoice_number(tag);
    create_the_market_and_situation_through_the_api(stack, &token, &market, &number).await;
    (token, market_ref, situation, number)
}

#[tokio::test]
async fn happy_path_to_payment_through_the_local_api() {
    let stack = Stack::connect().await;
    let siret = ALPES_SIRET;
    let (token, market_ref, situation, number) =
        a_situation_through_the_api(&stack, "gymnase", "API").await;
    let flux = transmit_through_the_api(&stack, &token, &situation, &number).await;

    let tracked = follow_in_process_until_paid(siret, &market_ref).await;
    assert_eq!(
        tracked.record.next_check_at, None,
        "a final status ends the follow-up"
    );
    the_api_shows_the_situation_paid(&stack, &token, &situation, &flux).await;
    the_emulator_holds_one_deposit(&number, &flux).await;
}

/// Over HTTP, as API Gateway hands it over: a key that is not ASCII answers 400 and sends
/// nothing (the local API once dropped such a header, and the request went through keyless).
#[tokio::test]
async fn a_non_ascii_idempotency_key_is_refused_through_the_local_api() {
    let stack = Stack::connect().await;
    let (token, _, situation, number) = a_situation_through_the_api(&stack, "cle", "KEY").await;
    let mut body = invoice_body(ALPES_SIRET);
    body["buyer"]["name"] = json!("DEPARTEMENT DE L'ISERE TEST");
    let key = reqwest::header::HeaderValue::from_bytes("clé-été".as_bytes()).unwrap();
    let r = stack
        .http
        .post(format!("{}{situation}/transmission", stack.api))
        .bearer_auth(&token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "validation_failed", "{answer}");
    assert_eq!(answer["errors"][0]["field"], "Idempotency-Key", "{answer}");
    assert_eq!(
        answer["errors"][0]["code"], "invalid_idempotency_key",
        "{answer}"
    );
    let view = stack.call("GET", &situation, Some(&token), None).await;
    assert_eq!(
        view.json["transmission"]["state"], "not_transmitted",
        "{}",
        view.text
    );
    assert!(stack_deposits_of(&number).await.is_empty());
    // The same situation with a good key goes: the refusal was the key's alone.
    let flux = transmit_through_the_api(&stack, &token, &situation, &number).await;
    let deposits = stack_deposits_of(&number).await;
    assert_eq!(deposits.len(), 1, "{deposits:?}");
    assert_eq!(deposits[0]["numeroFluxDepot"], flux.as_str());
}

/// The deposits of this invoice number in the stack's emulator.
async fn stack_deposits_of(number: &str) -> Vec<Value> {
    let deposits: Value = gateway_tests::testkit::http_client()
        .get(format!("{}/_admin/deposits", sandbox_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    deposits["deposits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["numeroFacture"] == number)
        .cloned()
        .collect()
}

/// A JSON body for `Stack::call`.
fn json_bytes(v: Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(&v).unwrap())
}

/// The seeded Alpes technical account, saved and verified.
async fn save_the_account_through_the_api(stack: &Stack, token: &str, siret: &str) {
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(siret),
            Some(token),
            json_bytes(json!({
                "referent_email": "compta@charpentes-alpes.fr",
                "technical_login": ALPES_LOGIN,
                "password": ALPES_PASSWORD,
                "password_confirmation": ALPES_PASSWORD
            })),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    assert_eq!(r.json["credentials_status"], "valid", "{}", r.text);
}

/// A market with the Isère department (service code required), and its situation 3.
async fn create_the_market_and_situation_through_the_api(
    stack: &Stack,
    token: &str,
    market: &str,
    number: &str,
) {
    let r = stack
        .call(
            "PUT",
            market,
            Some(token),
            json_bytes(json!({
                "market_number": format!("2026-TRV-{}", suffix()),
                "buyer_siret": ISERE,
                "buyer_service_code": "DIRINFRA",
                "framework": "A1",
                "label": "Réhabilitation du gymnase"
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let r = stack
        .call(
            "PUT",
            &format!("{market}/situations/3"),
            Some(token),
            json_bytes(json!({"invoice_number": number, "period": "2026-11"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// The transmission, deposited at once; gives its flux number.
async fn transmit_through_the_api(
    stack: &Stack,
    token: &str,
    situation: &str,
    number: &str,
) -> String {
    let mut body = invoice_body(ALPES_SIRET);
    body["buyer"]["name"] = json!("DEPARTEMENT DE L'ISERE TEST");
    let r = stack
        .http
        .post(format!("{}{situation}/transmission", stack.api))
        .bearer_auth(token)
        .header("Idempotency-Key", format!("key-{number}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");
    let flux = answer["transmission"]["flux_number"]
        .as_str()
        .expect("a flux number")
        .to_owned();
    assert_eq!(statuses(&answer), ["DEPOSE"], "{answer}");
    flux
}

/// The follow-up, in-process against the stack, its clock moved to when this situation
/// is due (the stack's emulator moves one step a second, in real time).
async fn follow_in_process_until_paid(siret: &str, market_ref: &str) -> Tracked {
    let config = stack_config(&[]);
    let sdk = shared::aws::sdk_config().await;
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let mut sync = status_sync::State::from_sdk(config, &sdk);
    sync.clock = clock.clone();
    let key = (
        Siret::parse(siret, SiretCheck::ShapeOnly).unwrap(),
        MarketRef::parse(market_ref).unwrap(),
        SituationNumber::new(3).unwrap(),
    );
    for _ in 0..40 {
        tokio::time::sleep(StdDuration::from_millis(700)).await;
        let tracked = sync
            .store
            .get_tracked(&key.0, &key.1, key.2)
            .await
            .unwrap()
            .unwrap();
        if tracked.situation.transmission.chorus_status.as_deref() == Some("MISE_EN_PAIEMENT") {
            return tracked;
        }
        let due = tracked
            .record
            .next_check_at
            .expect("followed until a final status");
        clock.set(due.max(OffsetDateTime::now_utc()) + Duration::seconds(1));
        let report = status_sync::run_once(&sync).await;
        assert!(
            report
                .actions
                .iter()
                .any(|a| a.market_ref == market_ref && a.siret == siret),
            "this situation was due and not followed: {report:?}"
        );
    }
    panic!("MISE_EN_PAIEMENT within 40 runs");
}

/// Integrated, paid, every Chorus Pro status in order and each once, nothing left to do.
async fn the_api_shows_the_situation_paid(stack: &Stack, token: &str, situation: &str, flux: &str) {
    let r = stack.call("GET", situation, Some(token), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let view = r.json;
    assert_eq!(view["transmission"]["state"], "integrated", "{view}");
    assert_eq!(view["transmission"]["chorus_status"], "MISE_EN_PAIEMENT");
    assert_eq!(view["transmission"]["flux_number"], flux);
    assert!(view["transmission"]["chorus_invoice_id"].is_i64(), "{view}");
    assert_eq!(view["next_action"], Value::Null, "{view}");
    let seen = statuses(&view);
    assert!(
        in_order(
            &seen,
            &[
                "DEPOSE",
                "IN_INTEGRE",
                "DEPOSEE",
                "MISE_A_DISPOSITION",
                "SERVICE_FAIT",
                "MANDATEE",
                "MISE_EN_PAIEMENT"
            ]
        ),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|s| *s == "MISE_EN_PAIEMENT").count(),
        1,
        "each Chorus Pro status is recorded once: {seen:?}"
    );
}

/// The stack's emulator received this invoice once, in that flux, integrated.
async fn the_emulator_holds_one_deposit(number: &str, flux: &str) {
    let mine = stack_deposits_of(number).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["numeroFluxDepot"], flux);
    assert_eq!(mine[0]["etat"], "IN_INTEGRE");
}

// ---------------------------------------------------------------------------------------
// 2. Idempotency, and what a transmission costs in Chorus Pro calls

#[tokio::test]
async fn the_same_transmission_asked_again_answers_the_same_flux_without_a_second_deposit() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("IDEM");
    h.situation(1, &number).await;
    h.sandbox().clear_journal();

    let (status, first) = h.post(1, Some("key-1")).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["transmission"]["state"], "deposited", "{first}");
    assert_eq!(first["next_action"], Value::Null);
    let flux = first["transmission"]["flux_number"]
        .as_str()
        .unwrap()
        .to_owned();
    // A cold function: one PISTE token, one deposit, nothing else.
    assert_eq!(h.journal_count(TOKEN_PATH), 1);
    assert_eq!(h.journal_count("/cpro/"), 1);
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);

    let mut changed = h.body();
    changed["note"] = json!("Une autre note");
    let again: Vec<(Option<&str>, Value)> = vec![
        (Some("key-1"), h.body()),
        (Some("key-2"), h.body()),
        (None, h.body()),
        (Some("key-3"), changed),
    ];
    for (key, body) in again {
        let (status, answer) = h
            .post_bytes(1, key, &serde_json::to_vec(&body).unwrap())
            .await;
        assert_eq!(status, 202, "{key:?}: {answer}");
        assert_eq!(
            answer["transmission"]["state"], "deposited",
            "{key:?}: {answer}"
        );
        assert_eq!(
            answer["transmission"]["flux_number"],
            flux.as_str(),
            "{key:?}"
        );
        assert_eq!(answer["transmission"], first["transmission"], "{key:?}");
    }
    // Answered from the table alone: no other call reached PISTE or Chorus Pro.
    assert_eq!(h.journal_count("/"), 2, "{:?}", h.sandbox().journal(None));
    assert_eq!(h.deposits(&number).len(), 1);
    let tracked = h.tracked(1).await;
    assert_eq!(tracked.record.idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(tracked.record.attempts, 1);

    // The company deletes its settings: a repeat is told so, first, as any transmission.
    let request = lambda_request(
        ACCOUNT_ROUTE.replace("PUT", "DELETE").as_str(),
        &Stack::account_path(&h.siret),
        &[("siret", &h.siret)],
        &[&h.siret],
        None,
    );
    let deleted = company_settings::handle(&h.settings, request).await;
    assert_eq!(deleted.status().as_u16(), 204);
    let (status, answer) = h.post(1, Some("key-1")).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["code"], "company_not_configured", "{answer}");
    assert_eq!(h.deposits(&number).len(), 1);
    h.finish().await;
}

/// The calls one transmission makes on a warm function (the closing note of issue 5), and
/// the follow-up's calls from the deposit to `MISE_EN_PAIEMENT`.
#[tokio::test]
async fn calls_per_transmission_on_a_warm_function() {
    let h = Harness::new(Options::default()).await;
    let warm_up = invoice_number("WARM");
    let number = invoice_number("CALLS");
    h.situation(1, &warm_up).await;
    h.situation(2, &number).await;
    // The transmission function with its AWS calls counted (the same clients otherwise).
    let calls = CallCounter::default();
    let ddb = aws_sdk_dynamodb::config::Builder::from(&h.sdk)
        .interceptor(calls.clone())
        .build();
    let sm = aws_sdk_secretsmanager::config::Builder::from(&h.sdk)
        .interceptor(calls.clone())
        .build();
    let store = shared::store::Store::new(
        aws_sdk_dynamodb::Client::from_conf(ddb),
        h.config.table_name.clone(),
    );
    let secrets = shared::secrets::SecretStore::new(
        aws_sdk_secretsmanager::Client::from_conf(sm),
        h.config.secret_prefix.clone(),
    );
    let mut state = shared::services::State::from_clients(h.config.clone(), store, secrets);
    state.clock = h.clock.clone();
    let counted = transmit_invoice::State {
        documents: None,
        depositing: shared::services::DepositingState::new(state, None),
    };
    let post = |number: u16, key: Option<&'static str>| {
        let body = serde_json::to_vec(&h.body()).unwrap();
        let request = transmit_request(&h.siret, &h.market_ref, number, key, &body);
        let counted = &counted;
        async move { response_json(&transmit_invoice::handle(counted, request).await) }
    };
    let (status, answer) = post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    // Warm: the token and the PISTE credentials are cached.
    h.sandbox().clear_journal();
    calls.take();
    let (status, answer) = post(2, Some("calls")).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");
    assert_eq!(h.journal_count(TOKEN_PATH), 0);
    assert_eq!(h.journal_count("/cpro/"), 1);
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);
    // The minimum: one read of account, market and situation, the file, the claim with its
    // lease, the outcome; the password at the version the account names.
    assert_eq!(
        calls.take(),
        [
            ("BatchGetItem", 1),
            ("BatchWriteItem", 1),
            ("GetSecretValue", 1),
            ("UpdateItem", 2),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into()
    );
    // A repeat: one read.
    let (status, answer) = post(2, Some("calls")).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        calls.take(),
        [("BatchGetItem".to_owned(), 1)].into(),
        "{answer}"
    );

    // The follow-up of situation 1 is not counted: it is paid first.
    h.follow_until(1, &warm_up, "MISE_EN_PAIEMENT", 12).await;
    h.sandbox().clear_journal();
    let view = h.follow_until(2, &number, "MISE_EN_PAIEMENT", 12).await;
    assert_eq!(view["transmission"]["state"], "integrated");
    let journal = h.sandbox().journal(None);
    let count = |path: &str| journal.iter().filter(|e| e.path.ends_with(path)).count();
    let reports = count("consulterCRDetaille");
    let searches = count("rechercher/fournisseur");
    let histories = count("consulter/historique");
    eprintln!(
        "calls per transmission (warm): deposit 1, token 0; follow-up to MISE_EN_PAIEMENT: \
         consulterCRDetaille {reports}, rechercher/fournisseur {searches}, consulter/historique {histories}, \
         token {}",
        count("oauth/token")
    );
    assert_eq!(count("oauth/token"), 0);
    assert_eq!(reports, 1, "the flux is read until integrated");
    // Change-driven follow-up (docs/chorus-pro.md#change-driven-follow-up): the invoice is
    // found once by its flux and its history read once when integrated; then each look of
    // the company is one search (hourly at its buyer, daily once accepted: the runs here
    // are 7 hours apart), and a history read only when the search shows it changed — two
    // steps made between two looks cost one read.
    assert_eq!(searches, 4, "found by its flux, then three looks");
    assert_eq!(
        histories, 3,
        "one history read at integration, then one per look that found a change"
    );
    assert_eq!(journal.len(), reports + searches + histories);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// 3. Concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_posts_make_one_deposit() {
    // Twenty cold clients at once on a loaded 2-core machine: the winner's deposit (PISTE
    // credentials, token, deposit) may take longer than the default 1.5 s timeout and 2 s
    // lease; a lost answer and an expired lease are other tests' subjects.
    let h = Harness::new(Options {
        chorus_timeout_ms: 10_000,
        deposit_lease_seconds: 30,
        ..Options::default()
    })
    .await;
    let number = invoice_number("RACE");
    h.situation(1, &number).await;
    h.sandbox().clear_journal();
    // Twenty Lambda instances: each its own clients (cold), all at once.
    let body = serde_json::to_vec(&h.body()).unwrap();
    let calls = (0..20).map(|i| {
        let state = Arc::new(transmit_invoice::State::from_sdk(h.config.clone(), &h.sdk));
        let request = transmit_request(
            &h.siret,
            &h.market_ref,
            1,
            Some(&format!("race-{}", i % 3)),
            &body,
        );
        tokio::spawn(async move { response_json(&transmit_invoice::handle(&state, request).await) })
    });
    let answers: Vec<(u16, Value)> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();

    assert_eq!(
        h.journal_count(DEPOSIT_PATH),
        1,
        "{:?}",
        h.sandbox().journal(Some(DEPOSIT_PATH))
    );
    let deposits = h.deposits(&number);
    assert_eq!(deposits.len(), 1);
    // Every caller gets the same answer: the deposit's flux number.
    let mut tally: HashMap<String, usize> = HashMap::new();
    for (status, answer) in &answers {
        let state = answer["transmission"]["state"].as_str().unwrap_or("-");
        *tally.entry(format!("{status} {state}")).or_default() += 1;
    }
    // A caller that waited 10 s without seeing the deposit end answers 409
    // `transmission_in_progress` (only when moto is very slow); never anything else.
    let waited = tally.get("409 -").copied().unwrap_or(0);
    assert_eq!(
        tally.get("202 deposited").copied().unwrap_or(0) + waited,
        20,
        "{tally:?}"
    );
    assert!(waited < 20, "{tally:?}");
    for (status, answer) in answers.iter().filter(|(status, _)| *status == 409) {
        assert_eq!(
            answer["code"], "transmission_in_progress",
            "{status} {answer}"
        );
    }
    for (status, answer) in answers.iter().filter(|(status, _)| *status != 409) {
        assert_eq!(*status, 202, "{answer}");
        assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");
        assert_eq!(
            answer["transmission"]["flux_number"],
            deposits[0].numero_flux_depot.as_str(),
            "{answer}"
        );
    }
    let tracked = h.tracked(1).await;
    assert_eq!(tracked.record.attempts, 1);
    assert_eq!(
        statuses(&h.get(1).await),
        ["DEPOSE"],
        "one deposit, one history entry"
    );
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// 4–5. What Chorus Pro decides, and what the company must do

#[tokio::test]
async fn a_rejected_flux_shows_its_reason_and_asks_for_a_new_number() {
    let bus = format!("evtest-{}", suffix().to_lowercase());
    let h = Harness::new(Options {
        event_bus: Some(bus.clone()),
        ..Options::default()
    })
    .await;
    let queue = subscribed_queue(&h.sdk, &bus).await;
    let number = invoice_number("REJ");
    h.situation(1, &number).await;
    let reason = "Le code service SERVICE_FERME du destinataire n'est pas actif";
    h.sandbox().script_invoice(InvoiceScript {
        numero_facture: number.clone(),
        steps: vec![],
        flux_rejection: Some(reason.to_owned()),
    });
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");

    // Chorus Pro processes the flux: IN_REJETE, with listeErreurDP.
    h.sandbox().advance(None, Some(&number));
    let report = h.sync_after(Duration::minutes(3)).await;
    assert_eq!(report.rejected, 1, "{report:?}");
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "rejected", "{view}");
    let history = view["transmission"]["status_history"].as_array().unwrap();
    let last = history.last().unwrap();
    assert_eq!(last["status"], "IN_REJETE", "{view}");
    assert!(
        last["comment"].as_str().unwrap_or("").contains(reason),
        "the reason is in the history: {view}"
    );
    let next = view["next_action"].as_str().expect("a next action");
    assert!(
        next.contains("nouveau numéro") && next.contains(&number),
        "{next}"
    );
    assert_eq!(
        h.tracked(1).await.record.next_check_at,
        None,
        "nothing more to follow"
    );
    let report = h.sync_after(Duration::hours(7)).await;
    assert_eq!(report.due, 0, "{report:?}");

    // The same number is refused; a new one reopens the situation, which is sent again.
    let (status, refused) = h.put_situation(1, &number).await;
    assert_eq!(status, 409, "{refused}");
    let renumbered = invoice_number("REJ2");
    let (status, reopened) = h.put_situation(1, &renumbered).await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["transmission"]["state"], "not_transmitted");
    assert_eq!(
        reopened["previous_submissions"][0]["invoice_number"],
        number.as_str()
    );
    the_reopening_is_one_event(&h, &queue, &renumbered).await;
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");
    assert_eq!(h.deposits(&number).len(), 1);
    assert_eq!(h.deposits(&renumbered).len(), 1);
    // The next runs publish what waits in the outbox: the reopening is not in it again.
    h.sync_after(Duration::minutes(5)).await;
    let later: Vec<String> = drain(&h.sdk, &queue)
        .await
        .iter()
        .map(|e| e["detail"]["previous_state"].to_string())
        .collect();
    assert!(!later.contains(&"\"rejected\"".to_owned()), "{later:?}");
    h.finish().await;
}

/// The registration that reopened the rejected situation changed its state (`rejected` →
/// `not_transmitted`): one `Situation status changed`, published at once, under the new
/// number, with the rejected state and nothing Chorus Pro knows any more.
async fn the_reopening_is_one_event(h: &Harness, queue: &str, renumbered: &str) {
    let events = drain(&h.sdk, queue).await;
    let reopening: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail"]["previous_state"] == "rejected")
        .collect();
    assert_eq!(reopening.len(), 1, "{events:?}");
    let event = reopening[0];
    assert_eq!(event["detail-type"], "Situation status changed");
    let detail = &event["detail"];
    assert_eq!(detail["state"], "not_transmitted", "{detail}");
    assert_eq!(detail["invoice_number"], renumbered, "{detail}");
    assert_eq!(detail["chorus_status"], Value::Null, "{detail}");
    assert_eq!(story(&events, renumbered).len(), 1, "{events:?}");
}

#[tokio::test]
async fn a_recycler_and_suspendue_tell_what_to_do() {
    let h = Harness::new(Options::default()).await;
    let recycle = invoice_number("RCY");
    let suspend = invoice_number("SUS");
    h.situation(1, &recycle).await;
    h.situation(2, &suspend).await;
    h.sandbox().script_invoice(InvoiceScript {
        numero_facture: recycle.clone(),
        steps: vec![
            ScriptStep::new("MISE_A_DISPOSITION", None),
            ScriptStep::new(
                "A_RECYCLER",
                Some("Code service erroné : utiliser DIRINFRA"),
            ),
        ],
        flux_rejection: None,
    });
    h.sandbox().script_invoice(InvoiceScript {
        numero_facture: suspend.clone(),
        steps: vec![
            ScriptStep::new("MISE_A_DISPOSITION", None),
            ScriptStep::new(
                "SUSPENDUE",
                Some("Pièce manquante : procès-verbal de réception"),
            ),
        ],
        flux_rejection: None,
    });
    for n in [1, 2] {
        let (status, answer) = h.post(n, None).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");
    }

    let view = h.follow_until(1, &recycle, "A_RECYCLER", 8).await;
    assert_eq!(view["transmission"]["state"], "integrated");
    let last = view["transmission"]["status_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["status"], "A_RECYCLER");
    assert_eq!(last["comment"], "Code service erroné : utiliser DIRINFRA");
    let next = view["next_action"].as_str().expect("a next action");
    assert!(
        next.contains("recycler") && next.contains("reste le même"),
        "{next}"
    );

    let view = h.follow_until(2, &suspend, "SUSPENDUE", 8).await;
    let last = view["transmission"]["status_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["status"], "SUSPENDUE");
    assert_eq!(
        last["comment"],
        "Pièce manquante : procès-verbal de réception"
    );
    let next = view["next_action"].as_str().expect("a next action");
    assert!(
        next.contains("suspendue") && next.contains("pièces"),
        "{next}"
    );

    // Neither status is final: both stay followed.
    assert!(h.tracked(1).await.record.next_check_at.is_some());
    assert!(h.tracked(2).await.record.next_check_at.is_some());
    assert!(
        in_order(
            &statuses(&view),
            &[
                "DEPOSE",
                "IN_INTEGRE",
                "DEPOSEE",
                "MISE_A_DISPOSITION",
                "SUSPENDUE"
            ]
        ),
        "{view}"
    );
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// 6–7. Chorus Pro failing during the deposit

#[tokio::test]
async fn a_500_on_the_deposit_is_never_sent_again_until_the_company_says_it_is_not_in_chorus_pro() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("500");
    h.situation(1, &number).await;
    h.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::Status { status: 500 },
    ));

    // A 500 may come from Chorus Pro after it recorded the flux: never sent again blindly.
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "outcome_unknown",
        "{answer}"
    );
    assert_eq!(h.deposits(&number).len(), 0);
    let sent = h.sandbox().journal(Some(DEPOSIT_PATH));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, Some(500));

    // Asked again meanwhile: the same answer, nothing sent.
    let (status, again) = h.post(1, None).await;
    assert_eq!(status, 202);
    assert_eq!(again["transmission"]["state"], "outcome_unknown", "{again}");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);

    // The follow-up searches by number; not found after the grace proves nothing: no new
    // deposit, and the company is asked to look in the portal.
    h.sandbox().clear_journal();
    let report = h.sync_after(Duration::minutes(1)).await;
    assert_eq!(report.deposited, 0, "{report:?}");
    let journal = h.sandbox().journal(Some("/cpro/"));
    let paths: Vec<&str> = journal.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/cpro/factures/v1/rechercher/fournisseur"]);
    assert_eq!(
        journal[0].body.as_ref().unwrap()["numeroFacture"],
        number.as_str()
    );
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "outcome_unknown", "{view}");
    let next = view["next_action"].as_str().expect("a next action");
    assert!(
        next.contains("portail") && next.contains("resolve"),
        "{next}"
    );
    let report = h.sync_after(Duration::hours(3)).await;
    assert_eq!(report.deposited, 0, "{report:?}");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 0);

    // The company saw nothing in the portal: one new deposit, at once.
    let (status, view) = h.resolve(1, json!({"found_in_chorus": false})).await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(view["transmission"]["state"], "deposited", "{view}");
    let deposits = h.deposits(&number);
    assert_eq!(deposits.len(), 1);
    assert_eq!(
        view["transmission"]["flux_number"],
        deposits[0].numero_flux_depot.as_str()
    );
    assert_eq!(statuses(&view), ["DEPOSE"]);
    assert_eq!(h.tracked(1).await.record.attempts, 2);
    // Once: the same answer again is refused, the state no longer allows it.
    let (status, again) = h.resolve(1, json!({"found_in_chorus": false})).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["code"], "action_not_allowed");
    assert!(
        again["detail"].as_str().unwrap().contains("deposited"),
        "{again}"
    );
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);

    let view = h.follow_until(1, &number, "DEPOSEE", 3).await;
    assert_eq!(view["transmission"]["state"], "integrated");
    h.finish().await;
}

#[tokio::test]
async fn a_lost_answer_after_chorus_pro_accepted_is_found_by_number_and_never_sent_again() {
    let h = Harness::new(Options {
        reconcile_grace_seconds: 600,
        ..Options::default()
    })
    .await;
    let number = invoice_number("LOST");
    h.situation(1, &number).await;
    h.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::AnswerLost {
            mode: LostMode::Drop,
            ms: 0,
        },
    ));

    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "outcome_unknown",
        "{answer}"
    );
    assert_eq!(answer["transmission"]["flux_number"], Value::Null);
    let deposits = h.deposits(&number);
    assert_eq!(deposits.len(), 1, "Chorus Pro has it");

    // Not yet integrated, so not yet searchable: within the grace the gateway waits.
    let report = h.sync_after(Duration::minutes(1)).await;
    assert_eq!(report.deposited + report.reconciled, 0, "{report:?}");
    assert_eq!(h.get(1).await["transmission"]["state"], "outcome_unknown");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);

    // Integrated by Chorus Pro: the next search finds it.
    h.sandbox().advance(None, Some(&number));
    let report = h.sync_after(Duration::minutes(6)).await;
    assert_eq!(report.reconciled, 1, "{report:?}");
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "integrated", "{view}");
    assert_eq!(
        view["transmission"]["flux_number"],
        deposits[0].numero_flux_depot.as_str()
    );
    let invoice_id = h.sandbox().deposits()[0].identifiant_facture_cpp;
    assert_eq!(view["transmission"]["chorus_invoice_id"], json!(invoice_id));
    assert_eq!(view["transmission"]["chorus_status"], "DEPOSEE");

    let view = h.follow_until(1, &number, "MISE_A_DISPOSITION", 3).await;
    // The gateway's own record of the deposit, then each Chorus Pro status once.
    assert_eq!(
        statuses(&view),
        ["DEPOSE", "DEPOSEE", "MISE_A_DISPOSITION"],
        "{view}"
    );
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1, "exactly one deposit sent");
    assert_eq!(h.deposits(&number).len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn a_429_never_reached_chorus_pro_and_is_retried_by_the_next_run() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("429");
    h.situation(1, &number).await;
    h.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::TooManyRequests { retry_after: 30 },
    ));

    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "failed_retrying",
        "{answer}"
    );
    assert_eq!(h.deposits(&number).len(), 0);
    let sent = h.sandbox().journal(Some(DEPOSIT_PATH));
    assert_eq!(
        sent.len(),
        1,
        "a deposit is never resent within the request"
    );
    assert_eq!(sent[0].status, Some(429));

    // Not due yet (one minute back-off): nothing happens.
    let report = h.sync_after(Duration::seconds(20)).await;
    assert_eq!(report.due, 0, "{report:?}");
    // Due: deposited straight away (no search: a 429 never reached Chorus Pro).
    h.sandbox().clear_journal();
    let report = h.sync_after(Duration::minutes(2)).await;
    assert_eq!(report.deposited, 1, "{report:?}");
    let paths: Vec<String> = h
        .sandbox()
        .journal(Some("/cpro/"))
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, [DEPOSIT_PATH]);
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "deposited", "{view}");
    assert_eq!(h.deposits(&number).len(), 1);
    assert_eq!(h.tracked(1).await.record.attempts, 2);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// 8. Credentials

#[tokio::test]
async fn an_expired_password_holds_the_transmission_until_a_new_one_is_saved() {
    let h = Harness::new(Options {
        account: Account::Jura,
        ..Options::default()
    })
    .await;
    let number = invoice_number("JURA");
    h.situation(1, &number).await;
    assert_eq!(h.get_account().await["credentials_status"], "unverified");
    // The password expires after the market was registered (as seeded: 2025-06-30).
    h.sandbox()
        .update_account(
            JURA_LOGIN,
            &AccountUpdate {
                password: None,
                password_expires_on: Some("2025-06-30".into()),
            },
        )
        .unwrap();

    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "waiting_credentials",
        "{answer}"
    );
    let next = answer["next_action"].as_str().expect("a next action");
    assert!(next.contains("Mon compte"), "{next}");
    let sent = h.sandbox().journal(Some(DEPOSIT_PATH));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, Some(401));
    assert_eq!(h.deposits(&number).len(), 0);
    assert_eq!(h.get_account().await["credentials_status"], "rejected");

    // Held: the follow-up does not try the refused password again.
    let report = h.sync_after(Duration::minutes(31)).await;
    assert_eq!(report.deposited, 0, "{report:?}");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);
    assert_eq!(
        h.get(1).await["transmission"]["state"],
        "waiting_credentials"
    );

    // The manager renews the password in Chorus Pro, the company saves it (verified).
    let renewed = format!("Jura-Renouvele-{}!", suffix());
    h.sandbox()
        .update_account(
            JURA_LOGIN,
            &AccountUpdate {
                password: Some(renewed.clone()),
                password_expires_on: Some("2099-12-31".into()),
            },
        )
        .unwrap();
    let (status, account) = h.save_account(&renewed, true).await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["credentials_status"], "valid");

    let report = h.sync_after(Duration::minutes(31)).await;
    assert_eq!(report.deposited, 1, "{report:?}");
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "deposited", "{view}");
    assert_eq!(view["next_action"], Value::Null);
    let deposits = h.deposits(&number);
    assert_eq!(deposits.len(), 1);
    assert_eq!(deposits[0].login, JURA_LOGIN);
    assert_eq!(h.journal_count(DEPOSIT_PATH), 2);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// 9. Bad input changes nothing

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("BAD");
    h.situation(1, &number).await;
    h.sandbox().clear_journal();
    let before = h.tracked(1).await;

    let body = h.body();
    let with = |path: &[&str], value: Value| {
        let mut b = body.clone();
        let mut at = &mut b;
        for p in &path[..path.len() - 1] {
            at = if let Ok(i) = p.parse::<usize>() {
                &mut at[i]
            } else {
                &mut at[*p]
            };
        }
        let last = path[path.len() - 1];
        if value.is_null() {
            at.as_object_mut().unwrap().remove(last);
        } else {
            at[last] = value;
        }
        serde_json::to_vec(&b).unwrap()
    };
    // What is sent, the status and code expected, the error codes (rule ids) expected.
    type Case = (&'static str, Vec<u8>, u16, &'static str, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            b"{\"issue_date\": \"2026-11-30\", \"lines\": [".to_vec(),
            400,
            "malformed_json",
            vec![],
        ),
        (
            "unknown field",
            with(&["colour"], json!("bleu")),
            400,
            "validation_failed",
            vec!["unknown_field"],
        ),
        (
            "amount as a number",
            with(&["lines", "0", "unit_price"], json!(12500.0)),
            400,
            "malformed_json",
            vec![],
        ),
        (
            "invalid amount",
            with(&["lines", "0", "unit_price"], json!("12 500,00")),
            400,
            "validation_failed",
            vec!["invalid_amount"],
        ),
        (
            "no PDF",
            with(&["document"], Value::Null),
            400,
            "validation_failed",
            vec!["required"],
        ),
        (
            "document not a PDF",
            with(&["document", "filename"], json!("situation.docx")),
            422,
            "invoice_invalid",
            vec!["CPRO-PDF-02"],
        ),
        (
            "VAT id of another SIREN",
            with(&["seller", "vat_id"], json!("FR00123456789")),
            422,
            "invoice_invalid",
            vec!["CPRO-TVA-01"],
        ),
        (
            "wrong IBAN",
            with(&["seller", "iban"], json!("FR7630006000011234567890188")),
            422,
            "invoice_invalid",
            vec!["CPRO-IBAN-01"],
        ),
        (
            "VAT rate",
            with(&["lines", "0", "vat_rate"], json!("120.00")),
            422,
            "invoice_invalid",
            vec!["CPRO-TAUX-01"],
        ),
    ];
    for (what, bytes, status, code, rules) in cases {
        let (got, answer) = h.post_bytes(1, Some("bad"), &bytes).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["code"], code, "{what}: {answer}");
        let found: Vec<&str> = answer["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|x| x["code"].as_str()).collect())
            .unwrap_or_default();
        for rule in &rules {
            assert!(found.contains(rule), "{what}: {rule} in {answer}");
        }
        if code == "invoice_invalid" {
            assert!(!found.is_empty(), "{what}: rule ids listed: {answer}");
            assert!(
                answer["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| e["field"] == "invoice"),
                "{what}: {answer}"
            );
        }
    }

    // Nothing changed: no deposit, no call, no invoice file, the same situation item.
    assert!(
        h.sandbox().journal(None).is_empty(),
        "{:?}",
        h.sandbox().journal(None)
    );
    assert!(
        h.items("PAYLOAD#").await.is_empty(),
        "no payload chunk written"
    );
    let after = h.tracked(1).await;
    assert_eq!(after.situation, before.situation);
    assert_eq!(after.record, before.record);
    assert_eq!(h.get(1).await["transmission"]["state"], "not_transmitted");
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// 10. A Lambda killed in the middle of a deposit

/// Starts the transmission in a task, waits until it is `depositing` and its deposit
/// request has reached the emulator, then kills it (as Lambda does at its timeout).
async fn kill_mid_deposit(h: &Harness, number: u16) -> Tracked {
    let state = Arc::clone(&h.transmit);
    let request = transmit_request(
        &h.siret,
        &h.market_ref,
        number,
        None,
        &serde_json::to_vec(&h.body()).unwrap(),
    );
    let task = tokio::spawn(async move { transmit_invoice::handle(&state, request).await });
    let started = std::time::Instant::now();
    loop {
        assert!(
            started.elapsed() < StdDuration::from_secs(60),
            "never depositing"
        );
        let sent = h.journal_count(DEPOSIT_PATH) > 0;
        if sent
            && h.tracked(number)
                .await
                .situation
                .transmission
                .state
                .as_str()
                == "depositing"
        {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    task.abort();
    assert!(
        task.await.unwrap_err().is_cancelled(),
        "killed before its answer"
    );
    let tracked = h.tracked(number).await;
    assert_eq!(tracked.situation.transmission.state.as_str(), "depositing");
    assert!(tracked.record.lease_until.is_some());
    tracked
}

#[tokio::test]
async fn a_lambda_killed_before_chorus_pro_got_the_deposit_is_sent_again_only_when_the_company_says_so()
 {
    let h = Harness::new(Options {
        chorus_timeout_ms: 10_000,
        ..Options::default()
    })
    .await;
    let number = invoice_number("KILL1");
    h.situation(1, &number).await;
    // Chorus Pro never processes this one (the connection hangs, then closes).
    h.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::Timeout { ms: 15_000 },
    ));
    kill_mid_deposit(&h, 1).await;

    // A second request waits for the lease (2 s), then reconciles: Chorus Pro is searched
    // first; not found proves nothing, so nothing is sent again by the gateway itself.
    h.sandbox().clear_journal();
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "outcome_unknown",
        "{answer}"
    );
    let paths: Vec<String> = h
        .sandbox()
        .journal(Some("/cpro/"))
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        ["/cpro/factures/v1/rechercher/fournisseur"],
        "searched, not sent"
    );
    let report = h.sync_after(Duration::minutes(1)).await;
    assert_eq!(report.deposited, 0, "{report:?}");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 0);

    // Past the grace, the company looks in the portal, finds nothing: sent again, once.
    let (status, view) = h.resolve(1, json!({"found_in_chorus": false})).await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(view["transmission"]["state"], "deposited", "{view}");
    let view = h.follow_until(1, &number, "DEPOSEE", 3).await;
    assert_eq!(view["transmission"]["state"], "integrated");
    let deposits = h.deposits(&number);
    assert_eq!(deposits.len(), 1, "exactly one deposit recorded");
    assert_eq!(deposits[0].etat, "IN_INTEGRE");
    assert_eq!(
        h.tracked(1).await.record.attempts,
        2,
        "one lost in flight, one received"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_lambda_killed_after_chorus_pro_recorded_the_deposit_is_found_and_not_sent_again() {
    let h = Harness::new(Options {
        chorus_timeout_ms: 10_000,
        ..Options::default()
    })
    .await;
    let number = invoice_number("KILL2");
    h.situation(1, &number).await;
    // Chorus Pro records the flux, the answer hangs; the Lambda dies meanwhile.
    h.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::AnswerLost {
            mode: LostMode::Hang,
            ms: 15_000,
        },
    ));
    kill_mid_deposit(&h, 1).await;
    let deposits = h.deposits(&number);
    assert_eq!(deposits.len(), 1);
    // Chorus Pro integrates it before anyone looks.
    h.sandbox().advance(None, Some(&number));

    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "integrated", "{answer}");
    assert_eq!(
        answer["transmission"]["flux_number"],
        deposits[0].numero_flux_depot.as_str()
    );
    assert_eq!(answer["transmission"]["chorus_status"], "DEPOSEE");
    let view = h.follow_until(1, &number, "MISE_A_DISPOSITION", 3).await;
    assert_eq!(view["transmission"]["state"], "integrated");
    assert_eq!(
        statuses(&view),
        ["DEPOSE", "DEPOSEE", "MISE_A_DISPOSITION"],
        "{view}"
    );
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1, "never sent again");
    assert_eq!(h.deposits(&number).len(), 1);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// Beyond the list: a buyer's rejection, and a claim whose request failed

#[tokio::test]
async fn a_buyer_rejection_asks_for_a_new_number_whose_invoice_is_followed_from_its_start() {
    let h = Harness::new(Options::default()).await;
    let first = invoice_number("REJB");
    h.situation(1, &first).await;
    h.sandbox().script_invoice(InvoiceScript {
        numero_facture: first.clone(),
        steps: vec![
            ScriptStep::new("MISE_A_DISPOSITION", None),
            ScriptStep::new("REJETEE", Some("Montant erroné")),
        ],
        flux_rejection: None,
    });
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    let view = h.follow_until(1, &first, "REJETEE", 6).await;
    assert_eq!(view["transmission"]["state"], "integrated", "{view}");
    let next = view["next_action"].as_str().expect("a next action");
    assert!(next.contains("nouveau numéro"), "{next}");
    assert_eq!(h.tracked(1).await.record.next_check_at, None, "final");

    // A new number; its deposit's answer is lost, then found by number.
    let second = invoice_number("REJB2");
    let (status, reopened) = h.put_situation(1, &second).await;
    assert_eq!(status, 200, "{reopened}");
    h.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::AnswerLost {
            mode: LostMode::Drop,
            ms: 0,
        },
    ));
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "outcome_unknown",
        "{answer}"
    );
    h.sandbox().advance(None, Some(&second));
    let report = h.sync_after(Duration::minutes(1)).await;
    assert_eq!(report.reconciled, 1, "{report:?}");
    let view = h.follow_until(1, &second, "MISE_A_DISPOSITION", 3).await;
    assert_eq!(view["next_action"], Value::Null, "{view}");
    let seen = statuses(&view);
    let rejected_at = seen.iter().position(|s| s == "REJETEE").unwrap();
    assert_eq!(
        &seen[rejected_at + 1..],
        ["DEPOSE", "DEPOSEE", "MISE_A_DISPOSITION"],
        "the new invoice's history from its first status: {seen:?}"
    );
    assert_eq!(h.deposits(&first).len(), 1);
    assert_eq!(h.deposits(&second).len(), 1);
    h.finish().await;
}

/// The request that claimed the transmission failed before depositing (here: its secret
/// could not be read): the claim stays `pending`, due at once; the next request takes it
/// over and deposits.
#[tokio::test]
async fn a_claim_left_pending_is_taken_over_by_the_next_request() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("PEND");
    h.situation(1, &number).await;
    let account_key = HashMap::from([
        (
            "PK".to_owned(),
            AttributeValue::S(format!("COMPANY#{}", h.siret)),
        ),
        ("SK".to_owned(), AttributeValue::S("ACCOUNT".to_owned())),
    ]);
    let set_version = |version: AttributeValue| {
        h.ddb
            .update_item()
            .table_name(&h.table)
            .set_key(Some(account_key.clone()))
            .update_expression("SET password_version = :v")
            .expression_attribute_values(":v", version)
            .send()
    };
    let account = h
        .ddb
        .get_item()
        .table_name(&h.table)
        .set_key(Some(account_key.clone()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let version = account["password_version"].clone();
    set_version(AttributeValue::S("no-such-version".into()))
        .await
        .unwrap();

    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "pending", "{answer}");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 0);

    set_version(version).await.unwrap();
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);
    assert_eq!(h.deposits(&number).len(), 1);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// Fault suite (issue 7): whole outages, then the next runs heal.

/// Chorus Pro answers 503 to everything for a whole follow-up run: nothing moves, nothing
/// is lost, nothing is sent twice; once it is back, the next runs take every situation to
/// where it belongs.
#[tokio::test]
async fn chorus_pro_down_for_a_whole_run_loses_nothing_and_the_next_runs_heal() {
    let h = Harness::new(Options::default()).await;
    let (first, second) = (invoice_number("DOWN1"), invoice_number("DOWN2"));
    h.situation(1, &first).await;
    h.situation(2, &second).await;
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");

    // Down from here: the second deposit gets a 503 (it may have reached Chorus Pro).
    h.sandbox()
        .add_fault(Fault::always("/cpro/", FaultAction::Status { status: 503 }));
    let (status, answer) = h.post(2, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "outcome_unknown",
        "{answer}"
    );

    let report = h.sync_after(Duration::minutes(10)).await;
    assert_eq!(report.due, 2, "{report:?}");
    assert_eq!(h.get(1).await["transmission"]["state"], "deposited");
    assert_eq!(h.get(2).await["transmission"]["state"], "outcome_unknown");
    assert!(
        h.deposits(&second).is_empty(),
        "nothing deposited while down"
    );

    // Back: the deposited flux is followed; the unknown one is searched for, not found
    // after the grace, so the company is asked; it finds nothing and it is deposited once.
    h.sandbox().clear_faults();
    for minutes in [20, 40, 60, 90, 120] {
        h.sandbox().advance(None, None);
        h.sync_after(Duration::minutes(minutes)).await;
    }
    let one = h.get(1).await;
    let two = h.get(2).await;
    assert_eq!(one["transmission"]["state"], "integrated", "{one}");
    assert_eq!(two["transmission"]["state"], "outcome_unknown", "{two}");
    assert!(h.deposits(&second).is_empty());
    let (status, two) = h.resolve(2, json!({"found_in_chorus": false})).await;
    assert_eq!(status, 202, "{two}");
    assert_eq!(two["transmission"]["state"], "deposited", "{two}");
    assert_eq!(h.deposits(&first).len(), 1);
    assert_eq!(h.deposits(&second).len(), 1);
    h.finish().await;
}

/// PISTE refuses the gateway's application (a revoked secret): the deposit never reached
/// Chorus Pro, so it waits as `failed_retrying` and is sent by the first run after PISTE
/// accepts the gateway again.
#[tokio::test]
async fn piste_refusing_the_gateway_holds_the_deposit_until_it_accepts_again() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("PISTE");
    h.situation(1, &number).await;
    h.sandbox()
        .add_fault(Fault::always(TOKEN_PATH, FaultAction::InvalidClient));
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "failed_retrying",
        "{answer}"
    );
    assert!(h.deposits(&number).is_empty());

    h.sandbox().clear_faults();
    let report = h.sync_after(Duration::minutes(5)).await;
    assert_eq!(report.deposited, 1, "{report:?}");
    assert_eq!(h.get(1).await["transmission"]["state"], "deposited");
    assert_eq!(h.deposits(&number).len(), 1);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// 10. Exactly once when Chorus Pro is slow, and the company ending a doubt

/// The deposit's answer lost once while Chorus Pro has not processed the flux yet.
async fn lost_answer_on_a_slow_chorus_pro(h: &Harness, number: &str) {
    h.situation(1, number).await;
    h.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::AnswerLost {
            mode: LostMode::Drop,
            ms: 0,
        },
    ));
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "outcome_unknown",
        "{answer}"
    );
    let deposits = h.deposits(number);
    assert_eq!(deposits.len(), 1, "Chorus Pro holds one flux");
    assert_ne!(deposits[0].etat, "IN_INTEGRE", "not processed yet");
}

#[tokio::test]
async fn a_lost_answer_and_a_slow_chorus_pro_never_make_a_second_deposit() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("SLOW");
    lost_answer_on_a_slow_chorus_pro(&h, &number).await;

    // A minute, then hours: not an invoice yet, so not found — and never deposited again.
    for ahead in [Duration::minutes(1), Duration::hours(2)] {
        let report = h.sync_after(ahead).await;
        assert_eq!(report.deposited, 0, "{report:?}");
        assert_eq!(h.journal_count(DEPOSIT_PATH), 1);
        let view = h.get(1).await;
        assert_eq!(view["transmission"]["state"], "outcome_unknown", "{view}");
        let next = view["next_action"].as_str().expect("a next action");
        assert!(next.contains("portail Chorus Pro"), "{next}");
        assert!(!next.contains("nouveau numéro"), "{next}");
    }

    // Chorus Pro integrates the one flux: the search finds it, the follow-up goes on.
    h.sandbox().advance(None, Some(&number));
    let report = h.sync_after(Duration::minutes(31)).await;
    assert_eq!(report.reconciled, 1, "{report:?}");
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "integrated", "{view}");
    assert_eq!(view["next_action"], Value::Null);
    let deposits = h.deposits(&number);
    assert_eq!(deposits.len(), 1, "exactly one flux");
    assert_eq!(deposits[0].etat, "IN_INTEGRE");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);
    h.finish().await;
}

#[tokio::test]
async fn a_number_already_used_attaches_the_situation_to_the_invoice_that_landed() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("DUP");
    lost_answer_on_a_slow_chorus_pro(&h, &number).await;
    h.sync_after(Duration::minutes(1)).await;

    // The company looks too early and says it is absent: a second flux goes out.
    let (status, view) = h.resolve(1, json!({"found_in_chorus": false})).await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(view["transmission"]["state"], "deposited", "{view}");
    assert_eq!(h.deposits(&number).len(), 2);

    // Chorus Pro integrates the first and refuses the second: the number is used.
    h.sandbox().advance(None, Some(&number));
    h.sandbox().advance(None, Some(&number));
    let etats: Vec<String> = h.deposits(&number).into_iter().map(|d| d.etat).collect();
    assert_eq!(etats, ["IN_INTEGRE", "IN_REJETE"]);
    let first = h.sandbox().deposits()[0].identifiant_facture_cpp;

    let report = h.sync_after(Duration::minutes(3)).await;
    assert_eq!(report.rejected, 0, "{report:?}");
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "integrated", "{view}");
    assert_eq!(view["transmission"]["chorus_invoice_id"], json!(first));
    assert!(
        statuses(&view).contains(&"NUMERO_DEJA_UTILISE".to_owned()),
        "{view}"
    );
    assert_eq!(
        view["next_action"],
        Value::Null,
        "never a request for a new number"
    );
    let view = h.follow_until(1, &number, "MISE_EN_PAIEMENT", 5).await;
    assert_eq!(view["transmission"]["state"], "integrated");
    assert_eq!(h.deposits(&number).len(), 2, "and no third flux");
    h.finish().await;
}

#[tokio::test]
async fn the_company_attaches_a_doubtful_deposit_to_the_invoice_it_saw_in_the_portal() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("SEEN");
    lost_answer_on_a_slow_chorus_pro(&h, &number).await;

    // Within the grace the company is not asked yet: the answer is refused.
    let (status, early) = h
        .resolve(
            1,
            json!({"found_in_chorus": true, "chorus_invoice_number": number}),
        )
        .await;
    assert_eq!(status, 409, "{early}");
    assert_eq!(early["code"], "action_not_allowed");
    h.sync_after(Duration::minutes(1)).await;

    // Bad answers change nothing.
    let before = h.tracked(1).await;
    let bad: [(Value, u16, &str); 4] = [
        (json!({}), 400, "validation_failed"),
        (json!({"found_in_chorus": true}), 400, "validation_failed"),
        (
            json!({"found_in_chorus": false, "chorus_invoice_number": "X"}),
            400,
            "validation_failed",
        ),
        (json!({"found_in_chorus": "oui"}), 400, "malformed_json"),
    ];
    for (body, want_status, want_code) in bad {
        let (status, answer) = h.resolve(1, body.clone()).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (want_status, Some(want_code)),
            "{body}: {answer}"
        );
    }
    // A number Chorus Pro does not know (the flux is not processed yet): refused.
    let (status, answer) = h
        .resolve(
            1,
            json!({"found_in_chorus": true, "chorus_invoice_number": number}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["errors"][0]["code"], "not_in_chorus", "{answer}");
    let after = h.tracked(1).await;
    assert_eq!(
        after.situation.revision, before.situation.revision,
        "nothing changed"
    );

    // Processed now: the company's answer is checked in Chorus Pro, then attached.
    h.sandbox().advance(None, Some(&number));
    let (status, view) = h
        .resolve(
            1,
            json!({"found_in_chorus": true, "chorus_invoice_number": number}),
        )
        .await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(view["transmission"]["state"], "integrated", "{view}");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);
    let audit = h
        .transmit
        .store
        .audit_trail(&Siret::parse(&h.siret, SiretCheck::ShapeOnly).unwrap())
        .await
        .unwrap();
    let resolved: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "deposit_outcome_resolved")
        .collect();
    assert_eq!(
        resolved.len(),
        2,
        "what the company said, each time: {resolved:?}"
    );
    let last = resolved.last().unwrap();
    assert_eq!(last.actor, "transmission-test");
    assert!(
        last.fields.contains(&"found_in_chorus=true".to_owned()),
        "{last:?}"
    );
    assert!(
        last.fields
            .contains(&format!("chorus_invoice_number={number}")),
        "{last:?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_transmission_held_for_a_refused_password_goes_once_a_verification_succeeds() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("HELD");
    h.situation(1, &number).await;
    // A one-off refusal (Chorus Pro's LDAP hiccup, or a password since put back).
    h.sandbox()
        .add_fault(Fault::once(DEPOSIT_PATH, FaultAction::RejectPassword));
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "waiting_credentials",
        "{answer}"
    );
    assert_eq!(h.get_account().await["credentials_status"], "rejected");

    // Still held while nobody verified anything.
    let report = h.sync_after(Duration::minutes(31)).await;
    assert_eq!(report.deposited, 0, "{report:?}");

    // The same password passes a verification: the next run releases and deposits.
    let (status, verified) = h.verify_account().await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["credentials_status"], "valid", "{verified}");
    let report = h.sync_after(Duration::minutes(31)).await;
    assert_eq!(report.deposited, 1, "{report:?}");
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "deposited", "{view}");
    assert_eq!(h.deposits(&number).len(), 1);
    h.finish().await;
}

/// Held for a refused password, then a new password saved with `"verify": false`: the
/// contract sends held transmissions "once a new password is saved". A new password that
/// is wrong too is tried once, held again with one alert, and not tried again.
#[tokio::test]
async fn a_held_transmission_goes_once_a_new_password_is_saved_without_a_check() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("UNVER");
    h.situation(1, &number).await;
    // The company's manager renews the password in Chorus Pro; the gateway still has the
    // old one: the deposit is refused and the transmission held.
    let renewed = format!("Tx-Renouvele-{}!", suffix());
    let update = |password: &str| AccountUpdate {
        password: Some(password.to_owned()),
        password_expires_on: None,
    };
    h.sandbox()
        .update_account(&h.login, &update(&renewed))
        .unwrap();
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "waiting_credentials",
        "{answer}"
    );
    assert_eq!(h.get_account().await["credentials_status"], "rejected");
    assert_eq!(refused_deposits(&h), 1);
    assert_eq!(rejection_alerts(&h).await, 1);

    // A new password, mistyped, saved without a check: tried once, refused, held again,
    // one alert for it; the next run does not try it again.
    let (status, saved) = h.save_account("Tx-Faux-0000!", false).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["credentials_status"], "unverified", "{saved}");
    let report = h.sync_after(Duration::minutes(31)).await;
    assert_eq!(refused_deposits(&h), 2, "{report:?}");
    assert_eq!(
        h.get(1).await["transmission"]["state"],
        "waiting_credentials"
    );
    assert_eq!(h.get_account().await["credentials_status"], "rejected");
    assert_eq!(
        rejection_alerts(&h).await,
        2,
        "one alert per refused password"
    );
    for _ in 0..2 {
        let report = h.sync_after(Duration::minutes(31)).await;
        assert_eq!(report.deposited, 0, "{report:?}");
    }
    assert_eq!(h.journal_count(DEPOSIT_PATH), 2);
    assert_eq!(rejection_alerts(&h).await, 2);

    // The right one, saved without a check: the next run deposits it, exactly once.
    let (status, saved) = h.save_account(&renewed, false).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["credentials_status"], "unverified", "{saved}");
    let report = h.sync_after(Duration::minutes(31)).await;
    assert_eq!(report.deposited, 1, "{report:?}");
    assert_eq!(h.get(1).await["transmission"]["state"], "deposited");
    h.sync_after(Duration::minutes(31)).await;
    assert_eq!(h.deposits(&number).len(), 1);
    assert_eq!(h.journal_count(DEPOSIT_PATH), 3);
    assert_eq!(rejection_alerts(&h).await, 2);
    h.finish().await;
}

/// Deposits Chorus Pro refused for the password (401).
fn refused_deposits(h: &Harness) -> usize {
    h.sandbox()
        .journal(Some(DEPOSIT_PATH))
        .iter()
        .filter(|e| e.status == Some(401))
        .count()
}

/// Refused-password alerts sent to the referent (one claim per password version).
async fn rejection_alerts(h: &Harness) -> usize {
    h.items("MAIL#")
        .await
        .iter()
        .filter(|item| {
            item["SK"]
                .as_s()
                .is_ok_and(|sk| sk.ends_with("#CREDENTIALS_REJECTED"))
                && item
                    .get("status")
                    .and_then(|s| s.as_s().ok())
                    .map(String::as_str)
                    == Some("sent")
        })
        .count()
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_body_is_refused() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("KEY");
    h.situation(1, &number).await;
    let body = h.body();
    let (status, first) = h.post(1, Some("key-1")).await;
    assert_eq!(status, 202, "{first}");

    // The same body, keys in another order and spaced out: the same request.
    let mut reordered: Vec<(String, Value)> =
        body.as_object().unwrap().clone().into_iter().collect();
    reordered.reverse();
    let spaced = format!(
        "{{ {} }}",
        reordered
            .iter()
            .map(|(k, v)| format!("{:?} :  {v}", k))
            .collect::<Vec<_>>()
            .join(",\n ")
    );
    let (status, again) = h.post_bytes(1, Some("key-1"), spaced.as_bytes()).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["transmission"], first["transmission"]);

    // The same key, another body: refused, nothing sent.
    let mut other = body.clone();
    other["note"] = json!("Situation n°3 corrigée");
    let (status, refused) = h
        .post_bytes(1, Some("key-1"), &serde_json::to_vec(&other).unwrap())
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["code"], "idempotency_key_reused");
    // Another key with another body: the situation as it stands (already transmitted).
    let (status, other_key) = h
        .post_bytes(1, Some("key-2"), &serde_json::to_vec(&other).unwrap())
        .await;
    assert_eq!(status, 202, "{other_key}");
    assert_eq!(h.journal_count(DEPOSIT_PATH), 1);

    // A key that is not ASCII is refused, not taken for no key.
    let request = transmit_request(
        &h.siret,
        &h.market_ref,
        1,
        Some("clé-é"),
        &serde_json::to_vec(&body).unwrap(),
    );
    let (status, answer) = response_json(&transmit_invoice::handle(&h.transmit, request).await);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["errors"][0]["field"], "Idempotency-Key", "{answer}");
    h.finish().await;
}

#[tokio::test]
async fn a_file_name_that_is_a_path_is_refused_and_nothing_is_sent() {
    let h = Harness::new(Options::default()).await;
    let number = invoice_number("PATH");
    h.situation(1, &number).await;
    let cases = [
        (
            &["document", "filename"][..],
            "../../etc/passwd.pdf",
            "unsafe_file_name",
        ),
        (
            &["document", "filename"][..],
            "situation\u{7}.pdf",
            "unsafe_file_name",
        ),
        (
            &["document", "filename"][..],
            "situation.exe",
            "file_type_not_accepted",
        ),
    ];
    for (path, name, code) in cases {
        let mut body = h.body();
        body[path[0]][path[1]] = json!(name);
        let (status, answer) = h
            .post_bytes(1, None, &serde_json::to_vec(&body).unwrap())
            .await;
        assert_eq!(status, 400, "{name}: {answer}");
        let error = &answer["errors"][0];
        assert_eq!(error["field"], "document.filename", "{answer}");
        assert_eq!(error["code"], code, "{answer}");
        assert!(
            error["message"].as_str().unwrap().contains("fichier"),
            "{answer}"
        );
    }
    let mut body = h.body();
    body["attachments"] = json!([{"filename": "dossier/plan.pdf", "content_base64": PDF}]);
    let (status, answer) = h
        .post_bytes(1, None, &serde_json::to_vec(&body).unwrap())
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["errors"][0]["field"], "attachments[0].filename",
        "{answer}"
    );
    assert_eq!(h.journal_count(DEPOSIT_PATH), 0);
    assert_eq!(h.get(1).await["transmission"]["state"], "not_transmitted");
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// 11. Chorus Pro's answers in the shapes AIFE publishes. Each test has an emulator of
// its own answering in the published shapes, so no other test sees the switch.

/// `structures/v1/rechercher` answers `identifiantStructure` as a JSON number: the market
/// is registered (it was `503 chorus_unavailable`), for each buyer rule.
#[tokio::test]
async fn published_shapes_a_market_for_a_buyer_whose_siret_comes_back_as_a_number() {
    // Harness::new registers a market for Villeurbanne (nothing required) and asserts 201.
    let h = Harness::new(Options {
        shapes: Shapes::Published,
        ..Options::default()
    })
    .await;
    let searches = h.sandbox().journal(Some("/cpro/structures/v1/rechercher"));
    assert!(!searches.is_empty(), "the buyer was searched for");
    for (buyer, extra) in [
        (ISERE, json!({"buyer_service_code": "DIRINFRA"})),
        // Requires a commitment number, read from the published commitment fields.
        ("23750001200016", json!({"commitment_number": "1300012345"})),
        (
            "20001234200016",
            json!({"buyer_service_code": "TRAVAUX", "commitment_number": "2200000001"}),
        ),
    ] {
        let mut body =
            json!({"market_number": format!("2026-PUB-{}", suffix()), "buyer_siret": buyer});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, answer) = h.put_market(body).await;
        assert!(status == 200 || status == 201, "{buyer}: {answer}");
    }
    // A commitment number not issued to the company cannot be confirmed, and is never
    // refused for that (docs/chorus-pro.md#commitment-ej-search).
    let (status, answer) = h
        .put_market(
            json!({"market_number": "2026-PUB-EJ", "buyer_siret": "23750001200016",
                           "commitment_number": "9999999999"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["buyer"]["commitment_number_check"], "not_published",
        "{answer}"
    );
    h.finish().await;
}

/// An answer the client cannot read, even liberally, is `502 chorus_unexpected_answer`
/// with its own French message, not `503 chorus_unavailable`; nothing is saved.
#[tokio::test]
async fn published_shapes_an_unreadable_answer_is_not_chorus_unavailable() {
    let h = Harness::new(Options::default()).await;
    h.sandbox().add_fault(Fault::once(
        "/cpro/structures/v1/rechercher",
        FaultAction::Respond {
            status: 200,
            body: json!({"codeRetour": 0, "libelle": "TRA_MSG_00.000",
                         "listeStructures": [{"idStructureCPP": {"valeur": 1},
                                              "identifiantStructure": ISERE}]}),
        },
    ));
    let (status, answer) = h
        .put_market(
            json!({"market_number": "2026-UNREADABLE", "buyer_siret": ISERE,
                           "buyer_service_code": "DIRINFRA"}),
        )
        .await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["code"], "chorus_unexpected_answer", "{answer}");
    assert_eq!(answer["title"], "Réponse de Chorus Pro illisible");
    let detail = answer["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("ne sait pas lire"), "{detail}");
    assert!(detail.contains("contactez le support"), "{detail}");
    h.finish().await;
}

/// Issue 19, through a handler: a `200` whose body is not JSON is an unreadable answer
/// (`502 chorus_unexpected_answer`); a status Chorus Pro is not documented to send stays
/// `503 chorus_unavailable`, naming it. Neither saves the market.
#[tokio::test]
async fn a_success_that_is_not_json_is_502_and_an_undocumented_status_503() {
    let h = Harness::new(Options::default()).await;
    let market = |n: &str| {
        json!({"market_number": format!("2026-ODD-{n}"), "buyer_siret": ISERE,
               "buyer_service_code": "DIRINFRA"})
    };
    h.sandbox().add_fault(Fault::once(
        "/cpro/structures/v1/rechercher",
        FaultAction::Status { status: 200 },
    ));
    let (status, answer) = h.put_market(market("1")).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["code"], "chorus_unexpected_answer", "{answer}");
    let detail = answer["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("structures/v1/rechercher"), "{detail}");
    assert!(
        !detail.contains("Erreur simulee"),
        "never the body: {detail}"
    );

    h.sandbox().add_fault(Fault::once(
        "/cpro/structures/v1/rechercher",
        FaultAction::Status { status: 404 },
    ));
    let (status, answer) = h.put_market(market("2")).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], "chorus_unavailable", "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("404"),
        "{answer}"
    );
    // The market registered by the harness is unchanged (still Villeurbanne's).
    let request = lambda_request(
        "GET /v1/companies/{siret}/markets/{market_ref}",
        &format!("/v1/companies/{}/markets/{}", h.siret, h.market_ref),
        &[("siret", &h.siret), ("market_ref", &h.market_ref)],
        &[&h.siret],
        None,
    );
    let (status, market) = route_answer(
        "GET /v1/companies/{siret}/markets/{market_ref}",
        &identifiers::handle(&h.identifiers, request).await,
    );
    assert_eq!(status, 200, "{market}");
    assert_eq!(market["buyer_siret"], VILLEURBANNE, "{market}");
    h.finish().await;
}

/// `consulterCRDetaille` answers a single-object `listeErreurDP`: the flux ends `rejected`
/// with its reason (it stayed `deposited` for ever).
#[tokio::test]
async fn published_shapes_a_rejected_flux_with_one_error_object_is_rejected_with_its_reason() {
    let h = Harness::new(Options {
        shapes: Shapes::Published,
        ..Options::default()
    })
    .await;
    let number = invoice_number("PUBREJ");
    h.situation(1, &number).await;
    let reason = "L'identifiant fournisseur de la demande de paiement n'est pas reference";
    h.sandbox().script_invoice(InvoiceScript {
        numero_facture: number.clone(),
        steps: vec![],
        flux_rejection: Some(reason.to_owned()),
    });
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");
    h.sandbox().advance(None, Some(&number));
    let report = h.sync_after(Duration::minutes(3)).await;
    assert_eq!(report.rejected, 1, "{report:?}");
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "rejected", "{view}");
    let history = view["transmission"]["status_history"].as_array().unwrap();
    let last = history.last().unwrap();
    assert_eq!(last["status"], "IN_REJETE", "{view}");
    assert!(
        last["comment"].as_str().unwrap_or("").contains(reason),
        "the reason is shown: {view}"
    );
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// The payment clock

/// The situation as the identifiers function shows it at `now`, under `rates`.
async fn view_at(h: &Harness, number: u16, now: OffsetDateTime, rates: &str) -> Value {
    let mut config = h.config.clone();
    config.late_payment_rates = shared::domain::payment::LatePaymentRates::parse(rates).unwrap();
    let mut ids = identifiers::State::from_sdk(config, &h.sdk);
    ids.clock = Arc::new(FixedClock::new(now));
    let n = number.to_string();
    let request = lambda_request(
        SITUATION_GET_ROUTE,
        &h.situation_path(number),
        &[
            ("siret", &h.siret),
            ("market_ref", &h.market_ref),
            ("number", &n),
        ],
        &[&h.siret],
        None,
    );
    let (status, view) = response_json(&identifiers::handle(&ids, request).await);
    assert_eq!(status, 200, "{view}");
    view
}

#[tokio::test]
async fn a_situation_made_available_then_overdue_then_paid_shows_its_interest() {
    use time::macros::datetime;
    let h = Harness::new(Options::default()).await;
    let rates = "2026-07-01=10.15,2027-01-01=10.40";
    // A health establishment: 50 days.
    let (status, market) = h
        .put_market(json!({"market_number": format!("2026-TX-{}", suffix()), "buyer_siret": VILLEURBANNE, "buyer_category": "health_establishment"}))
        .await;
    assert_eq!(status, 200, "{market}");
    assert_eq!(market["buyer_category"], "health_establishment");
    let number = invoice_number("PAY");
    h.situation(1, &number).await;
    // Chorus Pro's own dates: available on 17 November 2026, paid on 18 January 2027.
    h.sandbox().script_invoice(InvoiceScript {
        numero_facture: number.clone(),
        steps: vec![
            ScriptStep::new("MISE_A_DISPOSITION", None).on(datetime!(2026-11-17 10:00 UTC)),
            ScriptStep::new("MISE_EN_PAIEMENT", None).on(datetime!(2027-01-18 10:00 UTC)),
        ],
        flux_rejection: None,
    });
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    let amount: rust_decimal::Decimal = answer["payment"]["amount_due"]
        .as_str()
        .expect("the amount is recorded at transmission")
        .parse()
        .unwrap();
    assert_eq!(
        answer["payment"]["clock_started_at"],
        Value::Null,
        "{answer}"
    );
    assert_eq!(answer["payment"]["due_on"], Value::Null, "{answer}");

    h.follow_until(1, &number, "MISE_A_DISPOSITION", 8).await;
    // Before the due day: running, not late.
    let view = view_at(&h, 1, datetime!(2026-12-20 12:00 UTC), rates).await;
    let p = &view["payment"];
    assert_eq!(p["deadline_days"], 50, "{p}");
    assert_eq!(p["clock_started_at"], "2026-11-17T10:00:00Z", "{p}");
    assert_eq!(p["due_on"], "2027-01-06", "{p}");
    assert_eq!(p["days_late"], 0, "{p}");
    assert_eq!(p["late_interest"], "0.00", "{p}");
    // Past the due day: 9 days late, at the rate of the half-year the interest began in.
    let view = view_at(&h, 1, datetime!(2027-01-15 12:00 UTC), rates).await;
    let p = &view["payment"];
    assert_eq!(p["days_late"], 9, "{p}");
    assert_eq!(p["interest_rate"], "10.40", "{p}");
    assert_eq!(p["fixed_indemnity"], "40.00", "{p}");
    let so_far =
        shared::domain::payment::late_interest(amount, "10.40".parse().unwrap(), 9).unwrap();
    assert_eq!(p["late_interest"], format!("{so_far:.2}"), "{p}");
    assert_eq!(p["paid_on"], Value::Null, "{p}");

    // Paid on 18 January: 12 days late for good, whenever it is read.
    h.follow_until(1, &number, "MISE_EN_PAIEMENT", 8).await;
    let view = view_at(&h, 1, datetime!(2027-06-01 12:00 UTC), rates).await;
    let p = &view["payment"];
    assert_eq!(p["paid_on"], "2027-01-18", "{p}");
    assert_eq!(p["days_late"], 12, "{p}");
    let owed =
        shared::domain::payment::late_interest(amount, "10.40".parse().unwrap(), 12).unwrap();
    assert_eq!(p["late_interest"], format!("{owed:.2}"), "{p}");
    assert!(owed > rust_decimal::Decimal::ZERO);

    // An unknown category is refused and changes nothing.
    let (status, problem) = h
        .put_market(
            json!({"market_number": "X", "buyer_siret": VILLEURBANNE, "buyer_category": "mairie"}),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "validation_failed", "{problem}");
    assert_eq!(problem["errors"][0]["field"], "buyer_category", "{problem}");
    assert_eq!(
        problem["errors"][0]["code"], "unknown_buyer_category",
        "{problem}"
    );
    let view = view_at(&h, 1, datetime!(2027-06-01 12:00 UTC), rates).await;
    assert_eq!(view["payment"]["buyer_category"], "health_establishment");
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// Returned invoices (issue 16): recycle and complete

const RECYCLE_PATH: &str = "/cpro/factures/v1/recycler";
const UPLOAD_PATH: &str = "/cpro/transverses/v1/ajouter/fichier";
const COMPLETE_PATH: &str = "/cpro/factures/v1/completer";

fn pdf_attachment(name: &str) -> Value {
    json!({"filename": name, "content_base64": PDF})
}

#[tokio::test]
async fn a_recycled_invoice_is_checked_sent_once_recorded_and_followed_again() {
    let h = Harness::new(Options::default()).await;
    let invoice = h.returned(1, "RCY", Some("A_RECYCLER")).await;
    let view = h.get(1).await;
    let next = view["next_action"].as_str().expect("a next action");
    assert!(next.contains("transmission/recycle"), "{next}");
    let id = view["transmission"]["chorus_invoice_id"].as_i64().unwrap();

    let body = json!({"buyer_siret": ISERE, "buyer_service_code": "DIRINFRA",
                      "comment": "Destinataire corrigé"});
    let (status, answer) = h.act(RECYCLE_ROUTE, 1, Some("rcy-1"), body.clone()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["chorus_status"],
        "MISE_A_DISPOSITION"
    );
    assert!(answer["next_action"].is_null(), "{answer}");

    // Sent once, with the sources' field names.
    let sent = h.sandbox().journal(Some(RECYCLE_PATH));
    assert_eq!(sent.len(), 1);
    let sent = sent[0].body.clone().unwrap();
    assert_eq!(sent["identifiantFactureCPP"], id);
    assert_eq!(sent["destinataire"]["codeDestinataire"], ISERE);
    assert_eq!(sent["destinataire"]["codeServiceExecutant"], "DIRINFRA");
    assert_eq!(sent["commentaire"], "Destinataire corrigé");
    // The new service was checked first, by the market's buyer check.
    assert!(
        !h.sandbox()
            .journal(Some("/cpro/structures/v1/rechercher/services"))
            .is_empty()
    );

    // Recorded: old and new routing, who, when; and the follow-up is due again.
    let tracked = h.tracked(1).await;
    let change = tracked
        .record
        .routing_changes
        .last()
        .expect("a routing change");
    assert_eq!(change.old.buyer_siret, VILLEURBANNE);
    assert_eq!(change.new.buyer_siret, ISERE);
    assert_eq!(change.new.buyer_service_code.as_deref(), Some("DIRINFRA"));
    assert_eq!(change.actor, "transmission-test");
    assert!(tracked.record.next_check_at.is_some());
    let audit = h.items("AUDIT#").await;
    assert!(
        audit
            .iter()
            .any(|i| i.get("action").and_then(|a| a.as_s().ok())
                == Some(&"invoice_recycle_asked".to_owned())),
        "{audit:?}"
    );

    // Repeats: same key, no key (same body) → same answer, no second call; same key with
    // another body → 422.
    let (status, again) = h.act(RECYCLE_ROUTE, 1, Some("rcy-1"), body.clone()).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["transmission"]["chorus_status"], "MISE_A_DISPOSITION");
    let (status, again) = h.act(RECYCLE_ROUTE, 1, None, body.clone()).await;
    assert_eq!(status, 202, "{again}");
    let (status, reused) = h
        .act(
            RECYCLE_ROUTE,
            1,
            Some("rcy-1"),
            json!({"buyer_siret": VILLEURBANNE}),
        )
        .await;
    assert_eq!(status, 422, "{reused}");
    assert_eq!(reused["code"], "idempotency_key_reused");
    assert_eq!(h.journal_count(RECYCLE_PATH), 1);

    // The follow-up goes on from the new status.
    let view = h.follow_until(1, &invoice, "SERVICE_FAIT", 4).await;
    assert!(
        in_order(
            &statuses(&view),
            &["A_RECYCLER", "MISE_A_DISPOSITION", "SERVICE_FAIT"]
        ),
        "{view}"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_recycle_to_a_buyer_whose_rules_are_not_met_is_refused_and_nothing_is_sent() {
    let h = Harness::new(Options::default()).await;
    h.returned(1, "RCN", Some("A_RECYCLER")).await;
    // The Isère buyer requires a service code.
    let (status, answer) = h
        .act(RECYCLE_ROUTE, 1, None, json!({"buyer_siret": ISERE}))
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["code"], "buyer_requirements_unmet", "{answer}");
    assert_eq!(h.journal_count(RECYCLE_PATH), 0);
    let tracked = h.tracked(1).await;
    assert!(tracked.record.routing_changes.is_empty());
    assert!(tracked.record.returned_action.is_none());
    assert_eq!(
        h.get(1).await["transmission"]["chorus_status"],
        "A_RECYCLER"
    );
    h.finish().await;
}

#[tokio::test]
async fn recycle_or_complete_in_a_status_that_does_not_allow_it_is_409_and_nothing_is_sent() {
    let h = Harness::new(Options::default()).await;
    h.returned(1, "NAL", None).await;
    let (status, answer) = h
        .act(
            RECYCLE_ROUTE,
            1,
            None,
            json!({"buyer_service_code": "DIRINFRA"}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["code"], "action_not_allowed");
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("MISE_A_DISPOSITION") && detail.contains("A_RECYCLER"),
        "{detail}"
    );
    let (status, answer) = h
        .act(COMPLETE_ROUTE, 1, None, json!({"comment": "PV joint"}))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("SUSPENDUE"),
        "{answer}"
    );
    for path in [RECYCLE_PATH, UPLOAD_PATH, COMPLETE_PATH] {
        assert_eq!(h.journal_count(path), 0, "{path}");
    }
    h.finish().await;
}

#[tokio::test]
async fn a_suspended_invoice_is_completed_with_a_comment_and_a_pdf_once() {
    let h = Harness::new(Options::default()).await;
    let invoice = h.returned(1, "CPL", Some("SUSPENDUE")).await;
    let next = h.get(1).await["next_action"].as_str().unwrap().to_owned();
    assert!(next.contains("transmission/complete"), "{next}");
    let id = h.get(1).await["transmission"]["chorus_invoice_id"]
        .as_i64()
        .unwrap();

    let body = json!({"comment": "Procès-verbal de réception joint",
                      "attachments": [pdf_attachment("pv-reception.pdf")]});
    let (status, answer) = h.act(COMPLETE_ROUTE, 1, Some("cpl-1"), body.clone()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["chorus_status"], "COMPLETEE");

    let uploads = h.sandbox().journal(Some(UPLOAD_PATH));
    assert_eq!(uploads.len(), 1);
    let upload = uploads[0].body.clone().unwrap();
    assert_eq!(upload["pieceJointeNom"], "pv-reception.pdf");
    assert_eq!(upload["pieceJointeTypeMime"], "application/pdf");
    assert_eq!(upload["pieceJointeExtension"], "PDF");
    assert_eq!(upload["pieceJointeFichier"], PDF);
    let completions = h.sandbox().journal(Some(COMPLETE_PATH));
    assert_eq!(completions.len(), 1);
    let sent = completions[0].body.clone().unwrap();
    assert_eq!(sent["identifiantFactureCPP"], id);
    assert_eq!(sent["commentaire"], "Procès-verbal de réception joint");
    let piece = &sent["pieceJointeComplementaire"][0];
    assert_eq!(
        piece["pieceJointeComplementaireDesignation"],
        "pv-reception.pdf"
    );
    assert!(
        piece["pieceJointeComplementaireId"].as_i64().is_some(),
        "{sent}"
    );

    let (status, again) = h.act(COMPLETE_ROUTE, 1, Some("cpl-1"), body).await;
    assert_eq!(status, 202, "{again}");
    let (status, reused) = h
        .act(
            COMPLETE_ROUTE,
            1,
            Some("cpl-1"),
            json!({"comment": "autre"}),
        )
        .await;
    assert_eq!(status, 422, "{reused}");
    assert_eq!(reused["code"], "idempotency_key_reused");
    assert_eq!(h.journal_count(COMPLETE_PATH), 1);
    assert_eq!(h.journal_count(UPLOAD_PATH), 1);

    let view = h.follow_until(1, &invoice, "MISE_A_DISPOSITION", 3).await;
    assert!(
        in_order(
            &statuses(&view),
            &["SUSPENDUE", "COMPLETEE", "MISE_A_DISPOSITION"]
        ),
        "{view}"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_completion_sends_an_uploaded_document_and_refuses_an_unknown_one() {
    let h = Harness::new(Options::default()).await;
    h.returned(1, "CPD", Some("SUSPENDUE")).await;
    let documents = documents::State::from_sdk(h.config.clone(), &h.sdk);
    let announce = |size: usize| {
        let path = format!("/v1/companies/{}/documents", h.siret);
        let body = json!({"filename": "pv.pdf", "content_type": "application/pdf", "size": size});
        lambda_request(
            "POST /v1/companies/{siret}/documents",
            &path,
            &[("siret", &h.siret)],
            &[&h.siret],
            Some(&body),
        )
    };
    let pdf = b"%PDF-1.4\n% proces-verbal\n".to_vec();
    let (status, created) =
        response_json(&documents::handle(&documents, announce(pdf.len())).await);
    assert_eq!(status, 201, "{created}");
    let put = gateway_tests::testkit::http_client()
        .put(created["upload_url"].as_str().unwrap())
        .header("content-type", "application/pdf")
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());

    // An unknown document: refused before anything reaches Chorus Pro.
    let unknown = json!({"attachments": [{"document_id": "0".repeat(32)}]});
    let (status, answer) = h.act(COMPLETE_ROUTE, 1, None, unknown).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("document_not_found")),
        "{answer}"
    );
    assert_eq!(h.journal_count(UPLOAD_PATH), 0);
    assert_eq!(h.journal_count(COMPLETE_PATH), 0);

    let body =
        json!({"comment": "PV joint", "attachments": [{"document_id": created["document_id"]}]});
    let (status, answer) = h.act(COMPLETE_ROUTE, 1, Some("cpd-1"), body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["chorus_status"], "COMPLETEE");
    let uploads = h.sandbox().journal(Some(UPLOAD_PATH));
    assert_eq!(uploads.len(), 1);
    let upload = uploads[0].body.clone().unwrap();
    assert_eq!(upload["pieceJointeNom"], "pv.pdf");
    use base64::Engine as _;
    let sent = base64::engine::general_purpose::STANDARD
        .decode(upload["pieceJointeFichier"].as_str().unwrap())
        .unwrap();
    assert_eq!(sent, pdf, "the uploaded bytes, as they were");
    h.finish().await;
}

/// Chorus Pro recycles the invoice, but its answer does not reach the gateway as an answer
/// (`fault`). Asked again, the gateway reads the status first, sees it moved on and sends
/// nothing; the routing it landed with is the situation's, as after an answered recycle.
/// Answers the first request's status and body.
async fn recycle_landed_unanswered(
    h: &Harness,
    fault: FaultAction,
    commitment: &str,
) -> (u16, Value) {
    h.returned(1, "RCL", Some("A_RECYCLER")).await;
    h.sandbox().add_fault(Fault::once(RECYCLE_PATH, fault));
    let body = json!({ "commitment_number": commitment });
    let first = h.act(RECYCLE_ROUTE, 1, Some("rcl-1"), body.clone()).await;
    assert_eq!(h.journal_count(RECYCLE_PATH), 1, "Chorus Pro recycled it");
    let (status, again) = h.act(RECYCLE_ROUTE, 1, Some("rcl-1"), body).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["transmission"]["chorus_status"], "MISE_A_DISPOSITION");
    assert_eq!(h.journal_count(RECYCLE_PATH), 1);
    let changes = h.tracked(1).await.record.routing_changes;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        changes[0].new.commitment_number.as_deref(),
        Some(commitment)
    );
    assert_eq!(changes[0].actor, "transmission-test");
    first
}

#[tokio::test]
async fn a_lost_recycle_answer_is_found_in_chorus_pro_and_never_sent_again() {
    let h = Harness::new(Options::default()).await;
    let lost = FaultAction::AnswerLost {
        mode: LostMode::Drop,
        ms: 0,
    };
    let (status, answer) = recycle_landed_unanswered(&h, lost, "EJ-2026-77").await;
    assert_eq!(status, 503, "{answer}");
    h.finish().await;
}

/// Issue 19: Chorus Pro recycles the invoice but answers a page the gateway cannot read.
/// The company is told what it is (`502 chorus_unexpected_answer`, not "unavailable"), and
/// the same request afterwards reads the status first: the recycle is never sent twice.
#[tokio::test]
async fn an_unreadable_recycle_answer_is_502_and_the_recycle_is_never_sent_twice() {
    let h = Harness::new(Options::default()).await;
    let unreadable = FaultAction::AnswerUnreadable;
    let (status, answer) = recycle_landed_unanswered(&h, unreadable, "EJ-2026-78").await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["code"], "chorus_unexpected_answer", "{answer}");
    assert_eq!(answer["title"], "Réponse de Chorus Pro illisible");
    let detail = answer["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("ne sait pas lire"), "{detail}");
    assert!(detail.contains("renvoyez la même requête"), "{detail}");
    assert!(!detail.contains("html"), "never the body: {detail}");
    h.finish().await;
}

/// A completion answered by an unreadable `200` that Chorus Pro did not process (the
/// emulator's `status` fault answers text): `502`, and asked again, the status still says
/// `SUSPENDUE`, so it is sent once more and lands once.
#[tokio::test]
async fn an_unreadable_completion_answer_that_did_not_land_is_502_then_sent_again() {
    let h = Harness::new(Options::default()).await;
    h.returned(1, "CPU", Some("SUSPENDUE")).await;
    h.sandbox().add_fault(Fault::once(
        COMPLETE_PATH,
        FaultAction::Status { status: 200 },
    ));
    let body = json!({"comment": "PV joint", "attachments": [pdf_attachment("pv.pdf")]});
    let (status, answer) = h.act(COMPLETE_ROUTE, 1, Some("cpu-1"), body.clone()).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["code"], "chorus_unexpected_answer", "{answer}");
    assert_eq!(h.get(1).await["transmission"]["chorus_status"], "SUSPENDUE");
    let (status, again) = h.act(COMPLETE_ROUTE, 1, Some("cpu-1"), body).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["transmission"]["chorus_status"], "COMPLETEE");
    let sent = h.sandbox().journal(Some(COMPLETE_PATH));
    assert_eq!(
        sent.len(),
        2,
        "the unprocessed one, then the one that landed"
    );
    assert_eq!(sent[0].fault.as_deref(), Some("status"));
    assert_eq!(sent[1].fault, None);
    h.finish().await;
}

#[tokio::test]
async fn bad_returned_invoice_input_is_400_and_nothing_is_sent() {
    let h = Harness::new(Options::default()).await;
    h.returned(1, "BAD", Some("SUSPENDUE")).await;
    let cases = [
        (
            RECYCLE_ROUTE,
            json!({"buyer_siret": ISERE, "color": "red"}),
            "unknown_field",
        ),
        (RECYCLE_ROUTE, json!({}), "required"),
        (RECYCLE_ROUTE, json!({"buyer_siret": "123"}), ""),
        (
            COMPLETE_ROUTE,
            json!({"attachments": [pdf_attachment("../pv.pdf")]}),
            "",
        ),
        (
            COMPLETE_ROUTE,
            json!({"attachments": [pdf_attachment("dir/pv.pdf")]}),
            "",
        ),
        (
            COMPLETE_ROUTE,
            json!({"comment": "x", "extra": 1}),
            "unknown_field",
        ),
        (COMPLETE_ROUTE, json!({}), "required"),
        (
            COMPLETE_ROUTE,
            json!({"attachments": [{"filename": "pv.pdf", "content_base64": "aGVsbG8gd29ybGQ="}]}),
            "CPRO-PDF-03",
        ),
    ];
    for (route, body, code) in cases {
        let (status, answer) = h.act(route, 1, None, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["code"], "validation_failed", "{answer}");
        if !code.is_empty() {
            assert!(answer.to_string().contains(code), "{code}: {answer}");
        }
    }
    for path in [RECYCLE_PATH, UPLOAD_PATH, COMPLETE_PATH] {
        assert_eq!(h.journal_count(path), 0, "{path}");
    }
    assert!(h.tracked(1).await.record.returned_action.is_none());
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// Issue 17: the company-wide list and its CSV, overdue payments, events on EventBridge

const COMPANY_LIST_ROUTE: &str = "GET /v1/companies/{siret}/situations";

/// `GET /v1/companies/{siret}/situations?{query}`, as JSON or CSV: status and body text.
async fn company_list(h: &Harness, query: &str, csv: bool) -> (u16, String) {
    let mut claims = Map::new();
    claims.insert("sub".into(), "company-list-test".into());
    claims.insert("companies".into(), json!([h.siret]));
    let accept = if csv { "text/csv" } else { "application/json" };
    let params: HashMap<String, String> = [("siret".to_owned(), h.siret.clone())].into();
    let event = gateway_tests::local_api::build_event(&gateway_tests::local_api::EventParts {
        route_key: COMPANY_LIST_ROUTE,
        method: "GET",
        path: &format!("/v1/companies/{}/situations", h.siret),
        query,
        headers: &[("accept".to_owned(), accept.to_owned())],
        body: b"",
        path_parameters: &params,
        claims: &claims,
    });
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = identifiers::handle(&h.identifiers, request).await;
    let text = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        other => panic!("unexpected body {other:?}"),
    };
    if response.status() == 200 {
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(kind.starts_with("text/csv"), csv, "{kind}");
    }
    (response.status().as_u16(), text)
}

async fn company_page(h: &Harness, query: &str) -> Value {
    let (status, text) = company_list(h, query, false).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Mails moto accepted whose subject names `invoice`.
async fn mails_about(invoice: &str) -> Vec<(String, String)> {
    gateway_tests::testkit::moto_mails()
        .await
        .into_iter()
        .filter(|m| m["subject"].as_str().is_some_and(|s| s.contains(invoice)))
        .map(|m| {
            (
                m["subject"].as_str().unwrap_or("").to_owned(),
                m["body"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_late_payment_is_marked_once_mailed_once_listed_then_paid_and_every_change_is_one_event()
{
    let bus = format!("evtest-{}", suffix().to_lowercase());
    let h = Harness::new(Options {
        event_bus: Some(bus.clone()),
        ..Options::default()
    })
    .await;
    let queue = subscribed_queue(&h.sdk, &bus).await;
    let invoice = invoice_number("LATE");
    h.situation(1, &invoice).await;
    script_made_available_40_days_ago_then_paid(&h, &invoice);
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert!(
        company_page(&h, "overdue=true").await["situations"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    h.follow_until(1, &invoice, "MISE_A_DISPOSITION", 8).await;
    the_late_payment_is_marked_and_mailed_once(&h, &invoice).await;
    the_late_payment_is_listed_with_its_interest_in_json_and_csv(&h, &invoice).await;
    once_paid_it_is_no_longer_overdue(&h, &invoice).await;

    // The events, as a subscriber's queue received them: each change once, in order.
    let events = drain(&h.sdk, &queue).await;
    every_change_is_one_event_in_order(&events, &invoice);
    every_event_detail_has_its_schema_fields(&events);
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&h.password), "no secret in any event");
    h.finish().await;
}

/// Made available 40 days ago (Chorus Pro's date): 30 days for a local authority, so the
/// deadline passed 10 days ago. Paid at the next step, after the deposit (a payment dated
/// before statuses already read would not be taken into the history, so the payment clock,
/// which "paid" is read from, would never stop: see `follow_invoice`).
fn script_made_available_40_days_ago_then_paid(h: &Harness, invoice: &str) {
    let available = OffsetDateTime::now_utc() - Duration::days(40);
    let paid = OffsetDateTime::now_utc() + Duration::minutes(2);
    h.sandbox().script_invoice(InvoiceScript {
        numero_facture: invoice.to_owned(),
        steps: vec![
            ScriptStep::new("MISE_A_DISPOSITION", None).on(available),
            ScriptStep::new("MISE_EN_PAIEMENT", None).on(paid),
        ],
        flux_rejection: None,
    });
}

/// The run that saw the deadline passed marked it and told the referent; more runs mark
/// nothing, mail nothing, and read nothing (the index no longer holds it).
async fn the_late_payment_is_marked_and_mailed_once(h: &Harness, invoice: &str) {
    let mails = mails_about(invoice).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (subject, body) = &mails[0];
    assert!(subject.starts_with("Paiement en retard"), "{subject}");
    for needed in [
        "L2192-13",
        "R2192-31",
        "D2192-35",
        "service comptable",
        "Intérêts moratoires",
    ] {
        assert!(body.contains(needed), "{needed} missing: {body}");
    }
    let tracked = h.tracked(1).await;
    assert!(tracked.record.overdue_since.is_some());
    assert!(tracked.record.overdue_notified_at.is_some());
    for _ in 0..3 {
        let report = h.sync_after(Duration::hours(7)).await;
        assert_eq!(
            (report.overdue.marked, report.overdue.mailed),
            (0, 0),
            "{report:?}"
        );
        assert_eq!(report.overdue.items_read, 0, "{report:?}");
    }
    assert_eq!(mails_about(invoice).await.len(), 1);
}

async fn the_late_payment_is_listed_with_its_interest_in_json_and_csv(h: &Harness, invoice: &str) {
    let page = company_page(h, "overdue=true").await;
    let listed = page["situations"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{page}");
    let p = &listed[0]["payment"];
    assert!(p["days_late"].as_i64().unwrap() >= 9, "{p}");
    assert_ne!(p["late_interest"], Value::Null, "{p}");
    let (status, csv) = company_list(h, "overdue=true", true).await;
    assert_eq!(status, 200, "{csv}");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        &headers[0], "market_ref",
        "the byte-order mark is not part of the header"
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][column("invoice_number")], invoice);
    assert_eq!(&rows[0][column("overdue")], "oui");
    assert!(
        rows[0][column("late_interest")].contains(','),
        "{:?}",
        rows[0]
    );
}

/// Paid: no longer overdue, still late for the record.
async fn once_paid_it_is_no_longer_overdue(h: &Harness, invoice: &str) {
    h.follow_until(1, invoice, "MISE_EN_PAIEMENT", 4).await;
    assert!(
        company_page(h, "overdue=true").await["situations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let paid = company_page(h, "overdue=false&chorus_status=MISE_EN_PAIEMENT").await;
    assert_eq!(paid["situations"].as_array().unwrap().len(), 1, "{paid}");
    h.sync_after(Duration::hours(7)).await;
}

/// No event twice; one `Payment overdue`; the states and the Chorus Pro statuses in order,
/// the payment last.
fn every_change_is_one_event_in_order(events: &[Value], invoice: &str) {
    let ids: Vec<&Value> = events.iter().map(|e| &e["resources"][0]).collect();
    let unique: std::collections::HashSet<String> = ids.iter().map(|v| v.to_string()).collect();
    assert_eq!(unique.len(), ids.len(), "no event twice: {ids:?}");
    let seen = story(events, invoice);
    let kinds: Vec<(&str, &str, &str)> = seen
        .iter()
        .map(|(k, s, c)| (k.as_str(), s.as_str(), c.as_str()))
        .collect();
    let overdue = kinds.iter().filter(|k| k.0 == "Payment overdue").count();
    assert_eq!(overdue, 1, "{kinds:?}");
    let states: Vec<&str> = kinds
        .iter()
        .filter(|k| k.0 == "Situation status changed")
        .map(|k| k.1)
        .collect();
    assert!(
        in_order(
            &states.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &["depositing", "deposited", "integrated"]
        ),
        "{kinds:?}"
    );
    let statuses: Vec<String> = kinds.iter().map(|k| k.2.to_owned()).collect();
    assert!(
        in_order(&statuses, &["MISE_A_DISPOSITION", "MISE_EN_PAIEMENT"]),
        "{kinds:?}"
    );
    assert_eq!(kinds.last().unwrap().2, "MISE_EN_PAIEMENT", "{kinds:?}");
}

/// Every detail has exactly the fields its published JSON Schema requires.
fn every_event_detail_has_its_schema_fields(events: &[Value]) {
    let first = &events[0];
    assert_eq!(first["source"], "choruspro-gateway");
    let detail = first["detail"].as_object().unwrap();
    for (kind, file) in [
        ("Situation status changed", "situation-status-changed.json"),
        ("Payment overdue", "payment-overdue.json"),
    ] {
        let path = format!("{}/../infra/events/{file}", env!("CARGO_MANIFEST_DIR"));
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort_unstable();
        let sample = events.iter().find(|e| e["detail-type"] == kind).unwrap();
        let mut fields: Vec<&str> = sample["detail"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, required, "{kind}");
    }
    assert!(detail.contains_key("next_action"));
}

#[tokio::test]
async fn a_failed_publish_stays_in_the_outbox_and_the_next_status_sync_publishes_it_once() {
    // The functions' bus does not exist yet: every publish fails.
    let bus = format!("evtest-{}", suffix().to_lowercase());
    let h = Harness::new(Options {
        event_bus: Some(bus.clone()),
        ..Options::default()
    })
    .await;
    let invoice = invoice_number("OUTBOX");
    h.situation(1, &invoice).await;
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "deposited", "{answer}");
    let item = &h.items("SITUATION#").await[0];
    let waiting = item["outbox"].as_l().unwrap().len();
    assert_eq!(
        waiting, 2,
        "pending → depositing → deposited, kept: {item:?}"
    );
    assert!(item.contains_key("GSI3PK"), "in the outbox index");

    // The bus appears; the next run publishes what waited, once, in order.
    let queue = subscribed_queue(&h.sdk, &bus).await;
    let report = h.sync_after(Duration::minutes(5)).await;
    assert!(report.overdue.outbox.published >= 2, "{report:?}");
    let item = &h.items("SITUATION#").await[0];
    assert!(
        !item.contains_key("GSI3PK"),
        "out of the outbox index: {item:?}"
    );
    assert!(item["outbox"].as_l().unwrap().is_empty());
    h.sync_after(Duration::minutes(5)).await;
    let events = drain(&h.sdk, &queue).await;
    let states: Vec<String> = story(&events, &invoice).into_iter().map(|e| e.1).collect();
    assert_eq!(&states[..2], ["depositing", "deposited"], "{states:?}");
    let ids: std::collections::HashSet<String> = events
        .iter()
        .map(|e| e["resources"][0].to_string())
        .collect();
    assert_eq!(ids.len(), events.len(), "no event twice");
    h.finish().await;
}

#[tokio::test]
async fn the_company_list_pages_250_situations_in_3_pages_and_exports_them_as_csv() {
    let h = Harness::new(Options::default()).await;
    let first_market = h.market_ref.clone();
    for n in 1..=250u16 {
        h.situation(n, &format!("L-{}-{n}", &suffix()[..6])).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=100&cursor={c}"),
            None => "limit=100".to_owned(),
        };
        let page = company_page(&h, &query).await;
        pages += 1;
        for s in page["situations"].as_array().unwrap() {
            seen.push((
                s["market_ref"].as_str().unwrap().to_owned(),
                s["number"].as_u64().unwrap(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.first().unwrap(), &(first_market.clone(), 1));
    assert_eq!(seen.last().unwrap(), &(first_market.clone(), 250));

    let (status, csv) = company_list(&h, "", true).await;
    assert_eq!(status, 200, "{csv}");
    assert!(csv.starts_with('\u{feff}'), "UTF-8 with a byte-order mark");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    for name in [
        "market_ref",
        "number",
        "invoice_number",
        "state",
        "chorus_status",
        "amount_due",
        "due_on",
        "days_late",
        "late_interest",
    ] {
        assert!(headers.iter().any(|h| h == name), "{name} in {headers:?}");
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 250, "every page");
    assert!(rows.iter().all(|r| &r[4] == "not_transmitted"));
    let filtered = company_page(&h, "state=not_transmitted&limit=5").await;
    assert_eq!(filtered["situations"].as_array().unwrap().len(), 5);
    let none = company_page(&h, "state=deposited").await;
    assert!(none["situations"].as_array().unwrap().is_empty(), "{none}");
    assert_eq!(none["next_cursor"], Value::Null);
    h.finish().await;
}

#[tokio::test]
async fn bad_company_list_input_is_400_with_the_field_and_changes_nothing() {
    let h = Harness::new(Options::default()).await;
    h.situation(1, &invoice_number("BAD")).await;
    let forged = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        "c1:../../autre#1",
    );
    let market_cursor = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        "m1:gymnase",
    );
    let cases = [
        ("state=envoyee", "state", "unknown_filter_value"),
        (
            "chorus_status=PAYEE",
            "chorus_status",
            "unknown_filter_value",
        ),
        ("overdue=oui", "overdue", "unknown_filter_value"),
        ("limit=0", "limit", "invalid_limit"),
        (
            &format!("cursor={forged}") as &str,
            "cursor",
            "invalid_cursor",
        ),
        (
            &format!("cursor={market_cursor}"),
            "cursor",
            "invalid_cursor",
        ),
        ("cursor=not-base64!", "cursor", "invalid_cursor"),
    ];
    for (query, field, code) in cases {
        for csv in [false, true] {
            let (status, text) = company_list(&h, query, csv).await;
            assert_eq!(status, 400, "{query} csv={csv}: {text}");
            let problem: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(problem["code"], "validation_failed", "{problem}");
            assert_eq!(problem["errors"][0]["field"], field, "{problem}");
            assert_eq!(problem["errors"][0]["code"], code, "{problem}");
        }
    }
    // Every fault at once.
    let (status, text) = company_list(&h, "state=x&overdue=y&limit=500", false).await;
    assert_eq!(status, 400);
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3, "{problem}");
    // Another company's list is refused.
    let mut claims = Map::new();
    claims.insert("sub".into(), "intruder".into());
    claims.insert("companies".into(), json!(["81234567600017"]));
    let params: HashMap<String, String> = [("siret".to_owned(), h.siret.clone())].into();
    let event = gateway_tests::local_api::build_event(&gateway_tests::local_api::EventParts {
        route_key: COMPANY_LIST_ROUTE,
        method: "GET",
        path: &format!("/v1/companies/{}/situations", h.siret),
        query: "",
        headers: &[],
        body: b"",
        path_parameters: &params,
        claims: &claims,
    });
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, problem) = response_json(&identifiers::handle(&h.identifiers, request).await);
    assert_eq!(status, 403, "{problem}");
    assert_eq!(
        company_page(&h, "").await["situations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    h.finish().await;
}

#[tokio::test]
async fn a_company_that_switched_overdue_mails_off_is_marked_overdue_but_not_mailed() {
    let h = Harness::new(Options::default()).await;
    let put = |body: Value| {
        let request = lambda_request(
            ACCOUNT_ROUTE,
            &Stack::account_path(&h.siret),
            &[("siret", &h.siret)],
            &[&h.siret],
            Some(&body),
        );
        async { response_json(&company_settings::handle(&h.settings, request).await) }
    };
    let base = json!({"referent_email": "compta@entreprise-btp.fr", "technical_login": h.login, "verify": false});
    assert_eq!(
        h.get_account().await["notify_overdue"],
        true,
        "on by default"
    );
    // A wrong type is refused and changes nothing.
    let mut wrong = base.clone();
    wrong["notify_overdue"] = json!("non");
    let (status, problem) = put(wrong).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(h.get_account().await["notify_overdue"], true);
    let mut off = base.clone();
    off["notify_overdue"] = json!(false);
    let (status, answer) = put(off).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["notify_overdue"], false, "{answer}");
    // A later save without the field keeps it.
    let (status, answer) = put(base).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["notify_overdue"], false, "{answer}");

    let invoice = invoice_number("QUIET");
    h.situation(1, &invoice).await;
    h.sandbox().script_invoice(InvoiceScript {
        numero_facture: invoice.clone(),
        steps: vec![
            ScriptStep::new("MISE_A_DISPOSITION", None)
                .on(OffsetDateTime::now_utc() - Duration::days(45)),
        ],
        flux_rejection: None,
    });
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    h.follow_until(1, &invoice, "MISE_A_DISPOSITION", 8).await;
    let tracked = h.tracked(1).await;
    assert!(
        tracked.record.overdue_since.is_some(),
        "marked all the same"
    );
    assert!(
        tracked.record.overdue_notified_at.is_some(),
        "and out of the index"
    );
    assert!(mails_about(&invoice).await.is_empty(), "no e-mail");
    let listed = company_page(&h, "overdue=true").await;
    assert_eq!(
        listed["situations"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_refused_password_is_one_credentials_rejected_event_without_the_secret() {
    let bus = format!("evtest-{}", suffix().to_lowercase());
    let h = Harness::new(Options {
        account: Account::Jura,
        event_bus: Some(bus.clone()),
        ..Options::default()
    })
    .await;
    let queue = subscribed_queue(&h.sdk, &bus).await;
    let number = invoice_number("REFUSED");
    h.situation(1, &number).await;
    h.sandbox()
        .update_account(
            JURA_LOGIN,
            &AccountUpdate {
                password: None,
                password_expires_on: Some("2025-06-30".into()),
            },
        )
        .unwrap();
    let (status, answer) = h.post(1, None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["state"], "waiting_credentials");
    // Held runs refuse nothing new, nor do checks of the same refused password: still one
    // event.
    h.sync_after(Duration::minutes(31)).await;
    h.sync_after(Duration::minutes(31)).await;
    for _ in 0..2 {
        let (status, answer) = h.verify_account().await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["code"], "credentials_rejected", "{answer}");
    }
    let events = drain(&h.sdk, &queue).await;
    let refused: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "Credentials rejected")
        .collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    let detail = &refused[0]["detail"];
    assert_eq!(detail["company_siret"], h.siret.as_str());
    assert_eq!(detail["state"], "rejected");
    assert_eq!(detail["market_ref"], Value::Null);
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains(JURA_PASSWORD) && !text.contains(JURA_LOGIN),
        "{text}"
    );
    let held: Vec<String> = story(&events, &number).into_iter().map(|e| e.1).collect();
    assert_eq!(
        held.last().map(String::as_str),
        Some("waiting_credentials"),
        "{held:?}"
    );
    h.finish().await;
}
