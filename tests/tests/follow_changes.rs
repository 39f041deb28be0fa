//! Change-driven follow-up (issue 20, "Show"): one paged search per company of what changed
//! since its watermark, a consultation only for what changed; a run that fails half-way
//! repeats its window; two workers never take the same company; a `429` storm slows the
//! run without losing anything. Workers `k` of `N` read the indexes from their own shards
//! on, share the deployment's rate, and handle each company once between them.
//!
//! Like `transmission.rs`, the functions run in-process against an emulator of their own
//! (`Progress::Manual`) and a table of their own, with a `FixedClock` moved ahead.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use gateway_tests::sandbox::{
    Fault, FaultAction, Progress, SandboxConfig, SandboxHandle, Seed, spawn,
};
use gateway_tests::testkit::{
    CallCounter, Stack, create_table, invoice_body, lambda_request, random_siret, response_json,
    stack_config,
};
use serde_json::{Map, json};
use shared::clock::FixedClock;
use shared::domain::{MarketRef, Siret, SiretCheck, SituationNumber};
use shared::follow_settings::FollowWorker;
use shared::store::keys::{FOLLOW_SHARDS, follow_shard};
use time::{Duration, OffsetDateTime};

const SEARCH_PATH: &str = "/cpro/factures/v1/rechercher/fournisseur";
const HISTORY_PATH: &str = "/cpro/factures/v1/consulter/historique";
const VILLEURBANNE: &str = "21690123100011";
/// The harness company's structure in its emulator.
const TEMPLATE_STRUCTURE: i64 = 28_000_001;

/// Another supplier of the scale test, made from the harness company.
struct Other {
    siret: String,
    structure: i64,
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
}

struct Harness {
    emulator: SandboxHandle,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    config: shared::config::Config,
    settings: company_settings::State,
    identifiers: identifiers::State,
    transmit: transmit_invoice::State,
    sync: status_sync::State,
    clock: Arc<FixedClock>,
    last: Mutex<OffsetDateTime>,
    siret: String,
    login: String,
    password: String,
    market_ref: String,
    /// Invoice number of each situation transmitted.
    invoices: Mutex<HashMap<u16, String>>,
}

impl Harness {
    async fn new(overrides: &[(&str, &str)]) -> Harness {
        Harness::with_others(overrides, &[]).await
    }

    /// With other supplier structures, each with a technical account of its own
    /// (`TECH_1_fc-{siret}@cpro.fr`, the same password), in the emulator.
    async fn with_others(overrides: &[(&str, &str)], others: &[Other]) -> Harness {
        let stack = Stack::connect().await;
        let siret = random_siret();
        // The SIRET in the login lets the scale test make other companies from this one.
        let login = format!("TECH_1_fc-{siret}@cpro.fr");
        let password = format!("Fc-Tech-{}!", suffix());
        let mut seed = Seed::embedded();
        seed.structures.push(
            serde_json::from_value(json!({
                "idStructureCPP": TEMPLATE_STRUCTURE,
                "siret": siret, "designation": "ENTREPRISE TEST SUIVI", "public": false
            }))
            .unwrap(),
        );
        seed.technical_accounts.push(
            serde_json::from_value(json!({
                "login": login, "password": password,
                "passwordExpiresOn": "2099-12-31", "structures": [siret]
            }))
            .unwrap(),
        );
        for other in others {
            seed.structures.push(
                serde_json::from_value(json!({
                    "idStructureCPP": other.structure, "siret": other.siret,
                    "designation": "ENTREPRISE BANC SUIVI", "public": false
                }))
                .unwrap(),
            );
            seed.technical_accounts.push(
                serde_json::from_value(json!({
                    "login": format!("TECH_1_fc-{}@cpro.fr", other.siret), "password": password,
                    "passwordExpiresOn": "2099-12-31", "structures": [other.siret]
                }))
                .unwrap(),
            );
        }
        let emulator = spawn(SandboxConfig {
            seed,
            progress: Progress::Manual,
            ..SandboxConfig::default()
        })
        .await;
        let table = format!("choruspro-gateway-fctest-{}", suffix().to_lowercase());
        create_table(&stack.ddb, &table).await;
        let (api, token) = (emulator.api_url(), emulator.token_url());
        let mut settings: Vec<(&str, &str)> = vec![
            ("TABLE_NAME", &table),
            ("CHORUS_API_URL", &api),
            ("PISTE_TOKEN_URL", &token),
            ("CHORUS_RATE_PER_SECOND", "200"),
        ];
        settings.extend_from_slice(overrides);
        let config = stack_config(&settings);
        let sdk = shared::aws::sdk_config().await;
        let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
        let mut sync = status_sync::State::paced(config.clone(), &sdk);
        sync.clock = clock.clone();
        let harness = Harness {
            settings: company_settings::State::from_sdk(config.clone(), &sdk),
            identifiers: identifiers::State::from_sdk(config.clone(), &sdk),
            transmit: transmit_invoice::State::from_sdk(config.clone(), &sdk),
            sync,
            clock,
            last: Mutex::new(OffsetDateTime::now_utc()),
            emulator,
            ddb: stack.ddb.clone(),
            table,
            config,
            siret,
            login,
            password,
            market_ref: format!("m-{}", suffix().to_lowercase()),
            invoices: Mutex::new(HashMap::new()),
        };
        harness.set_up_company().await;
        harness
    }

    fn sandbox(&self) -> &gateway_tests::sandbox::Sandbox {
        self.emulator.sandbox()
    }

