//! Large documents through S3 (issue 16): `POST …/documents` hands out a pre-signed PUT,
//! the file goes to moto's S3, and a transmission names it by `document_id`. The functions
//! run in-process against moto, with an emulator and a table of their own; every refusal
//! is checked to send nothing to Chorus Pro and to leave the situation untouched.

use std::sync::Arc;

use gateway_tests::sandbox::{SandboxConfig, SandboxHandle, Seed, spawn};
use gateway_tests::testkit::{
    PDF, Stack, create_table, invoice_body, lambda_request, random_siret, response_json,
    route_answer, stack_config,
};
use serde_json::{Value, json};
use sha2::Digest;

const DOCUMENTS_ROUTE: &str = "POST /v1/companies/{siret}/documents";
const TRANSMIT_ROUTE: &str =
    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission";
const ACCOUNT_ROUTE: &str = "PUT /v1/companies/{siret}/chorus-account";
const MARKET_ROUTE: &str = "PUT /v1/companies/{siret}/markets/{market_ref}";
const SITUATION_PUT_ROUTE: &str =
    "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}";
const DEPOSIT_PATH: &str = "/cpro/factures/v1/deposer/flux";
const VILLEURBANNE: &str = "21690123100011";

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
}

/// A PDF of exactly `size` bytes (a header, then filler).
pub fn pdf_of(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n%".to_vec();
    bytes.extend((0..size.saturating_sub(bytes.len())).map(|i| b'a' + (i % 26) as u8));
    bytes.truncate(size);
    bytes
}

