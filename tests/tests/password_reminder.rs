//! Password-renewal reminders and the credentials-rejected alert, against moto.
//!
//! The reminder run is called in-process with its clock set (a `FixedClock`), so a year of
//! daily runs takes seconds; every DynamoDB and SES call is real (moto), and the e-mails
//! are read back through moto's API. moto is shared by every test running at once: each
//! test has its own table and its own recipient addresses.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use gateway_tests::testkit::{
    Stack, create_table, lambda_request, random_siret, response_json, stack_config, test_password,
};
use password_reminder::{Action, Outcome, RunReport, State};
use serde_json::{Value, json};
use shared::clock::{FixedClock, iso_date, rfc3339};
use shared::domain::{
    CompanyAccount, CredentialsStatus, Email, Environment, Siret, SiretCheck, TechnicalLogin,
};
use shared::mail::render::RejectionSource;
use shared::mail::{MailError, MailFuture, MailMessage, Mailer, SesMailer};
use shared::reminder::{
    CLAIM_LOCK, Delivery, ReminderStep, next_reminder_on_save, notify_credentials_rejected,
    reminder_claim,
};
use shared::store::keys;
use shared::store::reminder::ClaimOutcome;
use shared::store::{AuditEntry, Store};
use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn endpoint() -> String {
    env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
}

fn sender() -> String {
    env_or("SENDER_EMAIL", "rappels@choruspro-gateway.local")
}

async fn sdk() -> shared::aws::SdkConfig {
    shared::aws::config_loader()
        .endpoint_url(endpoint())
        .region(aws_config::Region::new(env_or("AWS_REGION", "eu-west-3")))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// A recipient no other test uses.
fn referent() -> Email {
    Email::parse(&format!("referent-{}@entreprise-test.fr", short_id())).unwrap()
}

fn siret(raw: &str) -> Siret {
    Siret::parse(raw, SiretCheck::Full).unwrap()
}

/// The SES mailer of the stack, with recipients a test can make refused (as SES refuses a
/// suppressed address, or when it is down for some messages).
struct FlakyMailer {
    ses: SesMailer,
    refuse: Mutex<HashSet<String>>,
}

impl FlakyMailer {
    fn refuse(&self, to: &Email, refused: bool) {
        let mut set = self.refuse.lock().unwrap();
        if refused {
            set.insert(to.as_str().to_owned());
        } else {
            set.remove(to.as_str());
        }
    }
}

impl Mailer for FlakyMailer {
    fn send<'a>(&'a self, message: &'a MailMessage) -> MailFuture<'a> {
        if self.refuse.lock().unwrap().contains(message.to.as_str()) {
            return Box::pin(async {
                Err(MailError::Refused(
                    "MessageRejected: refused by the test".into(),
                ))
            });
        }
        self.ses.send(message)
    }
}

struct World {
    ddb: aws_sdk_dynamodb::Client,
    sdk: shared::aws::SdkConfig,
    table: String,
    store: Store,
    clock: Arc<FixedClock>,
    mailer: Arc<FlakyMailer>,
    state: Arc<State>,
}

impl World {
    /// A table of this test's own, and the reminder function's state on it.
    async fn new(lifetime_days: u32) -> World {
        // Fails with what to do when the stack is not up.
        let _ = Stack::connect().await;
        let sdk = sdk().await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let table = format!("reminder-test-{}", short_id());
        create_table(&ddb, &table).await;
        let lifetime = lifetime_days.to_string();
        let config = stack_config(&[
            ("TABLE_NAME", &table),
            ("PASSWORD_LIFETIME_DAYS", &lifetime),
        ]);
        let store = Store::new(ddb.clone(), table.clone());
        let mailer = Arc::new(FlakyMailer {
            ses: SesMailer::new(
                shared::aws::sesv2::Client::new(&sdk),
                Email::parse(&sender()).unwrap(),
            ),
            refuse: Mutex::new(HashSet::new()),
        });
        let clock = Arc::new(FixedClock::new(datetime!(2026-11-27 06:00 UTC)));
        let state = Arc::new(State {
            config,
            store: store.clone(),
            mailer: mailer.clone(),
            clock: clock.clone(),
        });
        World {
            ddb,
            sdk,
            table,
            store,
            clock,
            mailer,
            state,
        }
    }

    async fn run_at(&self, at: OffsetDateTime) -> RunReport {
        self.clock.set(at);
        password_reminder::run_once(Arc::clone(&self.state), None)
            .await
            .unwrap_or_else(|e| panic!("run at {at} failed: {e}"))
    }

    /// A company whose password was saved at `set_at`, as the settings function saves it.
    async fn seed(
        &self,
        to: &Email,
        environment: Environment,
        set_at: OffsetDateTime,
    ) -> CompanyAccount {
        let siret = Siret::parse(&random_siret(), SiretCheck::Full).unwrap();
        let account = CompanyAccount {
            technical_login: TechnicalLogin::parse(&format!("TECH_{siret}@cpp2017.fr")).unwrap(),
            siret,
            referent_email: to.clone(),
            environment,
            password_set_at: set_at,
            password_version: uuid::Uuid::new_v4().to_string(),
            credentials_status: CredentialsStatus::Valid,
            verified_at: Some(set_at),
            created_at: set_at,
            updated_at: set_at,
            revision: 1,
            next_reminder_on: next_reminder_on_save(None, true, set_at),
            chorus_structure_id: None,
            notify_overdue: true,
        };
        self.store
            .save_account(&account, None, &audit(set_at, "account_created"))
            .await
            .unwrap();
        account
    }

    async fn account(&self, siret: &Siret) -> Option<CompanyAccount> {
        self.store.get_account(siret).await.unwrap()
    }

    async fn drop_table(&self) {
        let _ = self.ddb.delete_table().table_name(&self.table).send().await;
    }
}

fn audit(at: OffsetDateTime, action: &str) -> AuditEntry {
    AuditEntry {
        at,
        actor: "password-reminder-test".into(),
        action: action.into(),
        fields: Vec::new(),
    }
}

/// `(subject, html body)` of every e-mail moto accepted for `to`, in sending order.
async fn mails_to(to: &Email) -> Vec<(String, String)> {
    gateway_tests::testkit::moto_mails()
        .await
        .into_iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|list| list.iter().any(|a| a.as_str() == Some(to.as_str())))
        })
        .map(|m| {
            assert_eq!(m["source"], sender().as_str());
            (
                m["subject"].as_str().unwrap_or("").to_owned(),
                m["body"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn actions_of<'a>(report: &'a RunReport, siret: &Siret) -> Vec<&'a Action> {
    report
        .actions
        .iter()
        .filter(|a| a.siret == siret.as_str())
        .collect()
}

fn reminder_of<'a>(report: &'a RunReport, siret: &Siret) -> &'a Action {
    let found: Vec<_> = actions_of(report, siret)
        .into_iter()
        .filter(|a| a.mail == "reminder")
        .collect();
    assert_eq!(found.len(), 1, "{report:#?}");
    found[0]
}

