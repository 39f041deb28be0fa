//! Issue 19: Chorus Pro's answers in the shapes AIFE publishes
//! (`tests/fixtures/chorus-published/`, each file with its page in that folder's README).
//!
//! - every published answer is read by the client, through HTTP (the emulator serves the
//!   example as is), and its key fields come out right;
//! - the emulator answers each call that has a published example with the same key sets,
//!   in both value shapes (`published`, `libraries`);
//! - an answer that cannot be read is `ChorusError::UnexpectedAnswer`, saying where, not what.
//!
//! Each test starts its own emulator: switching shapes reaches no other test.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gateway_tests::sandbox::{
    Fault, FaultAction, Progress, SandboxConfig, SandboxHandle, Shapes, spawn,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::chorus::{
    BuyerRequirement, ChorusClient, ChorusConfig, ChorusError, CommitmentSearchRequest,
    FluxDeposit, FluxReportRequest, FluxState, ServiceReadRequest, ServiceSearchRequest,
    StaticPisteCredentials, StructureReadRequest, StructureSearchRequest, TechnicalAccount,
    parse_chorus_datetime,
};

const LOGIN: &str = gateway_tests::testkit::seeded::RHONE.login;
const PASSWORD: &str = gateway_tests::testkit::seeded::RHONE.password;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/fixtures/chorus-published/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn answer(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("{name}.response.json"))).unwrap()
}

fn rhone() -> TechnicalAccount {
    TechnicalAccount::new(LOGIN, PASSWORD)
}

async fn emulator(shapes: Shapes) -> (SandboxHandle, ChorusClient) {
    let sandbox = spawn(SandboxConfig {
        shapes,
        progress: Progress::Manual,
        ..SandboxConfig::default()
    })
    .await;
    let mut config = ChorusConfig::new(sandbox.api_url(), sandbox.token_url());
    config.max_retries = 0;
    let http = ChorusClient::build_http_client(&config).unwrap();
    let client = ChorusClient::new(
        http,
        config,
        Arc::new(StaticPisteCredentials::new(
            "gateway-local",
            "gateway-local-secret",
        )),
    );
    (sandbox, client)
}

/// The emulator answers the next call to `path` with this published example, as is.
fn serve(sandbox: &SandboxHandle, path: &str, body: Value) {
    sandbox.sandbox().add_fault(Fault::once(
        format!("/cpro/{path}"),
        FaultAction::Respond { status: 200, body },
    ));
}

// ---------------------------------------------------------------------------------------
// The published answers, read by the client