struct Company {
    emulator: SandboxHandle,
    siret: String,
    market_ref: String,
    settings: company_settings::State,
    identifiers: identifiers::State,
    documents: documents::State,
    transmit: Arc<transmit_invoice::State>,
    http: reqwest::Client,
    /// What a function process of its own needs besides the stack's environment.
    env: Vec<(&'static str, String)>,
}

impl Company {
    async fn new() -> Company {
        let stack = Stack::connect().await;
        let siret = random_siret();
        let login = format!("TECH_1_doc-{}@cpro.fr", suffix().to_lowercase());
        let password = format!("Doc-Tech-{}!", suffix());
        let mut seed = Seed::embedded();
        seed.structures.push(
            serde_json::from_value(json!({
                "idStructureCPP": 28_000_000 + i64::from(rand::random::<u16>()),
                "siret": siret, "designation": "ENTREPRISE TEST DOCUMENTS", "public": false
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
        let emulator = spawn(SandboxConfig {
            seed,
            ..SandboxConfig::default()
        })
        .await;
        let table = format!("choruspro-gateway-doctest-{}", suffix().to_lowercase());
        create_table(&stack.ddb, &table).await;
        let (api, token) = (emulator.api_url(), emulator.token_url());
        let config = stack_config(&[
            ("TABLE_NAME", &table),
            ("CHORUS_API_URL", &api),
            ("PISTE_TOKEN_URL", &token),
        ]);
        assert!(
            config.documents_bucket.is_some(),
            "DOCUMENTS_BUCKET is set by tests/stack/stack.sh env"
        );
        let sdk = shared::aws::sdk_config().await;
        let company = Company {
            settings: company_settings::State::from_sdk(config.clone(), &sdk),
            identifiers: identifiers::State::from_sdk(config.clone(), &sdk),
            documents: documents::State::from_sdk(config.clone(), &sdk),
            transmit: Arc::new(transmit_invoice::State::from_sdk(config, &sdk)),
            emulator,
            siret,
            market_ref: format!("m-{}", suffix().to_lowercase()),
            http: gateway_tests::testkit::http_client(),
            env: vec![
                ("TABLE_NAME", table.clone()),
                ("CHORUS_API_URL", api.clone()),
                ("PISTE_TOKEN_URL", token.clone()),
            ],
        };
        company.register(&login, &password).await;
        company
    }

    async fn register(&self, login: &str, password: &str) {
        let s = &self.siret;
        let request = lambda_request(
            ACCOUNT_ROUTE,
            &Stack::account_path(s),
            &[("siret", s)],
            &[s],
            Some(
                &json!({"referent_email": "compta@entreprise-btp.fr", "technical_login": login,
                         "password": password, "password_confirmation": password}),
            ),
        );
        let (status, answer) =
            response_json(&company_settings::handle(&self.settings, request).await);
        assert_eq!(status, 201, "{answer}");
        let path = format!("/v1/companies/{s}/markets/{}", self.market_ref);
        let request = lambda_request(
            MARKET_ROUTE,
            &path,
            &[("siret", s), ("market_ref", &self.market_ref)],
            &[s],
            Some(
                &json!({"market_number": format!("2026-DOC-{}", suffix()), "buyer_siret": VILLEURBANNE, "label": "Voirie"}),
            ),
        );
        let (status, answer) =
            response_json(&identifiers::handle(&self.identifiers, request).await);
        assert_eq!(status, 201, "{answer}");
    }

    async fn situation(&self, number: u16) {
        let n = number.to_string();
        let s = &self.siret;
        let path = format!(
            "/v1/companies/{s}/markets/{}/situations/{n}",
            self.market_ref
        );
        let request = lambda_request(
            SITUATION_PUT_ROUTE,
            &path,
            &[
                ("siret", s),
                ("market_ref", &self.market_ref),
                ("number", &n),
            ],
            &[s],
            Some(&json!({"invoice_number": format!("DOC-{}-{n}", suffix()), "period": "2026-11"})),
        );
        let (status, answer) =
            response_json(&identifiers::handle(&self.identifiers, request).await);
        assert_eq!(status, 201, "{answer}");
    }

    /// `POST …/documents` as `caller` (the token's SIRETs) for `siret`.
    async fn announce_as(&self, siret: &str, caller: &str, body: Value) -> (u16, Value) {
        let path = format!("/v1/companies/{siret}/documents");
        let request = lambda_request(
            DOCUMENTS_ROUTE,
            &path,
            &[("siret", siret)],
            &[caller],
            Some(&body),
        );
        route_answer(
            DOCUMENTS_ROUTE,
            &documents::handle(&self.documents, request).await,
        )
    }

    /// The company's document records in the table.
    async fn document_records(&self) -> usize {
        let stack = Stack::connect().await;
        let out = stack
            .ddb
            .query()
            .table_name(&self.transmit.config.table_name)
            .key_condition_expression("PK = :pk AND begins_with(SK, :sk)")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("COMPANY#{}", self.siret)),
            )
            .expression_attribute_values(
                ":sk",
                aws_sdk_dynamodb::types::AttributeValue::S("DOCUMENT#".into()),
            )
            .send()
            .await
            .unwrap();
        out.items().len()
    }

    async fn announce(&self, filename: &str, content_type: &str, size: usize) -> (u16, Value) {
        let body = json!({"filename": filename, "content_type": content_type, "size": size});
        self.announce_as(&self.siret, &self.siret, body).await
    }

    /// Announces then uploads `bytes` (as a browser would: the announced type and length).
    async fn upload(&self, filename: &str, bytes: Vec<u8>) -> String {
        let (status, created) = self
            .announce(filename, "application/pdf", bytes.len())
            .await;
        assert_eq!(status, 201, "{created}");
        let status = self.put(&created, bytes).await;
        assert_eq!(status, 200);
        created["document_id"].as_str().unwrap().to_owned()
    }

    async fn put(&self, created: &Value, bytes: Vec<u8>) -> u16 {
        self.http
            .put(created["upload_url"].as_str().unwrap())
            .header("content-type", "application/pdf")
            .body(bytes)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn transmit(&self, number: u16, document: Value) -> (u16, Value) {
        let mut body = invoice_body(&self.siret);
        body["document"] = document;
        let bytes = serde_json::to_vec(&body).unwrap();
        let n = number.to_string();
        let s = &self.siret;
        let path = format!(
            "/v1/companies/{s}/markets/{}/situations/{n}/transmission",
            self.market_ref
        );
        let mut request = lambda_request(
            TRANSMIT_ROUTE,
            &path,
            &[
                ("siret", s),
                ("market_ref", &self.market_ref),
                ("number", &n),
            ],
            &[s],
            None,
        );
        *request.body_mut() = lambda_http::Body::Binary(bytes);
        route_answer(
            TRANSMIT_ROUTE,
            &transmit_invoice::handle(&self.transmit, request).await,
        )
    }

    /// The same transmission by `transmit-invoice`'s handler in a process of its own
    /// (`transmit-once`): its answer and the process's peak resident memory in bytes.
    async fn transmit_in_own_process(&self, number: u16, document: Value) -> (u16, Value, u64) {
        let mut body = invoice_body(&self.siret);
        body["document"] = document;
        let file = std::env::temp_dir().join(format!("transmit-once-{}.json", suffix()));
        std::fs::write(&file, serde_json::to_vec(&body).unwrap()).unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_transmit-once"));
        command
            .args([&self.siret, &self.market_ref, &number.to_string()])
            .arg(&file)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        // Off the runtime: the emulator the child calls is served by this test's runtime.
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (first, answer) = text.split_once('\n').unwrap();
        let field = |name: &str| -> u64 {
            first
                .split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        let answer = serde_json::from_str(answer.trim()).unwrap_or(Value::Null);
        (
            field("status=") as u16,
            answer,
            field("peak_rss_kib=") * 1024,
        )
    }

    fn deposits(&self) -> usize {
        self.emulator.sandbox().journal(Some(DEPOSIT_PATH)).len()
    }

    /// A refusal: the code, and nothing deposited, the situation still not transmitted.
    async fn assert_refused(&self, number: u16, document: Value, status: u16, code: &str) -> Value {
        let before = self.deposits();
        let (got, answer) = self.transmit(number, document).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
        assert!(
            answer["detail"].as_str().unwrap_or("").len() > 20,
            "{answer}"
        );
        assert_eq!(self.deposits(), before, "nothing may reach Chorus Pro");
        answer
    }
}

#[tokio::test]
async fn a_large_pdf_uploaded_through_its_url_is_deposited_byte_for_byte() {
    let company = Company::new().await;
    company.situation(1).await;
    company.situation(2).await;
    // The same process with a 50-byte inline PDF: what the document adds to it.
    let (status, view, baseline) = company
        .transmit_in_own_process(2, json!({"filename": "petit.pdf", "content_base64": PDF}))
        .await;
    assert_eq!(status, 202, "{view}");
    // The largest PDF one deposit carries: 10 MiB of UBL once in base64, minus the invoice.
    let pdf = pdf_of(7_800_000);
    let digest = format!("{:x}", sha2::Sha256::digest(&pdf));
    let id = company.upload("situation-01.pdf", pdf).await;
    let (status, view, peak) = company
        .transmit_in_own_process(1, json!({"document_id": id}))
        .await;
    assert_eq!(status, 202, "{view}");
    // Printed for the README ("Limits and performance"): `cargo test … -- --nocapture`.
    let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
    println!(
        "transmit-invoice peak memory (VmHWM, this build): {:.1} MiB with the 7.8 MB document, {:.1} MiB with a 50-byte PDF",
        mib(peak),
        mib(baseline)
    );
    assert!(
        peak < 64 * 1024 * 1024,
        "a 128 MB Lambda must keep half to spare: peak {peak} bytes"
    );
    assert_eq!(view["transmission"]["state"], "deposited", "{view}");
    let deposits = company.emulator.sandbox().deposits();
    assert_eq!(deposits.len(), 2);
    let files = &deposits[1].embedded_files;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].filename, "situation-01.pdf");
    assert_eq!(files[0].mime_code, "application/pdf");
    assert_eq!(files[0].size, 7_800_000);
    assert_eq!(
        files[0].sha256, digest,
        "the deposit carries the uploaded bytes"
    );
}

#[tokio::test]
async fn the_upload_url_is_signed_for_the_announced_type_and_length_for_15_minutes() {
    let company = Company::new().await;
    let (status, created) = company
        .announce("situation-02.pdf", "application/pdf", 1234)
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["document_id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    let url = created["upload_url"].as_str().unwrap();
    assert!(
        url.contains(&format!("documents/{}/{id}", company.siret)),
        "the key is under the company's prefix: {url}"
    );
    assert!(url.contains("X-Amz-Expires=900"), "{url}");
    let signed = url
        .split("X-Amz-SignedHeaders=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .unwrap_or("");
    assert!(
        signed.contains("content-length") && signed.contains("content-type"),
        "S3 refuses another size or type only if both are signed: {signed}"
    );
    assert!(!url.to_lowercase().contains("x-amz-checksum"), "{url}");
    let expires = shared::clock::parse_rfc3339(created["expires_at"].as_str().unwrap()).unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(14) && left <= time::Duration::minutes(15));
}

#[tokio::test]
async fn bad_announcements_are_refused_in_french_and_record_nothing() {
    let company = Company::new().await;
    let cases = [
        (
            json!({"filename": "vide.pdf", "content_type": "application/pdf", "size": 0}),
            "size",
            "file_empty",
        ),
        (
            json!({"filename": "gros.pdf", "content_type": "application/pdf", "size": 11_000_000}),
            "size",
            "file_too_large",
        ),
        (
            json!({"filename": "../etc/x.pdf", "content_type": "application/pdf", "size": 10}),
            "filename",
            "unsafe_file_name",
        ),
        (
            json!({"filename": "a/b.pdf", "content_type": "application/pdf", "size": 10}),
            "filename",
            "unsafe_file_name",
        ),
        (
            json!({"filename": "s.pdf", "content_type": "image/png", "size": 10}),
            "content_type",
            "content_type_mismatch",
        ),
        (
            json!({"filename": "s.pdf", "content_type": "application/pdf", "size": 10, "x": 1}),
            "x",
            "unknown_field",
        ),
    ];
    for (body, field, code) in cases {
        let (status, answer) = company
            .announce_as(&company.siret, &company.siret, body.clone())
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["code"], "validation_failed");
        assert_eq!(answer["title"], "Données invalides", "{answer}");
        let errors = answer["errors"].as_array().unwrap();
        let error = errors
            .iter()
            .find(|e| e["field"] == field && e["code"] == code)
            .unwrap_or_else(|| panic!("{body}: {answer}"));
        let message = error["message"].as_str().unwrap_or("");
        assert!(
            message.len() > 15 && french(message),
            "{body}: a French message, not {message:?}"
        );
    }
    let (status, answer) = company
        .announce_as(
            &company.siret,
            &company.siret,
            json!({"filename": "s.pdf", "content_type": "application/pdf", "size": "10"}),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("malformed_json")),
        "{answer}"
    );
    // Another company's SIRET: forbidden.
    let (status, answer) = company
        .announce_as(
            &random_siret(),
            &company.siret,
            json!({"filename": "s.pdf", "content_type": "application/pdf", "size": 10}),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (403, Some("forbidden")),
        "{answer}"
    );
    // None of these refusals left a record.
    assert_eq!(company.document_records().await, 0);
}

/// Whether a message reads as French (the gateway's messages: accents or French words).
fn french(message: &str) -> bool {
    message.chars().any(|c| "éèêàçôûî".contains(c))
        || [
            "Le ", "La ", " le ", " la ", " les ", " du ", " des ", " une ", " est ", " pas ", "«",
        ]
        .iter()
        .any(|w| message.contains(w))
}

#[tokio::test]
async fn a_document_that_is_not_usable_is_refused_and_nothing_is_sent() {
    let company = Company::new().await;
    company.situation(3).await;
    // Unknown, malformed.
    let unknown = uuid::Uuid::new_v4().simple().to_string();
    company
        .assert_refused(
            3,
            json!({"document_id": unknown}),
            422,
            "document_not_found",
        )
        .await;
    company
        .assert_refused(3, json!({"document_id": "../x"}), 422, "document_not_found")
        .await;
    // Announced, never uploaded.
    let (_, created) = company.announce("jamais.pdf", "application/pdf", 100).await;
    let never = created["document_id"].clone();
    let answer = company
        .assert_refused(3, json!({"document_id": never}), 422, "document_not_found")
        .await;
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("n'a pas été déposé"),
        "{answer}"
    );
    // Uploaded larger than announced (S3 refuses it; moto does not check the signature).
    let (_, created) = company.announce("plus.pdf", "application/pdf", 100).await;
    let status = company.put(&created, pdf_of(200)).await;
    // S3 refuses it (the length is signed); moto takes it, and the gateway refuses it on use.
    assert!(matches!(status, 200 | 403), "{status}");
    if status == 200 {
        let answer = company
            .assert_refused(
                3,
                json!({"document_id": created["document_id"]}),
                422,
                "document_not_found",
            )
            .await;
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains("200 octets au lieu des 100"),
            "{answer}"
        );
    }
    // A non-PDF named .pdf.
    let (_, created) = company.announce("faux.pdf", "application/pdf", 12).await;
    assert_eq!(company.put(&created, b"hello world!".to_vec()).await, 200);
    let answer = company
        .assert_refused(
            3,
            json!({"document_id": created["document_id"]}),
            422,
            "document_not_found",
        )
        .await;
    assert!(
        answer["detail"].as_str().unwrap().contains("%PDF-"),
        "{answer}"
    );
    // Both an id and inline content.
    let id = company.upload("ok.pdf", pdf_of(100)).await;
    company
        .assert_refused(
            3,
            json!({"document_id": id, "content_base64": PDF}),
            400,
            "validation_failed",
        )
        .await;
    // Another company's document: not found for this one.
    let other = Company::new().await;
    let foreign = other.upload("autre.pdf", pdf_of(100)).await;
    company
        .assert_refused(
            3,
            json!({"document_id": foreign}),
            422,
            "document_not_found",
        )
        .await;
    // A deposit past Chorus Pro's limit, refused before reading anything.
    let big = company.upload("gros.pdf", pdf_of(8_000_000)).await;
    let answer = company
        .assert_refused(3, json!({"document_id": big}), 422, "invoice_invalid")
        .await;
    assert_eq!(answer["errors"][0]["code"], "CPRO-FLUX-01", "{answer}");
    // After all that, the situation is still to transmit, and a good document goes through.
    let (status, view) = company.transmit(3, json!({"document_id": id})).await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(view["transmission"]["state"], "deposited", "{view}");
}