fn at_six(day: Date) -> OffsetDateTime {
    day.with_hms(6, 0, 0).unwrap().assume_utc()
}

/// The reminders a cycle must produce up to `end`, computed apart from the schedule code:
/// 30, 14, 7 and 1 days before expiry, on the day, then every 7 days.
fn expected_steps(expiry: Date, end: Date) -> Vec<(Date, String)> {
    let mut steps: Vec<(Date, String)> = [30, 14, 7, 1]
        .iter()
        .map(|d| (expiry - Duration::days(*d), format!("J-{d}")))
        .collect();
    steps.push((expiry, "J0".into()));
    let mut after = 7;
    while expiry + Duration::days(after) <= end {
        steps.push((expiry + Duration::days(after), format!("J+{after}")));
        after += 7;
    }
    steps.retain(|(day, _)| *day <= end);
    steps
}

/// The subject wording of a step, given how many days remain.
fn subject_words(expiry: Date, day: Date) -> String {
    match (expiry - day).whole_days() {
        n if n >= 2 => format!("expire dans {n} jours"),
        1 => "expire demain".into(),
        0 => "expire aujourd'hui".into(),
        _ => "a expiré, factures en attente".into(),
    }
}

#[tokio::test]
async fn a_year_of_daily_runs_sends_exactly_the_expected_reminders() {
    let world = World::new(365).await;
    let start = date!(2026 - 12 - 01);
    let end = date!(2028 - 03 - 31);
    // Three companies saved on different days: one expiring on a 29th of February, one
    // sandbox account.
    let plans = [
        (
            referent(),
            Environment::Production,
            datetime!(2026-12-01 10:00 UTC),
            date!(2027 - 12 - 01),
        ),
        (
            referent(),
            Environment::Production,
            datetime!(2027-03-01 08:00 UTC),
            date!(2028 - 02 - 29),
        ),
        (
            referent(),
            Environment::Sandbox,
            datetime!(2027-01-15 17:30 UTC),
            date!(2028 - 01 - 15),
        ),
    ];
    let mut accounts: Vec<Option<CompanyAccount>> = vec![None, None, None];
    let mut sent: Vec<(Date, String, String)> = Vec::new();
    let mut items_read = 0;
    let mut day = start;
    while day <= end {
        let report = world.run_at(at_six(day)).await;
        assert_eq!(report.failed, 0, "{report:#?}");
        assert!(report.complete);
        items_read += report.items_read;
        for a in report.actions.iter().filter(|a| a.outcome == Outcome::Sent) {
            assert_eq!(a.mail, "reminder");
            sent.push((day, a.siret.clone(), a.step.clone().unwrap_or_default()));
        }
        if report.sent > 0 {
            // A second run the same day reads nothing and sends nothing.
            let again = world
                .run_at(day.with_hms(18, 0, 0).unwrap().assume_utc())
                .await;
            assert_eq!(
                (again.items_read, again.sent, again.skipped, again.failed),
                (0, 0, 0, 0),
                "{again:#?}"
            );
        }
        // Settings saved during the day, after the 06:00 run.
        for (i, (to, environment, set_at, _)) in plans.iter().enumerate() {
            if set_at.date() == day {
                accounts[i] = Some(world.seed(to, *environment, *set_at).await);
            }
        }
        day = day.next_day().unwrap();
    }

    let mut expected: Vec<(Date, String, String)> = Vec::new();
    for (account, (_, _, set_at, expiry)) in accounts.iter().zip(&plans) {
        let account = account.as_ref().unwrap();
        assert_eq!(
            account
                .password_expires_at(world.state.config.password_lifetime)
                .date(),
            *expiry
        );
        assert_eq!(
            *set_at + Duration::days(365),
            account.password_expires_at(world.state.config.password_lifetime)
        );
        for (day, step) in expected_steps(*expiry, end) {
            expected.push((day, account.siret.to_string(), step));
        }
    }
    sent.sort();
    expected.sort();
    assert_eq!(sent, expected);
    // Spelled out for the leap-day company, to catch a wrong computation in both places.
    let leap = accounts[1].as_ref().unwrap().siret.to_string();
    let leap_days: Vec<_> = sent
        .iter()
        .filter(|(_, s, _)| *s == leap)
        .map(|(d, _, step)| (*d, step.as_str()))
        .collect();
    assert_eq!(
        leap_days,
        vec![
            (date!(2028 - 01 - 30), "J-30"),
            (date!(2028 - 02 - 15), "J-14"),
            (date!(2028 - 02 - 22), "J-7"),
            (date!(2028 - 02 - 28), "J-1"),
            (date!(2028 - 02 - 29), "J0"),
            (date!(2028 - 03 - 07), "J+7"),
            (date!(2028 - 03 - 14), "J+14"),
            (date!(2028 - 03 - 21), "J+21"),
            (date!(2028 - 03 - 28), "J+28"),
        ]
    );
    // Only what was due was read: each company once after its save, then once per reminder.
    assert_eq!(items_read, 3 + sent.len());

    // The e-mails themselves, per recipient, in order.
    for (account, (to, environment, _, expiry)) in accounts.iter().zip(&plans) {
        let account = account.as_ref().unwrap();
        let mails = mails_to(to).await;
        let days: Vec<Date> = expected_steps(*expiry, end)
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(mails.len(), days.len(), "{to}");
        for ((subject, body), day) in mails.iter().zip(&days) {
            assert!(
                subject.contains(&subject_words(*expiry, *day)),
                "{day}: {subject}"
            );
            assert!(subject.contains(account.siret.as_str()), "{subject}");
            assert_eq!(
                subject.starts_with("[QUALIFICATION"),
                *environment == Environment::Sandbox,
                "{subject}"
            );
            assert!(body.contains(account.siret.as_str()));
            assert!(body.contains(account.technical_login.as_str()));
            assert!(
                body.contains(&shared::mail::render::date_fr(*expiry)),
                "{body}"
            );
            assert!(body.contains("gestionnaire principal"));
            assert_eq!(
                body.contains("COMPTE DE QUALIFICATION"),
                *environment == Environment::Sandbox
            );
        }
    }
    world.drop_table().await;
}

