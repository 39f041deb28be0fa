//! HS256 JWTs for the local stack: the local API verifies them with `jsonwebtoken` the way
//! API Gateway's JWT authorizer verifies real ones (signature, issuer, audience, `exp`
//! and `nbf`, no leeway), and `local-token` signs them. Not used in AWS.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

pub const ISSUER: &str = "local";
pub const AUDIENCE: &str = "choruspro-gateway";
pub const DEFAULT_SECRET: &str = "local-dev-secret";

#[derive(Debug, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    BadSignature,
    WrongAlgorithm,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
}

pub fn sign(claims: &Map<String, Value>, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// A token for `companies`, valid `ttl_seconds` from `now_epoch`.
pub fn token_for(
    sub: &str,
    companies: &[&str],
    now_epoch: i64,
    ttl_seconds: i64,
    secret: &str,
) -> String {
    let mut claims = Map::new();
    claims.insert("iss".into(), ISSUER.into());
    claims.insert("aud".into(), AUDIENCE.into());
    claims.insert("sub".into(), sub.into());
    claims.insert("iat".into(), now_epoch.into());
    claims.insert("exp".into(), (now_epoch + ttl_seconds).into());
    claims.insert(
        "companies".into(),
        Value::Array(
            companies
                .iter()
                .map(|c| Value::String((*c).to_owned()))
                .collect(),
        ),
    );
    sign(&claims, secret)
}

/// The token's claims if API Gateway's authorizer would let it through now: HS256 signed
/// with `secret`, issued by `local` for `choruspro-gateway`, not expired, not before its
/// `nbf`.
pub fn verify(token: &str, secret: &str) -> Result<Map<String, Value>, JwtError> {
    let mut rules = Validation::new(Algorithm::HS256);
    rules.set_issuer(&[ISSUER]);
    rules.set_audience(&[AUDIENCE]);
    rules.set_required_spec_claims(&["exp", "iss", "aud"]);
    rules.validate_nbf = true;
    rules.leeway = 0;
    jsonwebtoken::decode::<Map<String, Value>>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &rules,
    )
    .map(|data| data.claims)
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::InvalidAlgorithm => JwtError::WrongAlgorithm,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
        ErrorKind::InvalidAudience => JwtError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => JwtError::Expired,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => JwtError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(_) => JwtError::WrongAudience,
        _ => JwtError::Malformed,
    })
}

/// Claims as API Gateway's HTTP API hands them to a Lambda: every value a string, arrays
/// flattened to `[a b]`.
pub fn flatten_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| {
            let flat = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (k.clone(), Value::String(flat))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn claims(extra: &[(&str, Value)]) -> Map<String, Value> {
        let mut c = Map::new();
        c.insert("iss".into(), ISSUER.into());
        c.insert("aud".into(), AUDIENCE.into());
        c.insert("sub".into(), "u1".into());
        c.insert("exp".into(), (now() + 60).into());
        for (k, v) in extra {
            c.insert((*k).to_owned(), v.clone());
        }
        c
    }

    #[test]
    fn round_trip_and_each_refusal() {
        let t = token_for("u1", &["21750001600019"], now(), 60, "s");
        assert_eq!(verify(&t, "s").unwrap()["sub"], "u1");
        let cases: Vec<(String, JwtError)> = vec![
            (t.clone(), JwtError::BadSignature),
            (
                token_for("u1", &[], now() - 120, 60, "s"),
                JwtError::Expired,
            ),
            ("a.b".into(), JwtError::Malformed),
            (
                sign(&claims(&[("iss", "elsewhere".into())]), "s"),
                JwtError::WrongIssuer,
            ),
            (
                sign(&claims(&[("aud", "other".into())]), "s"),
                JwtError::WrongAudience,
            ),
            (
                sign(&claims(&[("nbf", (now() + 600).into())]), "s"),
                JwtError::NotYetValid,
            ),
        ];
        for (i, (token, why)) in cases.into_iter().enumerate() {
            let secret = if i == 0 { "other" } else { "s" };
            assert_eq!(verify(&token, secret), Err(why), "case {i}");
        }
        let none = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(&[]),
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert_eq!(verify(&none, "s"), Err(JwtError::WrongAlgorithm));
        let past_nbf = sign(&claims(&[("nbf", (now() - 5).into())]), "s");
        assert!(verify(&past_nbf, "s").is_ok());
    }

    #[test]
    fn flattens_like_api_gateway() {
        let t = token_for("u1", &["a", "b"], now(), 60, "s");
        let claims = verify(&t, "s").unwrap();
        let flat = flatten_claims(&claims);
        assert_eq!(flat["companies"], "[a b]");
        assert_eq!(flat["exp"], claims["exp"].to_string());
    }
}
