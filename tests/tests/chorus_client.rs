//! The Chorus Pro client (`shared::chorus`) against an in-process sandbox emulator: every
//! call, every fault. Each test starts its own emulator on a free port.
//!
//! Run: `cargo test -p gateway-tests --test chorus_client`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gateway_tests::sandbox::{
    AccountUpdate, Fault, FaultAction, InvoiceScript, LostMode, SandboxConfig, SandboxHandle,
    ScriptStep, Shapes, spawn,
};
use gateway_tests::testkit::seeded;
use shared::chorus::{
    BuyerRequirement, ChorusClient, ChorusConfig, ChorusError, CommitmentSearchRequest,
    FluxDeposit, FluxOutcome, FluxReportRequest, FluxState, InvoiceHistoryRequest, InvoiceStatus,
    ServiceReadRequest, ServiceSearchRequest, StaticPisteCredentials, StructureReadRequest,
    StructureSearchRequest, SupplierInvoiceSearch, TechnicalAccount,
};

const CLIENT_ID: &str = "gateway-local";
const CLIENT_SECRET: &str = "gateway-local-secret";
const TOKEN_PATH: &str = "/api/oauth/token";
const DEPOSIT_PATH: &str = "/cpro/factures/v1/deposer/flux";

const RHONE_SIRET: &str = seeded::RHONE.siret;
const COMMUNE_SIRET: &str = "21690123100011";
const ISERE_SIRET: &str = "21380456000018";

fn rhone() -> TechnicalAccount {
    TechnicalAccount::new(seeded::RHONE.login, seeded::RHONE.password)
}

fn alpes() -> TechnicalAccount {
    TechnicalAccount::new(seeded::ALPES.login, seeded::ALPES.password)
}

/// Small timeouts and backoffs so the whole file runs in seconds.
fn fast_config(sandbox: &SandboxHandle) -> ChorusConfig {
    let mut config = ChorusConfig::new(sandbox.api_url(), sandbox.token_url());
    config.connect_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_millis(800);
    config.max_retries = 2;
    config.initial_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(100);
    config.max_retry_after = Duration::from_secs(2);
    config
}

fn client_with(config: ChorusConfig, client_id: &str, secret: &str) -> ChorusClient {
    let http = ChorusClient::build_http_client(&config).expect("HTTP client");
    ChorusClient::new(
        http,
        config,
        Arc::new(StaticPisteCredentials::new(client_id, secret)),
    )
}

async fn setup() -> (SandboxHandle, ChorusClient) {
    setup_with(Shapes::Libraries).await
}

/// An emulator answering in the value shapes of the client libraries or of AIFE's
/// published examples (issue 19): the calls below run in both.
async fn setup_with(shapes: Shapes) -> (SandboxHandle, ChorusClient) {
    let sandbox = spawn(SandboxConfig {
        shapes,
        ..SandboxConfig::default()
    })
    .await;
    let client = client_with(fast_config(&sandbox), CLIENT_ID, CLIENT_SECRET);
    (sandbox, client)
}

fn count(sandbox: &SandboxHandle, prefix: &str) -> usize {
    sandbox.sandbox().journal(Some(prefix)).len()
}

fn statuses(sandbox: &SandboxHandle, prefix: &str) -> Vec<Option<u16>> {
    sandbox
        .sandbox()
        .journal(Some(prefix))
        .iter()
        .map(|e| e.status)
        .collect()
}

/// A minimal UBL invoice with the routing data the emulator reads.
fn ubl(
    number: &str,
    seller: &str,
    buyer: &str,
    service: Option<&str>,
    ej: Option<&str>,
) -> Vec<u8> {
    let service = service
        .map(|s| format!("<cbc:BuyerReference>{s}</cbc:BuyerReference>"))
        .unwrap_or_default();
    let ej = ej
        .map(|e| format!("<cac:OrderReference><cbc:ID>{e}</cbc:ID></cac:OrderReference>"))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
  <cbc:ProfileID>A4</cbc:ProfileID>
  <cbc:ID>{number}</cbc:ID>
  <cbc:IssueDate>2026-11-30</cbc:IssueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  {service}
  {ej}
  <cac:ContractDocumentReference><cbc:ID>2026-TRV-014</cbc:ID></cac:ContractDocumentReference>
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyIdentification><cbc:ID schemeID="1">{seller}</cbc:ID></cac:PartyIdentification>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cac:PartyLegalEntity><cbc:RegistrationName>Acheteur</cbc:RegistrationName>
      <cbc:CompanyID schemeID="0009">{buyer}</cbc:CompanyID></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal>
    <cbc:TaxExclusiveAmount currencyID="EUR">11875.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="EUR">14250.00</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="EUR">14250.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
</Invoice>"#
    )
    .into_bytes()
}

fn deposit_of(
    number: &str,
    buyer: &str,
    service: Option<&str>,
    ej: Option<&str>,
) -> FluxDeposit<'static> {
    FluxDeposit::ubl_owned(
        format!("{number}.xml"),
        ubl(number, RHONE_SIRET, buyer, service, ej),
    )
}

fn unavailable(error: &ChorusError) -> Option<bool> {
    match error {
        ChorusError::Unavailable {
            may_have_reached_chorus,
        } => Some(*may_have_reached_chorus),
        _ => None,
    }
}

