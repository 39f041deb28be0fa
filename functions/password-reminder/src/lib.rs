//! The daily password-renewal reminder run.
//!
//! Reads the accounts due in the reminder index (GSI1, every shard, only `next_reminder_on
//! <= today`), and for each: sends the reminder step due (once per company, password
//! version and step, through a claim item), retries a credentials-rejected alert left
//! unsent, and moves the account to its next reminder date. One company's failure (SES,
//! DynamoDB) is counted and logged and never stops the others; what it leaves undone stays
//! due and is retried by the next run.

mod remind;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use shared::aws::LazyClient;
use shared::clock::{Clock, SystemClock, iso_date, rfc3339};
use shared::config::{Config, ConfigError};
use shared::domain::CompanyAccount;
use shared::mail::{Mailer, SesMailer};
use shared::store::keys::REMINDER_SHARDS;
use shared::store::{Store, StoreError};
use time::{OffsetDateTime, UtcOffset};
use tokio::task::JoinSet;

/// Built once per cold start and shared by every invocation. The schedule and the
/// concurrency are `config.reminders`.
pub struct State {
    pub config: Config,
    pub store: Store,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
}

impl State {
    /// Refuses a configuration without `SENDER_EMAIL`: a reminder needs someone to send it.
    pub fn from_sdk(config: Config, sdk: &shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        let sender = config.sender_email.clone().ok_or(ConfigError {
            name: "SENDER_EMAIL",
            problem: "is required by the reminder function".into(),
        })?;
        // Each client at its first use (issue 18): a run with nobody due sends no e-mail.
        let store = Store::new(
            LazyClient::new(sdk, shared::aws::dynamodb::Client::new),
            config.table_name.clone(),
        );
        let mailer = SesMailer::new(
            LazyClient::new(sdk, shared::aws::sesv2::Client::new),
            sender,
        );
        Ok(Self {
            config,
            store,
            mailer: Arc::new(mailer),
            clock: Arc::new(SystemClock),
        })
    }
}

/// What happened to one e-mail of one company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Sent,
    AlreadySent,
    /// Another run holds the claim (or its lock has not expired yet).
    InProgress,
    /// Deleted, or a new password, since the index was read.
    Changed,
    /// No step due today (just after a save, or an index entry a moment old).
    NothingDue,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub siret: String,
    /// `reminder` or `credentials_rejected`.
    pub mail: &'static str,
    /// The reminder step (`J-30`, `J0`, `J+7`), when one was due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub outcome: Outcome,
    /// Where the account now sits in the index (absent: unchanged or out of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_reminder_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of a run: the function's response, and what `make run` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub now: String,
    pub today: String,
    /// Due accounts examined.
    pub companies: usize,
    /// Index items DynamoDB read (the queries' `ScannedCount`).
    pub items_read: usize,
    pub sent: usize,
    pub skipped: usize,
    pub failed: usize,
    /// False when the run stopped early (time budget, unreadable index): what it did not
    /// reach stays due for the next run.
    pub complete: bool,
    pub actions: Vec<Action>,
}

impl RunReport {
    fn record(&mut self, action: Action) {
        match action.outcome {
            Outcome::Sent => self.sent += 1,
            Outcome::Failed => self.failed += 1,
            _ => self.skipped += 1,
        }
        self.actions.push(action);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Some shards of the index could not be read: their accounts wait for the retry
    /// (Lambda's, then the scheduler's), which is safe since every e-mail is claimed.
    #[error("reminder index unreadable in {unreadable} of {REMINDER_SHARDS} shards")]
    IndexUnreadable {
        unreadable: usize,
        report: Box<RunReport>,
    },
}

impl RunError {
    pub fn into_report(self) -> RunReport {
        match self {
            RunError::IndexUnreadable { report, .. } => *report,
        }
    }
}

impl From<RunError> for Diagnostic {
    fn from(e: RunError) -> Self {
        Diagnostic {
            error_type: "ReminderIndexUnreadable".into(),
            error_message: e.to_string(),
        }
    }
}

/// Stop taking new companies this long before the Lambda deadline; the rest stay due.
const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// The Lambda handler: the event (from EventBridge Scheduler) only feeds the log.
pub async fn handle(state: Arc<State>, event: LambdaEvent<Value>) -> Result<RunReport, RunError> {
    let scheduled = event
        .payload
        .get("scheduled_time")
        .and_then(Value::as_str)
        .unwrap_or("");
    tracing::info!(scheduled_time = scheduled, request_id = %event.context.request_id, "password reminder run");
    let remaining = event
        .context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    run_once(
        state,
        Some(Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN)),
    )
    .await
}