/// Three companies saved on the same day, each with its own referent.
struct Three {
    a: CompanyAccount,
    b: CompanyAccount,
    c: CompanyAccount,
    to_a: Email,
    to_b: Email,
    to_c: Email,
}

/// J-30 and J-14 of a password saved on 2026-11-02 (expiry 2027-11-02).
const J30: Date = date!(2027 - 10 - 03);
const J14: Date = date!(2027 - 10 - 19);

#[tokio::test]
async fn failed_sends_and_a_crash_after_the_claim_lose_nothing_and_send_nothing_twice() {
    let world = World::new(365).await;
    let set_at = datetime!(2026-11-02 09:00 UTC);
    let (to_a, to_b, to_c) = (referent(), referent(), referent());
    let t = Three {
        a: world.seed(&to_a, Environment::Production, set_at).await,
        b: world.seed(&to_b, Environment::Production, set_at).await,
        c: world.seed(&to_c, Environment::Production, set_at).await,
        to_a,
        to_b,
        to_c,
    };
    the_day_after_the_saves_nothing_is_due_and_each_moves_to_its_j30(&world, &t).await;
    // A's address is refused by SES; B's J-30 was claimed by a run that crashed before
    // sending (its lock runs until 06:14).
    world.mailer.refuse(&t.to_a, true);
    claim_as_a_run_that_crashed(&world, &t.b).await;
    the_j30_run_sends_c_only_and_leaves_a_and_b_due(&world, &t).await;
    a_retry_while_a_is_refused_and_b_locked_sends_nothing(&world).await;
    // SES accepts A again, B's lock has expired: both go out, once.
    world.mailer.refuse(&t.to_a, false);
    a_and_b_go_out_once_and_the_evening_run_finds_nothing(&world, &t).await;
    a_stale_index_entry_does_not_send_c_twice(&world, &t.c).await;
    the_claims_tell_the_story(&world, &t).await;
    the_next_step_goes_out_once_for_all_three(&world, &t).await;
    world.drop_table().await;
}

async fn the_day_after_the_saves_nothing_is_due_and_each_moves_to_its_j30(
    world: &World,
    t: &Three,
) {
    let r = world.run_at(datetime!(2026-11-03 06:00 UTC)).await;
    assert_eq!(
        (r.companies, r.items_read, r.sent, r.skipped, r.failed),
        (3, 3, 0, 3, 0),
        "{r:#?}"
    );
    for account in [&t.a, &t.b, &t.c] {
        let action = reminder_of(&r, &account.siret);
        assert_eq!(action.outcome, Outcome::NothingDue);
        assert_eq!(action.next_reminder_on.as_deref(), Some("2027-10-03"));
        assert_eq!(
            world
                .account(&account.siret)
                .await
                .unwrap()
                .next_reminder_on,
            Some(J30)
        );
    }
}

