//! Where a works statement stands in Chorus Pro's works circuit (docs/chorus-pro.md#works-circuit):
//! the *maître d'œuvre*'s status of the contractor's document, when the MOE received it as
//! Chorus Pro timestamps it, what was claimed and what the MOE admitted, and the documents
//! that followed (the MOE's état d'acompte, the MOA's), each followed to its payment.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::chorus::InvoiceStatus;

/// One document that followed the contractor's (`pieceSuivante`, then its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowingDocument {
    /// Short code (`A16`, `A19`).
    pub framework: String,
    pub chorus_id: i64,
    pub number: Option<String>,
    pub status: Option<String>,
    pub amount_to_pay: Option<Decimal>,
    /// When Chorus Pro says its status was reached.
    #[serde(with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
}

/// The works part of a transmission, stored whole on the situation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorksProgress {
    pub moe_status: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub received_by_moe_at: Option<OffsetDateTime>,
    pub amount_claimed: Option<Decimal>,
    pub amount_accepted: Option<Decimal>,
    pub following_documents: Vec<FollowingDocument>,
}

impl WorksProgress {
    /// The last document of the chain (the one payment is awaited on), if any followed.
    pub fn last_document(&self) -> Option<&FollowingDocument> {
        self.following_documents.last()
    }
}

/// Whether a works status of the company's **own** document means Chorus Pro will process
/// it no further, so the statement must be deposited again under a new number
/// (docs/chorus-pro.md#works-refusals): refused by the party it was sent to
/// (`REFUSEE_MOE`, which "arrête systématiquement le circuit de facturation"; `REFUSEE_MOA`,
/// a document sent to the MOA such as an A8), or addressed to the wrong MOE
/// (`ERREUR_FOURNISSEUR_SUR_MOE`, `ERREUR_MOE_SUR_FOURNISSEUR`: no works service changes a
/// document's MOE, `recyclerFactureTravaux` changes only its routing and MOA). The works
/// equivalent of `REJETEE`; `Transmission::needs_new_number` applies it.
pub fn calls_for_a_new_number(status: &InvoiceStatus) -> bool {
    matches!(
        status,
        InvoiceStatus::RefuseeMoe
            | InvoiceStatus::RefuseeMoa
            | InvoiceStatus::ErreurFournisseurSurMoe
            | InvoiceStatus::ErreurMoeSurFournisseur
    )
}

/// What a works status asks of the company, in French (docs/chorus-pro.md#works-statuses):
/// `status` is the contractor's document's, `following` the last following document's.
/// Every status [`calls_for_a_new_number`] keeps asks for a new number, and only those.
pub fn next_action(
    number: &impl std::fmt::Display,
    status: &InvoiceStatus,
    following: Option<&str>,
    reason: Option<String>,
) -> Option<String> {
    let why = reason.map_or_else(String::new, |r| format!(" Motif donné : « {r} »."));
    let again = "enregistrez un nouveau numéro pour cette situation et transmettez-la de nouveau";
    let text = match status {
        InvoiceStatus::RefuseeMoe => format!(
            "Le maître d'œuvre a refusé le projet de décompte « {number} » : le circuit de facturation est arrêté.{why} Corrigez le décompte avec lui, puis {again}."
        ),
        InvoiceStatus::RefuseeMoa => format!(
            "Le maître d'ouvrage a refusé le document « {number} » : Chorus Pro ne le traitera plus.{why} Corrigez-le avec lui, puis {again}."
        ),
        InvoiceStatus::ACompleter => format!(
            "Le maître d'œuvre demande de compléter le projet de décompte « {number} ».{why} Envoyez les pièces demandées, avec un commentaire si besoin, par POST …/transmission/complete."
        ),
        InvoiceStatus::ErreurFournisseurSurMoe | InvoiceStatus::ErreurMoeSurFournisseur => format!(
            "Le projet de décompte « {number} » n'est pas arrivé au bon maître d'œuvre.{why} Vérifiez le maître d'œuvre et son service avec la fiche d'identité du marché et corrigez le marché (PUT …/markets/{{market_ref}}) ; le décompte ne pouvant pas changer de maître d'œuvre, {again}."
        ),
        InvoiceStatus::AbsenceValidationMoeDelaiReglementaire => format!(
            "Le maître d'œuvre n'a pas traité le projet de décompte « {number} » dans le délai réglementaire. Le délai de paiement court depuis sa réception par le maître d'œuvre (voir payment) : signalez-le au maître d'ouvrage (l'acheteur) et relancez le maître d'œuvre ; la passerelle continue de suivre le décompte."
        ),
        _ if following == Some("REFUSEE_MOA") => format!(
            "Le maître d'ouvrage a refusé l'état d'acompte établi sur le projet de décompte « {number} ».{why} Rapprochez-vous du maître d'œuvre et du maître d'ouvrage : le décompte du mois suivant reprendra les montants en cumul."
        ),
        _ => return None,
    };
    Some(text)
}

