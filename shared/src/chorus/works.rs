//! Requests and answers of the works circuit (docs/chorus-pro.md#works-circuit):
//!
//! - `factures/v1/soumettre` in `DEPOT_PDF_API` mode: a works statement submitted as data
//!   with its PDF as the main attachment (first added with `transverses/v1/ajouter/fichier`),
//!   the framework's long code in `cadreDeFacturation.codeCadreFacturation` and the *maître
//!   d'œuvre* as the validating structure (`codeStructureValideur`, `codeServiceValideur`).
//!   Field names: AIFE's submit-invoice example, GO `factures_depots.go`
//!   (`SoumettreFactureOptions`, `SoumettreFactureResponse`); `DEPOT_PDF_API` is the
//!   `modeDepot` of AIFE's own search-works-invoice example;
//! - `facturesTravaux/v1/rechercher` (`rechercherFactureTravaux`): AIFE's search-works-invoice
//!   example, Pastell's `CPPWrapper` (path, `listeFacturesTravaux[].idFactureTravaux`, no
//!   result = 20007);
//! - `facturesTravaux/v1/consulter` (`consulterFactureTravaux`, CPP2017): the document, its
//!   status and the following document (`pieceSuivante`, GO `factures_consultations.go`).
//!   The status and dates use the names of AIFE's recycle-works-invoice answer
//!   (`statutFactureTravaux`, `dateDepotFactureTravaux`).
//!
//! Answers are read through [`super::lenient`]: identifiers as numbers or strings.

use serde::{Deserialize, Serialize};

use super::lenient;

/// `modeDepot` of a submission whose content is its PDF (AIFE search-works-invoice example).
pub const MODE_PDF_API: &str = "DEPOT_PDF_API";

// ---------------------------------------------------------------------------
// factures/v1/soumettre

