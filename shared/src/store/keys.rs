//! The key layout of the single table, in one place.
//!
//! | item | PK | SK | GSI1PK | GSI1SK |
//! | --- | --- | --- | --- | --- |
//! | company account | `COMPANY#{siret}` | `ACCOUNT` | `REMINDER#{shard}` | `{next_reminder_on}#{siret}` |
//! | audit entry | `COMPANY#{siret}` | `AUDIT#{rfc3339}#{id}` | | |
//! | mail claim | `COMPANY#{siret}` | `MAIL#{password_version}#{mail}` | | |
//!
//! GSI1 is sparse: an account is in it only while it has a `next_reminder_on`, and the
//! reminder run reads `GSI1SK < {tomorrow}` in each shard, i.e. only what is due.
//!
//! The reminder partition is split in `REMINDER_SHARDS` by a stable hash of the SIRET:
//! every account write also writes its index entry, and a single GSI partition key takes
//! about 1,000 writes per second before the index throttles, which throttles the table
//! itself (a bulk onboarding, a mass password renewal). Eight keys lift that ceiling for
//! the cost of eight small queries per run.

use crate::clock::iso_date;
use crate::domain::Siret;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";

pub fn company_pk(siret: &Siret) -> String {
    format!("COMPANY#{siret}")
}

pub const ACCOUNT_SK: &str = "ACCOUNT";

pub fn audit_sk(at: &str, id: &str) -> String {
    format!("AUDIT#{at}#{id}")
}

pub const AUDIT_PREFIX: &str = "AUDIT#";

pub const REMINDER_SHARDS: u8 = 8;

/// FNV-1a of the SIRET: stable across builds and Rust versions (unlike `DefaultHasher`),
/// so an account stays in the shard it was written to.
pub fn reminder_shard(siret: &Siret) -> u8 {
    let hash = siret
        .as_str()
        .bytes()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    u8::try_from(hash % u32::from(REMINDER_SHARDS)).unwrap_or(0)
}

pub fn reminder_gsi1pk(shard: u8) -> String {
    format!("REMINDER#{shard}")
}

pub fn reminder_gsi1sk(on: time::Date, siret: &Siret) -> String {
    format!("{}#{siret}", iso_date(on))
}

/// Exclusive upper bound of what is due on `today`: `{date}#…` sorts before the next day.
pub fn reminder_due_before(today: time::Date) -> String {
    iso_date(today.next_day().unwrap_or(today))
}

/// One e-mail sent once per password version: `REMINDER#J-30`, `CREDENTIALS_REJECTED`.
pub fn mail_claim_sk(password_version: &str, mail: &str) -> String {
    format!("MAIL#{password_version}#{mail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SiretCheck;
    use time::macros::date;

    #[test]
    fn due_keys_sort_by_day() {
        let siret = Siret::parse("21750001600019", SiretCheck::Full).unwrap();
        let today = date!(2027 - 11 - 20);
        let bound = reminder_due_before(today);
        assert_eq!(bound, "2027-11-21");
        assert!(reminder_gsi1sk(today, &siret) < bound);
        assert!(reminder_gsi1sk(date!(2026 - 01 - 01), &siret) < bound);
        assert!(reminder_gsi1sk(date!(2027 - 11 - 21), &siret) > bound);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let siret = Siret::parse("21750001600019", SiretCheck::Full).unwrap();
        // Pinned: changing the hash would strand every indexed account in the wrong shard.
        assert_eq!(reminder_shard(&siret), reminder_shard(&siret.clone()));
        let expected = siret
            .as_str()
            .bytes()
            .fold(2_166_136_261_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619))
            % 8;
        assert_eq!(u32::from(reminder_shard(&siret)), expected);
        let mut counts = [0usize; REMINDER_SHARDS as usize];
        for n in 0..8000u32 {
            let raw = crate::domain::siret::with_luhn_key(&format!("{:013}", 1_000_000_000 + n)).unwrap();
            let s = Siret::parse(&raw, SiretCheck::Full).unwrap();
            counts[usize::from(reminder_shard(&s))] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }
}