#[tokio::test]
async fn the_published_structure_answers_are_read() {
    let (sandbox, client) = emulator(Shapes::Libraries).await;
    serve(
        &sandbox,
        "structures/v1/rechercher",
        answer("search_structure"),
    );
    let found = client
        .search_structures(
            &rhone(),
            &StructureSearchRequest::by_siret("99999999999999"),
        )
        .await
        .expect("a number identifiantStructure is read");
    let read: Vec<(i64, &str, Option<&str>)> = found
        .liste_structures
        .iter()
        .map(|s| {
            (
                s.id_structure_cpp,
                s.identifiant_structure.as_str(),
                s.designation_structure.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        read,
        vec![
            (663192, "99999999999999", Some("ASA LA MARE FLEURIE")),
            (
                16,
                "96587451235874",
                Some("Tribunal de Grande Instance de Toulouse")
            ),
        ]
    );

    serve(
        &sandbox,
        "structures/v1/consulter",
        answer("show_structure"),
    );
    let structure = client
        .read_structure(&rhone(), &StructureReadRequest::new(501403))
        .await
        .unwrap();
    let general = structure.information_generales.as_ref().unwrap();
    assert_eq!(general.id_structure_cpp, Some(501403));
    assert_eq!(
        general.identifiant_structure.as_deref(),
        Some("11300201100003")
    );
    assert_eq!(
        general.type_identifiant_structure.as_deref(),
        Some("UE_HORS_FRANCE")
    );
    assert_eq!(
        structure.requirement(),
        BuyerRequirement::ServiceOrCommitment
    );
}

#[tokio::test]
async fn the_published_service_answers_are_read() {
    let (sandbox, client) = emulator(Shapes::Libraries).await;
    serve(
        &sandbox,
        "structures/v1/rechercher/services",
        answer("search_services"),
    );
    let services = client
        .search_services(&rhone(), &ServiceSearchRequest::page(144, 1))
        .await
        .unwrap();
    assert_eq!(services.liste_services.len(), 6);
    let first = &services.liste_services[0];
    assert_eq!(
        (
            first.id_service,
            first.code_service.as_str(),
            first.est_actif
        ),
        (1928, "MIN_JUSTICE", true)
    );
    let start = first.date_dbt_service.as_deref().unwrap();
    assert_eq!(start, "1947-05-16 00:00");
    assert!(parse_chorus_datetime(start).is_some());
    assert_eq!(services.parametres_retour.unwrap().total, 6);

    serve(
        &sandbox,
        "structures/v1/consulter/service",
        answer("show_service"),
    );
    let service = client
        .read_service(&rhone(), &ServiceReadRequest::new(5000025350, 4066352))
        .await
        .unwrap();
    assert!(!service.requires_commitment());
    assert_eq!(
        service
            .informations_generales
            .unwrap()
            .code_service
            .as_deref(),
        Some("SERVICE_FOURNISSEURTST084")
    );
    let created = service.parametres.unwrap().date_creation.unwrap();
    assert!(parse_chorus_datetime(&created).is_some(), "{created}");
}

#[tokio::test]
async fn the_published_commitment_answer_is_read_with_its_field_names() {
    let (sandbox, client) = emulator(Shapes::Libraries).await;
    serve(
        &sandbox,
        "engagementsJuridiques/v1/rechercher",
        answer("search_commitment"),
    );
    let found = client
        .search_commitments(&rhone(), &CommitmentSearchRequest::ordered(1, "147853"))
        .await
        .unwrap();
    assert_eq!(found.liste_engagement_juridique.len(), 1);
    let ej = &found.liste_engagement_juridique[0];
    assert_eq!(ej.id_engagement_juridique, Some(4));
    assert_eq!(ej.numero_engagement_juridique.as_deref(), Some("147853"));
    assert_eq!(ej.libelle_etat_courant_ej.as_deref(), Some("COMMANDE"));
    assert!(ej.is_ordered());
    assert_eq!(
        ej.structure_receptrice.as_deref(),
        Some("DEV088DESTINATAIRE")
    );
    assert_eq!(ej.identifiant_structure_receptrice, None);
    assert_eq!(ej.code_service_executant.as_deref(), Some("SERVICE_DEFAUT"));
    assert_eq!(ej.montant_total_ttc, Some(Decimal::new(5000, 0)));
    assert_eq!(
        ej.libelle_type_engagement_juridique.as_deref(),
        Some("BON_DE_COMMANDE")
    );
    assert!(parse_chorus_datetime(ej.date_notification_ej.as_deref().unwrap()).is_some());
}

/// The page's answer has a trailing comma (invalid JSON); the fixture the tests read is
/// that answer with the comma removed, and nothing else.
#[test]
fn the_commitment_answer_as_published_differs_from_its_valid_copy_by_one_comma() {
    let published = fixture("search_commitment.response.as-published.json");
    assert!(serde_json::from_str::<Value>(&published).is_err());
    let valid = fixture("search_commitment.response.json");
    assert_eq!(
        published.replacen("\"taillePJ\": null,", "\"taillePJ\": null", 1),
        valid
    );
}

#[tokio::test]
async fn the_published_detailed_report_with_one_error_object_is_read() {
    let (sandbox, client) = emulator(Shapes::Libraries).await;
    serve(
        &sandbox,
        "transverses/v1/consulterCRDetaille",
        answer("detailed_report"),
    );
    let report = client
        .read_flux_report(
            &rhone(),
            &FluxReportRequest::new("CPP0011110000000000001557"),
        )
        .await
        .expect("a single-object listeErreurDP is read");
    assert_eq!(
        report.etat_courant_depot_flux,
        Some(FluxState::IntegrePartiel)
    );
    assert_eq!(report.liste_erreur_dp.len(), 1);
    let error = &report.liste_erreur_dp[0];
    assert_eq!(error.numero_dp.as_deref(), Some("F1110_NBO050740100"));
    assert_eq!(
        error.identifiant_destinataire.as_deref(),
        Some("00000000005734")
    );
    assert!(
        error
            .libelle_erreur_dp
            .as_deref()
            .is_some_and(|m| m.contains("n'est pas reference dans notre systeme"))
    );
    let at = report.date_heure_etat_courant_flux.as_deref().unwrap();
    assert!(parse_chorus_datetime(at).is_some(), "{at}");
}

// ---------------------------------------------------------------------------------------
// Answers that cannot be read

#[tokio::test]
async fn an_unreadable_answer_says_where_not_what() {
    let (sandbox, client) = emulator(Shapes::Libraries).await;
    serve(
        &sandbox,
        "structures/v1/rechercher",
        json!({"codeRetour": 0, "libelle": "TRA_MSG_00.000",
               "listeStructures": [{"idStructureCPP": "SECRET-LOOKING-VALUE"}]}),
    );
    let error = client
        .search_structures(
            &rhone(),
            &StructureSearchRequest::by_siret("21690123100011"),
        )
        .await
        .unwrap_err();
    let ChorusError::UnexpectedAnswer { path, error: why } = &error else {
        panic!("expected UnexpectedAnswer, got {error:?}");
    };
    assert_eq!(*path, "structures/v1/rechercher");
    assert!(why.contains("listeStructures"), "{why}");
    assert!(why.contains("idStructureCPP"), "{why}");
    assert!(
        !error.to_string().contains("SECRET-LOOKING-VALUE"),
        "{error}"
    );

    // A deposit answered without its flux number may be recorded: reconcile first.
    serve(
        &sandbox,
        "factures/v1/deposer/flux",
        json!({"codeRetour": 0, "libelle": "TRA_MSG_00.000"}),
    );
    let error = client
        .deposit_flux(&rhone(), &FluxDeposit::ubl("x.xml", b"<Invoice/>"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ChorusError::UnexpectedAnswer {
                path: "factures/v1/deposer/flux",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.deposit_may_be_recorded());
}

// ---------------------------------------------------------------------------------------
// The emulator's answers: the published field names, in both value shapes

/// Every key path of an answer: `a.b`, `liste[].c`; a `liste…` sent as one object counts as
/// a list of one (the shapes differ there, not the names).
fn key_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let is_list = key.starts_with("liste");
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                match inner {
                    Value::Object(_) if is_list => key_paths(inner, &format!("{path}[]"), out),
                    _ => key_paths(inner, &path, out),
                }
            }
        }
        Value::Array(items) => {
            let path = if prefix.ends_with("[]") {
                prefix.to_owned()
            } else {
                format!("{prefix}[]")
            };
            for item in items {
                key_paths(item, &path, out);
            }
        }
        _ => {}
    }
}

