//! The company settings routes through the local API, against moto: answers, what is
//! stored where, and that bad input changes nothing.

use gateway_tests::testkit::{Response, Stack, random_siret, test_password};
use serde_json::{Value, json};

fn body(v: &Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(v).unwrap())
}

fn settings(password: &str) -> Value {
    json!({
        "referent_email": "compta@entreprise-btp.fr",
        "technical_login": "TECH_00000000018259@cpp2017.fr",
        "password": password,
        "password_confirmation": password,
        "verify": false
    })
}

/// Nothing at all for this SIRET: no item, no secret.
async fn assert_nothing_written(stack: &Stack, siret: &str) {
    assert!(
        stack.company_items(siret).await.is_empty(),
        "items were written for {siret}"
    );
    assert!(
        !stack.secret_exists(siret).await,
        "a secret was written for {siret}"
    );
}

#[tokio::test]
async fn first_save_stores_password_in_secrets_manager_only() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    let password = test_password();

    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&settings(&password)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.content_type, "application/json");
    assert!(!r.text.contains(&password));
    assert_eq!(r.json["siret"], siret.as_str());
    assert_eq!(r.json["referent_email"], "compta@entreprise-btp.fr");
    assert_eq!(r.json["technical_login"], "TECH_00000000018259@cpp2017.fr");
    assert_eq!(r.json["environment"], "production");
    assert_eq!(r.json["credentials_status"], "unverified");
    assert_eq!(r.json["days_until_password_expiry"], 365);
    assert!(r.json["verified_at"].is_null());
    let set_at = time::OffsetDateTime::parse(
        r.json["password_set_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        r.json["password_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - set_at, time::Duration::days(365));

    // The secret holds login and password, at the version the item names.
    let item = stack.account_item(&siret).await.expect("account item");
    let version = item["password_version"].as_s().unwrap().clone();
    let secret = stack
        .secret_value(&siret, Some(&version))
        .await
        .expect("secret");
    assert_eq!(secret["login"], "TECH_00000000018259@cpp2017.fr");
    assert_eq!(secret["password"], password.as_str());
    // …and is the current one.
    assert_eq!(
        stack.secret_value(&siret, None).await.unwrap()["password"],
        password.as_str()
    );
    let described = stack
        .secrets
        .describe_secret()
        .secret_id(stack.secret_name(&siret))
        .send()
        .await
        .unwrap();
    let tags: Vec<_> = described
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert!(tags.contains(&("siret", siret.as_str())), "{tags:?}");

    // No item of the company holds the password, under any attribute.
    for item in stack.company_items(&siret).await {
        assert!(
            !format!("{item:?}").contains(&password),
            "password in {item:?}"
        );
    }
    assert_eq!(item["entity"].as_s().unwrap(), "company_account");

    // Read back.
    let g = stack
        .call("GET", &Stack::account_path(&siret), Some(&token), None)
        .await;
    assert_eq!(g.status, 200);
    assert_eq!(g.json, r.json);
    assert!(!g.text.contains(&password));
}

#[tokio::test]
async fn audit_trail_records_who_and_which_fields_never_the_password() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    let password = test_password();
    stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&settings(&password)),
        )
        .await;
    let mut update = settings(&password);
    update["referent_email"] = json!("direction@entreprise-btp.fr");
    update.as_object_mut().unwrap().remove("password");
    update
        .as_object_mut()
        .unwrap()
        .remove("password_confirmation");
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&update),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let audits: Vec<_> = stack
        .company_items(&siret)
        .await
        .into_iter()
        .filter(|i| i["entity"].as_s().unwrap() == "audit")
        .collect();
    assert_eq!(audits.len(), 2);
    let fields = |i: &std::collections::HashMap<
        String,
        aws_sdk_dynamodb::types::AttributeValue,
    >|
     -> Vec<String> {
        i["fields"]
            .as_l()
            .unwrap()
            .iter()
            .map(|v| v.as_s().unwrap().clone())
            .collect()
    };
    let created = audits
        .iter()
        .find(|i| i["action"].as_s().unwrap() == "account_created")
        .unwrap();
    assert_eq!(created["actor"].as_s().unwrap(), "user-test");
    assert!(fields(created).contains(&"password".to_owned()));
    let updated = audits
        .iter()
        .find(|i| i["action"].as_s().unwrap() == "account_updated")
        .unwrap();
    assert_eq!(fields(updated), vec!["referent_email".to_owned()]);
    for a in &audits {
        assert!(!format!("{a:?}").contains(&password));
    }
}

