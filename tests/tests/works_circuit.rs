//! The works circuit (issue 14): a works statement (A4) goes to Chorus Pro by the works
//! route (its PDF added to the account, then `factures/v1/soumettre` with the MOE), is
//! followed through the *maître d'œuvre* and the *maître d'ouvrage* to the payment of the
//! last document, and every status that asks something of the company says what to do.
//!
//! Like `transmission.rs`: the handlers in-process, an emulator of their own
//! (`Progress::Manual`, the MOE and MOA played through `works_action`), a table of their own
//! in the stack's moto, and the follow-up's clock moved ahead between runs.

mod subscriber;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gateway_tests::sandbox::{
    Fault, FaultAction, LostMode, Progress, SandboxConfig, SandboxHandle, Seed, WorksAction, spawn,
};
use gateway_tests::testkit::{
    PDF, Stack, create_table, invoice_body, lambda_request, random_siret, response_json,
    stack_config,
};
use serde_json::{Value, json};
use shared::clock::FixedClock;
use shared::domain::{MarketRef, Siret, SiretCheck, SituationNumber};
use subscriber::{drain, story, subscribed_queue};
use time::{Duration, OffsetDateTime};

const TRANSMIT_ROUTE: &str =
    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission";
const COMPLETE_ROUTE: &str =
    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission/complete";
const SUBMIT_PATH: &str = "/cpro/factures/v1/soumettre";
const UPLOAD_PATH: &str = "/cpro/transverses/v1/ajouter/fichier";
const DEPOSIT_PATH: &str = "/cpro/factures/v1/deposer/flux";
const WORKS_SEARCH_PATH: &str = "/cpro/facturesTravaux/v1/rechercher";
const RECYCLE_ROUTE: &str =
    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission/recycle";
const WORKS_RECYCLE_PATH: &str = "/cpro/facturesTravaux/v1/recycler";
const ISERE: &str = "21380456000018"; // service code required: DIRINFRA

const VILLEURBANNE: &str = "21690123100011"; // requires nothing
const MOE_SIRET: &str = "83214567600017"; // ATELIER D'ARCHITECTURE MOE TEST
const MOE_SERVICE: &str = "MOE_TRAVAUX";

fn suffix() -> String {
    format!("{:08X}", rand::random::<u32>())
}

struct Harness {
    emulator: SandboxHandle,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    identifiers: identifiers::State,
    transmit: transmit_invoice::State,
    sync: status_sync::State,
    clock: Arc<FixedClock>,
    last_sync: Mutex<OffsetDateTime>,
    siret: String,
    market_ref: String,
    technical: shared::chorus::TechnicalAccount,
    sdk: shared::aws::SdkConfig,
}

impl Harness {
    /// A company with its account verified and an A4 market addressed to the seeded MOE.
    async fn new() -> Harness {
        Harness::with(&[]).await
    }

