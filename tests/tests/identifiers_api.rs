//! Markets and situations through the local API, against the Chorus Pro emulator's public
//! buyers (one per requirement rule, table in tests/src/sandbox/mod.rs), and what DynamoDB
//! holds afterwards.
//!
//! Every test works on its own random company SIRET. A company that needs the Chorus Pro
//! check is saved with `verify: false` and the seeded Rhône technical account: structure
//! lookups work with any accepted account, and nothing here writes to the emulator.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use gateway_tests::testkit::{Response, Stack, random_siret};
use serde_json::{Value, json};

const RHONE_LOGIN: &str = gateway_tests::testkit::seeded::RHONE.login;
const RHONE_PASSWORD: &str = gateway_tests::testkit::seeded::RHONE.password;

// Seeded public buyers.
const VILLEURBANNE: &str = "21690123100011"; // requires nothing
const ISERE: &str = "21380456000018"; // service code; DIRINFRA, SERV_TRAVAUX_EJ (needs an EJ), ANCIEN_SERVICE (inactive), FACTURES_PUBLIQUES
const REGION: &str = "23750001200016"; // commitment number; publishes 1300012345, 1300012399
const SYNDICAT: &str = "20001234200016"; // both; TRAVAUX; publishes 2200000001
const HOPITAL: &str = "26690789800016"; // either; ACHATS, ARCHIVES (inactive)
const MOE: &str = "79876543400013"; // a seeded structure, as project manager

type Item = HashMap<String, AttributeValue>;

fn bytes(value: &Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(value).unwrap())
}

fn market_path(siret: &str, market_ref: &str) -> String {
    format!("/v1/companies/{siret}/markets/{market_ref}")
}

fn situation_path(siret: &str, market_ref: &str, number: &str) -> String {
    format!("/v1/companies/{siret}/markets/{market_ref}/situations/{number}")
}

/// A company with no Chorus Pro account.
fn bare_company(stack: &Stack) -> (String, String) {
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    (siret, token)
}

