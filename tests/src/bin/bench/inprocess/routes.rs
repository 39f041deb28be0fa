//! Sections 1 and 2: the routes measured, in the table's order, with the fewest calls each
//! needs; then `shared::ubl::prepare` alone.

use std::time::{Duration, Instant};

use gateway_tests::testkit::random_siret;
use serde_json::Value;
use shared::ubl;

use super::{
    DELETE_SETTINGS, Function, Functions, GET_MARKET, GET_SETTINGS, GET_SITUATION, InProcess,
    LIST_MARKETS, LIST_SITUATIONS, Minimum, PUT_MARKET, PUT_SETTINGS, PUT_SITUATION, Probe, Route,
    RouteResult, TRANSMIT, VERIFY_SETTINGS, market_call, min, rhone, settings_call, situation_call,
};
use crate::fixtures::{self, RHONE_PASSWORD, RHONE_SIRET};
use crate::stats::summarize;

/// The routes, measured in the table's order: each group of routes in a table of its own.
impl InProcess {
    /// Every route, then `ubl::prepare` on a 200-line invoice. `run` makes invoice numbers
    /// unique; tables are named `{tables}-…`.
    pub fn run_all(&self, run: &str, tables: &str) -> Result<Vec<RouteResult>, String> {
        let staging = self.functions(&format!("{tables}-staging"))?;
        let mut rows = self.settings_routes(tables)?;
        rows.extend(self.identifiers_routes(run, tables)?);
        rows.extend(self.transmit_routes(run, tables, &staging)?);
        rows.push(self.measure_prepare());
        Ok(rows)
    }

    /// company-settings: where a GET's CPU goes, the saves, then new companies.
    fn settings_routes(&self, tables: &str) -> Result<Vec<RouteResult>, String> {
        let f = self.functions(&format!("{tables}-settings"))?;
        let s = Function::Settings;
        let rhone_checked = rhone(Some(RHONE_PASSWORD), true);
        self.expect(
            &f,
            s,
            &settings_call(PUT_SETTINGS, RHONE_SIRET, rhone_checked),
            201,
        )?;
        // A company whose settings are saved without a Chorus Pro check.
        let b = random_siret();
        let b_unchecked = rhone(Some("Bench-Pass-0"), false);
        self.expect(&f, s, &settings_call(PUT_SETTINGS, &b, b_unchecked), 201)?;
        eprintln!(
            "  timing {} calls per route after {} warm-ups",
            self.calls, self.warmups
        );
        let mut rows = self.settings_references(&f)?;
        rows.extend(self.settings_saves(&f, &b));
        rows.extend(self.settings_new_companies(&f));
        Ok(rows)
    }

    /// GET settings, and where its CPU goes: the SDK calls alone, and the route without
    /// logging.
    fn settings_references(&self, f: &Functions) -> Result<Vec<RouteResult>, String> {
        let siret = shared::domain::Siret::parse(RHONE_SIRET, shared::domain::SiretCheck::Full)
            .map_err(|e| format!("{e:?}"))?;
        let version = self
            .rt
            .block_on(f.settings.store.get_account(&siret))
            .map_err(|e| e.to_string())?
            .map(|acc| acc.password_version)
            .ok_or("the account just saved is missing")?;
        let mut rows = vec![self.calibrate_pre_hook(f, &siret)?];
        let mut probes = get_settings_probes(f);
        probes.extend(sdk_alone_probes(f, &siret, &version));
        // One after the other, not interleaved: alternating four code paths call by call
        // leaves each one's caches cold, and showed as +150 µs on GET settings alone.
        for probe in probes {
            rows.extend(self.measure_interleaved(vec![probe]));
        }
        Ok(rows)
    }