    /// The same, the functions configured with these settings besides the harness's.
    async fn with(settings: &[(&str, &str)]) -> Harness {
        let stack = Stack::connect().await;
        let siret = random_siret();
        let mut seed = Seed::embedded();
        seed.structures.push(
            serde_json::from_value(json!({
                "idStructureCPP": 28_000_000 + i64::from(rand::random::<u16>()),
                "siret": siret, "designation": "ENTREPRISE TEST TRAVAUX", "public": false
            }))
            .unwrap(),
        );
        let login = format!("TECH_1_works-{}@cpro.fr", suffix().to_lowercase());
        let password = format!("Works-Tech-{}!", suffix());
        seed.technical_accounts.push(
            serde_json::from_value(json!({"login": login, "password": password,
                "passwordExpiresOn": "2099-12-31", "structures": [siret]}))
            .unwrap(),
        );
        let emulator = spawn(SandboxConfig {
            seed,
            progress: Progress::Manual,
            ..SandboxConfig::default()
        })
        .await;
        let table = format!("choruspro-gateway-works-{}", suffix().to_lowercase());
        create_table(&stack.ddb, &table).await;
        let (api, token) = (emulator.api_url(), emulator.token_url());
        let mut overrides = vec![
            ("TABLE_NAME", table.as_str()),
            ("CHORUS_API_URL", &api),
            ("PISTE_TOKEN_URL", &token),
            ("RECONCILE_GRACE_SECONDS", "600"),
            ("CHORUS_TIMEOUT_MS", "1500"),
        ];
        overrides.extend_from_slice(settings);
        let config = stack_config(&overrides);
        let sdk = shared::aws::sdk_config().await;
        let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
        let mut sync = status_sync::State::from_sdk(config.clone(), &sdk);
        sync.clock = clock.clone();
        let settings = company_settings::State::from_sdk(config.clone(), &sdk);
        let h = Harness {
            identifiers: identifiers::State::from_sdk(config.clone(), &sdk),
            transmit: transmit_invoice::State::from_sdk(config, &sdk),
            sync,
            clock,
            last_sync: Mutex::new(OffsetDateTime::now_utc()),
            emulator,
            ddb: stack.ddb.clone(),
            table,
            siret,
            market_ref: format!("w-{}", suffix().to_lowercase()),
            technical: shared::chorus::TechnicalAccount::new(login.clone(), password.clone()),
            sdk: sdk.clone(),
        };
        let request = lambda_request(
            "PUT /v1/companies/{siret}/chorus-account",
            &Stack::account_path(&h.siret),
            &[("siret", &h.siret)],
            &[&h.siret],
            Some(
                &json!({"referent_email": "compta@entreprise-btp.fr", "technical_login": login,
                "password": password, "password_confirmation": password, "verify": true}),
            ),
        );
        let (status, answer) = response_json(&company_settings::handle(&settings, request).await);
        assert_eq!(status, 201, "{answer}");
        let (status, answer) = h
            .call(
                "PUT /v1/companies/{siret}/markets/{market_ref}",
                &h.market_path(),
                &[],
                Some(json!({"market_number": format!("2026-TRV-{}", suffix()),
                    "buyer_siret": VILLEURBANNE, "framework": "A4",
                    "project_manager": {"siret": MOE_SIRET, "service_code": MOE_SERVICE},
                    "label": "Réhabilitation du gymnase"})),
            )
            .await;
        assert_eq!(status, 201, "{answer}");
        h
    }

    fn market_path(&self) -> String {
        format!("/v1/companies/{}/markets/{}", self.siret, self.market_ref)
    }

    async fn call(
        &self,
        route: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut params = vec![
            ("siret", self.siret.as_str()),
            ("market_ref", self.market_ref.as_str()),
        ];
        params.extend_from_slice(extra);
        let request = lambda_request(route, path, &params, &[&self.siret], body.as_ref());
        response_json(&identifiers::handle(&self.identifiers, request).await)
    }

    async fn situation(&self, number: u16, invoice_number: &str) {
        let (status, answer) = self.put_situation(number, invoice_number).await;
        assert_eq!(status, 201, "{answer}");
    }

    /// `PUT …/situations/{number}` with `invoice_number`: the status and answer.
    async fn put_situation(&self, number: u16, invoice_number: &str) -> (u16, Value) {
        let n = number.to_string();
        self.call(
            "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}",
            &format!("{}/situations/{n}", self.market_path()),
            &[("number", &n)],
            Some(json!({"invoice_number": invoice_number, "period": "2026-11"})),
        )
        .await
    }

