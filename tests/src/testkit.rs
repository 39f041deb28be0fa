//! What the integration tests share: the running local stack (API, moto), tokens, and
//! direct reads of DynamoDB and Secrets Manager to check what was (not) written.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use rand::Rng;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::jwt;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A Luhn-valid SIRET no other test uses (random, starting with 9 so it never meets a
/// seeded one).
pub fn random_siret() -> String {
    let mut rng = rand::rng();
    let first13: String = std::iter::once('9')
        .chain((0..12).map(|_| char::from(b'0' + rng.random_range(0..10u8))))
        .collect();
    shared::domain::siret::with_luhn_key(&first13).unwrap_or_default()
}

/// Every test password carries the marker `make test` searches the logs for.
pub fn test_password() -> String {
    format!(
        "Chorus-NeverLogged-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Response {
    /// The `(field, code)` of each entry of a problem's `errors`, in order.
    pub fn field_codes(&self) -> Vec<(String, String)> {
        self.json["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap_or("").to_owned(),
                            e["code"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub struct Stack {
    pub api: String,
    pub jwt_secret: String,
    pub http: reqwest::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub table: String,
    pub secret_prefix: String,
}

impl Stack {
    /// The stack `make up` (or `make test`) started. Panics with what to do when it is not
    /// there: these tests assert real behaviour, they do not skip.
    pub async fn connect() -> Stack {
        require_stack();
        let api = format!("http://127.0.0.1:{}", env_or("LOCAL_API_PORT", "3000"));
        let http = http_client();
        if http.get(format!("{api}/")).send().await.is_err() {
            panic!(
                "the local API does not answer at {api}: start the stack with `make up` (make test does it)"
            );
        }
        let sdk = shared::aws::config_loader()
            .endpoint_url(env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"))
            .region(aws_config::Region::new(env_or("AWS_REGION", "eu-west-3")))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await;
        Stack {
            api,
            jwt_secret: env_or("LOCAL_JWT_SECRET", jwt::DEFAULT_SECRET),
            http,
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            table: env_or("TABLE_NAME", "choruspro-gateway-local"),
            secret_prefix: env_or("SECRET_PREFIX", "choruspro-gateway-local"),
        }
    }

    pub fn token(&self, companies: &[&str]) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        jwt::token_for("user-test", companies, now, 600, &self.jwt_secret)
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Response {
        let route = format!("{method} {path}");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut request = self.http.request(method, format!("{}{}", self.api, path));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.header("content-type", "application/json").body(b);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to the local API failed: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        record_answer(&route, status, &json);
        Response {
            status,
            content_type,
            text,
            json,
        }
    }

    pub fn account_path(siret: &str) -> String {
        format!("/v1/companies/{siret}/chorus-account")
    }

    /// Every item of the company's partition (account, audit trail, …).
    pub async fn company_items(&self, siret: &str) -> Vec<HashMap<String, AttributeValue>> {
        let out = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("COMPANY#{siret}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("query failed: {e:?}"));
        out.items().to_vec()
    }

    pub async fn account_item(&self, siret: &str) -> Option<HashMap<String, AttributeValue>> {
        self.company_items(siret).await.into_iter().find(|i| {
            i.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("ACCOUNT")
        })
    }

    pub fn secret_name(&self, siret: &str) -> String {
        format!("{}/companies/{siret}/technical-account", self.secret_prefix)
    }

    /// The secret's value at `version` (or AWSCURRENT), if it exists and is readable.
    pub async fn secret_value(&self, siret: &str, version: Option<&str>) -> Option<Value> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(self.secret_name(siret))
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .ok()?;
        serde_json::from_str(out.secret_string()?).ok()
    }

    /// Whether any secret exists for the SIRET (even scheduled for deletion).
    pub async fn secret_exists(&self, siret: &str) -> bool {
        self.secrets
            .describe_secret()
            .secret_id(self.secret_name(siret))
            .send()
            .await
            .is_ok()
    }
}

/// A request as API Gateway hands it to a function, for in-process handler tests: the
/// route key, the concrete path, a caller acting for `companies`, and a JSON body.
pub fn lambda_request(
    route_key: &str,
    path: &str,
    params: &[(&str, &str)],
    companies: &[&str],
    body: Option<&Value>,
) -> lambda_http::Request {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    api_request(
        route_key,
        path,
        params,
        ("in-process-test", companies),
        &bytes,
        &[],
    )
}

/// `api_event` as the request a function's handler receives.
pub fn api_request(
    route_key: &str,
    path: &str,
    params: &[(&str, &str)],
    caller: (&str, &[&str]),
    body: &[u8],
    headers: &[(String, String)],
) -> lambda_http::Request {
    let event = api_event(route_key, path, params, caller, body, headers);
    lambda_http::request::from_str(&event.to_string()).unwrap_or_else(|e| panic!("bad event: {e}"))
}

/// The API Gateway (payload 2.0) event of a call: the route key, the concrete path and its
/// parameters, the caller (`sub`, the companies it acts for), the body, headers.
pub fn api_event(
    route_key: &str,
    path: &str,
    params: &[(&str, &str)],
    (sub, companies): (&str, &[&str]),
    body: &[u8],
    headers: &[(String, String)],
) -> Value {
    let method = route_key.split(' ').next().unwrap_or("GET");
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), sub.into());
    claims.insert("companies".into(), serde_json::json!(companies));
    let params = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    crate::local_api::build_event(&crate::local_api::EventParts {
        route_key,
        method,
        path,
        query: "",
        headers,
        body,
        path_parameters: &params,
        claims: &claims,
    })
}

/// Status and JSON body of the answer a function gave on `route_key` (`POST /v1/…/{siret}`);
/// recorded for the OpenAPI answer check ([`record_answer`]).
pub fn route_answer(
    route_key: &str,
    response: &lambda_http::Response<lambda_http::Body>,
) -> (u16, Value) {
    let (status, body) = response_json(response);
    record_answer(route_key, status, &body);
    (status, body)
}

/// With `OPENAPI_ANSWERS_FILE` set (`make test` sets it), appends one JSON line per answer a
/// test saw: the route (a route key, or the method and concrete path of a local API call),
/// the status and the problem's `code`. `tests/infra/check_answers.py` then fails when
/// `infra/openapi.yaml` does not declare that status, or that code under it, for the route.
pub fn record_answer(route: &str, status: u16, body: &Value) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("OPENAPI_ANSWERS_FILE").filter(|p| !p.is_empty()) else {
        return;
    };
    let line = json!({"route": route, "status": status, "code": body.get("code")});
    // One write per line, in append mode: lines of concurrent tests do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        panic!("cannot record an answer in {}: {e}", path.to_string_lossy());
    }
}

/// Status and JSON body of a function's response.
pub fn response_json(response: &lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let text = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    (
        response.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// The stack's configuration (from `tests/stack/stack.sh env`), with some values replaced.
pub fn stack_config(overrides: &[(&str, &str)]) -> shared::config::Config {
    require_stack();
    let overrides: HashMap<String, String> = overrides
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    shared::config::Config::from_lookup(|name| {
        overrides
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .or_else(|| match name {
                "TABLE_NAME" => Some("choruspro-gateway-local".into()),
                "SECRET_PREFIX" => Some("choruspro-gateway-local".into()),
                "PISTE_CREDENTIALS_SECRET" => {
                    Some("choruspro-gateway-local/piste-credentials".into())
                }
                _ => None,
            })
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Stops the whole test process with one line when the local stack is not running: plain
/// `cargo test` without it would otherwise end in a panic per test. The integration tests
/// assert real behaviour against moto and the emulator; they do not skip.
pub fn require_stack() {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        let endpoint = env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:5000");
        let reachable = endpoint
            .rsplit_once(':')
            .and_then(|(_, port)| port.trim_end_matches('/').parse::<u16>().ok())
            .is_some_and(|port| {
                let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(2))
                    .is_ok()
            });
        if !reachable {
            // Straight to stderr: the test harness captures `eprintln!`, and the process
            // ends here.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "integration tests need the local stack (moto at {endpoint} does not answer): run `make test`, or `make up` then `eval \"$(tests/stack/stack.sh env)\"` before `cargo test`"
            );
            std::process::exit(1);
        }
    });
}

/// The Chorus Pro emulator of the running stack.
pub fn sandbox_url() -> String {
    format!("http://127.0.0.1:{}", env_or("CHORUS_SANDBOX_PORT", "8480"))
}

/// A table of the gateway's shape, for a test or the bench that needs one of its own: the
/// one description in code of what `infra/template.yaml` declares (PK/SK, GSI1 to GSI3
/// as `TABLE_INDEXES` lists them; `tests/infra/test_table_shape.py` checks the
/// two agree).
pub async fn try_create_table(ddb: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let key = |attr: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
    };
    let mut create = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("PK", KeyType::Hash)?)
        .key_schema(key("SK", KeyType::Range)?);
    for (index, projection, included) in TABLE_INDEXES {
        let mut shape = Projection::builder().projection_type(ProjectionType::from(projection));
        for attr in included {
            shape = shape.non_key_attributes(*attr);
        }
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(index)
            .key_schema(key(&format!("{index}PK"), KeyType::Hash)?)
            .key_schema(key(&format!("{index}SK"), KeyType::Range)?)
            .projection(shape.build())
            .build()
            .map_err(|e| e.to_string())?;
        create = create.global_secondary_indexes(gsi);
    }
    for attr in TABLE_KEY_ATTRIBUTES {
        let definition = AttributeDefinition::builder()
            .attribute_name(attr)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())?;
        create = create.attribute_definitions(definition);
    }
    create
        .send()
        .await
        .map_err(|e| format!("create table {name}: {}", shared::aws::error_text(&e)))?;
    Ok(())
}