/// The J-30 claim a run took at 05:59 before it crashed, its e-mail unsent.
async fn claim_as_a_run_that_crashed(world: &World, b: &CompanyAccount) {
    let crashed = reminder_claim(
        b,
        ReminderStep::Before(30),
        Some(J14),
        datetime!(2027-10-03 05:59 UTC),
    );
    assert!(matches!(
        world
            .store
            .claim_mail(&crashed, datetime!(2027-10-03 05:59 UTC), CLAIM_LOCK)
            .await
            .unwrap(),
        ClaimOutcome::Claimed { .. }
    ));
}

async fn the_j30_run_sends_c_only_and_leaves_a_and_b_due(world: &World, t: &Three) {
    let Three { a, b, c, .. } = t;
    let r = world.run_at(datetime!(2027-10-03 06:00 UTC)).await;
    assert_eq!(
        (r.companies, r.sent, r.skipped, r.failed),
        (3, 1, 1, 1),
        "{r:#?}"
    );
    assert_eq!(reminder_of(&r, &a.siret).outcome, Outcome::Failed);
    assert!(
        reminder_of(&r, &a.siret)
            .error
            .as_deref()
            .unwrap_or("")
            .contains("MessageRejected")
    );
    assert_eq!(reminder_of(&r, &b.siret).outcome, Outcome::InProgress);
    assert_eq!(reminder_of(&r, &c.siret).outcome, Outcome::Sent);
    assert_eq!(reminder_of(&r, &c.siret).step.as_deref(), Some("J-30"));
    // Undone work stays due; done work moves on.
    assert_eq!(
        world.account(&a.siret).await.unwrap().next_reminder_on,
        Some(J30)
    );
    assert_eq!(
        world.account(&b.siret).await.unwrap().next_reminder_on,
        Some(J30)
    );
    assert_eq!(
        world.account(&c.siret).await.unwrap().next_reminder_on,
        Some(J14)
    );
    assert_eq!(
        (
            mails_to(&t.to_a).await.len(),
            mails_to(&t.to_b).await.len(),
            mails_to(&t.to_c).await.len()
        ),
        (0, 0, 1)
    );
}

/// A retry a few minutes later (the scheduler's): A still refused, B still locked.
async fn a_retry_while_a_is_refused_and_b_locked_sends_nothing(world: &World) {
    let r = world.run_at(datetime!(2027-10-03 06:05 UTC)).await;
    assert_eq!(
        (r.companies, r.items_read, r.sent, r.skipped, r.failed),
        (2, 2, 0, 1, 1),
        "{r:#?}"
    );
}

async fn a_and_b_go_out_once_and_the_evening_run_finds_nothing(world: &World, t: &Three) {
    let r = world.run_at(datetime!(2027-10-03 06:20 UTC)).await;
    assert_eq!(
        (r.companies, r.sent, r.skipped, r.failed),
        (2, 2, 0, 0),
        "{r:#?}"
    );
    assert_eq!(reminder_of(&r, &t.a.siret).outcome, Outcome::Sent);
    assert_eq!(reminder_of(&r, &t.b.siret).outcome, Outcome::Sent);

    // Evening run: nothing due any more.
    let r = world.run_at(datetime!(2027-10-03 18:00 UTC)).await;
    assert_eq!(
        (r.items_read, r.sent, r.skipped, r.failed),
        (0, 0, 0, 0),
        "{r:#?}"
    );
}

/// A stale index entry (an eventually consistent read, a racing settings save) puts C
/// back on today: the claim stops a second e-mail, and C moves on again.
async fn a_stale_index_entry_does_not_send_c_twice(world: &World, c: &CompanyAccount) {
    world
        .store
        .reschedule_reminder(&c.siret, &c.password_version, Some(J30))
        .await
        .unwrap();
    let r = world.run_at(datetime!(2027-10-03 18:05 UTC)).await;
    assert_eq!(
        (r.items_read, r.sent, r.skipped, r.failed),
        (1, 0, 1, 0),
        "{r:#?}"
    );
    assert_eq!(reminder_of(&r, &c.siret).outcome, Outcome::AlreadySent);
    assert_eq!(
        world.account(&c.siret).await.unwrap().next_reminder_on,
        Some(J14)
    );
}

/// The claims tell the story: A sent at its third attempt, B at its second, C at once.
async fn the_claims_tell_the_story(world: &World, t: &Three) {
    let claim = |account: &CompanyAccount| {
        reminder_claim(
            account,
            ReminderStep::Before(30),
            Some(J14),
            datetime!(2027-10-03 06:00 UTC),
        )
    };
    let record_a = world.store.mail_claim(&claim(&t.a)).await.unwrap().unwrap();
    assert_eq!((record_a.status.as_str(), record_a.attempts), ("sent", 3));
    assert!(record_a.message_id.is_some() && record_a.last_error.is_none());
    let record_b = world.store.mail_claim(&claim(&t.b)).await.unwrap().unwrap();
    assert_eq!((record_b.status.as_str(), record_b.attempts), ("sent", 2));
    let record_c = world.store.mail_claim(&claim(&t.c)).await.unwrap().unwrap();
    assert_eq!((record_c.status.as_str(), record_c.attempts), ("sent", 1));
}

