//! Who calls, from the JWT claims that API Gateway's JWT authorizer (or the local API,
//! which verifies the token itself) puts in `requestContext.authorizer.jwt.claims`.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::Problem;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who acts, recorded in the audit trail.
    pub sub: String,
    /// The SIRETs this caller may act for.
    pub companies: Vec<String>,
}

impl Caller {
    /// 401 when there are no claims (API Gateway would not have called us without a valid
    /// token, so this only happens when the route is misconfigured).
    pub fn from_request(request: &Request) -> Result<Self, Problem> {
        let claims = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| &jwt.claims),
            _ => None,
        };
        let Some(claims) = claims else {
            return Err(Problem::unauthenticated());
        };
        let sub = claims
            .get("sub")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(Problem::unauthenticated)?;
        let companies = claims
            .get("companies")
            .map(|c| parse_companies(c))
            .unwrap_or_default();
        Ok(Caller { sub, companies })
    }

    /// The path SIRET must be one of the token's; otherwise 403, whatever the SIRET
    /// (valid or not, known or not), so nothing about another company is revealed.
    pub fn authorise(&self, path_siret: &str) -> Result<(), Problem> {
        if self.companies.iter().any(|c| c == path_siret) {
            Ok(())
        } else {
            Err(Problem::forbidden())
        }
    }
}

/// Accepts a JSON array (`["a","b"]`), API Gateway's flattened form of an array claim
/// (`[a b]`), or a space- or comma-separated string.
pub fn parse_companies(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
    }
    let inner = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|s| s.trim_matches('"').trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claim_form() {
        let want = vec!["21750001600019".to_owned(), "73282932000074".to_owned()];
        assert_eq!(
            parse_companies(r#"["21750001600019","73282932000074"]"#),
            want
        );
        assert_eq!(parse_companies("[21750001600019 73282932000074]"), want);
        assert_eq!(parse_companies("21750001600019 73282932000074"), want);
        assert_eq!(parse_companies("21750001600019,73282932000074"), want);
        assert_eq!(parse_companies("21750001600019, 73282932000074"), want);
        assert_eq!(
            parse_companies("[21750001600019]"),
            vec!["21750001600019".to_owned()]
        );
        assert!(parse_companies("").is_empty());
        assert!(parse_companies("[]").is_empty());
    }

    #[test]
    fn authorise_only_listed_sirets() {
        let caller = Caller {
            sub: "user-1".into(),
            companies: vec!["21750001600019".into()],
        };
        assert!(caller.authorise("21750001600019").is_ok());
        assert_eq!(
            caller.authorise("73282932000074").unwrap_err().status(),
            403
        );
        assert_eq!(caller.authorise("2175000160001").unwrap_err().status(), 403);
    }
}