#[tokio::test]
async fn update_without_password_keeps_the_stored_one() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    let password = test_password();
    let first = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&settings(&password)),
        )
        .await;
    let version = stack.account_item(&siret).await.unwrap()["password_version"]
        .as_s()
        .unwrap()
        .clone();

    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&json!({"referent_email": "direction@entreprise-btp.fr", "technical_login": "TECH_00000000018259@cpp2017.fr", "verify": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["referent_email"], "direction@entreprise-btp.fr");
    assert_eq!(r.json["password_set_at"], first.json["password_set_at"]);
    let item = stack.account_item(&siret).await.unwrap();
    assert_eq!(item["password_version"].as_s().unwrap(), &version);
    assert_eq!(
        stack.secret_value(&siret, Some(&version)).await.unwrap()["password"],
        password.as_str()
    );

    // The same body again changes nothing and writes nothing.
    let before = stack.company_items(&siret).await.len();
    let again = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&json!({"referent_email": "direction@entreprise-btp.fr", "technical_login": "TECH_00000000018259@cpp2017.fr", "verify": false})),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(stack.company_items(&siret).await.len(), before);
}

#[tokio::test]
async fn new_password_becomes_a_new_current_version() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    let (old, new) = (test_password(), test_password());
    stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&settings(&old)),
        )
        .await;
    let v1 = stack.account_item(&siret).await.unwrap()["password_version"]
        .as_s()
        .unwrap()
        .clone();
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&settings(&new)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v2 = stack.account_item(&siret).await.unwrap()["password_version"]
        .as_s()
        .unwrap()
        .clone();
    assert_ne!(v1, v2);
    assert_eq!(
        stack.secret_value(&siret, Some(&v2)).await.unwrap()["password"],
        new.as_str()
    );
    // The new version is AWSCURRENT (and keeps AWSPENDING, which Secrets Manager reads as
    // "no change in progress" when both are on one version), the old one AWSPREVIOUS. (Read
    // through the labels: moto's GetSecretValue without a version ignores label moves.)
    let described = stack
        .secrets
        .describe_secret()
        .secret_id(stack.secret_name(&siret))
        .send()
        .await
        .unwrap();
    let stages = described.version_ids_to_stages.unwrap();
    let mut labels = stages[&v2].clone();
    labels.sort();
    assert_eq!(
        labels,
        vec!["AWSCURRENT".to_owned(), "AWSPENDING".to_owned()]
    );
    assert_eq!(stages[&v1], vec!["AWSPREVIOUS".to_owned()]);
}

#[tokio::test]
async fn a_new_login_needs_its_password() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&settings(&test_password())),
        )
        .await;
    let before = stack.company_items(&siret).await;
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&json!({"referent_email": "compta@entreprise-btp.fr", "technical_login": "TECH_99999999999999@cpp2017.fr"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.field_codes(),
        vec![("password".to_owned(), "required".to_owned())]
    );
    assert_eq!(stack.company_items(&siret).await, before);
}