    async fn set_up_company(&self) {
        let request = lambda_request(
            "PUT /v1/companies/{siret}/chorus-account",
            &Stack::account_path(&self.siret),
            &[("siret", &self.siret)],
            &[&self.siret],
            Some(&json!({
                "referent_email": "compta@entreprise-btp.fr", "technical_login": self.login,
                "password": self.password, "password_confirmation": self.password, "verify": true
            })),
        );
        let (status, answer) =
            response_json(&company_settings::handle(&self.settings, request).await);
        assert_eq!(status, 201, "{answer}");
        let path = format!("/v1/companies/{}/markets/{}", self.siret, self.market_ref);
        let request = lambda_request(
            "PUT /v1/companies/{siret}/markets/{market_ref}",
            &path,
            &[("siret", &self.siret), ("market_ref", &self.market_ref)],
            &[&self.siret],
            Some(
                &json!({"market_number": format!("2026-FC-{}", suffix()), "buyer_siret": VILLEURBANNE, "label": "Voirie"}),
            ),
        );
        let (status, answer) =
            response_json(&identifiers::handle(&self.identifiers, request).await);
        assert_eq!(status, 201, "{answer}");
    }

    fn situation_path(&self, number: u16) -> String {
        format!(
            "/v1/companies/{}/markets/{}/situations/{number}",
            self.siret, self.market_ref
        )
    }

