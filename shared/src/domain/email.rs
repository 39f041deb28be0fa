//! E-mail addresses (the referent who receives the password reminders).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("empty")]
    Empty,
    #[error("too long")]
    TooLong,
    #[error("invalid")]
    Invalid,
}

pub const EMAIL_MAX_LEN: usize = 254;

impl Email {
    /// A practical subset of RFC 5321: one `@`, a local part of printable ASCII without
    /// spaces, a domain of at least two DNS labels. Domain kept as given, compared lowercase.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        if raw.is_empty() {
            return Err(EmailError::Empty);
        }
        if raw.len() > EMAIL_MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if !is_address(raw) {
            return Err(EmailError::Invalid);
        }
        Ok(Email(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Shared by `Email` and the technical login, which Chorus Pro shapes like an address.
pub(crate) fn is_address(raw: &str) -> bool {
    let Some((local, domain)) = raw.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
    local_ok && domain_ok
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_addresses() {
        for ok in [
            "compta@entreprise-btp.fr",
            "jean.dupont+chorus@sub.example.co.uk",
            "TECH_00000000018259@cpp2017.fr",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_cannot_receive_mail() {
        for bad in [
            "compta",
            "compta@",
            "compta@localhost",
            "@entreprise.fr",
            "compta@entreprise..fr",
            "com pta@entreprise.fr",
            "compta@entreprise.fr ",
            "compta@-entreprise.fr",
            "compta@entreprise.f",
            "a..b@entreprise.fr",
            "élodie@entreprise.fr",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad}");
        }
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        let long = format!("{}@entreprise.fr", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }
}