    /// PUT settings unchanged, with a new password, checked in Chorus Pro; POST verify.
    fn settings_saves(&self, f: &Functions, b: &str) -> Vec<RouteResult> {
        let s = Function::Settings;
        let unchanged = route(
            s,
            "PUT settings, unchanged (a client retry, verify=false)",
            200,
            min(1, 0, 0, "GetItem: nothing changes, nothing is written", ""),
        );
        let new_password = route(
            s,
            "PUT settings, new password (verify=false)",
            200,
            min(
                2,
                2,
                0,
                "GetItem (revision) + TransactWriteItems (account + audit); PutSecretValue (AWSPENDING) + UpdateSecretVersionStage (AWSCURRENT moved to it from the version the account item named)",
                "promote() fell back to reading the stages (DescribeSecret): AWSCURRENT was not on the version the account item named",
            ),
        );
        let checked = route(
            s,
            "PUT settings, password checked in Chorus Pro (verify=true)",
            200,
            min(
                2,
                2,
                1,
                "as with verify=false, plus one Chorus Pro call that needs the login, the password and the SIRET (structures actives); the PISTE token is cached by the warm function",
                "promote() fell back to reading the stages, as with verify=false",
            ),
        );
        let verify = route(s, "POST verify (Chorus Pro)", 200, VERIFY_MINIMUM);
        vec![
            self.measure(f, unchanged, |_| {
                settings_call(PUT_SETTINGS, RHONE_SIRET, rhone(None, false))
            }),
            self.measure(f, new_password, |i| {
                let password = format!("Bench-Pass-{}", i + 1);
                settings_call(PUT_SETTINGS, b, rhone(Some(&password), false))
            }),
            self.measure(f, checked, |_| {
                settings_call(PUT_SETTINGS, RHONE_SIRET, rhone(Some(RHONE_PASSWORD), true))
            }),
            self.measure(f, verify, |_| {
                settings_call(VERIFY_SETTINGS, RHONE_SIRET, None)
            }),
        ]
    }

    /// Last, as they fill the table: new companies, then their deletion.
    fn settings_new_companies(&self, f: &Functions) -> Vec<RouteResult> {
        let s = Function::Settings;
        let fresh: Vec<String> = (0..self.warmups + self.calls)
            .map(|_| random_siret())
            .collect();
        let created = route(
            s,
            "PUT settings, new company (verify=false)",
            201,
            NEW_COMPANY_MINIMUM,
        );
        let deleted = route(s, "DELETE settings", 204, DELETE_MINIMUM);
        vec![
            self.measure(f, created, |i| {
                settings_call(PUT_SETTINGS, &fresh[i], rhone(Some("Bench-Pass-1"), false))
            }),
            self.measure(f, deleted, |i| {
                settings_call(DELETE_SETTINGS, &fresh[i], None)
            }),
        ]
    }

    /// identifiers: market saves and reads, then situations.
    fn identifiers_routes(&self, run: &str, tables: &str) -> Result<Vec<RouteResult>, String> {
        let (f, c) = self.identifiers_set_up(run, tables)?;
        let mut rows = self.market_routes(&f, &c);
        rows.extend(self.situation_routes(&f, run));
        Ok(rows)
    }

    /// The supplier's checked settings, its markets `gymnase`, `liste` (12 situations) and
    /// `tx`; a company without settings and its market. Returns the functions and that
    /// company's SIRET.
    fn identifiers_set_up(&self, run: &str, tables: &str) -> Result<(Functions, String), String> {
        let f = self.functions(&format!("{tables}-identifiers"))?;
        let (a, id) = (RHONE_SIRET, Function::Identifiers);
        let rhone_checked = rhone(Some(RHONE_PASSWORD), true);
        self.expect(
            &f,
            Function::Settings,
            &settings_call(PUT_SETTINGS, a, rhone_checked),
            201,
        )?;
        for (market, number) in [("gymnase", "2026-TRV-014"), ("liste", "2026-TRV-015")] {
            let body = Some(fixtures::market(number));
            self.expect(&f, id, &market_call(PUT_MARKET, a, market, body), 201)?;
        }
        let body = Some(fixtures::market("2026-TRV-017"));
        self.expect(&f, id, &market_call(PUT_MARKET, a, "tx", body), 201)?;
        for n in 1..=12 {
            let body = Some(fixtures::situation(&format!("L{run}-{n:03}")));
            let call = situation_call(PUT_SITUATION, a, "liste", Some(n), body);
            self.expect(&f, id, &call, 201)?;
        }
        let c = random_siret();
        let body = Some(fixtures::market("2026-TRV-018"));
        self.expect(
            &f,
            id,
            &market_call(PUT_MARKET, &c, "sans-compte", body),
            201,
        )?;
        Ok((f, c))
    }

