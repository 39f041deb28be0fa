//! The data of the cold starts (section 3) and of the burst (section 5), written through
//! the handlers into a small staging table and moved where it is used (see
//! [`InProcess::staged`]).

use gateway_tests::testkit::random_siret;

use super::{
    Function, Functions, InProcess, PUT_MARKET, PUT_SETTINGS, PUT_SITUATION, market_call, rhone,
    settings_call, situation_call,
};
use crate::fixtures::{self, RHONE_LOGIN, RHONE_PASSWORD, RHONE_SIRET};

/// The staging table, and the data of the cold-start runs and of the burst, written through
/// the same handlers (untimed).
impl InProcess {
    /// Runs `write` against the staging functions, then copies the accounts, markets and
    /// situations it wrote into `target`: the items are the handlers' own, and no
    /// transaction ever meets a big table. Accounts and markets stay in staging when
    /// `keep_parents` (the next situations need them); everything else leaves it.
    pub fn staged(
        &self,
        staging: &Functions,
        target: &str,
        keep_parents: bool,
        write: impl FnOnce(&Functions) -> Result<(), String>,
    ) -> Result<(), String> {
        write(staging)?;
        self.rt.block_on(move_items(
            &self.ddb,
            &staging.table,
            Some(target),
            keep_parents,
        ))
    }

    /// Empties the staging table.
    pub(super) fn clear(&self, staging: &Functions) -> Result<(), String> {
        self.rt
            .block_on(move_items(&self.ddb, &staging.table, None, false))
    }

    /// The seeded supplier's settings (checked in Chorus Pro), in a new table.
    pub fn cold_settings(&self, table: &str) -> Result<Functions, String> {
        let f = self.functions(table)?;
        self.expect(
            &f,
            Function::Settings,
            &settings_call(PUT_SETTINGS, RHONE_SIRET, rhone(Some(RHONE_PASSWORD), true)),
            201,
        )?;
        Ok(f)
    }

    /// The settings and `markets`, each with `situations` situations ready to transmit.
    pub fn cold_markets(
        &self,
        table: &str,
        run: &str,
        markets: &[&str],
        situations: usize,
    ) -> Result<Functions, String> {
        let f = self.cold_settings(table)?;
        for (i, market) in markets.iter().enumerate() {
            let number = format!("2026-TRV-02{i}");
            self.expect(
                &f,
                Function::Identifiers,
                &market_call(
                    PUT_MARKET,
                    RHONE_SIRET,
                    market,
                    Some(fixtures::market(&number)),
                ),
                201,
            )?;
            for n in 1..=situations {
                let invoice = format!("C{i}{run}-{n:03}");
                self.expect(
                    &f,
                    Function::Identifiers,
                    &situation_call(
                        PUT_SITUATION,
                        RHONE_SIRET,
                        market,
                        Some(n),
                        Some(fixtures::situation(&invoice)),
                    ),
                    201,
                )?;
            }
        }
        Ok(f)
    }

    /// Moves the transmissions of `market` to due now, as if the two minutes before their
    /// first follow-up had passed (the follow-up's own rescheduling write).
    pub fn make_due(&self, f: &Functions, market: &str, count: usize) -> Result<usize, String> {
        let store = &f.transmit.store;
        let siret = shared::domain::Siret::parse(RHONE_SIRET, shared::domain::SiretCheck::Full)
            .map_err(|e| format!("{e:?}"))?;
        let market_ref = shared::domain::MarketRef::parse(market).map_err(|e| format!("{e:?}"))?;
        let now = time::OffsetDateTime::now_utc();
        let mut moved = 0;
        for n in 1..=count {
            let number = shared::domain::SituationNumber::parse(&n.to_string())
                .map_err(|e| format!("{e:?}"))?;
            let tracked = self
                .rt
                .block_on(store.get_tracked(&siret, &market_ref, number))
                .map_err(|e| e.to_string())?;
            let Some(tracked) = tracked else { continue };
            let state = tracked.situation.transmission.state;
            self.rt
                .block_on(
                    store.transition(
                        &tracked,
                        state,
                        state,
                        shared::store::transmission::Change::default()
                            .due(now - time::Duration::seconds(1)),
                        now,
                    ),
                )
                .map_err(|e| e.to_string())?;
            moved += 1;
        }
        Ok(moved)
    }

