//! Credentials tested against Chorus Pro (the stack's emulator) before they are saved, and
//! on demand (`POST …/chorus-account/verify`).

use std::sync::Arc;

use gateway_tests::sandbox::{SandboxConfig, spawn};
use gateway_tests::testkit::{
    Stack, lambda_request, random_siret, response_json, sandbox_url, stack_config,
};
use serde_json::{Value, json};

// Seeded in tests/fixtures/chorus-sandbox-seed.json (table in tests/src/sandbox/mod.rs).
const RHONE_SIRET: &str = gateway_tests::testkit::seeded::RHONE.siret;
const RHONE_LOGIN: &str = gateway_tests::testkit::seeded::RHONE.login;
const RHONE_PASSWORD: &str = gateway_tests::testkit::seeded::RHONE.password;
const ALPES_SECOND_SIRET: &str = gateway_tests::testkit::seeded::ALPES_SECOND_SIRET;
const ALPES_LOGIN: &str = gateway_tests::testkit::seeded::ALPES.login;
const ALPES_PASSWORD: &str = gateway_tests::testkit::seeded::ALPES.password;
const JURA_SIRET: &str = gateway_tests::testkit::seeded::JURA.siret;
const JURA_LOGIN: &str = gateway_tests::testkit::seeded::JURA.login;
const JURA_PASSWORD: &str = gateway_tests::testkit::seeded::JURA.password;
const EST_SIRET: &str = "44455566800011";
const EST_LOGIN: &str = "TECH_1_tp-est@cpro.fr";
const EST_PASSWORD: &str = "Est-Tech-2026!";

fn body(login: &str, password: &str) -> Option<Vec<u8>> {
    Some(
        serde_json::to_vec(&json!({
            "referent_email": "compta@entreprise-btp.fr",
            "technical_login": login,
            "password": password,
            "password_confirmation": password
        }))
        .unwrap(),
    )
}

async fn fresh(stack: &Stack, siret: &str) -> String {
    let token = stack.token(&[siret]);
    stack
        .call("DELETE", &Stack::account_path(siret), Some(&token), None)
        .await;
    token
}

async fn set_sandbox_password(login: &str, password: &str) {
    let r = gateway_tests::testkit::http_client()
        .patch(format!("{}/_admin/accounts/{login}", sandbox_url()))
        .json(&json!({"password": password}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "admin PATCH: {}", r.status());
}

#[tokio::test]
async fn a_good_account_is_saved_as_valid() {
    let stack = Stack::connect().await;
    let token = fresh(&stack, RHONE_SIRET).await;
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(RHONE_SIRET),
            Some(&token),
            body(RHONE_LOGIN, RHONE_PASSWORD),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["credentials_status"], "valid");
    assert!(r.json["verified_at"].is_string());
    assert!(!r.text.contains(RHONE_PASSWORD));
}

#[tokio::test]
async fn an_account_with_two_structures_is_valid_for_each() {
    let stack = Stack::connect().await;
    let token = fresh(&stack, ALPES_SECOND_SIRET).await;
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(ALPES_SECOND_SIRET),
            Some(&token),
            body(ALPES_LOGIN, ALPES_PASSWORD),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["credentials_status"], "valid");
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_nothing_saved() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(ALPES_LOGIN, "Pas-Le-Bon-NeverLogged"),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json["code"], "credentials_rejected");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("mot de passe incorrect"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("NeverLogged"));
    assert!(stack.company_items(&siret).await.is_empty());
    assert!(!stack.secret_exists(&siret).await);
}

#[tokio::test]
async fn an_expired_password_is_refused() {
    let stack = Stack::connect().await;
    let token = fresh(&stack, JURA_SIRET).await;
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(JURA_SIRET),
            Some(&token),
            body(JURA_LOGIN, JURA_PASSWORD),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json["code"], "credentials_rejected");
    assert!(
        r.json["detail"].as_str().unwrap().contains("expiré"),
        "{}",
        r.text
    );
    assert!(stack.account_item(JURA_SIRET).await.is_none());
}

#[tokio::test]
async fn an_account_not_attached_to_the_siret_is_refused_and_says_which() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(RHONE_LOGIN, RHONE_PASSWORD),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json["code"], "credentials_rejected");
    let detail = r.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("n'est pas rattaché")
            && detail.contains(&siret)
            && detail.contains(RHONE_SIRET),
        "{detail}"
    );
    assert!(stack.company_items(&siret).await.is_empty());
    assert!(!stack.secret_exists(&siret).await);
}