    /// `GET /v1/companies/{siret}/situations?{query}`: the page.
    async fn company_page(&self, query: &str) -> Value {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "works-test".into());
        claims.insert("companies".into(), json!([self.siret]));
        let params: HashMap<String, String> = [("siret".to_owned(), self.siret.clone())].into();
        let event = gateway_tests::local_api::build_event(&gateway_tests::local_api::EventParts {
            route_key: "GET /v1/companies/{siret}/situations",
            method: "GET",
            path: &format!("/v1/companies/{}/situations", self.siret),
            query,
            headers: &[],
            body: b"",
            path_parameters: &params,
            claims: &claims,
        });
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let (status, page) = response_json(&identifiers::handle(&self.identifiers, request).await);
        assert_eq!(status, 200, "{page}");
        page
    }

    /// The invoice numbers `GET …/situations?{query}` lists.
    async fn listed(&self, query: &str) -> Vec<String> {
        self.company_page(query).await["situations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["invoice_number"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn get(&self, number: u16) -> Value {
        let n = number.to_string();
        let (status, view) = self
            .call(
                "GET /v1/companies/{siret}/markets/{market_ref}/situations/{number}",
                &format!("{}/situations/{n}", self.market_path()),
                &[("number", &n)],
                None,
            )
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    async fn post(
        &self,
        route: &str,
        number: u16,
        key: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let n = number.to_string();
        let base = format!("{}/situations/{n}/transmission", self.market_path());
        let path = match route.strip_prefix(TRANSMIT_ROUTE) {
            Some(rest) => format!("{base}{rest}"),
            None => base,
        };
        let params = [
            ("siret", self.siret.as_str()),
            ("market_ref", self.market_ref.as_str()),
            ("number", n.as_str()),
        ];
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(key) = key {
            headers.push(("Idempotency-Key".to_owned(), key.to_owned()));
        }
        let bytes = serde_json::to_vec(body).unwrap();
        let caller = ("works-test", &[self.siret.as_str()][..]);
        let request =
            gateway_tests::testkit::api_request(route, &path, &params, caller, &bytes, &headers);
        gateway_tests::testkit::route_answer(
            route,
            &transmit_invoice::handle(&self.transmit, request).await,
        )
    }

    /// Situation `number` registered and transmitted; its invoice number.
    async fn transmitted(&self, number: u16) -> String {
        let invoice = format!("SIT-{}", suffix());
        self.situation(number, &invoice).await;
        let (status, answer) = self
            .post(TRANSMIT_ROUTE, number, None, &invoice_body(&self.siret))
            .await;
        assert_eq!(status, 202, "{answer}");
        invoice
    }

    async fn sync(&self) -> status_sync::SyncReport {
        self.sync_after(Duration::hours(7)).await
    }

    /// One follow-up run, its clock `ahead` of the last run's (or of now).
    async fn sync_after(&self, ahead: Duration) -> status_sync::SyncReport {
        let at = {
            let mut last = self.last_sync.lock().unwrap();
            *last = (*last).max(OffsetDateTime::now_utc()) + ahead;
            *last
        };
        self.clock.set(at);
        let report = status_sync::run_once(&self.sync).await;
        assert_eq!(report.failed, 0, "{report:?}");
        report
    }

    /// The emulator's next step for this statement (`MISE_A_DISPOSITION_MOE`), followed.
    async fn received_by_moe(&self, number: u16, invoice: &str) -> Value {
        self.emulator.sandbox().advance(None, Some(invoice));
        self.sync().await;
        let view = self.get(number).await;
        assert_eq!(
            view["transmission"]["chorus_status"], "MISE_A_DISPOSITION_MOE",
            "{view}"
        );
        view
    }

    /// The MOE or the MOA acts on `invoice`, then one follow-up run; the view.
    async fn acts(&self, number: u16, invoice: &str, action: &str, extra: Value) -> Value {
        let mut body = json!({"numeroFacture": invoice, "action": action});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let action: WorksAction = serde_json::from_value(body).unwrap();
        self.emulator.sandbox().works_action(action).unwrap();
        self.sync().await;
        self.get(number).await
    }

    fn journal_count(&self, path: &str) -> usize {
        self.emulator.sandbox().journal(Some(path)).len()
    }

    /// Whether the follow-up still has this situation due.
    async fn followed(&self, number: u16) -> bool {
        let tracked = self
            .transmit
            .store
            .get_tracked(
                &Siret::parse(&self.siret, SiretCheck::ShapeOnly).unwrap(),
                &MarketRef::parse(&self.market_ref).unwrap(),
                SituationNumber::new(number).unwrap(),
            )
            .await
            .unwrap()
            .expect("the situation exists");
        tracked.record.next_check_at.is_some()
    }

    async fn finish(self) {
        let _ = self.ddb.delete_table().table_name(&self.table).send().await;
    }
}

fn statuses(view: &Value) -> Vec<String> {
    view["transmission"]["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect()
}

/// Sent by the works route: the PDF first, then one submission naming the MOE, no flux.
fn assert_sent_by_the_works_route(h: &Harness, invoice: &str) {
    assert_eq!(
        h.journal_count(DEPOSIT_PATH),
        0,
        "no UBL flux for a works statement"
    );
    let uploads = h.emulator.sandbox().journal(Some(UPLOAD_PATH));
    assert_eq!(uploads.len(), 1);
    let upload = uploads[0].body.clone().unwrap();
    assert_eq!(upload["pieceJointeFichier"], PDF);
    assert_eq!(upload["pieceJointeTypeMime"], "application/pdf");
    let submits = h.emulator.sandbox().journal(Some(SUBMIT_PATH));
    assert_eq!(submits.len(), 1);
    let sent = submits[0].body.clone().unwrap();
    assert_eq!(sent["modeDepot"], "DEPOT_PDF_API");
    assert_eq!(sent["numeroFactureSaisi"], invoice);
    let frame = &sent["cadreDeFacturation"];
    assert_eq!(
        frame["codeCadreFacturation"],
        "A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR"
    );
    assert_eq!(frame["codeStructureValideur"], MOE_SIRET);
    assert_eq!(frame["codeServiceValideur"], MOE_SERVICE);
    assert_eq!(sent["destinataire"]["codeDestinataire"], VILLEURBANNE);
    assert!(sent["fournisseur"]["idFournisseur"].is_i64(), "{sent}");
    // 12500 − 625 = 11875.00 HT, 20 % VAT.
    assert_eq!(sent["montantTotal"]["montantHtTotal"], "11875.00");
    assert_eq!(sent["montantTotal"]["montantAPayer"], "14250.00");
    assert!(sent["pieceJointePrincipale"][0]["pieceJointePrincipaleId"].is_i64());
}

#[tokio::test]
async fn an_a4_goes_through_the_moe_and_the_moa_to_payment_with_the_admitted_amount() {
    let h = Harness::new().await;
    let invoice = h.transmitted(1).await;

    assert_sent_by_the_works_route(&h, &invoice);
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "integrated", "{view}");
    assert_eq!(view["transmission"]["chorus_status"], "DEPOSEE");

    // The MOE receives it (timestamped: the payment clock starts there), reviews it.
    let view = h.received_by_moe(1, &invoice).await;
    let received = view["works"]["received_by_moe_at"]
        .as_str()
        .expect("timestamped")
        .to_owned();
    assert_eq!(
        view["works"]["moe_status"], "MISE_A_DISPOSITION_MOE",
        "{view}"
    );
    assert_eq!(view["works"]["amount_claimed"], "11875.00");
    assert_eq!(
        view["payment"]["clock_started_at"],
        received.as_str(),
        "{view}"
    );
    let view = h.acts(1, &invoice, "moe_review", json!({})).await;
    assert_eq!(view["works"]["moe_status"], "A_VALIDER_MOE", "{view}");
    assert_eq!(view["next_action"], Value::Null);

    // The MOE admits less than claimed and sends its état d'acompte to the MOA.
    let view = h
        .acts(1, &invoice, "moe_associate", json!({"montant": "11000.00"}))
        .await;
    assert_eq!(view["transmission"]["chorus_status"], "ASSOCIEE", "{view}");
    assert_eq!(view["works"]["amount_claimed"], "11875.00");
    assert_eq!(view["works"]["amount_accepted"], "11000.00");
    let following = view["works"]["following_documents"].as_array().unwrap();
    assert_eq!(following.len(), 1, "{view}");
    assert_eq!(following[0]["framework"], "A16");
    assert_eq!(following[0]["status"], "TRANSMISE_MOA");
    assert_eq!(following[0]["amount_to_pay"], "13200.00");
    assert!(h.followed(1).await, "ASSOCIEE hands over: still followed");

    // The MOA validates (A19), then pays it.
    let view = h.acts(1, &invoice, "moa_validate", json!({})).await;
    let following = view["works"]["following_documents"].as_array().unwrap();
    assert_eq!(following.len(), 2, "{view}");
    assert_eq!(following[0]["status"], "ASSOCIEE");
    assert_eq!(following[1]["framework"], "A19");
    assert_eq!(following[1]["status"], "MISE_A_DISPOSITION");
    assert!(h.followed(1).await);
    let view = h.acts(1, &invoice, "pay", json!({})).await;
    let following = view["works"]["following_documents"].as_array().unwrap();
    assert_eq!(following[1]["status"], "MISE_EN_PAIEMENT", "{view}");
    assert!(
        statuses(&view).contains(&"MISE_EN_PAIEMENT".to_owned()),
        "{view}"
    );
    assert_ne!(view["payment"]["paid_on"], Value::Null, "{view}");
    assert!(
        !h.followed(1).await,
        "the payment of the last document ends the follow-up"
    );
    assert_eq!(h.journal_count(SUBMIT_PATH), 1, "submitted once");
    h.finish().await;
}

#[tokio::test]
async fn a_refusal_by_the_moe_shows_its_reason_and_ends_the_follow_up() {
    let h = Harness::new().await;
    let invoice = h.transmitted(1).await;
    h.received_by_moe(1, &invoice).await;
    let reason = "Avancement non conforme au constat contradictoire";
    let view = h
        .acts(1, &invoice, "moe_refuse", json!({"commentaire": reason}))
        .await;
    assert_eq!(view["works"]["moe_status"], "REFUSEE_MOE", "{view}");
    let next = view["next_action"].as_str().expect("a next action");
    assert!(next.contains("refusé") && next.contains(reason), "{next}");
    assert!(!h.followed(1).await, "a MOE refusal stops the circuit");
    h.finish().await;
}

#[tokio::test]
async fn a_completion_request_is_answered_and_the_statement_goes_back_to_the_moe() {
    let h = Harness::new().await;
    let invoice = h.transmitted(1).await;
    h.received_by_moe(1, &invoice).await;
    let view = h
        .acts(
            1,
            &invoice,
            "moe_ask_completion",
            json!({"commentaire": "Joindre le PV d'avancement"}),
        )
        .await;
    assert_eq!(view["works"]["moe_status"], "A_COMPLETER", "{view}");
    let next = view["next_action"].as_str().unwrap();
    assert!(
        next.contains("compléter") && next.contains("transmission/complete"),
        "{next}"
    );
    assert!(h.followed(1).await);

    let body = json!({"comment": "PV d'avancement joint",
        "attachments": [{"filename": "pv-avancement.pdf", "content_base64": PDF}]});
    let (status, answer) = h.post(COMPLETE_ROUTE, 1, Some("cpl-1"), &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["transmission"]["chorus_status"], "COMPLETEE");
    h.emulator.sandbox().advance(None, Some(&invoice));
    h.sync().await;
    let view = h.get(1).await;
    assert_eq!(
        view["works"]["moe_status"], "MISE_A_DISPOSITION_MOE",
        "{view}"
    );
    assert_eq!(view["next_action"], Value::Null);
    h.finish().await;
}

#[tokio::test]
async fn no_validation_within_the_legal_delay_tells_the_company_and_keeps_following() {
    let h = Harness::new().await;
    let invoice = h.transmitted(1).await;
    h.received_by_moe(1, &invoice).await;
    let view = h.acts(1, &invoice, "moe_no_validation", json!({})).await;
    assert_eq!(
        view["works"]["moe_status"], "ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE",
        "{view}"
    );
    let next = view["next_action"].as_str().unwrap();
    assert!(
        next.contains("délai réglementaire") && next.contains("maître d'ouvrage"),
        "{next}"
    );
    assert!(h.followed(1).await, "the MOE may still act: followed");
    let view = h.acts(1, &invoice, "moe_wrong_recipient", json!({})).await;
    let next = view["next_action"].as_str().unwrap();
    assert!(next.contains("bon maître d'œuvre"), "{next}");
    // What the next action says, the registration allows: a new number reopens it.
    let (status, reopened) = h.put_situation(1, &format!("SIT-{}", suffix())).await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["transmission"]["state"], "not_transmitted");
    h.finish().await;
}

