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

impl ServiceSearchRequest {
    /// Every service of the structure in one page (OCA asks for 1000).
    pub fn all(id_structure: i64) -> Self {
        ServiceSearchRequest {
            id_structure,
            parametres_rechercher_services_structure: Paging {
                nb_resultats_par_page: Some(1000),
                ..Paging::default()
            },
        }
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
    /// Does this buyer have an ordered (`COMMANDE`) commitment with this number?
    pub fn ordered(id_structure_cpp: i64, number: impl Into<String>) -> Self {
        CommitmentSearchRequest {
            structure_receptrice_engagement_juridique: id_structure_cpp.to_string(),
            numero_engagement_juridique: number.into(),
            etat_courant_engagement_juridique: Some("COMMANDE".into()),
        }
    }

    /// The buyer's ordered commitments, whatever their number: an empty answer means the
    /// buyer publishes none in Chorus Pro, so a number cannot be checked there.
    pub fn published_by(id_structure_cpp: i64) -> Self {
        CommitmentSearchRequest {
            structure_receptrice_engagement_juridique: id_structure_cpp.to_string(),
            numero_engagement_juridique: String::new(),
            etat_courant_engagement_juridique: Some("COMMANDE".into()),
        }
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
        let json = serde_json::to_value(CommitmentSearchRequest::published_by(12)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"structureReceptriceEngagementJuridique":"12","etatCourantEngagementJuridique":"COMMANDE"})
        );
        let json = serde_json::to_value(ServiceSearchRequest::all(12)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"idStructure":12,"parametresRechercherServicesStructure":{"nbResultatsParPage":1000}})
        );
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