#[tokio::test]
async fn verify_on_demand_follows_what_chorus_pro_says() {
    let stack = Stack::connect().await;
    set_sandbox_password(EST_LOGIN, EST_PASSWORD).await;
    let token = fresh(&stack, EST_SIRET).await;
    let path = Stack::account_path(EST_SIRET);
    let verify_path = format!("{path}/verify");
    let r = stack
        .call("PUT", &path, Some(&token), body(EST_LOGIN, EST_PASSWORD))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let v = stack.call("POST", &verify_path, Some(&token), None).await;
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.json["credentials_status"], "valid");
    // The answer is the account as stored, verdict included.
    let g = stack.call("GET", &path, Some(&token), None).await;
    assert_eq!(v.json, g.json);

    // The manager renews the password in Chorus Pro; the gateway still has the old one.
    let renewed = "Est-Renouvele-2027!";
    set_sandbox_password(EST_LOGIN, renewed).await;
    let v = stack.call("POST", &verify_path, Some(&token), None).await;
    assert_eq!(v.status, 422, "{}", v.text);
    assert_eq!(v.json["code"], "credentials_rejected");
    let g = stack.call("GET", &path, Some(&token), None).await;
    assert_eq!(g.json["credentials_status"], "rejected");
    let actions: Vec<String> = stack
        .company_items(EST_SIRET)
        .await
        .iter()
        .filter_map(|i| i.get("action").and_then(|a| a.as_s().ok()).cloned())
        .collect();
    assert!(
        actions.contains(&"credentials_rejected".to_owned()),
        "{actions:?}"
    );

    // A save that keeps the refused password is refused too, and changes nothing.
    let keep = serde_json::to_vec(
        &json!({"referent_email": "autre@entreprise-btp.fr", "technical_login": EST_LOGIN}),
    )
    .unwrap();
    let k = stack.call("PUT", &path, Some(&token), Some(keep)).await;
    assert_eq!(k.status, 422, "{}", k.text);
    assert_eq!(
        stack.call("GET", &path, Some(&token), None).await.json["referent_email"],
        "compta@entreprise-btp.fr"
    );

    // The new password is saved: valid again.
    let s = stack
        .call("PUT", &path, Some(&token), body(EST_LOGIN, renewed))
        .await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(s.json["credentials_status"], "valid");
    set_sandbox_password(EST_LOGIN, EST_PASSWORD).await;

    // Nothing configured: 404.
    let other = random_siret();
    let n = stack
        .call(
            "POST",
            &format!("{}/verify", Stack::account_path(&other)),
            Some(&stack.token(&[&other])),
            None,
        )
        .await;
    assert_eq!(n.status, 404);
    assert_eq!(n.json["code"], "company_not_configured");
}

#[tokio::test]
async fn verify_false_saves_unverified() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    let mut b: Value =
        serde_json::from_slice(&body(RHONE_LOGIN, "Whatever-NeverLogged-1").unwrap()).unwrap();
    b["verify"] = json!(false);
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            Some(serde_json::to_vec(&b).unwrap()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["credentials_status"], "unverified");
}

/// Chorus Pro unreachable, or answering 503 after the client's retries: 503
/// `chorus_unavailable`, nothing saved. In-process, with the function pointed at a closed
/// port and at an emulator of its own (so no other test sees the fault).
#[tokio::test]
async fn chorus_pro_down_saves_nothing() {
    let _ = Stack::connect().await;
    let sandbox = spawn(SandboxConfig::default()).await;
    let admin = gateway_tests::testkit::http_client();
    let fault = admin
        .post(format!("{}/_admin/faults", sandbox.base_url()))
        .json(&json!({"path": "/cpro/transverses/v1/recuperer/structures/actives/fournisseur", "kind": "status", "status": 503}))
        .send()
        .await
        .unwrap();
    assert!(fault.status().is_success());
    let down_api = sandbox.api_url();
    let down_token = sandbox.token_url();
    for (api, token_url) in [
        (
            "http://127.0.0.1:9/cpro",
            "http://127.0.0.1:9/api/oauth/token",
        ),
        (down_api.as_str(), down_token.as_str()),
    ] {
        let config = stack_config(&[("CHORUS_API_URL", api), ("PISTE_TOKEN_URL", token_url)]);
        let sdk = shared::aws::sdk_config().await;
        let state = Arc::new(company_settings::State::from_sdk(config, &sdk));
        let siret = random_siret();
        let path = Stack::account_path(&siret);
        let request = lambda_request(
            "PUT /v1/companies/{siret}/chorus-account",
            &path,
            &[("siret", &siret)],
            &[&siret],
            Some(
                &json!({"referent_email": "compta@entreprise-btp.fr", "technical_login": RHONE_LOGIN, "password": RHONE_PASSWORD, "password_confirmation": RHONE_PASSWORD}),
            ),
        );
        let (status, answer) = response_json(&company_settings::handle(&state, request).await);
        assert_eq!(status, 503, "{api}: {answer}");
        assert_eq!(answer["code"], "chorus_unavailable");
        let stack = Stack::connect().await;
        assert!(stack.company_items(&siret).await.is_empty());
        assert!(!stack.secret_exists(&siret).await);
    }
}