#[tokio::test]
async fn a_lost_submission_answer_is_found_among_works_documents_and_never_sent_again() {
    let h = Harness::new().await;
    h.emulator.sandbox().add_fault(Fault::once(
        SUBMIT_PATH,
        FaultAction::AnswerLost {
            mode: LostMode::Drop,
            ms: 0,
        },
    ));
    let invoice = format!("SIT-{}", suffix());
    h.situation(1, &invoice).await;
    let (status, answer) = h
        .post(TRANSMIT_ROUTE, 1, None, &invoice_body(&h.siret))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["state"], "outcome_unknown",
        "{answer}"
    );
    let report = h.sync().await;
    assert_eq!(report.reconciled, 1, "{report:?}");
    assert!(h.journal_count(WORKS_SEARCH_PATH) >= 1);
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "integrated", "{view}");
    assert!(view["transmission"]["chorus_invoice_id"].is_i64());
    assert_eq!(h.journal_count(SUBMIT_PATH), 1, "never sent twice");
    h.finish().await;
}

#[tokio::test]
async fn a_works_statement_with_a_negative_amount_or_no_pdf_is_refused_and_nothing_is_sent() {
    let h = Harness::new().await;
    h.situation(1, &format!("SIT-{}", suffix())).await;
    let mut negative = invoice_body(&h.siret);
    negative["lines"][0]["unit_price"] = json!("-12500.00");
    negative["allowances_charges"] = json!([]);
    let mut no_pdf = invoice_body(&h.siret);
    no_pdf["document"] = json!({"filename": "situation.png", "content_base64": PDF});
    for (body, words) in [(negative, "négatif"), (no_pdf, "PDF")] {
        let (status, answer) = h.post(TRANSMIT_ROUTE, 1, None, &body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["code"], "invoice_invalid", "{answer}");
        assert!(answer.to_string().contains(words), "{answer}");
        assert_eq!(h.get(1).await["transmission"]["state"], "not_transmitted");
    }
    assert_eq!(
        h.journal_count("/cpro/factures") + h.journal_count(UPLOAD_PATH),
        0
    );
    h.finish().await;
}

