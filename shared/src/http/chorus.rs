//! The answer to give when a Chorus Pro call made on the company's behalf fails.

use crate::chorus::ChorusError;

use super::{Problem, ProblemCode};

/// Maps a failed Chorus Pro call to the contract's codes. Handlers answer the refusals
/// they understand (`BusinessRefusal` of a given call) before falling back to this; the
/// error is logged here, without secrets (`ChorusError` carries none).
pub fn chorus_problem(err: &ChorusError) -> Problem {
    tracing::warn!(error = %err, "Chorus Pro call failed");
    match err {
        ChorusError::CredentialsRejected => Problem::new(
            ProblemCode::CredentialsRejected,
            "Chorus Pro refuse le compte technique de l'entreprise (mot de passe erroné ou expiré) : enregistrez le mot de passe en vigueur dans « Mon compte », puis réessayez. Rien n'a été enregistré.",
        ),
        ChorusError::GatewayNotAuthorised => Problem::new(
            ProblemCode::GatewayNotAuthorised,
            "PISTE refuse l'application de la passerelle : l'exploitant de la passerelle doit vérifier son raccordement Chorus Pro. Rien n'a été enregistré.",
        ),
        ChorusError::InvalidConfiguration { .. } => Problem::internal(),
        // Chorus Pro answered, in a shape the gateway cannot read: not "unavailable".
        ChorusError::UnexpectedAnswer { path, .. } => Problem::new(
            ProblemCode::ChorusUnexpectedAnswer,
            format!(
                "Chorus Pro a envoyé une réponse que la passerelle ne sait pas lire (appel {path}) ; rien n'a été enregistré. Réessayez plus tard ou contactez le support de la passerelle."
            ),
        ),
        // A status Chorus Pro is not documented to send: nothing was processed, and asking
        // again later is what helps (error.rs, the mapping table).
        ChorusError::UnexpectedResponse { status, .. } => Problem::new(
            ProblemCode::ChorusUnavailable,
            format!(
                "Chorus Pro n'a pas répondu normalement (statut HTTP {status} inattendu) ; rien n'a été enregistré. Réessayez dans quelques minutes ; si cela dure, contactez le support de la passerelle."
            ),
        ),
        ChorusError::BusinessRefusal { .. }
        | ChorusError::Unavailable { .. }
        | ChorusError::GatewayCredentialsUnavailable { .. } => Problem::new(
            ProblemCode::ChorusUnavailable,
            "Chorus Pro ne répond pas pour le moment ; rien n'a été enregistré. Réessayez dans quelques minutes.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_contract() {
        assert_eq!(
            chorus_problem(&ChorusError::CredentialsRejected).status(),
            422
        );
        assert_eq!(
            chorus_problem(&ChorusError::GatewayNotAuthorised).status(),
            502
        );
        assert_eq!(
            chorus_problem(&ChorusError::Unavailable {
                may_have_reached_chorus: false
            })
            .code,
            ProblemCode::ChorusUnavailable
        );
    }

    /// Issue 19: an undocumented HTTP status stays `503 chorus_unavailable` (asking again
    /// later is right) and says which status came; an unreadable success body is the 502.
    #[test]
    fn an_undocumented_status_is_unavailable_and_named() {
        let problem = chorus_problem(&ChorusError::UnexpectedResponse {
            status: 404,
            may_have_reached_chorus: false,
        });
        assert_eq!(problem.code, ProblemCode::ChorusUnavailable);
        assert_eq!(problem.status(), 503);
        assert!(problem.detail.contains("404"), "{}", problem.detail);
        assert!(problem.detail.contains("Réessayez"), "{}", problem.detail);
        let unreadable = chorus_problem(&ChorusError::UnexpectedAnswer {
            path: "factures/v1/recycler",
            error: "the body is not JSON (38 bytes): expected value at line 1 column 1".into(),
        });
        assert_eq!(unreadable.status(), 502);
        assert!(
            !unreadable.detail.contains("not JSON"),
            "{}",
            unreadable.detail
        );
    }

    #[test]
    fn an_unreadable_answer_has_its_own_code() {
        let problem = chorus_problem(&ChorusError::UnexpectedAnswer {
            path: "structures/v1/rechercher",
            error: "listeStructures[0].idStructureCPP: invalid type: map, expected a string or a number".into(),
        });
        assert_eq!(problem.code, ProblemCode::ChorusUnexpectedAnswer);
        assert_eq!(problem.status(), 502);
        assert!(
            problem.detail.contains("ne sait pas lire"),
            "{}",
            problem.detail
        );
        assert!(problem.detail.contains("structures/v1/rechercher"));
        // The serde detail goes to the logs, not to the caller.
        assert!(!problem.detail.contains("invalid type"));
        let body: serde_json::Value = serde_json::from_str(&problem.to_json()).unwrap();
        assert_eq!(body["code"], "chorus_unexpected_answer");
        assert_eq!(body["title"], "Réponse de Chorus Pro illisible");
    }
}
