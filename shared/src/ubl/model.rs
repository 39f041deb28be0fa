//! What the gateway knows about one invoice before it becomes UBL: the transmission request
//! (contract, section "Transmission") completed with the market and the situation.
//!
//! Plain data on purpose: `check` must be able to say what is wrong with any of it in
//! French, so nothing here refuses a value at construction.

use std::fmt;

use rust_decimal::Decimal;
use time::Date;

/// One invoice (a *situation de travaux* or a plain invoice) to deposit in Chorus Pro.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    /// BT-1, the situation's invoice number (Chorus Pro: 1–20 of `[A-Za-z0-9 +_/-]`).
    pub number: String,
    /// BT-2.
    pub issue_date: Date,
    /// BT-9.
    pub due_date: Date,
    /// BT-5, ISO 4217 (`EUR`).
    pub currency: String,
    /// BT-23, the Chorus Pro *cadre de facturation* short code (`A1`, `A4`, …).
    pub framework: String,
    /// BT-12, the market number (`numeroMarche`).
    pub market_number: String,
    /// BT-13, the *engagement juridique*: the situation's override, else the market's.
    pub commitment_number: Option<String>,
    /// BT-10, the buyer's Chorus Pro service code, when it has one.
    pub buyer_service_code: Option<String>,
    pub seller: Seller,
    pub buyer: Buyer,
    /// The *maître d'œuvre* who validates works statements (Chorus Pro "valideur").
    pub project_manager: Option<ProjectManager>,
    pub lines: Vec<Line>,
    pub allowances_charges: Vec<AllowanceCharge>,
    /// BT-113, what the buyer already paid on this invoice.
    pub prepaid_amount: Decimal,
    /// BT-120, written on every AE, E and O VAT breakdown.
    pub vat_exemption_reason: Option<String>,
    /// BT-22.
    pub note: Option<String>,
    /// The situation PDF, Chorus Pro's main document.
    pub document: EmbeddedFile,
    pub attachments: Vec<EmbeddedFile>,
}

impl Invoice {
    /// The VAT categories of the lines, then of the allowances and charges.
    pub(crate) fn vat_categories(&self) -> impl Iterator<Item = VatCategory> + '_ {
        self.lines
            .iter()
            .map(|l| l.vat_category)
            .chain(self.allowances_charges.iter().map(|ac| ac.vat_category))
    }
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Address {
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// The company invoicing (BG-4) and where it wants to be paid (BG-17).
#[derive(Debug, Clone, PartialEq)]
pub struct Seller {
    pub name: String,
    pub siret: String,
    /// BT-31. Required unless every line is "not subject to VAT" (O).
    pub vat_id: Option<String>,
    pub address: Address,
    /// BT-84, for payment means 30 (credit transfer). Spaces are allowed and dropped.
    pub iban: String,
    /// BT-86.
    pub bic: Option<String>,
}

/// The public buyer (BG-7), the *maître d'ouvrage*: Chorus Pro's recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Buyer {
    pub name: String,
    pub siret: String,
    /// BT-48. Public bodies often have none; reverse charge does not need it because the
    /// buyer's legal registration identifier (its SIRET) is always written (BR-AE-02).
    pub vat_id: Option<String>,
    pub address: Address,
}

/// The *maître d'œuvre* (MOE) who validates a works statement before the buyer pays.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ProjectManager {
    pub siret: String,
    #[serde(default)]
    pub service_code: Option<String>,
}

/// EN 16931 VAT category codes (UNCL 5305 subset) the gateway supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
pub enum VatCategory {
    /// Standard rate.
    S,
    /// Reverse charge: *autoliquidation*, e.g. a subcontractor invoicing works (CGI 283-2 nonies).
    AE,
    /// Exempt.
    E,
    /// Zero rated.
    Z,
    /// Not subject to VAT.
    O,
}

impl VatCategory {
    pub fn code(self) -> &'static str {
        match self {
            VatCategory::S => "S",
            VatCategory::AE => "AE",
            VatCategory::E => "E",
            VatCategory::Z => "Z",
            VatCategory::O => "O",
        }
    }

    /// Whether EN 16931 asks for an exemption reason on this category's breakdown.
    pub fn needs_exemption_reason(self) -> bool {
        matches!(self, VatCategory::AE | VatCategory::E | VatCategory::O)
    }
}

/// One invoice line (BG-25).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Line {
    pub id: String,
    /// Written as the item name (BT-153), which EN 16931 requires.
    pub description: String,
    pub quantity: Decimal,
    /// UN/ECE Recommendation 20/21 code (`C62` = one, `HUR`, `MTK`, `LS`, …).
    #[serde(rename = "unit")]
    pub unit_code: String,
    /// BT-146, net of any discount, never negative.
    pub unit_price: Decimal,
    pub vat_category: VatCategory,
    pub vat_rate: Decimal,
}

/// A document-level allowance (BG-20, `charge: false`) or charge (BG-21, `charge: true`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct AllowanceCharge {
    pub charge: bool,
    pub amount: Decimal,
    pub reason: String,
    pub vat_category: VatCategory,
    pub vat_rate: Decimal,
}

/// A file embedded in the invoice (BG-24, `cac:AdditionalDocumentReference`).
#[derive(Clone, PartialEq)]
pub struct EmbeddedFile {
    /// At most 50 characters with an extension Chorus Pro accepts.
    pub filename: String,
    /// See [`mime_code_for`] to derive it from the file name.
    pub mime_code: String,
    pub content: FileContent,
}

impl EmbeddedFile {
    /// A file whose MIME code follows from its extension (empty when unknown, which
    /// `check` then reports).
    pub fn new(filename: impl Into<String>, content: FileContent) -> Self {
        let filename = filename.into();
        let mime_code = mime_code_for(&filename).unwrap_or_default().to_owned();
        EmbeddedFile {
            filename,
            mime_code,
            content,
        }
    }
}

/// Raw bytes, or the base64 text the caller sent (kept as is to avoid a decode/encode trip).
#[derive(Clone, PartialEq)]
pub enum FileContent {
    Bytes(Vec<u8>),
    Base64(String),
}

// Files are up to 10 MB: a derived Debug would print them whole in any log or panic.
impl fmt::Debug for FileContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileContent::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            FileContent::Base64(s) => write!(f, "Base64({} chars)", s.len()),
        }
    }
}

impl fmt::Debug for EmbeddedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedFile")
            .field("filename", &self.filename)
            .field("mime_code", &self.mime_code)
            .field("content", &self.content)
            .finish()
    }
}

pub(crate) use crate::domain::file_name::{CHORUS_EXTENSIONS, extension_of};

/// The MIME codes EN 16931 allows for an embedded document (BR-CL-24), by extension. Chorus
/// Pro accepts more extensions, but an UBL invoice can only carry these.
const EN16931_MIME_BY_EXTENSION: &[(&str, &str)] = &[
    ("csv", "text/csv"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
];

/// The MIME code an embedded file with this name must carry, when EN 16931 allows its type.
pub fn mime_code_for(filename: &str) -> Option<&'static str> {
    let ext = extension_of(filename)?;
    EN16931_MIME_BY_EXTENSION
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, m)| *m)
}

/// Whether EN 16931 (BR-CL-24) allows this MIME code for an embedded document.
pub(crate) fn is_en16931_mime(mime: &str) -> bool {
    EN16931_MIME_BY_EXTENSION.iter().any(|(_, m)| *m == mime)
}