/// The key attributes of the table (all strings) and its indexes: name, projection, the
/// attributes an `INCLUDE` projection adds (each index keyed by `{name}PK`/`{name}SK`).
pub const TABLE_KEY_ATTRIBUTES: [&str; 8] = [
    "PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK",
];
pub const TABLE_INDEXES: [(&str, &str, &[&str]); 3] = [
    ("GSI1", "ALL", &[]),
    ("GSI2", "INCLUDE", &["siret", "market_ref", "situation"]),
    ("GSI3", "KEYS_ONLY", &[]),
];

/// `try_create_table`, for tests: a failure is the test's.
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    try_create_table(ddb, name)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `%PDF-1.4` … `%%EOF`, base64.
pub const PDF: &str = "JVBERi0xLjQKMSAwIG9iajw8Pj5lbmRvYmoKdHJhaWxlcjw8Pj4KJSVFT0YK";

/// The French VAT number of a SIRET's company (key computed from the SIREN).
pub fn vat_id(siret: &str) -> String {
    let siren: u64 = siret[..9].parse().unwrap();
    format!("FR{:02}{}", (12 + 3 * (siren % 97)) % 97, &siret[..9])
}

fn iso(date: time::Date) -> String {
    shared::clock::iso_date(date)
}

/// A valid transmission body for the company `siret` (contract, "Transmission").
/// A valid transmission request for a company (a one-line situation with its PDF).
pub fn invoice_body(siret: &str) -> Value {
    let today = OffsetDateTime::now_utc().date();
    json!({
        "issue_date": iso(today),
        "due_date": iso(today + Duration::days(30)),
        "currency": "EUR",
        "seller": {
            "name": "ENTREPRISE TEST TRANSMISSION",
            "vat_id": vat_id(siret),
            "address": {"line1": "1 rue des Artisans", "city": "Lyon", "postal_code": "69001", "country": "FR"},
            "iban": "FR7630006000011234567890189",
            "bic": "AGRIFRPP"
        },
        "buyer": {
            "name": "ACHETEUR PUBLIC TEST",
            "address": {"line1": "Place Lazare Goujon", "city": "Villeurbanne", "postal_code": "69100", "country": "FR"}
        },
        "lines": [{"id": "1", "description": "Lot 2 gros œuvre, avancement du mois", "quantity": "1",
                   "unit": "C62", "unit_price": "12500.00", "vat_category": "S", "vat_rate": "20.00"}],
        "allowances_charges": [{"charge": false, "amount": "625.00", "reason": "Remise",
                                "vat_category": "S", "vat_rate": "20.00"}],
        "prepaid_amount": "0.00",
        "note": "Situation de travaux",
        "document": {"filename": "situation.pdf", "content_base64": PDF}
    })
}