/// One run at the state's clock. `deadline`: when to stop taking new companies.
pub async fn run_once(state: Arc<State>, deadline: Option<Instant>) -> Result<RunReport, RunError> {
    let now = state.clock.now().to_offset(UtcOffset::UTC);
    let mut run = Run::new(state, now, deadline);
    for shard in 0..REMINDER_SHARDS {
        if let Budget::Spent = run.read_shard(shard).await {
            break;
        }
    }
    run.finish().await
}

/// Whether the run may take more companies.
enum Budget {
    Left,
    Spent,
}

/// A run under way: its report so far, the companies being reminded.
struct Run {
    state: Arc<State>,
    now: OffsetDateTime,
    deadline: Option<Instant>,
    report: RunReport,
    tasks: JoinSet<Vec<Action>>,
    /// Shards of the index that could not be read.
    unreadable: usize,
}

impl Run {
    fn new(state: Arc<State>, now: OffsetDateTime, deadline: Option<Instant>) -> Self {
        let report = RunReport {
            now: rfc3339(now),
            today: iso_date(now.date()),
            companies: 0,
            items_read: 0,
            sent: 0,
            skipped: 0,
            failed: 0,
            complete: true,
            actions: Vec::new(),
        };
        Self {
            state,
            now,
            deadline,
            report,
            tasks: JoinSet::new(),
            unreadable: 0,
        }
    }

    /// Every page of one shard of the index; an unreadable shard is counted and left for
    /// the next run.
    async fn read_shard(&mut self, shard: u8) -> Budget {
        let mut page = None;
        loop {
            let read = self
                .state
                .store
                .due_accounts(shard, self.now.date(), page.take());
            let due = match read.await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(shard, error = %e, "reminder index unreadable");
                    self.unreadable += 1;
                    return Budget::Left;
                }
            };
            self.report.items_read += due.items_read;
            if let Budget::Spent = self.dispatch(due.accounts).await {
                return Budget::Spent;
            }
            match due.next_page {
                Some(next) => page = Some(next),
                None => return Budget::Left,
            }
        }
    }

    /// Hands each account of a page to a task, a few at once, until the time budget is
    /// spent; an unreadable account is reported failed.
    async fn dispatch(&mut self, accounts: Vec<Result<CompanyAccount, StoreError>>) -> Budget {
        for entry in accounts {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                tracing::warn!("time budget spent: the remaining accounts wait for the next run");
                self.report.complete = false;
                return Budget::Spent;
            }
            let account = match entry {
                Ok(account) => account,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable account in the reminder index");
                    self.report.record(unreadable_account(&e));
                    continue;
                }
            };
            self.report.companies += 1;
            while self.tasks.len() >= self.state.config.reminders.concurrency {
                collect(&mut self.report, self.tasks.join_next().await);
            }
            let (state, now) = (Arc::clone(&self.state), self.now);
            self.tasks
                .spawn(async move { remind::remind(&state, account, now).await });
        }
        Budget::Left
    }

    /// Waits for the tasks left, then the report (an error when shards were unreadable).
    async fn finish(mut self) -> Result<RunReport, RunError> {
        while let Some(done) = self.tasks.join_next().await {
            collect(&mut self.report, Some(done));
        }
        let mut report = self.report;
        report
            .actions
            .sort_by(|a, b| (&a.siret, a.mail).cmp(&(&b.siret, b.mail)));
        tracing::info!(
            today = %report.today,
            companies = report.companies,
            items_read = report.items_read,
            sent = report.sent,
            skipped = report.skipped,
            failed = report.failed,
            complete = report.complete,
            "password reminder run finished"
        );
        if self.unreadable > 0 {
            report.complete = false;
            return Err(RunError::IndexUnreadable {
                unreadable: self.unreadable,
                report: Box::new(report),
            });
        }
        Ok(report)
    }
}

