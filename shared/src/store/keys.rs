//! The key layout of the single table, in one place.
//!
//! | item | PK | SK | GSI1PK | GSI1SK |
//! | --- | --- | --- | --- | --- |
//! | company account | `COMPANY#{siret}` | `ACCOUNT` | `REMINDER#{shard}` | `{next_reminder_on}#{siret}` |
//! | audit entry | `COMPANY#{siret}` | `AUDIT#{rfc3339 with nanoseconds}#{id}` | | |
//! | mail claim | `COMPANY#{siret}` | `MAIL#{password_version}#{mail}` | | |
//! | market | `COMPANY#{siret}` | `MARKET#{market_ref}` | | |
//! | situation | `COMPANY#{siret}` | `SITUATION#{market_ref}#{number:03}` | | |
//! | invoice number guard | `COMPANY#{siret}` | `INVOICE_NUMBER#{NUMBER IN CAPITALS}` | | |
//! | (situation in follow-up) | | | `SYNC#{shard}` | `{next_check_at}#{siret}#{market_ref}#{number:03}` |
//! | invoice file chunk | `COMPANY#{siret}` | `PAYLOAD#{owner}#{payload_id}#{chunk:03}` | | |
//! | uploaded document | `COMPANY#{siret}` | `DOCUMENT#{document_id}` | | |
//! | event of an account change | `COMPANY#{siret}` | `EVENT#{id}` | | |
//! | company follow-up (lease, watermark, open invoices) | `COMPANY#{siret}` | `FOLLOW` | `FOLLOW#{shard}` | `{next_look_at}#{siret}` |
//!
//! Two more sparse indexes, keyed like GSI1 (`GSI2PK`/`GSI2SK`, `GSI3PK`/`GSI3SK`):
//!
//! | index | who is in it | PK | SK |
//! | --- | --- | --- | --- |
//! | GSI2 | a situation whose payment clock runs (started, not paid, overdue mail not yet sent) | `DUE#{shard}` | `{due_on}#{siret}#{market_ref}#{number:03}` |
//! | GSI3 | an item with events not yet published (`outbox`) | `OUTBOX#{shard}` | `{first event at}#{siret}` |
//!
//! Markets and situations have separate prefixes so that listing the markets reads no
//! situation. A market reference cannot contain `#`, so `SITUATION#{market_ref}#` selects
//! one market's situations exactly, in number order (zero-padded). The guard item makes an
//! invoice number unique within a company: it is written with `attribute_not_exists` in the
//! same transaction as the situation that takes the number (see `store::situation`).
//!
//! GSI1 is sparse: an account is in it only while it has a `next_reminder_on`, and the
//! reminder run reads `GSI1SK < {tomorrow}` in each shard, i.e. only what is due.
//!
//! The reminder partition is split in `REMINDER_SHARDS` by a stable hash of the SIRET:
//! every account write also writes its index entry, and a single GSI partition key takes
//! about 1,000 writes per second before the index throttles, which throttles the table
//! itself (a bulk onboarding, a mass password renewal). Four keys lift that ceiling to
//! about 4,000 per second, far above this system's needs, for the cost of four small
//! queries per run.

use crate::clock::iso_date;
use crate::domain::{InvoiceNumber, MarketRef, Siret, SituationNumber};

pub const PK: &str = "PK";
pub const SK: &str = "SK";

/// The key of a company's item: `PK` the company, `SK` the item's.
pub(crate) fn company_item(siret: &Siret, sk: String) -> super::item::Item {
    [
        (PK.to_owned(), super::item::s(company_pk(siret))),
        (SK.to_owned(), super::item::s(sk)),
    ]
    .into()
}
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";

pub fn company_pk(siret: &Siret) -> String {
    format!("COMPANY#{siret}")
}

pub const ACCOUNT_SK: &str = "ACCOUNT";

