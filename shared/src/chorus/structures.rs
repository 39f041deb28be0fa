//! Requests and answers of the structure calls: who a buyer is, what it requires, its
//! services and commitments, and the supplier's own structures.
//!
//! Field names are Chorus Pro's (serde renames); every answer field is optional or has a
//! default, because Chorus Pro omits fields freely. Sources: docs/chorus-pro.md#calls-the-gateway-makes and #buyer-requirements
//! (OCA `res_partner.py`, GO `structures_*.go`, `transverses_structures.go`).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient;

/// Paging of a search (`parametres`, `rechercheFactureParFournisseur`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paging {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nb_resultats_par_page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_resultat_demandee: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tri_colonne: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tri_sens: Option<String>,
}

/// `parametresRetour` of a search answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PagingResult {
    #[serde(deserialize_with = "lenient::number")]
    pub page_courante: i64,
    #[serde(deserialize_with = "lenient::number")]
    pub pages: i64,
    #[serde(deserialize_with = "lenient::number")]
    pub nb_resultats_par_page: i64,
    #[serde(deserialize_with = "lenient::number")]
    pub total: i64,
}

// ---------------------------------------------------------------------------
// structures/v1/rechercher

/// `POST structures/v1/rechercher`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureSearchRequest {
    pub structure: StructureCriteria,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restreindre_structures_privees: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parametres: Option<Paging>,
}

