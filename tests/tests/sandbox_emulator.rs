//! The Chorus Pro sandbox emulator over plain HTTP: PISTE's and Chorus Pro's envelopes,
//! the admin API, the time-driven life cycle and the seed.
//!
//! Run: `cargo test -p gateway-tests --test sandbox_emulator`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gateway_tests::sandbox::{EMBEDDED_SEED, Progress, SandboxConfig, SandboxHandle, Seed, spawn};
use reqwest::Method;
use serde_json::{Value, json};
use shared::domain::siret::{Siret, SiretCheck};

const FORM: &str = "application/x-www-form-urlencoded";
const RHONE: (&str, &str) = (
    gateway_tests::testkit::seeded::RHONE.login,
    gateway_tests::testkit::seeded::RHONE.password,
);

fn http() -> reqwest::Client {
    gateway_tests::testkit::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn token_request(sandbox: &SandboxHandle, body: &str) -> (u16, String) {
    let response = http()
        .post(sandbox.token_url())
        .header("content-type", FORM)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn token(sandbox: &SandboxHandle) -> String {
    let (status, body) = token_request(
        sandbox,
        "grant_type=client_credentials&client_id=gateway-local&client_secret=gateway-local-secret&scope=openid",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn cpro(
    sandbox: &SandboxHandle,
    path: &str,
    token: Option<&str>,
    account: Option<(&str, &str)>,
    body: &Value,
) -> (u16, String, Option<String>) {
    let mut request = http()
        .post(format!("{}/{path}", sandbox.api_url()))
        .header("content-type", "application/json;charset=utf-8")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some((login, password)) = account {
        request = request.header("cpro-account", BASE64.encode(format!("{login}:{password}")));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let www = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.text().await.unwrap(), www)
}

async fn admin(
    sandbox: &SandboxHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http().request(method, format!("{}/_admin/{path}", sandbox.base_url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn invoice_xml(number: &str) -> String {
    format!(
        r#"<Invoice xmlns:cbc="urn:cbc" xmlns:cac="urn:cac"><cbc:ID>{number}</cbc:ID>
<cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:CompanyID schemeID="0009">81234567600017</cbc:CompanyID></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
<cac:AccountingCustomerParty><cac:Party><cac:PartyIdentification><cbc:ID>21690123100011</cbc:ID></cac:PartyIdentification></cac:Party></cac:AccountingCustomerParty>
</Invoice>"#
    )
}

async fn deposit(sandbox: &SandboxHandle, token: &str, number: &str) -> String {
    let (status, body, _) = cpro(
        sandbox,
        "factures/v1/deposer/flux",
        Some(token),
        Some(RHONE),
        &json!({"fichierFlux": BASE64.encode(invoice_xml(number)), "nomFichier": "f.xml",
                "syntaxeFlux": "IN_DP_E1_UBL_INVOICE", "avecSignature": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["codeRetour"], 0);
    body["numeroFluxDepot"].as_str().unwrap().to_owned()
}

async fn flux_state(sandbox: &SandboxHandle, token: &str, numero: &str) -> String {
    let (_, body, _) = cpro(
        sandbox,
        "transverses/v1/consulterCRDetaille",
        Some(token),
        Some(RHONE),
        &json!({"numeroFluxDepot": numero}),
    )
    .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    body["etatCourantDepotFlux"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn token_endpoint_answers_like_piste() {
    let sandbox = spawn(SandboxConfig::default()).await;
    let (status, body) = token_request(
        &sandbox,
        "grant_type=client_credentials&client_id=gateway-local&client_secret=gateway-local-secret&scope=openid",
    )
    .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid");

    let wrong_secret = token_request(
        &sandbox,
        "grant_type=client_credentials&client_id=gateway-local&client_secret=nope&scope=openid",
    )
    .await;
    let unknown_id = token_request(
        &sandbox,
        "grant_type=client_credentials&client_id=nobody&client_secret=gateway-local-secret&scope=openid",
    )
    .await;
    assert_eq!(
        wrong_secret,
        (400, r#"{"error":"invalid_client"}"#.to_owned())
    );
    assert_eq!(unknown_id, wrong_secret, "byte-identical refusals");
    let (status, _) = token_request(&sandbox, "grant_type=password&client_id=gateway-local").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn piste_and_chorus_refusals_are_told_apart() {
    let sandbox = spawn(SandboxConfig::default()).await;
    let path = "transverses/v1/recuperer/structures/actives/fournisseur";

    let (status, body, www) = cpro(&sandbox, path, None, Some(RHONE), &json!({})).await;
    assert_eq!(status, 401);
    assert!(
        !body.contains("codeRetour"),
        "PISTE's body has no Chorus envelope: {body}"
    );
    assert!(www.is_some_and(|w| w.contains("invalid_token")));
    let (status, _, _) = cpro(&sandbox, path, Some("sbx-forged"), Some(RHONE), &json!({})).await;
    assert_eq!(status, 401);

    let token = token(&sandbox).await;
    let (status, body, _) = cpro(
        &sandbox,
        "factures/v1/inexistant",
        Some(&token),
        Some(RHONE),
        &json!({}),
    )
    .await;
    assert_eq!((status, body.as_str()), (403, "{}"));

    let ldap =
        r#"{"codeRetour":401,"libelle":"Impossible d'authentifier l'utilisateur dans le LDAP."}"#;
    for account in [
        None,
        Some((RHONE.0, "wrong")),
        Some(("TECH_1_maconnerie-jura@cpro.fr", "Jura-Tech-2024!")),
    ] {
        let (status, body, _) = cpro(&sandbox, path, Some(&token), account, &json!({})).await;
        assert_eq!((status, body.as_str()), (401, ldap));
    }
    let (status, body, _) = cpro(&sandbox, path, Some(&token), Some(RHONE), &json!({})).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["codeRetour"], 0);
    assert_eq!(body["listeStructures"][0]["identifiant"], "81234567600017");

    // Expired token.
    sandbox
        .sandbox()
        .set_token_lifetime(Duration::from_millis(300));
    let short = self::token(&sandbox).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _, _) = cpro(&sandbox, path, Some(&short), Some(RHONE), &json!({})).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn admin_api_over_http() {
    let sandbox = spawn(SandboxConfig::default()).await;
    assert_eq!(admin(&sandbox, Method::GET, "health", None).await.0, 200);
    let token = settings_set_the_token_lifetime_and_manual_progress(&sandbox).await;
    manual_progress_moves_only_on_advance(&sandbox, &token).await;
    a_script_and_a_forced_status_drive_the_invoice(&sandbox).await;
    a_fault_set_through_json_answers_once(&sandbox, &token).await;
    the_journal_filters_by_path_and_keeps_headers(&sandbox).await;
    accounts_are_patched_and_a_new_password_refuses_the_old(&sandbox, &token).await;
    reset_restores_the_seed_password_deposits_and_settings(&sandbox).await;
}

/// Settings: token lifetime and manual progress. Gives a token of that lifetime.
async fn settings_set_the_token_lifetime_and_manual_progress(sandbox: &SandboxHandle) -> String {
    let (status, settings) = admin(
        sandbox,
        Method::PUT,
        "settings",
        Some(json!({"tokenLifetimeSeconds": 7, "progress": "manual"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(settings["progress"], "manual");
    let (_, body) = token_request(
        sandbox,
        "grant_type=client_credentials&client_id=gateway-local&client_secret=gateway-local-secret",
    )
    .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["expires_in"], 7);
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        admin(
            sandbox,
            Method::PUT,
            "settings",
            Some(json!({"progress": "sometimes"}))
        )
        .await
        .0,
        400
    );
    token
}

/// Manual: reads do not move the flux; `/_admin/advance` does.
async fn manual_progress_moves_only_on_advance(sandbox: &SandboxHandle, token: &str) {
    let numero = deposit(sandbox, token, "ADMIN-1").await;
    for _ in 0..2 {
        assert_eq!(
            flux_state(sandbox, token, &numero).await,
            "IN_DEPOT_PORTAIL_EN_ATTENTE_TRAITEMENT_SE_CPP"
        );
    }
    let (_, moved) = admin(
        sandbox,
        Method::POST,
        "advance",
        Some(json!({"numeroFluxDepot": numero})),
    )
    .await;
    assert_eq!(moved["moved"], 1);
    assert_eq!(flux_state(sandbox, token, &numero).await, "IN_INTEGRE");
}

/// Script and forced status: a scripted rejection keeps its comment; forcing the status of
/// an unknown invoice is a 404.
async fn a_script_and_a_forced_status_drive_the_invoice(sandbox: &SandboxHandle) {
    let (status, _) = admin(
        sandbox,
        Method::POST,
        "invoices/script",
        Some(json!({"numeroFacture": "ADMIN-1", "steps": [{"statut": "REJETEE", "commentaire": "Montant errone"}]})),
    )
    .await;
    assert_eq!(status, 204);
    admin(sandbox, Method::POST, "advance", Some(json!({}))).await;
    let (_, invoices) = admin(sandbox, Method::GET, "invoices", None).await;
    let invoice = &invoices["invoices"][0];
    assert_eq!(invoice["statut"], "REJETEE");
    assert_eq!(invoice["historique"][1]["commentaire"], "Montant errone");
    let (status, _) = admin(
        sandbox,
        Method::POST,
        "invoices/status",
        Some(json!({"numeroFacture": "NOPE", "statut": "SUSPENDUE"})),
    )
    .await;
    assert_eq!(status, 404);
    let (_, deposits) = admin(sandbox, Method::GET, "deposits", None).await;
    assert_eq!(deposits["deposits"][0]["etat"], "IN_INTEGRE");
    assert_eq!(deposits["deposits"][0]["numeroFacture"], "ADMIN-1");
}

/// Faults through JSON: a 502 set for one call answers that call, then is gone.
async fn a_fault_set_through_json_answers_once(sandbox: &SandboxHandle, token: &str) {
    let (status, _) = admin(
        sandbox,
        Method::POST,
        "faults",
        Some(json!({"path": "/cpro/structures/", "kind": "status", "status": 502, "times": 1})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        admin(sandbox, Method::GET, "faults", None).await.1["faults"][0]["status"],
        502
    );
    let (status, _, _) = cpro(
        sandbox,
        "structures/v1/rechercher",
        Some(token),
        Some(RHONE),
        &json!({}),
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(
        admin(sandbox, Method::GET, "faults", None).await.1["faults"],
        json!([])
    );
}

/// Journal, filtered by path, with headers; emptied by a DELETE.
async fn the_journal_filters_by_path_and_keeps_headers(sandbox: &SandboxHandle) {
    let (_, journal) = admin(sandbox, Method::GET, "journal?path=/cpro/structures", None).await;
    let entries = journal["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], 502);
    assert_eq!(entries[0]["fault"], "status");
    assert_eq!(
        entries[0]["headers"]["cpro-account"],
        BASE64.encode(format!("{}:{}", RHONE.0, RHONE.1))
    );
    assert_eq!(admin(sandbox, Method::DELETE, "journal", None).await.0, 204);
    assert_eq!(
        admin(sandbox, Method::GET, "journal", None).await.1["entries"],
        json!([])
    );
}

/// Accounts: an unknown one is a 404, an unknown field a 400; a new password makes the
/// old one refused.
async fn accounts_are_patched_and_a_new_password_refuses_the_old(
    sandbox: &SandboxHandle,
    token: &str,
) {
    assert_eq!(
        admin(
            sandbox,
            Method::PATCH,
            "accounts/TECH_1_nobody@cpro.fr",
            Some(json!({"password": "x"}))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        admin(
            sandbox,
            Method::PATCH,
            &format!("accounts/{}", RHONE.0),
            Some(json!({"passwordExpiresOn": "31/12/2027"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        admin(
            sandbox,
            Method::PATCH,
            &format!("accounts/{}", RHONE.0),
            Some(json!({"password": "Nouveau-2027!"}))
        )
        .await
        .0,
        204
    );
    let (status, _, _) = cpro(
        sandbox,
        "transverses/v1/recuperer/structures/actives/fournisseur",
        Some(token),
        Some(RHONE),
        &json!({}),
    )
    .await;
    assert_eq!(status, 401);
}

/// Reset: seed password, no deposits, starting settings.
async fn reset_restores_the_seed_password_deposits_and_settings(sandbox: &SandboxHandle) {
    assert_eq!(admin(sandbox, Method::POST, "reset", None).await.0, 204);
    assert_eq!(
        admin(sandbox, Method::GET, "deposits", None).await.1["deposits"],
        json!([])
    );
    assert_eq!(
        admin(sandbox, Method::GET, "settings", None).await.1["progress"],
        "poll"
    );
    let token = self::token(sandbox).await;
    let (status, _, _) = cpro(
        sandbox,
        "transverses/v1/recuperer/structures/actives/fournisseur",
        Some(&token),
        Some(RHONE),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn timed_progress_moves_on_without_polls() {
    let sandbox = spawn(SandboxConfig {
        progress: Progress::Every(Duration::from_millis(400)),
        ..SandboxConfig::default()
    })
    .await;
    let token = token(&sandbox).await;
    let numero = deposit(&sandbox, &token, "TIMED-1").await;
    assert_eq!(
        flux_state(&sandbox, &token, &numero).await,
        "IN_DEPOT_PORTAIL_EN_ATTENTE_TRAITEMENT_SE_CPP"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(flux_state(&sandbox, &token, &numero).await, "IN_INTEGRE");
    let invoices = sandbox.sandbox().invoices();
    assert_eq!(invoices.len(), 1);
    // Integrated after one period, then one status per period: two or three by now.
    let steps = invoices[0].historique.len();
    assert!(
        (2..=4).contains(&steps),
        "{steps} statuses: {:?}",
        invoices[0].historique
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, body, _) = cpro(
        &sandbox,
        "factures/v1/consulter/historique",
        Some(&token),
        Some(RHONE),
        &json!({"idFacture": invoices[0].identifiant_facture_cpp}),
    )
    .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["statutCourantCode"], "MISE_EN_PAIEMENT");
    assert_eq!(body["historiquesDesStatuts"]["totalHistoStatut"], 5);
}

#[test]
fn progress_parses_env_forms() {
    assert_eq!(Progress::parse("poll"), Ok(Progress::OnPoll));
    assert_eq!(Progress::parse("manual"), Ok(Progress::Manual));
    assert_eq!(
        Progress::parse("30"),
        Ok(Progress::Every(Duration::from_secs(30)))
    );
    assert_eq!(
        Progress::parse("0.5s"),
        Ok(Progress::Every(Duration::from_millis(500)))
    );
    assert!(Progress::parse("0").is_err());
    assert!(Progress::parse("often").is_err());
}

#[test]
fn seed_file_is_the_embedded_one_and_its_sirets_are_valid() {
    let on_disk = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/chorus-sandbox-seed.json"),
    )
    .unwrap();
    assert_eq!(on_disk, EMBEDDED_SEED);
    let seed = Seed::embedded();
    assert_eq!(seed.piste_applications[0].client_id, "gateway-local");
    assert_eq!(
        seed.piste_applications[0].client_secret,
        "gateway-local-secret"
    );
    for structure in &seed.structures {
        let check = Siret::parse(&structure.siret, SiretCheck::Full);
        if structure.siret == "12345678200099" {
            assert!(check.is_err(), "the sandbox-style SIRET must fail Luhn");
        } else {
            assert!(check.is_ok(), "{} must be Luhn-valid", structure.siret);
        }
    }
    for account in &seed.technical_accounts {
        for siret in &account.structures {
            assert!(
                seed.structures
                    .iter()
                    .any(|s| &s.siret == siret && !s.public),
                "{} names an unknown supplier {siret}",
                account.login
            );
        }
    }
    let requirements: Vec<_> = seed
        .structures
        .iter()
        .filter(|s| s.public)
        .map(|s| {
            let p = &s.parametres;
            (
                p.code_service_doit_etre_renseigne,
                p.numero_ej_doit_etre_renseigne,
                p.gestion_numero_ej_ou_code_service,
            )
        })
        .collect();
    for wanted in [
        (false, false, false),
        (true, false, false),
        (false, true, false),
        (true, true, false),
        (false, false, true),
    ] {
        assert!(requirements.contains(&wanted), "no buyer with {wanted:?}");
    }
}

/// `rechercher/fournisseur` with `periodeDateHeureEtatCourantDu`/`Au` (docs/chorus-pro.md,
/// "Change-driven follow-up"): the invoices whose current status was set in the period, a
/// page at a time; a malformed bound is refused.
#[tokio::test]
async fn the_supplier_search_finds_what_changed_in_a_period() {
    let sandbox = spawn(SandboxConfig {
        progress: Progress::Manual,
        ..SandboxConfig::default()
    })
    .await;
    let token = token(&sandbox).await;
    for n in 1..=3 {
        deposit(&sandbox, &token, &format!("WINDOW-{n}")).await;
    }
    sandbox.sandbox().advance(None, None);
    let search = |body: Value| {
        let (sandbox, token) = (&sandbox, token.clone());
        async move {
            let (status, text, _) = cpro(
                sandbox,
                "factures/v1/rechercher/fournisseur",
                Some(&token),
                Some(RHONE),
                &body,
            )
            .await;
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    let stamp = |at: time::OffsetDateTime| shared::chorus::search_datetime(at);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(50)).await;
    sandbox
        .sandbox()
        .force_invoice_status("WINDOW-2", "SERVICE_FAIT", None);
    // Since `since`: only the invoice that changed.
    let (status, found) = search(json!({"periodeDateHeureEtatCourantDu": stamp(since)})).await;
    assert_eq!(status, 200, "{found}");
    let numbers: Vec<&str> = found["listeFactures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["numeroFacture"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["WINDOW-2"]);
    let changed_at = found["listeFactures"][0]["dateHeureEtatCourant"]
        .as_str()
        .unwrap();
    assert!(shared::chorus::parse_chorus_datetime(changed_at).unwrap() >= since);
    // Up to `since`: the two others, one per page.
    let (_, first) = search(json!({"periodeDateHeureEtatCourantAu": stamp(since),
        "rechercheFactureParFournisseur": {"nbResultatsParPage": 1, "pageResultatDemandee": 2}}))
    .await;
    assert_eq!(
        first["listeFactures"].as_array().unwrap().len(),
        1,
        "{first}"
    );
    assert_eq!(first["listeFactures"][0]["numeroFacture"], "WINDOW-3");
    assert_eq!(first["parametresRetour"]["pages"], 2);
    assert_eq!(first["parametresRetour"]["pageCourante"], 2);
    // A period that ended before anything: no result (codeRetour 20000).
    let (_, none) =
        search(json!({"periodeDateHeureEtatCourantAu": "2020-01-01T00:00:00.000Z"})).await;
    assert_eq!(none["codeRetour"], 20000, "{none}");
    // A malformed bound: refused, nothing answered.
    let (status, refused) = search(json!({"periodeDateHeureEtatCourantDu": "hier"})).await;
    assert_ne!(status, 200, "{refused}");
    assert!(
        refused["libelle"]
            .as_str()
            .unwrap_or_default()
            .contains("periodeDateHeureEtatCourantDu"),
        "{refused}"
    );
}