/// Deposits and polls the flux report until the flux leaves its pending state.
async fn deposit_and_integrate(
    client: &ChorusClient,
    deposit: &FluxDeposit<'_>,
) -> (String, shared::chorus::FluxReport) {
    let accepted = client
        .deposit_flux(&rhone(), deposit)
        .await
        .expect("deposit accepted");
    for _ in 0..5 {
        let report = client
            .read_flux_report(
                &rhone(),
                &FluxReportRequest::new(&accepted.numero_flux_depot),
            )
            .await
            .expect("flux report");
        if report
            .etat_courant_depot_flux
            .as_ref()
            .map(FluxState::outcome)
            != Some(FluxOutcome::Pending)
        {
            return (accepted.numero_flux_depot, report);
        }
    }
    panic!("the flux never left its pending state");
}

// --- every call ------------------------------------------------------------------------------

#[tokio::test]
async fn structure_calls_answer_typed_data() {
    structure_calls_in(Shapes::Libraries).await;
}

#[tokio::test]
async fn structure_calls_answer_typed_data_in_published_shapes() {
    structure_calls_in(Shapes::Published).await;
}

async fn structure_calls_in(shapes: Shapes) {
    let (_sandbox, client) = setup_with(shapes).await;
    let found = client
        .search_structures(&rhone(), &StructureSearchRequest::by_siret(ISERE_SIRET))
        .await
        .unwrap();
    assert_eq!(found.liste_structures.len(), 1);
    let isere = &found.liste_structures[0];
    assert_eq!(isere.id_structure_cpp, 26200002);
    assert_eq!(isere.identifiant_structure, ISERE_SIRET);
    assert_eq!(
        isere.designation_structure.as_deref(),
        Some("DEPARTEMENT DE L'ISERE TEST")
    );

    let read = client
        .read_structure(&rhone(), &StructureReadRequest::new(isere.id_structure_cpp))
        .await
        .unwrap();
    assert_eq!(read.requirement(), BuyerRequirement::Service);
    for (id, expected) in [
        (26200001, BuyerRequirement::None),
        (26200003, BuyerRequirement::Commitment),
        (26200004, BuyerRequirement::ServiceAndCommitment),
        (26200005, BuyerRequirement::ServiceOrCommitment),
    ] {
        let read = client
            .read_structure(&rhone(), &StructureReadRequest::new(id))
            .await
            .unwrap();
        assert_eq!(read.requirement(), expected, "structure {id}");
    }

    // The emulator pages services two by two (seed `servicesPerPage`), whatever is asked.
    let first = client
        .search_services(
            &rhone(),
            &ServiceSearchRequest::page(isere.id_structure_cpp, 1),
        )
        .await
        .unwrap();
    assert_eq!(first.pages(), 2);
    let second = client
        .search_services(
            &rhone(),
            &ServiceSearchRequest::page(isere.id_structure_cpp, 2),
        )
        .await
        .unwrap();
    let services: Vec<_> = first
        .liste_services
        .into_iter()
        .chain(second.liste_services)
        .collect();
    let codes: Vec<(&str, bool)> = services
        .iter()
        .map(|s| (s.code_service.as_str(), s.est_actif))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("DIRINFRA", true),
            ("SERV_TRAVAUX_EJ", true),
            ("ANCIEN_SERVICE", false),
            ("FACTURES_PUBLIQUES", true)
        ]
    );
    assert!(services[3].is_reserved_for_public_bodies());

    let with_ej = client
        .read_service(&rhone(), &ServiceReadRequest::new(26200002, 36200022))
        .await
        .unwrap();
    assert!(with_ej.requires_commitment());
    let without_ej = client
        .read_service(&rhone(), &ServiceReadRequest::new(26200002, 36200021))
        .await
        .unwrap();
    assert!(!without_ej.requires_commitment());

    let ej = client
        .search_commitments(
            &rhone(),
            // Rhône's own structure: the region issued the commitment to it.
            &CommitmentSearchRequest::ordered(26100001, "1300012345"),
        )
        .await
        .unwrap();
    assert_eq!(ej.liste_engagement_juridique.len(), 1);
    let found = &ej.liste_engagement_juridique[0];
    assert_eq!(
        found.numero_engagement_juridique.as_deref(),
        Some("1300012345")
    );
    assert_eq!(found.libelle_etat_courant_ej.as_deref(), Some("COMMANDE"));
    assert!(found.is_ordered());
    assert_eq!(
        found.structure_receptrice.as_deref(),
        Some("81234567600017")
    );
    assert_eq!(
        found.montant_total_ttc,
        Some(rust_decimal::Decimal::new(240_000, 0))
    );
    let both = client
        .search_commitments(
            &rhone(),
            &CommitmentSearchRequest::ordered(26100001, "2200000001"),
        )
        .await
        .unwrap();
    assert_eq!(
        both.liste_engagement_juridique[0]
            .code_service_executant
            .as_deref(),
        Some("TRAVAUX")
    );
    let missing = client
        .search_commitments(&rhone(), &CommitmentSearchRequest::ordered(26100001, "999"))
        .await
        .unwrap();
    assert!(missing.liste_engagement_juridique.is_empty());
    // The buyer's own id finds nothing: commitments are filed under their supplier.
    let buyer_side = client
        .search_commitments(
            &rhone(),
            &CommitmentSearchRequest::ordered(26200003, "1300012345"),
        )
        .await
        .unwrap();
    assert!(buyer_side.liste_engagement_juridique.is_empty());

    let nobody = client
        .search_structures(
            &rhone(),
            &StructureSearchRequest::by_siret("99999999999999"),
        )
        .await
        .unwrap();
    assert!(nobody.liste_structures.is_empty());

    let mine = client.supplier_active_structures(&alpes()).await.unwrap();
    let sirets: Vec<&str> = mine
        .liste_structures
        .iter()
        .map(|s| s.identifiant.as_str())
        .collect();
    assert_eq!(sirets, vec!["79876543400013", "79876543400021"]);
}

