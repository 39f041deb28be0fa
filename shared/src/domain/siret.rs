//! SIRET: the 14-digit French establishment identifier (SIREN + NIC).

use std::fmt;

/// How strictly a SIRET is checked. Chorus Pro's qualification environment hands out
/// fictitious SIRETs that fail the Luhn key, so sandbox accounts are checked for shape only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiretCheck {
    Full,
    ShapeOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SiretError {
    #[error("empty")]
    Empty,
    #[error("not only digits")]
    NotDigits,
    #[error("not 14 digits")]
    WrongLength,
    #[error("wrong check key")]
    WrongKey,
}

impl SiretError {
    /// The stable field-error code of the API contract.
    pub fn code(self) -> &'static str {
        match self {
            SiretError::Empty => "required",
            _ => "invalid_siret",
        }
    }

    pub fn message_fr(self, raw: &str) -> String {
        match self {
            SiretError::Empty => "Le numéro de SIRET est obligatoire.".to_owned(),
            SiretError::NotDigits => {
                "Le numéro de SIRET ne doit contenir que des chiffres (14 chiffres, sans espace)."
                    .to_owned()
            }
            SiretError::WrongLength => format!(
                "Le numéro de SIRET doit comporter exactement 14 chiffres ({} reçu{}).",
                raw.chars().count(),
                if raw.chars().count() > 1 { "s" } else { "" }
            ),
            SiretError::WrongKey => format!(
                "Le numéro de SIRET {raw} est invalide (clé de contrôle) : vérifiez qu'il n'y a pas de faute de frappe."
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Siret(String);

/// SIREN of La Poste, whose establishments are numbered beyond what the Luhn key allows;
/// INSEE validates them by a digit sum divisible by 5 instead.
const LA_POSTE_SIREN: &str = "356000000";

impl Siret {
    pub fn parse(raw: &str, check: SiretCheck) -> Result<Self, SiretError> {
        if raw.is_empty() {
            return Err(SiretError::Empty);
        }
        if !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SiretError::NotDigits);
        }
        if raw.len() != 14 {
            return Err(SiretError::WrongLength);
        }
        if check == SiretCheck::Full && !has_valid_key(raw) {
            return Err(SiretError::WrongKey);
        }
        Ok(Siret(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn siren(&self) -> &str {
        &self.0[..9]
    }
}

impl fmt::Display for Siret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn has_valid_key(digits: &str) -> bool {
    let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    if digits.starts_with(LA_POSTE_SIREN) && values.iter().sum::<u32>().is_multiple_of(5) {
        return true;
    }
    luhn_valid(&values)
}

fn luhn_valid(values: &[u32]) -> bool {
    let sum: u32 = values
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Completes 13 digits with the Luhn key digit: used by tests and fixtures to make valid SIRETs.
pub fn with_luhn_key(first13: &str) -> Option<String> {
    if first13.len() != 13 || !first13.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    (0..10u8).find_map(|k| {
        let candidate = format!("{first13}{k}");
        let values: Vec<u32> = candidate.bytes().map(|b| u32::from(b - b'0')).collect();
        luhn_valid(&values).then_some(candidate)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_valid_siret() {
        // Mairie de Paris (Luhn-valid, public buyer)
        assert!(Siret::parse("21750001600019", SiretCheck::Full).is_ok());
        assert!(Siret::parse("73282932000074", SiretCheck::Full).is_ok());
    }

    #[test]
    fn refuses_a_wrong_key() {
        assert_eq!(
            Siret::parse("21750001600018", SiretCheck::Full),
            Err(SiretError::WrongKey)
        );
    }

    #[test]
    fn wrong_key_passes_in_shape_only_mode() {
        assert!(Siret::parse("21750001600018", SiretCheck::ShapeOnly).is_ok());
    }

    #[test]
    fn refuses_wrong_lengths_and_letters() {
        assert_eq!(
            Siret::parse("2175000160001", SiretCheck::Full),
            Err(SiretError::WrongLength)
        );
        assert_eq!(
            Siret::parse("217500016000190", SiretCheck::ShapeOnly),
            Err(SiretError::WrongLength)
        );
        assert_eq!(
            Siret::parse("2175000160001A", SiretCheck::Full),
            Err(SiretError::NotDigits)
        );
        assert_eq!(
            Siret::parse(" 21750001600019", SiretCheck::Full),
            Err(SiretError::NotDigits)
        );
        assert_eq!(Siret::parse("", SiretCheck::Full), Err(SiretError::Empty));
    }

    #[test]
    fn la_poste_exception() {
        // Digit sum 3+5+6+4+9+8+3+7 = 45, divisible by 5, Luhn fails.
        assert!(!luhn_valid(
            &"35600000049837"
                .bytes()
                .map(|b| u32::from(b - b'0'))
                .collect::<Vec<_>>()
        ));
        assert!(Siret::parse("35600000049837", SiretCheck::Full).is_ok());
        // Same SIREN, digit sum not divisible by 5 and Luhn invalid: refused.
        assert_eq!(
            Siret::parse("35600000049838", SiretCheck::Full),
            Err(SiretError::WrongKey)
        );
        // The exception is for La Poste only: another SIREN with a digit sum divisible by 5
        // and a wrong Luhn key is refused.
        let other = (0..1000u32)
            .map(|n| format!("11111111100{n:03}"))
            .find(|c| {
                let v: Vec<u32> = c.bytes().map(|b| u32::from(b - b'0')).collect();
                v.iter().sum::<u32>() % 5 == 0 && !luhn_valid(&v)
            })
            .unwrap();
        assert_eq!(
            Siret::parse(&other, SiretCheck::Full),
            Err(SiretError::WrongKey)
        );
    }

    #[test]
    fn luhn_key_helper_makes_valid_sirets() {
        let s = with_luhn_key("1234567890123").unwrap();
        assert!(Siret::parse(&s, SiretCheck::Full).is_ok());
        assert_eq!(
            Siret::parse(&s, SiretCheck::Full).unwrap().siren(),
            "123456789"
        );
    }

    #[test]
    fn french_messages_name_the_problem() {
        assert!(
            SiretError::WrongKey
                .message_fr("21750001600018")
                .contains("clé de contrôle")
        );
        assert!(
            SiretError::WrongLength
                .message_fr("123")
                .contains("14 chiffres")
        );
    }
}
