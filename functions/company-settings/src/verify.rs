//! Testing a technical account against Chorus Pro: accepted, and attached to the company's
//! SIRET among its active structures (`transverses/v1/recuperer/structures/actives/fournisseur`,
//! a harmless read that needs both).

use secrecy::SecretString;
use shared::chorus::{ChorusClient, ChorusError, TechnicalAccount};
use shared::domain::Siret;
use shared::http::chorus::chorus_problem;
use shared::http::{Problem, ProblemCode};

/// What Chorus Pro said of the credentials. An unreachable Chorus Pro is neither: it is
/// answered as a problem, and nothing is recorded.
pub enum Verdict {
    /// With the company's own structure id (`idStructureCPP`), which the answer carries and
    /// the commitment search needs (docs/chorus-pro.md#commitment-ej-search).
    Accepted {
        chorus_structure_id: i64,
    },
    Rejected(String),
}

pub fn rejected_problem(reason: String) -> Problem {
    Problem::new(ProblemCode::CredentialsRejected, reason)
}

pub async fn test_credentials(
    chorus: &ChorusClient,
    siret: &Siret,
    login: &str,
    password: SecretString,
) -> Result<Verdict, Problem> {
    let account = TechnicalAccount::new(login, password);
    match chorus.supplier_active_structures(&account).await {
        Ok(answer) => {
            if let Some(chorus_structure_id) = answer.structure_id_of(siret.as_str()) {
                return Ok(Verdict::Accepted {
                    chorus_structure_id,
                });
            }
            let attached: Vec<&str> = answer
                .liste_structures
                .iter()
                .map(|s| s.identifiant.as_str())
                .collect();
            Ok(Verdict::Rejected(if attached.is_empty() {
                format!(
                    "Chorus Pro accepte le compte technique {login}, mais il n'est rattaché à aucune structure active : le SIRET {siret} n'en fait pas partie. Vérifiez dans Chorus Pro (Raccordements → Compte technique) que le compte est rattaché à votre structure."
                )
            } else {
                format!(
                    "Chorus Pro accepte le compte technique {login}, mais il n'est pas rattaché au SIRET {siret} (structures rattachées : {}). Vérifiez le SIRET, ou utilisez le compte technique de cette structure.",
                    attached.join(", ")
                )
            }))
        }
        Err(ChorusError::CredentialsRejected) => Ok(Verdict::Rejected(format!(
            "Chorus Pro refuse le compte technique {login} : identifiant ou mot de passe incorrect, ou mot de passe expiré. Vérifiez la saisie ; si le mot de passe a expiré, le gestionnaire principal de la structure doit le réinitialiser dans Chorus Pro (Raccordements → Compte technique → Réinitialisation du mot de passe)."
        ))),
        Err(ChorusError::BusinessRefusal { code_retour, .. }) => Ok(Verdict::Rejected(format!(
            "Chorus Pro n'a trouvé aucune structure active pour le compte technique {login} (code retour {code_retour}) : le SIRET {siret} ne peut pas être utilisé avec ce compte."
        ))),
        // Chorus Pro or PISTE could not give a verdict.
        Err(e) => Err(chorus_problem(&e)),
    }
}
