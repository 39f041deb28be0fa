//! Sections 3 and 4: the starts of each release binary against the hello world, each
//! initialisation step alone, then each function's first and warm events and peak memory;
//! at full CPU, and again in a 128 MB Lambda's CPU share where a cgroup can be made.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::coldstart::{self, ColdResult};
use crate::inprocess::{Functions, InProcess};
use crate::stats::{fmt_duration, fmt_mib};
use crate::{Results, cgroup, fixtures, initsteps};

/// The deployed functions whose starts are measured against the hello world, in the order
/// of the table (`documents`, issue 16, has no first-event row of its own).
const STARTED: [&str; 6] = [
    "company-settings",
    "identifiers",
    "transmit-invoice",
    "status-sync",
    "password-reminder",
    "documents",
];

/// What the cold-start runs of section 3 use: tables named from `tables`, `events` events
/// per function, logs in `logs`, in `cpu` when given.
pub struct ColdPlan<'a> {
    pub tables: String,
    pub run: &'a str,
    pub events: usize,
    pub logs: &'a Path,
    pub cpu: Option<&'a cgroup::LambdaCpu>,
}

/// The starts of section 3: each binary against the hello world, interleaved, and each
/// initialisation step alone; at full CPU, then in a 128 MB Lambda's CPU share where a
/// cgroup can be made (returned, for the events that follow).
pub fn start_section(
    io: &Runtime,
    env: &[(String, String)],
    plan: &ColdPlan,
    starts: usize,
    results: &mut Results,
) -> Option<cgroup::LambdaCpu> {
    let interleaved =
        |cpu| coldstart::interleaved_starts(io, &STARTED, env, plan.logs, starts, cpu);
    eprintln!("  {starts} starts of each binary, interleaved, against the hello world");
    results.starts = Some(interleaved(None));
    eprintln!("  where the initialisation goes: each step alone, {starts} fresh processes");
    results.init_steps = Some(initsteps::measure(env, starts, None));
    let lambda_cpu = cgroup::LambdaCpu::create(&format!("choruspro-bench-{}", plan.run));
    results.lambda_cpu = Some(match &lambda_cpu {
        Ok(cpu) => Ok(cpu.description.clone()),
        Err(why) => Err(why.clone()),
    });
    let cpu = match lambda_cpu {
        Ok(cpu) => cpu,
        Err(why) => {
            eprintln!("  128 MB CPU share: skipped, cgroups not writable ({why})");
            return None;
        }
    };
    eprintln!("  128 MB CPU share: {}", cpu.description);
    results.lambda_starts = Some(interleaved(Some(&cpu)));
    results.lambda_init_steps = Some(initsteps::measure(env, starts, Some(&cpu)));
    Some(cpu)
}

/// Section 3: the starts, then each function's events, at full CPU and again in the 128 MB
/// share when there is one.
pub fn cold_section(
    io: &Runtime,
    setup: &InProcess,
    overrides: &dyn Fn(&str) -> Vec<(String, String)>,
    plan: &ColdPlan,
    starts: usize,
    results: &mut Results,
) -> Result<Vec<ColdResult>, String> {
    let env = overrides(&format!("{}-starts", plan.tables));
    let lambda_cpu = start_section(io, &env, plan, starts, results);
    let cold = ColdRun {
        io,
        setup,
        overrides,
        plan,
    };
    let mut rows = cold.every_function()?;
    if let Some(cpu) = &lambda_cpu {
        let in_share = ColdPlan {
            tables: format!("{}-q", plan.tables),
            cpu: Some(cpu),
            ..*plan
        };
        rows.extend(
            ColdRun {
                plan: &in_share,
                ..cold
            }
            .every_function()?,
        );
    }
    Ok(rows)
}

/// One pass of each function's events under `plan` (at full CPU, or in its share).
#[derive(Clone, Copy)]
struct ColdRun<'a> {
    io: &'a Runtime,
    setup: &'a InProcess,
    overrides: &'a dyn Fn(&str) -> Vec<(String, String)>,
    plan: &'a ColdPlan<'a>,
}

