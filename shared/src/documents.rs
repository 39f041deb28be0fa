//! The documents bucket (S3): pre-signed uploads for the `documents` function, reads for a
//! deposit that names a document. Built only by the functions that need it (the crate's
//! `documents` feature), so the others neither compile nor start an S3 client.
//!
//! An upload URL signs the object's exact `Content-Type` and `Content-Length`: S3 refuses
//! a PUT of any other size or type (`SignatureDoesNotMatch`). What is read back is checked
//! again anyway ([`Document::unusable`]), since an emulator or a misconfigured bucket may
//! not enforce the signature.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::RequestChecksumCalculation;
use aws_sdk_s3::presigning::PresigningConfig;
use time::OffsetDateTime;

use crate::aws::error_text;
use crate::domain::document::{Document, Unusable};

/// The S3 client and bucket of the uploaded documents.
#[derive(Clone, Debug)]
pub struct DocumentBucket {
    client: crate::aws::LazyClient<aws_sdk_s3::Client>,
    bucket: String,
}

/// A pre-signed PUT: the URL, and the headers the upload must carry as signed.
#[derive(Debug, Clone)]
pub struct PresignedUpload {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The document cannot be used (the caller's fault, or time's).
    #[error("document unusable: {0:?}")]
    Unusable(Unusable),
    #[error("s3: {0}")]
    Aws(String),
}

impl DocumentBucket {
    /// The S3 client is built at its first use (docs/architecture.md, cold start).
    pub fn from_sdk(sdk: &aws_config::SdkConfig, bucket: String) -> DocumentBucket {
        DocumentBucket {
            client: crate::aws::LazyClient::new(sdk, s3_client),
            bucket,
        }
    }

    /// A PUT URL for exactly this document's key, type and size, valid from `now` until
    /// its upload window closes.
    pub async fn presign_upload(
        &self,
        document: &Document,
        now: OffsetDateTime,
    ) -> Result<PresignedUpload, BucketError> {
        let window = (document.upload_expires_at - now).unsigned_abs();
        let start = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(now.unix_timestamp()).unwrap_or_default());
        let presigning = PresigningConfig::builder()
            .start_time(start)
            .expires_in(window)
            .build()
            .map_err(|e| BucketError::Aws(e.to_string()))?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(document.object_key())
            .content_type(document.announced.content_type)
            .content_length(i64::try_from(document.announced.size).unwrap_or(i64::MAX))
            .presigned(presigning)
            .await
            .map_err(|e| BucketError::Aws(error_text(&e)))?;
        Ok(PresignedUpload {
            url: request.uri().to_owned(),
            headers: request
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    /// The document's bytes, read in one pass into a buffer of the announced size (never
    /// more), once the stored object is known to be the one announced.
    pub async fn read(
        &self,
        document: &Document,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, BucketError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(document.object_key())
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_no_such_key() => BucketError::Unusable(Unusable::NeverUploaded),
                _ => BucketError::Aws(error_text(&e)),
            })?;
        let stored_size = out.content_length.and_then(|n| u64::try_from(n).ok());
        let stored_at = out
            .last_modified
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok());
        let (Some(stored_size), Some(stored_at)) = (stored_size, stored_at) else {
            return Err(BucketError::Aws("object without length or date".into()));
        };
        if let Some(why) = document.unusable(stored_size, stored_at, now) {
            return Err(BucketError::Unusable(why));
        }
        let bytes = read_exactly(out.body, document.announced.size).await?;
        if document.announced.is_pdf() && !bytes.starts_with(b"%PDF-") {
            return Err(BucketError::Unusable(Unusable::NotAPdf));
        }
        Ok(bytes)
    }
}

/// The body into one buffer of `size` bytes; a body of another length is refused.
async fn read_exactly(
    mut body: aws_sdk_s3::primitives::ByteStream,
    size: u64,
) -> Result<Vec<u8>, BucketError> {
    let size = usize::try_from(size).map_err(|_| BucketError::Aws("size".into()))?;
    let mut bytes = Vec::with_capacity(size);
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| BucketError::Aws(e.to_string()))?
    {
        if bytes.len() + chunk.len() > size {
            return Err(BucketError::Unusable(Unusable::SizeDiffers {
                stored: (bytes.len() + chunk.len()) as u64,
            }));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() != size {
        return Err(BucketError::Unusable(Unusable::SizeDiffers {
            stored: bytes.len() as u64,
        }));
    }
    Ok(bytes)
}

fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    // No checksum of the (empty) body in a pre-signed PUT: S3 would then refuse the
    // real file. Integrity is the signed length plus our own checks on use.
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        // An endpoint set by configuration (`AWS_ENDPOINT_URL`: moto, MinIO) has no DNS
        // name per bucket: it is addressed path-style; AWS's own, virtual-hosted.
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