/// The next step, for all three, once.
async fn the_next_step_goes_out_once_for_all_three(world: &World, t: &Three) {
    let r = world.run_at(at_six(J14)).await;
    assert_eq!((r.sent, r.skipped, r.failed), (3, 0, 0), "{r:#?}");
    for to in [&t.to_a, &t.to_b, &t.to_c] {
        let subjects: Vec<String> = mails_to(to).await.into_iter().map(|(s, _)| s).collect();
        assert_eq!(subjects.len(), 2, "{to}: {subjects:?}");
        assert!(subjects[0].contains("expire dans 30 jours"), "{subjects:?}");
        assert!(subjects[1].contains("expire dans 14 jours"), "{subjects:?}");
    }
}

/// The settings function of the stack, in-process, on this test's table and clock.
fn settings_state(world: &World) -> company_settings::State {
    let config = stack_config(&[
        ("TABLE_NAME", &world.table),
        ("PASSWORD_LIFETIME_DAYS", "365"),
    ]);
    let mut state = company_settings::State::from_sdk(config, &world.sdk);
    state.clock = world.clock.clone();
    state
}

async fn settings_call(
    state: &company_settings::State,
    method: &str,
    siret: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let route = format!("{method} /v1/companies/{{siret}}/chorus-account");
    let path = format!("/v1/companies/{siret}/chorus-account");
    let request = lambda_request(&route, &path, &[("siret", siret)], &[siret], body.as_ref());
    response_json(&company_settings::handle(state, request).await)
}

#[tokio::test]
async fn a_new_password_starts_a_new_cycle_and_deleting_the_settings_stops_it() {
    let world = World::new(365).await;
    let settings = settings_state(&world);
    let raw_siret = random_siret();
    let siret = siret(&raw_siret);
    let (first_referent, second_referent) = (referent(), referent());
    let (first_password, second_password) = (test_password(), test_password());
    let login = format!("TECH_{raw_siret}@cpp2017.fr");
    let save = |referent: &Email, password: Option<&str>| {
        let mut body =
            json!({"referent_email": referent.as_str(), "technical_login": login, "verify": false});
        if let Some(p) = password {
            body["password"] = json!(p);
            body["password_confirmation"] = json!(p);
        }
        body
    };
    let mut sent: Vec<(Date, String, String)> = Vec::new();
    let run_days = |report: RunReport, day: Date, sent: &mut Vec<(Date, String, String)>| {
        assert_eq!(report.failed, 0, "{report:#?}");
        for a in report.actions.iter().filter(|a| a.outcome == Outcome::Sent) {
            sent.push((day, a.step.clone().unwrap_or_default(), a.siret.clone()));
        }
    };

    // First save: in the index for the save day.
    world.clock.set(datetime!(2026-12-01 10:00 UTC));
    let (status, view) = settings_call(
        &settings,
        "PUT",
        &raw_siret,
        Some(save(&first_referent, Some(&first_password))),
    )
    .await;
    assert_eq!(status, 201, "{view}");
    let first = world.account(&siret).await.unwrap();
    assert_eq!(first.next_reminder_on, Some(date!(2026 - 12 - 01)));
    let r = world.run_at(datetime!(2026-12-02 06:00 UTC)).await;
    assert_eq!(
        reminder_of(&r, &siret).next_reminder_on.as_deref(),
        Some("2027-11-01")
    );

    // Old cycle: J-30 on 2027-11-01; a new password on 2027-11-05 ends it.
    let mut day = date!(2027 - 10 - 25);
    while day <= date!(2027 - 12 - 31) {
        let report = world.run_at(at_six(day)).await;
        run_days(report, day, &mut sent);
        if day == date!(2027 - 11 - 05) {
            world.clock.set(datetime!(2027-11-05 10:00 UTC));
            let (status, view) = settings_call(
                &settings,
                "PUT",
                &raw_siret,
                Some(save(&first_referent, Some(&second_password))),
            )
            .await;
            assert_eq!(status, 200, "{view}");
            let second = world.account(&siret).await.unwrap();
            assert_ne!(second.password_version, first.password_version);
            assert_eq!(second.next_reminder_on, Some(date!(2027 - 11 - 05)));
        }
        day = day.next_day().unwrap();
    }
    // New cycle: expires 2028-11-04. A change of referent only (2028-10-10) keeps the
    // cycle; the settings deleted on 2028-11-05 stop it (J+7 would be 2028-11-11).
    let mut day = date!(2028 - 10 - 01);
    while day <= date!(2028 - 12 - 31) {
        let report = world.run_at(at_six(day)).await;
        if day > date!(2028 - 11 - 05) {
            assert_eq!(
                (report.items_read, report.companies),
                (0, 0),
                "{day}: {report:#?}"
            );
        }
        run_days(report, day, &mut sent);
        world
            .clock
            .set(day.with_hms(10, 0, 0).unwrap().assume_utc());
        if day == date!(2028 - 10 - 10) {
            let (status, view) = settings_call(
                &settings,
                "PUT",
                &raw_siret,
                Some(save(&second_referent, None)),
            )
            .await;
            assert_eq!(status, 200, "{view}");
            assert_eq!(
                world.account(&siret).await.unwrap().next_reminder_on,
                Some(date!(2028 - 10 - 21))
            );
        }
        if day == date!(2028 - 11 - 05) {
            let (status, view) = settings_call(&settings, "DELETE", &raw_siret, None).await;
            assert_eq!(status, 204, "{view}");
        }
        day = day.next_day().unwrap();
    }
    let s = siret.to_string();
    assert_eq!(
        sent,
        vec![
            (date!(2027 - 11 - 01), "J-30".to_owned(), s.clone()),
            (date!(2028 - 10 - 05), "J-30".to_owned(), s.clone()),
            (date!(2028 - 10 - 21), "J-14".to_owned(), s.clone()),
            (date!(2028 - 10 - 28), "J-7".to_owned(), s.clone()),
            (date!(2028 - 11 - 03), "J-1".to_owned(), s.clone()),
            (date!(2028 - 11 - 04), "J0".to_owned(), s.clone()),
        ]
    );
    let first_mails = mails_to(&first_referent).await;
    assert_eq!(first_mails.len(), 2);
    assert!(
        first_mails[0].1.contains("mercredi 1er décembre 2027"),
        "{}",
        first_mails[0].1
    );
    assert!(
        first_mails[1].1.contains("samedi 4 novembre 2028"),
        "{}",
        first_mails[1].1
    );
    let second_mails = mails_to(&second_referent).await;
    let subjects: Vec<&str> = second_mails.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    for (subject, words) in subjects.iter().zip([
        "expire dans 14 jours",
        "expire dans 7 jours",
        "expire demain",
        "expire aujourd'hui",
    ]) {
        assert!(subject.contains(words), "{subject}");
    }
    for (subject, body) in first_mails.iter().chain(&second_mails) {
        for password in [&first_password, &second_password] {
            assert!(!subject.contains(password.as_str()) && !body.contains(password.as_str()));
        }
        assert!(!body.contains("NeverLogged"));
    }
    world.drop_table().await;
}