/// One function's events and how its answers are read.
struct Events<'a> {
    function: &'static str,
    /// The table the function works in.
    table: &'a str,
    events: Vec<Value>,
    /// What the first event's answer says.
    describe: Box<dyn Fn(&Value) -> String>,
    ok: fn(&Value) -> bool,
}

impl ColdRun<'_> {
    /// Each function in a table of its own, set up just before it runs, in the table's order.
    fn every_function(&self) -> Result<Vec<ColdResult>, String> {
        let mut rows = vec![self.company_settings()?, self.identifiers()?];
        let (transmitted, transmit, table) = self.transmit_invoice()?;
        rows.push(transmitted);
        rows.push(self.status_sync(&transmit, &table)?);
        rows.push(self.password_reminder()?);
        Ok(rows)
    }

    /// The function's release binary against a fake Runtime API holding its events; printed.
    fn launch(&self, events: Events) -> Result<ColdResult, String> {
        let quota = if self.plan.cpu.is_some() {
            "-lambda-cpu"
        } else {
            ""
        };
        let log: PathBuf = (self.plan.logs).join(format!("bench-{}{quota}.log", events.function));
        let env = (self.overrides)(events.table);
        let launch = coldstart::Launch {
            function: events.function,
            env: &env,
            log: &log,
            cpu: self.plan.cpu,
        };
        let r =
            coldstart::run_function(self.io, &launch, events.events, events.describe, events.ok)?;
        eprintln!(
            "  {:<18} ready {:>8}  first event {:>8}  warm median {:>8}  peak {}  {}",
            r.function,
            r.ready.map(fmt_duration).unwrap_or_default(),
            r.first_event.map(fmt_duration).unwrap_or_default(),
            fmt_duration(r.warm.median),
            r.peak_rss.map(fmt_mib).unwrap_or_default(),
            r.failures.first().cloned().unwrap_or_default()
        );
        Ok(r)
    }

    /// company-settings: a read first, then saves checked in Chorus Pro, reads, verifications.
    fn company_settings(&self) -> Result<ColdResult, String> {
        let a = fixtures::RHONE_SIRET;
        let table = format!("{}-cold-settings", self.plan.tables);
        self.setup.cold_settings(&table)?;
        let settings_path = format!("/v1/companies/{a}/chorus-account");
        let verify_path = format!("{settings_path}/verify");
        let put_body = fixtures::settings(
            "compta@batiments-rhone.fr",
            fixtures::RHONE_LOGIN,
            Some(fixtures::RHONE_PASSWORD),
            true,
        );
        let siret = [("siret", a)];
        let events = (0..self.plan.events)
            .map(|i| match i % 3 {
                0 => http_event(
                    "GET /v1/companies/{siret}/chorus-account",
                    &settings_path,
                    &siret,
                    a,
                    None,
                ),
                1 => http_event(
                    "PUT /v1/companies/{siret}/chorus-account",
                    &settings_path,
                    &siret,
                    a,
                    Some(&put_body),
                ),
                _ => http_event(
                    "POST /v1/companies/{siret}/chorus-account/verify",
                    &verify_path,
                    &siret,
                    a,
                    None,
                ),
            })
            .collect();
        self.launch(Events {
            function: "company-settings",
            table: &table,
            events,
            describe: Box::new(|v| format!("GET settings → {}", v["statusCode"])),
            ok: http_ok,
        })
    }

    /// identifiers: a read first, then checked market saves, new situations, lists.
    fn identifiers(&self) -> Result<ColdResult, String> {
        let (a, run) = (fixtures::RHONE_SIRET, self.plan.run);
        let table = format!("{}-cold-identifiers", self.plan.tables);
        self.setup
            .cold_markets(&table, run, &["gymnase", "froid"], 0)?;
        let market_path = format!("/v1/companies/{a}/markets/gymnase");
        let market_body = fixtures::market("2026-TRV-014");
        let gymnase = [("siret", a), ("market_ref", "gymnase")];
        let events = (0..self.plan.events)
            .map(|i| match i % 3 {
                0 => http_event(
                    "GET /v1/companies/{siret}/markets/{market_ref}",
                    &market_path,
                    &gymnase,
                    a,
                    None,
                ),
                1 => http_event(
                    "PUT /v1/companies/{siret}/markets/{market_ref}",
                    &market_path,
                    &gymnase,
                    a,
                    Some(&market_body),
                ),
                _ => {
                    let n = (i / 3 + 1).to_string();
                    http_event(
                        "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}",
                        &format!("/v1/companies/{a}/markets/froid/situations/{n}"),
                        &[("siret", a), ("market_ref", "froid"), ("number", &n)],
                        a,
                        Some(&fixtures::situation(&format!("F{run}-{n}"))),
                    )
                }
            })
            .collect();
        self.launch(Events {
            function: "identifiers",
            table: &table,
            events,
            describe: Box::new(|v| format!("GET market → {}", v["statusCode"])),
            ok: http_ok,
        })
    }

    /// transmit-invoice: one 200-line situation transmitted per event. With its row, its
    /// functions and table, where status-sync follows the transmissions.
    fn transmit_invoice(&self) -> Result<(ColdResult, Functions, String), String> {
        let a = fixtures::RHONE_SIRET;
        let table = format!("{}-cold-transmit", self.plan.tables);
        let transmit =
            self.setup
                .cold_markets(&table, self.plan.run, &["froid-tx"], self.plan.events)?;
        let body = fixtures::transmission_lines(200, a);
        let events = (1..=self.plan.events)
            .map(|n| {
                let n = n.to_string();
                http_event(
                    "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission",
                    &format!("/v1/companies/{a}/markets/froid-tx/situations/{n}/transmission"),
                    &[("siret", a), ("market_ref", "froid-tx"), ("number", &n)],
                    a,
                    Some(&body),
                )
            })
            .collect();
        let transmitted = self.launch(Events {
            function: "transmit-invoice",
            table: &table,
            events,
            describe: Box::new(|v| {
                format!(
                    "POST transmission (200 lines, deposit) → {}",
                    v["statusCode"]
                )
            }),
            ok: http_ok,
        })?;
        Ok((transmitted, transmit, table))
    }

    /// status-sync: the transmissions just deposited, due now; then runs with nothing due.
    fn status_sync(&self, transmit: &Functions, table: &str) -> Result<ColdResult, String> {
        let due = self
            .setup
            .make_due(transmit, "froid-tx", self.plan.events)?;
        self.launch(Events {
            function: "status-sync",
            table,
            events: (0..self.plan.events).map(|_| scheduled_event()).collect(),
            describe: Box::new(move |v| {
                format!(
                    "a run following {} of the {due} transmissions due",
                    v["due"]
                )
            }),
            ok: |v| v["failed"].as_u64() == Some(0),
        })
    }

    /// password-reminder: 20 companies at their J-30 today; then runs with nothing due.
    fn password_reminder(&self) -> Result<ColdResult, String> {
        let table = format!("{}-cold-reminders", self.plan.tables);
        self.setup.cold_reminders(&table, self.plan.run, 20)?;
        self.launch(Events {
            function: "password-reminder",
            table: &table,
            events: (0..self.plan.events).map(|_| scheduled_event()).collect(),
            describe: Box::new(|v| {
                format!(
                    "a run with {} companies due, {} e-mails sent",
                    v["companies"], v["sent"]
                )
            }),
            ok: |v| v["failed"].as_u64() == Some(0),
        })
    }
}

/// An API Gateway (payload 2.0) event for a company's own caller.
fn http_event(
    route: &str,
    path: &str,
    params: &[(&str, &str)],
    company: &str,
    body: Option<&Value>,
) -> Value {
    let headers = [("content-type".to_owned(), "application/json".to_owned())];
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    gateway_tests::testkit::api_event(route, path, params, ("bench", &[company]), &bytes, &headers)
}

fn scheduled_event() -> Value {
    json!({"scheduled_time": shared::clock::rfc3339(time::OffsetDateTime::now_utc())})
}

fn http_ok(v: &Value) -> bool {
    v["statusCode"].as_u64().is_some_and(|s| s < 400)
}