#[tokio::test]
async fn deposit_follows_the_life_cycle_until_payment() {
    let (_sandbox, client) = setup().await;
    let deposit = deposit_of("SIT-2026-014-03", COMMUNE_SIRET, None, None);
    let accepted = client.deposit_flux(&rhone(), &deposit).await.unwrap();
    assert!(accepted.numero_flux_depot.starts_with("CPP"));
    assert_eq!(accepted.numero_flux_depot.len(), 25);

    let flux = FluxReportRequest::new(&accepted.numero_flux_depot);
    let first = client.read_flux_report(&rhone(), &flux).await.unwrap();
    assert_eq!(
        first.etat_courant_depot_flux,
        Some(FluxState::DepotPortailEnAttenteTraitementSeCpp)
    );
    let second = client.read_flux_report(&rhone(), &flux).await.unwrap();
    assert_eq!(second.etat_courant_depot_flux, Some(FluxState::Integre));
    assert!(second.liste_erreur_dp.is_empty());

    let found = client
        .search_supplier_invoices(
            &rhone(),
            &SupplierInvoiceSearch::by_flux(&accepted.numero_flux_depot),
        )
        .await
        .unwrap();
    assert_eq!(found.liste_factures.len(), 1);
    let invoice = &found.liste_factures[0];
    assert_eq!(invoice.numero_facture, "SIT-2026-014-03");
    assert_eq!(invoice.statut, Some(InvoiceStatus::Deposee));
    assert_eq!(
        invoice.montant_ttc.map(|m| m.to_string()).as_deref(),
        Some("14250")
    );
    assert_eq!(invoice.code_destinataire.as_deref(), Some(COMMUNE_SIRET));

    let by_number = client
        .search_supplier_invoices(
            &rhone(),
            &SupplierInvoiceSearch::by_invoice_number("SIT-2026-014-03"),
        )
        .await
        .unwrap();
    assert_eq!(
        by_number.liste_factures[0].identifiant_facture_cpp,
        invoice.identifiant_facture_cpp
    );

    let history = InvoiceHistoryRequest::new(invoice.identifiant_facture_cpp);
    let mut seen = Vec::new();
    for _ in 0..6 {
        let read = client
            .read_invoice_history(&rhone(), &history)
            .await
            .unwrap();
        seen.push(read.statut_courant_code.clone().unwrap());
    }
    assert_eq!(
        seen,
        vec![
            InvoiceStatus::Deposee,
            InvoiceStatus::MiseADisposition,
            InvoiceStatus::ServiceFait,
            InvoiceStatus::Mandatee,
            InvoiceStatus::MiseEnPaiement,
            InvoiceStatus::MiseEnPaiement,
        ]
    );
    let last = client
        .read_invoice_history(&rhone(), &history)
        .await
        .unwrap();
    assert_eq!(last.entries().len(), 5);
    assert_eq!(
        last.entries()[0].histo_statut_code,
        Some(InvoiceStatus::MiseEnPaiement),
        "newest first"
    );

    // Another supplier's account does not see this invoice.
    let hidden = client
        .search_supplier_invoices(
            &alpes(),
            &SupplierInvoiceSearch::by_invoice_number("SIT-2026-014-03"),
        )
        .await
        .unwrap();
    assert!(hidden.liste_factures.is_empty());
}

#[tokio::test]
async fn rejected_fluxes_list_the_reasons() {
    rejected_fluxes_in(Shapes::Libraries).await;
}

/// A `listeErreurDP` of one error comes as a single object: read the same.
#[tokio::test]
async fn rejected_fluxes_list_the_reasons_in_published_shapes() {
    rejected_fluxes_in(Shapes::Published).await;
}

async fn rejected_fluxes_in(shapes: Shapes) {
    let (_sandbox, client) = setup_with(shapes).await;
    let cases = [
        (
            deposit_of("NO-SERVICE-1", ISERE_SIRET, None, None),
            "code service doit etre renseigne",
        ),
        (
            deposit_of("INACTIVE-1", ISERE_SIRET, Some("ANCIEN_SERVICE"), None),
            "n'est pas actif",
        ),
        (
            deposit_of("PUBLIQUES-1", ISERE_SIRET, Some("FACTURES_PUBLIQUES"), None),
            "FACTURES_PUBLIQUES",
        ),
        (
            deposit_of("SERV-EJ-1", ISERE_SIRET, Some("SERV_TRAVAUX_EJ"), None),
            "exige un numero d'engagement",
        ),
        (
            deposit_of("EJ-UNKNOWN-1", "23750001200016", None, Some("999")),
            "n'existe pas",
        ),
        (
            deposit_of("BUYER-1", "21000000000000", None, None),
            "identifiant destinataire",
        ),
        (
            deposit_of("NUMBER-TOO-LONG-12345", COMMUNE_SIRET, None, None),
            "20 caracteres",
        ),
        (
            deposit_of("BAD*CHAR", COMMUNE_SIRET, None, None),
            "non autorises",
        ),
        (
            FluxDeposit::ubl_owned(
                "x.xml",
                ubl("OTHER-SELLER", "79876543400013", COMMUNE_SIRET, None, None),
            ),
            "identifiant fournisseur",
        ),
    ];
    for (deposit, reason) in cases {
        let (_, report) = deposit_and_integrate(&client, &deposit).await;
        assert_eq!(
            report.etat_courant_depot_flux,
            Some(FluxState::Rejete),
            "{reason}"
        );
        assert_eq!(
            report
                .etat_courant_depot_flux
                .as_ref()
                .map(FluxState::outcome),
            Some(FluxOutcome::Rejected)
        );
        let messages: Vec<String> = report
            .liste_erreur_dp
            .iter()
            .filter_map(|e| e.libelle_erreur_dp.clone())
            .collect();
        assert!(
            messages.iter().any(|m| m.contains(reason)),
            "expected {reason:?} in {messages:?}"
        );
    }

    // Requirements met: accepted.
    for deposit in [
        deposit_of("OK-SERVICE", ISERE_SIRET, Some("DIRINFRA"), None),
        deposit_of("OK-EJ", "23750001200016", None, Some("1300012345")),
        deposit_of(
            "OK-BOTH",
            "20001234200016",
            Some("TRAVAUX"),
            Some("2200000001"),
        ),
        deposit_of("OK-EITHER", "26690789800016", None, Some("4500001")),
    ] {
        let (_, report) = deposit_and_integrate(&client, &deposit).await;
        assert_eq!(report.etat_courant_depot_flux, Some(FluxState::Integre));
    }

    // The same number twice: the second flux is rejected.
    let (_, first) =
        deposit_and_integrate(&client, &deposit_of("DUP-1", COMMUNE_SIRET, None, None)).await;
    assert_eq!(first.etat_courant_depot_flux, Some(FluxState::Integre));
    let (_, second) =
        deposit_and_integrate(&client, &deposit_of("DUP-1", COMMUNE_SIRET, None, None)).await;
    assert_eq!(second.etat_courant_depot_flux, Some(FluxState::Rejete));
    assert!(
        second.liste_erreur_dp[0]
            .libelle_erreur_dp
            .as_deref()
            .is_some_and(|m| m.contains("deja ete utilise"))
    );
    assert_eq!(
        second.liste_erreur_dp[0].numero_dp.as_deref(),
        Some("DUP-1")
    );
}

