//! Reading Chorus Pro's answers liberally: the one set of serde helpers every answer type
//! uses (`#[serde(deserialize_with = "lenient::…")]`), so a field is never fixed alone.
//!
//! What the sources show for the same field (issue 19):
//!
//! - identifiers and SIRETs: a JSON **number** in AIFE's published examples
//!   (`"identifiantStructure": 99999999999999` in `structures/v1/rechercher`), a string in
//!   other published examples and in client libraries' fixtures → [`text`] /
//!   [`opt_text`] (to `String`), [`siret`] / [`opt_siret`] (a number shorter than 14 digits
//!   gets its leading zeros back), [`number`] / [`opt_number`] (to `i64`, a numeric string
//!   accepted);
//! - every `liste…`: a single **object** in a published example (`listeErreurDP` of
//!   `consulterCRDetaille`), a list in client libraries; absent or `null` too → [`list`];
//! - dates: `2016-01-01` (go-choruspro `Date`), `2018-04-19 11:08` (go-choruspro
//!   `Datetime`, `dateDbtService`), `2018-02-16T15:10:25.536+01:00` (published
//!   examples), `2016-01-01T10:00:00.000+0100` (offset without colon), and epoch
//!   milliseconds as a number (Java serialisers' default) → [`opt_date`] keeps the text
//!   (a number becomes RFC 3339), [`parse_datetime`] reads any of them;
//! - booleans: `true` or `"true"` → [`flag`].
//!
//! `null` is read as "absent" everywhere. Errors name what was expected, never the value.

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Length of a SIRET; a SIRET sent as a number has lost its leading zeros.
const SIRET_DIGITS: usize = 14;

/// A scalar read as text: string as is, integer in decimal, `null` as `None`.
struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or a number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // An identifier beyond 2^53 may come as a float: keep its integral digits.
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e19 {
            Ok(Some(format!("{v:.0}")))
        } else {
            Err(E::custom("a string or an integer, got a fractional number"))
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// An identifier or code, string or number; `null` gives `""`.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_text(d)?.unwrap_or_default())
}

/// An optional identifier or code, string or number.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(TextVisitor)
}

/// A SIRET (or another structure identifier), string or number; a number of fewer than 14
/// digits is a SIRET that lost its leading zeros, which are put back.
pub fn siret<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_siret(d)?.unwrap_or_default())
}

/// An optional SIRET, see [`siret`].
pub fn opt_siret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct SiretVisitor;
    impl<'de> Visitor<'de> for SiretVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a SIRET as a string or a number")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(format!("{v:0SIRET_DIGITS$}")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Ok(Some(v.to_string())),
            }
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            TextVisitor.visit_f64(v)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(SiretVisitor)
        }
    }
    d.deserialize_any(SiretVisitor)
}

/// A numeric identifier (`idStructureCPP`, `idService`, …), number or numeric string;
/// `null` gives 0.
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(opt_number(d)?.unwrap_or_default())
}

/// An optional numeric identifier, number or numeric string (an empty string is absent).
pub fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match d.deserialize_any(TextVisitor)? {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom("an integer identifier, got other text")),
    }
}

/// A `liste…`: a list, a single object (one element), absent or `null` (empty).
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        one => vec![one],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            serde_path_to_error::deserialize(item)
                .map_err(|e| de::Error::custom(format!("[{index}].{}", describe_error(&e))))
        })
        .collect()
}

/// A boolean, `true` or `"true"` (any case); `null` is `false`.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Null => Ok(false),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") || s.trim().is_empty() => {
            Ok(false)
        }
        Value::Number(n) => Ok(n.as_i64().is_some_and(|n| n != 0)),
        _ => Err(de::Error::custom("a boolean")),
    }
}

/// A date or date-time, kept as the text Chorus Pro sent; epoch milliseconds (a number)
/// become RFC 3339 (UTC). Read it with [`parse_datetime`].
pub fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => {
            let millis = n
                .as_i64()
                .ok_or_else(|| de::Error::custom("a date as text or epoch milliseconds"))?;
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                .map_err(|_| de::Error::custom("epoch milliseconds out of range"))?;
            at.format(&Rfc3339)
                .map(Some)
                .map_err(|_| de::Error::custom("epoch milliseconds out of range"))
        }
        _ => Err(de::Error::custom("a date as text or epoch milliseconds")),
    }
}

/// An amount sent as a JSON number (`1000.5`) or as text (`"1000.50"`), kept as text; `null`
/// or blank text is `None`, anything else (an object, a list, a flag) is an unreadable answer.
pub fn opt_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.trim().to_owned())),
        _ => Err(de::Error::custom("an amount as a number or as text")),
    }
}

/// Reads a Chorus Pro date or date-time in any of the forms listed in the module
/// documentation. A form without offset is taken as Paris time in winter (UTC+1), the
/// platform's; a bare date is midnight.
pub fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let millis: i64 = text.parse().ok()?;
        return OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok();
    }
    // `2016-01-01T10:00:00.000+0100`, `…+01`: an offset without colon.
    let offset_forms = [
        format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
        ),
        format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
        ),
    ];
    if let Some(at) = offset_forms
        .iter()
        .find_map(|form| OffsetDateTime::parse(text, form).ok())
    {
        return Some(at);
    }
    let paris = UtcOffset::from_hms(1, 0, 0).ok()?;
    let local_forms = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ];
    if let Some(at) = local_forms
        .iter()
        .find_map(|form| PrimitiveDateTime::parse(text, form).ok())
    {
        return Some(at.assume_offset(paris));
    }
    let date = Date::parse(text, format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_offset(paris))
}