impl World {
    /// Chorus Pro refused this password at `at`, as a verification records it.
    async fn reject(&self, account: &CompanyAccount, at: OffsetDateTime) -> CompanyAccount {
        self.store
            .record_verification(
                &account.siret,
                &account.password_version,
                None,
                CredentialsStatus::Rejected.into(),
                at,
                &audit(at, "credentials_rejected"),
            )
            .await
            .unwrap();
        self.store
            .get_account(&account.siret)
            .await
            .unwrap()
            .unwrap()
    }

    /// The credentials-rejected alert, as a function that met the refusal sends it.
    async fn notify(
        &self,
        account: &CompanyAccount,
        source: RejectionSource,
        at: OffsetDateTime,
    ) -> Delivery {
        let lifetime = self.state.config.password_lifetime;
        notify_credentials_rejected(
            &self.store,
            self.mailer.as_ref(),
            account,
            lifetime,
            source,
            at,
        )
        .await
    }

    /// Saves `renewed`, a new password of `old`'s company, as the settings function does.
    async fn save_renewed(
        &self,
        renewed: &CompanyAccount,
        old: &CompanyAccount,
        now: OffsetDateTime,
    ) {
        self.store
            .save_account(renewed, Some(old.revision), &audit(now, "account_updated"))
            .await
            .unwrap();
    }
}

/// `account` with a new password saved at `now`, not verified yet.
fn with_new_password(account: &CompanyAccount, now: OffsetDateTime) -> CompanyAccount {
    CompanyAccount {
        password_version: uuid::Uuid::new_v4().to_string(),
        password_set_at: now,
        credentials_status: CredentialsStatus::Unverified,
        updated_at: now,
        revision: account.revision + 1,
        next_reminder_on: next_reminder_on_save(Some(account), true, now),
        ..account.clone()
    }
}

#[tokio::test]
async fn a_rejected_password_sends_one_alert_per_password() {
    let world = World::new(365).await;
    let (to_a, to_b) = (referent(), referent());
    let saved_at = datetime!(2027-01-10 09:00 UTC);
    let a = world.seed(&to_a, Environment::Production, saved_at).await;
    let b = world.seed(&to_b, Environment::Sandbox, saved_at).await;

    let a = a_refused_on_every_call_is_alerted_once(&world, &a, &to_a).await;
    let b = b_alert_that_failed_is_left_due(&world, &b, &to_b).await;
    the_next_run_sends_b_alert_and_both_go_back_to_their_first_reminder(&world, &a, &b).await;
    b_alert_went_once_in_the_sandbox_wording(&world, &b, &to_b).await;
    let mails = a_new_password_refused_too_gets_a_new_alert(&world, &a, &to_a).await;
    c_renewed_before_its_alert_gets_none(&world).await;
    assert!(
        mails[1]
            .1
            .contains("lors du suivi de l&#39;état des factures déposées"),
        "{}",
        mails[1].1
    );
    world.drop_table().await;
}

