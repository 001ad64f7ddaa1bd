//! DynamoDB adapter: one item per (rule, dedup key).
//!
//! Item: `pk` (S, partition key), `version` (N), `state` (S, the
//! [`WindowState`] as JSON), `expires_at` (N, epoch seconds, the table's TTL
//! attribute) and a few plain attributes for people browsing the table.
//! Writes are `PutItem` conditioned on the version read (or on the item not
//! existing), so racing invocations cannot overwrite each other. Expiry is
//! never inferred from TTL: DynamoDB deletes expired items lazily, so the
//! handler always decides from the stored window times.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tracing::instrument;

use super::{SaveOutcome, StateStore, StoreError, Versioned};
use crate::time::format_rfc3339;
use crate::window::WindowState;

/// How long an item outlives its window and its newest batch (event time):
/// long enough to recognise any redelivery Lambda can make (6 hours at most)
/// and to keep a quiet key's history for a while.
pub const RETENTION_SECS: i64 = 2 * 24 * 3600;

/// State in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// Uses `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// Epoch seconds after which the item may be deleted.
pub fn expires_at(state: &WindowState) -> i64 {
    let newest_batch = state.applied.iter().map(|b| b.at).max().unwrap_or(0);
    let end_ms = state.window_end().max(state.last_seen).max(newest_batch);
    end_ms.div_euclid(1000) + RETENTION_SECS
}

fn to_item(
    pk: &str,
    state: &WindowState,
    version: u64,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let json = serde_json::to_string(state).map_err(|e| StoreError::Corrupt {
        pk: pk.to_owned(),
        reason: e.to_string(),
    })?;
    let mut item = HashMap::with_capacity(9);
    item.insert("pk".into(), AttributeValue::S(pk.to_owned()));
    item.insert("version".into(), AttributeValue::N(version.to_string()));
    item.insert("state".into(), AttributeValue::S(json));
    item.insert(
        "expires_at".into(),
        AttributeValue::N(expires_at(state).to_string()),
    );
    // For people looking at the table; never read back.
    item.insert(
        "rule_id".into(),
        AttributeValue::S(state.rule.as_str().to_owned()),
    );
    item.insert("dedup".into(), AttributeValue::S(state.dedup.clone()));
    item.insert(
        "window_start".into(),
        AttributeValue::S(format_rfc3339(state.window_start)),
    );
    item.insert(
        "event_count".into(),
        AttributeValue::N(state.count.to_string()),
    );
    item.insert(
        "pending_alerts".into(),
        AttributeValue::N(state.pending.len().to_string()),
    );
    Ok(item)
}

fn from_item(pk: &str, item: &HashMap<String, AttributeValue>) -> Result<Versioned, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        pk: pk.to_owned(),
        reason,
    };
    let version = match item.get("version") {
        Some(AttributeValue::N(n)) => n
            .parse::<u64>()
            .map_err(|e| corrupt(format!("version: {e}")))?,
        _ => return Err(corrupt("no numeric version attribute".into())),
    };
    let state = match item.get("state") {
        Some(AttributeValue::S(s)) => {
            serde_json::from_str(s).map_err(|e| corrupt(format!("state: {e}")))?
        }
        _ => return Err(corrupt("no state attribute".into())),
    };
    Ok(Versioned { state, version })
}

fn request_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Request(DisplayErrorContext(e).to_string())
}

impl StateStore for DynamoStore {
    #[instrument(skip(self), fields(table = %self.table))]
    async fn load(&self, pk: &str) -> Result<Option<Versioned>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            // The compare-and-set is what keeps us correct; a consistent read
            // just avoids a doomed write after a concurrent one.
            .consistent_read(true)
            .send()
            .await
            .map_err(request_error)?;
        out.item
            .as_ref()
            .map(|item| from_item(pk, item))
            .transpose()
    }

    #[instrument(skip(self, state), fields(table = %self.table))]
    async fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
    ) -> Result<SaveOutcome, StoreError> {
        let version = expected.unwrap_or(0) + 1;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(pk, state, version)?));
        put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(SaveOutcome::Saved(version)),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(SaveOutcome::Conflict)
            }
            Err(e) => Err(request_error(e)),
        }
    }
}
