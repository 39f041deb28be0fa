//! What can go wrong when talking to PISTE and Chorus Pro, in terms a handler can map to
//! the contract's error codes.

/// Every failure of a Chorus Pro call.
///
/// Display and Debug never carry a password, the PISTE client secret or a token: the
/// variants hold only codes, Chorus Pro's own `libelle` and flags.
///
/// The mapping to the HTTP contract (`crate::http::chorus::chorus_problem`, the one place
/// that applies it; docs/chorus-pro.md#answers-the-client-cannot-read says why):
///
/// | variant | contract code | why |
/// | --- | --- | --- |
/// | `CredentialsRejected` | `credentials_rejected` (422) | the company must save its password |
/// | `GatewayNotAuthorised` | `gateway_not_authorised` (502) | the gateway's operator must act |
/// | `BusinessRefusal` | depends on the call (`invoice_invalid`, `buyer_not_found`, …) | handlers answer the refusals they understand first |
/// | `Unavailable`, `GatewayCredentialsUnavailable` | `chorus_unavailable` (503) | no usable answer: asking again later is right |
/// | `UnexpectedAnswer` | `chorus_unexpected_answer` (502) | Chorus Pro answered success (2xx) in a body the client cannot read: not JSON, or JSON of no readable shape; asking again gets the same answer until the gateway is fixed |
/// | `UnexpectedResponse` | `chorus_unavailable` (503) | an HTTP status Chorus Pro is not documented to send (a 404 or 3xx of a proxy, a 400 without `codeRetour`), or a token answer PISTE's OAuth server sent that cannot be used: the request was not processed, so asking again later is safe and is what helps when the path in front of Chorus Pro misbehaves for a while |
/// | `InvalidConfiguration` | an internal error (500) | a fault of the gateway itself |
///
/// After a failed deposit, [`ChorusError::deposit_may_be_recorded`] tells whether the
/// deposit must be reconciled (searched for) before any new attempt.
#[derive(Debug, thiserror::Error)]
pub enum ChorusError {
    /// Chorus Pro refused the company's technical account (`cpro-account`): wrong or
    /// expired password, or an unknown login.
    #[error("Chorus Pro refused the technical account (wrong or expired password)")]
    CredentialsRejected,

    /// PISTE refused the gateway's own application: `invalid_client` from the token
    /// endpoint, or a PISTE-level 401/403 that persisted after one token renewal.
    #[error("PISTE refused the gateway's application")]
    GatewayNotAuthorised,

    /// Chorus Pro answered with a non-zero `codeRetour` (HTTP 200 or 400): the request was
    /// read and refused; a refused deposit was not recorded.
    #[error("Chorus Pro refused the request (codeRetour {code_retour}: {libelle})")]
    BusinessRefusal { code_retour: i64, libelle: String },

    /// No usable answer after the allowed attempts (timeout, connection error, 5xx, 429).
    /// `may_have_reached_chorus` is what a caller must know after a deposit: `false` only
    /// when the request certainly never reached Chorus Pro (connection refused, PISTE
    /// throttling, token endpoint down).
    #[error(
        "Chorus Pro or PISTE is unavailable (request may have reached Chorus Pro: {may_have_reached_chorus})"
    )]
    Unavailable { may_have_reached_chorus: bool },

    /// An HTTP status Chorus Pro is not documented to send (anything but 2xx, 400 with
    /// `codeRetour`, 401, 403, 429, 5xx), or a PISTE token answer that cannot be used. A
    /// success body that cannot be read is [`ChorusError::UnexpectedAnswer`] instead.
    #[error("unexpected answer from Chorus Pro (HTTP {status})")]
    UnexpectedResponse {
        status: u16,
        may_have_reached_chorus: bool,
    },

    /// Chorus Pro answered success (2xx, no refusing `codeRetour`) with a body this client
    /// cannot read: not JSON at all (an HTML page, an empty body), or JSON of a shape it
    /// cannot read even liberally (see `lenient`). `error` says where in the answer and
    /// what was expected, never the value. The request reached Chorus Pro: a deposit or an
    /// action answered this way may be recorded.
    #[error("unexpected answer from Chorus Pro to {path}: {error}")]
    UnexpectedAnswer { path: &'static str, error: String },

    /// The source of the gateway's PISTE credentials failed (e.g. Secrets Manager). The
    /// reason must not contain the secret; implementations of the source build it.
    #[error("the gateway's PISTE credentials could not be loaded: {reason}")]
    GatewayCredentialsUnavailable { reason: String },

    /// The client could not be built or a request could not be formed.
    #[error("invalid Chorus Pro client configuration: {reason}")]
    InvalidConfiguration { reason: String },
}

impl ChorusError {
    /// True when a deposit that failed this way may nevertheless have been recorded by
    /// Chorus Pro, so the caller must look for it before depositing again.
    pub fn deposit_may_be_recorded(&self) -> bool {
        matches!(
            self,
            ChorusError::Unavailable {
                may_have_reached_chorus: true
            } | ChorusError::UnexpectedResponse {
                may_have_reached_chorus: true,
                ..
            } | ChorusError::UnexpectedAnswer { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_answer_to_a_deposit_may_be_recorded() {
        let error = ChorusError::UnexpectedAnswer {
            path: "factures/v1/deposer/flux",
            error: "missing field `numeroFluxDepot`".into(),
        };
        assert!(error.deposit_may_be_recorded());
        assert_eq!(
            error.to_string(),
            "unexpected answer from Chorus Pro to factures/v1/deposer/flux: missing field `numeroFluxDepot`"
        );
    }
}