impl StructureSearchRequest {
    /// The recipe's first step: find a structure by its 14-digit SIRET.
    pub fn by_siret(siret: impl Into<String>) -> Self {
        StructureSearchRequest {
            structure: StructureCriteria {
                identifiant_structure: Some(siret.into()),
                type_identifiant_structure: Some("SIRET".into()),
                ..StructureCriteria::default()
            },
            ..StructureSearchRequest::default()
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureCriteria {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifiant_structure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_identifiant_structure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raison_sociale_structure: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StructureSearchResponse {
    #[serde(deserialize_with = "lenient::list")]
    pub liste_structures: Vec<StructureSummary>,
    pub parametres_retour: Option<PagingResult>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StructureSummary {
    #[serde(rename = "idStructureCPP", deserialize_with = "lenient::number")]
    pub id_structure_cpp: i64,
    /// The SIRET for a French structure; a JSON number in AIFE's published example.
    #[serde(deserialize_with = "lenient::siret")]
    pub identifiant_structure: String,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub designation_structure: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub statut: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub type_identifiant_structure: Option<String>,
}

impl StructureSummary {
    /// Whether the structure can receive invoices. The values of `statut` are not published
    /// (**unconfirmed**, docs/chorus-pro.md#buyer-requirements; the emulator sends
    /// `ACTIVE`): only a value that says inactive (`INACTIVE`, `INACTIF`) counts as such,
    /// so an unknown spelling never blocks a market.
    pub fn is_active(&self) -> bool {
        self.statut
            .as_deref()
            .is_none_or(|s| !s.trim().to_ascii_uppercase().contains("INACTI"))
    }
}

// ---------------------------------------------------------------------------
// structures/v1/consulter

/// `POST structures/v1/consulter`. OCA (production) sends `idStructureCPP`; GO sends
/// `idStructure` (unconfirmed which is right): this follows OCA.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureReadRequest {
    #[serde(rename = "idStructureCPP")]
    pub id_structure_cpp: i64,
    pub code_langue: String,
}

impl StructureReadRequest {
    pub fn new(id_structure_cpp: i64) -> Self {
        StructureReadRequest {
            id_structure_cpp,
            code_langue: "FR".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StructureReadResponse {
    pub information_generales: Option<StructureGeneralInformation>,
    pub parametres: Option<StructureParameters>,
}

impl StructureReadResponse {
    /// What the buyer requires on its invoices (docs/chorus-pro.md#buyer-requirements, OCA's mapping).
    pub fn requirement(&self) -> BuyerRequirement {
        self.parametres
            .as_ref()
            .map(StructureParameters::requirement)
            .unwrap_or(BuyerRequirement::None)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StructureGeneralInformation {
    #[serde(rename = "idStructureCPP", deserialize_with = "lenient::opt_number")]
    pub id_structure_cpp: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_siret")]
    pub identifiant_structure: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub type_identifiant_structure: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub libelle_structure: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub raison_sociale_structure: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub structure_privee_publique: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub email_structure: Option<String>,
    /// Reported by GO only (unconfirmed); kept as sent, format unknown.
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_expiration_mot_passe_compte_tech: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StructureParameters {
    #[serde(deserialize_with = "lenient::flag")]
    pub code_service_doit_etre_renseigne: bool,
    #[serde(
        rename = "numeroEJDoitEtreRenseigne",
        deserialize_with = "lenient::flag"
    )]
    pub numero_ej_doit_etre_renseigne: bool,
    #[serde(
        rename = "gestionNumeroEJOuCodeService",
        deserialize_with = "lenient::flag"
    )]
    pub gestion_numero_ej_ou_code_service: bool,
    #[serde(deserialize_with = "lenient::flag")]
    pub est_moa_uniquement: bool,
    #[serde(deserialize_with = "lenient::flag")]
    pub statut_mise_en_paiement_nest_pas_remonte: bool,
}

impl StructureParameters {
    pub fn requirement(&self) -> BuyerRequirement {
        // Same precedence as OCA `fr_chorus_required_get`: either-or wins.
        if self.gestion_numero_ej_ou_code_service {
            BuyerRequirement::ServiceOrCommitment
        } else if self.code_service_doit_etre_renseigne && self.numero_ej_doit_etre_renseigne {
            BuyerRequirement::ServiceAndCommitment
        } else if self.code_service_doit_etre_renseigne {
            BuyerRequirement::Service
        } else if self.numero_ej_doit_etre_renseigne {
            BuyerRequirement::Commitment
        } else {
            BuyerRequirement::None
        }
    }
}

/// What a public buyer requires on an invoice addressed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyerRequirement {
    None,
    Service,
    Commitment,
    ServiceAndCommitment,
    ServiceOrCommitment,
}

// ---------------------------------------------------------------------------
// structures/v1/rechercher/services

/// `POST structures/v1/rechercher/services`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSearchRequest {
    pub id_structure: i64,
    pub parametres_rechercher_services_structure: Paging,
}

/// Services asked for per page (PTD asks 1000, OCA 10000). Chorus Pro may answer fewer:
/// the caller follows `parametresRetour.pages` (docs/chorus-pro.md#calls-the-gateway-makes).
pub const SERVICES_PER_PAGE: u32 = 1000;

impl ServiceSearchRequest {
    /// One page (from 1) of the structure's services.
    pub fn page(id_structure: i64, page: u32) -> Self {
        ServiceSearchRequest {
            id_structure,
            parametres_rechercher_services_structure: Paging {
                nb_resultats_par_page: Some(SERVICES_PER_PAGE),
                page_resultat_demandee: Some(page),
                ..Paging::default()
            },
        }
    }
}

impl ServiceSearchResponse {
    /// How many pages the search has, as Chorus Pro says (at least this one).
    pub fn pages(&self) -> u32 {
        self.parametres_retour
            .as_ref()
            .map_or(1, |p| u32::try_from(p.pages).unwrap_or(1).max(1))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSearchResponse {
    #[serde(deserialize_with = "lenient::list")]
    pub liste_services: Vec<ServiceSummary>,
    pub parametres_retour: Option<PagingResult>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSummary {
    #[serde(deserialize_with = "lenient::number")]
    pub id_service: i64,
    #[serde(deserialize_with = "lenient::text")]
    pub code_service: String,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub libelle_service: Option<String>,
    #[serde(deserialize_with = "lenient::flag")]
    pub est_actif: bool,
    /// `1947-05-16 00:00` in the published example.
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_dbt_service: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_fin_service: Option<String>,
}

impl ServiceSummary {
    /// `FACTURES_PUBLIQUES` is reserved for invoices between public bodies: a flux
    /// addressed to it is rejected (OCA `chorus_partner_service.py`).
    pub fn is_reserved_for_public_bodies(&self) -> bool {
        self.code_service == "FACTURES_PUBLIQUES"
    }
}

// ---------------------------------------------------------------------------
// structures/v1/consulter/service

/// `POST structures/v1/consulter/service`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReadRequest {
    pub id_structure: i64,
    pub id_service: i64,
    pub code_langue: String,
}

impl ServiceReadRequest {
    pub fn new(id_structure: i64, id_service: i64) -> Self {
        ServiceReadRequest {
            id_structure,
            id_service,
            code_langue: "FR".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceReadResponse {
    pub informations_generales: Option<ServiceGeneralInformation>,
    pub parametres: Option<ServiceParameters>,
}

impl ServiceReadResponse {
    /// `parametres.numeroEngagement == true`: this service requires a commitment number.
    pub fn requires_commitment(&self) -> bool {
        self.parametres
            .as_ref()
            .is_some_and(|p| p.numero_engagement)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceGeneralInformation {
    #[serde(deserialize_with = "lenient::opt_text")]
    pub code_service: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub nom_service: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub description_service: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceParameters {
    #[serde(deserialize_with = "lenient::flag")]
    pub numero_engagement: bool,
    #[serde(deserialize_with = "lenient::flag")]
    pub mise_en_paiement: bool,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_creation: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_debut_validite: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_fin_validite: Option<String>,
}

// ---------------------------------------------------------------------------
// engagementsJuridiques/v1/rechercher

/// `POST engagementsJuridiques/v1/rechercher`. OCA sends the receiving structure's
/// `idStructureCPP` as a string, which this keeps.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitmentSearchRequest {
    pub structure_receptrice_engagement_juridique: String,
    /// Empty: any number (the criterion is then left out of the request).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub numero_engagement_juridique: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etat_courant_engagement_juridique: Option<String>,
}

impl CommitmentSearchRequest {
    /// Is there an ordered (`COMMANDE`) commitment with this number issued to the supplier?
    /// `supplier_structure_cpp` is the **supplier's own** `idStructureCPP`: a commitment is
    /// issued by the buyer to the supplier, its receiving structure; OCA sends the same, as
    /// text (docs/chorus-pro.md#commitment-ej-search).
    pub fn ordered(supplier_structure_cpp: i64, number: impl Into<String>) -> Self {
        CommitmentSearchRequest {
            structure_receptrice_engagement_juridique: supplier_structure_cpp.to_string(),
            numero_engagement_juridique: number.into(),
            etat_courant_engagement_juridique: Some("COMMANDE".into()),
        }
    }
}

impl CommitmentSearchResponse {
    /// Whether the answer shows the number as ordered: an entry with that number whose state
    /// label (`libelleEtatCourantEJ`) is `COMMANDE`, or absent (the search asked for
    /// `COMMANDE`). Anything else cannot confirm the number, and never disproves it.
    pub fn confirms(&self, number: &str) -> bool {
        self.liste_engagement_juridique.iter().any(|c| {
            c.numero_engagement_juridique
                .as_deref()
                .is_none_or(|n| n.trim() == number)
                && (c.libelle_etat_courant_ej.is_none() || c.is_ordered())
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CommitmentSearchResponse {
    #[serde(deserialize_with = "lenient::list")]
    pub liste_engagement_juridique: Vec<Commitment>,
    pub parametres_retour: Option<PagingResult>,
}

/// One commitment, with the field names of AIFE's published answer
/// (`rechercher-engagement-juridique`). No public client library reads other names for
/// these fields (OCA only tests the list's presence), so no alias is kept. Everything is
/// optional: the published example itself has `null`s.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Commitment {
    #[serde(deserialize_with = "lenient::opt_number")]
    pub id_engagement_juridique: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub numero_engagement_juridique: Option<String>,
    /// `BON_DE_COMMANDE`, …
    #[serde(deserialize_with = "lenient::opt_text")]
    pub libelle_type_engagement_juridique: Option<String>,
    /// The state: `COMMANDE` for an ordered commitment.
    #[serde(
        rename = "libelleEtatCourantEJ",
        deserialize_with = "lenient::opt_text"
    )]
    pub libelle_etat_courant_ej: Option<String>,
    /// The receiving structure's identifier (`DEV088DESTINATAIRE` in the example).
    #[serde(deserialize_with = "lenient::opt_siret")]
    pub structure_receptrice: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub identifiant_structure_receptrice: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub libelle_structure_receptrice: Option<String>,
    /// The executing service's code.
    #[serde(deserialize_with = "lenient::opt_text")]
    pub code_service_executant: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub libelle_service_executant: Option<String>,
    #[serde(rename = "dateNotificationEJ", deserialize_with = "lenient::opt_date")]
    pub date_notification_ej: Option<String>,
    /// Total amount including VAT.
    pub montant_total_ttc: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub devise_engagement: Option<String>,
}

impl Commitment {
    /// Ordered (`COMMANDE`), the state an invoice can refer to.
    pub fn is_ordered(&self) -> bool {
        self.libelle_etat_courant_ej
            .as_deref()
            .is_some_and(|state| state.trim().eq_ignore_ascii_case("COMMANDE"))
    }
}

// ---------------------------------------------------------------------------
// transverses/v1/recuperer/structures/actives/fournisseur

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ActiveStructuresResponse {
    #[serde(deserialize_with = "lenient::list")]
    pub liste_structures: Vec<ActiveStructure>,
}

impl ActiveStructuresResponse {
    /// The `idStructureCPP` of the account's structure with this SIRET, if attached.
    pub fn structure_id_of(&self, siret: &str) -> Option<i64> {
        self.liste_structures
            .iter()
            .find(|s| s.identifiant == siret)
            .map(|s| s.id_structure_cpp)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ActiveStructure {
    #[serde(rename = "idStructureCPP", deserialize_with = "lenient::number")]
    pub id_structure_cpp: i64,
    /// The SIRET for a French structure (field named `identifiant` here, unlike elsewhere).
    #[serde(deserialize_with = "lenient::siret")]
    pub identifiant: String,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub designation_structure: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_use_chorus_field_names() {
        let json =
            serde_json::to_value(StructureSearchRequest::by_siret("21690123100011")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"structure":{"identifiantStructure":"21690123100011","typeIdentifiantStructure":"SIRET"}})
        );
        let json = serde_json::to_value(StructureReadRequest::new(12)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"idStructureCPP":12,"codeLangue":"FR"})
        );
        let json = serde_json::to_value(CommitmentSearchRequest::ordered(12, "EJ1")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"structureReceptriceEngagementJuridique":"12","numeroEngagementJuridique":"EJ1","etatCourantEngagementJuridique":"COMMANDE"})
        );
        let json = serde_json::to_value(ServiceSearchRequest::page(12, 2)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"idStructure":12,"parametresRechercherServicesStructure":{"nbResultatsParPage":1000,"pageResultatDemandee":2}})
        );
    }

    #[test]
    fn commitment_state_label_is_read() {
        let answer = |state: serde_json::Value| -> CommitmentSearchResponse {
            serde_json::from_value(serde_json::json!({"listeEngagementJuridique": [
                {"numeroEngagementJuridique": "EJ1", "libelleEtatCourantEJ": state}
            ]}))
            .unwrap()
        };
        assert!(answer(serde_json::json!("COMMANDE")).confirms("EJ1"));
        assert!(answer(serde_json::Value::Null).confirms("EJ1"));
        assert!(!answer(serde_json::json!("SOLDE")).confirms("EJ1"));
        assert!(!answer(serde_json::json!("COMMANDE")).confirms("EJ2"));
        let empty: CommitmentSearchResponse =
            serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(!empty.confirms("EJ1"));
    }

    #[test]
    fn structure_status_and_active_structures() {
        let found: StructureSearchResponse = serde_json::from_value(serde_json::json!({
            "listeStructures": [
                {"idStructureCPP": 1, "identifiantStructure": 1, "statut": "ACTIVE"},
                {"idStructureCPP": "2", "identifiantStructure": "2", "statut": "INACTIVE"},
                {"idStructureCPP": 3, "identifiantStructure": "3"}
            ]
        }))
        .unwrap();
        let active: Vec<bool> = found
            .liste_structures
            .iter()
            .map(StructureSummary::is_active)
            .collect();
        assert_eq!(active, vec![true, false, true]);
        let mine: ActiveStructuresResponse = serde_json::from_value(serde_json::json!({
            "listeStructures": [{"idStructureCPP": "26100001", "identifiant": 81234567600017_u64}]
        }))
        .unwrap();
        assert_eq!(mine.structure_id_of("81234567600017"), Some(26100001));
        assert_eq!(mine.structure_id_of("81234567600018"), None);
    }

    #[test]
    fn buyer_requirement_follows_oca_precedence() {
        let read: StructureReadResponse = serde_json::from_value(serde_json::json!({
            "parametres": {"codeServiceDoitEtreRenseigne": true, "numeroEJDoitEtreRenseigne": true}
        }))
        .unwrap();
        assert_eq!(read.requirement(), BuyerRequirement::ServiceAndCommitment);
        let read: StructureReadResponse = serde_json::from_value(serde_json::json!({
            "parametres": {"codeServiceDoitEtreRenseigne": true, "gestionNumeroEJOuCodeService": true}
        }))
        .unwrap();
        assert_eq!(read.requirement(), BuyerRequirement::ServiceOrCommitment);
        let read: StructureReadResponse = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(read.requirement(), BuyerRequirement::None);
    }
}