#[tokio::test]
async fn scripted_statuses_and_unknown_status_kept_as_text() {
    let (sandbox, client) = setup().await;
    sandbox.sandbox().script_invoice(InvoiceScript {
        numero_facture: "SCRIPT-1".into(),
        steps: vec![
            ScriptStep::new("A_VALIDER_1", None),
            ScriptStep::new("A_RECYCLER", Some("Code service errone")),
        ],
        flux_rejection: None,
    });
    let (numero_flux, report) =
        deposit_and_integrate(&client, &deposit_of("SCRIPT-1", COMMUNE_SIRET, None, None)).await;
    assert_eq!(report.etat_courant_depot_flux, Some(FluxState::Integre));
    let invoice = client
        .search_supplier_invoices(&rhone(), &SupplierInvoiceSearch::by_flux(&numero_flux))
        .await
        .unwrap()
        .liste_factures
        .remove(0);
    let history = InvoiceHistoryRequest::new(invoice.identifiant_facture_cpp);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let read = client
            .read_invoice_history(&rhone(), &history)
            .await
            .unwrap();
        statuses.push(read.statut_courant_code.clone().unwrap());
    }
    assert_eq!(
        statuses,
        vec![
            InvoiceStatus::Deposee,
            InvoiceStatus::Other("A_VALIDER_1".into()),
            InvoiceStatus::ARecycler
        ]
    );
    let read = client
        .read_invoice_history(&rhone(), &history)
        .await
        .unwrap();
    assert_eq!(
        read.entries()[0].histo_statut_commentaire.as_deref(),
        Some("Code service errone")
    );
    let found = client
        .search_supplier_invoices(&rhone(), &SupplierInvoiceSearch::by_flux(&numero_flux))
        .await
        .unwrap();
    assert_eq!(
        found.liste_factures[0].commentaire_etat_courant.as_deref(),
        Some("Code service errone")
    );

    // Forced status, and a forced flux rejection.
    assert_eq!(
        sandbox
            .sandbox()
            .force_invoice_status("SCRIPT-1", "SUSPENDUE", Some("Piece manquante")),
        1
    );
    let read = client
        .read_invoice_history(&rhone(), &history)
        .await
        .unwrap();
    assert_eq!(read.statut_courant_code, Some(InvoiceStatus::Suspendue));
    sandbox.sandbox().script_invoice(InvoiceScript {
        numero_facture: "FORCED-REJECT".into(),
        steps: Vec::new(),
        flux_rejection: Some("Rejet scripte".into()),
    });
    let (_, report) = deposit_and_integrate(
        &client,
        &deposit_of("FORCED-REJECT", COMMUNE_SIRET, None, None),
    )
    .await;
    assert_eq!(report.etat_courant_depot_flux, Some(FluxState::Rejete));
    assert_eq!(
        report.liste_erreur_dp[0].libelle_erreur_dp.as_deref(),
        Some("Rejet scripte")
    );

    // An unknown flux state from Chorus Pro is kept as text too.
    sandbox.sandbox().add_fault(Fault::once(
        "/cpro/transverses/v1/consulterCRDetaille",
        FaultAction::Respond {
            status: 200,
            body: serde_json::json!({"codeRetour": 0, "libelle": "TRA_MSG_00.000",
                                     "etatCourantDepotFlux": "IN_NOUVEL_ETAT"}),
        },
    ));
    let report = client
        .read_flux_report(&rhone(), &FluxReportRequest::new(&numero_flux))
        .await
        .unwrap();
    assert_eq!(
        report.etat_courant_depot_flux,
        Some(FluxState::Other("IN_NOUVEL_ETAT".into()))
    );
    assert_eq!(
        report.etat_courant_depot_flux.map(|s| s.outcome()),
        Some(FluxOutcome::Unknown)
    );
}

// --- token -----------------------------------------------------------------------------------