/// An uploaded document (`domain::document`); the id is 32 hex digits.
pub fn document_sk(document_id: &str) -> String {
    format!("DOCUMENT#{document_id}")
}

/// Nanoseconds in the key, zero-padded, so that entries of the same second sort in the
/// order they were written (the `id` only breaks exact ties).
pub fn audit_sk(at: time::OffsetDateTime, id: &str) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let stamp = at
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
        ))
        .unwrap_or_default();
    format!("AUDIT#{stamp}#{id}")
}

pub const AUDIT_PREFIX: &str = "AUDIT#";

pub const REMINDER_SHARDS: u8 = 4;

/// FNV-1a of the SIRET: stable across builds and Rust versions (unlike `DefaultHasher`),
/// so an account stays in the shard it was written to.
pub fn reminder_shard(siret: &Siret) -> u8 {
    let hash = siret.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
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

pub const MARKET_PREFIX: &str = "MARKET#";

pub fn market_sk(market_ref: &MarketRef) -> String {
    format!("{MARKET_PREFIX}{market_ref}")
}

/// The prefix of every situation SK of the company (the company-wide list).
pub const SITUATION_PREFIX: &str = "SITUATION#";

/// The prefix of every situation SK of one market.
pub fn situations_prefix(market_ref: &MarketRef) -> String {
    format!("SITUATION#{market_ref}#")
}

pub fn situation_sk(market_ref: &MarketRef, number: SituationNumber) -> String {
    format!("{}{:03}", situations_prefix(market_ref), number.get())
}

/// Case-folded (`InvoiceNumber::uniqueness_key`): `sit-1` and `SIT-1` share one guard.
pub fn invoice_number_sk(number: &InvoiceNumber) -> String {
    format!("INVOICE_NUMBER#{}", number.uniqueness_key())
}

/// The follow-up index is sharded like the reminders' (same reasons, same hash).
pub const SYNC_SHARDS: u8 = REMINDER_SHARDS;

pub fn sync_shard(siret: &Siret) -> u8 {
    reminder_shard(siret)
}

pub fn sync_gsi1pk(shard: u8) -> String {
    format!("SYNC#{shard}")
}

pub fn sync_gsi1sk(
    due: time::OffsetDateTime,
    siret: &Siret,
    market_ref: &MarketRef,
    number: SituationNumber,
) -> String {
    format!(
        "{}#{siret}#{market_ref}#{:03}",
        crate::clock::rfc3339(due),
        number.get()
    )
}

/// Exclusive bound of what is due at `now` (RFC 3339 UTC sorts as time).
pub fn sync_due_before(now: time::OffsetDateTime) -> String {
    format!("{}#~", crate::clock::rfc3339(now))
}

pub const GSI2: &str = "GSI2";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";
pub const GSI3: &str = "GSI3";
pub const GSI3PK: &str = "GSI3PK";
pub const GSI3SK: &str = "GSI3SK";

/// The payment index is sharded like the follow-up's.
pub fn due_gsi2pk(siret: &Siret) -> String {
    format!("DUE#{}", sync_shard(siret))
}

pub fn due_shard_pk(shard: u8) -> String {
    format!("DUE#{shard}")
}

pub fn due_gsi2sk(
    due_on: time::Date,
    siret: &Siret,
    market_ref: &MarketRef,
    number: SituationNumber,
) -> String {
    format!(
        "{}#{siret}#{market_ref}#{:03}",
        iso_date(due_on),
        number.get()
    )
}

/// Exclusive bound of the situations whose deadline passed before `today` (their first
/// late day is today or earlier).
pub fn overdue_before(today: time::Date) -> String {
    iso_date(today)
}

pub const OUTBOX_SHARDS: u8 = REMINDER_SHARDS;

pub fn outbox_shard_pk(shard: u8) -> String {
    format!("OUTBOX#{shard}")
}

pub fn outbox_gsi3pk(siret: &Siret) -> String {
    outbox_shard_pk(reminder_shard(siret))
}

pub fn outbox_gsi3sk(first_at: time::OffsetDateTime, siret: &Siret) -> String {
    format!("{}#{siret}", crate::clock::rfc3339(first_at))
}

pub fn event_sk(id: &str) -> String {
    format!("EVENT#{id}")
}

/// The company follow-up item (`store::follow`): one per company that status-sync visited.
pub const FOLLOW_SK: &str = "FOLLOW";

/// Companies to search for changes are spread over more keys than the situations: every
/// run reads each of them (one small query each), and 8 keys keep a month-end's looks
/// well below one partition's limits.
pub const FOLLOW_SHARDS: u8 = 8;

pub fn follow_shard(siret: &Siret) -> u8 {
    let hash = siret.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    u8::try_from(hash % u32::from(FOLLOW_SHARDS)).unwrap_or(0)
}

pub fn follow_gsi1pk(shard: u8) -> String {
    format!("FOLLOW#{shard}")
}

pub fn follow_gsi1sk(next_look_at: time::OffsetDateTime, siret: &Siret) -> String {
    format!("{}#{siret}", crate::clock::rfc3339(next_look_at))
}

/// `owner` is the situation the file belongs to (`{market_ref}#{number:03}`).
pub fn payload_prefix(owner: &str, payload_id: &str) -> String {
    format!("PAYLOAD#{owner}#{payload_id}#")
}

pub fn payload_chunk_sk(owner: &str, payload_id: &str, chunk: usize) -> String {
    format!("{}{chunk:03}", payload_prefix(owner, payload_id))
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
    fn audit_entries_of_one_second_sort_in_time_order() {
        use time::macros::datetime;
        let a = audit_sk(datetime!(2026-11-27 10:00:00.9 UTC), "ffff");
        let b = audit_sk(datetime!(2026-11-27 10:00:00.95 UTC), "0000");
        let c = audit_sk(datetime!(2026-11-27 10:00:01 UTC), "0000");
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(c, "AUDIT#2026-11-27T10:00:01.000000000Z#0000");
    }

    #[test]
    fn identifier_keys() {
        let m = MarketRef::parse("M-1").unwrap();
        let n = SituationNumber::new(3).unwrap();
        assert_eq!(market_sk(&m), "MARKET#M-1");
        assert_eq!(situation_sk(&m, n), "SITUATION#M-1#003");
        assert!(situation_sk(&m, n).starts_with(&situations_prefix(&m)));
        // Another market whose reference starts the same is not selected.
        let longer = MarketRef::parse("M-1.b").unwrap();
        assert!(!situation_sk(&longer, n).starts_with(&situations_prefix(&m)));
        // Numbers sort in order.
        assert!(situation_sk(&m, n) < situation_sk(&m, SituationNumber::new(10).unwrap()));
        assert_eq!(
            invoice_number_sk(&InvoiceNumber::parse("sit 2026/3").unwrap()),
            "INVOICE_NUMBER#SIT 2026/3"
        );
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let siret = Siret::parse("21750001600019", SiretCheck::Full).unwrap();
        // Pinned: changing the hash would strand every indexed account in the wrong shard.
        assert_eq!(reminder_shard(&siret), 3);
        assert_eq!(
            reminder_shard(&Siret::parse("73282932000074", SiretCheck::Full).unwrap()),
            2
        );
        let mut counts = [0usize; REMINDER_SHARDS as usize];
        for n in 0..8000u32 {
            let raw =
                crate::domain::siret::with_luhn_key(&format!("{:013}", 1_000_000_000 + n)).unwrap();
            let s = Siret::parse(&raw, SiretCheck::Full).unwrap();
            counts[usize::from(reminder_shard(&s))] += 1;
        }
        assert!(
            counts.iter().all(|&c| (1800..2200).contains(&c)),
            "{counts:?}"
        );
    }
}
