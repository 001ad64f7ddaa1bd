//! DynamoDB adapter: one item per (rule, dedup key).
//!
//! Item: `pk` (S, partition key), `version` (N), `state` (S, the
//! [`WindowState`] as JSON, with its undelivered alerts), `expires_at` (N,
//! epoch seconds, the table's TTL attribute) and a few plain attributes for
//! people browsing the table. Writes are `PutItem` conditioned on the version
//! read (or on the item not existing), so racing invocations cannot
//! overwrite each other. An item holding undelivered alerts carries
//! `outbox` = `pending` and `since` (N: when its first alert is due, that is
//! when it was decided or when the live claim on it ends), the keys of the
//! sparse index [`OUTBOX_INDEX`], and no `expires_at`: TTL never removes an
//! undelivered alert, and the scheduled sweep finds due ones without a scan
//! and without seeing those other invocations hold. Expiry is never
//! inferred from TTL: DynamoDB deletes expired items lazily, so the handler
//! decides from the stored window times.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use tracing::instrument;

use super::{Loaded, OutboxCursor, OutboxPage, SaveOutcome, StateStore, StoreError, Versioned};
use crate::time::{format_rfc3339, Millis};
use crate::window::{salvage_outbox, WindowState};

/// How long a state item outlives its window and its last change: longer
/// than anything can bring a batch back (Lambda's retries, 6 hours; a
/// failure-queue message replayed within the queue's 14-day retention), so
/// a replay finds the key that counted it and changes nothing.
pub const RETENTION_SECS: i64 = 15 * 24 * 3600;

/// Bytes of an unreadable item written to the log for the operator.
pub const MAX_RAW_BYTES: usize = 400 * 1024;

/// The sparse global secondary index over keys with undelivered alerts
/// (declared in `template.yaml`): hash key `outbox`, range key `since`.
pub const OUTBOX_INDEX: &str = "outbox";

/// The one value of the index's hash key.
const OUTBOX_PENDING: &str = "pending";

/// Keys per `BatchGetItem` (DynamoDB's limit).
const BATCH_GET_KEYS: usize = 100;

/// Attempts at keys DynamoDB left unprocessed (throttling) before failing.
const UNPROCESSED_ATTEMPTS: u32 = 6;

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

/// Epoch seconds after which the item may be deleted: from the later of the
/// window's end (event time) and its last change (wall time), so a replay of
/// old events does not write items that are already expired.
pub fn expires_at(state: &WindowState) -> i64 {
    let end_ms = state
        .window_end()
        .max(state.last_seen)
        .max(state.updated_ms);
    end_ms.div_euclid(1000) + RETENTION_SECS
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn to_item(
    pk: &str,
    state: &WindowState,
    version: u64,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let json = serde_json::to_string(state).map_err(|e| StoreError::Permanent {
        pk: pk.to_owned(),
        reason: e.to_string(),
    })?;
    let mut item = HashMap::with_capacity(9);
    item.insert("pk".into(), s(pk));
    item.insert("version".into(), n(version));
    item.insert("state".into(), s(json));
    match state.outbox_due() {
        // Undelivered alerts: in the sweep's index, and never expired.
        Some(since) => {
            item.insert("outbox".into(), s(OUTBOX_PENDING));
            item.insert("since".into(), n(since));
        }
        None => {
            item.insert("expires_at".into(), n(expires_at(state)));
        }
    }
    // For people looking at the table; never read back.
    item.insert("rule_id".into(), s(state.rule.as_str()));
    item.insert("window_start".into(), s(format_rfc3339(state.window_start)));
    item.insert("event_count".into(), n(state.count));
    Ok(item)
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Loaded {
    let raw = || crate::bounded::cap_to(&format!("{item:?}"), MAX_RAW_BYTES);
    let Some(version) = number(item, "version").and_then(|v| u64::try_from(v).ok()) else {
        // Without a version the overwrite is conditional on there being
        // none (see `save`).
        return Loaded::Corrupt {
            version: 0,
            reason: "no numeric version attribute".into(),
            outbox: salvage(item),
            raw: raw(),
        };
    };
    match item.get("state") {
        Some(AttributeValue::S(json)) => match serde_json::from_str(json) {
            Ok(state) => Loaded::Found(Versioned { state, version }),
            Err(e) => Loaded::Corrupt {
                version,
                reason: format!("state: {e}"),
                outbox: salvage_outbox(json),
                raw: raw(),
            },
        },
        _ => Loaded::Corrupt {
            version,
            reason: "no state attribute".into(),
            outbox: Vec::new(),
            raw: raw(),
        },
    }
}

/// The undelivered alerts readable from an item's `state`, if any.
fn salvage(item: &HashMap<String, AttributeValue>) -> Vec<crate::window::PendingAlert> {
    match item.get("state") {
        Some(AttributeValue::S(json)) => salvage_outbox(json),
        _ => Vec::new(),
    }
}

/// DynamoDB error codes that no retry can fix: the request itself is
/// refused (an item over 400 KB, a key over 2 KB, a malformed expression).
const PERMANENT_CODES: [&str; 2] = [
    "ValidationException",
    "ItemCollectionSizeLimitExceededException",
];

fn classify<E, R>(pk: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let permanent = match &e {
        SdkError::ServiceError(se) => se
            .err()
            .code()
            .is_some_and(|c| PERMANENT_CODES.contains(&c)),
        SdkError::ConstructionFailure(_) => true,
        _ => false,
    };
    let reason = DisplayErrorContext(e).to_string();
    if permanent {
        StoreError::Permanent {
            pk: pk.to_owned(),
            reason,
        }
    } else {
        StoreError::Transient(reason)
    }
}

fn is_condition_failure<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::ServiceError(se) => se.err().code() == Some("ConditionalCheckFailedException"),
        _ => false,
    }
}