#[tokio::test]
async fn many_calls_make_one_token_request() {
    let (sandbox, client) = setup().await;
    let client = Arc::new(client);
    // Cold client, concurrent calls: they wait for one token request.
    let mut concurrent = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let client = Arc::clone(&client);
        concurrent.spawn(async move { client.supplier_active_structures(&rhone()).await });
    }
    while let Some(result) = concurrent.join_next().await {
        result.unwrap().unwrap();
    }
    for _ in 0..5 {
        client.supplier_active_structures(&rhone()).await.unwrap();
    }
    assert_eq!(count(&sandbox, TOKEN_PATH), 1);
    assert_eq!(count(&sandbox, "/cpro/"), 15);
    let token_request = &sandbox.sandbox().journal(Some(TOKEN_PATH))[0];
    let form = token_request
        .headers
        .get("content-type")
        .cloned()
        .unwrap_or_default();
    assert_eq!(form, "application/x-www-form-urlencoded");
    assert_eq!(
        token_request.body,
        Some(serde_json::Value::String(
            "grant_type=client_credentials&client_id=gateway-local&client_secret=gateway-local-secret&scope=openid".into()
        ))
    );
    let call = &sandbox.sandbox().journal(Some("/cpro/"))[0];
    assert_eq!(
        call.header("cpro-account"),
        Some(
            BASE64
                .encode("TECH_1_batiments-rhone@cpro.fr:Rhone-Tech-2026!")
                .as_str()
        )
    );
    assert_eq!(
        call.header("content-type"),
        Some("application/json;charset=utf-8")
    );
    assert!(
        call.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer sbx-"))
    );
}

#[tokio::test]
async fn token_is_renewed_before_it_expires() {
    let sandbox = spawn(SandboxConfig {
        token_lifetime: Some(Duration::from_secs(2)),
        ..SandboxConfig::default()
    })
    .await;
    let mut config = fast_config(&sandbox);
    config.token_renewal_margin = Duration::ZERO;
    let client = client_with(config, CLIENT_ID, CLIENT_SECRET);
    client.supplier_active_structures(&rhone()).await.unwrap();
    client.supplier_active_structures(&rhone()).await.unwrap();
    assert_eq!(count(&sandbox, TOKEN_PATH), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    client.supplier_active_structures(&rhone()).await.unwrap();
    assert_eq!(count(&sandbox, TOKEN_PATH), 2);
    // Renewed ahead of time: PISTE never had to refuse an expired token.
    assert_eq!(statuses(&sandbox, "/cpro/"), vec![Some(200); 3]);
}

#[tokio::test]
async fn refused_token_is_renewed_once_and_the_call_sent_again() {
    let (sandbox, client) = setup().await;
    sandbox
        .sandbox()
        .add_fault(Fault::once("/cpro/", FaultAction::PisteUnauthorized));
    client.supplier_active_structures(&rhone()).await.unwrap();
    assert_eq!(count(&sandbox, TOKEN_PATH), 2);
    assert_eq!(statuses(&sandbox, "/cpro/"), vec![Some(401), Some(200)]);

    // A deposit refused by PISTE never reached Chorus Pro: sent again once, recorded once.
    sandbox
        .sandbox()
        .add_fault(Fault::once(DEPOSIT_PATH, FaultAction::PisteUnauthorized));
    client
        .deposit_flux(
            &rhone(),
            &deposit_of("PISTE-RETRY", COMMUNE_SIRET, None, None),
        )
        .await
        .unwrap();
    assert_eq!(statuses(&sandbox, DEPOSIT_PATH), vec![Some(401), Some(200)]);
    assert_eq!(sandbox.sandbox().deposits().len(), 1);
}

#[tokio::test]
async fn piste_refusing_twice_is_gateway_not_authorised() {
    let (sandbox, client) = setup().await;
    sandbox
        .sandbox()
        .add_fault(Fault::always("/cpro/", FaultAction::PisteForbidden));
    let error = client
        .supplier_active_structures(&rhone())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ChorusError::GatewayNotAuthorised),
        "{error:?}"
    );
    assert_eq!(count(&sandbox, TOKEN_PATH), 2);
    assert_eq!(statuses(&sandbox, "/cpro/"), vec![Some(403), Some(403)]);
}

#[tokio::test]
async fn bad_piste_credentials_are_gateway_not_authorised() {
    let sandbox = spawn(SandboxConfig::default()).await;
    for (id, secret) in [(CLIENT_ID, "wrong-secret"), ("unknown-app", CLIENT_SECRET)] {
        let client = client_with(fast_config(&sandbox), id, secret);
        let error = client
            .supplier_active_structures(&rhone())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ChorusError::GatewayNotAuthorised),
            "{error:?}"
        );
    }
    // Refused at once, never retried, nothing sent to Chorus Pro.
    assert_eq!(statuses(&sandbox, TOKEN_PATH), vec![Some(400), Some(400)]);
    assert_eq!(count(&sandbox, "/cpro/"), 0);

    // The same through an injected refusal of the right credentials.
    let client = client_with(fast_config(&sandbox), CLIENT_ID, CLIENT_SECRET);
    sandbox
        .sandbox()
        .add_fault(Fault::once(TOKEN_PATH, FaultAction::InvalidClient));
    let error = client
        .supplier_active_structures(&rhone())
        .await
        .unwrap_err();
    assert!(matches!(error, ChorusError::GatewayNotAuthorised));
    // The next call reads the credentials again and succeeds.
    client.supplier_active_structures(&rhone()).await.unwrap();
}

