//! A monthly *situation de travaux* of a market: its sequence number in the market, the
//! invoice number it goes to Chorus Pro under, its period and, when it differs from the
//! market's, its own commitment number; then what became of its transmission.
//!
//! The rules of its identifiers:
//!
//! - an invoice number belongs to one situation of the company at a time (the store
//!   enforces it with one guard item per number, see `store::situation`);
//! - before any transmission, identifiers change freely, and a replaced number is freed;
//! - once transmitted they are frozen, except after a Chorus Pro rejection (`REJETEE`, a
//!   rejected deposit, or its works equivalent, `works::calls_for_a_new_number`: see
//!   [`Transmission::needs_new_number`]): then a **new** number must be registered before
//!   sending again (Chorus Pro refuses a rejected invoice's number a second time), and the
//!   rejected one stays held by the situation, so no other situation can take it either.

use std::fmt;

use time::OffsetDateTime;

use super::Siret;
use super::invoice_number::InvoiceNumber;
use super::market::{CommitmentNumber, MarketRef, MarketTerms};
use super::payment::{PaymentClock, PaymentTerms, payment_clock};
use super::transmission::TransmissionState;

// ---------------------------------------------------------------------------------------
// Sequence number and period

/// The statement's sequence number in its market, 1–999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SituationNumber(u16);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SituationNumberError {
    NotANumber,
    OutOfRange,
}

impl SituationNumber {
    pub const MAX: u16 = 999;

    /// Digits only (no sign, no space); leading zeros are allowed (`003` is 3).
    pub fn parse(raw: &str) -> Result<Self, SituationNumberError> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SituationNumberError::NotANumber);
        }
        let trimmed = raw.trim_start_matches('0');
        if trimmed.len() > 3 {
            return Err(SituationNumberError::OutOfRange);
        }
        let value: u16 = if trimmed.is_empty() {
            0
        } else {
            trimmed
                .parse()
                .map_err(|_| SituationNumberError::NotANumber)?
        };
        Self::new(value).ok_or(SituationNumberError::OutOfRange)
    }

    pub fn new(value: u16) -> Option<Self> {
        (1..=Self::MAX).contains(&value).then_some(Self(value))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for SituationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl SituationNumberError {
    pub fn code(self) -> &'static str {
        match self {
            SituationNumberError::NotANumber => "invalid_number",
            SituationNumberError::OutOfRange => "out_of_range",
        }
    }

    pub fn message_fr(self, raw: &str) -> String {
        match self {
            SituationNumberError::NotANumber => format!(
                "Le numéro de situation doit être un nombre entier de 1 à {} (reçu : « {raw} »).",
                SituationNumber::MAX
            ),
            SituationNumberError::OutOfRange => format!(
                "Le numéro de situation doit être compris entre 1 et {} (reçu : {raw}).",
                SituationNumber::MAX
            ),
        }
    }
}

/// The month a statement covers, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period {
    year: u16,
    month: u8,
}

