//! Saving touches two services (Secrets Manager, then DynamoDB). A fault injected at each
//! call — before the request leaves, or after the service processed it and the answer was
//! lost — must leave the account readable as either the old settings with the old password
//! or the new settings with the new password, never a mix; and the next save must work.
//!
//! The handler runs in-process against moto, with SDK interceptors that fail one chosen
//! operation on demand (moto itself cannot fail on demand).

use company_settings::State;
use gateway_tests::testkit::{
    AwsFaults, Phase, api_request, clients_with_faults, random_siret, test_password,
};
use lambda_http::Body;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::domain::{Siret, SiretCheck};

async fn state_with(faults: &AwsFaults) -> State {
    let sdk = shared::aws::sdk_config().await;
    let config = gateway_tests::testkit::stack_config(&[]);
    let (store, secrets) = clients_with_faults(&sdk, &config, faults);
    State::from_clients(config, store, secrets)
}

async fn call(state: &State, method: &str, siret: &str, body: Option<&Value>) -> (u16, Value) {
    let route = format!("{method} /v1/companies/{{siret}}/chorus-account");
    let path = format!("/v1/companies/{siret}/chorus-account");
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let caller = ("fault-test", &[siret][..]);
    let request = api_request(&route, &path, &[("siret", siret)], caller, &bytes, &[]);
    let response = company_settings::handle(state, request).await;
    let status = response.status().as_u16();
    let text = match response.body() {
        Body::Text(t) => t.clone(),
        _ => String::new(),
    };
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn settings(email: &str, password: &str) -> Value {
    json!({
        "referent_email": email,
        "technical_login": "TECH_00000000018259@cpp2017.fr",
        "password": password,
        "password_confirmation": password,
        "verify": false
    })
}

/// What a reader sees: the account view and the password at the version the item names.
async fn observed(state: &State, siret: &str) -> Option<(String, String)> {
    let (status, view) = call(state, "GET", siret, None).await;
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{view}");
    let s = Siret::parse(siret, SiretCheck::ShapeOnly).unwrap();
    let account = state.store.get_account(&s).await.unwrap().unwrap();
    let stored = state
        .secrets
        .technical_account(&s, &account.password_version)
        .await
        .unwrap();
    Some((
        view["referent_email"].as_str().unwrap().to_owned(),
        stored.password.expose_secret().to_owned(),
    ))
}

/// What the console shows: `AWSCURRENT` is on the version the account item names, and
/// `AWSPENDING`, if anywhere, on that version too (no change left half-way).
async fn assert_labels_follow_the_item(state: &State, siret: &str, context: &str) {
    let s = Siret::parse(siret, SiretCheck::ShapeOnly).unwrap();
    let named = state
        .store
        .get_account(&s)
        .await
        .unwrap()
        .unwrap()
        .password_version;
    let sdk = shared::aws::sdk_config().await;
    let stages = aws_sdk_secretsmanager::Client::new(&sdk)
        .describe_secret()
        .secret_id(state.secrets.company_secret_name(&s))
        .send()
        .await
        .unwrap()
        .version_ids_to_stages
        .unwrap_or_default();
    for (version, labels) in &stages {
        for label in ["AWSCURRENT", "AWSPENDING"] {
            if labels.iter().any(|l| l == label) {
                assert_eq!(
                    version, &named,
                    "{context}: {label} on another version: {stages:?}"
                );
            }
        }
    }
    assert!(
        stages
            .get(&named)
            .is_some_and(|l| l.iter().any(|l| l == "AWSCURRENT")),
        "{context}: AWSCURRENT is not on the item's version: {stages:?}"
    );
}

const UPDATE_STEPS: &[&str] = &[
    "GetItem",
    "PutSecretValue",
    "TransactWriteItems",
    "UpdateSecretVersionStage",
];
const CREATE_STEPS: &[&str] = &["GetItem", "CreateSecret", "TransactWriteItems"];

#[tokio::test]
async fn a_fault_at_any_step_of_an_update_never_mixes_old_and_new() {
    let faults = AwsFaults::default();
    let state = state_with(&faults).await;
    for step in UPDATE_STEPS {
        for phase in [Phase::BeforeSend, Phase::AnswerLost] {
            let siret = random_siret();
            let (old_pw, new_pw) = (test_password(), test_password());
            let (s, v) = call(
                &state,
                "PUT",
                &siret,
                Some(&settings("ancien@entreprise-btp.fr", &old_pw)),
            )
            .await;
            assert_eq!(s, 201, "{v}");

            faults.arm(step, phase);
            let (status, body) = call(
                &state,
                "PUT",
                &siret,
                Some(&settings("nouveau@entreprise-btp.fr", &new_pw)),
            )
            .await;
            assert!(faults.fired(), "{step} {phase:?} was never called");
            assert!(!body.to_string().contains(&new_pw) && !body.to_string().contains(&old_pw));
            let seen = observed(&state, &siret)
                .await
                .expect("account still configured");
            let old = ("ancien@entreprise-btp.fr".to_owned(), old_pw.clone());
            let new = ("nouveau@entreprise-btp.fr".to_owned(), new_pw.clone());
            assert!(
                seen == old || seen == new,
                "{step} {phase:?}: mixed state {:?}",
                seen.0
            );
            // A 2xx answer means the new settings are in force; an error, that the caller
            // may retry (and the state is one of the two).
            if status == 200 {
                assert_eq!(seen, new, "{step} {phase:?}");
            } else {
                assert_eq!(status, 503, "{step} {phase:?}: {body}");
                assert_eq!(body["code"], "service_unavailable");
            }

            // The next save works and is consistent.
            let next_pw = test_password();
            let (s, v) = call(
                &state,
                "PUT",
                &siret,
                Some(&settings("suivant@entreprise-btp.fr", &next_pw)),
            )
            .await;
            assert_eq!(s, 200, "{step} {phase:?}: {v}");
            assert_eq!(
                observed(&state, &siret).await,
                Some(("suivant@entreprise-btp.fr".to_owned(), next_pw))
            );
            assert_labels_follow_the_item(&state, &siret, &format!("{step} {phase:?}")).await;
        }
    }
}

#[tokio::test]
async fn a_fault_at_any_step_of_a_first_save_leaves_nothing_or_everything() {
    let faults = AwsFaults::default();
    let state = state_with(&faults).await;
    for step in CREATE_STEPS {
        for phase in [Phase::BeforeSend, Phase::AnswerLost] {
            let siret = random_siret();
            let pw = test_password();
            faults.arm(step, phase);
            let (status, body) = call(
                &state,
                "PUT",
                &siret,
                Some(&settings("compta@entreprise-btp.fr", &pw)),
            )
            .await;
            assert!(faults.fired(), "{step} {phase:?} was never called");
            match observed(&state, &siret).await {
                None => assert_eq!(status, 503, "{step} {phase:?}: {body}"),
                Some(seen) => {
                    assert_eq!(
                        seen,
                        ("compta@entreprise-btp.fr".to_owned(), pw.clone()),
                        "{step} {phase:?}"
                    );
                    assert!(status == 201 || status == 503, "{step} {phase:?}: {status}");
                }
            }
            // Saving again (the caller's retry) works.
            let (s, v) = call(
                &state,
                "PUT",
                &siret,
                Some(&settings("compta@entreprise-btp.fr", &pw)),
            )
            .await;
            assert!(s == 200 || s == 201, "{step} {phase:?}: {v}");
            assert_eq!(
                observed(&state, &siret).await,
                Some(("compta@entreprise-btp.fr".to_owned(), pw))
            );
        }
    }
}

#[tokio::test]
async fn a_delete_that_stops_half_way_is_finished_by_the_next_delete() {
    let faults = AwsFaults::default();
    let state = state_with(&faults).await;
    let siret = random_siret();
    let (s, _) = call(
        &state,
        "PUT",
        &siret,
        Some(&settings("compta@entreprise-btp.fr", &test_password())),
    )
    .await;
    assert_eq!(s, 201);
    faults.arm("DeleteSecret", Phase::BeforeSend);
    let (s, _) = call(&state, "DELETE", &siret, None).await;
    assert_eq!(s, 204);
    assert!(faults.fired());
    assert_eq!(call(&state, "GET", &siret, None).await.0, 404);
    let name = state
        .secrets
        .company_secret_name(&Siret::parse(&siret, SiretCheck::ShapeOnly).unwrap());
    let sdk = shared::aws::sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    assert!(
        sm.describe_secret()
            .secret_id(&name)
            .send()
            .await
            .unwrap()
            .deleted_date
            .is_none()
    );
    // The retry answers 404 and schedules the leftover secret's deletion.
    let (s, _) = call(&state, "DELETE", &siret, None).await;
    assert_eq!(s, 404);
    assert!(
        sm.describe_secret()
            .secret_id(&name)
            .send()
            .await
            .unwrap()
            .deleted_date
            .is_some()
    );
}

/// The fewest calls a save needs: a new company's secret is created current; a new
/// password is staged, named by the account item, then promoted in one call.
#[tokio::test]
async fn a_save_makes_the_fewest_calls() {
    let faults = AwsFaults::default();
    let state = state_with(&faults).await;
    let siret = random_siret();
    let (s, v) = call(
        &state,
        "PUT",
        &siret,
        Some(&settings("compta@entreprise-btp.fr", &test_password())),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        faults.sent(),
        ["GetItem", "CreateSecret", "TransactWriteItems"]
    );
    let (s, v) = call(
        &state,
        "PUT",
        &siret,
        Some(&settings("compta@entreprise-btp.fr", &test_password())),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        faults.sent(),
        [
            "GetItem",
            "PutSecretValue",
            "TransactWriteItems",
            "UpdateSecretVersionStage"
        ]
    );
    assert_labels_follow_the_item(&state, &siret, "second save").await;
}