#[tokio::test]
async fn token_endpoint_down_is_unavailable_and_did_not_reach_chorus() {
    let (sandbox, client) = setup().await;
    sandbox.sandbox().add_fault(Fault::always(
        TOKEN_PATH,
        FaultAction::Status { status: 503 },
    ));
    let error = client
        .deposit_flux(&rhone(), &deposit_of("NO-TOKEN", COMMUNE_SIRET, None, None))
        .await
        .unwrap_err();
    assert_eq!(unavailable(&error), Some(false));
    assert!(!error.deposit_may_be_recorded());
    assert_eq!(count(&sandbox, TOKEN_PATH), 3, "first try and two retries");
    assert_eq!(count(&sandbox, "/cpro/"), 0);
}

// --- technical account and business refusals -----------------------------------------------------

#[tokio::test]
async fn refused_technical_account_is_credentials_rejected() {
    let (sandbox, client) = setup().await;
    let wrong = TechnicalAccount::new("TECH_1_batiments-rhone@cpro.fr", "not-the-password");
    let expired = TechnicalAccount::new(seeded::JURA.login, seeded::JURA.password);
    let unknown = TechnicalAccount::new("TECH_1_nobody@cpro.fr", "whatever");
    for account in [&wrong, &expired, &unknown] {
        let error = client
            .supplier_active_structures(account)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ChorusError::CredentialsRejected),
            "{error:?}"
        );
    }
    // No token renewal for a refused account: one token, three calls.
    assert_eq!(count(&sandbox, TOKEN_PATH), 1);
    assert_eq!(statuses(&sandbox, "/cpro/"), vec![Some(401); 3]);

    sandbox
        .sandbox()
        .add_fault(Fault::once("/cpro/", FaultAction::RejectPassword));
    let error = client
        .supplier_active_structures(&rhone())
        .await
        .unwrap_err();
    assert!(matches!(error, ChorusError::CredentialsRejected));

    // PISTE itself may refuse the account, saying so in `WWW-Authenticate` (OCA): the
    // account is refused, and no token is renewed for it.
    let tokens_before = count(&sandbox, TOKEN_PATH);
    sandbox
        .sandbox()
        .add_fault(Fault::once("/cpro/", FaultAction::PisteLoginRefused));
    let error = client
        .supplier_active_structures(&rhone())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ChorusError::CredentialsRejected),
        "{error:?}"
    );
    assert_eq!(count(&sandbox, TOKEN_PATH), tokens_before);

    // Renewal: the old password stops working, the new one works; then expiry.
    let old = TechnicalAccount::new(seeded::EST.login, seeded::EST.password);
    let new = TechnicalAccount::new("TECH_1_tp-est@cpro.fr", "Est-Tech-2027!");
    client.supplier_active_structures(&old).await.unwrap();
    sandbox
        .sandbox()
        .update_account(
            "TECH_1_tp-est@cpro.fr",
            &AccountUpdate {
                password: Some("Est-Tech-2027!".into()),
                password_expires_on: None,
            },
        )
        .unwrap();
    assert!(matches!(
        client.supplier_active_structures(&old).await,
        Err(ChorusError::CredentialsRejected)
    ));
    client.supplier_active_structures(&new).await.unwrap();
    sandbox
        .sandbox()
        .update_account(
            "TECH_1_tp-est@cpro.fr",
            &AccountUpdate {
                password: None,
                password_expires_on: Some("2020-01-01".into()),
            },
        )
        .unwrap();
    assert!(matches!(
        client.supplier_active_structures(&new).await,
        Err(ChorusError::CredentialsRejected)
    ));
}