impl Period {
    /// Years 2000–2099: anything else is a typing error for a works statement.
    pub fn parse(raw: &str) -> Option<Self> {
        let (year, month) = raw.split_once('-')?;
        if year.len() != 4
            || month.len() != 2
            || !year
                .bytes()
                .chain(month.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let year: u16 = year.parse().ok()?;
        let month: u8 = month.parse().ok()?;
        ((2000..=2099).contains(&year) && (1..=12).contains(&month))
            .then_some(Period { year, month })
    }

    /// The field-error code of a period that does not parse.
    pub const ERROR_CODE: &'static str = "invalid_period";

    pub fn message_fr(raw: &str) -> String {
        format!(
            "La période « {raw} » n'est pas un mois valide : format attendu AAAA-MM, par exemple 2026-11."
        )
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

// ---------------------------------------------------------------------------------------
// Transmission (filled in by the transmission function)

/// Chorus Pro's status of an invoice the buyer rejected: a new number is needed.
pub const CHORUS_STATUS_REJECTED: &str = "REJETEE";

/// One Chorus Pro status the situation went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    pub at: OffsetDateTime,
    /// As Chorus Pro names it (`DEPOSEE`, `REJETEE`, …).
    pub status: String,
    /// Chorus Pro's comment or rejection reason.
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmission {
    pub state: TransmissionState,
    pub chorus_status: Option<String>,
    pub flux_number: Option<String>,
    pub chorus_invoice_id: Option<i64>,
    pub status_history: Vec<StatusEntry>,
    /// Since when the company is asked to look in the Chorus Pro portal for a deposit
    /// whose outcome stayed unknown past the reconcile grace (`outcome_unknown` only).
    pub company_check_since: Option<OffsetDateTime>,
    /// What the transmitted invoice asks to be paid (BT-115), the base of late-payment
    /// interest; `None` before the transmission.
    pub amount_due: Option<rust_decimal::Decimal>,
    /// Where a works statement stands in the works circuit (`None` for an invoice, and
    /// before the follow-up first read it).
    pub works: Option<super::works::WorksProgress>,
}

impl Transmission {
    pub fn not_transmitted() -> Self {
        Transmission {
            state: TransmissionState::NotTransmitted,
            chorus_status: None,
            flux_number: None,
            chorus_invoice_id: None,
            status_history: Vec::new(),
            company_check_since: None,
            amount_due: None,
            works: None,
        }
    }

    /// Chorus Pro will process this invoice no further and a new one, under a new number,
    /// is the way on: a rejected deposit, `REJETEE`, or a works statement refused for good
    /// (`works::calls_for_a_new_number`). The one rule of the registration (reopen), the
    /// next action, and the payment clock (nothing is due on it).
    pub fn needs_new_number(&self) -> bool {
        self.state == TransmissionState::Rejected
            || self.chorus_status.as_deref().is_some_and(|status| {
                status == CHORUS_STATUS_REJECTED
                    || super::works::calls_for_a_new_number(&crate::chorus::InvoiceStatus::from(
                        status,
                    ))
            })
    }
}

/// A transmission closed by a rejection, kept when a new number is registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSubmission {
    pub invoice_number: String,
    pub state: TransmissionState,
    pub chorus_status: Option<String>,
    pub flux_number: Option<String>,
    pub chorus_invoice_id: Option<i64>,
    /// When the new number replaced it.
    pub replaced_at: OffsetDateTime,
}

// ---------------------------------------------------------------------------------------
// The situation and its registration

/// What the caller registers for a situation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SituationIdentifiers {
    pub invoice_number: InvoiceNumber,
    pub period: Option<Period>,
    /// Overrides the market's for this statement.
    pub commitment_number: Option<CommitmentNumber>,
}

impl SituationIdentifiers {
    pub fn changed_fields(&self, old: Option<&SituationIdentifiers>) -> Vec<String> {
        let mut fields = Vec::new();
        if old.is_none_or(|o| o.invoice_number != self.invoice_number) {
            fields.push("invoice_number".to_owned());
        }
        if old.is_none_or(|o| o.period != self.period) {
            fields.push("period".to_owned());
        }
        if old.is_none_or(|o| o.commitment_number != self.commitment_number) {
            fields.push("commitment_number".to_owned());
        }
        fields
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Situation {
    pub siret: Siret,
    pub market_ref: MarketRef,
    pub number: SituationNumber,
    pub identifiers: SituationIdentifiers,
    pub transmission: Transmission,
    pub previous_submissions: Vec<PreviousSubmission>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Optimistic-lock counter: every writer of the situation (this function and the
    /// transmission) increments it and conditions its write on the value it read.
    pub revision: u64,
}

/// What happens to the invoice number guard items when a situation is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberChange {
    /// Same number: the guard stays as it is.
    Keep,
    /// Same number in another case (`sit-1` → `SIT-1`): the guard is rewritten.
    Respell,
    /// Another number: the new one is taken; the old one is freed, or kept held when
    /// Chorus Pro rejected an invoice under it.
    Replace { release: Release },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    Free,
    /// Held for good by this situation: Chorus Pro knows the number.
    Retire,
}

/// The writes a registration needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// A new situation, taking its number.
    Create,
    /// The same identifiers again (a retry): nothing to write.
    Unchanged,
    Update {
        number: NumberChange,
        /// A rejected transmission is closed (kept in `previous_submissions`) and the
        /// situation may be sent again.
        reopen: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationRefusal {
    /// Transmitted and not rejected: its identifiers are what Chorus Pro has.
    Frozen { state: TransmissionState },
    /// Rejected by Chorus Pro, and registered again under the rejected number.
    RejectedNumberReused { number: InvoiceNumber },
}

impl RegistrationRefusal {
    pub fn message_fr(&self, situation: SituationNumber, market_ref: &MarketRef) -> String {
        match self {
            RegistrationRefusal::Frozen { state } => format!(
                "La situation n° {situation} du marché « {market_ref} » a déjà été transmise à Chorus Pro (état : {}) : son numéro de facture, sa période et son numéro d'engagement ne peuvent plus changer. Ils ne pourront changer que si Chorus Pro rejette la facture.",
                state.as_str()
            ),
            RegistrationRefusal::RejectedNumberReused { number } => format!(
                "Chorus Pro a rejeté la facture « {number} » de la situation n° {situation} du marché « {market_ref} » : un numéro rejeté ne peut pas être réutilisé. Enregistrez un nouveau numéro de facture pour cette situation, puis transmettez-la de nouveau."
            ),
        }
    }
}

/// Decides what registering `wanted` on `existing` means (see the module documentation).
pub fn plan_registration(
    existing: Option<&Situation>,
    wanted: &SituationIdentifiers,
) -> Result<Registration, RegistrationRefusal> {
    let Some(current) = existing else {
        return Ok(Registration::Create);
    };
    let same_key = current.identifiers.invoice_number.uniqueness_key()
        == wanted.invoice_number.uniqueness_key();
    if current.transmission.state == TransmissionState::NotTransmitted {
        if current.identifiers == *wanted {
            return Ok(Registration::Unchanged);
        }
        let number = if current.identifiers.invoice_number == wanted.invoice_number {
            NumberChange::Keep
        } else if same_key {
            NumberChange::Respell
        } else {
            NumberChange::Replace {
                release: Release::Free,
            }
        };
        return Ok(Registration::Update {
            number,
            reopen: false,
        });
    }
    if current.transmission.needs_new_number() {
        if same_key {
            return Err(RegistrationRefusal::RejectedNumberReused {
                number: current.identifiers.invoice_number.clone(),
            });
        }
        return Ok(Registration::Update {
            number: NumberChange::Replace {
                release: Release::Retire,
            },
            reopen: true,
        });
    }
    if current.identifiers == *wanted {
        Ok(Registration::Unchanged)
    } else {
        Err(RegistrationRefusal::Frozen {
            state: current.transmission.state,
        })
    }
}

impl Situation {
    /// The commitment the situation's invoice carries: its own, else the market's.
    pub fn commitment_under<'a>(&'a self, terms: &'a MarketTerms) -> Option<&'a CommitmentNumber> {
        self.identifiers
            .commitment_number
            .as_ref()
            .or(terms.commitment_number.as_ref())
    }

    /// The situation once `wanted` is registered according to `registration`.
    pub fn registered(
        existing: Option<&Situation>,
        siret: &Siret,
        market_ref: &MarketRef,
        number: SituationNumber,
        wanted: SituationIdentifiers,
        registration: Registration,
        now: OffsetDateTime,
    ) -> Situation {
        match existing {
            None => Situation {
                siret: siret.clone(),
                market_ref: market_ref.clone(),
                number,
                identifiers: wanted,
                transmission: Transmission::not_transmitted(),
                previous_submissions: Vec::new(),
                created_at: now,
                updated_at: now,
                revision: 1,
            },
            Some(old) => {
                let mut next = old.clone();
                if registration == Registration::Unchanged {
                    return next;
                }
                if let Registration::Update { reopen: true, .. } = registration {
                    next.previous_submissions.push(PreviousSubmission {
                        invoice_number: old.identifiers.invoice_number.to_string(),
                        state: old.transmission.state,
                        chorus_status: old.transmission.chorus_status.clone(),
                        flux_number: old.transmission.flux_number.clone(),
                        chorus_invoice_id: old.transmission.chorus_invoice_id,
                        replaced_at: now,
                    });
                    // The history of statuses stays: it tells the whole story of the situation.
                    next.transmission = Transmission {
                        status_history: old.transmission.status_history.clone(),
                        ..Transmission::not_transmitted()
                    };
                }
                next.identifiers = wanted;
                next.updated_at = now;
                next.revision = old.revision + 1;
                next
            }
        }
    }

    /// What the company must do now, in French, when the status asks for something.
    pub fn next_action(&self) -> Option<String> {
        let number = &self.identifiers.invoice_number;
        if let Some(action) = self.works_action() {
            return Some(action);
        }
        if self.transmission.needs_new_number() {
            return Some(format!(
                "Chorus Pro a rejeté la facture « {number} » : enregistrez un nouveau numéro de facture pour cette situation, puis transmettez-la de nouveau."
            ));
        }
        match (self.transmission.state, self.transmission.chorus_status.as_deref()) {
            (TransmissionState::OutcomeUnknown, _) => Some(self.outcome_unknown_action()),
            (TransmissionState::WaitingCredentials, _) => Some(
                "Le mot de passe du compte technique Chorus Pro est refusé ou expiré : enregistrez le nouveau dans « Mon compte » ; la transmission reprendra d'elle-même."
                    .to_owned(),
            ),
            (_, Some("A_RECYCLER")) => Some(format!(
                "La facture « {number} » est à recycler : envoyez le destinataire, le code service ou le numéro d'engagement corrigés (voir le commentaire de Chorus Pro) avec POST …/transmission/recycle ; le numéro de facture reste le même."
            )),
            (_, Some("SUSPENDUE" | "A_COMPLETER")) => Some(format!(
                "La facture « {number} » est suspendue : envoyez les pièces demandées par l'acheteur (voir le commentaire du statut), avec un commentaire si besoin, par POST …/transmission/complete."
            )),
            _ => None,
        }
    }

    /// What a works status asks of the company (docs/chorus-pro.md#works-circuit); the
    /// comment of the status (the MOE's reason) is quoted.
    fn works_action(&self) -> Option<String> {
        let works = self.transmission.works.as_ref()?;
        let status = crate::chorus::InvoiceStatus::from(
            self.transmission
                .chorus_status
                .as_deref()
                .unwrap_or_default(),
        );
        let following = works.last_document().and_then(|d| d.status.as_deref());
        let reason = self
            .transmission
            .status_history
            .iter()
            .rev()
            .find(|e| Some(e.status.as_str()) == self.transmission.chorus_status.as_deref())
            .and_then(|e| e.comment.clone());
        super::works::next_action(&self.identifiers.invoice_number, &status, following, reason)
    }

    /// A deposit whose answer was lost: searched for by the gateway first; past the grace,
    /// the company is asked what the Chorus Pro portal shows (`POST …/transmission/resolve`).
    fn outcome_unknown_action(&self) -> String {
        let number = &self.identifiers.invoice_number;
        match self.transmission.company_check_since {
            None => format!(
                "Chorus Pro n'a pas encore confirmé la réception de la facture « {number} » : la passerelle la recherche dans Chorus Pro. Ne la déposez pas une seconde fois."
            ),
            Some(_) => format!(
                "Chorus Pro ne confirme toujours pas la réception de la facture « {number} ». Dans le portail Chorus Pro, cherchez-la (Factures émises, par son numéro) et consultez les comptes rendus de vos dépôts, puis indiquez ce que vous avez vu (POST …/transmission/resolve) : trouvée, la situation y sera rattachée ; absente, elle sera déposée une nouvelle fois. Ne la déposez pas vous-même."
            ),
        }
    }

    /// The statuses of the current submission: a rejected number's stay in the history but
    /// its deadline died with it.
    fn current_history(&self) -> &[StatusEntry] {
        let history = &self.transmission.status_history;
        let Some(reopened) = self
            .previous_submissions
            .iter()
            .map(|p| p.replaced_at)
            .max()
        else {
            return history;
        };
        let first = history.partition_point(|e| e.at <= reopened);
        &history[first..]
    }

    /// The legal payment clock (docs/payment-deadline.md).
    pub fn payment(&self, terms: PaymentTerms<'_>) -> PaymentClock {
        payment_clock(self.current_history(), self.transmission.amount_due, terms)
    }

    /// The day the current submission was paid (`payment::paid_on`), whatever the terms.
    pub fn paid_on(&self) -> Option<time::Date> {
        super::payment::paid_on(self.current_history())
    }
}

/// The situation that holds an invoice number, for the `invoice_number_taken` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceNumberHolder {
    pub market_ref: String,
    pub situation: u16,
    /// As that situation registered it.
    pub invoice_number: String,
    /// Held because Chorus Pro rejected an invoice under it.
    pub retired: bool,
}

impl InvoiceNumberHolder {
    pub fn message_fr(&self, wanted: &InvoiceNumber) -> String {
        let same_spelling = self.invoice_number == wanted.as_str();
        let spelled = if same_spelling {
            String::new()
        } else {
            format!(" (enregistré sous la forme « {} »)", self.invoice_number)
        };
        if self.retired {
            format!(
                "Le numéro de facture « {wanted} »{spelled} a été rejeté par Chorus Pro pour la situation n° {} du marché « {} » : un numéro rejeté ne peut plus être utilisé. Choisissez un autre numéro.",
                self.situation, self.market_ref
            )
        } else {
            format!(
                "Le numéro de facture « {wanted} »{spelled} est déjà utilisé par la situation n° {} du marché « {} » : chaque facture de l'entreprise doit avoir un numéro unique. Choisissez un autre numéro.",
                self.situation, self.market_ref
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SiretCheck;
    use time::macros::datetime;

    #[test]
    fn situation_numbers() {
        assert_eq!(SituationNumber::parse("1").unwrap().get(), 1);
        assert_eq!(SituationNumber::parse("999").unwrap().get(), 999);
        assert_eq!(SituationNumber::parse("003").unwrap().get(), 3);
        assert_eq!(
            SituationNumber::parse("0"),
            Err(SituationNumberError::OutOfRange)
        );
        assert_eq!(
            SituationNumber::parse("000"),
            Err(SituationNumberError::OutOfRange)
        );
        assert_eq!(
            SituationNumber::parse("1000"),
            Err(SituationNumberError::OutOfRange)
        );
        assert_eq!(
            SituationNumber::parse("99999999999999999999"),
            Err(SituationNumberError::OutOfRange)
        );
        for bad in ["abc", "", "-1", "+3", " 3", "3.0", "١"] {
            assert_eq!(
                SituationNumber::parse(bad),
                Err(SituationNumberError::NotANumber),
                "{bad:?}"
            );
        }
        assert_eq!(SituationNumberError::OutOfRange.code(), "out_of_range");
        assert!(
            SituationNumberError::NotANumber
                .message_fr("abc")
                .contains("1 à 999")
        );
    }

    #[test]
    fn periods() {
        assert_eq!(Period::parse("2026-11").unwrap().to_string(), "2026-11");
        assert_eq!(Period::parse("2026-01").unwrap().to_string(), "2026-01");
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "1999-12",
            "2026-11-01",
            "",
        ] {
            assert!(Period::parse(bad).is_none(), "{bad}");
        }
    }

    fn ids(number: &str) -> SituationIdentifiers {
        SituationIdentifiers {
            invoice_number: InvoiceNumber::parse(number).unwrap(),
            period: Period::parse("2026-11"),
            commitment_number: None,
        }
    }

    fn situation(number: &str, state: TransmissionState, chorus_status: Option<&str>) -> Situation {
        Situation {
            siret: Siret::parse("81234567600017", SiretCheck::Full).unwrap(),
            market_ref: MarketRef::parse("M-1").unwrap(),
            number: SituationNumber::new(3).unwrap(),
            identifiers: ids(number),
            transmission: Transmission {
                state,
                chorus_status: chorus_status.map(str::to_owned),
                flux_number: Some("CPP-1".into()),
                chorus_invoice_id: Some(42),
                status_history: Vec::new(),
                company_check_since: None,
                amount_due: None,
                works: None,
            },
            previous_submissions: Vec::new(),
            created_at: datetime!(2026-11-27 10:00 UTC),
            updated_at: datetime!(2026-11-27 10:00 UTC),
            revision: 4,
        }
    }

    #[test]
    fn before_transmission_identifiers_change_freely() {
        let s = situation("SIT-3", TransmissionState::NotTransmitted, None);
        assert_eq!(
            plan_registration(None, &ids("SIT-3")),
            Ok(Registration::Create)
        );
        assert_eq!(
            plan_registration(Some(&s), &ids("SIT-3")),
            Ok(Registration::Unchanged)
        );
        assert_eq!(
            plan_registration(Some(&s), &ids("SIT-4")),
            Ok(Registration::Update {
                number: NumberChange::Replace {
                    release: Release::Free
                },
                reopen: false
            })
        );
        assert_eq!(
            plan_registration(Some(&s), &ids("sit-3")),
            Ok(Registration::Update {
                number: NumberChange::Respell,
                reopen: false
            })
        );
        let mut other_period = ids("SIT-3");
        other_period.period = Period::parse("2026-12");
        assert_eq!(
            plan_registration(Some(&s), &other_period),
            Ok(Registration::Update {
                number: NumberChange::Keep,
                reopen: false
            })
        );
    }

    #[test]
    fn transmitted_identifiers_are_frozen() {
        for state in [
            TransmissionState::Pending,
            TransmissionState::WaitingCredentials,
            TransmissionState::Depositing,
            TransmissionState::Deposited,
            TransmissionState::Integrated,
            TransmissionState::FailedRetrying,
            TransmissionState::OutcomeUnknown,
        ] {
            let s = situation("SIT-3", state, Some("MISE_A_DISPOSITION"));
            assert_eq!(
                plan_registration(Some(&s), &ids("SIT-4")),
                Err(RegistrationRefusal::Frozen { state }),
                "{state:?}"
            );
            // The same registration again is no change, so it is answered as such.
            assert_eq!(
                plan_registration(Some(&s), &ids("SIT-3")),
                Ok(Registration::Unchanged)
            );
        }
    }

    #[test]
    fn after_a_rejection_a_new_number_reopens_the_situation() {
        let now = datetime!(2026-12-02 08:00 UTC);
        for s in [
            situation("SIT-3", TransmissionState::Integrated, Some("REJETEE")),
            situation("SIT-3", TransmissionState::Rejected, None),
            // The works equivalents (`works::calls_for_a_new_number`).
            situation("SIT-3", TransmissionState::Integrated, Some("REFUSEE_MOE")),
            situation("SIT-3", TransmissionState::Integrated, Some("REFUSEE_MOA")),
            situation(
                "SIT-3",
                TransmissionState::Integrated,
                Some("ERREUR_FOURNISSEUR_SUR_MOE"),
            ),
        ] {
            assert!(s.next_action().unwrap().contains("nouveau numéro"));
            assert!(matches!(
                plan_registration(Some(&s), &ids("SIT-3")),
                Err(RegistrationRefusal::RejectedNumberReused { .. })
            ));
            assert!(matches!(
                plan_registration(Some(&s), &ids("sit-3")),
                Err(RegistrationRefusal::RejectedNumberReused { .. })
            ));
            let plan = plan_registration(Some(&s), &ids("SIT-3B")).unwrap();
            assert_eq!(
                plan,
                Registration::Update {
                    number: NumberChange::Replace {
                        release: Release::Retire
                    },
                    reopen: true
                }
            );
            let next = Situation::registered(
                Some(&s),
                &s.siret,
                &s.market_ref,
                s.number,
                ids("SIT-3B"),
                plan,
                now,
            );
            assert_eq!(next.transmission.state, TransmissionState::NotTransmitted);
            assert_eq!(next.transmission.flux_number, None);
            assert_eq!(next.previous_submissions.len(), 1);
            assert_eq!(next.previous_submissions[0].invoice_number, "SIT-3");
            assert_eq!(next.previous_submissions[0].chorus_invoice_id, Some(42));
            assert_eq!(next.revision, 5);
            assert_eq!(next.next_action(), None);
            assert_eq!(next.created_at, s.created_at);
        }
    }

    #[test]
    fn a_works_statement_still_in_the_circuit_keeps_its_number() {
        for status in [
            "MISE_A_DISPOSITION_MOE",
            "A_VALIDER_MOE",
            "A_COMPLETER",
            "ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE",
            "ASSOCIEE",
        ] {
            let s = situation("SIT-3", TransmissionState::Integrated, Some(status));
            assert!(!s.transmission.needs_new_number(), "{status}");
            assert_eq!(
                plan_registration(Some(&s), &ids("SIT-4")),
                Err(RegistrationRefusal::Frozen {
                    state: TransmissionState::Integrated
                }),
                "{status}"
            );
        }
    }

    #[test]
    fn holder_messages_name_the_situation() {
        let holder = InvoiceNumberHolder {
            market_ref: "M-1".into(),
            situation: 3,
            invoice_number: "SIT-3".into(),
            retired: false,
        };
        let m = holder.message_fr(&InvoiceNumber::parse("sit-3").unwrap());
        assert!(
            m.contains("situation n° 3") && m.contains("« M-1 »") && m.contains("« SIT-3 »"),
            "{m}"
        );
        let retired = InvoiceNumberHolder {
            retired: true,
            ..holder
        };
        assert!(
            retired
                .message_fr(&InvoiceNumber::parse("SIT-3").unwrap())
                .contains("rejeté")
        );
    }

    #[test]
    fn view_shape() {
        let s = situation("SIT-3", TransmissionState::NotTransmitted, None);
        let rates = crate::domain::payment::LatePaymentRates::default();
        let terms = PaymentTerms {
            category: crate::domain::payment::BuyerCategory::State,
            rates: &rates,
            today: time::macros::date!(2026 - 12 - 01),
        };
        let v = serde_json::to_value(s.view(terms)).unwrap();
        assert_eq!(v["payment"]["buyer_category"], "state");
        assert_eq!(v["payment"]["due_on"], serde_json::Value::Null);
        assert_eq!(v["number"], 3);
        assert_eq!(v["period"], "2026-11");
        assert_eq!(v["transmission"]["state"], "not_transmitted");
        assert_eq!(v["next_action"], serde_json::Value::Null);
    }
}
