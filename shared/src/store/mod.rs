//! DynamoDB single-table storage. Every key shape lives in `keys`; items carry explicit
//! attribute names, an `entity` attribute and ISO dates so operators can read them in the
//! console. Writes are conditional: nothing is overwritten that was not read.

pub mod account;
pub mod company;
pub mod document;
pub mod follow;
pub mod item;
pub mod keys;
pub mod market;
pub mod outbox;
pub mod overdue;
pub mod payload;
pub mod reminder;
mod sharded;
pub mod situation;
pub mod transmission;

use aws_sdk_dynamodb::Client;

pub use account::{AuditEntry, Verification};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item changed since it was read.
    #[error("conflict: the item changed since it was read")]
    Conflict,
    /// An item that cannot be read back into the domain (hand-edited, or a bug).
    #[error("corrupt item {key}: {problem}")]
    Corrupt { key: String, problem: String },
    #[error("dynamodb: {0}")]
    Aws(String),
    /// A transmission move the state machine does not allow (a bug, never input).
    #[error("transmission cannot go from {from} to {to}")]
    IllegalTransition {
        from: &'static str,
        to: &'static str,
    },
}

#[derive(Clone, Debug)]
pub struct Store {
    client: crate::aws::LazyClient<Client>,
    table: String,
    /// Where the outbox's events go; without it, no event is written (`store::outbox`).
    events: Option<outbox::EventSink>,
}

impl Store {
    pub fn new(
        client: impl Into<crate::aws::LazyClient<Client>>,
        table: impl Into<String>,
    ) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
            events: None,
        }
    }

    /// Changes write their events to the outbox and publish them to `sink`.
    pub fn with_events(mut self, sink: Option<outbox::EventSink>) -> Self {
        self.events = sink;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The item of this key, read strongly consistent: a write is visible to the next read.
    pub(crate) async fn read_item(
        &self,
        key: item::Item,
    ) -> Result<Option<item::Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Aws(crate::aws::error_text(&e)))?;
        Ok(out.item)
    }
}
