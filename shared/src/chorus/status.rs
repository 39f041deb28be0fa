//! Chorus Pro state names. The official Swagger declares no enum for them, so a value this
//! code does not know is kept as text (`Other`), never a deserialisation error.

use serde::{Deserialize, Serialize};

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $code:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($variant,)+
            /// A value Chorus Pro sent that this code does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// Every name this code knows, as Chorus Pro spells it.
            pub const KNOWN: &'static [&'static str] = &[$($code,)+];

            /// The name exactly as Chorus Pro spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $code,)+
                    $name::Other(text) => text,
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                match text.as_str() {
                    $($code => $name::$variant,)+
                    _ => $name::Other(text),
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name::from(text.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                match value {
                    $name::Other(text) => text,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// `etatCourantDepotFlux` of a deposited flux (docs/chorus-pro.md#flux-statuses).
    FluxState {
        Recu => "IN_RECU",
        TraiteSeCpp => "IN_TRAITE_SE_CPP",
        EnAttenteTraitementCpp => "IN_EN_ATTENTE_TRAITEMENT_CPP",
        EnCoursTraitementCpp => "IN_EN_COURS_TRAITEMENT_CPP",
        Incidente => "IN_INCIDENTE",
        Rejete => "IN_REJETE",
        EnAttenteRetraitementCpp => "IN_EN_ATTENTE_RETRAITEMENT_CPP",
        DepotPortailEnAttenteTraitementSeCpp => "IN_DEPOT_PORTAIL_EN_ATTENTE_TRAITEMENT_SE_CPP",
        Integre => "IN_INTEGRE",
        IntegrePartiel => "IN_INTEGRE_PARTIEL",
        ARelancer => "IN_A_RELANCER",
        ErreurInterne => "IN_ERREUR_INTERNE",
    }
);

text_enum!(
    /// `statut` / `statutCourantCode` of an invoice (docs/chorus-pro.md#invoice-statuses).
    InvoiceStatus {
        Deposee => "DEPOSEE",
        EnCoursAcheminement => "EN_COURS_ACHEMINEMENT",
        MiseADisposition => "MISE_A_DISPOSITION",
        ARecycler => "A_RECYCLER",
        Rejetee => "REJETEE",
        Suspendue => "SUSPENDUE",
        Completee => "COMPLETEE",
        ServiceFait => "SERVICE_FAIT",
        Mandatee => "MANDATEE",
        MiseADispositionComptable => "MISE_A_DISPOSITION_COMPTABLE",
        MiseEnPaiement => "MISE_EN_PAIEMENT",
        Comptabilisee => "COMPTABILISEE",
        // Works circuit (turbo124/piste-gouv-fr `IStatutFacture`, docs/chorus-pro.md#works-statuses).
        MiseADispositionMoe => "MISE_A_DISPOSITION_MOE",
        PriseEnCompteMoe => "PRISE_EN_COMPTE_MOE",
        AValiderMoe => "A_VALIDER_MOE",
        RefuseeMoe => "REFUSEE_MOE",
        ACompleter => "A_COMPLETER",
        ErreurFournisseurSurMoe => "ERREUR_FOURNISSEUR_SUR_MOE",
        ErreurMoeSurFournisseur => "ERREUR_MOE_SUR_FOURNISSEUR",
        AbsenceValidationMoeDelaiReglementaire => "ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE",
        Associee => "ASSOCIEE",
        TransmiseMoa => "TRANSMISE_MOA",
        MiseADispositionMoa => "MISE_A_DISPOSITION_MOA",
        RefuseeMoa => "REFUSEE_MOA",
    }
);

/// What a flux state means for the gateway (docs/chorus-pro.md#flux-statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FluxOutcome {
    /// `IN_INTEGRE`, `IN_INTEGRE_PARTIEL`: the invoices can be searched.
    Integrated,
    /// `IN_REJETE`, `IN_INCIDENTE`: read `listeErreurDP` for the reasons.
    Rejected,
    /// `IN_ERREUR_INTERNE`, `IN_A_RELANCER`: possibly terminal, needs support or a resend.
    NeedsAttention,
    /// Still being processed.
    Pending,
    /// A state this code does not know: log it, never treat it as pending silently.
    Unknown,
}

impl FluxState {
    pub fn outcome(&self) -> FluxOutcome {
        match self {
            FluxState::Integre | FluxState::IntegrePartiel => FluxOutcome::Integrated,
            FluxState::Rejete | FluxState::Incidente => FluxOutcome::Rejected,
            FluxState::ErreurInterne | FluxState::ARelancer => FluxOutcome::NeedsAttention,
            FluxState::Recu
            | FluxState::TraiteSeCpp
            | FluxState::EnAttenteTraitementCpp
            | FluxState::EnCoursTraitementCpp
            | FluxState::EnAttenteRetraitementCpp
            | FluxState::DepotPortailEnAttenteTraitementSeCpp => FluxOutcome::Pending,
            FluxState::Other(_) => FluxOutcome::Unknown,
        }
    }
}

impl InvoiceStatus {
    /// The statuses after which nothing more is expected of Chorus Pro: the payment
    /// (`MISE_EN_PAIEMENT`, the last step of the cycle) or a rejection (`REJETEE`, a new
    /// number is needed). `MANDATEE` and `COMPTABILISEE` come before the payment, so the
    /// follow-up goes on (docs/chorus-pro.md#which-statuses-end-the-follow-up).
    pub fn ends_follow_up(&self) -> bool {
        matches!(self, InvoiceStatus::MiseEnPaiement | InvoiceStatus::Rejetee)
    }

    /// For a works document: the statuses after which nothing more happens to *this*
    /// document (docs/chorus-pro.md#which-works-statuses-end-the-follow-up). `ASSOCIEE`: the
    /// next party associated its own document, which is followed instead
    /// ([`Self::hands_over`]); `REFUSEE_MOE`: a MOE refusal stops the invoicing circuit
    /// (AIFE); `REFUSEE_MOA`: the MOA refused its document; and the ordinary ends.
    pub fn ends_works_document(&self) -> bool {
        self.ends_follow_up()
            || matches!(
                self,
                InvoiceStatus::Associee | InvoiceStatus::RefuseeMoe | InvoiceStatus::RefuseeMoa
            )
    }

    /// The next party associated its document (`pieceSuivante`): payment is followed there.
    pub fn hands_over(&self) -> bool {
        matches!(self, InvoiceStatus::Associee)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_kept_as_text() {
        let status: InvoiceStatus = serde_json::from_str("\"A_VALIDER_1\"").unwrap();
        assert_eq!(status, InvoiceStatus::Other("A_VALIDER_1".into()));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"A_VALIDER_1\"");
        let state: FluxState = serde_json::from_str("\"IN_NOUVEL_ETAT\"").unwrap();
        assert_eq!(state.outcome(), FluxOutcome::Unknown);
    }

    #[test]
    fn only_the_payment_and_a_rejection_end_the_follow_up() {
        for (status, ends) in [
            ("MISE_EN_PAIEMENT", true),
            ("REJETEE", true),
            ("MANDATEE", false),
            ("COMPTABILISEE", false),
            ("MISE_A_DISPOSITION_COMPTABLE", false),
            ("A_RECYCLER", false),
            ("SUSPENDUE", false),
            ("UN_STATUT_NOUVEAU", false),
        ] {
            assert_eq!(
                InvoiceStatus::from(status).ends_follow_up(),
                ends,
                "{status}"
            );
        }
    }

    #[test]
    fn a_works_document_ends_when_handed_over_refused_or_paid() {
        for (status, ends, hands_over) in [
            ("ASSOCIEE", true, true),
            ("REFUSEE_MOE", true, false),
            ("REFUSEE_MOA", true, false),
            ("MISE_EN_PAIEMENT", true, false),
            ("MISE_A_DISPOSITION_MOE", false, false),
            ("A_VALIDER_MOE", false, false),
            ("A_COMPLETER", false, false),
            ("ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE", false, false),
            ("TRANSMISE_MOA", false, false),
        ] {
            let s = InvoiceStatus::from(status);
            assert_eq!(s.ends_works_document(), ends, "{status}");
            assert_eq!(s.hands_over(), hands_over, "{status}");
            assert!(
                !s.ends_follow_up() || status == "MISE_EN_PAIEMENT",
                "{status}"
            );
        }
    }

    #[test]
    fn known_values_round_trip() {
        let state: FluxState =
            serde_json::from_str("\"IN_DEPOT_PORTAIL_EN_ATTENTE_TRAITEMENT_SE_CPP\"").unwrap();
        assert_eq!(state, FluxState::DepotPortailEnAttenteTraitementSeCpp);
        assert_eq!(state.outcome(), FluxOutcome::Pending);
        assert_eq!(
            FluxState::from("IN_INTEGRE").outcome(),
            FluxOutcome::Integrated
        );
        assert_eq!(
            InvoiceStatus::from("MISE_EN_PAIEMENT").as_str(),
            "MISE_EN_PAIEMENT"
        );
    }
}

/// Whether a Chorus Pro refusal says the invoice number is already used by this supplier
/// (docs/chorus-pro.md#exactly-once): matched on the
/// words, accents and case aside, since Chorus Pro gives the reason as text.
pub fn says_number_already_used(reason: &str) -> bool {
    let plain: String = reason
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'à' | 'â' => 'a',
            'ù' | 'û' => 'u',
            'î' | 'ï' => 'i',
            'ô' => 'o',
            other => other,
        })
        .collect();
    let names_the_number = plain.contains("numero") || plain.contains("facture");
    let already_used = (plain.contains("deja") && plain.contains("utilis"))
        || plain.contains("doublon")
        || plain.contains("existe deja");
    names_the_number && already_used
}

#[cfg(test)]
mod number_already_used_tests {
    use super::says_number_already_used;

    #[test]
    fn a_duplicate_number_is_recognised_however_it_is_spelled() {
        for yes in [
            "Le numero de facture F-1 a deja ete utilise par ce fournisseur",
            "Le numéro de facture F-1 a déjà été utilisé par ce fournisseur",
            "Facture en doublon : le numéro F-1 existe déjà",
            "NUMERO DE FACTURE DEJA UTILISE",
        ] {
            assert!(says_number_already_used(yes), "{yes}");
        }
        for no in [
            "Le code service est obligatoire pour ce destinataire",
            "Le numéro d'engagement est inconnu",
            "Le champ identifiant de la facture ne doit pas depasser 20 caracteres",
            "",
        ] {
            assert!(!says_number_already_used(no), "{no}");
        }
    }
}
