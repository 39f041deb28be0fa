//! The exact bytes of an invoice to deposit, kept until its deposit is settled so that a
//! retry (after a lost answer, a Chorus Pro outage or a password renewal) deposits the same
//! file. A DynamoDB item holds at most 400 KB, so the bytes are cut into chunks of one
//! partition (`PAYLOAD#{market}#{number}#{payload_id}#{chunk}`), written before the
//! transmission record names them and read back with one query.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use super::item::{Item, n, s};
use super::keys::{self, PK, SK};
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::domain::Siret;

/// Below the 400 KB item limit with room for keys and attributes.
pub const CHUNK_BYTES: usize = 350 * 1024;
/// BatchWriteItem takes at most 25 requests; 11 chunks (3.8 MB, 5.1 MB once in the
/// request's base64) keep a large invoice's write from tripling it in memory, while an
/// ordinary invoice still goes in one call.
const BATCH: usize = 11;

impl Store {
    /// Stores `bytes` under `payload_id`; `expires_at_epoch` lets the table's TTL remove
    /// the chunks once nothing can need them. One batch's items are built at a time and
    /// handed to the SDK, not copied: a 10 MB invoice is not held twice more.
    pub async fn put_payload(
        &self,
        siret: &Siret,
        owner: &str,
        payload_id: &str,
        bytes: &[u8],
        expires_at_epoch: i64,
    ) -> Result<usize, StoreError> {
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[][..]]
        } else {
            bytes.chunks(CHUNK_BYTES).collect()
        };
        let count = chunks.len();
        for (first, batch) in (0..count).step_by(BATCH).zip(chunks.chunks(BATCH)) {
            let mut pending = Vec::with_capacity(batch.len());
            for (offset, chunk) in batch.iter().enumerate() {
                let at = ChunkAt {
                    siret,
                    owner,
                    payload_id,
                    index: first + offset,
                    count,
                    expires_at_epoch,
                };
                pending.push(chunk_request(&at, chunk)?);
            }
            // Unprocessed items are retried a few times (throttling), then it is an error.
            for _ in 0..5 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| StoreError::Aws(error_text(&e)))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Aws("payload chunks left unprocessed".into()));
            }
        }
        Ok(count)
    }

    /// The bytes stored under `payload_id`, or `None` when they are gone or incomplete.
    pub async fn get_payload(
        &self,
        siret: &Siret,
        owner: &str,
        payload_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut items: Vec<Item> = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(keys::company_pk(siret)))
                .expression_attribute_values(":prefix", s(keys::payload_prefix(owner, payload_id)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::Aws(error_text(&e)))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let expected = items
            .first()
            .and_then(|i| i.get("chunks"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if expected != Some(items.len()) {
            return Ok(None);
        }
        // The SK's zero-padded chunk index keeps them in order.
        let mut bytes = Vec::new();
        for item in &items {
            match item.get("bytes").and_then(|v| v.as_b().ok()) {
                Some(blob) => bytes.extend_from_slice(blob.as_ref()),
                None => return Ok(None),
            }
        }
        Ok(Some(bytes))
    }
}

/// Where a chunk goes.
struct ChunkAt<'a> {
    siret: &'a Siret,
    owner: &'a str,
    payload_id: &'a str,
    index: usize,
    count: usize,
    expires_at_epoch: i64,
}

fn chunk_request(at: &ChunkAt<'_>, chunk: &[u8]) -> Result<WriteRequest, StoreError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(keys::company_pk(at.siret)));
    item.insert(
        SK.into(),
        s(keys::payload_chunk_sk(at.owner, at.payload_id, at.index)),
    );
    item.insert("entity".into(), s("payload_chunk"));
    item.insert("chunk".into(), n(at.index));
    item.insert("chunks".into(), n(at.count));
    item.insert("bytes".into(), AttributeValue::B(Blob::new(chunk.to_vec())));
    item.insert("ttl".into(), n(at.expires_at_epoch));
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| StoreError::Aws(e.to_string()))?;
    Ok(WriteRequest::builder().put_request(put).build())
}
