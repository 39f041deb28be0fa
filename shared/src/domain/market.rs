//! A public contract ("marché") as a company registers it once, for all its monthly
//! situations: the caller's own key, the identifiers Chorus Pro needs (contract number,
//! buyer SIRET, service code, commitment number, billing framework, project manager), and
//! what Chorus Pro said of the buyer when the market was checked.
//!
//! The buyer rules (docs/chorus-pro.md#buyer-requirements, OCA's mapping): a buyer may require a service code, a
//! commitment number (*engagement juridique*, EJ), both, or either one; a service must exist
//! and be active, and is never `FACTURES_PUBLIQUES` (reserved for invoices between public
//! bodies); a service may itself require a commitment number. A commitment number is
//! looked up but never refused for not being found (docs/chorus-pro.md#commitment-ej-search).

use std::fmt;

use time::OffsetDateTime;

use super::Siret;
use super::invoice_number::shown;
use super::payment::BuyerCategory;

// ---------------------------------------------------------------------------------------
// Free-text identifiers

/// What is wrong with a free-text identifier (contract number, commitment number, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    Empty,
    TooLong {
        length: usize,
        max: usize,
    },
    /// Tabs, line breaks and other control characters: the mark of a paste error.
    ControlCharacters,
    /// Spaces at either end: refused rather than trimmed, so what is stored is what the
    /// caller's screen shows.
    SurroundingSpaces,
}

impl TextError {
    pub fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "required",
            TextError::TooLong { .. } => "too_long",
            TextError::ControlCharacters | TextError::SurroundingSpaces => "invalid_characters",
        }
    }

    /// `what` starts the sentence: "Le numéro de marché".
    pub fn message_fr(&self, what: &str, raw: &str) -> String {
        match self {
            TextError::Empty => format!("{what} est obligatoire."),
            TextError::TooLong { length, max } => format!(
                "{what} compte {length} caractères : {max} au plus sont acceptés. Raccourcissez-le."
            ),
            TextError::ControlCharacters => format!(
                "{what} contient des caractères de contrôle (tabulation, retour à la ligne…) : vérifiez le copier-coller."
            ),
            TextError::SurroundingSpaces => {
                format!("{what} « {raw} » commence ou se termine par un espace : retirez-le.")
            }
        }
    }
}

fn bounded_text(raw: &str, max: usize) -> Result<String, TextError> {
    if raw.trim().is_empty() {
        return Err(TextError::Empty);
    }
    if raw.chars().any(char::is_control) {
        return Err(TextError::ControlCharacters);
    }
    if raw.trim() != raw {
        return Err(TextError::SurroundingSpaces);
    }
    let length = raw.chars().count();
    if length > max {
        return Err(TextError::TooLong { length, max });
    }
    Ok(raw.to_owned())
}