/// An amount as Chorus Pro gives it (`"1200.60"`, `1200.6`, `"1200,60"`).
pub fn parse_amount(text: Option<&str>) -> Option<Decimal> {
    text.and_then(|t| t.trim().replace(',', ".").parse().ok())
}

/// `A16_ETAT_ACOMPTE_VALIDE_MOE` → `A16`; a short code stays as it is.
pub fn short_framework(long: &str) -> String {
    long.split('_').next().unwrap_or(long).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn only_the_statuses_that_ask_something_of_the_company_have_a_next_action() {
        let ask = |status: &str, following: Option<&str>| {
            next_action(
                &"SIT-1",
                &InvoiceStatus::from(status),
                following,
                Some("motif".into()),
            )
        };
        for quiet in [
            "MISE_A_DISPOSITION_MOE",
            "A_VALIDER_MOE",
            "ASSOCIEE",
            "TRANSMISE_MOA",
        ] {
            assert_eq!(ask(quiet, None), None, "{quiet}");
        }
        assert_eq!(ask("ASSOCIEE", Some("MISE_EN_PAIEMENT")), None);
        let refused_by_moa = ask("ASSOCIEE", Some("REFUSEE_MOA")).unwrap();
        assert!(
            refused_by_moa.contains("maître d'ouvrage a refusé"),
            "{refused_by_moa}"
        );
        assert!(refused_by_moa.contains("« motif »"), "{refused_by_moa}");
        let refused = ask("REFUSEE_MOE", None).unwrap();
        assert!(
            refused.contains("SIT-1") && refused.contains("« motif »"),
            "{refused}"
        );
        assert!(
            ask("A_COMPLETER", None)
                .unwrap()
                .contains("transmission/complete")
        );
        assert!(
            ask("ERREUR_MOE_SUR_FOURNISSEUR", None)
                .unwrap()
                .contains("nouveau numéro")
        );
        let late = ask("ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE", None).unwrap();
        assert!(late.contains("délai réglementaire"), "{late}");
    }

    #[test]
    fn the_statuses_that_ask_for_a_new_number_are_the_rule_s_and_only_those() {
        let mut known: Vec<&str> = InvoiceStatus::KNOWN.to_vec();
        known.push("UN_STATUT_NOUVEAU");
        for status in known {
            let s = InvoiceStatus::from(status);
            let asks = next_action(&"SIT-1", &s, None, None)
                .is_some_and(|text| text.contains("nouveau numéro"));
            assert_eq!(asks, calls_for_a_new_number(&s), "{status}");
        }
        for refusal in [
            "REFUSEE_MOE",
            "REFUSEE_MOA",
            "ERREUR_FOURNISSEUR_SUR_MOE",
            "ERREUR_MOE_SUR_FOURNISSEUR",
        ] {
            assert!(
                calls_for_a_new_number(&InvoiceStatus::from(refusal)),
                "{refusal}"
            );
        }
        // The MOA refusing the MOE's état d'acompte is not a refusal of the company's own
        // document: the next month's statement takes the amounts up again.
        let following = next_action(
            &"SIT-1",
            &InvoiceStatus::Associee,
            Some("REFUSEE_MOA"),
            None,
        )
        .unwrap();
        assert!(!following.contains("nouveau numéro"), "{following}");
    }

    #[test]
    fn the_view_shows_amounts_with_two_decimals_and_times_in_rfc3339() {
        let progress = WorksProgress {
            moe_status: Some("ASSOCIEE".into()),
            received_by_moe_at: Some(datetime!(2026-12-01 09:00 UTC)),
            amount_claimed: Some(Decimal::new(159_4999, 2)),
            amount_accepted: Some(Decimal::new(15200, 0)),
            following_documents: vec![FollowingDocument {
                framework: short_framework("A16_ETAT_ACOMPTE_VALIDE_MOE"),
                chorus_id: 123,
                number: None,
                status: Some("TRANSMISE_MOA".into()),
                amount_to_pay: Some(Decimal::new(18240, 0)),
                at: None,
            }],
        };
        let v = serde_json::to_value(progress.view()).unwrap();
        assert_eq!(v["amount_claimed"], "15949.99");
        assert_eq!(v["amount_accepted"], "15200.00");
        assert_eq!(v["received_by_moe_at"], "2026-12-01T09:00:00Z");
        assert_eq!(v["following_documents"][0]["framework"], "A16");
        assert_eq!(v["following_documents"][0]["at"], serde_json::Value::Null);
        let back: WorksProgress =
            serde_json::from_str(&serde_json::to_string(&progress).unwrap()).unwrap();
        assert_eq!(back, progress);
    }
}