#[tokio::test]
async fn a_works_statement_sent_as_a_flux_takes_the_works_syntax() {
    const E4: &str = "IN_DP_E4_UBL_INVOICE";
    let h = Harness::with(&[("WORKS_SUBMISSION", "ubl_flux"), ("FLUX_SYNTAX_WORKS", E4)]).await;
    h.emulator
        .sandbox()
        .set_accepted_syntaxes(vec!["IN_DP_E1_UBL_INVOICE".to_owned(), E4.to_owned()]);
    let invoice = h.transmitted(1).await;
    let deposits = h.emulator.sandbox().journal(Some(DEPOSIT_PATH));
    assert_eq!(deposits.len(), 1, "one flux for {invoice}");
    let sent = deposits[0].body.clone().unwrap();
    assert_eq!(
        sent["syntaxeFlux"], E4,
        "FLUX_SYNTAX_WORKS, not FLUX_SYNTAX"
    );
    assert_eq!(
        h.journal_count(SUBMIT_PATH) + h.journal_count(UPLOAD_PATH),
        0
    );
    let view = h.get(1).await;
    assert_eq!(view["transmission"]["state"], "deposited", "{view}");
    h.finish().await;
}

#[tokio::test]
async fn a_works_statement_to_recycle_goes_by_the_works_recycle_once() {
    let h = Harness::new().await;
    let invoice = h.transmitted(1).await;
    h.received_by_moe(1, &invoice).await;
    let forced = h.emulator.sandbox().force_invoice_status(
        &invoice,
        "A_RECYCLER",
        Some("Erreur des données d'acheminement"),
    );
    assert_eq!(forced, 1);
    h.sync().await;
    assert_eq!(
        h.get(1).await["transmission"]["chorus_status"],
        "A_RECYCLER"
    );

    // The emulator, like AIFE's pages, keeps the ordinary recycle for invoices.
    let id = h.get(1).await["transmission"]["chorus_invoice_id"]
        .as_i64()
        .unwrap();
    let ordinary = shared::chorus::InvoiceRecycle {
        identifiant_facture_cpp: id,
        destinataire: shared::chorus::RecycleRecipient {
            code_destinataire: ISERE.into(),
            code_service_executant: Some("DIRINFRA".into()),
        },
        reference: None,
        commentaire: None,
    };
    match h
        .transmit
        .chorus
        .recycle_invoice(&h.technical, &ordinary)
        .await
    {
        Err(shared::chorus::ChorusError::BusinessRefusal { libelle, .. }) => {
            assert!(libelle.contains("travaux"), "{libelle}");
        }
        other => panic!("the ordinary recycle of a works document: {other:?}"),
    }
    h.emulator.sandbox().clear_journal();

    let body = json!({"buyer_siret": ISERE, "buyer_service_code": "DIRINFRA"});
    let (status, answer) = h.post(RECYCLE_ROUTE, 1, Some("rec-1"), &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["transmission"]["chorus_status"], "MISE_A_DISPOSITION_MOE",
        "{answer}"
    );
    let sent = h.emulator.sandbox().journal(Some(WORKS_RECYCLE_PATH));
    assert_eq!(sent.len(), 1);
    let sent = sent[0].body.clone().unwrap();
    assert_eq!(sent["identifiantDestinataire"], ISERE);
    assert_eq!(sent["codeServiceExecutant"], "DIRINFRA");
    assert!(sent["idFactureTravaux"].is_i64(), "{sent}");
    assert_eq!(
        h.journal_count("/cpro/factures/v1/recycler"),
        0,
        "not the ordinary recycle"
    );
    let (status, again) = h.post(RECYCLE_ROUTE, 1, Some("rec-1"), &body).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(h.journal_count(WORKS_RECYCLE_PATH), 1, "sent once");
    h.finish().await;
}

