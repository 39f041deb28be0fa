//! HS256 JWTs for the local stack: the local API verifies them the way API Gateway's JWT
//! authorizer verifies real ones (signature, issuer, audience, expiry), and `local-token`
//! signs them. Not used in AWS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

pub const ISSUER: &str = "local";
pub const AUDIENCE: &str = "choruspro-gateway";
pub const DEFAULT_SECRET: &str = "local-dev-secret";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    BadSignature,
    WrongAlgorithm,
    Expired,
    WrongIssuer,
    WrongAudience,
}

fn mac(secret: &str) -> HmacSha256 {
    // HMAC accepts keys of any length.
    HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

pub fn sign(claims: &Map<String, Value>, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{signing_input}.{signature}")
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

pub fn verify(token: &str, secret: &str, now_epoch: i64) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtError::WrongAlgorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwtError::Malformed)?;
    let mut m = mac(secret);
    m.update(format!("{}.{}", token.split('.').next().unwrap_or(""), payload).as_bytes());
    m.verify_slice(&signature)
        .map_err(|_| JwtError::BadSignature)?;
    let claims: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(JwtError::Malformed)?;
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > now_epoch => {}
        _ => return Err(JwtError::Expired),
    }
    if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
        return Err(JwtError::WrongIssuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == AUDIENCE,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(AUDIENCE)),
        _ => false,
    };
    if !audience_ok {
        return Err(JwtError::WrongAudience);
    }
    Ok(claims)
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

    #[test]
    fn round_trip_and_refusals() {
        let t = token_for("u1", &["21750001600019"], 1_000, 60, "s");
        let claims = verify(&t, "s", 1_010).unwrap();
        assert_eq!(claims["sub"], "u1");
        assert_eq!(verify(&t, "other", 1_010), Err(JwtError::BadSignature));
        assert_eq!(verify(&t, "s", 1_061), Err(JwtError::Expired));
        assert_eq!(verify("a.b", "s", 0), Err(JwtError::Malformed));
        let mut c = Map::new();
        c.insert("iss".into(), "elsewhere".into());
        c.insert("aud".into(), AUDIENCE.into());
        c.insert("exp".into(), 2_000.into());
        assert_eq!(verify(&sign(&c, "s"), "s", 0), Err(JwtError::WrongIssuer));
    }

    #[test]
    fn flattens_like_api_gateway() {
        let t = token_for("u1", &["a", "b"], 0, 60, "s");
        let claims = verify(&t, "s", 1).unwrap();
        let flat = flatten_claims(&claims);
        assert_eq!(flat["companies"], "[a b]");
        assert_eq!(flat["exp"], "60");
    }
}
