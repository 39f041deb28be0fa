//! Reading typed values out of a DynamoDB item, with errors naming the item and attribute.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::StoreError;
use crate::clock::parse_rfc3339;

pub type Item = HashMap<String, AttributeValue>;

pub struct ItemReader<'a> {
    pub key: String,
    pub item: &'a Item,
}

impl<'a> ItemReader<'a> {
    pub fn new(item: &'a Item) -> Self {
        let key = format!(
            "{}/{}",
            item.get(super::keys::PK)
                .and_then(|v| v.as_s().ok())
                .map_or("?", String::as_str),
            item.get(super::keys::SK)
                .and_then(|v| v.as_s().ok())
                .map_or("?", String::as_str)
        );
        Self { key, item }
    }

    pub fn corrupt(&self, problem: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            key: self.key.clone(),
            problem: problem.into(),
        }
    }

    pub fn opt_s(&self, name: &str) -> Option<&'a str> {
        self.item
            .get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }

    pub fn s(&self, name: &str) -> Result<&'a str, StoreError> {
        self.opt_s(name)
            .ok_or_else(|| self.corrupt(format!("missing string attribute {name}")))
    }

    pub fn n(&self, name: &str) -> Result<u64, StoreError> {
        self.item
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| self.corrupt(format!("missing number attribute {name}")))
    }

    pub fn time(&self, name: &str) -> Result<OffsetDateTime, StoreError> {
        parse_rfc3339(self.s(name)?).ok_or_else(|| self.corrupt(format!("bad timestamp in {name}")))
    }

    pub fn opt_time(&self, name: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        match self.opt_s(name) {
            None => Ok(None),
            Some(t) => parse_rfc3339(t)
                .map(Some)
                .ok_or_else(|| self.corrupt(format!("bad timestamp in {name}"))),
        }
    }

    /// A number attribute that may be absent.
    pub fn opt_n<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(v) => v
                .as_n()
                .ok()
                .and_then(|n| n.parse().ok())
                .map(Some)
                .ok_or_else(|| self.corrupt(format!("bad number in {name}"))),
        }
    }

    /// A boolean attribute; absent is `false`.
    pub fn flag(&self, name: &str) -> bool {
        self.item
            .get(name)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false)
    }

    /// A string attribute parsed into a domain type.
    pub fn parsed<T, E>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        parse(self.s(name)?).map_err(|_| self.corrupt(format!("invalid value in {name}")))
    }
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
