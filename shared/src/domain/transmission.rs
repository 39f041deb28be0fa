//! The transmission of a situation to Chorus Pro: its states, the transitions allowed
//! between them (every change is a conditional write on the state read), and what the
//! company must do for each Chorus Pro status.
//!
//! ```text
//! pending ──► depositing ──► deposited ──► integrated
//!    ▲  │          │  │  │        └──────► rejected      (flux IN_REJETE)
//!    │  ▼          │  │  └──► rejected                  (deposit refused, codeRetour ≠ 0)
//! waiting_credentials ◄──┘  └──► failed_retrying ──► depositing
//!                        outcome_unknown ──► integrated (found in Chorus Pro)
//!                                        └─► pending    (the company saw it absent: resolve)
//! deposited ──► outcome_unknown (flux refused: number already used by an earlier deposit)
//! ```

use time::Duration;

/// Where the situation's transmission to Chorus Pro stands (contract, "Transmission").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmissionState {
    /// Never sent: the identifiers may change freely.
    NotTransmitted,
    Pending,
    WaitingCredentials,
    Depositing,
    Deposited,
    Integrated,
    Rejected,
    FailedRetrying,
    OutcomeUnknown,
}

impl TransmissionState {
    pub const ALL: [TransmissionState; 9] = [
        TransmissionState::NotTransmitted,
        TransmissionState::Pending,
        TransmissionState::WaitingCredentials,
        TransmissionState::Depositing,
        TransmissionState::Deposited,
        TransmissionState::Integrated,
        TransmissionState::Rejected,
        TransmissionState::FailedRetrying,
        TransmissionState::OutcomeUnknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransmissionState::NotTransmitted => "not_transmitted",
            TransmissionState::Pending => "pending",
            TransmissionState::WaitingCredentials => "waiting_credentials",
            TransmissionState::Depositing => "depositing",
            TransmissionState::Deposited => "deposited",
            TransmissionState::Integrated => "integrated",
            TransmissionState::Rejected => "rejected",
            TransmissionState::FailedRetrying => "failed_retrying",
            TransmissionState::OutcomeUnknown => "outcome_unknown",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl TransmissionState {
    /// Whether `self → next` is a move the gateway may make.
    pub fn can_become(self, next: TransmissionState) -> bool {
        use TransmissionState::*;
        matches!(
            (self, next),
            (NotTransmitted, Pending)
                // The caller's request claims and leases in one write (`first_attempt`).
                | (NotTransmitted, Depositing)
                | (NotTransmitted, WaitingCredentials)
                | (Pending, Depositing)
                | (Pending, WaitingCredentials)
                | (WaitingCredentials, Pending)
                | (WaitingCredentials, Depositing)
                | (Depositing, Deposited)
                // A works submission answers with its document at once (`works::Route`).
                | (Depositing, Integrated)
                | (Depositing, Rejected)
                | (Depositing, FailedRetrying)
                | (Depositing, OutcomeUnknown)
                | (Depositing, WaitingCredentials)
                | (FailedRetrying, Depositing)
                | (FailedRetrying, WaitingCredentials)
                | (OutcomeUnknown, Deposited)
                | (OutcomeUnknown, Integrated)
                // Only when the company says the portal does not show it (`resolve`).
                | (OutcomeUnknown, Pending)
                // The number is another, earlier invoice's: a real collision.
                | (OutcomeUnknown, Rejected)
                | (Deposited, Integrated)
                | (Deposited, Rejected)
                // The flux was refused for a number already used: an earlier deposit landed.
                | (Deposited, OutcomeUnknown)
        )
    }
}

/// Delay before attempt `attempt` (1-based) of a deposit that did not reach Chorus Pro:
/// 1, 2, 4, … minutes, at most an hour.
pub fn retry_delay(attempt: u32) -> Duration {
    let minutes = 1i64 << attempt.saturating_sub(1).min(6);
    Duration::minutes(minutes.min(60))
}

/// Delay before the next follow-up of a flux or invoice: soon after the deposit, then
/// less often, at most every 6 hours (OCA polls once a day; buyers take days to pay).
pub fn follow_up_delay(checks_done: u32) -> Duration {
    match checks_done {
        0..=2 => Duration::minutes(2),
        3..=5 => Duration::minutes(15),
        6..=10 => Duration::hours(1),
        _ => Duration::hours(6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransmissionState::*;

    #[test]
    fn a_deposit_is_never_started_again_blindly() {
        for from in [Deposited, Integrated, Rejected] {
            assert!(!from.can_become(Depositing), "{from:?}");
            assert!(!from.can_become(Pending), "{from:?}");
        }
        assert!(!Depositing.can_become(Depositing));
        assert!(!Depositing.can_become(Pending));
        assert!(OutcomeUnknown.can_become(Deposited));
        assert!(Pending.can_become(Depositing));
        assert!(FailedRetrying.can_become(Depositing));
        assert!(NotTransmitted.can_become(Depositing));
        assert!(!NotTransmitted.can_become(Deposited));
        assert!(!NotTransmitted.can_become(OutcomeUnknown));
    }

    #[test]
    fn backoffs_grow_and_are_capped() {
        assert_eq!(retry_delay(1), Duration::minutes(1));
        assert_eq!(retry_delay(3), Duration::minutes(4));
        assert_eq!(retry_delay(30), Duration::minutes(60));
        assert!(follow_up_delay(0) < follow_up_delay(20));
        assert_eq!(follow_up_delay(100), Duration::hours(6));
    }
}
