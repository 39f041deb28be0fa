//! Requests and answers of the deposit life cycle: deposit a flux, read its detailed
//! report, find the invoice it produced, read that invoice's status history.
//!
//! Sources: docs/chorus-pro.md#calls-the-gateway-makes (OCA wizard and `chorus_flow.py`, GO `factures_*.go` and
//! `transverses_flux.go`, INV live run), #flux-statuses and #invoice-statuses. Dates are kept as the text Chorus Pro sends:
//! formats differ between calls (`2026-09-14`, `2018-02-16T15:10:25.536+01:00`,
//! `2018-04-19 11:08`); read them with [`super::parse_chorus_datetime`]. Every answer
//! field goes through [`super::lenient`] (numbers or strings, one object or a list).

use base64::engine::general_purpose::STANDARD as BASE64;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient;
use super::status::{FluxState, InvoiceStatus};
use super::structures::{Paging, PagingResult};

/// `syntaxeFlux` of a structured UBL invoice (E1). The works-specific E4/E5 strings are
/// unconfirmed (docs/chorus-pro.md#works-flows-e4-e5).
pub const SYNTAX_UBL_INVOICE: &str = "IN_DP_E1_UBL_INVOICE";

/// Largest file Chorus Pro takes in one deposit, decoded (omnibill, unconfirmed: docs/chorus-pro.md#limits).
pub const MAX_FLUX_BYTES: usize = 10 * 1024 * 1024;

// ---------------------------------------------------------------------------
// factures/v1/deposer/flux

/// `POST factures/v1/deposer/flux`. Never retried by the client.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxDeposit<'a> {
    /// The file, sent in base64 (standard alphabet).
    pub fichier_flux: FluxFile<'a>,
    pub nom_fichier: String,
    pub syntaxe_flux: String,
    pub avec_signature: bool,
}

/// The deposited file. Its base64 is written straight into the request body as it is
/// serialised: a 10 MB invoice is not held a third time as base64 text (issue 16,
/// README "Limits and performance").
#[derive(Clone)]
pub enum FluxFile<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
    /// Text sent as it is, encoded or not (to see Chorus Pro refuse what is not base64).
    Text(String),
}

impl FluxFile<'_> {
    /// The size of what is sent (decoded bytes, or the text's length).
    pub fn len(&self) -> usize {
        match self {
            FluxFile::Borrowed(b) => b.len(),
            FluxFile::Owned(b) => b.len(),
            FluxFile::Text(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for FluxFile<'_> {
    fn from(text: &str) -> Self {
        FluxFile::Text(text.to_owned())
    }
}

impl Serialize for FluxFile<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::display::Base64Display;
        match self {
            FluxFile::Borrowed(b) => serializer.collect_str(&Base64Display::new(b, &BASE64)),
            FluxFile::Owned(b) => serializer.collect_str(&Base64Display::new(b, &BASE64)),
            FluxFile::Text(t) => serializer.serialize_str(t),
        }
    }
}

impl<'a> FluxDeposit<'a> {
    /// A UBL invoice file, encoded as the request is written.
    pub fn ubl(nom_fichier: impl Into<String>, file: &'a [u8]) -> Self {
        FluxDeposit {
            fichier_flux: FluxFile::Borrowed(file),
            nom_fichier: nom_fichier.into(),
            syntaxe_flux: SYNTAX_UBL_INVOICE.into(),
            avec_signature: false,
        }
    }
}

impl FluxDeposit<'static> {
    /// The same, owning its file.
    pub fn ubl_owned(nom_fichier: impl Into<String>, file: Vec<u8>) -> Self {
        FluxDeposit {
            fichier_flux: FluxFile::Owned(file),
            ..FluxDeposit::ubl(nom_fichier, &[])
        }
    }
}

impl std::fmt::Debug for FluxDeposit<'_> {
    // The file is megabytes: show its size, not its content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FluxDeposit")
            .field("nom_fichier", &self.nom_fichier)
            .field("syntaxe_flux", &self.syntaxe_flux)
            .field("avec_signature", &self.avec_signature)
            .field("fichier_flux_len", &self.fichier_flux.len())
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxDepositResponse {
    /// Like `CPP0011117000000000425903`. Required: an accepted deposit without it is
    /// reported as an unexpected answer that may have been recorded.
    #[serde(deserialize_with = "lenient::text")]
    pub numero_flux_depot: String,
    #[serde(default, deserialize_with = "lenient::opt_date")]
    pub date_depot: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub syntaxe_flux: Option<String>,
}

// ---------------------------------------------------------------------------
// transverses/v1/recuperer/formatflux