#[tokio::test]
async fn delete_removes_settings_and_schedules_the_secret_then_a_new_save_works() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&settings(&test_password())),
        )
        .await;

    let d = stack
        .call("DELETE", &Stack::account_path(&siret), Some(&token), None)
        .await;
    assert_eq!(d.status, 204, "{}", d.text);
    let g = stack
        .call("GET", &Stack::account_path(&siret), Some(&token), None)
        .await;
    assert_eq!(g.status, 404);
    assert_eq!(g.json["code"], "company_not_configured");
    assert_eq!(g.content_type, "application/problem+json");
    let described = stack
        .secrets
        .describe_secret()
        .secret_id(stack.secret_name(&siret))
        .send()
        .await
        .unwrap();
    assert!(
        described.deleted_date.is_some(),
        "secret not scheduled for deletion"
    );
    // The audit trail stays.
    let items = stack.company_items(&siret).await;
    assert!(
        items
            .iter()
            .any(|i| i["action"].as_s().ok().map(String::as_str) == Some("account_deleted"))
    );
    assert!(stack.account_item(&siret).await.is_none());

    // Deleting again: nothing to delete.
    let again = stack
        .call("DELETE", &Stack::account_path(&siret), Some(&token), None)
        .await;
    assert_eq!(again.status, 404);

    // Configured again: the secret is restored with the new password.
    let password = test_password();
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&settings(&password)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let version = stack.account_item(&siret).await.unwrap()["password_version"]
        .as_s()
        .unwrap()
        .clone();
    assert_eq!(
        stack.secret_value(&siret, Some(&version)).await.unwrap()["password"],
        password.as_str()
    );
}

#[tokio::test]
async fn la_poste_siret_is_accepted_and_sandbox_checks_shape_only() {
    let stack = Stack::connect().await;
    // La Poste's SIREN, Luhn-invalid but with a digit sum divisible by 5.
    let la_poste = "35600000049837";
    let token = stack.token(&[la_poste]);
    stack
        .call("DELETE", &Stack::account_path(la_poste), Some(&token), None)
        .await;
    let r = stack
        .call(
            "PUT",
            &Stack::account_path(la_poste),
            Some(&token),
            body(&settings(&test_password())),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // A qualification SIRET that fails Luhn: accepted in sandbox, refused in production.
    let mut qualif = random_siret();
    let last = qualif.pop().unwrap();
    qualif.push(if last == '0' { '1' } else { '0' });
    let token = stack.token(&[&qualif]);
    let mut production = settings(&test_password());
    production["environment"] = json!("production");
    let refused = stack
        .call(
            "PUT",
            &Stack::account_path(&qualif),
            Some(&token),
            body(&production),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        refused.field_codes(),
        vec![("siret".to_owned(), "invalid_siret".to_owned())]
    );
    assert_nothing_written(&stack, &qualif).await;
    let mut sandbox = production.clone();
    sandbox["environment"] = json!("sandbox");
    let accepted = stack
        .call(
            "PUT",
            &Stack::account_path(&qualif),
            Some(&token),
            body(&sandbox),
        )
        .await;
    assert_eq!(accepted.status, 201, "{}", accepted.text);
    assert_eq!(accepted.json["environment"], "sandbox");
}

/// A bad account `PUT`: its body (none: an empty one), the answer's status and code, and
/// its field errors (field, code) in order.
struct BadInput {
    name: &'static str,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
    errors: Vec<(&'static str, &'static str)>,
}

/// A `400` case.
fn refused(
    name: &'static str,
    body: Option<Vec<u8>>,
    code: &'static str,
    errors: Vec<(&'static str, &'static str)>,
) -> BadInput {
    BadInput {
        name,
        body,
        status: 400,
        code,
        errors,
    }
}

fn bad_inputs(good: &Value) -> Vec<BadInput> {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        body(&v)
    };
    let (malformed, invalid) = ("malformed_json", "validation_failed");
    vec![
        refused(
            "malformed JSON",
            Some(b"{\"referent_email\": ".to_vec()),
            malformed,
            vec![],
        ),
        refused("not an object", Some(b"[1, 2]".to_vec()), malformed, vec![]),
        refused("empty body", None, malformed, vec![]),
        refused(
            "wrong types",
            with(&|v| {
                v["referent_email"] = json!(42);
                v["verify"] = json!("yes");
            }),
            malformed,
            vec![
                ("referent_email", "invalid_type"),
                ("verify", "invalid_type"),
            ],
        ),
        refused(
            "unknown fields",
            with(&|v| v["passwd"] = json!("x")),
            invalid,
            vec![("passwd", "unknown_field")],
        ),
        refused(
            "empty strings",
            with(&|v| {
                v["referent_email"] = json!("");
                v["technical_login"] = json!("");
                v["password"] = json!("");
                v["password_confirmation"] = json!("");
            }),
            invalid,
            vec![
                ("referent_email", "required"),
                ("technical_login", "required"),
                ("password", "required"),
            ],
        ),
        refused(
            "e-mail without domain",
            with(&|v| v["referent_email"] = json!("compta@")),
            invalid,
            vec![("referent_email", "invalid_email")],
        ),
        refused(
            "mismatched confirmation",
            with(&|v| v["password_confirmation"] = json!("autre-chose")),
            invalid,
            vec![("password_confirmation", "password_mismatch")],
        ),
        refused(
            "confirmation without password",
            with(&|v| {
                v.as_object_mut().unwrap().remove("password");
            }),
            invalid,
            vec![("password", "required")],
        ),
        refused(
            "no password on first save",
            with(&|v| {
                v.as_object_mut().unwrap().remove("password");
                v.as_object_mut().unwrap().remove("password_confirmation");
            }),
            invalid,
            vec![
                ("password", "required"),
                ("password_confirmation", "required"),
            ],
        ),
        refused(
            "unknown environment",
            with(&|v| v["environment"] = json!("prod")),
            invalid,
            vec![("environment", "invalid_value")],
        ),
        refused(
            "every fault at once",
            with(&|v| {
                v["referent_email"] = json!("compta");
                v["technical_login"] = json!("TECH_1");
                v["password_confirmation"] = json!("autre");
                v["extra"] = json!(1);
            }),
            invalid,
            vec![
                ("referent_email", "invalid_email"),
                ("technical_login", "invalid_login"),
                ("password_confirmation", "password_mismatch"),
                ("extra", "unknown_field"),
            ],
        ),
        BadInput {
            name: "10 MB body",
            body: Some(vec![b' '; 10 * 1024 * 1024]),
            status: 413,
            code: "payload_too_large",
            errors: vec![],
        },
    ]
}

