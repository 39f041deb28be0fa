//! Faults injected on a path prefix, and the request journal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One fault: what to do to requests whose path starts with `path`.
///
/// JSON form (the admin API): `{"path": "/cpro/factures/v1/deposer/flux", "times": 1,
/// "kind": "answer_lost"}`; without `times` the fault is permanent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Path prefix, e.g. `/cpro/` for every Chorus Pro call, `/api/oauth/token` for PISTE.
    pub path: String,
    /// How many matching requests it hits; `None` = every one until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    #[serde(flatten)]
    pub action: FaultAction,
}

impl Fault {
    pub fn once(path: impl Into<String>, action: FaultAction) -> Fault {
        Fault::times(path, 1, action)
    }

    pub fn times(path: impl Into<String>, times: u32, action: FaultAction) -> Fault {
        Fault {
            path: path.into(),
            times: Some(times),
            action,
        }
    }

    pub fn always(path: impl Into<String>, action: FaultAction) -> Fault {
        Fault {
            path: path.into(),
            times: None,
            action,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Wait `ms`, then answer normally.
    Delay { ms: u64 },
    /// Wait `ms` (longer than the client's timeout), then close the connection without
    /// processing the request.
    Timeout {
        #[serde(default = "long_hang_ms")]
        ms: u64,
    },
    /// Answer this HTTP status at once (e.g. 500, 502, 503) without processing.
    Status { status: u16 },
    /// Answer this status and JSON body without processing (any envelope a test needs).
    Respond {
        status: u16,
        body: serde_json::Value,
    },
    /// Answer 429 with `Retry-After: retry_after` (seconds) without processing.
    TooManyRequests { retry_after: u64 },
    /// Process the request fully (a deposit is recorded), then lose the answer: `drop`
    /// closes the connection, `hang` waits `ms` first.
    AnswerLost {
        #[serde(default)]
        mode: LostMode,
        #[serde(default = "long_hang_ms")]
        ms: u64,
    },
    /// Process the request fully (a deposit or an action is recorded), then answer `200`
    /// with an HTML page instead of its JSON, as a proxy or a maintenance page might: an
    /// answer the client cannot read although the call landed (issue 19).
    AnswerUnreadable,
    /// Answer the LDAP 401 of a refused technical account, whatever the password.
    RejectPassword,
    /// Answer PISTE's 401 for an invalid token, whatever the token.
    PisteUnauthorized,
    /// Answer PISTE's 401 whose `WWW-Authenticate` says the technical account's login or
    /// password is wrong (OCA's quote; docs/chorus-pro.md, "Who answers 401/403").
    PisteLoginRefused,
    /// Answer PISTE's 403 with `{}` (application not allowed / route unknown).
    PisteForbidden,
    /// On the token endpoint: answer `400 {"error":"invalid_client"}`.
    InvalidClient,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostMode {
    #[default]
    Drop,
    Hang,
}

fn long_hang_ms() -> u64 {
    120_000
}

/// One request the emulator received (admin requests excluded).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    pub seq: u64,
    /// RFC 3339 UTC.
    pub at: String,
    /// When it was received, to the instant (in-process tests time the calls with it).
    #[serde(skip)]
    pub received: std::time::Instant,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Every header, as received (the journal is for tests: it holds `cpro-account`).
    pub headers: BTreeMap<String, String>,
    pub body_bytes: usize,
    /// The body when at most 64 KiB: its JSON, or its text (a token request's form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// The status answered; `None` while processing or when the answer was lost.
    pub status: Option<u16>,
    /// The fault applied, if any (`kind` of the fault).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

impl JournalEntry {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

impl FaultAction {
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::Delay { .. } => "delay",
            FaultAction::Timeout { .. } => "timeout",
            FaultAction::Status { .. } => "status",
            FaultAction::Respond { .. } => "respond",
            FaultAction::TooManyRequests { .. } => "too_many_requests",
            FaultAction::AnswerLost { .. } => "answer_lost",
            FaultAction::AnswerUnreadable => "answer_unreadable",
            FaultAction::RejectPassword => "reject_password",
            FaultAction::PisteUnauthorized => "piste_unauthorized",
            FaultAction::PisteLoginRefused => "piste_login_refused",
            FaultAction::PisteForbidden => "piste_forbidden",
            FaultAction::InvalidClient => "invalid_client",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_json_form() {
        let fault: Fault = serde_json::from_str(
            r#"{"path":"/cpro/","kind":"too_many_requests","retry_after":2,"times":1}"#,
        )
        .unwrap();
        assert_eq!(
            fault,
            Fault::once("/cpro/", FaultAction::TooManyRequests { retry_after: 2 })
        );
        let fault: Fault =
            serde_json::from_str(r#"{"path":"/cpro/","kind":"answer_lost"}"#).unwrap();
        assert_eq!(
            fault.action,
            FaultAction::AnswerLost {
                mode: LostMode::Drop,
                ms: 120_000
            }
        );
        assert_eq!(fault.times, None);
        let fault: Fault =
            serde_json::from_str(r#"{"path":"/cpro/","kind":"answer_unreadable","times":1}"#)
                .unwrap();
        assert_eq!(fault.action, FaultAction::AnswerUnreadable);
        assert_eq!(fault.action.kind(), "answer_unreadable");
    }
}