/// The MOE refuses the statement: the next action asks for a new number, and the
/// registration gives it (before the refusal, a new number is `409 already_transmitted`).
/// The new number is sent by exactly one more submission; the situation then follows the
/// new document, and the reopening is one event.
#[tokio::test]
async fn a_statement_refused_by_the_moe_is_sent_again_under_a_new_number() {
    let bus = format!("works-evt-{}", suffix().to_lowercase());
    let h = Harness::with(&[("EVENT_BUS_NAME", &bus)]).await;
    let queue = subscribed_queue(&h.sdk, &bus).await;
    let first = h.transmitted(1).await;
    h.received_by_moe(1, &first).await;
    let view = h.acts(1, &first, "moe_review", json!({})).await;
    let first_id = view["transmission"]["chorus_invoice_id"].as_i64().unwrap();
    // Not a refusal: still in the circuit, the number is frozen.
    let second = format!("SIT-{}", suffix());
    let (status, frozen) = h.put_situation(1, &second).await;
    assert_eq!(status, 409, "{frozen}");
    assert_eq!(frozen["code"], "already_transmitted", "{frozen}");
    assert_eq!(h.get(1).await["invoice_number"], first.as_str());

    let reason = "Situation établie sur un mauvais avancement";
    let view = h
        .acts(1, &first, "moe_refuse", json!({"commentaire": reason}))
        .await;
    let next = view["next_action"].as_str().unwrap();
    assert!(next.contains("nouveau numéro"), "{next}");
    let (status, refused) = h.put_situation(1, &first).await;
    assert_eq!(status, 409, "the refused number again: {refused}");
    let (status, reopened) = h.put_situation(1, &second).await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["transmission"]["state"], "not_transmitted");
    assert_eq!(reopened["works"], Value::Null, "{reopened}");
    assert_eq!(
        reopened["previous_submissions"][0]["invoice_number"],
        first.as_str()
    );
    the_reopening_is_one_event(&h, &queue, &second).await;

    let (status, answer) = h
        .post(TRANSMIT_ROUTE, 1, None, &invoice_body(&h.siret))
        .await;
    assert_eq!(status, 202, "{answer}");
    let submits = h.emulator.sandbox().journal(Some(SUBMIT_PATH));
    assert_eq!(submits.len(), 2, "exactly one more submission");
    assert_eq!(
        submits[1].body.as_ref().unwrap()["numeroFactureSaisi"],
        second.as_str()
    );
    let view = h.received_by_moe(1, &second).await;
    assert_ne!(
        view["transmission"]["chorus_invoice_id"].as_i64().unwrap(),
        first_id,
        "the new document: {view}"
    );
    assert_eq!(
        view["works"]["moe_status"], "MISE_A_DISPOSITION_MOE",
        "{view}"
    );
    assert_eq!(view["next_action"], Value::Null, "{view}");
    assert!(h.followed(1).await, "the new document is followed");
    h.finish().await;
}

