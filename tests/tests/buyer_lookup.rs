//! Issue 14, items 4 and 5, against an emulator of each test's own: the commitment (EJ)
//! search with the company's own structure, the market's *maître d'œuvre* looked up in
//! Chorus Pro, and the buyer look-up route (`GET /v1/companies/{siret}/buyers/{buyer_siret}`)
//! with services on several pages.
//!
//! Handlers run in-process against the stack's moto (its table: nothing here lists across
//! companies). Each company is a random SIRET, a private structure of that test's emulator
//! attached to a technical account of its own, and the seeded Région and Syndicat
//! commitments are issued to it, so the journal of that emulator holds only its calls.

use gateway_tests::sandbox::{JournalEntry, Progress, SandboxConfig, SandboxHandle, Seed, spawn};
use gateway_tests::testkit::{
    Stack, lambda_request, random_siret, response_json, route_answer, stack_config,
};
use serde_json::{Value, json};

const ACCOUNT_ROUTE: &str = "PUT /v1/companies/{siret}/chorus-account";
const MARKET_ROUTE: &str = "PUT /v1/companies/{siret}/markets/{market_ref}";
const LOOKUP_ROUTE: &str = "GET /v1/companies/{siret}/buyers/{buyer_siret}";
const EJ_PATH: &str = "/cpro/engagementsJuridiques/v1/rechercher";
const SERVICES_PATH: &str = "/cpro/structures/v1/rechercher/services";
const ACTIVE_PATH: &str = "/cpro/transverses/v1/recuperer/structures/actives/fournisseur";

// Seeded (table in tests/src/sandbox/mod.rs).
const VILLEURBANNE: &str = "21690123100011"; // requires nothing
const ISERE: &str = "21380456000018"; // service code; 4 services on two pages
const REGION: &str = "23750001200016"; // commitment number; issued 1300012345
const MOE_OK: &str = "83214567600017"; // MOE_TRAVAUX, ANCIEN_MOE (inactive), MOE_VRD
const MOE_CLOSED: &str = "85432198100011"; // ETUDES (inactive) only

struct Company {
    emulator: SandboxHandle,
    stack: Stack,
    settings: company_settings::State,
    identifiers: identifiers::State,
    siret: String,
    structure_id: i64,
    login: String,
    password: String,
}

impl Company {
    /// A company attached in its own emulator, with the seeded commitments issued to it.
    async fn new() -> Company {
        let stack = Stack::connect().await;
        let siret = random_siret();
        let structure_id = 28_000_000 + i64::from(rand::random::<u16>());
        let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let (login, password) = (
            format!("TECH_1_bl-{tag}@cpro.fr"),
            format!("Bl-Tech-{tag}!"),
        );
        let mut seed = Seed::embedded();
        seed.structures.push(
            serde_json::from_value(json!({"idStructureCPP": structure_id, "siret": siret,
                "designation": "ENTREPRISE TEST ACHETEURS", "public": false}))
            .unwrap(),
        );
        seed.technical_accounts.push(
            serde_json::from_value(json!({"login": login, "password": password,
                "passwordExpiresOn": "2099-12-31", "structures": [siret]}))
            .unwrap(),
        );
        for structure in &mut seed.structures {
            for ej in &mut structure.engagements {
                ej.fournisseur = siret.clone();
            }
        }
        let emulator = spawn(SandboxConfig {
            seed,
            progress: Progress::Manual,
            ..SandboxConfig::default()
        })
        .await;
        let config = stack_config(&[
            ("CHORUS_API_URL", &emulator.api_url()),
            ("PISTE_TOKEN_URL", &emulator.token_url()),
        ]);
        let sdk = shared::aws::sdk_config().await;
        Company {
            settings: company_settings::State::from_sdk(config.clone(), &sdk),
            identifiers: identifiers::State::from_sdk(config, &sdk),
            emulator,
            stack,
            siret,
            structure_id,
            login,
            password,
        }
    }

    async fn save_account(&self, verify: bool) -> (u16, Value) {
        let request = lambda_request(
            ACCOUNT_ROUTE,
            &Stack::account_path(&self.siret),
            &[("siret", &self.siret)],
            &[&self.siret],
            Some(&json!({"referent_email": "compta@entreprise-btp.fr",
                "technical_login": self.login, "password": self.password,
                "password_confirmation": self.password, "verify": verify})),
        );
        response_json(&company_settings::handle(&self.settings, request).await)
    }

    async fn put_market(&self, market_ref: &str, body: Value) -> (u16, Value) {
        let path = format!("/v1/companies/{}/markets/{market_ref}", self.siret);
        let request = lambda_request(
            MARKET_ROUTE,
            &path,
            &[("siret", &self.siret), ("market_ref", market_ref)],
            &[&self.siret],
            Some(&body),
        );
        route_answer(
            MARKET_ROUTE,
            &identifiers::handle(&self.identifiers, request).await,
        )
    }