/// A company whose Chorus Pro account is saved (not verified: see the module doc).
async fn configured_company(stack: &Stack) -> (String, String) {
    let (siret, token) = bare_company(stack);
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            bytes(&json!({
                "referent_email": "compta@entreprise-btp.fr",
                "technical_login": RHONE_LOGIN,
                "password": RHONE_PASSWORD,
                "password_confirmation": RHONE_PASSWORD,
                "verify": false
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (siret, token)
}

/// Everything the company's partition holds, in key order.
async fn snapshot(stack: &Stack, siret: &str) -> Vec<Item> {
    let mut items = stack.company_items(siret).await;
    items.sort_by_key(|i| sk(i).to_owned());
    items
}

fn sk(item: &Item) -> &str {
    item.get("SK")
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

fn s_attr<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

fn guards(items: &[Item]) -> Vec<&Item> {
    items
        .iter()
        .filter(|i| sk(i).starts_with("INVOICE_NUMBER#"))
        .collect()
}

async fn put_market(
    stack: &Stack,
    siret: &str,
    token: &str,
    market_ref: &str,
    body: Value,
) -> Response {
    stack
        .call(
            "PUT",
            &market_path(siret, market_ref),
            Some(token),
            bytes(&body),
        )
        .await
}

async fn put_situation(
    stack: &Stack,
    siret: &str,
    token: &str,
    market_ref: &str,
    number: &str,
    body: Value,
) -> Response {
    stack
        .call(
            "PUT",
            &situation_path(siret, market_ref, number),
            Some(token),
            bytes(&body),
        )
        .await
}

/// The answer is a refusal with this status and code, and the partition did not change.
async fn assert_refused_unchanged(
    stack: &Stack,
    siret: &str,
    before: &[Item],
    r: &Response,
    status: u16,
    code: &str,
) {
    assert_case_refused_unchanged(stack, siret, before, "refusal", r, status, code).await;
}

/// `assert_refused_unchanged` for the case `name` of a table, which its messages name.
async fn assert_case_refused_unchanged(
    stack: &Stack,
    siret: &str,
    before: &[Item],
    name: &str,
    r: &Response,
    status: u16,
    code: &str,
) {
    assert_eq!(r.status, status, "{name}: {}", r.text);
    assert_eq!(
        r.content_type, "application/problem+json",
        "{name}: {}",
        r.text
    );
    assert_eq!(r.json["code"], code, "{name}: {}", r.text);
    assert!(
        !r.json["detail"].as_str().unwrap_or("").is_empty(),
        "{name}: {}",
        r.text
    );
    assert_eq!(
        snapshot(stack, siret).await,
        before,
        "{name}: something was written after: {}",
        r.text
    );
}

// ---------------------------------------------------------------------------------------
// One test per buyer rule

#[tokio::test]
async fn buyer_without_requirements_is_checked_and_shown() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let r = put_market(
        &stack,
        &siret,
        &token,
        "voirie-2026",
        json!({"market_number": "2026-VOI-001", "buyer_siret": VILLEURBANNE, "label": "Voirie"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["framework"], "A1", "A1 is the default");
    let buyer = &r.json["buyer"];
    assert_eq!(buyer["status"], "checked");
    assert_eq!(buyer["name"], "COMMUNE DE VILLEURBANNE TEST");
    assert_eq!(buyer["chorus_structure_id"], 26_200_001);
    assert_eq!(buyer["requirement"], "none");
    assert_eq!(buyer["requires_service_code"], false);
    assert_eq!(buyer["requires_commitment_number"], false);
    assert!(buyer["checked_at"].is_string());

    let got = stack
        .call(
            "GET",
            &market_path(&siret, "voirie-2026"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json, r.json);

    // Saved again unchanged: checked again, 200, and the audit says so.
    let again = put_market(
        &stack,
        &siret,
        &token,
        "voirie-2026",
        json!({"market_number": "2026-VOI-001", "buyer_siret": VILLEURBANNE, "label": "Voirie"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["created_at"], r.json["created_at"]);
    let items = snapshot(&stack, &siret).await;
    let actions: Vec<&str> = items
        .iter()
        .filter(|i| sk(i).starts_with("AUDIT#") && !s_attr(i, "market_ref").is_empty())
        .map(|i| s_attr(i, "action"))
        .collect();
    assert_eq!(actions, vec!["market_created", "market_checked"]);
    let market = items
        .iter()
        .find(|i| sk(i) == "MARKET#voirie-2026")
        .unwrap();
    assert_eq!(s_attr(market, "entity"), "market");
    assert_eq!(s_attr(market, "buyer_check"), "checked");
}

#[tokio::test]
async fn buyer_requiring_a_service_code() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let before = snapshot(&stack, &siret).await;
    let body = json!({"market_number": "2026-TRV-014", "buyer_siret": ISERE, "framework": "A4",
                      "project_manager": {"siret": MOE}});
    let r = put_market(&stack, &siret, &token, "gymnase", body.clone()).await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 422, "buyer_requirements_unmet").await;
    assert_eq!(
        r.field_codes(),
        vec![("buyer_service_code".into(), "required_by_buyer".into())]
    );
    let message = r.json["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("DEPARTEMENT DE L'ISERE TEST"), "{message}");
    // The caller is told which codes exist; the reserved one is never offered.
    assert!(
        message.contains("DIRINFRA") && !message.contains("FACTURES_PUBLIQUES"),
        "{message}"
    );

    let mut with_code = body;
    with_code["buyer_service_code"] = json!("DIRINFRA");
    let r = put_market(&stack, &siret, &token, "gymnase", with_code).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["buyer"]["requirement"], "service_code");
    assert_eq!(r.json["buyer"]["requires_service_code"], true);
    assert_eq!(r.json["project_manager"]["siret"], MOE);
}

#[tokio::test]
async fn inactive_or_unknown_service_is_refused() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let before = snapshot(&stack, &siret).await;
    for (code, buyer, field_code) in [
        ("ANCIEN_SERVICE", ISERE, "inactive_service"),
        ("N_EXISTE_PAS", ISERE, "unknown_service"),
        ("ARCHIVES", HOPITAL, "inactive_service"),
    ] {
        let r = put_market(
            &stack,
            &siret,
            &token,
            "m1",
            json!({"market_number": "M-1", "buyer_siret": buyer, "buyer_service_code": code}),
        )
        .await;
        assert_refused_unchanged(&stack, &siret, &before, &r, 422, "service_inactive").await;
        assert_eq!(
            r.field_codes(),
            vec![("buyer_service_code".into(), field_code.into())],
            "{code}"
        );
        assert!(
            r.json["detail"].as_str().unwrap().contains(code),
            "{}",
            r.text
        );
    }
}

#[tokio::test]
async fn factures_publiques_is_refused_without_asking_chorus() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let before = snapshot(&stack, &siret).await;
    let r = put_market(
        &stack,
        &siret,
        &token,
        "m1",
        json!({"market_number": "M-1", "buyer_siret": ISERE, "buyer_service_code": "FACTURES_PUBLIQUES"}),
    )
    .await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 400, "validation_failed").await;
    assert_eq!(
        r.field_codes(),
        vec![("buyer_service_code".into(), "reserved_service_code".into())]
    );
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("entre entités publiques"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_service_may_require_a_commitment_number() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let before = snapshot(&stack, &siret).await;
    let body = json!({"market_number": "M-1", "buyer_siret": ISERE, "buyer_service_code": "SERV_TRAVAUX_EJ"});
    let r = put_market(&stack, &siret, &token, "m1", body.clone()).await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 422, "buyer_requirements_unmet").await;
    assert_eq!(
        r.field_codes(),
        vec![("commitment_number".into(), "required_by_buyer".into())]
    );
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("SERV_TRAVAUX_EJ"),
        "{}",
        r.text
    );

    // No commitment is issued to this company: the number is accepted, and said unconfirmed
    // (docs/chorus-pro.md#commitment-ej-search).
    let mut with_ej = body;
    with_ej["commitment_number"] = json!("EJ-2026-77");
    let r = put_market(&stack, &siret, &token, "m1", with_ej).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["buyer"]["requires_commitment_number"], true);
    assert_eq!(r.json["buyer"]["commitment_number_check"], "not_published");
}

/// A number not found among the commitments issued to the company is never refused: the
/// search cannot disprove it (docs/chorus-pro.md#commitment-ej-search). These random
/// companies are not attached to the Rhône account, so nothing is confirmed here; the
/// `found` case is in tests/tests/buyer_lookup.rs, with a company of its own.
#[tokio::test]
async fn buyer_requiring_a_commitment_number() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let before = snapshot(&stack, &siret).await;
    let r = put_market(
        &stack,
        &siret,
        &token,
        "region",
        json!({"market_number": "R-1", "buyer_siret": REGION}),
    )
    .await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 422, "buyer_requirements_unmet").await;
    assert_eq!(
        r.field_codes(),
        vec![("commitment_number".into(), "required_by_buyer".into())]
    );

    let r = put_market(
        &stack,
        &siret,
        &token,
        "region",
        json!({"market_number": "R-1", "buyer_siret": REGION, "commitment_number": "1300099999"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["buyer"]["commitment_number_check"], "not_published");

    let r = put_market(
        &stack,
        &siret,
        &token,
        "region",
        json!({"market_number": "R-1", "buyer_siret": REGION, "commitment_number": "1300012345"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["buyer"]["requirement"], "commitment_number");
    assert_eq!(r.json["buyer"]["commitment_number_check"], "not_published");
}

#[tokio::test]
async fn buyer_requiring_both() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let before = snapshot(&stack, &siret).await;
    let r = put_market(
        &stack,
        &siret,
        &token,
        "step",
        json!({"market_number": "S-1", "buyer_siret": SYNDICAT}),
    )
    .await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 422, "buyer_requirements_unmet").await;
    assert_eq!(
        r.field_codes(),
        vec![
            ("buyer_service_code".into(), "required_by_buyer".into()),
            ("commitment_number".into(), "required_by_buyer".into())
        ]
    );
    let r = put_market(
        &stack,
        &siret,
        &token,
        "step",
        json!({"market_number": "S-1", "buyer_siret": SYNDICAT, "buyer_service_code": "TRAVAUX"}),
    )
    .await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 422, "buyer_requirements_unmet").await;
    assert_eq!(
        r.field_codes(),
        vec![("commitment_number".into(), "required_by_buyer".into())]
    );
    let r = put_market(
        &stack,
        &siret,
        &token,
        "step",
        json!({"market_number": "S-1", "buyer_siret": SYNDICAT, "buyer_service_code": "TRAVAUX",
               "commitment_number": "2200000001"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.json["buyer"]["requirement"],
        "service_code_and_commitment_number"
    );
    assert_eq!(r.json["buyer"]["commitment_number_check"], "not_published");
}

#[tokio::test]
async fn buyer_requiring_either_one() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let before = snapshot(&stack, &siret).await;
    let r = put_market(
        &stack,
        &siret,
        &token,
        "chu",
        json!({"market_number": "H-1", "buyer_siret": HOPITAL}),
    )
    .await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 422, "buyer_requirements_unmet").await;
    assert_eq!(
        r.field_codes(),
        vec![("buyer_service_code".into(), "required_by_buyer".into())]
    );
    assert!(
        r.json["detail"].as_str().unwrap().contains("ACHATS"),
        "{}",
        r.text
    );

    let r = put_market(
        &stack,
        &siret,
        &token,
        "chu",
        json!({"market_number": "H-1", "buyer_siret": HOPITAL, "buyer_service_code": "ACHATS"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.json["buyer"]["requirement"],
        "service_code_or_commitment_number"
    );
    let r = put_market(
        &stack,
        &siret,
        &token,
        "chu-2",
        json!({"market_number": "H-2", "buyer_siret": HOPITAL, "commitment_number": "BC-2026-12"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn unknown_buyer_is_refused() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let before = snapshot(&stack, &siret).await;
    let nobody = random_siret();
    let r = put_market(
        &stack,
        &siret,
        &token,
        "m1",
        json!({"market_number": "M-1", "buyer_siret": nobody}),
    )
    .await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 422, "buyer_not_found").await;
    assert_eq!(
        r.field_codes(),
        vec![("buyer_siret".into(), "buyer_not_found".into())]
    );
    assert!(
        r.json["detail"].as_str().unwrap().contains(&nobody),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn company_without_settings_gets_an_unchecked_market_checked_once_configured() {
    let stack = Stack::connect().await;
    let (siret, token) = bare_company(&stack);
    // Even a buyer whose rules this market breaks: nothing can be checked yet.
    let body = json!({"market_number": "M-1", "buyer_siret": ISERE});
    let r = put_market(&stack, &siret, &token, "m1", body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["buyer"]["status"], "unchecked");
    assert!(
        r.json["buyer"]["note"]
            .as_str()
            .unwrap()
            .contains("Mon compte"),
        "{}",
        r.text
    );
    assert_eq!(r.json["buyer"]["requires_service_code"], Value::Null);

    // Once the account exists, saving it again checks it: here it must now be fixed.
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            bytes(&json!({"referent_email": "compta@entreprise-btp.fr", "technical_login": RHONE_LOGIN,
                          "password": RHONE_PASSWORD, "password_confirmation": RHONE_PASSWORD, "verify": false})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before = snapshot(&stack, &siret).await;
    let r = put_market(&stack, &siret, &token, "m1", body).await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 422, "buyer_requirements_unmet").await;
    let got = stack
        .call("GET", &market_path(&siret, "m1"), Some(&token), None)
        .await;
    assert_eq!(
        got.json["buyer"]["status"], "unchecked",
        "the refused save changed nothing"
    );
    let r = put_market(
        &stack,
        &siret,
        &token,
        "m1",
        json!({"market_number": "M-1", "buyer_siret": ISERE, "buyer_service_code": "DIRINFRA"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["buyer"]["status"], "checked");
}

// ---------------------------------------------------------------------------------------
// Bad input: a clear answer, nothing written

/// What a bad `PUT` must be answered.
enum Expected {
    /// `400 validation_failed` with, among its errors, this field's code and words of its
    /// message.
    Fault {
        field: &'static str,
        code: &'static str,
        words: &'static str,
    },
    /// `400 validation_failed` with this one error: its field, its code, words of its
    /// message.
    Only {
        field: &'static str,
        code: &'static str,
        words: &'static str,
    },
    /// `400 validation_failed` naming exactly these fields, in this order.
    Fields(&'static [&'static str]),
    /// Another refusal: its status and code.
    Refused(u16, &'static str),
}

fn fault(field: &'static str, code: &'static str, words: &'static str) -> Expected {
    Expected::Fault { field, code, words }
}

/// A bad market `PUT`: its path's market reference, its body, its answer.
struct MarketCase {
    name: &'static str,
    market_ref: String,
    body: Vec<u8>,
    expected: Expected,
}

fn market_case(
    name: &'static str,
    market_ref: &str,
    body: Value,
    expected: Expected,
) -> MarketCase {
    MarketCase {
        name,
        market_ref: market_ref.to_owned(),
        body: serde_json::to_vec(&body).unwrap(),
        expected,
    }
}

fn bad_market_cases() -> Vec<MarketCase> {
    let good = json!({"market_number": "M-1", "buyer_siret": VILLEURBANNE});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let case = market_case;
    vec![
        case(
            "encoded slash in the reference",
            "lot%2F2",
            good.clone(),
            fault("market_ref", "invalid_characters", "« / »"),
        ),
        case(
            "reference too long",
            &"a".repeat(65),
            good.clone(),
            fault("market_ref", "too_long", "65 caractères"),
        ),
        case(
            "framework M1",
            "m1",
            with("framework", json!("M1")),
            fault("framework", "unknown_framework", "réforme"),
        ),
        case(
            "framework B1",
            "m1",
            with("framework", json!("B1")),
            fault("framework", "unknown_framework", "réforme"),
        ),
        case(
            "framework A15",
            "m1",
            with("framework", json!("A15")),
            fault("framework", "unknown_framework", "maîtrise d'œuvre"),
        ),
        case(
            "works framework without MOE",
            "m1",
            with("framework", json!("A4")),
            fault("project_manager", "required", "maître d'œuvre"),
        ),
        case(
            "MOE outside works",
            "m1",
            with("project_manager", json!({"siret": MOE})),
            fault("project_manager", "not_applicable", "cadres de travaux"),
        ),
        case(
            "buyer SIRET with a wrong key",
            "m1",
            with("buyer_siret", json!("21690123100012")),
            fault("buyer_siret", "invalid_siret", "clé de contrôle"),
        ),
        case(
            "buyer SIRET of 13 digits",
            "m1",
            with("buyer_siret", json!("2169012310001")),
            fault("buyer_siret", "invalid_siret", "14 chiffres"),
        ),
        case(
            "no market number",
            "m1",
            json!({"buyer_siret": VILLEURBANNE}),
            fault("market_number", "required", "obligatoire"),
        ),
        case(
            "market number too long",
            "m1",
            with("market_number", json!("x".repeat(51))),
            fault("market_number", "too_long", "51 caractères"),
        ),
        case(
            "commitment number too long",
            "m1",
            with("commitment_number", json!("1".repeat(51))),
            fault("commitment_number", "too_long", "50 au plus"),
        ),
        case(
            "commitment number with a space",
            "m1",
            with("commitment_number", json!(" 130001")),
            fault("commitment_number", "invalid_characters", "espace"),
        ),
        case(
            "MOE SIRET with a wrong key",
            "m1",
            json!({"market_number": "M-1", "buyer_siret": VILLEURBANNE, "framework": "A4",
                   "project_manager": {"siret": "79876543400014"}}),
            fault("project_manager.siret", "invalid_siret", "Maître d'œuvre"),
        ),
        case(
            "unknown field",
            "m1",
            with("colour", json!("blue")),
            fault("colour", "unknown_field", "n'est pas reconnu"),
        ),
        case(
            "every fault at once",
            "m1",
            json!({"buyer_siret": "123", "framework": "S1", "label": "\tGymnase"}),
            Expected::Fields(&["market_number", "buyer_siret", "framework", "label"]),
        ),
        case(
            "wrong type",
            "m1",
            json!({"market_number": 12, "buyer_siret": VILLEURBANNE}),
            Expected::Refused(400, "malformed_json"),
        ),
        MarketCase {
            name: "broken JSON",
            market_ref: "m1".to_owned(),
            body: b"{\"market_number\":".to_vec(),
            expected: Expected::Refused(400, "malformed_json"),
        },
        // A raw "/" makes another path, which is no route.
        case(
            "raw slash in the reference",
            "lot/2",
            good.clone(),
            Expected::Refused(404, "not_found"),
        ),
    ]
}

/// The answer says what `expected` says, naming the case when it does not.
fn assert_answer(name: &str, r: &Response, expected: &Expected) {
    match expected {
        Expected::Fault { field, code, words } => {
            let error = r.json["errors"]
                .as_array()
                .and_then(|e| e.iter().find(|e| e["field"] == *field))
                .unwrap_or_else(|| panic!("{name}: no error on {field}: {}", r.text));
            assert_eq!(error["code"], *code, "{name}: {}", r.text);
            assert!(
                error["message"].as_str().unwrap().contains(words),
                "{name}: {field}: {}",
                r.text
            );
        }
        Expected::Only { field, code, words } => {
            assert_eq!(
                r.field_codes(),
                vec![((*field).to_owned(), (*code).to_owned())],
                "{name}: {}",
                r.text
            );
            assert!(
                r.json["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains(words),
                "{name}: {}",
                r.text
            );
        }
        Expected::Fields(fields) => {
            let got: Vec<String> = r.field_codes().into_iter().map(|(f, _)| f).collect();
            assert_eq!(got, *fields, "{name}: {}", r.text);
        }
        Expected::Refused(..) => {}
    }
}

impl Expected {
    fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            Expected::Fault { .. } | Expected::Only { .. } | Expected::Fields(_) => {
                (400, "validation_failed")
            }
            Expected::Refused(status, code) => (*status, code),
        }
    }
}

#[tokio::test]
async fn bad_market_input_gets_a_clear_answer_and_changes_nothing() {
    let stack = Stack::connect().await;
    let (siret, token) = configured_company(&stack).await;
    let before = snapshot(&stack, &siret).await;
    for case in bad_market_cases() {
        let r = stack
            .call(
                "PUT",
                &market_path(&siret, &case.market_ref),
                Some(&token),
                Some(case.body),
            )
            .await;
        let (status, code) = case.expected.status_and_code();
        assert_case_refused_unchanged(&stack, &siret, &before, case.name, &r, status, code).await;
        assert_answer(case.name, &r, &case.expected);
    }
}

/// A bad situation `PUT`, on the market `m1` unless said: its path, its body, its answer.
struct SituationCase {
    name: &'static str,
    market_ref: &'static str,
    number: &'static str,
    body: Value,
    expected: Expected,
}

fn situation_case(
    name: &'static str,
    number: &'static str,
    body: Value,
    expected: Expected,
) -> SituationCase {
    SituationCase {
        name,
        market_ref: "m1",
        number,
        body,
        expected,
    }
}

fn only(field: &'static str, code: &'static str, words: &'static str) -> Expected {
    Expected::Only { field, code, words }
}

fn bad_situation_cases() -> Vec<SituationCase> {
    let case = situation_case;
    let invoice = |number: &str| json!({"invoice_number": number});
    vec![
        case(
            "invoice number too long",
            "3",
            invoice("SIT-2026-00014-03-BIS"),
            only("invoice_number", "too_long", "21 caractères"),
        ),
        case(
            "accented letter",
            "3",
            invoice("SITUATION-é"),
            only("invoice_number", "invalid_characters", "« é »"),
        ),
        case(
            "hash",
            "3",
            invoice("SIT#3"),
            only("invoice_number", "invalid_characters", "« # »"),
        ),
        case(
            "semicolon",
            "3",
            invoice("SIT;3"),
            only("invoice_number", "invalid_characters", "« ; »"),
        ),
        case(
            "leading space",
            "3",
            invoice(" SIT-3"),
            only("invoice_number", "invalid_characters", "espace"),
        ),
        case(
            "trailing space",
            "3",
            invoice("SIT-3 "),
            only("invoice_number", "invalid_characters", "espace"),
        ),
        case(
            "empty invoice number",
            "3",
            invoice(""),
            only("invoice_number", "required", "obligatoire"),
        ),
        case(
            "no invoice number",
            "3",
            json!({}),
            only("invoice_number", "required", "obligatoire"),
        ),
        case(
            "situation 0",
            "0",
            invoice("SIT-3"),
            only("number", "out_of_range", "entre 1 et 999"),
        ),
        case(
            "situation 1000",
            "1000",
            invoice("SIT-3"),
            only("number", "out_of_range", "entre 1 et 999"),
        ),
        case(
            "situation not a number",
            "abc",
            invoice("SIT-3"),
            only("number", "invalid_number", "« abc »"),
        ),
        case(
            "month 13",
            "3",
            json!({"invoice_number": "SIT-3", "period": "2026-13"}),
            only("period", "invalid_period", "AAAA-MM"),
        ),
        case(
            "commitment number too long",
            "3",
            json!({"invoice_number": "SIT-3", "commitment_number": "9".repeat(51)}),
            only("commitment_number", "too_long", "51 caractères"),
        ),
        SituationCase {
            name: "path and body faults together",
            market_ref: "lot%2F2",
            number: "0",
            body: invoice("é"),
            expected: Expected::Fields(&["market_ref", "number", "invoice_number"]),
        },
        SituationCase {
            name: "no such market",
            market_ref: "m2",
            number: "1",
            body: invoice("SIT-1"),
            expected: Expected::Refused(404, "market_not_found"),
        },
    ]
}

#[tokio::test]
async fn bad_situation_input_gets_a_clear_answer_and_changes_nothing() {
    let stack = Stack::connect().await;
    let (siret, token) = bare_company(&stack);
    let r = put_market(
        &stack,
        &siret,
        &token,
        "m1",
        json!({"market_number": "M-1", "buyer_siret": VILLEURBANNE}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before = snapshot(&stack, &siret).await;
    for case in bad_situation_cases() {
        let r = put_situation(
            &stack,
            &siret,
            &token,
            case.market_ref,
            case.number,
            case.body,
        )
        .await;
        let (status, code) = case.expected.status_and_code();
        assert_case_refused_unchanged(&stack, &siret, &before, case.name, &r, status, code).await;
        assert_answer(case.name, &r, &case.expected);
    }
}

// ---------------------------------------------------------------------------------------
// Invoice numbers: unique in the company, frozen once transmitted

#[tokio::test]
async fn an_invoice_number_belongs_to_one_situation_and_a_change_frees_it() {
    let stack = Stack::connect().await;
    let (siret, token) = bare_company(&stack);
    for m in ["m1", "m2"] {
        let r = put_market(
            &stack,
            &siret,
            &token,
            m,
            json!({"market_number": m, "buyer_siret": VILLEURBANNE}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = put_situation(
        &stack,
        &siret,
        &token,
        "m1",
        "1",
        json!({"invoice_number": "F-2026-001", "period": "2026-10"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["transmission"]["state"], "not_transmitted");

    // Another situation, of another market, in another case: taken, the holder named.
    let before = snapshot(&stack, &siret).await;
    let r = put_situation(
        &stack,
        &siret,
        &token,
        "m2",
        "1",
        json!({"invoice_number": "f-2026-001"}),
    )
    .await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 409, "invoice_number_taken").await;
    let detail = r.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("situation n° 1 du marché « m1 »") && detail.contains("F-2026-001"),
        "{detail}"
    );

    // The same registration again changes nothing and says so with 200.
    let r = put_situation(
        &stack,
        &siret,
        &token,
        "m1",
        "1",
        json!({"invoice_number": "F-2026-001", "period": "2026-10"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(snapshot(&stack, &siret).await, before);

    // Renumbered: the old number is free at once.
    let r = put_situation(
        &stack,
        &siret,
        &token,
        "m1",
        "1",
        json!({"invoice_number": "F-2026-002", "period": "2026-10"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = put_situation(
        &stack,
        &siret,
        &token,
        "m2",
        "1",
        json!({"invoice_number": "F-2026-001"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let items = snapshot(&stack, &siret).await;
    let held: Vec<(&str, &str, &str)> = guards(&items)
        .into_iter()
        .map(|g| {
            (
                sk(g),
                s_attr(g, "market_ref"),
                g["situation"].as_n().unwrap().as_str(),
            )
        })
        .collect();
    assert_eq!(
        held,
        vec![
            ("INVOICE_NUMBER#F-2026-001", "m2", "1"),
            ("INVOICE_NUMBER#F-2026-002", "m1", "1")
        ]
    );
    let situation = items.iter().find(|i| sk(i) == "SITUATION#m1#001").unwrap();
    assert_eq!(s_attr(situation, "invoice_number"), "F-2026-002");
    assert_eq!(s_attr(situation, "transmission_state"), "not_transmitted");
}

#[tokio::test]
async fn twenty_concurrent_registrations_of_one_number_have_exactly_one_winner() {
    let stack = Stack::connect().await;
    let (siret, token) = bare_company(&stack);
    for m in ["m1", "m2"] {
        let r = put_market(
            &stack,
            &siret,
            &token,
            m,
            json!({"market_number": m, "buyer_siret": VILLEURBANNE}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let attempts: Vec<(String, String)> = (1..=20)
        .map(|i| {
            (
                if i % 2 == 0 { "m1" } else { "m2" }.to_owned(),
                i.to_string(),
            )
        })
        .collect();
    let answers = futures::future::join_all(attempts.iter().map(|(m, n)| {
        put_situation(
            &stack,
            &siret,
            &token,
            m,
            n,
            json!({"invoice_number": "SIT-RACE-01"}),
        )
    }))
    .await;
    let winners: Vec<&(String, String)> = attempts
        .iter()
        .zip(&answers)
        .filter(|(_, r)| r.status == 201)
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let (winner_market, winner_number) = winners[0];
    for r in answers.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(r.json["code"], "invoice_number_taken");
        let detail = r.json["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!(
                "situation n° {winner_number} du marché « {winner_market} »"
            )),
            "{detail}"
        );
    }
    // DynamoDB afterwards: one guard, held by the winner, and only the winner's situation.
    let items = snapshot(&stack, &siret).await;
    let guard = guards(&items);
    assert_eq!(guard.len(), 1);
    assert_eq!(s_attr(guard[0], "market_ref"), winner_market);
    assert_eq!(guard[0]["situation"].as_n().unwrap(), winner_number);
    let situations: Vec<&str> = items
        .iter()
        .map(sk)
        .filter(|k| k.starts_with("SITUATION#"))
        .collect();
    assert_eq!(
        situations,
        vec![format!(
            "SITUATION#{winner_market}#{:03}",
            winner_number.parse::<u16>().unwrap()
        )]
    );
    let audits = items
        .iter()
        .filter(|i| s_attr(i, "action") == "situation_created")
        .count();
    assert_eq!(audits, 1);
}

#[tokio::test]
async fn concurrent_renumbering_of_one_situation_leaves_one_guard() {
    let stack = Stack::connect().await;
    let (siret, token) = bare_company(&stack);
    let r = put_market(
        &stack,
        &siret,
        &token,
        "m1",
        json!({"market_number": "M", "buyer_siret": VILLEURBANNE}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let numbers: Vec<String> = (1..=10).map(|i| format!("N-{i:02}")).collect();
    let answers = futures::future::join_all(numbers.iter().map(|n| {
        put_situation(
            &stack,
            &siret,
            &token,
            "m1",
            "1",
            json!({"invoice_number": n}),
        )
    }))
    .await;
    for r in &answers {
        // Each either wins in turn (201 / 200) or gives up after its retries (409 conflict).
        assert!(matches!(r.status, 200 | 201 | 409), "{}", r.text);
    }
    assert_eq!(answers.iter().filter(|r| r.status == 201).count(), 1);
    let items = snapshot(&stack, &siret).await;
    let guard = guards(&items);
    let situation = items.iter().find(|i| sk(i) == "SITUATION#m1#001").unwrap();
    assert_eq!(guard.len(), 1, "every replaced number was freed");
    assert_eq!(
        sk(guard[0]),
        format!("INVOICE_NUMBER#{}", s_attr(situation, "invoice_number"))
    );
}

/// What the transmission function will do: change the situation's transmission attributes,
/// incrementing its revision.
async fn set_transmission(
    stack: &Stack,
    siret: &str,
    sk: &str,
    state: &str,
    chorus_status: Option<&str>,
) {
    let mut update = stack
        .ddb
        .update_item()
        .table_name(&stack.table)
        .key("PK", AttributeValue::S(format!("COMPANY#{siret}")))
        .key("SK", AttributeValue::S(sk.to_owned()))
        .update_expression(
            "SET transmission_state = :state, flux_number = :flux, chorus_invoice_id = :id, revision = revision + :one",
        )
        .expression_attribute_values(":state", AttributeValue::S(state.into()))
        .expression_attribute_values(":flux", AttributeValue::S("CPP-FLUX-0001".into()))
        .expression_attribute_values(":id", AttributeValue::N("4242".into()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()));
    if let Some(status) = chorus_status {
        update = update
            .update_expression(
                "SET transmission_state = :state, flux_number = :flux, chorus_invoice_id = :id, chorus_status = :status, revision = revision + :one",
            )
            .expression_attribute_values(":status", AttributeValue::S(status.into()));
    }
    update
        .send()
        .await
        .unwrap_or_else(|e| panic!("update failed: {e:?}"));
}

#[tokio::test]
async fn transmitted_identifiers_are_frozen_until_chorus_pro_rejects_the_invoice() {
    let stack = Stack::connect().await;
    let (siret, token) = bare_company(&stack);
    let r = put_market(
        &stack,
        &siret,
        &token,
        "m1",
        json!({"market_number": "M", "buyer_siret": VILLEURBANNE}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let body = json!({"invoice_number": "SIT-2026-03", "period": "2026-11"});
    let r = put_situation(&stack, &siret, &token, "m1", "3", body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);

    set_transmission(
        &stack,
        &siret,
        "SITUATION#m1#003",
        "integrated",
        Some("MISE_A_DISPOSITION"),
    )
    .await;
    let before = snapshot(&stack, &siret).await;
    for change in [
        json!({"invoice_number": "SIT-2026-03B", "period": "2026-11"}),
        json!({"invoice_number": "SIT-2026-03", "period": "2026-12"}),
        json!({"invoice_number": "SIT-2026-03", "period": "2026-11", "commitment_number": "EJ-1"}),
    ] {
        let r = put_situation(&stack, &siret, &token, "m1", "3", change).await;
        assert_refused_unchanged(&stack, &siret, &before, &r, 409, "already_transmitted").await;
        assert!(
            r.json["detail"]
                .as_str()
                .unwrap()
                .contains("déjà été transmise"),
            "{}",
            r.text
        );
    }
    // The identifiers as they are: nothing to change, 200.
    let r = put_situation(&stack, &siret, &token, "m1", "3", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["transmission"]["state"], "integrated");
    assert_eq!(r.json["transmission"]["flux_number"], "CPP-FLUX-0001");

    // Rejected by the buyer: the same number is refused, a new one reopens the situation.
    set_transmission(
        &stack,
        &siret,
        "SITUATION#m1#003",
        "integrated",
        Some("REJETEE"),
    )
    .await;
    let got = stack
        .call(
            "GET",
            &situation_path(&siret, "m1", "3"),
            Some(&token),
            None,
        )
        .await;
    assert!(
        got.json["next_action"]
            .as_str()
            .unwrap()
            .contains("nouveau numéro"),
        "{}",
        got.text
    );
    let before = snapshot(&stack, &siret).await;
    let r = put_situation(&stack, &siret, &token, "m1", "3", body.clone()).await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 409, "already_transmitted").await;
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("ne peut pas être réutilisé"),
        "{}",
        r.text
    );

    let r = put_situation(
        &stack,
        &siret,
        &token,
        "m1",
        "3",
        json!({"invoice_number": "SIT-2026-03B", "period": "2026-11"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["invoice_number"], "SIT-2026-03B");
    assert_eq!(r.json["transmission"]["state"], "not_transmitted");
    assert_eq!(r.json["transmission"]["flux_number"], Value::Null);
    assert_eq!(
        r.json["previous_submissions"][0]["invoice_number"],
        "SIT-2026-03"
    );
    assert_eq!(
        r.json["previous_submissions"][0]["chorus_status"],
        "REJETEE"
    );
    assert_eq!(r.json["previous_submissions"][0]["chorus_invoice_id"], 4242);
    assert_eq!(r.json["next_action"], Value::Null);

    // The rejected number stays held: no other situation may take it.
    let before = snapshot(&stack, &siret).await;
    let r = put_situation(
        &stack,
        &siret,
        &token,
        "m1",
        "4",
        json!({"invoice_number": "SIT-2026-03"}),
    )
    .await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 409, "invoice_number_taken").await;
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("rejeté par Chorus Pro"),
        "{}",
        r.text
    );
    let items = snapshot(&stack, &siret).await;
    let retired = items
        .iter()
        .find(|i| sk(i) == "INVOICE_NUMBER#SIT-2026-03")
        .unwrap();
    assert_eq!(retired["retired"].as_bool().ok(), Some(&true));
    assert_eq!(guards(&items).len(), 2);
}

// ---------------------------------------------------------------------------------------
// Reading

#[tokio::test]
async fn lists_are_paginated_with_an_opaque_cursor() {
    let stack = Stack::connect().await;
    let (siret, token) = bare_company(&stack);
    let refs = ["a-1", "b.2", "c_3", "d-4", "e-5"];
    for m in refs {
        let r = put_market(
            &stack,
            &siret,
            &token,
            m,
            json!({"market_number": m, "buyer_siret": VILLEURBANNE}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => format!("/v1/companies/{siret}/markets?limit=2"),
            Some(c) => format!("/v1/companies/{siret}/markets?limit=2&cursor={c}"),
        };
        let r = stack.call("GET", &path, Some(&token), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        for m in r.json["markets"].as_array().unwrap() {
            seen.push(m["market_ref"].as_str().unwrap().to_owned());
        }
        match r.json["next_cursor"].as_str() {
            Some(c) => {
                assert!(!c.contains("a-1") && !c.contains("MARKET"), "opaque: {c}");
                cursor = Some(c.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen, refs);
    assert_eq!(pages, 3, "the last full page knows it is the last");

    for n in 1..=3 {
        let r = put_situation(
            &stack,
            &siret,
            &token,
            "a-1",
            &n.to_string(),
            json!({"invoice_number": format!("P-{n}")}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = stack
        .call(
            "GET",
            &format!("/v1/companies/{siret}/markets/a-1/situations?limit=2"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let numbers: Vec<u64> = r.json["situations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2]);
    let next = r.json["next_cursor"].as_str().unwrap().to_owned();
    let r = stack
        .call(
            "GET",
            &format!("/v1/companies/{siret}/markets/a-1/situations?limit=2&cursor={next}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.json["situations"][0]["number"], 3);
    assert_eq!(r.json["next_cursor"], Value::Null);
    // A market's situations only, and a market cursor is no situation cursor.
    let r = stack
        .call(
            "GET",
            &format!("/v1/companies/{siret}/markets/b.2/situations"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.json["situations"], json!([]));
    let market_cursor = {
        let r = stack
            .call(
                "GET",
                &format!("/v1/companies/{siret}/markets?limit=1"),
                Some(&token),
                None,
            )
            .await;
        r.json["next_cursor"].as_str().unwrap().to_owned()
    };
    let r = stack
        .call(
            "GET",
            &format!("/v1/companies/{siret}/markets/a-1/situations?cursor={market_cursor}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.field_codes(),
        vec![("cursor".into(), "invalid_cursor".into())]
    );
    let r = stack
        .call(
            "GET",
            &format!("/v1/companies/{siret}/markets?limit=101"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        r.field_codes(),
        vec![("limit".into(), "invalid_limit".into())]
    );
}

#[tokio::test]
async fn unknown_markets_and_situations_and_other_companies() {
    let stack = Stack::connect().await;
    let (siret, token) = bare_company(&stack);
    let r = stack
        .call("GET", &market_path(&siret, "nope"), Some(&token), None)
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (404, Some("market_not_found")),
        "{}",
        r.text
    );
    let r = stack
        .call(
            "GET",
            &situation_path(&siret, "nope", "1"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.json["code"], "market_not_found", "{}", r.text);
    let r = stack
        .call(
            "GET",
            &format!("/v1/companies/{siret}/markets/nope/situations"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.json["code"], "market_not_found", "{}", r.text);
    let r = put_market(
        &stack,
        &siret,
        &token,
        "m1",
        json!({"market_number": "M", "buyer_siret": VILLEURBANNE}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = stack
        .call(
            "GET",
            &situation_path(&siret, "m1", "7"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (404, Some("situation_not_found")),
        "{}",
        r.text
    );

    // Another company's token: 403, whatever exists.
    let (other, other_token) = bare_company(&stack);
    for path in [
        market_path(&siret, "m1"),
        format!("/v1/companies/{siret}/markets"),
        situation_path(&siret, "m1", "1"),
    ] {
        let r = stack.call("GET", &path, Some(&other_token), None).await;
        assert_eq!(r.status, 403, "{}", r.text);
    }
    let before = snapshot(&stack, &siret).await;
    let r = put_market(
        &stack,
        &siret,
        &other_token,
        "m2",
        json!({"market_number": "M", "buyer_siret": VILLEURBANNE}),
    )
    .await;
    assert_refused_unchanged(&stack, &siret, &before, &r, 403, "forbidden").await;
    assert!(snapshot(&stack, &other).await.is_empty());
    let r = stack
        .call("GET", &format!("/v1/companies/{siret}/markets"), None, None)
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
}
