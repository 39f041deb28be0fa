//! Requests and answers for an invoice Chorus Pro returned to the supplier: recycle it to
//! another recipient (`A_RECYCLER`), complete it (`SUSPENDUE`) with a comment and files
//! first added to the account (`transverses/v1/ajouter/fichier`).
//!
//! Sources: docs/chorus-pro.md#returned-invoices (AIFE's recycle-invoice example, GO
//! `factures_depots.go` and `transverses_pieces_jointes.go`, CPP2017 `CompleterFacture.cs`).
//! Answers are read through [`super::lenient`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::lenient;

// ---------------------------------------------------------------------------
// factures/v1/recycler

/// `POST factures/v1/recycler`: new routing data for an invoice in `A_RECYCLER`; the
/// invoice keeps its number.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceRecycle {
    #[serde(rename = "identifiantFactureCPP")]
    pub identifiant_facture_cpp: i64,
    pub destinataire: RecycleRecipient,
    /// The commitment (EJ) goes in `numeroBonCommande`, as in `soumettre` (GO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<RecycleReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commentaire: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecycleRecipient {
    /// The buyer's SIRET.
    pub code_destinataire: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_service_executant: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecycleReference {
    pub numero_bon_commande: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InvoiceRecycleResponse {
    #[serde(
        rename = "identifiantFactureCPP",
        deserialize_with = "lenient::opt_number"
    )]
    pub identifiant_facture_cpp: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub numero_facture: Option<String>,
    /// The invoice's status once recycled (AIFE's example: `DEPOSEE`).
    #[serde(deserialize_with = "lenient::opt_text")]
    pub statut_facture: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_depot: Option<String>,
}

// ---------------------------------------------------------------------------
// transverses/v1/ajouter/fichier

/// `POST transverses/v1/ajouter/fichier`: one file added to the technical account, whose
/// id a completion then names. At most 10 MB (error 20003).
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileUpload {
    /// Base64, standard alphabet.
    pub piece_jointe_fichier: String,
    pub piece_jointe_nom: String,
    pub piece_jointe_type_mime: String,
    /// Upper case, without the dot (`PDF`).
    pub piece_jointe_extension: String,
}

impl FileUpload {
    /// `base64` is the file as the caller sent it (already base64).
    pub fn new(name: &str, mime: &str, base64: String) -> Self {
        let extension = name
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_uppercase())
            .unwrap_or_default();
        FileUpload {
            piece_jointe_fichier: base64,
            piece_jointe_nom: name.to_owned(),
            piece_jointe_type_mime: mime.to_owned(),
            piece_jointe_extension: extension,
        }
    }

    pub fn from_bytes(name: &str, mime: &str, bytes: &[u8]) -> Self {
        Self::new(name, mime, BASE64.encode(bytes))
    }
}

impl std::fmt::Debug for FileUpload {
    // The file is megabytes of base64: its size, not its content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileUpload")
            .field("piece_jointe_nom", &self.piece_jointe_nom)
            .field("piece_jointe_type_mime", &self.piece_jointe_type_mime)
            .field("piece_jointe_fichier_len", &self.piece_jointe_fichier.len())
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FileUploadResponse {
    /// GO reads `pieceJointeId`; FactPulse's documentation names `pieceJointeIdFichier`.
    #[serde(alias = "pieceJointeIdFichier", deserialize_with = "lenient::number")]
    pub piece_jointe_id: i64,
}

// ---------------------------------------------------------------------------
// factures/v1/completer

/// `POST factures/v1/completer`: a comment and files for an invoice in `SUSPENDUE`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceCompletion {
    #[serde(rename = "identifiantFactureCPP")]
    pub identifiant_facture_cpp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commentaire: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub piece_jointe_complementaire: Vec<CompletionFile>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionFile {
    pub piece_jointe_complementaire_designation: String,
    pub piece_jointe_complementaire_id: i64,
    pub piece_jointe_complementaire_type: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InvoiceCompletionResponse {
    #[serde(
        rename = "identifiantFactureCPP",
        deserialize_with = "lenient::opt_number"
    )]
    pub identifiant_facture_cpp: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub numero_facture: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_traitement: Option<String>,
}