    /// PUT market checked in Chorus Pro, unchecked; GET market, GET markets.
    fn market_routes(&self, f: &Functions, c: &str) -> Vec<RouteResult> {
        let id = Function::Identifiers;
        let checked = route(
            id,
            "PUT market, buyer checked in Chorus Pro",
            200,
            CHECKED_MARKET_MINIMUM,
        );
        let unchecked = route(
            id,
            "PUT market, company without settings (unchecked)",
            200,
            min(
                3,
                0,
                0,
                "GetItem account (none) + GetItem market + TransactWriteItems",
                "",
            ),
        );
        let get = route(id, "GET market", 200, min(1, 0, 0, "GetItem", ""));
        let list_minimum = min(1, 0, 0, "one Query (MARKET# prefix)", "");
        let list = route(id, "GET markets (3)", 200, list_minimum);
        vec![
            self.measure(f, checked, |_| {
                let body = Some(fixtures::market("2026-TRV-014"));
                market_call(PUT_MARKET, RHONE_SIRET, "gymnase", body)
            }),
            self.measure(f, unchecked, |_| {
                let body = Some(fixtures::market("2026-TRV-018"));
                market_call(PUT_MARKET, c, "sans-compte", body)
            }),
            self.measure(f, get, |_| {
                market_call(GET_MARKET, RHONE_SIRET, "gymnase", None)
            }),
            self.measure(f, list, |_| {
                market_call(LIST_MARKETS, RHONE_SIRET, "", None)
            }),
        ]
    }

    /// GET situation, GET situations, PUT a new situation.
    fn situation_routes(&self, f: &Functions, run: &str) -> Vec<RouteResult> {
        let id = Function::Identifiers;
        let get = route(id, "GET situation", 200, min(1, 0, 0, "GetItem", ""));
        let list = route(
            id,
            "GET situations (12)",
            200,
            min(
                2,
                0,
                0,
                "GetItem market (404 when unknown) + one Query (SITUATION#{market}# prefix)",
                "",
            ),
        );
        let new = route(
            id,
            "PUT situation, new",
            201,
            min(
                3,
                0,
                0,
                "GetItem market + GetItem situation (in parallel) + TransactWriteItems (situation + invoice-number guard + audit)",
                "",
            ),
        );
        vec![
            self.measure(f, get, |_| {
                situation_call(GET_SITUATION, RHONE_SIRET, "liste", Some(1), None)
            }),
            self.measure(f, list, |_| {
                situation_call(LIST_SITUATIONS, RHONE_SIRET, "liste", None, None)
            }),
            self.measure(f, new, |i| {
                let body = Some(fixtures::situation(&format!("T{run}-{:03}", i + 1)));
                situation_call(PUT_SITUATION, RHONE_SIRET, "tx", Some(i + 1), body)
            }),
        ]
    }

    /// transmit-invoice: a demo invoice then its repeat, and a 200-line invoice, each on a
    /// table of its own.
    fn transmit_routes(
        &self,
        run: &str,
        tables: &str,
        staging: &Functions,
    ) -> Result<Vec<RouteResult>, String> {
        let demo_body = fixtures::transmission_demo(RHONE_SIRET);
        let big_body = fixtures::transmission_lines(200, RHONE_SIRET);
        let mut rows = Vec::new();
        for (market, label, body) in [
            (
                "tx",
                "POST transmission, demo invoice (2 lines, Chorus Pro deposit)",
                &demo_body,
            ),
            (
                "tx200",
                "POST transmission, 200-line invoice (Chorus Pro deposit)",
                &big_body,
            ),
        ] {
            let f = self.functions(&format!("{tables}-{market}"))?;
            self.transmission_set_up(staging, &f, run, market)?;
            let deposit = Route {
                target: None,
                ..route(Function::Transmit, label, 202, TRANSMISSION_MINIMUM)
            };
            rows.push(self.measure(&f, deposit, |i| {
                situation_call(
                    TRANSMIT,
                    RHONE_SIRET,
                    market,
                    Some(i + 1),
                    Some(body.clone()),
                )
            }));
            if market == "tx" {
                rows.push(self.measure_repeat(&f, market, &demo_body));
            }
        }
        Ok(rows)
    }