    /// A new table with `count` companies whose password reaches its first reminder (J-30)
    /// today.
    pub fn cold_reminders(
        &self,
        table: &str,
        run: &str,
        count: usize,
    ) -> Result<Functions, String> {
        use shared::domain::{
            CompanyAccount, CredentialsStatus, Email, Environment, Siret, SiretCheck,
            TechnicalLogin,
        };
        let f = self.functions(table)?;
        let now = time::OffsetDateTime::now_utc();
        let set_at = now - time::Duration::days(335);
        for i in 0..count {
            let siret =
                Siret::parse(&random_siret(), SiretCheck::Full).map_err(|e| format!("{e:?}"))?;
            let account = CompanyAccount {
                technical_login: TechnicalLogin::parse(&format!("TECH_{siret}@cpp2017.fr"))
                    .map_err(|e| format!("{e:?}"))?,
                referent_email: Email::parse(&format!("bench-{run}-{i}@entreprise-test.fr"))
                    .map_err(|e| format!("{e:?}"))?,
                siret: siret.clone(),
                environment: Environment::Production,
                password_set_at: set_at,
                password_version: uuid::Uuid::new_v4().to_string(),
                credentials_status: CredentialsStatus::Valid,
                verified_at: Some(set_at),
                created_at: set_at,
                updated_at: set_at,
                revision: 1,
                next_reminder_on: Some(now.date()),
                chorus_structure_id: None,
                notify_overdue: true,
            };
            let audit = shared::store::AuditEntry {
                at: set_at,
                actor: "bench".into(),
                action: "account_created".into(),
                fields: Vec::new(),
            };
            self.rt
                .block_on(f.settings.store.save_account(&account, None, &audit))
                .map_err(|e| e.to_string())?;
        }
        Ok(f)
    }

    /// Settings (verify=false, the seeded technical account), one checked market and
    /// `situations` situations for each company, each company staged then moved into
    /// `target`. Returns the SIRETs.
    pub fn burst_companies(
        &self,
        target: &str,
        staging: &str,
        run: &str,
        companies: &[String],
        situations: usize,
    ) -> Result<(), String> {
        let staging = self.functions(staging)?;
        for siret in companies {
            self.staged(&staging, target, false, |st| {
                self.expect(
                    st,
                    Function::Settings,
                    &settings_call(
                        PUT_SETTINGS,
                        siret,
                        Some(fixtures::settings(
                            "compta@entreprise-test.fr",
                            RHONE_LOGIN,
                            Some(RHONE_PASSWORD),
                            false,
                        )),
                    ),
                    201,
                )?;
                self.expect(
                    st,
                    Function::Identifiers,
                    &market_call(
                        PUT_MARKET,
                        siret,
                        "fin-de-mois",
                        Some(fixtures::market("2026-TRV-100")),
                    ),
                    201,
                )?;
                for k in 1..=situations {
                    let number = format!("B{run}-{k:02}");
                    self.expect(
                        st,
                        Function::Identifiers,
                        &situation_call(
                            PUT_SITUATION,
                            siret,
                            "fin-de-mois",
                            Some(k),
                            Some(fixtures::situation(&number)),
                        ),
                        201,
                    )?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Copies every item of `from` into `to` (Scan, BatchWriteItem) and removes them from
/// `from`, but for accounts and markets when `keep_parents`.
async fn move_items(
    ddb: &aws_sdk_dynamodb::Client,
    from: &str,
    to: Option<&str>,
    keep_parents: bool,
) -> Result<(), String> {
    let items = scan_all(ddb, from).await?;
    for chunk in items.chunks(25) {
        let puts = copies(chunk)?;
        if let Some(to) = to.filter(|_| !puts.is_empty()) {
            write_batch(ddb, to, puts).await?;
        }
        write_batch(ddb, from, deletions(chunk, keep_parents)?).await?;
    }
    Ok(())
}

/// Every item of `table`, page after page.
async fn scan_all(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("scan {table}: {}", shared::aws::error_text(&e)))?;
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// One BatchWriteItem, with its unprocessed items sent again (10 tries).
async fn write_batch(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> Result<(), String> {
    let mut pending = requests;
    for _ in 0..10 {
        if pending.is_empty() {
            return Ok(());
        }
        let out = ddb
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await
            .map_err(|e| format!("batch write {table}: {}", shared::aws::error_text(&e)))?;
        pending = out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
    }
    Err(format!("batch write {table}: items left unprocessed"))
}

fn sort_key(item: &Item) -> &str {
    item.get("SK")
        .and_then(|v| v.as_s().ok())
        .map_or("", |s| s.as_str())
}

/// The puts that copy the items the measured paths read: moto's Query reads the whole
/// table, so audit entries and invoice-number guards would only slow it down.
fn copies(chunk: &[Item]) -> Result<Vec<aws_sdk_dynamodb::types::WriteRequest>, String> {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    chunk
        .iter()
        .filter(|item| {
            let sk = sort_key(item);
            sk == "ACCOUNT" || sk.starts_with("MARKET#") || sk.starts_with("SITUATION#")
        })
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item.clone()))
                .build()
                .map(|p| WriteRequest::builder().put_request(p).build())
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The deletes that empty the chunk from its table, but for accounts and markets when
/// `keep_parents`.
fn deletions(
    chunk: &[Item],
    keep_parents: bool,
) -> Result<Vec<aws_sdk_dynamodb::types::WriteRequest>, String> {
    use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
    chunk
        .iter()
        .filter(|item| {
            let sk = sort_key(item);
            !(keep_parents && (sk == "ACCOUNT" || sk.starts_with("MARKET#")))
        })
        .map(|item| {
            let key = item
                .iter()
                .filter(|(k, _)| *k == "PK" || *k == "SK")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .map_err(|e| e.to_string())
        })
        .collect()
}