/// The serde error of an unreadable answer, fit for logs and error text: where in the
/// answer (`listeStructures[0].identifiantStructure`) and what was expected, with the
/// value itself left out (answers are not logged).
pub fn describe_error(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let message = redact_values(&error.inner().to_string());
    let at = error.path().to_string();
    if at.is_empty() || at == "." {
        message
    } else {
        format!("{at}: {message}")
    }
}

/// `invalid type: integer `99999999999999`, expected a string` →
/// `invalid type: integer, expected a string` (the same for `invalid value:`).
fn redact_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(end) = rest.find(", expected")
        {
            let found = &rest[..end];
            let kind = found.split(['`', '"']).next().unwrap_or(found).trim_end();
            return format!("{prefix}{kind}{}", &rest[end..]);
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    struct Sample {
        #[serde(deserialize_with = "text")]
        code: String,
        #[serde(deserialize_with = "opt_siret")]
        siret: Option<String>,
        #[serde(deserialize_with = "number")]
        id: i64,
        #[serde(deserialize_with = "list")]
        items: Vec<Item>,
        #[serde(deserialize_with = "opt_date")]
        at: Option<String>,
        #[serde(deserialize_with = "flag")]
        active: bool,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Item {
        n: i64,
    }

    fn read(value: Value) -> Sample {
        serde_json::from_value(value).unwrap()
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default)]
    struct Amounts {
        #[serde(deserialize_with = "opt_amount")]
        amount: Option<String>,
    }

    #[test]
    fn amounts_as_numbers_or_text_and_nothing_else() {
        let read = |v: Value| serde_json::from_value::<Amounts>(json!({ "amount": v }));
        assert_eq!(
            read(json!(1000.5)).unwrap().amount.as_deref(),
            Some("1000.5")
        );
        assert_eq!(
            read(json!(" 1000.50 ")).unwrap().amount.as_deref(),
            Some("1000.50")
        );
        assert_eq!(read(json!(null)).unwrap().amount, None);
        assert_eq!(read(json!("  ")).unwrap().amount, None);
        for unreadable in [json!({"value": 1}), json!([1]), json!(true)] {
            assert!(read(unreadable.clone()).is_err(), "{unreadable}");
        }
    }

    #[test]
    fn identifiers_as_numbers_or_strings() {
        let s = read(json!({"code": 99999999999999_u64, "siret": 1234567800012_u64, "id": "42"}));
        assert_eq!(s.code, "99999999999999");
        assert_eq!(s.siret.as_deref(), Some("01234567800012"));
        assert_eq!(s.id, 42);
        let s = read(json!({"code": "SERVICE", "siret": "21690123100011", "id": 7}));
        assert_eq!((s.code.as_str(), s.id), ("SERVICE", 7));
        assert_eq!(s.siret.as_deref(), Some("21690123100011"));
        let s = read(json!({"code": null, "siret": null, "id": null}));
        assert_eq!((s.code.as_str(), s.siret, s.id), ("", None, 0));
        assert!(serde_json::from_value::<Sample>(json!({"id": "abc"})).is_err());
    }

    #[test]
    fn lists_as_one_object_a_list_null_or_absent() {
        assert_eq!(read(json!({"items": {"n": 1}})).items, vec![Item { n: 1 }]);
        assert_eq!(
            read(json!({"items": [{"n": 1}, {"n": 2}]})).items,
            vec![Item { n: 1 }, Item { n: 2 }]
        );
        assert!(read(json!({"items": null})).items.is_empty());
        assert!(read(json!({})).items.is_empty());
    }

    #[test]
    fn dates_in_every_published_form() {
        let s = read(json!({"at": 1_451_642_400_000_i64}));
        assert_eq!(s.at.as_deref(), Some("2016-01-01T10:00:00Z"));
        let expected = parse_datetime("2016-01-01T10:00:00+01:00").unwrap();
        for form in [
            "2016-01-01T10:00:00.000+0100",
            "2016-01-01T10:00:00+0100",
            "2016-01-01T09:00:00Z",
            "2016-01-01 10:00",
            "2016-01-01 10:00:00",
            "2016-01-01T10:00:00.000",
            "1451638800000",
        ] {
            assert_eq!(parse_datetime(form), Some(expected), "{form}");
        }
        assert_eq!(
            parse_datetime("2016-01-01"),
            parse_datetime("2016-01-01T00:00:00+01:00")
        );
        assert_eq!(parse_datetime("hier"), None);
    }

    #[test]
    fn flags_as_booleans_or_text() {
        assert!(read(json!({"active": "true"})).active);
        assert!(!read(json!({"active": "FALSE"})).active);
        assert!(read(json!({"active": true})).active);
    }

    #[test]
    fn errors_say_where_and_what_without_the_value() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Strict {
            name: String,
        }
        let value = json!({"name": 1234567890123_u64});
        let error = serde_path_to_error::deserialize::<_, Strict>(value).unwrap_err();
        let text = describe_error(&error);
        assert_eq!(text, "name: invalid type: integer, expected a string");
        assert!(!text.contains("1234567890123"));
    }
}