/// One `Situation status changed`, published with the registration: the refused
/// statement's status gone, the state back to `not_transmitted`, under the new number.
async fn the_reopening_is_one_event(h: &Harness, queue: &str, renumbered: &str) {
    let events = drain(&h.sdk, queue).await;
    let reopening: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail"]["previous_chorus_status"] == "REFUSEE_MOE")
        .collect();
    assert_eq!(reopening.len(), 1, "{events:?}");
    let detail = &reopening[0]["detail"];
    assert_eq!(detail["previous_state"], "integrated", "{detail}");
    assert_eq!(detail["state"], "not_transmitted", "{detail}");
    assert_eq!(detail["chorus_status"], Value::Null, "{detail}");
    assert_eq!(story(&events, renumbered).len(), 1, "{events:?}");
}

/// A works statement whose payment deadline passed is marked overdue; its last following
/// document is then paid (its own status stays `ASSOCIEE`): no longer in `overdue=true`,
/// and the payment is one event, the last, never published again.
#[tokio::test]
async fn a_works_statement_marked_overdue_then_paid_leaves_the_overdue_list_with_one_event() {
    let bus = format!("works-evt-{}", suffix().to_lowercase());
    let h = Harness::with(&[("EVENT_BUS_NAME", &bus)]).await;
    let queue = subscribed_queue(&h.sdk, &bus).await;
    let invoice = h.transmitted(1).await;
    h.received_by_moe(1, &invoice).await;
    // 40 days after the MOE's receipt: 30 days for a local authority, so it is late.
    let report = h.sync_after(Duration::days(40)).await;
    assert_eq!(report.overdue.marked, 1, "{report:?}");
    assert_eq!(h.listed("overdue=true").await, [invoice.as_str()]);

    h.acts(1, &invoice, "moe_associate", json!({"montant": "11000.00"}))
        .await;
    h.acts(1, &invoice, "moa_validate", json!({})).await;
    let view = h.acts(1, &invoice, "pay", json!({})).await;
    assert_eq!(view["transmission"]["chorus_status"], "ASSOCIEE", "{view}");
    assert_ne!(view["payment"]["paid_on"], Value::Null, "{view}");
    assert!(
        h.listed("overdue=true").await.is_empty(),
        "paid: not overdue"
    );
    assert_eq!(h.listed("overdue=false").await, [invoice.as_str()]);

    let events = drain(&h.sdk, &queue).await;
    let about: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail"]["invoice_number"] == invoice.as_str())
        .collect();
    let ids: std::collections::HashSet<String> = about
        .iter()
        .map(|e| e["resources"][0].to_string())
        .collect();
    assert_eq!(ids.len(), about.len(), "no event twice: {about:?}");
    let paid: Vec<&&Value> = about
        .iter()
        .filter(|e| e["detail"].get("paid_on").is_some())
        .collect();
    assert_eq!(paid.len(), 1, "one event for the payment: {about:?}");
    let last = about.last().unwrap();
    assert_eq!(last["detail-type"], "Situation status changed", "{last}");
    assert_eq!(
        last["detail"]["paid_on"], view["payment"]["paid_on"],
        "{last}"
    );
    assert_eq!(last["detail"]["chorus_status"], "ASSOCIEE", "{last}");
    let overdue_at = about
        .iter()
        .position(|e| e["detail-type"] == "Payment overdue")
        .expect("the overdue mark was an event");
    assert!(
        overdue_at < about.len() - 1,
        "the payment after it: {about:?}"
    );

    // More runs: nothing more about it.
    h.sync().await;
    h.sync().await;
    let again = drain(&h.sdk, &queue).await;
    assert!(
        again
            .iter()
            .all(|e| e["detail"]["invoice_number"] != invoice.as_str()),
        "{again:?}"
    );
    h.finish().await;
}
