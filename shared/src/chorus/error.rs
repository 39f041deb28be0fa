//! What can go wrong when talking to PISTE and Chorus Pro, in terms a handler can map to
//! the contract's error codes.

/// Every failure of a Chorus Pro call.
///
/// Display and Debug never carry a password, the PISTE client secret or a token: the
/// variants hold only codes, Chorus Pro's own `libelle` and flags.
///
/// Suggested mapping to the HTTP contract:
///
/// | variant | contract code |
/// | --- | --- |
/// | `CredentialsRejected` | `credentials_rejected` (422) |
/// | `GatewayNotAuthorised` | `gateway_not_authorised` (502) |
/// | `BusinessRefusal` | depends on the call (`invoice_invalid`, `buyer_not_found`, …) |
/// | `Unavailable`, `GatewayCredentialsUnavailable` | `chorus_unavailable` (503) |
/// | `UnexpectedAnswer` | `chorus_unexpected_answer` (502) |
/// | `UnexpectedResponse`, `InvalidConfiguration` | an internal error (500) |
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

    /// An answer this client cannot read (an unexpected HTTP status, or a success body
    /// that is not the expected JSON).
    #[error("unexpected answer from Chorus Pro (HTTP {status})")]
    UnexpectedResponse {
        status: u16,
        may_have_reached_chorus: bool,
    },

    /// Chorus Pro accepted the call (`codeRetour` 0) but its answer does not have a shape
    /// this client can read, even liberally (see `lenient`). `error` says where in the
    /// answer and what was expected, never the value. The request reached Chorus Pro: a
    /// deposit answered this way may be recorded.
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
