//! S3 adapter: one `PutObject` per kept record, into the stack's bucket
//! (encrypted with the stack's key by the bucket's default; the function
//! needs `s3:PutObject` and the key's `kms:GenerateDataKey`).

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use futures_util::future::BoxFuture;
use tracing::instrument;

use super::{KeepError, KeptRecord, RecordKeeper};

/// Failed records to an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Keeper {
    client: Client,
    bucket: String,
}

impl S3Keeper {
    /// Writes into `bucket` through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    #[instrument(skip(self, record), fields(bucket = %self.bucket, key = %record.key, reason = record.reason.as_str()))]
    async fn put(&self, record: &KeptRecord<'_>) -> Result<String, KeepError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&record.key)
            .content_type("application/json")
            .body(ByteStream::from(record.body.clone().into_bytes()))
            .metadata("reason", record.reason.as_str())
            // Lambda's ids are ASCII; metadata must be.
            .metadata("event-id", ascii(record.event_id))
            .send()
            .await
            .map_err(|e| KeepError {
                key: record.key.clone(),
                reason: DisplayErrorContext(e).to_string(),
            })?;
        Ok(format!("s3://{}/{}", self.bucket, record.key))
    }
}

impl RecordKeeper for S3Keeper {
    fn keep<'a>(&'a self, record: &'a KeptRecord<'a>) -> BoxFuture<'a, Result<String, KeepError>> {
        Box::pin(self.put(record))
    }
}

/// Printable ASCII only, at most 256 characters.
fn ascii(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(256)
        .collect()
}