#[tokio::test]
async fn non_zero_code_retour_is_a_business_refusal() {
    let (sandbox, client) = setup().await;
    let mut bad_syntax = deposit_of("SYNTAX-1", COMMUNE_SIRET, None, None);
    bad_syntax.syntaxe_flux = "IN_DP_E9_INCONNU".into();
    assert_eq!(
        code(client.deposit_flux(&rhone(), &bad_syntax).await),
        20093
    );
    let mut not_base64 = deposit_of("B64-1", COMMUNE_SIRET, None, None);
    not_base64.fichier_flux = "%%% not base64 %%%".into();
    assert_eq!(
        code(client.deposit_flux(&rhone(), &not_base64).await),
        20094
    );
    let not_ubl = FluxDeposit::ubl("x.xml", b"<Order><ID>1</ID></Order>");
    assert_eq!(code(client.deposit_flux(&rhone(), &not_ubl).await), 20092);
    // 14 MB of JSON through a debug build: more time than the other calls.
    let mut patient = fast_config(&sandbox);
    patient.request_timeout = Duration::from_secs(20);
    let patient = client_with(patient, CLIENT_ID, CLIENT_SECRET);
    let too_large = FluxDeposit::ubl_owned("big.xml", vec![b' '; 10 * 1024 * 1024 + 1]);
    let refusal = patient
        .deposit_flux(&rhone(), &too_large)
        .await
        .unwrap_err();
    assert!(!refusal.deposit_may_be_recorded());
    match refusal {
        ChorusError::BusinessRefusal {
            code_retour,
            libelle,
        } => {
            assert_eq!(code_retour, 20001);
            assert_eq!(libelle, "GDP_MSG_11.022");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(sandbox.sandbox().deposits().is_empty(), "nothing recorded");

    assert_eq!(
        code(
            client
                .read_structure(&rhone(), &StructureReadRequest::new(1))
                .await
        ),
        20091
    );
    assert_eq!(
        code(
            client
                .read_flux_report(&rhone(), &FluxReportRequest::new("CPP000"))
                .await
        ),
        20091
    );
    // A refusal carried by an HTTP 200 is one too.
    sandbox.sandbox().add_fault(Fault::once(
        "/cpro/structures/",
        FaultAction::Respond {
            status: 200,
            body: serde_json::json!({"codeRetour": 12345, "libelle": "GCU_MSG_99"}),
        },
    ));
    assert_eq!(
        code(
            client
                .read_structure(&rhone(), &StructureReadRequest::new(26200001))
                .await
        ),
        12345
    );
    // Search without result (codeRetour 20000) is an empty list, not an error.
    let none = client
        .search_supplier_invoices(&rhone(), &SupplierInvoiceSearch::by_invoice_number("NONE"))
        .await
        .unwrap();
    assert!(none.liste_factures.is_empty());
}

fn code<T>(result: Result<T, ChorusError>) -> i64 {
    match result {
        Err(ChorusError::BusinessRefusal { code_retour, .. }) => code_retour,
        other => panic!("expected a business refusal, got {:?}", other.err()),
    }
}

// --- retries ---------------------------------------------------------------------------------

#[tokio::test]
async fn retry_after_is_honoured() {
    let (sandbox, client) = setup().await;
    client.supplier_active_structures(&rhone()).await.unwrap();
    sandbox.sandbox().add_fault(Fault::once(
        "/cpro/",
        FaultAction::TooManyRequests { retry_after: 1 },
    ));
    let started = Instant::now();
    client.supplier_active_structures(&rhone()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        statuses(&sandbox, "/cpro/"),
        vec![Some(200), Some(429), Some(200)]
    );

    // Asked to wait longer than allowed (2 s): gives up at once.
    sandbox.sandbox().add_fault(Fault::once(
        "/cpro/",
        FaultAction::TooManyRequests { retry_after: 30 },
    ));
    let started = Instant::now();
    let error = client
        .supplier_active_structures(&rhone())
        .await
        .unwrap_err();
    assert_eq!(unavailable(&error), Some(false));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(count(&sandbox, "/cpro/"), 4);
}

#[tokio::test]
async fn server_error_then_success_for_a_read() {
    let (sandbox, client) = setup().await;
    sandbox
        .sandbox()
        .add_fault(Fault::once("/cpro/", FaultAction::Status { status: 500 }));
    let found = client
        .search_structures(&rhone(), &StructureSearchRequest::by_siret(COMMUNE_SIRET))
        .await
        .unwrap();
    assert_eq!(found.liste_structures.len(), 1);
    assert_eq!(statuses(&sandbox, "/cpro/"), vec![Some(500), Some(200)]);
}

#[tokio::test]
async fn exhausted_retries_are_unavailable() {
    let (sandbox, client) = setup().await;
    sandbox
        .sandbox()
        .add_fault(Fault::always("/cpro/", FaultAction::Status { status: 503 }));
    let error = client
        .supplier_active_structures(&rhone())
        .await
        .unwrap_err();
    assert_eq!(unavailable(&error), Some(true));
    assert_eq!(statuses(&sandbox, "/cpro/"), vec![Some(503); 3]);
}

#[tokio::test]
async fn read_timeout_is_retried() {
    let (sandbox, client) = setup().await;
    sandbox
        .sandbox()
        .add_fault(Fault::once("/cpro/", FaultAction::Timeout { ms: 3000 }));
    let started = Instant::now();
    client.supplier_active_structures(&rhone()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(statuses(&sandbox, "/cpro/"), vec![None, Some(200)]);

    // A slow answer within the timeout is just slow.
    sandbox
        .sandbox()
        .add_fault(Fault::once("/cpro/", FaultAction::Delay { ms: 300 }));
    client.supplier_active_structures(&rhone()).await.unwrap();
    assert_eq!(count(&sandbox, "/cpro/"), 3);
}

// --- deposits are never retried ---------------------------------------------------------------------

#[tokio::test]
async fn lost_answer_on_deposit_may_have_reached_chorus() {
    let (sandbox, client) = setup().await;
    sandbox.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::AnswerLost {
            mode: LostMode::Drop,
            ms: 0,
        },
    ));
    let error = client
        .deposit_flux(&rhone(), &deposit_of("LOST-1", COMMUNE_SIRET, None, None))
        .await
        .unwrap_err();
    assert_eq!(unavailable(&error), Some(true), "{error:?}");
    assert!(error.deposit_may_be_recorded());
    assert_eq!(count(&sandbox, DEPOSIT_PATH), 1, "never sent again");
    let deposits = sandbox.sandbox().deposits();
    assert_eq!(deposits.len(), 1, "recorded exactly once");

    // Reconciliation: the deposit can be found by its invoice number.
    sandbox.sandbox().advance(None, Some("LOST-1"));
    let found = client
        .search_supplier_invoices(
            &rhone(),
            &SupplierInvoiceSearch::by_invoice_number("LOST-1"),
        )
        .await
        .unwrap();
    assert_eq!(
        found.liste_factures[0].numero_flux_depot.as_deref(),
        Some(deposits[0].numero_flux_depot.as_str())
    );
}

#[tokio::test]
async fn hung_answer_on_deposit_may_have_reached_chorus() {
    let (sandbox, client) = setup().await;
    sandbox.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::AnswerLost {
            mode: LostMode::Hang,
            ms: 5000,
        },
    ));
    let started = Instant::now();
    let error = client
        .deposit_flux(&rhone(), &deposit_of("HANG-1", COMMUNE_SIRET, None, None))
        .await
        .unwrap_err();
    assert_eq!(unavailable(&error), Some(true));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "client timeout applies"
    );
    assert_eq!(count(&sandbox, DEPOSIT_PATH), 1);
    assert_eq!(sandbox.sandbox().deposits().len(), 1);
}