// ---------------------------------------------------------------------------------------
// AWS faults on demand (moto cannot fail on demand): an SDK interceptor that fails the next
// call of one operation, once, and notes every operation sent.

/// Where an armed fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the request leaves: nothing was done.
    BeforeSend,
    /// After the service did the work: its answer is lost.
    AnswerLost,
}

#[derive(Clone, Debug, Default)]
pub struct AwsFaults {
    armed: std::sync::Arc<std::sync::Mutex<Option<(&'static str, Phase)>>>,
    sent: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl AwsFaults {
    /// Fails the next call of `operation` (e.g. `UpdateItem`) at `phase`, once.
    pub fn arm(&self, operation: &'static str, phase: Phase) {
        *lock(&self.armed) = Some((operation, phase));
    }

    pub fn disarm(&self) {
        *lock(&self.armed) = None;
    }

    /// Whether the armed fault struck.
    pub fn fired(&self) -> bool {
        lock(&self.armed).is_none()
    }

    /// The operations sent since the last call, in order.
    pub fn sent(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.sent))
    }

    fn trip(
        &self,
        cfg: &aws_sdk_dynamodb::config::ConfigBag,
        phase: Phase,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        let name = cfg.load::<Metadata>().map(|m| m.name()).unwrap_or_default();
        let mut armed = lock(&self.armed);
        if armed.is_some_and(|(op, p)| op == name && p == phase) {
            *armed = None;
            return Err(format!("injected fault: {name} {phase:?}").into());
        }
        Ok(())
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl aws_sdk_dynamodb::config::Intercept for AwsFaults {
    fn name(&self) -> &'static str {
        "fault-injection"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        if let Some(m) = cfg.load::<Metadata>() {
            lock(&self.sent).push(m.name().to_owned());
        }
        self.trip(cfg, Phase::BeforeSend)
    }

    fn read_before_deserialization(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.trip(cfg, Phase::AnswerLost)
    }
}

/// Counts the AWS calls sent through the SDK clients it is set on (as an `interceptor` of
/// their configuration), by operation name (`GetItem`, `GetSecretValue`…): one count per
/// attempt sent, retries included. Used by the tests that count a path's calls and by the
/// bench's calls section.
#[derive(Clone, Debug, Default)]
pub struct CallCounter(std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>);

impl CallCounter {
    /// The counts since the last `take`, by operation name; the counter starts again at zero.
    pub fn take(&self) -> std::collections::BTreeMap<String, u64> {
        std::mem::take(&mut *lock(&self.0))
    }
}

impl aws_sdk_dynamodb::config::Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        let name = cfg.load::<Metadata>().map_or("?", |m| m.name()).to_owned();
        *lock(&self.0).entry(name).or_default() += 1;
        Ok(())
    }
}