    /// The look-up as a caller acting for `companies` asks it.
    async fn look_up_as(&self, companies: &[&str], siret: &str, buyer: &str) -> (u16, Value) {
        let path = format!("/v1/companies/{siret}/buyers/{buyer}");
        let request = lambda_request(
            LOOKUP_ROUTE,
            &path,
            &[("siret", siret), ("buyer_siret", buyer)],
            companies,
            None,
        );
        route_answer(
            LOOKUP_ROUTE,
            &identifiers::handle(&self.identifiers, request).await,
        )
    }

    async fn look_up(&self, buyer: &str) -> (u16, Value) {
        self.look_up_as(&[&self.siret], &self.siret, buyer).await
    }

    fn journal(&self, path: &str) -> Vec<JournalEntry> {
        self.emulator.sandbox().journal(Some(path))
    }

    fn clear_journal(&self) {
        self.emulator.sandbox().clear_journal();
    }

    async fn items(
        &self,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut items = self.stack.company_items(&self.siret).await;
        items.sort_by_key(|i| format!("{:?}", i.get("SK")));
        items
    }
}

#[tokio::test]
async fn commitment_search_sends_the_company_structure_kept_from_the_verification() {
    let company = Company::new().await;
    let (status, answer) = company.save_account(true).await;
    assert_eq!(status, 201, "{answer}");
    // The verification's active-structures answer gave the company's structure: kept.
    let item = company.stack.account_item(&company.siret).await.unwrap();
    assert_eq!(
        item["chorus_structure_id"].as_n().unwrap(),
        &company.structure_id.to_string()
    );
    company.clear_journal();

    let (status, market) = company
        .put_market(
            "region",
            json!({"market_number": "R-1", "buyer_siret": REGION,
            "commitment_number": "1300012345"}),
        )
        .await;
    assert_eq!(status, 201, "{market}");
    assert_eq!(market["buyer"]["commitment_number_check"], "found");
    let searches = company.journal(EJ_PATH);
    assert_eq!(searches.len(), 1);
    let body = searches[0].body.as_ref().unwrap();
    // The supplier's own idStructureCPP, as text, as OCA sends it; never the buyer's.
    assert_eq!(
        body["structureReceptriceEngagementJuridique"],
        json!(company.structure_id.to_string())
    );
    assert_eq!(body["numeroEngagementJuridique"], "1300012345");
    assert_eq!(body["etatCourantEngagementJuridique"], "COMMANDE");
    assert!(
        company.journal(ACTIVE_PATH).is_empty(),
        "the kept id is used"
    );

    // A number not issued to the company: cannot be confirmed, never refused.
    let (status, market) = company
        .put_market(
            "region-2",
            json!({"market_number": "R-2", "buyer_siret": REGION,
            "commitment_number": "1300099999"}),
        )
        .await;
    assert_eq!(status, 201, "{market}");
    assert_eq!(market["buyer"]["commitment_number_check"], "not_published");
}

#[tokio::test]
async fn an_account_saved_without_the_structure_reads_it_for_the_commitment() {
    let company = Company::new().await;
    // Not verified: no structure id kept, as for accounts saved before it was.
    let (status, answer) = company.save_account(false).await;
    assert_eq!(status, 201, "{answer}");
    let item = company.stack.account_item(&company.siret).await.unwrap();
    assert!(!item.contains_key("chorus_structure_id"));
    company.clear_journal();

    let (status, market) = company
        .put_market(
            "region",
            json!({"market_number": "R-1", "buyer_siret": REGION,
            "commitment_number": "1300012345"}),
        )
        .await;
    assert_eq!(status, 201, "{market}");
    assert_eq!(market["buyer"]["commitment_number_check"], "found");
    // The one call the credentials check makes, for the structure id.
    assert_eq!(company.journal(ACTIVE_PATH).len(), 1);
    let searches = company.journal(EJ_PATH);
    assert_eq!(
        searches[0].body.as_ref().unwrap()["structureReceptriceEngagementJuridique"],
        json!(company.structure_id.to_string())
    );
}