fn paths(value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    key_paths(value, "", &mut out);
    out
}

/// Raw calls to the emulator, to see its answers as sent.
struct Raw {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Raw {
    async fn new(sandbox: &SandboxHandle) -> Raw {
        let http = gateway_tests::testkit::http_client();
        let token: Value = http
            .post(sandbox.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=gateway-local&client_secret=gateway-local-secret&scope=openid")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Raw {
            http,
            base: sandbox.api_url(),
            token: token["access_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .bearer_auth(&self.token)
            .header("cpro-account", BASE64.encode(format!("{LOGIN}:{PASSWORD}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }
}

/// (call, published example, request to the emulator, key paths the emulator may add and
/// why).
fn calls() -> Vec<(&'static str, &'static str, Value, Vec<&'static str>)> {
    vec![
        (
            "structures/v1/rechercher",
            "search_structure",
            json!({"structure": {"identifiantStructure": "21380456000018", "typeIdentifiantStructure": "SIRET"}}),
            // The stored copy of the page is cut inside the list: its end is lost.
            vec![
                "parametresRetour",
                "parametresRetour.nbResultatsParPage",
                "parametresRetour.pageCourante",
                "parametresRetour.pages",
                "parametresRetour.total",
            ],
        ),
        (
            "structures/v1/consulter",
            "show_structure",
            json!({"idStructureCPP": 26200002, "codeLangue": "FR"}),
            // Read by OCA's requirement mapping (docs/chorus-pro.md#buyer-requirements), not in the example.
            vec!["parametres.estMoaUniquement"],
        ),
        (
            "structures/v1/rechercher/services",
            "search_services",
            json!({"idStructure": 26200002, "parametresRechercherServicesStructure": {"nbResultatsParPage": 1000}}),
            vec![],
        ),
        (
            "structures/v1/consulter/service",
            "show_service",
            json!({"idStructure": 26200002, "idService": 36200021, "codeLangue": "FR"}),
            vec![],
        ),
        (
            "engagementsJuridiques/v1/rechercher",
            "search_commitment",
            // The supplier (Rhône) the commitment is issued to (docs/chorus-pro.md#commitment-ej-search).
            json!({"structureReceptriceEngagementJuridique": "26100001", "numeroEngagementJuridique": "1300012345"}),
            vec![],
        ),
    ]
}

async fn emulator_key_sets_match(shapes: Shapes) {
    let (sandbox, client) = emulator(shapes).await;
    let raw = Raw::new(&sandbox).await;
    for (path, example, request, extra) in calls() {
        let emulated = raw.call(path, request).await;
        let mut expected = paths(&answer(example));
        expected.extend(extra.iter().map(|p| (*p).to_owned()));
        assert_eq!(
            paths(&emulated),
            expected,
            "{path} ({shapes:?}): {emulated}"
        );
        if path == "structures/v1/rechercher" {
            let id = &emulated["listeStructures"][0]["identifiantStructure"];
            match shapes {
                Shapes::Published => assert_eq!(id, &json!(21380456000018_u64)),
                Shapes::Libraries => assert_eq!(id, &json!("21380456000018")),
            }
        }
    }

    // A flux rejected for one reason (unknown buyer), then its detailed report.
    let file = ubl_for_unknown_buyer();
    let deposited = client
        .deposit_flux(&rhone(), &FluxDeposit::ubl("pub.xml", file.as_bytes()))
        .await
        .unwrap();
    sandbox
        .sandbox()
        .advance(Some(&deposited.numero_flux_depot), None);
    let report = raw
        .call(
            "transverses/v1/consulterCRDetaille",
            json!({"numeroFluxDepot": deposited.numero_flux_depot}),
        )
        .await;
    assert_eq!(report["etatCourantDepotFlux"], "IN_REJETE", "{report}");
    assert_eq!(
        paths(&report),
        paths(&answer("detailed_report")),
        "consulterCRDetaille ({shapes:?}): {report}"
    );
    match shapes {
        Shapes::Published => assert!(report["listeErreurDP"].is_object(), "{report}"),
        Shapes::Libraries => assert!(report["listeErreurDP"].is_array(), "{report}"),
    }
    // And the client reads it either way.
    let typed = client
        .read_flux_report(
            &rhone(),
            &FluxReportRequest::new(&deposited.numero_flux_depot),
        )
        .await
        .unwrap();
    assert_eq!(typed.liste_erreur_dp.len(), 1);
}

fn ubl_for_unknown_buyer() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>PUB-SHAPES-1</cbc:ID>
  <cbc:IssueDate>2026-11-30</cbc:IssueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyIdentification><cbc:ID schemeID="1">81234567600017</cbc:ID></cac:PartyIdentification>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cac:PartyLegalEntity><cbc:CompanyID schemeID="0009">21000000000000</cbc:CompanyID></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal>
    <cbc:PayableAmount currencyID="EUR">100.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
</Invoice>"#
        .to_owned()
}

#[tokio::test]
async fn the_emulator_answers_with_the_published_key_sets_in_published_shapes() {
    emulator_key_sets_match(Shapes::Published).await;
}

#[tokio::test]
async fn the_emulator_answers_with_the_published_key_sets_in_library_shapes() {
    emulator_key_sets_match(Shapes::Libraries).await;
}

#[tokio::test]
async fn the_shapes_switch_is_an_admin_setting_that_a_reset_restores() {
    let (sandbox, _client) = emulator(Shapes::Libraries).await;
    let http = gateway_tests::testkit::http_client();
    let url = format!("{}/_admin/settings", sandbox.base_url());
    let settings: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(settings["shapes"], "libraries");
    let changed = http
        .put(&url)
        .json(&json!({"shapes": "published"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(sandbox.sandbox().shapes(), Shapes::Published);
    let refused = http
        .put(&url)
        .json(&json!({"shapes": "xml"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(sandbox.sandbox().shapes(), Shapes::Published);
    sandbox.sandbox().reset();
    assert_eq!(sandbox.sandbox().shapes(), Shapes::Libraries);
}