impl StateStore for DynamoStore {
    #[instrument(skip_all, fields(table = %self.table, keys = pks.len()))]
    async fn load_many(&self, pks: &[String]) -> Result<HashMap<String, Loaded>, StoreError> {
        let mut found = HashMap::with_capacity(pks.len());
        for chunk in pks.chunks(BATCH_GET_KEYS) {
            let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|pk| HashMap::from([("pk".to_owned(), s(pk))]))
                .collect();
            let mut attempt = 0;
            while !keys.is_empty() {
                if attempt == UNPROCESSED_ATTEMPTS {
                    return Err(StoreError::Transient(format!(
                        "{} keys left unprocessed by BatchGetItem after {attempt} attempts",
                        keys.len()
                    )));
                }
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Transient(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| classify("(batch)", e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Some(AttributeValue::S(pk)) = item.get("pk") {
                        found.insert(pk.clone(), from_item(&item));
                    }
                }
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok(found)
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn load(&self, pk: &str) -> Result<Option<Loaded>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            // The compare-and-set is what keeps us correct; a consistent read
            // just avoids a doomed write after a concurrent one.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(pk, e))?;
        Ok(out.item.as_ref().map(from_item))
    }

    #[instrument(skip(self, state), fields(table = %self.table))]
    async fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
    ) -> Result<SaveOutcome, StoreError> {
        let version = expected.unwrap_or(0) + 1;
        // Version 0 is an unreadable item without a usable version (none,
        // not a number, below 1): overwritten only while that is still so.
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(pk, state, version)?));
        put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(0) => put
                .condition_expression(
                    "attribute_not_exists(version) OR NOT attribute_type(version, :n) OR version < :one",
                )
                .expression_attribute_values(":n", s("N"))
                .expression_attribute_values(":one", n(1)),
            Some(v) => put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(v)),
        };
        match put.send().await {
            Ok(_) => Ok(SaveOutcome::Saved(version)),
            Err(e) if is_condition_failure(&e) => Ok(SaveOutcome::Conflict),
            Err(e) => Err(classify(pk, e)),
        }
    }

    #[instrument(skip(self, after), fields(table = %self.table))]
    async fn with_outbox(
        &self,
        due_by: Millis,
        after: Option<&OutboxCursor>,
        limit: usize,
    ) -> Result<OutboxPage, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = after.map(|a| {
            HashMap::from([
                ("pk".to_owned(), s(&a.pk)),
                ("outbox".to_owned(), s(OUTBOX_PENDING)),
                ("since".to_owned(), n(a.due_ms)),
            ])
        });
        let mut last: Option<OutboxCursor> = None;
        loop {
            let page =
                i32::try_from(limit.saturating_sub(found.len()).clamp(1, 100)).unwrap_or(100);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OUTBOX_INDEX)
                .key_condition_expression("outbox = :pending AND since <= :due")
                .expression_attribute_values(":pending", s(OUTBOX_PENDING))
                .expression_attribute_values(":due", n(due_by))
                .limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify(OUTBOX_INDEX, e))?;
            for item in out.items.unwrap_or_default() {
                let Some(AttributeValue::S(pk)) = item.get("pk") else {
                    continue;
                };
                let due_ms = number(&item, "since").unwrap_or(0);
                last = Some(OutboxCursor {
                    due_ms,
                    pk: pk.clone(),
                });
                match from_item(&item) {
                    Loaded::Found(v) => found.push((pk.clone(), v)),
                    Loaded::Corrupt {
                        version,
                        reason,
                        outbox,
                        raw,
                    } => {
                        super::log_corrupt(pk, &reason, &raw, outbox.len());
                        if let Some(state) = WindowState::holding(outbox, due_ms) {
                            found.push((pk.clone(), Versioned { state, version }));
                        }
                    }
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(OutboxPage {
                    keys: found,
                    next: None,
                });
            }
            if found.len() >= limit {
                return Ok(OutboxPage {
                    keys: found,
                    next: last,
                });
            }
        }
    }
}