fn collect(report: &mut RunReport, done: Option<Result<Vec<Action>, tokio::task::JoinError>>) {
    match done {
        Some(Ok(actions)) => actions.into_iter().for_each(|a| report.record(a)),
        Some(Err(e)) => {
            // A company's task that did not finish: counted, the others go on. A panic only
            // reaches here in a build that unwinds (the tests'): the release build aborts on
            // panic, as cargo-lambda deploys it (Cargo.toml), so there a panic ends the run,
            // the invocation fails (the errors alarm, the dead-letter queue) and the next run
            // starts again from the reminders still due.
            tracing::error!(error = %e, "a company's reminder task stopped");
            report.failed += 1;
        }
        None => {}
    }
}

fn unreadable_account(error: &StoreError) -> Action {
    let key = match error {
        StoreError::Corrupt { key, .. } => key.clone(),
        _ => String::new(),
    };
    Action {
        siret: key,
        mail: "reminder",
        step: None,
        outcome: Outcome::Failed,
        next_reminder_on: None,
        error: Some(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reminder_needs_its_sender() {
        let sdk = shared::aws::SdkConfig::builder().build();
        let config = |sender: Option<&str>| {
            Config::from_lookup(|name| match name {
                "TABLE_NAME" => Some("t".into()),
                "SENDER_EMAIL" => sender.map(str::to_owned),
                _ => None,
            })
            .expect("configuration")
        };
        let refused = State::from_sdk(config(None), &sdk).err().expect("refused");
        assert_eq!(refused.name, "SENDER_EMAIL");
        assert!(State::from_sdk(config(Some("rappels@choruspro-gateway.local")), &sdk).is_ok());
    }

    fn action(outcome: Outcome) -> Action {
        Action {
            siret: "21750001600019".into(),
            mail: "reminder",
            step: Some("J-30".into()),
            outcome,
            next_reminder_on: None,
            error: None,
        }
    }

    #[test]
    fn counts_follow_outcomes_and_the_json_is_what_make_run_prints() {
        let mut report = RunReport {
            now: "2027-10-28T06:00:00Z".into(),
            today: "2027-10-28".into(),
            companies: 6,
            items_read: 6,
            sent: 0,
            skipped: 0,
            failed: 0,
            complete: true,
            actions: Vec::new(),
        };
        for outcome in [
            Outcome::Sent,
            Outcome::AlreadySent,
            Outcome::InProgress,
            Outcome::Changed,
            Outcome::NothingDue,
            Outcome::Failed,
        ] {
            report.record(action(outcome));
        }
        assert_eq!((report.sent, report.skipped, report.failed), (1, 4, 1));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["actions"][0]["outcome"], "sent");
        assert_eq!(json["actions"][1]["outcome"], "already_sent");
        assert_eq!(json["actions"][4]["outcome"], "nothing_due");
        assert_eq!(json["actions"][0]["step"], "J-30");
        assert!(json["actions"][0].get("error").is_none());
    }

    #[test]
    fn an_unreadable_index_is_a_failed_invocation_with_its_report() {
        let report = RunReport {
            now: String::new(),
            today: String::new(),
            companies: 0,
            items_read: 0,
            sent: 0,
            skipped: 0,
            failed: 0,
            complete: false,
            actions: Vec::new(),
        };
        let err = RunError::IndexUnreadable {
            unreadable: 2,
            report: Box::new(report.clone()),
        };
        assert_eq!(
            err.to_string(),
            "reminder index unreadable in 2 of 4 shards"
        );
        let diagnostic = Diagnostic::from(RunError::IndexUnreadable {
            unreadable: 2,
            report: Box::new(report.clone()),
        });
        assert_eq!(diagnostic.error_type, "ReminderIndexUnreadable");
        assert_eq!(err.into_report(), report);
    }
}