/// A: refused on a deposit, then on every call after it: one alert.
async fn a_refused_on_every_call_is_alerted_once(
    world: &World,
    a: &CompanyAccount,
    to_a: &Email,
) -> CompanyAccount {
    let a = world.reject(a, datetime!(2027-03-01 09:00 UTC)).await;
    assert!(matches!(
        world
            .notify(
                &a,
                RejectionSource::Transmission,
                datetime!(2027-03-01 09:00 UTC)
            )
            .await,
        Delivery::Sent { .. }
    ));
    assert_eq!(
        world
            .notify(
                &a,
                RejectionSource::Transmission,
                datetime!(2027-03-01 09:01 UTC)
            )
            .await,
        Delivery::AlreadySent
    );
    assert_eq!(
        world
            .notify(
                &a,
                RejectionSource::StatusSync,
                datetime!(2027-03-01 11:00 UTC)
            )
            .await,
        Delivery::AlreadySent
    );
    let mails = mails_to(to_a).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]
            .0
            .starts_with("Chorus Pro refuse le mot de passe du compte technique"),
        "{}",
        mails[0].0
    );
    assert!(mails[0].0.contains(a.siret.as_str()));
    assert!(
        mails[0]
            .1
            .contains("Le lundi 1er mars 2027, Chorus Pro a refusé"),
        "{}",
        mails[0].1
    );
    assert!(
        mails[0].1.contains("lors de l&#39;envoi d&#39;une facture"),
        "{}",
        mails[0].1
    );
    assert!(
        mails[0]
            .1
            .contains("Réinitialisation du mot de passe d&#39;un compte technique")
    );
    a
}

/// B: the alert's send fails; the account is left due (for the next daily run).
async fn b_alert_that_failed_is_left_due(
    world: &World,
    b: &CompanyAccount,
    to_b: &Email,
) -> CompanyAccount {
    world.mailer.refuse(to_b, true);
    let b = world.reject(b, datetime!(2027-03-01 10:00 UTC)).await;
    assert!(matches!(
        world
            .notify(
                &b,
                RejectionSource::Verification,
                datetime!(2027-03-01 10:00 UTC)
            )
            .await,
        Delivery::Failed { .. }
    ));
    assert_eq!(
        world.account(&b.siret).await.unwrap().next_reminder_on,
        Some(date!(2027 - 03 - 01))
    );
    world.mailer.refuse(to_b, false);
    b
}

async fn the_next_run_sends_b_alert_and_both_go_back_to_their_first_reminder(
    world: &World,
    a: &CompanyAccount,
    b: &CompanyAccount,
) {
    let r = world.run_at(datetime!(2027-03-02 06:00 UTC)).await;
    assert_eq!(
        (r.companies, r.sent, r.skipped, r.failed),
        (2, 1, 3, 0),
        "{r:#?}"
    );
    let outcomes = |account: &CompanyAccount| -> Vec<(&'static str, Outcome)> {
        actions_of(&r, &account.siret)
            .iter()
            .map(|a| (a.mail, a.outcome))
            .collect()
    };
    assert_eq!(
        outcomes(a),
        vec![
            ("credentials_rejected", Outcome::AlreadySent),
            ("reminder", Outcome::NothingDue)
        ]
    );
    assert_eq!(
        outcomes(b),
        vec![
            ("credentials_rejected", Outcome::Sent),
            ("reminder", Outcome::NothingDue)
        ]
    );
    // Both back to their first reminder (expiry 2028-01-10, J-30 2027-12-11).
    for account in [a, b] {
        assert_eq!(
            world
                .account(&account.siret)
                .await
                .unwrap()
                .next_reminder_on,
            Some(date!(2027 - 12 - 11))
        );
    }
}

async fn b_alert_went_once_in_the_sandbox_wording(world: &World, b: &CompanyAccount, to_b: &Email) {
    assert_eq!(
        world
            .notify(
                b,
                RejectionSource::Transmission,
                datetime!(2027-03-02 08:00 UTC)
            )
            .await,
        Delivery::AlreadySent
    );
    let mails = mails_to(to_b).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]
            .0
            .starts_with("[QUALIFICATION – bac à sable] Chorus Pro refuse"),
        "{}",
        mails[0].0
    );
}

/// A new password for A: a new cycle, and a new alert if that one is refused too. The
/// old password's alert no longer applies. Gives A's two alerts.
async fn a_new_password_refused_too_gets_a_new_alert(
    world: &World,
    a: &CompanyAccount,
    to_a: &Email,
) -> Vec<(String, String)> {
    let now = datetime!(2027-03-03 10:00 UTC);
    let renewed = CompanyAccount {
        verified_at: None,
        ..with_new_password(a, now)
    };
    world.save_renewed(&renewed, a, now).await;
    // The old password's alert went out already; calls about it change nothing.
    assert_eq!(
        world
            .notify(
                a,
                RejectionSource::Transmission,
                datetime!(2027-03-03 11:00 UTC)
            )
            .await,
        Delivery::AlreadySent
    );
    assert_eq!(
        world.account(&a.siret).await.unwrap().next_reminder_on,
        Some(date!(2027 - 03 - 03))
    );
    let renewed = world
        .reject(&renewed, datetime!(2027-03-04 09:00 UTC))
        .await;
    assert!(matches!(
        world
            .notify(
                &renewed,
                RejectionSource::StatusSync,
                datetime!(2027-03-04 09:00 UTC)
            )
            .await,
        Delivery::Sent { .. }
    ));
    assert_eq!(
        world
            .notify(
                &renewed,
                RejectionSource::StatusSync,
                datetime!(2027-03-04 09:30 UTC)
            )
            .await,
        Delivery::AlreadySent
    );
    let mails = mails_to(to_a).await;
    assert_eq!(mails.len(), 2);
    mails
}