#[tokio::test]
async fn deposit_timeout_and_server_errors_are_not_retried() {
    let (sandbox, client) = setup().await;
    sandbox
        .sandbox()
        .add_fault(Fault::once(DEPOSIT_PATH, FaultAction::Timeout { ms: 3000 }));
    let error = client
        .deposit_flux(
            &rhone(),
            &deposit_of("TIMEOUT-1", COMMUNE_SIRET, None, None),
        )
        .await
        .unwrap_err();
    // The client cannot know that this one was not processed.
    assert_eq!(unavailable(&error), Some(true));
    assert_eq!(count(&sandbox, DEPOSIT_PATH), 1);
    assert!(sandbox.sandbox().deposits().is_empty());

    for status in [500, 502, 503] {
        sandbox
            .sandbox()
            .add_fault(Fault::once(DEPOSIT_PATH, FaultAction::Status { status }));
        let error = client
            .deposit_flux(&rhone(), &deposit_of("FIVE-1", COMMUNE_SIRET, None, None))
            .await
            .unwrap_err();
        assert_eq!(unavailable(&error), Some(true), "HTTP {status}");
    }
    assert_eq!(count(&sandbox, DEPOSIT_PATH), 4);

    // Throttled: refused by PISTE before Chorus Pro, still not retried.
    sandbox.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::TooManyRequests { retry_after: 1 },
    ));
    let error = client
        .deposit_flux(
            &rhone(),
            &deposit_of("THROTTLED-1", COMMUNE_SIRET, None, None),
        )
        .await
        .unwrap_err();
    assert_eq!(unavailable(&error), Some(false));
    assert_eq!(count(&sandbox, DEPOSIT_PATH), 5);
}

#[tokio::test]
async fn connection_refused_on_deposit_did_not_reach_chorus() {
    let sandbox = spawn(SandboxConfig::default()).await;
    // A port nobody listens on (bound, then released).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = fast_config(&sandbox);
    config.api_url = format!("http://{closed}/cpro");
    let client = client_with(config, CLIENT_ID, CLIENT_SECRET);
    let error = client
        .deposit_flux(
            &rhone(),
            &deposit_of("REFUSED-1", COMMUNE_SIRET, None, None),
        )
        .await
        .unwrap_err();
    assert_eq!(unavailable(&error), Some(false), "{error:?}");
    assert!(!error.deposit_may_be_recorded());
    assert_eq!(count(&sandbox, TOKEN_PATH), 1);
}

// --- secrets --------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_appear_in_logs_debug_or_errors() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Global, not thread-scoped: tracing caches callsite interest process-wide, and with
    // the other tests of this binary running in parallel a scoped subscriber could miss
    // events. Every test's client events land here, which only widens the secret check.
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only global subscriber of this test binary");

    let (sandbox, client) = setup().await;
    let account = rhone();
    client.supplier_active_structures(&account).await.unwrap();
    let mut errors = Vec::new();
    let wrong = TechnicalAccount::new("TECH_1_batiments-rhone@cpro.fr", "Wrong-Password-42!");
    errors.push(client.supplier_active_structures(&wrong).await.unwrap_err());
    sandbox.sandbox().add_fault(Fault::once(
        DEPOSIT_PATH,
        FaultAction::AnswerLost {
            mode: LostMode::Drop,
            ms: 0,
        },
    ));
    errors.push(
        client
            .deposit_flux(&account, &deposit_of("SECRET-1", COMMUNE_SIRET, None, None))
            .await
            .unwrap_err(),
    );
    sandbox
        .sandbox()
        .add_fault(Fault::always("/cpro/", FaultAction::PisteUnauthorized));
    errors.push(
        client
            .supplier_active_structures(&account)
            .await
            .unwrap_err(),
    );
    let bad_app = client_with(fast_config(&sandbox), CLIENT_ID, "Another-Secret-99");
    errors.push(
        bad_app
            .supplier_active_structures(&account)
            .await
            .unwrap_err(),
    );

    let tokens: Vec<String> = sandbox
        .sandbox()
        .journal(Some("/cpro/"))
        .iter()
        .filter_map(|e| e.header("authorization"))
        .map(|a| a.trim_start_matches("Bearer ").to_owned())
        .collect();
    assert!(!tokens.is_empty());
    let mut secrets = vec![
        "Rhone-Tech-2026!".to_owned(),
        "Wrong-Password-42!".to_owned(),
        CLIENT_SECRET.to_owned(),
        "Another-Secret-99".to_owned(),
        BASE64.encode("TECH_1_batiments-rhone@cpro.fr:Rhone-Tech-2026!"),
        BASE64.encode("TECH_1_batiments-rhone@cpro.fr:Wrong-Password-42!"),
    ];
    secrets.extend(tokens);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("supplier_active_structures")
            || logs.contains("transverses/v1/recuperer/structures/actives/fournisseur"),
        "the client's debug events were captured"
    );
    assert!(logs.contains("oauth/token"));
    let mut texts = vec![
        logs,
        format!("{client:?}"),
        format!("{bad_app:?}"),
        format!("{account:?}"),
        format!("{wrong:?}"),
        format!(
            "{:?}",
            StaticPisteCredentials::new(CLIENT_ID, CLIENT_SECRET)
        ),
    ];
    for error in &errors {
        texts.push(format!("{error}"));
        texts.push(format!("{error:?}"));
    }
    for text in &texts {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into: {text}"
            );
        }
    }
    assert!(matches!(errors[0], ChorusError::CredentialsRejected));
    assert!(errors[1].deposit_may_be_recorded());
    assert!(matches!(errors[2], ChorusError::GatewayNotAuthorised));
    assert!(matches!(errors[3], ChorusError::GatewayNotAuthorised));
}