/// A store and a secret store whose calls go through `faults`, with no SDK retries (a
/// fault is a fault).
pub fn clients_with_faults(
    sdk: &shared::aws::SdkConfig,
    config: &shared::config::Config,
    faults: &AwsFaults,
) -> (shared::store::Store, shared::secrets::SecretStore) {
    let ddb = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(faults.clone())
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let sm = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .interceptor(faults.clone())
        .retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
        .build();
    (
        shared::store::Store::new(
            aws_sdk_dynamodb::Client::from_conf(ddb),
            config.table_name.clone(),
        ),
        shared::secrets::SecretStore::new(
            aws_sdk_secretsmanager::Client::from_conf(sm),
            config.secret_prefix.clone(),
        ),
    )
}

/// A reqwest client for the tests' own HTTP calls (the local API, the emulator's admin).
/// The workspace's reqwest has no crypto provider of its own (issue 18: the functions give
/// theirs, ring, through `shared::tls`), so ring is first made the process's default.
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("reqwest client")
}

/// The same, to configure (timeouts, pool) before building.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Every e-mail moto's SES accepted, in sending order (its `moto-api/data.json` state).
pub async fn moto_mails() -> Vec<serde_json::Value> {
    let endpoint = env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:5000");
    let data: serde_json::Value = http_client()
        .get(format!("{endpoint}/moto-api/data.json"))
        .send()
        .await
        .expect("moto's state")
        .json()
        .await
        .expect("moto's state as JSON");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The emulator's seeded supplier accounts (`tests/fixtures/chorus-sandbox-seed.json`, the
/// table in `tests/src/sandbox/mod.rs`): the tests name them from here.
pub mod seeded {
    pub struct Account {
        /// Its first structure.
        pub siret: &'static str,
        pub login: &'static str,
        pub password: &'static str,
    }

    /// A valid account, one structure.
    pub const RHONE: Account = Account {
        siret: "81234567600017",
        login: "TECH_1_batiments-rhone@cpro.fr",
        password: "Rhone-Tech-2026!",
    };
    /// A valid account, two structures (the second is `ALPES_SECOND_SIRET`).
    pub const ALPES: Account = Account {
        siret: "79876543400013",
        login: "TECH_1_charpentes-alpes@cpro.fr",
        password: "Alpes-Tech-2026!",
    };
    pub const ALPES_SECOND_SIRET: &str = "79876543400021";
    /// A password expired on 2025-06-30: Chorus Pro answers 401.
    pub const JURA: Account = Account {
        siret: "52345678800018",
        login: "TECH_1_maconnerie-jura@cpro.fr",
        password: "Jura-Tech-2024!",
    };
    /// Free for the password renewal and expiry tests.
    pub const EST: Account = Account {
        siret: "44455566800011",
        login: "TECH_1_tp-est@cpro.fr",
        password: "Est-Tech-2026!",
    };

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_names_match_the_emulator_seed() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/chorus-sandbox-seed.json"
            );
            let seed: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("seed")).expect("json");
            let accounts = seed["technicalAccounts"].as_array().expect("accounts");
            for (account, structures) in [
                (RHONE, vec![RHONE.siret]),
                (ALPES, vec![ALPES.siret, ALPES_SECOND_SIRET]),
                (JURA, vec![JURA.siret]),
                (EST, vec![EST.siret]),
            ] {
                let found = accounts
                    .iter()
                    .find(|a| a["login"] == account.login)
                    .unwrap_or_else(|| panic!("{} is not seeded", account.login));
                assert_eq!(found["password"], account.password, "{}", account.login);
                assert_eq!(
                    found["structures"],
                    serde_json::json!(structures),
                    "{}",
                    account.login
                );
            }
        }
    }
}
