//! `?limit=&cursor=` of the lists.
//!
//! The cursor is opaque to the caller: base64url (no padding) of `{kind}1:{last key}`,
//! e.g. `m1:gymnase-2026` for markets, `s1:3` for situations. The kind stops a market
//! cursor from being used on a situation list; the key is re-parsed as a domain value,
//! so a forged cursor can only start a listing of the caller's own company elsewhere.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::{Request, RequestExt};
use shared::http::FieldError;
use shared::view::SituationView;

pub const DEFAULT_LIMIT: u16 = 50;
pub const MAX_LIMIT: u16 = 100;

/// A page of situations, of a market or of the whole company.
#[derive(serde::Serialize)]
pub struct SituationPage {
    pub situations: Vec<SituationView>,
    pub next_cursor: Option<String>,
}

/// What a list request asks for: how many, and after which key (still raw).
pub struct PageRequest {
    pub limit: u16,
    pub after: Option<String>,
}

/// Reads `limit` and `cursor`; every fault is returned, for one answer.
pub fn read(request: &Request, kind: &str) -> Result<PageRequest, Vec<FieldError>> {
    let query = request.query_string_parameters_ref();
    let get = |name: &str| query.and_then(|q| q.first(name)).map(str::to_owned);
    let mut errors = Vec::new();
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<u16>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "invalid_limit",
                    format!(
                        "Le paramètre limit doit être un nombre entier de 1 à {MAX_LIMIT} (reçu : « {raw} »)."
                    ),
                ));
                DEFAULT_LIMIT
            }
        },
    };
    let after = match get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => match decode(&raw, kind) {
            Some(key) => Some(key),
            None => {
                errors.push(invalid_cursor());
                None
            }
        },
    };
    if errors.is_empty() {
        Ok(PageRequest { limit, after })
    } else {
        Err(errors)
    }
}

pub fn invalid_cursor() -> FieldError {
    FieldError::new(
        "cursor",
        "invalid_cursor",
        "Le curseur de pagination est invalide : reprenez la liste depuis le début (sans cursor), puis suivez les next_cursor donnés.",
    )
}

pub fn encode(kind: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}1:{key}"))
}

fn decode(raw: &str, kind: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(&format!("{kind}1:")).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_keep_their_kind() {
        let c = encode("m", "gymnase-2026");
        assert!(!c.contains("gymnase"));
        assert_eq!(decode(&c, "m").as_deref(), Some("gymnase-2026"));
        assert_eq!(decode(&c, "s"), None);
        assert_eq!(decode("not base64!", "m"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode([0xff, 0xfe]), "m"), None);
    }
}