/// The answer of `transverses/v1/recuperer/formatflux` (request `{}`): the `syntaxeFlux`
/// values a deposit may name. Field names from GO `ListeFormatsFluxResponse`
/// (docs/chorus-pro.md#works-flows-e4-e5: the E4/E5 strings are to be read from it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FluxFormats {
    #[serde(deserialize_with = "lenient::list")]
    pub liste_format_flux: Vec<FluxFormat>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FluxFormat {
    #[serde(deserialize_with = "lenient::text")]
    pub format_flux: String,
}

// ---------------------------------------------------------------------------
// transverses/v1/consulterCRDetaille

/// `POST transverses/v1/consulterCRDetaille` (OCA moved to it from `consulterCR`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxReportRequest {
    pub numero_flux_depot: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syntaxe_flux: Option<String>,
}

impl FluxReportRequest {
    pub fn new(numero_flux_depot: impl Into<String>) -> Self {
        FluxReportRequest {
            numero_flux_depot: numero_flux_depot.into(),
            syntaxe_flux: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FluxReport {
    pub etat_courant_depot_flux: Option<FluxState>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub code_interface_depot_flux: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_depot_flux: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_heure_etat_courant_flux: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub nom_fichier: Option<String>,
    /// A single object in AIFE's published example, a list in client libraries.
    #[serde(rename = "listeErreurDP", deserialize_with = "lenient::list")]
    pub liste_erreur_dp: Vec<InvoiceError>,
    #[serde(deserialize_with = "lenient::list")]
    pub liste_erreur_technique: Vec<TechnicalError>,
}

/// One rejected invoice of a flux (`listeErreurDP`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InvoiceError {
    #[serde(deserialize_with = "lenient::opt_siret")]
    pub identifiant_destinataire: Option<String>,
    #[serde(deserialize_with = "lenient::opt_siret")]
    pub identifiant_fournisseur: Option<String>,
    /// Chorus Pro's reason; appears cut at about 200 characters (INV).
    #[serde(rename = "libelleErreurDP", deserialize_with = "lenient::opt_text")]
    pub libelle_erreur_dp: Option<String>,
    /// The supplier's invoice number.
    #[serde(rename = "numeroDP", deserialize_with = "lenient::opt_text")]
    pub numero_dp: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TechnicalError {
    #[serde(deserialize_with = "lenient::opt_text")]
    pub code_erreur: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub libelle_erreur: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub nature_erreur: Option<String>,
}

// ---------------------------------------------------------------------------
// factures/v1/rechercher/fournisseur

/// `POST factures/v1/rechercher/fournisseur`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupplierInvoiceSearch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numero_flux_depot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numero_facture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_fournisseur: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statut_courant: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recherche_facture_par_fournisseur: Option<Paging>,
    /// Invoices whose current status was set from this time on (docs/chorus-pro.md,
    /// "Change-driven follow-up": go-choruspro's `RechercherFactureParFournisseurOptions`,
    /// Pastell's search of "factures ayant changé de statut").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periode_date_heure_etat_courant_du: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periode_date_heure_etat_courant_au: Option<String>,
}

impl SupplierInvoiceSearch {
    pub fn by_flux(numero_flux_depot: impl Into<String>) -> Self {
        SupplierInvoiceSearch {
            numero_flux_depot: Some(numero_flux_depot.into()),
            ..SupplierInvoiceSearch::default()
        }
    }

    /// Page `page` (from 1) of the invoices whose current status was set between `from`
    /// and `to`, both included, `per_page` at a time.
    pub fn changed_between(
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
        page: u32,
        per_page: u32,
    ) -> Self {
        SupplierInvoiceSearch {
            periode_date_heure_etat_courant_du: Some(search_datetime(from)),
            periode_date_heure_etat_courant_au: Some(search_datetime(to)),
            recherche_facture_par_fournisseur: Some(Paging {
                nb_resultats_par_page: Some(per_page),
                page_resultat_demandee: Some(page),
                tri_colonne: None,
                tri_sens: None,
            }),
            ..SupplierInvoiceSearch::default()
        }
    }

    pub fn by_invoice_number(numero_facture: impl Into<String>) -> Self {
        SupplierInvoiceSearch {
            numero_facture: Some(numero_facture.into()),
            ..SupplierInvoiceSearch::default()
        }
    }
}

/// A date-time bound of a search, in UTC with milliseconds: `2022-01-07T10:11:47.823Z`,
/// the form Pastell notes beside `periodeDateHeureEtatCourantAu` (and what go-choruspro's
/// `time.Time` encodes).
pub fn search_datetime(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SupplierInvoiceSearchResponse {
    #[serde(deserialize_with = "lenient::list")]
    pub liste_factures: Vec<SupplierInvoice>,
    pub parametres_retour: Option<PagingResult>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SupplierInvoice {
    #[serde(rename = "identifiantFactureCPP", deserialize_with = "lenient::number")]
    pub identifiant_facture_cpp: i64,
    #[serde(deserialize_with = "lenient::text")]
    pub numero_facture: String,
    pub statut: Option<InvoiceStatus>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub numero_flux_depot: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_depot: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_facture: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub date_heure_etat_courant: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub commentaire_etat_courant: Option<String>,
    #[serde(deserialize_with = "lenient::opt_number")]
    pub id_destinataire: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_siret")]
    pub code_destinataire: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub designation_destinataire: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub code_service_executant: Option<String>,
    #[serde(deserialize_with = "lenient::opt_siret")]
    pub code_fournisseur: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub designation_fournisseur: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub numero_bon_commande: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub numero_marche: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub type_facture: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub devise: Option<String>,
    #[serde(rename = "montantHT")]
    pub montant_ht: Option<Decimal>,
    #[serde(rename = "montantTTC")]
    pub montant_ttc: Option<Decimal>,
    pub montant_a_payer: Option<Decimal>,
}

// ---------------------------------------------------------------------------
// factures/v1/consulter/historique

/// `POST factures/v1/consulter/historique`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceHistoryRequest {
    /// The invoice's `identifiantFactureCPP`.
    pub id_facture: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param_recherche_histo_statuts: Option<HistoryPaging>,
}

impl InvoiceHistoryRequest {
    pub fn new(id_facture: i64) -> Self {
        InvoiceHistoryRequest {
            id_facture,
            param_recherche_histo_statuts: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPaging {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nb_resultats_par_page_liste_histo_statut: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_resultat_demandee_liste_histo_statut: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InvoiceHistory {
    #[serde(deserialize_with = "lenient::opt_number")]
    pub id_facture: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub numero_facture: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub mode_depot: Option<String>,
    pub statut_courant_code: Option<InvoiceStatus>,
    pub historiques_des_statuts: Option<StatusHistory>,
}

impl InvoiceHistory {
    /// The history entries, whatever order Chorus Pro sent them in (Pastell notes a
    /// default descending sort on the date).
    pub fn entries(&self) -> &[StatusHistoryEntry] {
        self.historiques_des_statuts
            .as_ref()
            .map(|h| h.histo_statut.as_slice())
            .unwrap_or(&[])
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StatusHistory {
    #[serde(deserialize_with = "lenient::list")]
    pub histo_statut: Vec<StatusHistoryEntry>,
    #[serde(deserialize_with = "lenient::opt_number")]
    pub total_histo_statut: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StatusHistoryEntry {
    #[serde(deserialize_with = "lenient::opt_number")]
    pub histo_statut_id: Option<i64>,
    pub histo_statut_code: Option<InvoiceStatus>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub histo_statut_commentaire: Option<String>,
    #[serde(deserialize_with = "lenient::opt_date")]
    pub histo_statut_date_passage: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn deposit_debug_shows_size_not_content() {
        let deposit = FluxDeposit::ubl("f.xml", b"<Invoice/>");
        let text = format!("{deposit:?}");
        assert!(!text.contains("PEludm9pY2UvPg=="));
        assert!(text.contains("fichier_flux_len: 10"), "{text}");
        let json = serde_json::to_value(&deposit).unwrap();
        assert_eq!(json["syntaxeFlux"], "IN_DP_E1_UBL_INVOICE");
        assert_eq!(json["avecSignature"], false);
        assert_eq!(json["fichierFlux"], "PEludm9pY2UvPg==");
        let owned = FluxDeposit::ubl_owned("f.xml", b"<Invoice/>".to_vec());
        assert_eq!(serde_json::to_value(&owned).unwrap(), json);
        // Written into the body as it is encoded: the same bytes as a String would give.
        let big: Vec<u8> = (0..100_003u32).map(|i| (i % 251) as u8).collect();
        let body = serde_json::to_vec(&FluxDeposit::ubl("b.xml", &big)).unwrap();
        let read: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(read["fichierFlux"], BASE64.encode(&big));
    }

    #[test]
    fn answers_tolerate_missing_fields_and_numbers() {
        let found: SupplierInvoiceSearchResponse = serde_json::from_value(serde_json::json!({
            "listeFactures": [{"identifiantFactureCPP": 7, "numeroFacture": "F1",
                               "statut": "A_VALIDER_1", "montantTTC": 1500.5}]
        }))
        .unwrap();
        let invoice = &found.liste_factures[0];
        assert_eq!(
            invoice.statut,
            Some(InvoiceStatus::Other("A_VALIDER_1".into()))
        );
        assert_eq!(invoice.montant_ttc, Some(Decimal::new(15005, 1)));
        let report: FluxReport = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(report.etat_courant_depot_flux.is_none());
    }
}
