//! The invoice number of a situation (EN 16931 BT-1, Chorus Pro `numeroFactureSaisi`).
//!
//! Chorus Pro's rule G1.05: 1 to 20 characters of `A-Z a-z 0-9`, space, `+ - _ /`.
//!
//! Two decisions beyond that rule:
//!
//! - **Spaces at either end are refused**, not trimmed. The number is the invoice's legal
//!   identifier, also printed on the PDF and kept in the company's books: silently
//!   changing it would make the two disagree, and Chorus Pro compares numbers as written.
//!   Spaces inside the number are Chorus Pro's business and are kept as given.
//! - **Uniqueness ignores case** ([`InvoiceNumber::uniqueness_key`]): `sit-1` and `SIT-1`
//!   cannot both be registered by one company. Whether Chorus Pro's duplicate check
//!   ignores case is not documented; refusing at registration costs nothing, a duplicate
//!   found by Chorus Pro costs a rejected invoice.

use std::fmt;

pub const INVOICE_NUMBER_MAX_LEN: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InvoiceNumber(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceNumberError {
    Empty,
    TooLong {
        length: usize,
    },
    /// Characters outside Chorus Pro's set, each once, in order of appearance.
    InvalidCharacters(Vec<char>),
    SurroundingSpaces,
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '+' | '-' | '_' | '/')
}

impl InvoiceNumber {
    pub fn parse(raw: &str) -> Result<Self, InvoiceNumberError> {
        if raw.trim().is_empty() {
            return Err(InvoiceNumberError::Empty);
        }
        let mut invalid: Vec<char> = Vec::new();
        for c in raw.chars().filter(|c| !allowed(*c)) {
            if !invalid.contains(&c) {
                invalid.push(c);
            }
        }
        if !invalid.is_empty() {
            return Err(InvoiceNumberError::InvalidCharacters(invalid));
        }
        if raw.starts_with(' ') || raw.ends_with(' ') {
            return Err(InvoiceNumberError::SurroundingSpaces);
        }
        // Only ASCII is left: bytes are characters.
        if raw.len() > INVOICE_NUMBER_MAX_LEN {
            return Err(InvoiceNumberError::TooLong { length: raw.len() });
        }
        Ok(InvoiceNumber(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What two numbers must not share within one company (see the module documentation).
    pub fn uniqueness_key(&self) -> String {
        self.0.to_ascii_uppercase()
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A character as a person can read it in a message (`é`, `#`, `\t`).
pub(crate) fn shown(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        c.escape_unicode().to_string()
    } else {
        c.to_string()
    }
}

impl InvoiceNumberError {
    /// The stable field-error code of the API contract.
    pub fn code(&self) -> &'static str {
        match self {
            InvoiceNumberError::Empty => "required",
            InvoiceNumberError::TooLong { .. } => "too_long",
            InvoiceNumberError::InvalidCharacters(_) | InvoiceNumberError::SurroundingSpaces => {
                "invalid_characters"
            }
        }
    }

    pub fn message_fr(&self, raw: &str) -> String {
        const RULE: &str = "lettres sans accent, chiffres, espace et + - _ /";
        match self {
            InvoiceNumberError::Empty => format!(
                "Le numéro de facture est obligatoire : 1 à {INVOICE_NUMBER_MAX_LEN} caractères ({RULE})."
            ),
            InvoiceNumberError::TooLong { length } => format!(
                "Le numéro de facture « {raw} » compte {length} caractères : Chorus Pro en accepte {INVOICE_NUMBER_MAX_LEN} au plus. Raccourcissez-le."
            ),
            InvoiceNumberError::InvalidCharacters(chars) => format!(
                "Le numéro de facture « {raw} » contient {} refusé{} par Chorus Pro : {}. Seuls sont acceptés : {RULE}.",
                if chars.len() > 1 {
                    "des caractères"
                } else {
                    "un caractère"
                },
                if chars.len() > 1 { "s" } else { "" },
                chars
                    .iter()
                    .map(|c| format!("« {} »", shown(*c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            InvoiceNumberError::SurroundingSpaces => format!(
                "Le numéro de facture « {raw} » commence ou se termine par un espace : retirez-le (le numéro transmis doit être exactement celui de la facture)."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_chorus_pro_characters_up_to_20() {
        for ok in [
            "SIT-2026-014-03",
            "F 2026/11+A_1",
            "A",
            "12345678901234567890",
            "a  b",
        ] {
            assert_eq!(InvoiceNumber::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_21_characters() {
        let raw = "123456789012345678901";
        assert_eq!(
            InvoiceNumber::parse(raw),
            Err(InvoiceNumberError::TooLong { length: 21 })
        );
        let e = InvoiceNumber::parse(raw).unwrap_err();
        assert_eq!(e.code(), "too_long");
        assert!(e.message_fr(raw).contains("21 caractères"));
    }

    #[test]
    fn refuses_accents_and_punctuation_naming_them() {
        let e = InvoiceNumber::parse("Fé#1;é").unwrap_err();
        assert_eq!(
            e,
            InvoiceNumberError::InvalidCharacters(vec!['é', '#', ';'])
        );
        assert_eq!(e.code(), "invalid_characters");
        let message = e.message_fr("Fé#1;é");
        assert!(
            message.contains("« é »") && message.contains("« # »") && message.contains("« ; »"),
            "{message}"
        );
        assert!(matches!(
            InvoiceNumber::parse("F\t1"),
            Err(InvoiceNumberError::InvalidCharacters(_))
        ));
        assert!(matches!(
            InvoiceNumber::parse("F.1"),
            Err(InvoiceNumberError::InvalidCharacters(_))
        ));
    }

    #[test]
    fn refuses_surrounding_spaces_and_empty() {
        assert_eq!(
            InvoiceNumber::parse(" SIT-1"),
            Err(InvoiceNumberError::SurroundingSpaces)
        );
        assert_eq!(
            InvoiceNumber::parse("SIT-1 "),
            Err(InvoiceNumberError::SurroundingSpaces)
        );
        assert_eq!(InvoiceNumber::parse(""), Err(InvoiceNumberError::Empty));
        assert_eq!(InvoiceNumber::parse("   "), Err(InvoiceNumberError::Empty));
        assert_eq!(InvoiceNumberError::Empty.code(), "required");
    }

    #[test]
    fn uniqueness_ignores_case() {
        let a = InvoiceNumber::parse("sit-1").unwrap();
        let b = InvoiceNumber::parse("SIT-1").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.uniqueness_key(), b.uniqueness_key());
    }
}