/// `POST factures/v1/soumettre`: a document submitted as data, its PDF attached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceSubmission {
    pub mode_depot: String,
    pub numero_facture_saisi: String,
    /// `YYYY-MM-DD`.
    pub date_facture: String,
    pub destinataire: SubmissionRecipient,
    pub fournisseur: SubmissionSupplier,
    pub cadre_de_facturation: SubmissionFramework,
    pub references: SubmissionReferences,
    pub montant_total: SubmissionTotals,
    /// Filled at send time with the id `ajouter/fichier` gave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub piece_jointe_principale: Vec<MainAttachment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionRecipient {
    /// The public buyer's SIRET (the MOA).
    pub code_destinataire: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_service_executant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionSupplier {
    /// The supplier's own `idStructureCPP` (kept on the account by the verification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_fournisseur: Option<i64>,
    /// The supplier's SIRET, for the emulator and the logs (`codeFournisseur` of the
    /// read-backs); Chorus Pro reads `idFournisseur`.
    pub code_fournisseur: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionFramework {
    /// The long code (`A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR`).
    pub code_cadre_facturation: String,
    /// The *maître d'œuvre*'s SIRET: the structure that validates a works statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_structure_valideur: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_service_valideur: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionReferences {
    pub devise_facture: String,
    pub type_facture: String,
    pub type_tva: String,
    pub mode_paiement: String,
    pub numero_marche: String,
    /// The commitment (EJ), as in every `soumettre` (GO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numero_bon_commande: Option<String>,
}

/// Amounts as decimal text with 2 decimals (what the gateway computed for the UBL).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionTotals {
    pub montant_ht_total: String,
    #[serde(rename = "montantTVA")]
    pub montant_tva: String,
    pub montant_ttc_total: String,
    pub montant_a_payer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MainAttachment {
    pub piece_jointe_principale_designation: String,
    pub piece_jointe_principale_id: i64,
}

/// What `soumettre` answers (GO `SoumettreFactureResponse`): the same four fields as a
/// recycle's answer (`identifiantFactureCPP`, `numeroFacture`, `statutFacture`,
/// `dateDepot`), read by the same type.
pub type InvoiceSubmissionResponse = super::returned::InvoiceRecycleResponse;

// ---------------------------------------------------------------------------
// facturesTravaux/v1/rechercher

/// `POST facturesTravaux/v1/rechercher` as the supplier, by document number.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorksInvoiceSearch {
    pub role_utilisateur: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numero_facture_travaux: Option<String>,
    pub recherche_facture_travaux: WorksPaging,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorksPaging {
    pub page_resultat_demandee: u32,
    pub nb_resultats_par_page: u32,
}

impl WorksInvoiceSearch {
    /// The supplier's works documents of that number.
    pub fn by_number(number: &str) -> Self {
        WorksInvoiceSearch {
            role_utilisateur: "FOURNISSEUR".into(),
            numero_facture_travaux: Some(number.to_owned()),
            recherche_facture_travaux: WorksPaging {
                page_resultat_demandee: 1,
                nb_resultats_par_page: 10,
            },
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorksInvoiceSearchResponse {
    #[serde(deserialize_with = "lenient::list")]
    pub liste_factures_travaux: Vec<WorksInvoiceSummary>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorksInvoiceSummary {
    #[serde(deserialize_with = "lenient::number")]
    pub id_facture_travaux: i64,
    #[serde(deserialize_with = "lenient::text")]
    pub numero_facture_travaux: String,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub statut_facture_travaux: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_depot_facture_travaux: Option<String>,
}

// ---------------------------------------------------------------------------
// facturesTravaux/v1/consulter

/// `POST facturesTravaux/v1/consulter`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorksInvoiceRead {
    pub id_facture_travaux: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorksInvoiceReadResponse {
    pub facture_travaux: WorksInvoice,
}

/// One works document as Chorus Pro shows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorksInvoice {
    #[serde(deserialize_with = "lenient::number")]
    pub id_facture_travaux: i64,
    #[serde(deserialize_with = "lenient::text")]
    pub numero_facture_travaux: String,
    /// Long code (`A16_ETAT_ACOMPTE_VALIDE_MOE`).
    #[serde(deserialize_with = "lenient::opt_text")]
    pub cadre_facturation: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub statut_facture_travaux: Option<String>,
    /// When the current status was reached.
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_statut_facture_travaux: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub commentaire_statut: Option<String>,
    #[serde(rename = "montantHT", deserialize_with = "lenient::opt_amount")]
    pub montant_ht: Option<String>,
    #[serde(deserialize_with = "lenient::opt_amount")]
    pub montant_a_payer: Option<String>,
    pub piece_suivante: Option<FollowingPiece>,
}

/// `pieceSuivante` (GO `PieceSuivante`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FollowingPiece {
    #[serde(deserialize_with = "lenient::number")]
    pub id_piece_suivante: i64,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub numero_piece_suivante: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub cadre_facturation_piece_suivante: Option<String>,
}

// ---------------------------------------------------------------------------
// facturesTravaux/v1/recycler

/// `recyclerFactureTravaux`: new routing data for a works document returned for it
/// (AIFE https://communaute.chorus-pro.gouv.fr/recycle-works-invoice/?lang=en: `A_RECYCLER`
/// "erreur des données d'acheminement", or "ERREUR MOA").
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorksInvoiceRecycle {
    pub id_facture_travaux: i64,
    /// The new recipient's SIRET.
    pub identifiant_destinataire: String,
    pub code_service_executant: Option<String>,
    pub numero_bon_commande: Option<String>,
}

/// Its answer (AIFE's example): the document's number, status and deposit date.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorksInvoiceRecycleResponse {
    #[serde(deserialize_with = "lenient::opt_number")]
    pub id_facture_travaux: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub numero_facture_travaux: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub statut_facture_travaux: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_depot_facture_travaux: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_works_document_is_read_whatever_the_shape_of_its_numbers() {
        let answer = serde_json::json!({"codeRetour": 0, "factureTravaux": {
            "idFactureTravaux": "540005", "numeroFactureTravaux": "SIT-1",
            "cadreFacturation": "A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR",
            "statutFactureTravaux": "ASSOCIEE", "montantHT": 1000.5, "montantAPayer": "1200.60",
            "pieceSuivante": {"idPieceSuivante": 77, "numeroPieceSuivante": "EA-1",
                              "cadreFacturationPieceSuivante": "A16_ETAT_ACOMPTE_VALIDE_MOE"}}});
        let read: WorksInvoiceReadResponse = serde_json::from_value(answer).unwrap();
        let doc = read.facture_travaux;
        assert_eq!(doc.id_facture_travaux, 540005);
        assert_eq!(doc.montant_ht.as_deref(), Some("1000.5"));
        assert_eq!(doc.piece_suivante.unwrap().id_piece_suivante, 77);
    }

    #[test]
    fn the_submission_carries_the_sources_field_names() {
        let body = serde_json::to_value(InvoiceSubmission {
            mode_depot: MODE_PDF_API.into(),
            numero_facture_saisi: "SIT-1".into(),
            date_facture: "2026-12-01".into(),
            destinataire: SubmissionRecipient {
                code_destinataire: "21690123100011".into(),
                code_service_executant: None,
            },
            fournisseur: SubmissionSupplier {
                id_fournisseur: Some(26100001),
                code_fournisseur: "81234567600017".into(),
            },
            cadre_de_facturation: SubmissionFramework {
                code_cadre_facturation: "A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR".into(),
                code_structure_valideur: Some("83214567600017".into()),
                code_service_valideur: Some("MOE_TRAVAUX".into()),
            },
            references: SubmissionReferences {
                devise_facture: "EUR".into(),
                type_facture: "FACTURE".into(),
                type_tva: "TVA_SUR_DEBIT".into(),
                mode_paiement: "VIREMENT".into(),
                numero_marche: "M-1".into(),
                numero_bon_commande: None,
            },
            montant_total: SubmissionTotals {
                montant_ht_total: "100.00".into(),
                montant_tva: "20.00".into(),
                montant_ttc_total: "120.00".into(),
                montant_a_payer: "120.00".into(),
            },
            piece_jointe_principale: vec![MainAttachment {
                piece_jointe_principale_designation: "situation.pdf".into(),
                piece_jointe_principale_id: 5,
            }],
        })
        .unwrap();
        assert_eq!(body["modeDepot"], "DEPOT_PDF_API");
        assert_eq!(
            body["cadreDeFacturation"]["codeStructureValideur"],
            "83214567600017"
        );
        assert_eq!(body["montantTotal"]["montantTVA"], "20.00");
        assert_eq!(
            body["pieceJointePrincipale"][0]["pieceJointePrincipaleId"],
            5
        );
        assert!(body["destinataire"].get("codeServiceExecutant").is_none());
    }
}