    /// The supplier's settings and `market`, then as many situations as calls, written in
    /// staging and moved to `f`'s table 20 at a time.
    fn transmission_set_up(
        &self,
        staging: &Functions,
        f: &Functions,
        run: &str,
        market: &str,
    ) -> Result<(), String> {
        let (a, id) = (RHONE_SIRET, Function::Identifiers);
        self.clear(staging)?;
        self.staged(staging, &f.table, true, |st| {
            let rhone_checked = rhone(Some(RHONE_PASSWORD), true);
            let call = settings_call(PUT_SETTINGS, a, rhone_checked);
            self.expect(st, Function::Settings, &call, 201)?;
            let body = Some(fixtures::market("2026-TRV-016"));
            self.expect(st, id, &market_call(PUT_MARKET, a, market, body), 201)?;
            Ok(())
        })?;
        let prefix = if market == "tx" { "D" } else { "W" };
        for chunk in (1..=self.warmups + self.calls)
            .collect::<Vec<_>>()
            .chunks(20)
        {
            self.staged(staging, &f.table, true, |st| {
                for &n in chunk {
                    let body = Some(fixtures::situation(&format!("{prefix}{run}-{n:03}")));
                    let call = situation_call(PUT_SITUATION, a, market, Some(n), body);
                    self.expect(st, id, &call, 201)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// POST transmission of a situation already deposited: its view, read once.
    fn measure_repeat(&self, f: &Functions, market: &str, demo_body: &Value) -> RouteResult {
        let repeat = Route {
            target: None,
            ..route(
                Function::Transmit,
                "POST transmission again (already deposited)",
                202,
                min(
                    1,
                    0,
                    0,
                    "BatchGetItem (account, market, situation): it is transmitted, the answer is its view",
                    "more than the one read a repeat needs",
                ),
            )
        };
        self.measure(f, repeat, |_| {
            situation_call(
                TRANSMIT,
                RHONE_SIRET,
                market,
                Some(1),
                Some(demo_body.clone()),
            )
        })
    }

    /// `shared::ubl::prepare` (checks + totals + XML) of a 200-line invoice: pure CPU.
    fn measure_prepare(&self) -> RouteResult {
        let invoice = fixtures::invoice(200);
        let options = ubl::CheckOptions {
            siret_check: shared::domain::SiretCheck::Full,
            max_total_file_bytes: ubl::MAX_TOTAL_FILE_BYTES,
            today: Some(time::OffsetDateTime::now_utc().date() + time::Duration::days(1)),
        };
        let mut unexpected = 0;
        let mut first_unexpected = None;
        let mut cpu = Vec::new();
        let mut wall = Vec::new();
        for i in 0..self.warmups + self.calls {
            let started = Instant::now();
            let before = crate::sys::thread_cpu();
            let prepared = ubl::prepare(std::hint::black_box(&invoice), &options);
            let used = crate::sys::thread_cpu().saturating_sub(before);
            let elapsed = started.elapsed();
            if let Err(violations) = &prepared {
                unexpected += 1;
                first_unexpected.get_or_insert_with(|| format!("{violations:?}"));
            }
            drop(std::hint::black_box(prepared));
            if i >= self.warmups {
                cpu.push(used);
                wall.push(elapsed);
            }
        }
        let result = RouteResult {
            function: "shared::ubl",
            label: "prepare(): check + totals + UBL XML, 200-line invoice (pure)".into(),
            target: Some(Duration::from_millis(2)),
            cpu: summarize(&cpu),
            own: summarize(&cpu),
            kernel_share: 0.0,
            wall: summarize(&wall),
            unexpected,
            first_unexpected,
            calls: None,
            minimum: None,
        };
        eprintln!(
            "  {:<18} {:<58} cpu median {:>7.1} µs  p99 {:>7.1} µs",
            result.function,
            result.label,
            result.cpu.median.as_secs_f64() * 1e6,
            result.cpu.p99.as_secs_f64() * 1e6,
        );
        result
    }
}

const VERIFY_MINIMUM: Minimum = min(
    2,
    1,
    1,
    "GetItem + TransactWriteItems (verdict + audit); GetSecretValue (the version the item names); one Chorus Pro call",
    "the verdict lost a race with another write (recorded again, and the account read for the answer)",
);

const NEW_COMPANY_MINIMUM: Minimum = min(
    2,
    1,
    0,
    "GetItem (is there an account?) + TransactWriteItems (account + audit); CreateSecret (its first version is AWSCURRENT at once)",
    "the secret existed (a deleted company's, restored) and its new version had to be promoted",
);

const DELETE_MINIMUM: Minimum = min(
    2,
    1,
    0,
    "GetItem (revision) + TransactWriteItems (delete + audit); DeleteSecret",
    "",
);

const CHECKED_MARKET_MINIMUM: Minimum = min(
    3,
    1,
    4,
    "GetItem account + GetItem market (in parallel) + TransactWriteItems (market + audit); GetSecretValue; Chorus Pro: structure search, structure read, service search, service read (a buyer that requires a service code)",
    "",
);

const TRANSMISSION_MINIMUM: Minimum = min(
    4,
    1,
    1,
    "BatchGetItem (account, market, situation) + BatchWriteItem (the invoice file, kept for retries) + UpdateItem (claim and lease: not_transmitted → depositing) + UpdateItem (→ deposited); GetSecretValue; one deposit",
    "more reads or writes than the claim-and-lease design needs",
);

/// The CPU target of a warm route: its handler's own share.
const ROUTE_TARGET: Option<Duration> = Some(Duration::from_micros(200));

/// A route held to [`ROUTE_TARGET`].
fn route(function: Function, label: &str, expected: u16, minimum: Minimum) -> Route<'_> {
    Route {
        function,
        label,
        expected,
        target: ROUTE_TARGET,
        minimum: Some(minimum),
    }
}

/// GET settings through the handler, then the same with logging off (a reference).
fn get_settings_probes(f: &Functions) -> Vec<Probe<'_>> {
    let get = move || settings_call(GET_SETTINGS, RHONE_SIRET, None).request();
    vec![
        Probe {
            function: "company-settings",
            label: "GET settings",
            target: ROUTE_TARGET,
            minimum: Some(min(1, 0, 0, "GetItem", "")),
            call: Box::new(move || {
                Box::pin(async move {
                    let response = f.handle(Function::Settings, get()).await;
                    response.status().as_u16() == 200
                })
            }),
        },
        Probe {
            function: "company-settings",
            label: "reference: GET settings with logging off",
            target: None,
            minimum: None,
            call: Box::new(move || {
                Box::pin(async move {
                    use tracing::instrument::WithSubscriber;
                    let response = f
                        .handle(Function::Settings, get())
                        .with_subscriber(tracing::subscriber::NoSubscriber::default())
                        .await;
                    response.status().as_u16() == 200
                })
            }),
        },
    ]
}

/// One SDK call alone, with no handler around it: a DynamoDB read, a Secrets Manager read
/// (references).
fn sdk_alone_probes<'a>(
    f: &'a Functions,
    siret: &'a shared::domain::Siret,
    version: &'a str,
) -> Vec<Probe<'a>> {
    vec![
        Probe {
            function: "aws-sdk-dynamodb",
            label: "reference: one GetItem alone (Store::get_account, no handler)",
            target: None,
            minimum: None,
            call: Box::new(move || {
                Box::pin(async move {
                    let found = f.settings.store.get_account(siret).await;
                    found.is_ok_and(|a| a.is_some())
                })
            }),
        },
        Probe {
            function: "aws-sdk-secretsmanager",
            label: "reference: one GetSecretValue alone (SecretStore::technical_account, no handler)",
            target: None,
            minimum: None,
            call: Box::new(move || {
                Box::pin(async move {
                    let secrets = &f.settings.secrets;
                    secrets.technical_account(siret, version).await.is_ok()
                })
            }),
        },
    ]
}