/// The answer is the case's problem+json: status, code, a title and a detail, its field
/// errors each with a message, and never the password.
fn assert_clear_refusal(case: &BadInput, r: &Response, password: &str) {
    let name = case.name;
    assert_eq!(r.status, case.status, "{name}: {}", r.text);
    assert_eq!(r.content_type, "application/problem+json", "{name}");
    assert_eq!(r.json["code"], case.code, "{name}: {}", r.text);
    assert_eq!(r.json["status"], case.status, "{name}");
    assert!(
        r.json["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{name}"
    );
    assert!(
        r.json["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{name}"
    );
    let got = r.field_codes();
    let want: Vec<(String, String)> = case
        .errors
        .iter()
        .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(got, want, "{name}: {}", r.text);
    for e in r.json["errors"].as_array().into_iter().flatten() {
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: message"
        );
    }
    assert!(!r.text.contains(password), "{name}: password echoed");
}

/// Each bad input: its status, code and field errors, and nothing written.
#[tokio::test]
async fn bad_input_gets_a_clear_answer_and_changes_nothing() {
    let stack = Stack::connect().await;
    let password = test_password();
    for case in bad_inputs(&settings(&password)) {
        let siret = random_siret();
        let token = stack.token(&[&siret]);
        let r = stack
            .call(
                "PUT",
                &Stack::account_path(&siret),
                Some(&token),
                case.body.clone(),
            )
            .await;
        assert_clear_refusal(&case, &r, &password);
        assert_nothing_written(&stack, &siret).await;
    }
}

#[tokio::test]
async fn bad_sirets_are_refused_in_french() {
    let stack = Stack::connect().await;
    let good = settings(&test_password());
    let mut wrong_key = random_siret();
    let last = wrong_key.pop().unwrap();
    wrong_key.push(if last == '9' {
        '8'
    } else {
        char::from(last as u8 + 1)
    });
    for (siret, expected) in [
        (wrong_key.as_str(), "clé de contrôle"),
        ("9123456789012", "14 chiffres"),
        ("912345678901234", "14 chiffres"),
        ("9123456789012A", "chiffres"),
    ] {
        let token = stack.token(&[siret]);
        let r = stack
            .call(
                "PUT",
                &Stack::account_path(siret),
                Some(&token),
                body(&good),
            )
            .await;
        assert_eq!(r.status, 400, "{siret}: {}", r.text);
        assert_eq!(
            r.field_codes(),
            vec![("siret".to_owned(), "invalid_siret".to_owned())],
            "{siret}"
        );
        assert!(
            r.json["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{siret}: {}",
            r.text
        );
        assert_nothing_written(&stack, siret).await;
    }
}

#[tokio::test]
async fn tenancy_and_tokens() {
    let stack = Stack::connect().await;
    let mine = random_siret();
    let other = random_siret();
    let password = test_password();
    let token = stack.token(&[&mine]);
    let other_token = stack.token(&[&other]);
    // The other company is configured: its existence must not leak.
    let o = stack
        .call(
            "PUT",
            &Stack::account_path(&other),
            Some(&other_token),
            body(&settings(&test_password())),
        )
        .await;
    assert_eq!(o.status, 201);

    let forbidden = stack
        .call(
            "PUT",
            &Stack::account_path(&other),
            Some(&token),
            body(&settings(&password)),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.json["code"], "forbidden");
    let unknown = random_siret();
    let forbidden_unknown = stack
        .call("GET", &Stack::account_path(&unknown), Some(&token), None)
        .await;
    let forbidden_known = stack
        .call("GET", &Stack::account_path(&other), Some(&token), None)
        .await;
    assert_eq!(forbidden_unknown.status, 403);
    assert_eq!(
        forbidden_known.text, forbidden_unknown.text,
        "403 must not tell whether the company exists"
    );
    let d = stack
        .call("DELETE", &Stack::account_path(&other), Some(&token), None)
        .await;
    assert_eq!(d.status, 403);
    assert!(stack.account_item(&other).await.is_some());

    // No token, an expired one, a wrongly signed one, garbage.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = gateway_tests::jwt::token_for("u", &[&mine], now - 7200, 60, &stack.jwt_secret);
    let wrong_key = gateway_tests::jwt::token_for("u", &[&mine], now, 600, "not-the-secret");
    // Not valid before an hour from now (`nbf`), as API Gateway's authorizer refuses it.
    let mut early = serde_json::Map::new();
    for (k, v) in [
        ("iss", json!(gateway_tests::jwt::ISSUER)),
        ("aud", json!(gateway_tests::jwt::AUDIENCE)),
        ("sub", json!("u")),
        ("companies", json!([mine])),
        ("nbf", json!(now + 3600)),
        ("exp", json!(now + 7200)),
    ] {
        early.insert(k.into(), v);
    }
    let not_yet = gateway_tests::jwt::sign(&early, &stack.jwt_secret);
    for token in [
        None,
        Some(expired.as_str()),
        Some(wrong_key.as_str()),
        Some(not_yet.as_str()),
        Some("abc.def.ghi"),
    ] {
        let r = stack
            .call(
                "PUT",
                &Stack::account_path(&mine),
                token,
                body(&settings(&password)),
            )
            .await;
        assert_eq!(r.status, 401, "{token:?}");
        assert_eq!(r.json["code"], "unauthenticated");
    }
    assert_nothing_written(&stack, &mine).await;

    // A token for several companies, in any accepted form, acts for each.
    let both = stack.token(&[&mine, &other]);
    let g = stack
        .call("GET", &Stack::account_path(&other), Some(&both), None)
        .await;
    assert_eq!(g.status, 200);
}

#[tokio::test]
async fn concurrent_saves_of_one_company_all_land_in_order() {
    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    let first = stack
        .call(
            "PUT",
            &Stack::account_path(&siret),
            Some(&token),
            body(&settings(&test_password())),
        )
        .await;
    assert_eq!(first.status, 201);
    let calls = (0..6).map(|i| {
        let mut v = settings(&test_password());
        v["referent_email"] = json!(format!("compta{i}@entreprise-btp.fr"));
        let path = Stack::account_path(&siret);
        let stack = &stack;
        let token = token.clone();
        async move { stack.call("PUT", &path, Some(&token), body(&v)).await }
    });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    for r in &results {
        assert!(r.status == 200 || r.status == 409, "{}", r.text);
    }
    // Every save that answered 200 is one revision and one audit entry; none was lost.
    let item = stack.account_item(&siret).await.unwrap();
    let revision: usize = item["revision"].as_n().unwrap().parse().unwrap();
    assert_eq!(revision, 1 + ok);
    let audits = stack
        .company_items(&siret)
        .await
        .into_iter()
        .filter(|i| i["entity"].as_s().unwrap() == "audit")
        .count();
    assert_eq!(audits, 1 + ok);
    // The item's password version holds a password that one of the callers sent.
    let version = item["password_version"].as_s().unwrap();
    assert!(
        stack.secret_value(&siret, Some(version)).await.unwrap()["password"]
            .as_str()
            .unwrap()
            .contains("NeverLogged")
    );
}

/// A verdict recorded "as read" loses to any write since the read (here a new referent
/// e-mail), so an answer built from the item read first is never stale; recorded against
/// the password alone, it still stands.
#[tokio::test]
async fn a_verdict_recorded_as_read_loses_to_a_write_since() {
    use shared::domain::{CredentialsStatus, Siret, SiretCheck};
    use shared::store::{AuditEntry, Store, StoreError};

    let stack = Stack::connect().await;
    let siret = random_siret();
    let token = stack.token(&[&siret]);
    let path = Stack::account_path(&siret);
    let r = stack
        .call(
            "PUT",
            &path,
            Some(&token),
            body(&settings(&test_password())),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let store = Store::new(stack.ddb.clone(), stack.table.clone());
    let s = Siret::parse(&siret, SiretCheck::ShapeOnly).unwrap();
    let read = store.get_account(&s).await.unwrap().unwrap();

    let keep = json!({"referent_email": "autre@entreprise-btp.fr",
        "technical_login": "TECH_00000000018259@cpp2017.fr", "verify": false});
    let r = stack.call("PUT", &path, Some(&token), body(&keep)).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let at = time::OffsetDateTime::now_utc();
    let audit = |n: u8| AuditEntry {
        at: at + time::Duration::milliseconds(i64::from(n)),
        actor: "test".into(),
        action: "credentials_verified".into(),
        fields: vec!["credentials_status".into()],
    };
    let stale = store
        .record_verification(
            &s,
            &read.password_version,
            Some(read.revision),
            CredentialsStatus::Valid.into(),
            at,
            &audit(1),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    let now = store.get_account(&s).await.unwrap().unwrap();
    assert_eq!(now.credentials_status, CredentialsStatus::Unverified);
    assert_eq!(now.revision, read.revision + 1);

    store
        .record_verification(
            &s,
            &read.password_version,
            None,
            CredentialsStatus::Valid.into(),
            at,
            &audit(2),
        )
        .await
        .unwrap();
    let g = stack.call("GET", &path, Some(&token), None).await;
    assert_eq!(g.json["credentials_status"], "valid");
    assert_eq!(g.json["referent_email"], "autre@entreprise-btp.fr");
}