    fn params(&self, number: &str) -> HashMap<String, String> {
        [
            ("siret", self.siret.as_str()),
            ("market_ref", self.market_ref.as_str()),
            ("number", number),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Situation `number` registered and transmitted (deposited).
    async fn transmit(&self, number: u16) {
        let invoice = format!("FC-{number}-{}", suffix());
        let n = number.to_string();
        let params = [
            ("siret", self.siret.as_str()),
            ("market_ref", self.market_ref.as_str()),
            ("number", n.as_str()),
        ];
        let request = lambda_request(
            "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}",
            &self.situation_path(number),
            &params,
            &[&self.siret],
            Some(&json!({"invoice_number": invoice, "period": "2026-11"})),
        );
        let (status, answer) =
            response_json(&identifiers::handle(&self.identifiers, request).await);
        assert_eq!(status, 201, "{answer}");
        let body = serde_json::to_vec(&invoice_body(&self.siret)).unwrap();
        let mut claims = Map::new();
        claims.insert("sub".into(), "follow-test".into());
        claims.insert("companies".into(), json!([self.siret]));
        let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        let event = gateway_tests::local_api::build_event(&gateway_tests::local_api::EventParts {
            route_key: "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission",
            method: "POST",
            path: &format!("{}/transmission", self.situation_path(number)),
            query: "",
            headers: &headers,
            body: &body,
            path_parameters: &self.params(&n),
            claims: &claims,
        });
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let (status, answer) =
            response_json(&transmit_invoice::handle(&self.transmit, request).await);
        assert_eq!(status, 202, "{answer}");
        self.invoices.lock().unwrap().insert(number, invoice);
    }

    fn invoice(&self, number: u16) -> String {
        self.invoices.lock().unwrap()[&number].clone()
    }

    /// One run, its clock `ahead` past the previous run.
    async fn sync_after(&self, ahead: Duration) -> status_sync::SyncReport {
        self.clock.set(self.advance(ahead));
        status_sync::run_once(&self.sync).await
    }

    fn advance(&self, ahead: Duration) -> OffsetDateTime {
        let mut last = self.last.lock().unwrap();
        *last = (*last).max(OffsetDateTime::now_utc()) + ahead;
        *last
    }

    /// Situations 1..=count transmitted, integrated, followed to `MISE_A_DISPOSITION`, and
    /// the company's first look made (its watermark set).
    async fn open_invoices(&self, count: u16) {
        for number in 1..=count {
            self.transmit(number).await;
        }
        // Flux integrated (DEPOSEE), then MISE_A_DISPOSITION; each run follows it.
        self.sandbox().advance(None, None);
        self.sync_after(Duration::minutes(3)).await;
        self.sync_after(Duration::minutes(3)).await;
        self.sandbox().advance(None, None);
        // The first look: the company's cadence (an hour for an invoice at its buyer).
        let report = self.sync_after(Duration::minutes(61)).await;
        assert_eq!(report.failed, 0, "{report:?}");
        for number in 1..=count {
            assert_eq!(
                self.chorus_status(number).await,
                "MISE_A_DISPOSITION",
                "situation {number}"
            );
        }
    }

    async fn chorus_status(&self, number: u16) -> String {
        let n = number.to_string();
        let request = lambda_request(
            "GET /v1/companies/{siret}/markets/{market_ref}/situations/{number}",
            &self.situation_path(number),
            &[
                ("siret", &self.siret),
                ("market_ref", &self.market_ref),
                ("number", &n),
            ],
            &[&self.siret],
            None,
        );
        let (status, view) = response_json(&identifiers::handle(&self.identifiers, request).await);
        assert_eq!(status, 200, "{view}");
        view["transmission"]["chorus_status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn calls(&self, path: &str) -> usize {
        self.sandbox().journal(Some(path)).len()
    }

    /// The `periodeDateHeureEtatCourantDu` of every change search so far.
    fn windows(&self) -> Vec<String> {
        self.sandbox()
            .journal(Some(SEARCH_PATH))
            .into_iter()
            .filter_map(|e| {
                e.body?
                    .get("periodeDateHeureEtatCourantDu")?
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    fn siret(&self) -> Siret {
        Siret::parse(&self.siret, SiretCheck::ShapeOnly).unwrap()
    }

    async fn finish(self) {
        let _ = self.ddb.delete_table().table_name(&self.table).send().await;
    }
}

#[tokio::test]
async fn only_what_changed_is_consulted() {
    let h = Harness::new(&[]).await;
    h.open_invoices(4).await;
    h.sandbox().clear_journal();
    // Nothing changed: one search, no consultation.
    let report = h.sync_after(Duration::minutes(61)).await;
    assert_eq!(
        (h.calls(SEARCH_PATH), h.calls(HISTORY_PATH)),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(report.companies.changes_followed, 0);
    // One invoice accepted by its buyer: one search, one consultation, for that one.
    let changed = h.invoice(3);
    assert_eq!(
        h.sandbox()
            .force_invoice_status(&changed, "SERVICE_FAIT", None),
        1
    );
    h.sandbox().clear_journal();
    let report = h.sync_after(Duration::minutes(61)).await;
    assert_eq!(
        (h.calls(SEARCH_PATH), h.calls(HISTORY_PATH)),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(report.companies.changes_followed, 1, "{report:?}");
    assert_eq!(h.chorus_status(3).await, "SERVICE_FAIT");
    for other in [1, 2, 4] {
        assert_eq!(h.chorus_status(other).await, "MISE_A_DISPOSITION");
    }
    // The search named its window in the published field names.
    let search = h
        .sandbox()
        .journal(Some(SEARCH_PATH))
        .pop()
        .unwrap()
        .body
        .unwrap();
    for field in [
        "periodeDateHeureEtatCourantDu",
        "periodeDateHeureEtatCourantAu",
    ] {
        let value = search[field].as_str().unwrap_or_default();
        assert!(
            shared::chorus::parse_chorus_datetime(value).is_some(),
            "{field}: {search}"
        );
    }
    // Not due yet (an invoice still waits for its buyer: an hour): no call at all.
    h.sandbox().clear_journal();
    h.sync_after(Duration::minutes(20)).await;
    assert_eq!(h.calls("/cpro/"), 0);
    h.finish().await;
}

#[tokio::test]
async fn a_run_that_fails_half_way_repeats_its_window() {
    let h = Harness::new(&[]).await;
    h.open_invoices(3).await;
    // The changes come in a later second than the statuses they replace: a search window
    // is written to the second, so the watermark then has somewhere to move.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    for number in [1, 2] {
        h.sandbox()
            .force_invoice_status(&h.invoice(number), "SERVICE_FAIT", None);
    }
    // The second consultation fails on every attempt (the client retries a read twice).
    h.sandbox().clear_journal();
    let before = h.windows();
    h.sandbox()
        .add_fault(Fault::times(HISTORY_PATH, 1, FaultAction::Delay { ms: 0 }));
    h.sandbox().add_fault(Fault::times(
        HISTORY_PATH,
        3,
        FaultAction::Status { status: 503 },
    ));
    let report = h.sync_after(Duration::minutes(61)).await;
    assert_eq!(report.companies.windows_repeated, 1, "{report:?}");
    assert_eq!(h.chorus_status(2).await, "MISE_A_DISPOSITION", "{report:?}");
    let first = h.windows();
    assert_eq!((before.len(), first.len()), (0, 1));
    // The next run (a failed look is tried again within minutes) searches the same window
    // and catches up.
    h.sandbox().clear_faults();
    let report = h.sync_after(Duration::minutes(6)).await;
    assert_eq!(report.companies.windows_repeated, 0, "{report:?}");
    let second = h.windows();
    assert_eq!(second.len(), 2);
    assert_eq!(second[0], second[1], "the window was not repeated");
    assert_eq!(h.chorus_status(1).await, "SERVICE_FAIT");
    assert_eq!(h.chorus_status(2).await, "SERVICE_FAIT");
    assert_eq!(h.chorus_status(3).await, "MISE_A_DISPOSITION");
    // Then the watermark moves on: the next window starts later.
    h.sandbox()
        .force_invoice_status(&h.invoice(3), "SUSPENDUE", Some("Pièce manquante"));
    h.sync_after(Duration::minutes(61)).await;
    let third = h.windows();
    assert!(third[2] > third[1], "{third:?}");
    assert_eq!(h.chorus_status(3).await, "SUSPENDUE");
    h.finish().await;
}

/// A look that stops at its page cap with pages left has not read the whole window: its
/// watermark stays, and the next look searches the same window (the search's order is not
/// published: what was not read may have changed before what was).
#[tokio::test]
async fn a_look_cut_short_by_its_page_cap_keeps_its_window() {
    // No overlap: the window starts at the watermark itself.
    let mut h = Harness::new(&[("FOLLOW_OVERLAP_SECONDS", "0")]).await;
    h.open_invoices(5).await;
    // The emulator answers in the order of the invoices' identifiers: the last one
    // changes first, the four others a second later.
    let mut invoices = h.sandbox().invoices();
    invoices.sort_by_key(|i| i.identifiant_facture_cpp);
    let last = invoices.pop().unwrap().numero_facture;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    h.sandbox()
        .force_invoice_status(&last, "SERVICE_FAIT", None);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    for invoice in &invoices {
        h.sandbox()
            .force_invoice_status(&invoice.numero_facture, "SERVICE_FAIT", None);
    }
    // Two pages of two: four of the five changes read, the one that came first is not.
    h.sync.config.follow.search_page_size = 2;
    h.sync.config.follow.search_max_pages = 2;
    h.sandbox().clear_journal();
    let report = h.sync_after(Duration::minutes(61)).await;
    assert_eq!(report.companies.searches, 2, "{report:?}");
    assert_eq!(report.companies.changes_followed, 4, "{report:?}");
    assert_eq!(report.companies.windows_repeated, 1, "{report:?}");
    assert_eq!(count_status(&h, "SERVICE_FAIT").await, 4);
    // The next look, with room for the whole window: the same window, the fifth change
    // read; the four already read are not consulted again.
    h.sync.config.follow.search_max_pages = shared::follow_settings::SEARCH_MAX_PAGES;
    let report = h.sync_after(Duration::minutes(61)).await;
    let windows = h.windows();
    assert_eq!(windows.len(), 5, "{windows:?}");
    assert_eq!(
        windows[0], windows[2],
        "the window was not repeated: {windows:?}"
    );
    assert_eq!(report.companies.changes_followed, 1, "{report:?}");
    assert_eq!(count_status(&h, "SERVICE_FAIT").await, 5);
    h.finish().await;
}

#[tokio::test]
async fn two_workers_never_take_the_same_company() {
    let h = Harness::new(&[]).await;
    h.open_invoices(2).await;
    let store = &h.sync.store;
    let siret = h.siret();
    let now = h.advance(Duration::minutes(61));
    // Eight workers try at once: one takes it.
    let tries = (0..8).map(|_| store.lease_company(&siret, now + Duration::minutes(15), now));
    let taken: Vec<_> = futures::future::join_all(tries).await;
    let winners = taken.iter().filter(|t| matches!(t, Ok(Some(_)))).count();
    assert_eq!(winners, 1, "{taken:?}");
    // While it is held, a run leaves the company alone: no Chorus Pro call for it.
    h.sandbox()
        .force_invoice_status(&h.invoice(1), "SERVICE_FAIT", None);
    h.sandbox().clear_journal();
    h.clock.set(now);
    let report = status_sync::run_once(&h.sync).await;
    assert_eq!(report.companies.busy, 1, "{report:?}");
    assert_eq!(h.calls("/cpro/"), 0);
    // Its holder lets it go (here: its lease runs out): the next run takes it.
    let report = h.sync_after(Duration::minutes(16)).await;
    assert_eq!(
        (report.companies.busy, report.companies.changes_followed),
        (0, 1),
        "{report:?}"
    );
    assert_eq!(h.chorus_status(1).await, "SERVICE_FAIT");
    // Two workers running together: the company is searched once.
    h.sandbox()
        .force_invoice_status(&h.invoice(2), "SERVICE_FAIT", None);
    h.sandbox().clear_journal();
    let sdk = shared::aws::sdk_config().await;
    let mut second = status_sync::State::paced(h.config.clone(), &sdk);
    second.clock = h.clock.clone();
    h.clock.set(h.advance(Duration::minutes(61)));
    let (a, b) = tokio::join!(
        status_sync::run_once(&h.sync),
        status_sync::run_once(&second)
    );
    assert_eq!(
        a.companies.visited + b.companies.visited + a.companies.busy + b.companies.busy,
        2
    );
    assert_eq!(h.calls(SEARCH_PATH), 1, "{a:?} {b:?}");
    assert_eq!(h.chorus_status(2).await, "SERVICE_FAIT");
    h.finish().await;
}

#[tokio::test]
async fn a_429_storm_slows_the_run_without_losing_anything() {
    // Four companies visited at once (`FOLLOW_CONCURRENCY`), calls half a second apart: a
    // refusal must hold every company's calls, not only the refused one.
    let others: Vec<Other> = (1..4)
        .map(|i| Other {
            siret: random_siret(),
            structure: 29_500_000 + i,
        })
        .collect();
    let overrides = [("CHORUS_RATE_PER_SECOND", "2"), ("FOLLOW_CONCURRENCY", "4")];
    let h = Harness::with_others(&overrides, &others).await;
    h.open_invoices(2).await;
    h.copy_to_others(&others).await;
    let ids: Vec<i64> = h
        .sandbox()
        .invoices()
        .iter()
        .map(|i| i.identifiant_facture_cpp)
        .collect();
    assert_eq!(ids.len(), 8);
    assert_eq!(h.sandbox().force_status_of(&ids, "SERVICE_FAIT"), 8);
    h.sandbox().clear_journal();
    h.sandbox().add_fault(Fault::times(
        SEARCH_PATH,
        2,
        FaultAction::TooManyRequests { retry_after: 2 },
    ));
    let started = Instant::now();
    let report = h.sync_after(Duration::minutes(61)).await;
    let elapsed = started.elapsed();
    assert_eq!(report.companies.pauses, 2, "{report:?}");
    // Two refusals of two seconds each, one after the other: at least four seconds.
    assert!(elapsed >= std::time::Duration::from_secs(4), "{elapsed:?}");
    let journal = h.sandbox().journal(Some("/cpro/"));
    let refusals: Vec<_> = journal.iter().filter(|e| e.status == Some(429)).collect();
    assert_eq!(refusals.len(), 2);
    // Every call made after a refusal, refused or not, started once its pause was over:
    // none slipped through while the run was told to wait.
    let pause = std::time::Duration::from_millis(1_950);
    let mut held = std::collections::BTreeSet::new();
    for refusal in &refusals {
        for call in journal.iter().filter(|e| e.seq > refusal.seq) {
            let waited = call.received.duration_since(refusal.received);
            assert!(
                waited >= pause,
                "{} {} {waited:?} after a 429",
                call.seq,
                call.path
            );
            held.insert(call.header("cpro-account").unwrap_or_default().to_owned());
        }
    }
    assert!(
        held.len() >= 3,
        "the other companies' calls were held too: {held:?}"
    );
    // Whatever failed is searched again: after at most two more runs, nothing is lost.
    for _ in 0..2 {
        if h.recorded_statuses(&others)
            .await
            .iter()
            .all(|s| s == "SERVICE_FAIT")
        {
            break;
        }
        h.sync_after(Duration::minutes(6)).await;
    }
    let statuses = h.recorded_statuses(&others).await;
    assert_eq!(statuses, vec!["SERVICE_FAIT"; 8]);
    let refused = h
        .sandbox()
        .journal(Some("/cpro/"))
        .iter()
        .filter(|e| e.status == Some(429))
        .count();
    assert_eq!(refused, 2);
    h.finish().await;
}

#[tokio::test]
async fn the_rate_limit_spaces_the_calls() {
    let h = Harness::new(&[("CHORUS_RATE_PER_SECOND", "5")]).await;
    h.open_invoices(4).await;
    for number in 1..=4 {
        h.sandbox()
            .force_invoice_status(&h.invoice(number), "SERVICE_FAIT", None);
    }
    h.sandbox().clear_journal();
    let started = Instant::now();
    let report = h.sync_after(Duration::minutes(61)).await;
    let elapsed = started.elapsed();
    // One search and four consultations, 200 ms apart at 5 a second.
    assert_eq!(h.calls("/cpro/"), 5, "{report:?}");
    assert!(
        elapsed >= std::time::Duration::from_millis(790),
        "{elapsed:?}"
    );
    h.finish().await;
}

// ---------------------------------------------------------------------------------------
// Several workers (issue 20, item 3): worker `k` of `N` reads the sharded indexes from its
// own shards on (`FollowWorker::shards`), the company lease keeps two of them from handling
// one company, and they share `CHORUS_RATE_PER_SECOND`.

/// Other companies, two in each half of the follow shards (worker 0 of 2 owns 0–3, worker 1
/// owns 4–7).
fn others_in_both_halves() -> Vec<Other> {
    let half = |siret: &str| {
        let siret = Siret::parse(siret, SiretCheck::ShapeOnly).unwrap();
        follow_shard(&siret) >= FOLLOW_SHARDS / 2
    };
    let mut counts = [0usize; 2];
    let mut others = Vec::new();
    while counts.iter().any(|&c| c < 2) {
        let siret = random_siret();
        let side = usize::from(half(&siret));
        if counts[side] < 2 {
            counts[side] += 1;
            others.push(Other {
                structure: 29_500_000 + i64::try_from(others.len()).unwrap(),
                siret,
            });
        }
    }
    others
}

impl Harness {
    /// The harness company with two open invoices, and copies of it for `others`.
    async fn with_copies(overrides: &[(&str, &str)], others: &[Other]) -> Harness {
        let h = Harness::with_others(overrides, others).await;
        h.open_invoices(2).await;
        let items = h.company_items().await;
        let sdk = shared::aws::sdk_config().await;
        let sm = aws_sdk_secretsmanager::Client::new(&sdk);
        let name = format!(
            "{}/companies/{}/technical-account",
            h.config.secret_prefix, h.siret
        );
        let current = sm.get_secret_value().secret_id(&name).send().await.unwrap();
        let secret = (
            current.version_id().unwrap().to_owned(),
            current.secret_string().unwrap().to_owned(),
        );
        for other in others {
            h.copy_company(other, &items, &sm, &secret).await;
        }
        h
    }

    /// Another status-sync of the same deployment (another warm function: its own pacer).
    async fn another_worker(&self) -> status_sync::State {
        let sdk = shared::aws::sdk_config().await;
        let mut state = status_sync::State::paced(self.config.clone(), &sdk);
        state.clock = self.clock.clone();
        state
    }

    /// How many calls to `path` each `cpro-account` (one per company) made.
    fn calls_per_account(&self, path: &str) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for entry in self.sandbox().journal(Some(path)) {
            let account = entry
                .headers
                .get("cpro-account")
                .cloned()
                .unwrap_or_default();
            *counts.entry(account).or_default() += 1;
        }
        counts
    }

    /// The Chorus Pro status recorded for situation `number` of company `siret`.
    async fn status_of(&self, siret: &str, number: u16) -> String {
        let siret = Siret::parse(siret, SiretCheck::ShapeOnly).unwrap();
        let market_ref = MarketRef::parse(&self.market_ref).unwrap();
        let number = SituationNumber::new(number).unwrap();
        let tracked = self
            .sync
            .store
            .get_tracked(&siret, &market_ref, number)
            .await
            .unwrap()
            .unwrap();
        tracked
            .situation
            .transmission
            .chorus_status
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn workers_split_the_shards_and_handle_each_company_once() {
    let others = others_in_both_halves();
    // One company at a time: each worker's first visit is one of its own shards.
    let h = Harness::with_copies(&[("FOLLOW_CONCURRENCY", "1")], &others).await;
    let mut sirets: Vec<String> = others.iter().map(|o| o.siret.clone()).collect();
    sirets.push(h.siret.clone());
    let now = h.advance(Duration::minutes(61));
    let (w0, w1) = (
        FollowWorker::new(0, 2).unwrap(),
        FollowWorker::new(1, 2).unwrap(),
    );
    // With a budget of one company each, each worker takes one from its own shards.
    let store = &h.sync.store;
    let shard_of = |found: Vec<Siret>| found.iter().map(follow_shard).collect::<Vec<_>>();
    let (first, _) = store.due_companies(now, 1, &w0).await.unwrap();
    let (second, _) = store.due_companies(now, 1, &w1).await.unwrap();
    let (first, second) = (shard_of(first), shard_of(second));
    assert!(
        first.len() == 1 && first[0] < FOLLOW_SHARDS / 2,
        "{first:?}"
    );
    assert!(
        second.len() == 1 && second[0] >= FOLLOW_SHARDS / 2,
        "{second:?}"
    );
    // With budget left, a worker goes on round the others: both reach every company.
    for worker in [w0, w1, FollowWorker::ALONE] {
        let (all, _) = store.due_companies(now, 100, &worker).await.unwrap();
        assert_eq!(all.len(), sirets.len(), "{worker:?}");
    }
    // Every company's first invoice accepted by its buyer; the two workers run at once.
    let changed: Vec<i64> = h
        .sandbox()
        .invoices()
        .iter()
        .filter(|i| i.numero_facture.starts_with("FC-1-"))
        .map(|i| i.identifiant_facture_cpp)
        .collect();
    assert_eq!(changed.len(), sirets.len());
    h.sandbox().force_status_of(&changed, "SERVICE_FAIT");
    h.sandbox().clear_journal();
    h.clock.set(now);
    let second_worker = h.another_worker().await;
    let (a, b) = tokio::join!(
        status_sync::run_as(&h.sync, w0),
        status_sync::run_as(&second_worker, w1)
    );
    // Each searched by one of them only, each change consulted once, nothing failed.
    let searches = h.calls_per_account(SEARCH_PATH);
    assert_eq!(searches.len(), sirets.len(), "{a:?} {b:?}");
    assert!(searches.values().all(|&n| n == 1), "{searches:?}");
    let consulted: Vec<String> = h
        .sandbox()
        .journal(Some(HISTORY_PATH))
        .into_iter()
        .map(|e| e.body.unwrap_or_default().to_string())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = consulted.iter().collect();
    assert_eq!(
        (consulted.len(), distinct.len()),
        (changed.len(), changed.len())
    );
    assert_eq!(a.failed + b.failed, 0, "{a:?} {b:?}");
    assert_eq!(
        a.companies.changes_followed + b.companies.changes_followed,
        changed.len()
    );
    // Each began with its own shards: both searched, neither found everything taken.
    assert!(
        a.companies.searches > 0 && b.companies.searches > 0,
        "{a:?} {b:?}"
    );
    // Each paced at half the deployment's 200 calls a second.
    assert_eq!((a.worker, a.workers, a.rate_per_second), (0, 2, Some(100)));
    assert_eq!((b.worker, b.workers, b.rate_per_second), (1, 2, Some(100)));
    for siret in &sirets {
        assert_eq!(h.status_of(siret, 1).await, "SERVICE_FAIT", "{siret}");
        assert_eq!(h.status_of(siret, 2).await, "MISE_A_DISPOSITION", "{siret}");
    }
    // A lone worker (an event without a worker) still reaches every shard.
    let seconds: Vec<i64> = h
        .sandbox()
        .invoices()
        .iter()
        .filter(|i| i.numero_facture.starts_with("FC-2-"))
        .map(|i| i.identifiant_facture_cpp)
        .collect();
    h.sandbox().force_status_of(&seconds, "SERVICE_FAIT");
    h.sandbox().clear_journal();
    let alone = h.sync_after(Duration::minutes(61)).await;
    assert_eq!((alone.worker, alone.workers), (0, 1));
    assert_eq!(alone.rate_per_second, Some(200));
    let searches = h.calls_per_account(SEARCH_PATH);
    assert_eq!(searches.len(), sirets.len(), "{alone:?}");
    assert!(searches.values().all(|&n| n == 1), "{searches:?}");
    for siret in &sirets {
        assert_eq!(h.status_of(siret, 2).await, "SERVICE_FAIT", "{siret}");
    }
    h.finish().await;
}

#[tokio::test]
async fn a_worker_paces_itself_at_its_share_of_the_rate() {
    // The deployment's 10 calls a second, shared by two workers: 5 each.
    let h = Harness::new(&[("CHORUS_RATE_PER_SECOND", "10")]).await;
    h.open_invoices(4).await;
    for number in 1..=4 {
        h.sandbox()
            .force_invoice_status(&h.invoice(number), "SERVICE_FAIT", None);
    }
    h.sandbox().clear_journal();
    h.clock.set(h.advance(Duration::minutes(61)));
    let started = Instant::now();
    let report = status_sync::run_as(&h.sync, FollowWorker::new(1, 2).unwrap()).await;
    let elapsed = started.elapsed();
    // One search and four consultations, 200 ms apart at 5 a second (100 ms at 10).
    assert_eq!(h.calls("/cpro/"), 5, "{report:?}");
    assert_eq!(report.rate_per_second, Some(5));
    assert!(
        elapsed >= std::time::Duration::from_millis(790),
        "{elapsed:?}"
    );
    h.finish().await;
}

async fn count_status(h: &Harness, status: &str) -> usize {
    let mut count = 0;
    for number in 1..=5 {
        count += usize::from(h.chorus_status(number).await == status);
    }
    count
}

// ---------------------------------------------------------------------------------------
// The bench's follow-up section (`make bench`, tests/src/bin/bench/follow.rs): many
// companies with 10 open invoices each, 1 % of the invoices changing between two runs.
// Ignored in `make test` (minutes of seeding).

/// status-sync in `mode` with its DynamoDB and Secrets Manager calls counted in `log`.
async fn counted_sync(h: &Harness, mode: &str, log: &CallCounter) -> status_sync::State {
    let mut config = h.config.clone();
    config.follow.mode = match mode {
        "full" => shared::follow_settings::FollowMode::Full,
        _ => shared::follow_settings::FollowMode::Changes,
    };
    let sdk = shared::aws::sdk_config().await;
    let ddb = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(log.clone())
        .build();
    let sm = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .interceptor(log.clone())
        .build();
    let store = shared::store::Store::new(
        aws_sdk_dynamodb::Client::from_conf(ddb),
        config.table_name.clone(),
    );
    let secrets = shared::secrets::SecretStore::new(
        aws_sdk_secretsmanager::Client::from_conf(sm),
        config.secret_prefix.clone(),
    );
    let mut state = shared::services::State::from_clients(config, store, secrets);
    state.clock = h.clock.clone();
    status_sync::State::new(state, None)
}

/// What one measured run did.
struct Measured {
    wall: std::time::Duration,
    chorus: BTreeMap<String, usize>,
    aws: BTreeMap<String, u64>,
    report: status_sync::SyncReport,
}

impl Measured {
    fn chorus_total(&self) -> usize {
        self.chorus.values().sum()
    }

    fn reads(&self) -> u64 {
        ["GetItem", "Query", "BatchGetItem"]
            .iter()
            .map(|op| self.aws.get(*op).copied().unwrap_or(0))
            .sum()
    }

    fn line(&self, name: &str) -> String {
        let r = &self.report;
        format!(
            "{name}: chorus {} ({:?}); dynamodb reads {} ({:?}); wall {:.2}s; situations due {}, companies visited {}, searches {}, changes followed {}, failed {}",
            self.chorus_total(),
            self.chorus,
            self.reads(),
            self.aws,
            self.wall.as_secs_f64(),
            r.due,
            r.companies.visited,
            r.companies.searches,
            r.companies.changes_followed,
            r.failed
        )
    }
}

async fn measure(
    h: &Harness,
    sync: &status_sync::State,
    log: &CallCounter,
    ahead: Duration,
) -> Measured {
    h.clock.set(h.advance(ahead));
    h.sandbox().clear_journal();
    log.take();
    let started = Instant::now();
    let report = status_sync::run_once(sync).await;
    let wall = started.elapsed();
    let mut chorus = BTreeMap::new();
    for entry in h.sandbox().journal(Some("/cpro/")) {
        let name = entry.path.trim_start_matches("/cpro/").to_owned();
        *chorus.entry(name).or_default() += 1;
    }
    Measured {
        wall,
        chorus,
        aws: log.take(),
        report,
    }
}

/// Replaces `from` by `to` in every string of `value`, and maps Chorus Pro invoice ids.
fn rewrite(
    value: &AttributeValue,
    from: &str,
    to: &str,
    ids: &HashMap<i64, i64>,
    name: &str,
) -> AttributeValue {
    match value {
        AttributeValue::S(text) => AttributeValue::S(text.replace(from, to)),
        AttributeValue::N(number) if name == "chorus_invoice_id" => {
            let old: i64 = number.parse().unwrap();
            AttributeValue::N(ids.get(&old).copied().unwrap_or(old).to_string())
        }
        AttributeValue::M(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| {
                    let key = match (name, k.parse::<i64>()) {
                        ("open_invoices", Ok(old)) => {
                            ids.get(&old).copied().unwrap_or(old).to_string()
                        }
                        _ => k.replace(from, to),
                    };
                    (key, rewrite(v, from, to, ids, k))
                })
                .collect(),
        ),
        AttributeValue::L(list) => AttributeValue::L(
            list.iter()
                .map(|v| rewrite(v, from, to, ids, name))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The index key of a copied item, for the copy's own shard.
fn reshard(item: &mut HashMap<String, AttributeValue>, siret: &Siret) {
    let Some(AttributeValue::S(pk)) = item.get("GSI1PK").cloned() else {
        return;
    };
    let shard = match pk.split('#').next() {
        Some("SYNC") => shared::store::keys::sync_gsi1pk(shared::store::keys::sync_shard(siret)),
        Some("FOLLOW") => {
            shared::store::keys::follow_gsi1pk(shared::store::keys::follow_shard(siret))
        }
        Some("REMINDER") => {
            shared::store::keys::reminder_gsi1pk(shared::store::keys::reminder_shard(siret))
        }
        _ => pk,
    };
    item.insert("GSI1PK".into(), AttributeValue::S(shard));
}

impl Harness {
    /// The company's items a copy needs (not its audit, files or mail claims).
    async fn company_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let out = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("COMPANY#{}", self.siret)),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.items()
            .iter()
            .filter(|item| {
                let sk = item["SK"].as_s().unwrap();
                !["AUDIT#", "PAYLOAD#", "MAIL#"]
                    .iter()
                    .any(|p| sk.starts_with(p))
            })
            .cloned()
            .collect()
    }

    /// Other companies made from this one (`copy_company`).
    async fn copy_to_others(&self, others: &[Other]) {
        let items = self.company_items().await;
        let sdk = shared::aws::sdk_config().await;
        let sm = aws_sdk_secretsmanager::Client::new(&sdk);
        let name = format!(
            "{}/companies/{}/technical-account",
            self.config.secret_prefix, self.siret
        );
        let current = sm.get_secret_value().secret_id(&name).send().await.unwrap();
        let secret = (
            current.version_id().unwrap().to_owned(),
            current.secret_string().unwrap().to_owned(),
        );
        for other in others {
            self.copy_company(other, &items, &sm, &secret).await;
        }
    }

    /// The Chorus Pro status recorded for each open situation of this company and the
    /// others (situations 1 and 2 of each).
    async fn recorded_statuses(&self, others: &[Other]) -> Vec<String> {
        let market_ref = shared::domain::MarketRef::parse(&self.market_ref).unwrap();
        let sirets =
            std::iter::once(self.siret.as_str()).chain(others.iter().map(|o| o.siret.as_str()));
        let mut statuses = Vec::new();
        for siret in sirets {
            let siret = Siret::parse(siret, SiretCheck::ShapeOnly).unwrap();
            for number in 1..=2 {
                let number = shared::domain::SituationNumber::new(number).unwrap();
                let tracked = self
                    .sync
                    .store
                    .get_tracked(&siret, &market_ref, number)
                    .await;
                let status = tracked
                    .unwrap()
                    .unwrap()
                    .situation
                    .transmission
                    .chorus_status;
                statuses.push(status.unwrap_or_default());
            }
        }
        statuses
    }

    /// Another company made from this one: its invoices copied in the emulator, its items
    /// and its secret (same version id) copied in AWS.
    async fn copy_company(
        &self,
        other: &Other,
        items: &[HashMap<String, AttributeValue>],
        sm: &aws_sdk_secretsmanager::Client,
        secret: &(String, String),
    ) {
        let ids: HashMap<i64, i64> = self
            .sandbox()
            .copy_invoices(TEMPLATE_STRUCTURE, other.structure)
            .into_iter()
            .collect();
        let siret = Siret::parse(&other.siret, SiretCheck::ShapeOnly).unwrap();
        let copies: Vec<_> = items
            .iter()
            .map(|item| {
                let mut copy: HashMap<String, AttributeValue> = item
                    .iter()
                    .map(|(k, v)| (k.clone(), rewrite(v, &self.siret, &other.siret, &ids, k)))
                    .collect();
                reshard(&mut copy, &siret);
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(copy))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        for chunk in copies.chunks(25) {
            let mut left = chunk.to_vec();
            while !left.is_empty() {
                let out = self
                    .ddb
                    .batch_write_item()
                    .request_items(&self.table, left)
                    .send()
                    .await
                    .unwrap();
                left = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        sm.create_secret()
            .name(format!(
                "{}/companies/{}/technical-account",
                self.config.secret_prefix, other.siret
            ))
            .client_request_token(&secret.0)
            .secret_string(secret.1.replace(&self.siret, &other.siret))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the bench's follow-up section (make bench): minutes of seeding"]
async fn follow_up_at_scale() {
    let companies: usize = std::env::var("FOLLOW_BENCH_COMPANIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .max(2);
    let others: Vec<Other> = (1..companies)
        .map(|i| Other {
            siret: random_siret(),
            structure: 29_000_000 + i64::try_from(i).unwrap(),
        })
        .collect();
    let seeding = Instant::now();
    // Calls unpaced, to measure the gateway; the default pace is applied to the counts.
    let h = Harness::with_others(&[("CHORUS_RATE_PER_SECOND", "1000")], &others).await;
    h.open_invoices(10).await;
    h.copy_to_others(&others).await;
    let seeded = seeding.elapsed();
    let log = CallCounter::default();
    let after = counted_sync(&h, "changes", &log).await;
    // Every company's look is due an hour later; nothing changed yet.
    let first = measure(&h, &after, &log, Duration::minutes(61)).await;
    // 1 % of the invoices accepted by their buyer.
    let mut ids: Vec<i64> = h
        .sandbox()
        .invoices()
        .iter()
        .map(|i| i.identifiant_facture_cpp)
        .collect();
    ids.sort_unstable();
    let changed: Vec<i64> = ids.iter().copied().step_by(100).collect();
    assert_eq!(
        h.sandbox().force_status_of(&changed, "SERVICE_FAIT"),
        changed.len()
    );
    let second = measure(&h, &after, &log, Duration::minutes(61)).await;
    assert_eq!(
        second.report.companies.changes_followed,
        changed.len(),
        "{}",
        second.line("after")
    );
    assert_eq!(second.report.failed, 0);
    // Before: each open invoice consulted on its own; its safety-net time passed, every one
    // is due, and a run takes at most `BATCH` of them.
    let before_sync = counted_sync(&h, "full", &log).await;
    let before = measure(&h, &before_sync, &log, Duration::hours(73)).await;
    println!(
        "follow-up bench: companies {companies}, open situations {}, seeded in {:.1}s\n  {}\n  {}\n  {}",
        ids.len(),
        seeded.as_secs_f64(),
        first.line("after, nothing changed"),
        second.line("after, 1 % changed"),
        before.line("before")
    );
    h.finish().await;
}
