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
        ChorusError::BusinessRefusal { .. }
        | ChorusError::Unavailable { .. }
        | ChorusError::UnexpectedResponse { .. }
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