macro_rules! text_identifier {
    ($(#[$meta:meta])* $name:ident, $max:ident = $len:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        pub const $max: usize = $len;

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, TextError> {
                bounded_text(raw, $max).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_identifier!(
    /// The contract number sent to Chorus Pro (`numeroMarche`, EN 16931 BT-12).
    MarketNumber,
    MARKET_NUMBER_MAX_LEN = 50
);

text_identifier!(
    /// The *engagement juridique* (EN 16931 BT-13): 50 characters at most (OCA, docs/chorus-pro.md#limits).
    CommitmentNumber,
    COMMITMENT_NUMBER_MAX_LEN = 50
);

text_identifier!(
    /// A free label for the caller's screens; never sent to Chorus Pro.
    MarketLabel,
    MARKET_LABEL_MAX_LEN = 200
);

/// A buyer's service code (EN 16931 BT-10). The maximum length is unconfirmed
/// (Demat4Dolibarr stores 100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCode(String);

pub const SERVICE_CODE_MAX_LEN: usize = 100;

/// Reserved for invoices between public bodies: a flux addressed to it is rejected.
pub const RESERVED_SERVICE_CODE: &str = "FACTURES_PUBLIQUES";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceCodeError {
    Text(TextError),
    ReservedForPublicBodies,
}

impl ServiceCode {
    pub fn parse(raw: &str) -> Result<Self, ServiceCodeError> {
        let text = bounded_text(raw, SERVICE_CODE_MAX_LEN).map_err(ServiceCodeError::Text)?;
        if text.eq_ignore_ascii_case(RESERVED_SERVICE_CODE) {
            return Err(ServiceCodeError::ReservedForPublicBodies);
        }
        Ok(ServiceCode(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ServiceCodeError {
    pub fn code(&self) -> &'static str {
        match self {
            ServiceCodeError::Text(e) => e.code(),
            ServiceCodeError::ReservedForPublicBodies => "reserved_service_code",
        }
    }

    pub fn message_fr(&self, what: &str, raw: &str) -> String {
        match self {
            ServiceCodeError::Text(e) => e.message_fr(what, raw),
            ServiceCodeError::ReservedForPublicBodies => format!(
                "Le code service {RESERVED_SERVICE_CODE} est réservé aux factures entre entités publiques : Chorus Pro rejetterait la facture. Indiquez le code du service de l'acheteur qui traite ce marché (ou aucun code si l'acheteur n'en exige pas)."
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The caller's key

/// The caller's own key for a market, used in the URL: `[A-Za-z0-9._-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MarketRef(String);

pub const MARKET_REF_MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketRefError {
    Empty,
    TooLong {
        length: usize,
    },
    InvalidCharacters(Vec<char>),
    /// `.` and `..` fit the character set but are path segments that HTTP clients
    /// rewrite before sending: such a market could never be read back.
    DotSegment,
}

impl MarketRef {
    pub fn parse(raw: &str) -> Result<Self, MarketRefError> {
        if raw.is_empty() {
            return Err(MarketRefError::Empty);
        }
        let mut invalid: Vec<char> = Vec::new();
        for c in raw
            .chars()
            .filter(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            if !invalid.contains(&c) {
                invalid.push(c);
            }
        }
        if !invalid.is_empty() {
            return Err(MarketRefError::InvalidCharacters(invalid));
        }
        if raw.len() > MARKET_REF_MAX_LEN {
            return Err(MarketRefError::TooLong { length: raw.len() });
        }
        if raw == "." || raw == ".." {
            return Err(MarketRefError::DotSegment);
        }
        Ok(MarketRef(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MarketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl MarketRefError {
    pub fn code(&self) -> &'static str {
        match self {
            MarketRefError::Empty => "required",
            MarketRefError::TooLong { .. } => "too_long",
            MarketRefError::InvalidCharacters(_) | MarketRefError::DotSegment => {
                "invalid_characters"
            }
        }
    }

    pub fn message_fr(&self, raw: &str) -> String {
        const RULE: &str = "lettres sans accent, chiffres, point, tiret et tiret bas";
        match self {
            MarketRefError::Empty => "La référence du marché est obligatoire.".to_owned(),
            MarketRefError::TooLong { length } => format!(
                "La référence du marché compte {length} caractères : {MARKET_REF_MAX_LEN} au plus sont acceptés."
            ),
            MarketRefError::InvalidCharacters(chars) => format!(
                "La référence du marché « {raw} » contient {} : {}. Seuls sont acceptés : {RULE}.",
                if chars.len() > 1 {
                    "des caractères refusés"
                } else {
                    "un caractère refusé"
                },
                chars
                    .iter()
                    .map(|c| format!("« {} »", shown(*c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            MarketRefError::DotSegment => format!(
                "La référence du marché ne peut pas être « {raw} » seul : ajoutez au moins une lettre ou un chiffre."
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Billing framework

/// The Chorus Pro *cadre de facturation* a company may deposit through the gateway
/// (docs/chorus-pro.md#frameworks). The short code goes into UBL `ProfileID` (BT-23), the long value into
/// the JSON API's `codeCadreFacturation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framework {
    A1,
    A2,
    A4,
    A5,
    A7,
    A8,
    A9,
    A10,
    A12,
    A13,
    A14,
    A22,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameworkError {
    /// A code of the 2026 e-invoicing reform (`B1`, `S1`, `M1`…): Chorus Pro's rule G1.02
    /// rejects it in BT-23.
    ReformCode(String),
    /// A Chorus Pro framework that is not the company's to deposit here (justice,
    /// project manager's or owner's documents, …).
    NotForCompanies(String),
    Unknown(String),
}

impl Framework {
    pub const ACCEPTED: [Framework; 12] = [
        Framework::A1,
        Framework::A2,
        Framework::A4,
        Framework::A5,
        Framework::A7,
        Framework::A8,
        Framework::A9,
        Framework::A10,
        Framework::A12,
        Framework::A13,
        Framework::A14,
        Framework::A22,
    ];

    /// Case is ignored (`a4` is `A4`); the code is stored and shown in capitals.
    pub fn parse(raw: &str) -> Result<Self, FrameworkError> {
        let code = raw.to_ascii_uppercase();
        if let Some(found) = Self::ACCEPTED.iter().find(|f| f.code() == code) {
            return Ok(*found);
        }
        let number = |prefix: char| {
            code.strip_prefix(prefix)
                .filter(|n| {
                    (1..=2).contains(&n.len())
                        && !n.starts_with('0')
                        && n.bytes().all(|b| b.is_ascii_digit())
                })
                .and_then(|n| n.parse::<u8>().ok())
        };
        if ['B', 'S', 'M'].iter().any(|p| number(*p).is_some()) {
            return Err(FrameworkError::ReformCode(raw.to_owned()));
        }
        if number('A').is_some_and(|n| (1..=25).contains(&n)) {
            return Err(FrameworkError::NotForCompanies(code));
        }
        Err(FrameworkError::Unknown(raw.to_owned()))
    }

    pub fn code(self) -> &'static str {
        match self {
            Framework::A1 => "A1",
            Framework::A2 => "A2",
            Framework::A4 => "A4",
            Framework::A5 => "A5",
            Framework::A7 => "A7",
            Framework::A8 => "A8",
            Framework::A9 => "A9",
            Framework::A10 => "A10",
            Framework::A12 => "A12",
            Framework::A13 => "A13",
            Framework::A14 => "A14",
            Framework::A22 => "A22",
        }
    }

    /// The long value of the JSON API (`cadreDeFacturation.codeCadreFacturation`).
    pub fn chorus_value(self) -> &'static str {
        match self {
            Framework::A1 => "A1_FACTURE_FOURNISSEUR",
            Framework::A2 => "A2_FACTURE_FOURNISSEUR_DEJA_PAYEE",
            Framework::A4 => "A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR",
            Framework::A5 => "A5_ETAT_ACOMPTE_FOURNISSEUR",
            Framework::A7 => "A7_PROJET_DECOMPTE_FINAL_FOURNISSEUR",
            Framework::A8 => "A8_DECOMPTE_GENERAL_DEFINITIF_FOURNISSEUR",
            Framework::A9 => "A9_FACTURE_SOUSTRAITANT",
            Framework::A10 => "A10_PROJET_DECOMPTE_MENSUEL_SOUSTRAITANT",
            Framework::A12 => "A12_FACTURE_COTRAITANT",
            Framework::A13 => "A13_PROJET_DECOMPTE_MENSUEL_COTRAITANT",
            Framework::A14 => "A14_PROJET_DECOMPTE_FINAL_COTRAITANT",
            Framework::A22 => "A22_PROJET_DECOMPTE_GENERAL_FOURNISSEUR_PROCEDURE_TACITE",
        }
    }

    /// Works statements go to the project manager (*maître d'œuvre*) first, who validates
    /// them: the market must name it.
    pub fn is_works_statement(self) -> bool {
        matches!(
            self,
            Framework::A4
                | Framework::A5
                | Framework::A7
                | Framework::A10
                | Framework::A13
                | Framework::A14
                | Framework::A22
        )
    }

    fn accepted_list() -> String {
        Self::ACCEPTED
            .iter()
            .map(|f| f.code())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FrameworkError {
    pub fn code(&self) -> &'static str {
        "unknown_framework"
    }

    pub fn message_fr(&self) -> String {
        let accepted = Framework::accepted_list();
        match self {
            FrameworkError::ReformCode(raw) => format!(
                "« {raw} » est un cadre de facturation de la réforme de la facturation électronique : Chorus Pro le refuse pour les marchés publics (règle G1.02). Utilisez un cadre Chorus Pro : A4 pour un projet de décompte mensuel de travaux, A1 pour une facture simple (cadres acceptés : {accepted})."
            ),
            FrameworkError::NotForCompanies(code) => format!(
                "Le cadre de facturation {code} existe dans Chorus Pro mais n'est pas déposé par l'entreprise via la passerelle (frais de justice, documents de la maîtrise d'œuvre ou de la maîtrise d'ouvrage, ou circuit non pris en charge). Cadres acceptés : {accepted}."
            ),
            FrameworkError::Unknown(raw) => format!(
                "Le cadre de facturation « {raw} » n'existe pas. Cadres acceptés : {accepted} (A4 pour un projet de décompte mensuel de travaux)."
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The market

/// The *maître d'œuvre* who receives and validates works statements
/// (`codeStructureValideur` / `codeServiceValideur` in Chorus Pro).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectManager {
    pub siret: Siret,
    pub service_code: Option<ServiceCode>,
}

/// What the caller registers for a market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketTerms {
    pub market_number: MarketNumber,
    pub buyer_siret: Siret,
    pub buyer_service_code: Option<ServiceCode>,
    pub commitment_number: Option<CommitmentNumber>,
    pub framework: Framework,
    pub project_manager: Option<ProjectManager>,
    pub label: Option<MarketLabel>,
    /// Which legal payment deadline the buyer is held to (docs/payment-deadline.md).
    pub buyer_category: BuyerCategory,
}

impl MarketTerms {
    /// Names of the fields that differ from `old` (all of them for a new market), for the
    /// audit trail.
    pub fn changed_fields(&self, old: Option<&MarketTerms>) -> Vec<String> {
        let mut fields = Vec::new();
        let mut note = |changed: bool, name: &str| {
            if changed {
                fields.push(name.to_owned());
            }
        };
        note(
            old.is_none_or(|o| o.market_number != self.market_number),
            "market_number",
        );
        note(
            old.is_none_or(|o| o.buyer_siret != self.buyer_siret),
            "buyer_siret",
        );
        note(
            old.is_none_or(|o| o.buyer_service_code != self.buyer_service_code),
            "buyer_service_code",
        );
        note(
            old.is_none_or(|o| o.commitment_number != self.commitment_number),
            "commitment_number",
        );
        note(
            old.is_none_or(|o| o.framework != self.framework),
            "framework",
        );
        note(
            old.is_none_or(|o| o.project_manager != self.project_manager),
            "project_manager",
        );
        note(old.is_none_or(|o| o.label != self.label), "label");
        note(
            old.is_none_or(|o| o.buyer_category != self.buyer_category),
            "buyer_category",
        );
        fields
    }
}

/// A market as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Market {
    pub siret: Siret,
    pub market_ref: MarketRef,
    pub terms: MarketTerms,
    pub buyer: BuyerCheck,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Optimistic-lock counter: every write is conditional on the revision it read.
    pub revision: u64,
}

// ---------------------------------------------------------------------------------------
// What the buyer requires

/// What a public buyer requires on its invoices (`structures/v1/consulter` parametres).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyerRule {
    None,
    ServiceCode,
    CommitmentNumber,
    Both,
    Either,
}

impl BuyerRule {
    pub fn as_str(self) -> &'static str {
        match self {
            BuyerRule::None => "none",
            BuyerRule::ServiceCode => "service_code",
            BuyerRule::CommitmentNumber => "commitment_number",
            BuyerRule::Both => "service_code_and_commitment_number",
            BuyerRule::Either => "service_code_or_commitment_number",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            BuyerRule::None,
            BuyerRule::ServiceCode,
            BuyerRule::CommitmentNumber,
            BuyerRule::Both,
            BuyerRule::Either,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }

    pub fn requires_service_code(self) -> bool {
        matches!(self, BuyerRule::ServiceCode | BuyerRule::Both)
    }

    pub fn requires_commitment_number(self) -> bool {
        matches!(self, BuyerRule::CommitmentNumber | BuyerRule::Both)
    }

    /// Whether the buyer's services must be read to judge a market: to check the given
    /// code, or to tell the caller which codes it could give.
    pub fn needs_services(self, service_code_given: bool, commitment_given: bool) -> bool {
        service_code_given
            || self.requires_service_code()
            || (self == BuyerRule::Either && !commitment_given)
    }
}

/// One service of the buyer (`structures/v1/rechercher/services`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerService {
    pub code: String,
    pub active: bool,
}

/// What became of the market's commitment number in Chorus Pro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitmentCheck {
    NotGiven,
    /// Among the ordered (`COMMANDE`) commitments issued to the company.
    Found,
    /// Could not be confirmed: not listed, search refused, or the company's structure
    /// unknown. Never disproves the number (docs/chorus-pro.md#commitment-ej-search), so
    /// there is no "absent" outcome.
    NotPublished,
}

impl CommitmentCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            CommitmentCheck::NotGiven => "not_given",
            CommitmentCheck::Found => "found",
            CommitmentCheck::NotPublished => "not_published",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            CommitmentCheck::NotGiven,
            CommitmentCheck::Found,
            CommitmentCheck::NotPublished,
        ]
        .into_iter()
        .find(|c| c.as_str() == raw)
    }
}

/// What Chorus Pro said of the buyer, gathered by the caller of [`assess_buyer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerFacts {
    pub rule: BuyerRule,
    /// `None` when they were not read (see [`BuyerRule::needs_services`]).
    pub services: Option<Vec<BuyerService>>,
    /// The given service's own rule (`consulter/service` `numeroEngagement`).
    pub service_requires_commitment: bool,
    pub commitment: CommitmentCheck,
}

impl BuyerFacts {
    /// The codes the caller could use: active, and not reserved.
    pub fn usable_service_codes(&self) -> Vec<String> {
        self.services
            .iter()
            .flatten()
            .filter(|s| s.active && s.code != RESERVED_SERVICE_CODE)
            .map(|s| s.code.clone())
            .collect()
    }

    pub fn service(&self, code: &ServiceCode) -> Option<&BuyerService> {
        self.services
            .iter()
            .flatten()
            .find(|s| s.code == code.as_str())
    }
}

/// Why a market cannot be invoiced to its buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyerFault {
    UnknownService { code: String, usable: Vec<String> },
    InactiveService { code: String, usable: Vec<String> },
    ServiceCodeRequired { usable: Vec<String> },
    CommitmentRequired,
    CommitmentRequiredByService { code: String },
    ServiceCodeOrCommitmentRequired { usable: Vec<String> },
}

/// The contract's error code a fault belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyerFaultKind {
    /// `service_inactive`: the service is unknown or inactive.
    ServiceInactive,
    /// `buyer_requirements_unmet`: a service code or commitment number is missing or unknown.
    RequirementsUnmet,
}

fn codes_hint(usable: &[String]) -> String {
    match usable {
        [] => " L'acheteur n'a aucun service actif dans Chorus Pro : contactez-le.".to_owned(),
        [one] => format!(" Service actif : {one}."),
        many => format!(" Services actifs : {}.", many.join(", ")),
    }
}

impl BuyerFault {
    pub fn kind(&self) -> BuyerFaultKind {
        match self {
            BuyerFault::UnknownService { .. } | BuyerFault::InactiveService { .. } => {
                BuyerFaultKind::ServiceInactive
            }
            _ => BuyerFaultKind::RequirementsUnmet,
        }
    }

    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            BuyerFault::UnknownService { .. }
            | BuyerFault::InactiveService { .. }
            | BuyerFault::ServiceCodeRequired { .. }
            | BuyerFault::ServiceCodeOrCommitmentRequired { .. } => "buyer_service_code",
            BuyerFault::CommitmentRequired | BuyerFault::CommitmentRequiredByService { .. } => {
                "commitment_number"
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            BuyerFault::UnknownService { .. } => "unknown_service",
            BuyerFault::InactiveService { .. } => "inactive_service",
            BuyerFault::ServiceCodeRequired { .. }
            | BuyerFault::CommitmentRequired
            | BuyerFault::CommitmentRequiredByService { .. }
            | BuyerFault::ServiceCodeOrCommitmentRequired { .. } => "required_by_buyer",
        }
    }

    /// `buyer` names the buyer as Chorus Pro does, e.g. "COMMUNE DE … (SIRET …)".
    pub fn message_fr(&self, buyer: &str) -> String {
        match self {
            BuyerFault::UnknownService { code, usable } => format!(
                "Le service « {code} » n'existe pas chez {buyer} dans Chorus Pro : vérifiez le code service auprès de l'acheteur.{}",
                codes_hint(usable)
            ),
            BuyerFault::InactiveService { code, usable } => format!(
                "Le service « {code} » de {buyer} est inactif dans Chorus Pro : une facture qui lui serait adressée serait rejetée. Demandez à l'acheteur le service qui le remplace.{}",
                codes_hint(usable)
            ),
            BuyerFault::ServiceCodeRequired { usable } => format!(
                "{buyer} exige un code service sur ses factures : renseignez « buyer_service_code ».{}",
                codes_hint(usable)
            ),
            BuyerFault::CommitmentRequired => format!(
                "{buyer} exige un numéro d'engagement juridique (bon de commande) sur ses factures : renseignez « commitment_number » avec le numéro communiqué par l'acheteur."
            ),
            BuyerFault::CommitmentRequiredByService { code } => format!(
                "Le service « {code} » de {buyer} exige un numéro d'engagement juridique : renseignez « commitment_number » avec le numéro communiqué par l'acheteur."
            ),
            BuyerFault::ServiceCodeOrCommitmentRequired { usable } => format!(
                "{buyer} exige un code service ou un numéro d'engagement juridique : renseignez « buyer_service_code » ou « commitment_number ».{}",
                codes_hint(usable)
            ),
        }
    }
}

/// Applies the buyer's rules to a market's service code and commitment number; every
/// fault is returned, so the caller fixes them all at once.
pub fn assess_buyer(
    service_code: Option<&ServiceCode>,
    commitment_number: Option<&CommitmentNumber>,
    facts: &BuyerFacts,
) -> Result<(), Vec<BuyerFault>> {
    let mut faults = Vec::new();
    let usable = facts.usable_service_codes();
    let mut service_usable = false;
    if let Some(code) = service_code {
        match facts.service(code) {
            None => faults.push(BuyerFault::UnknownService {
                code: code.to_string(),
                usable: usable.clone(),
            }),
            Some(s) if !s.active => faults.push(BuyerFault::InactiveService {
                code: code.to_string(),
                usable: usable.clone(),
            }),
            Some(_) => service_usable = true,
        }
    }
    let has_service = service_code.is_some();
    let has_commitment = commitment_number.is_some();
    if facts.rule.requires_service_code() && !has_service {
        faults.push(BuyerFault::ServiceCodeRequired {
            usable: usable.clone(),
        });
    }
    if facts.rule.requires_commitment_number() && !has_commitment {
        faults.push(BuyerFault::CommitmentRequired);
    } else if let (Some(code), true, false, true) = (
        service_code,
        service_usable,
        has_commitment,
        facts.service_requires_commitment,
    ) {
        faults.push(BuyerFault::CommitmentRequiredByService {
            code: code.to_string(),
        });
    }
    if facts.rule == BuyerRule::Either && !has_service && !has_commitment {
        faults.push(BuyerFault::ServiceCodeOrCommitmentRequired { usable });
    }
    if faults.is_empty() {
        Ok(())
    } else {
        Err(faults)
    }
}

/// What was found of the buyer when the market was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerRecord {
    pub name: Option<String>,
    pub chorus_structure_id: i64,
    pub rule: BuyerRule,
    /// The market's service requires a commitment number.
    pub service_requires_commitment: bool,
    pub commitment: CommitmentCheck,
    pub checked_at: OffsetDateTime,
}

/// Whether the buyer was checked in Chorus Pro. A market saved while the company had no
/// Chorus Pro account is `Unchecked`; saving it again once the account exists checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyerCheck {
    Unchecked,
    Checked(BuyerRecord),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn market_ref_shape() {
        assert!(MarketRef::parse("2026-TRV_014.lot2").is_ok());
        assert!(MarketRef::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            MarketRef::parse(&"a".repeat(65)),
            Err(MarketRefError::TooLong { length: 65 })
        );
        assert_eq!(
            MarketRef::parse("lot/2"),
            Err(MarketRefError::InvalidCharacters(vec!['/']))
        );
        assert_eq!(
            MarketRef::parse("marché 2"),
            Err(MarketRefError::InvalidCharacters(vec!['é', ' ']))
        );
        assert_eq!(MarketRef::parse(""), Err(MarketRefError::Empty));
        assert_eq!(MarketRef::parse(".."), Err(MarketRefError::DotSegment));
        assert!(MarketRef::parse("...").is_ok());
        let e = MarketRef::parse("lot/2").unwrap_err();
        assert_eq!(e.code(), "invalid_characters");
        assert!(e.message_fr("lot/2").contains("« / »"));
    }

    #[test]
    fn accepted_frameworks_and_works_statements() {
        for code in [
            "A1", "A2", "A4", "A5", "A7", "A8", "A9", "A10", "A12", "A13", "A14", "A22",
        ] {
            let f = Framework::parse(code).unwrap();
            assert_eq!(f.code(), code);
            assert!(f.chorus_value().starts_with(&format!("{code}_")));
        }
        let works: Vec<&str> = Framework::ACCEPTED
            .iter()
            .filter(|f| f.is_works_statement())
            .map(|f| f.code())
            .collect();
        assert_eq!(works, vec!["A4", "A5", "A7", "A10", "A13", "A14", "A22"]);
        assert_eq!(Framework::parse("a4"), Ok(Framework::A4));
    }

    #[test]
    fn reform_and_other_codes_are_refused_with_a_reason() {
        for reform in ["M1", "B1", "S1", "b2", "S10"] {
            let e = Framework::parse(reform).unwrap_err();
            assert!(matches!(e, FrameworkError::ReformCode(_)), "{reform}");
            assert_eq!(e.code(), "unknown_framework");
            assert!(e.message_fr().contains("réforme"), "{}", e.message_fr());
        }
        for other in ["A3", "A6", "A11", "A15", "A19", "A25"] {
            assert!(
                matches!(
                    Framework::parse(other),
                    Err(FrameworkError::NotForCompanies(_))
                ),
                "{other}"
            );
        }
        for unknown in ["", "A", "A26", "A4 ", "X1", "A04x", "A04", "A0"] {
            assert!(
                matches!(Framework::parse(unknown), Err(FrameworkError::Unknown(_))),
                "{unknown:?}"
            );
        }
        assert!(
            FrameworkError::Unknown("Z".into())
                .message_fr()
                .contains("A1, A2, A4")
        );
    }

    #[test]
    fn text_identifiers() {
        assert!(MarketNumber::parse("2026-TRV-014").is_ok());
        assert_eq!(
            MarketNumber::parse(&"x".repeat(51)),
            Err(TextError::TooLong {
                length: 51,
                max: 50
            })
        );
        assert_eq!(
            CommitmentNumber::parse(" 13"),
            Err(TextError::SurroundingSpaces)
        );
        assert_eq!(
            CommitmentNumber::parse("13\n"),
            Err(TextError::ControlCharacters)
        );
        assert_eq!(CommitmentNumber::parse(""), Err(TextError::Empty));
        assert_eq!(
            ServiceCode::parse("FACTURES_PUBLIQUES"),
            Err(ServiceCodeError::ReservedForPublicBodies)
        );
        assert_eq!(
            ServiceCode::parse("factures_publiques"),
            Err(ServiceCodeError::ReservedForPublicBodies)
        );
        assert_eq!(ServiceCode::parse("DIRINFRA").unwrap().as_str(), "DIRINFRA");
        assert_eq!(
            ServiceCodeError::ReservedForPublicBodies.code(),
            "reserved_service_code"
        );
    }

    fn services() -> Option<Vec<BuyerService>> {
        Some(vec![
            BuyerService {
                code: "DIRINFRA".into(),
                active: true,
            },
            BuyerService {
                code: "ANCIEN".into(),
                active: false,
            },
            BuyerService {
                code: RESERVED_SERVICE_CODE.into(),
                active: true,
            },
        ])
    }

    fn facts(rule: BuyerRule) -> BuyerFacts {
        BuyerFacts {
            rule,
            services: services(),
            service_requires_commitment: false,
            commitment: CommitmentCheck::NotGiven,
        }
    }

    fn sc(code: &str) -> ServiceCode {
        ServiceCode::parse(code).unwrap()
    }

    fn ej(number: &str) -> CommitmentNumber {
        CommitmentNumber::parse(number).unwrap()
    }

    #[test]
    fn buyer_without_requirement_accepts_anything_valid() {
        assert_eq!(assess_buyer(None, None, &facts(BuyerRule::None)), Ok(()));
        assert_eq!(
            assess_buyer(Some(&sc("DIRINFRA")), None, &facts(BuyerRule::None)),
            Ok(())
        );
    }

    #[test]
    fn service_code_rule() {
        let f = facts(BuyerRule::ServiceCode);
        assert_eq!(assess_buyer(Some(&sc("DIRINFRA")), None, &f), Ok(()));
        let faults = assess_buyer(None, None, &f).unwrap_err();
        assert_eq!(
            faults,
            vec![BuyerFault::ServiceCodeRequired {
                usable: vec!["DIRINFRA".into()]
            }]
        );
        assert_eq!(faults[0].kind(), BuyerFaultKind::RequirementsUnmet);
        assert_eq!(faults[0].field(), "buyer_service_code");
        assert!(
            faults[0]
                .message_fr("DEPT (SIRET 1)")
                .contains("Service actif : DIRINFRA.")
        );
    }

    #[test]
    fn unknown_and_inactive_services() {
        let f = facts(BuyerRule::ServiceCode);
        let faults = assess_buyer(Some(&sc("ANCIEN")), None, &f).unwrap_err();
        assert!(matches!(&faults[..], [BuyerFault::InactiveService { .. }]));
        assert_eq!(faults[0].kind(), BuyerFaultKind::ServiceInactive);
        let faults = assess_buyer(Some(&sc("NOPE")), None, &f).unwrap_err();
        assert!(matches!(&faults[..], [BuyerFault::UnknownService { .. }]));
        assert_eq!(faults[0].code(), "unknown_service");
    }

    #[test]
    fn commitment_rule_and_published_commitments() {
        let mut f = facts(BuyerRule::CommitmentNumber);
        f.services = None;
        assert_eq!(
            assess_buyer(None, None, &f),
            Err(vec![BuyerFault::CommitmentRequired])
        );
        f.commitment = CommitmentCheck::Found;
        assert_eq!(assess_buyer(None, Some(&ej("1300012345")), &f), Ok(()));
        // Not confirmed is never a fault.
        f.commitment = CommitmentCheck::NotPublished;
        assert_eq!(assess_buyer(None, Some(&ej("1300012345")), &f), Ok(()));
    }

    #[test]
    fn both_rule_lists_every_missing_field() {
        let f = facts(BuyerRule::Both);
        let faults = assess_buyer(None, None, &f).unwrap_err();
        let fields: Vec<&str> = faults.iter().map(BuyerFault::field).collect();
        assert_eq!(fields, vec!["buyer_service_code", "commitment_number"]);
        let mut f = facts(BuyerRule::Both);
        f.commitment = CommitmentCheck::Found;
        assert_eq!(
            assess_buyer(Some(&sc("DIRINFRA")), Some(&ej("1")), &f),
            Ok(())
        );
    }

    #[test]
    fn either_rule() {
        let f = facts(BuyerRule::Either);
        assert!(matches!(
            &assess_buyer(None, None, &f).unwrap_err()[..],
            [BuyerFault::ServiceCodeOrCommitmentRequired { .. }]
        ));
        assert_eq!(assess_buyer(Some(&sc("DIRINFRA")), None, &f), Ok(()));
        let mut f = f;
        f.commitment = CommitmentCheck::NotPublished;
        assert_eq!(assess_buyer(None, Some(&ej("42")), &f), Ok(()));
        assert!(BuyerRule::Either.needs_services(false, false));
        assert!(!BuyerRule::Either.needs_services(false, true));
        assert!(!BuyerRule::CommitmentNumber.needs_services(false, false));
        assert!(BuyerRule::None.needs_services(true, false));
    }

    #[test]
    fn service_may_require_a_commitment() {
        let mut f = facts(BuyerRule::ServiceCode);
        f.service_requires_commitment = true;
        assert_eq!(
            assess_buyer(Some(&sc("DIRINFRA")), None, &f),
            Err(vec![BuyerFault::CommitmentRequiredByService {
                code: "DIRINFRA".into()
            }])
        );
        f.commitment = CommitmentCheck::NotPublished;
        assert_eq!(
            assess_buyer(Some(&sc("DIRINFRA")), Some(&ej("7")), &f),
            Ok(())
        );
        // The buyer's own rule already says it: one fault, not two.
        let mut f = facts(BuyerRule::Both);
        f.service_requires_commitment = true;
        assert_eq!(
            assess_buyer(Some(&sc("DIRINFRA")), None, &f),
            Err(vec![BuyerFault::CommitmentRequired])
        );
    }

    #[test]
    fn reserved_service_is_never_offered() {
        let f = facts(BuyerRule::ServiceCode);
        assert_eq!(f.usable_service_codes(), vec!["DIRINFRA".to_owned()]);
    }

    #[test]
    fn changed_fields_for_the_audit() {
        let terms = MarketTerms {
            market_number: MarketNumber::parse("M-1").unwrap(),
            buyer_siret: Siret::parse("21690123100011", super::super::SiretCheck::Full).unwrap(),
            buyer_service_code: None,
            commitment_number: None,
            framework: Framework::A1,
            project_manager: None,
            label: None,
            buyer_category: BuyerCategory::LocalAuthority,
        };
        assert_eq!(terms.changed_fields(None).len(), 8);
        let mut other = terms.clone();
        other.framework = Framework::A4;
        other.label = Some(MarketLabel::parse("Gymnase").unwrap());
        assert_eq!(
            other.changed_fields(Some(&terms)),
            vec!["framework", "label"]
        );
        assert!(terms.changed_fields(Some(&terms)).is_empty());
    }
}