/// C: refused, but renewed before the alert could go: the alert about the old
/// password is moot, and nothing is written for it.
async fn c_renewed_before_its_alert_gets_none(world: &World) {
    let to_c = referent();
    let c = world
        .seed(
            &to_c,
            Environment::Production,
            datetime!(2027-01-10 09:00 UTC),
        )
        .await;
    let c = world.reject(&c, datetime!(2027-03-05 09:00 UTC)).await;
    let now = datetime!(2027-03-05 09:30 UTC);
    world
        .save_renewed(&with_new_password(&c, now), &c, now)
        .await;
    assert_eq!(
        world
            .notify(
                &c,
                RejectionSource::Transmission,
                datetime!(2027-03-05 09:31 UTC)
            )
            .await,
        Delivery::Superseded
    );
    assert!(
        world
            .store
            .mail_claim(&shared::reminder::alert_claim(&c, now))
            .await
            .unwrap()
            .is_none()
    );
    assert!(mails_to(&to_c).await.is_empty());
}

/// `cargo test -p gateway-tests --test password_reminder -- --ignored --nocapture`:
/// 100,000 companies in the table, 1,000 of them due; one run must read about 1,000 items.
#[tokio::test]
#[ignore = "seeds 100,000 items in moto (a few minutes); run on demand for the figures"]
async fn a_run_over_100_000_companies_reads_only_the_1_000_due() {
    const COMPANIES: usize = 100_000;
    const DUE: usize = 1_000;
    let world = World::new(365).await;
    // Best run against a moto of its own (AWS_ENDPOINT_URL=…): it then needs the sender.
    let domain = sender()
        .split_once('@')
        .map(|(_, d)| d.to_owned())
        .unwrap_or_default();
    let _ = shared::aws::sesv2::Client::new(&world.sdk)
        .create_email_identity()
        .email_identity(domain)
        .send()
        .await;
    let now = datetime!(2027-11-20 06:00 UTC);
    let today = now.date();
    let run = short_id();
    let seeding = Instant::now();
    let mut batch: Vec<WriteRequest> = Vec::with_capacity(25);
    for i in 0..COMPANIES {
        let siret = siret(&shared::domain::siret::with_luhn_key(&format!("8{:012}", i)).unwrap());
        let due = i % (COMPANIES / DUE) == 0;
        // Due ones reach J-30 today; the others are somewhere later in their cycle.
        let (set_at, next_on) = if due {
            (now - Duration::days(335), today)
        } else {
            let ahead = 1 + (i % 300) as i64;
            (
                now - Duration::days(335) + Duration::days(ahead),
                today + Duration::days(ahead),
            )
        };
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let mut item = std::collections::HashMap::new();
        item.insert("PK".to_owned(), s(&keys::company_pk(&siret)));
        item.insert("SK".to_owned(), s(keys::ACCOUNT_SK));
        item.insert("entity".to_owned(), s("company_account"));
        item.insert("siret".to_owned(), s(siret.as_str()));
        item.insert(
            "referent_email".to_owned(),
            s(&format!("bench-{run}-{i}@entreprise-test.fr")),
        );
        item.insert(
            "technical_login".to_owned(),
            s(&format!("TECH_{siret}@cpp2017.fr")),
        );
        item.insert("environment".to_owned(), s("production"));
        item.insert("password_set_at".to_owned(), s(&rfc3339(set_at)));
        item.insert("password_version".to_owned(), s(&format!("v-{i}")));
        item.insert("credentials_status".to_owned(), s("valid"));
        item.insert("created_at".to_owned(), s(&rfc3339(set_at)));
        item.insert("updated_at".to_owned(), s(&rfc3339(set_at)));
        item.insert("revision".to_owned(), AttributeValue::N("1".into()));
        item.insert("next_reminder_on".to_owned(), s(&iso_date(next_on)));
        item.insert(
            "GSI1PK".to_owned(),
            s(&keys::reminder_gsi1pk(keys::reminder_shard(&siret))),
        );
        item.insert(
            "GSI1SK".to_owned(),
            s(&keys::reminder_gsi1sk(next_on, &siret)),
        );
        batch.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build(),
        );
        if batch.len() == 25 || i + 1 == COMPANIES {
            let mut pending = std::mem::take(&mut batch);
            while !pending.is_empty() {
                let out = world
                    .ddb
                    .batch_write_item()
                    .request_items(&world.table, pending)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("batch write: {e:?}"));
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&world.table))
                    .cloned()
                    .unwrap_or_default();
            }
        }
    }
    let seeded_in = seeding.elapsed();

    let started = Instant::now();
    let report = world.run_at(now).await;
    let took = started.elapsed();
    let again_started = Instant::now();
    let again = world.run_at(datetime!(2027-11-20 18:00 UTC)).await;
    let again_took = again_started.elapsed();
    println!(
        "seeded {COMPANIES} accounts in {seeded_in:.1?}; run: {} companies, {} items read, {} sent, {} failed in {took:.2?}; \
         second run the same day: {} items read in {again_took:.2?}",
        report.companies, report.items_read, report.sent, report.failed, again.items_read
    );
    world.drop_table().await;
    assert_eq!(
        (
            report.companies,
            report.items_read,
            report.sent,
            report.failed
        ),
        (DUE, DUE, DUE, 0)
    );
    assert_eq!((again.items_read, again.sent), (0, 0));
}
