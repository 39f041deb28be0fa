//! The emulator's starting data (`tests/fixtures/chorus-sandbox-seed.json`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The seed compiled in, used when no file is found at run time.
pub const EMBEDDED_SEED: &str = include_str!("../../fixtures/chorus-sandbox-seed.json");

/// Default seed path, relative to the workspace root.
pub const DEFAULT_SEED_PATH: &str = "tests/fixtures/chorus-sandbox-seed.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    /// Free documentation (the SIRET table); ignored by the emulator.
    #[serde(rename = "_doc", default)]
    pub doc: serde_json::Value,
    pub piste_applications: Vec<SeedApplication>,
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_seconds: u64,
    /// The most services one page of `rechercher/services` holds, whatever is asked: small,
    /// so that a client must follow `parametresRetour.pages` (whether Chorus Pro caps the
    /// page size is unconfirmed, docs/chorus-pro.md#calls-the-gateway-makes).
    #[serde(default = "default_services_per_page")]
    pub services_per_page: u32,
    pub accepted_syntaxes: Vec<String>,
    /// Statuses after `DEPOSEE`, one per step.
    pub invoice_path: Vec<String>,
    pub structures: Vec<SeedStructure>,
    pub technical_accounts: Vec<SeedAccount>,
}

fn default_token_lifetime() -> u64 {
    3600
}

fn default_services_per_page() -> u32 {
    1000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedApplication {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedStructure {
    #[serde(rename = "idStructureCPP")]
    pub id_structure_cpp: i64,
    pub siret: String,
    pub designation: String,
    /// A public buyer (`PUBLIQUE`) or a supplier (`PRIVEE`).
    pub public: bool,
    /// A private structure that acts as *maître d'œuvre*: its details and services are shown
    /// to every account, since suppliers must address works statements to it
    /// (docs/chorus-pro.md#works-circuit: every actor of the works circuit has a structure).
    #[serde(default)]
    pub moe: bool,
    #[serde(default)]
    pub parametres: SeedParameters,
    #[serde(default)]
    pub services: Vec<SeedService>,
    #[serde(default)]
    pub engagements: Vec<SeedCommitment>,
}

/// Chorus Pro's `parametres` flags of a structure.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SeedParameters {
    pub code_service_doit_etre_renseigne: bool,
    #[serde(rename = "numeroEJDoitEtreRenseigne")]
    pub numero_ej_doit_etre_renseigne: bool,
    #[serde(rename = "gestionNumeroEJOuCodeService")]
    pub gestion_numero_ej_ou_code_service: bool,
    pub est_moa_uniquement: bool,
    pub statut_mise_en_paiement_nest_pas_remonte: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedService {
    pub id_service: i64,
    pub code_service: String,
    pub libelle_service: String,
    pub est_actif: bool,
    /// The service requires a commitment number (`parametres.numeroEngagement`).
    #[serde(default)]
    pub numero_engagement: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedCommitment {
    pub numero_engagement_juridique: String,
    pub etat_courant_engagement_juridique: String,
    /// SIRET of the supplier the commitment is issued to: its receiving structure, which
    /// the search matches (docs/chorus-pro.md#commitment-ej-search).
    pub fournisseur: String,
    #[serde(default)]
    pub libelle_engagement_juridique: Option<String>,
    /// `codeServiceExecutant` of the answer.
    #[serde(default)]
    pub code_service_executant: Option<String>,
    /// `montantTotalTtc` of the answer.
    #[serde(default)]
    pub montant_total_ttc: Option<serde_json::Number>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedAccount {
    pub login: String,
    pub password: String,
    /// `YYYY-MM-DD`; from the next day on, every call answers the LDAP 401.
    pub password_expires_on: String,
    /// SIRETs of the structures the account is attached to.
    pub structures: Vec<String>,
    #[serde(default)]
    pub purpose: Option<String>,
}

impl Seed {
    pub fn embedded() -> Seed {
        // The embedded file is part of this crate; the emulator's tests parse it.
        serde_json::from_str(EMBEDDED_SEED).expect("the embedded sandbox seed is valid JSON")
    }

    pub fn from_file(path: &Path) -> Result<Seed, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the seed {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("invalid seed {}: {e}", path.display()))
    }

    /// `CHORUS_SANDBOX_SEED` when given (an error if unreadable); otherwise the default
    /// path from the current directory or from the workspace root; otherwise the embedded
    /// copy.
    pub fn from_env_or_default(explicit: Option<&str>) -> Result<Seed, String> {
        if let Some(path) = explicit.filter(|p| !p.trim().is_empty()) {
            return Seed::from_file(Path::new(path));
        }
        let workspace_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let candidates: [PathBuf; 2] = [
            PathBuf::from(DEFAULT_SEED_PATH),
            workspace_root.join(DEFAULT_SEED_PATH),
        ];
        match candidates.iter().find(|p| p.is_file()) {
            Some(path) => Seed::from_file(path),
            None => Ok(Seed::embedded()),
        }
    }
}
