//! Documents announced for upload (`DOCUMENT#{id}` in the company's partition): written
//! when the upload URL is handed out, read when a transmission names the document. The
//! table's TTL removes the record when the bucket's lifecycle removes the object.

use super::item::{Item, ItemReader, n, s};
use super::keys::{self, PK, SK};
use super::{Store, StoreError};
use crate::aws::error_text;
use crate::clock::rfc3339;
use crate::domain::Siret;
use crate::domain::document::{Announced, Document, DocumentId};

impl Store {
    /// Records a document; a (vanishingly unlikely) existing id is a conflict, never an
    /// overwrite.
    pub async fn put_document(&self, document: &Document) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(PK.into(), s(keys::company_pk(&document.siret)));
        item.insert(SK.into(), s(keys::document_sk(document.id.as_str())));
        item.insert("entity".into(), s("document"));
        item.insert("filename".into(), s(document.announced.filename.as_str()));
        item.insert("content_type".into(), s(document.announced.content_type));
        item.insert("size".into(), n(document.announced.size));
        item.insert("created_at".into(), s(rfc3339(document.created_at)));
        item.insert(
            "upload_expires_at".into(),
            s(rfc3339(document.upload_expires_at)),
        );
        item.insert("ttl".into(), n(document.deleted_at().unix_timestamp()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_conditional_check_failed_exception() => StoreError::Conflict,
                _ => StoreError::Aws(error_text(&e)),
            })?;
        Ok(())
    }

    /// The company's document with this id, if it has one.
    pub async fn get_document(
        &self,
        siret: &Siret,
        id: &DocumentId,
    ) -> Result<Option<Document>, StoreError> {
        let item = self
            .read_item(keys::company_item(siret, keys::document_sk(id.as_str())))
            .await?;
        item.as_ref()
            .map(|item| document_from_item(siret, id, item))
            .transpose()
    }
}

fn document_from_item(siret: &Siret, id: &DocumentId, item: &Item) -> Result<Document, StoreError> {
    let r = ItemReader::new(item);
    let size = r.n("size")?;
    let announced = Announced::check(
        r.s("filename")?,
        r.s("content_type")?,
        i64::try_from(size).ok(),
    )
    .map_err(|_| r.corrupt("announced file no longer valid"))?;
    Ok(Document {
        siret: siret.clone(),
        id: id.clone(),
        announced,
        created_at: r.time("created_at")?,
        upload_expires_at: r.time("upload_expires_at")?,
    })
}