#[tokio::test]
async fn the_project_manager_is_looked_up_like_the_buyer() {
    let company = Company::new().await;
    assert_eq!(company.save_account(true).await.0, 201);
    let before = company.items().await;
    let market = |moe: Value| {
        json!({"market_number": "T-1", "buyer_siret": VILLEURBANNE, "framework": "A4",
               "project_manager": moe})
    };
    let refused = [
        (
            json!({"siret": random_siret()}),
            "project_manager.siret",
            "unknown_structure",
        ),
        (
            json!({"siret": MOE_CLOSED, "service_code": "ETUDES"}),
            "project_manager.service_code",
            "inactive_service",
        ),
        (
            json!({"siret": MOE_OK, "service_code": "ANCIEN_MOE"}),
            "project_manager.service_code",
            "inactive_service",
        ),
        (
            json!({"siret": MOE_OK, "service_code": "INCONNU"}),
            "project_manager.service_code",
            "unknown_service",
        ),
    ];
    for (moe, field, code) in refused {
        let (status, problem) = company.put_market("travaux", market(moe.clone())).await;
        assert_eq!(status, 422, "{moe}: {problem}");
        assert_eq!(problem["code"], "project_manager_not_found", "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert_eq!(problem["errors"][0]["code"], code, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("maître d'œuvre"),
            "{problem}"
        );
    }
    // Nothing was stored on any refusal.
    assert_eq!(company.items().await, before);

    // MOE_VRD is on the second page of the MOE's services: found through the paging.
    let (status, saved) = company
        .put_market(
            "travaux",
            market(json!({"siret": MOE_OK, "service_code": "MOE_VRD"})),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["project_manager"]["siret"], MOE_OK);
    assert_eq!(saved["project_manager"]["service_code"], "MOE_VRD");
    let (status, saved) = company
        .put_market("travaux-2", market(json!({"siret": MOE_CLOSED})))
        .await;
    assert_eq!(status, 201, "a known MOE without a service code: {saved}");
}

#[tokio::test]
async fn buyer_look_up_reads_every_page_of_services() {
    let company = Company::new().await;
    assert_eq!(company.save_account(true).await.0, 201);
    company.clear_journal();
    let (status, buyer) = company.look_up(ISERE).await;
    assert_eq!(status, 200, "{buyer}");
    assert_eq!(buyer["siret"], ISERE);
    assert_eq!(buyer["name"], "DEPARTEMENT DE L'ISERE TEST");
    assert_eq!(buyer["chorus_structure_id"], 26200002);
    assert_eq!(buyer["active"], true);
    assert_eq!(buyer["requires_service_code"], true);
    assert_eq!(buyer["requires_commitment_number"], false);
    assert_eq!(buyer["service_or_commitment"], false);
    assert_eq!(
        buyer["services"],
        json!([
            {"code": "DIRINFRA", "name": "Direction des infrastructures", "active": true, "requires_commitment_number": false},
            {"code": "SERV_TRAVAUX_EJ", "name": "Travaux - engagement obligatoire", "active": true, "requires_commitment_number": true},
            {"code": "ANCIEN_SERVICE", "name": "Service ferme", "active": false, "requires_commitment_number": null}
        ])
    );
    assert!(
        buyer["checked_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    // Two pages asked for, one after the other.
    let pages: Vec<Value> = company
        .journal(SERVICES_PATH)
        .iter()
        .map(|e| e.body.as_ref().unwrap()["parametresRechercherServicesStructure"]["pageResultatDemandee"].clone())
        .collect();
    assert_eq!(pages, vec![json!(1), json!(2)]);
    // Read-only: nothing but the account in the company's partition.
    let items = company.items().await;
    assert!(
        items.iter().all(|i| i["SK"].as_s().unwrap() == "ACCOUNT"
            || i["SK"].as_s().unwrap().starts_with("AUDIT")),
        "{items:?}"
    );
}

#[tokio::test]
async fn a_project_manager_is_looked_up_too() {
    let company = Company::new().await;
    assert_eq!(company.save_account(true).await.0, 201);
    let (status, moe) = company.look_up(MOE_OK).await;
    assert_eq!(status, 200, "{moe}");
    assert_eq!(moe["name"], "ATELIER D'ARCHITECTURE MOE TEST");
    assert_eq!(moe["requires_service_code"], false);
    let codes: Vec<(&str, bool)> = moe["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["code"].as_str().unwrap(), s["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("MOE_TRAVAUX", true),
            ("ANCIEN_MOE", false),
            ("MOE_VRD", true)
        ]
    );
}

#[tokio::test]
async fn buyer_look_up_refusals() {
    let company = Company::new().await;
    // No settings yet.
    let (status, problem) = company.look_up(VILLEURBANNE).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("company_not_configured")),
        "{problem}"
    );

    assert_eq!(company.save_account(true).await.0, 201);
    let (status, problem) = company.look_up(&random_siret()).await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["code"], "buyer_not_found");
    assert_eq!(problem["status"], 404);
    let (status, problem) = company.look_up("1234").await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "buyer_siret");

    // Another company's SIRET, not in the token: 403, whatever it is.
    let other = random_siret();
    let (status, problem) = company
        .look_up_as(&[&other], &company.siret, VILLEURBANNE)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("forbidden")),
        "{problem}"
    );
}