#[tokio::test]
async fn an_upload_after_its_window_or_past_retention_is_refused() {
    let company = Company::new().await;
    company.situation(4).await;
    let id = company.upload("tard.pdf", pdf_of(100)).await;
    // The gateway's clock 16 minutes later: the object was written in time (moto's date),
    // so it is usable; 31 days later it has expired.
    let clock: Arc<dyn shared::clock::Clock> = Arc::new(shared::clock::FixedClock::new(
        time::OffsetDateTime::now_utc() + time::Duration::days(31),
    ));
    let mut late = transmit_invoice::State::from_sdk(
        stack_config(&[("TABLE_NAME", &company.transmit.config.table_name)]),
        &shared::aws::sdk_config().await,
    );
    late.clock = clock;
    let before = company.deposits();
    let mut body = invoice_body(&company.siret);
    body["document"] = json!({"document_id": id});
    let n = "4";
    let s = &company.siret;
    let path = format!(
        "/v1/companies/{s}/markets/{}/situations/{n}/transmission",
        company.market_ref
    );
    let mut request = lambda_request(
        TRANSMIT_ROUTE,
        &path,
        &[
            ("siret", s),
            ("market_ref", &company.market_ref),
            ("number", n),
        ],
        &[s],
        None,
    );
    *request.body_mut() = lambda_http::Body::Binary(serde_json::to_vec(&body).unwrap());
    let (status, answer) = response_json(&transmit_invoice::handle(&late, request).await);
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("document_not_found")),
        "{answer}"
    );
    assert!(
        answer["detail"].as_str().unwrap().contains("expiré"),
        "{answer}"
    );
    assert_eq!(company.deposits(), before);

    // Written after the window: a record whose 15-minute window closed 6 minutes ago, its
    // object written now through a URL signed for it (S3 would refuse the late PUT; moto does
    // not check the expiry, so the gateway's own check on use is what this shows).
    let siret = shared::domain::Siret::parse(s, shared::domain::SiretCheck::ShapeOnly).unwrap();
    let announced =
        shared::domain::document::Announced::check("fenetre.pdf", "application/pdf", Some(100))
            .unwrap();
    let opened = time::OffsetDateTime::now_utc() - time::Duration::minutes(21);
    let record = shared::domain::document::Document::new(siret, announced, opened);
    company.transmit.store.put_document(&record).await.unwrap();
    let bucket = company.documents.bucket.as_ref().unwrap();
    let url = bucket.presign_upload(&record, opened).await.unwrap();
    let uploaded = json!({"upload_url": url.url});
    let status = company.put(&uploaded, pdf_of(100)).await;
    // S3 refuses the late PUT (403); moto takes it, and the gateway refuses it on use.
    assert!(matches!(status, 200 | 403), "{status}");
    let answer = company
        .assert_refused(
            4,
            json!({"document_id": record.id.as_str()}),
            422,
            "document_not_found",
        )
        .await;
    let expected = if status == 200 {
        "après l'expiration de son adresse de dépôt"
    } else {
        "n'a pas été déposé"
    };
    assert!(
        answer["detail"].as_str().unwrap().contains(expected),
        "{answer}"
    );
}
