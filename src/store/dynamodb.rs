//! DynamoDB adapter: one item per (rule, dedup key), one per undelivered
//! alert, in one table.
//!
//! State item: `pk` (S, partition key), `version` (N), `state` (S, the
//! [`WindowState`] as JSON), `expires_at` (N, epoch seconds, the table's TTL
//! attribute) and a few plain attributes for people browsing the table.
//! Writes are `PutItem` conditioned on the version read (or on the item not
//! existing); a write that decides alerts is a `TransactWriteItems` that also
//! puts them in the outbox. Expiry is never inferred from TTL: DynamoDB
//! deletes expired items lazily, so the handler decides from window times.
//!
//! Outbox item: `pk` = `outbox#<alert_id>`, `outbox` = `pending` and `since`
//! (N), the keys of the sparse index [`OUTBOX_INDEX`] that only outbox items
//! carry, `alert` (S, JSON), and the lease `claim`/`claimed_until`. It has no
//! `expires_at`: TTL never removes an undelivered alert.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use tracing::instrument;

use super::{Claim, Loaded, Outboxed, SaveOutcome, StateStore, StoreError, Versioned};
use crate::alert::Alert;
use crate::time::{format_rfc3339, Millis};
use crate::window::WindowState;

/// How long a state item outlives its window and its last change: long
/// enough to recognise any redelivery Lambda can make (6 hours at most) and
/// to keep a quiet key's history for a while.
pub const RETENTION_SECS: i64 = 2 * 24 * 3600;

/// The sparse global secondary index over undelivered alerts (declared in
/// `template.yaml`): hash key `outbox`, range key `since`.
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

/// The outbox item key of an alert.
pub fn outbox_key(alert_id: &str) -> String {
    format!("outbox#{alert_id}")
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
    let mut item = HashMap::with_capacity(8);
    item.insert("pk".into(), s(pk));
    item.insert("version".into(), n(version));
    item.insert("state".into(), s(json));
    item.insert("expires_at".into(), n(expires_at(state)));
    // For people looking at the table; never read back.
    item.insert("rule_id".into(), s(state.rule.as_str()));
    item.insert("window_start".into(), s(format_rfc3339(state.window_start)));
    item.insert("event_count".into(), n(state.count));
    Ok(item)
}

fn outbox_item(entry: &Outboxed) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::with_capacity(7);
    item.insert("pk".into(), s(outbox_key(&entry.alert.alert_id)));
    item.insert("outbox".into(), s(OUTBOX_PENDING));
    item.insert("since".into(), n(entry.since_ms));
    item.insert("alert".into(), s(entry.alert.to_json()));
    item.insert("rule_id".into(), s(entry.alert.rule_id.as_str()));
    if let Some(claim) = &entry.claim {
        item.insert("claim".into(), s(&claim.token));
        item.insert("claimed_until".into(), n(claim.until_ms));
    }
    item
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn from_outbox_item(item: &HashMap<String, AttributeValue>) -> Option<Outboxed> {
    let alert: Alert = match item.get("alert") {
        Some(AttributeValue::S(json)) => serde_json::from_str(json).ok()?,
        _ => return None,
    };
    let claim = match (item.get("claim"), number(item, "claimed_until")) {
        (Some(AttributeValue::S(token)), Some(until_ms)) => Some(Claim {
            token: token.clone(),
            until_ms,
        }),
        _ => None,
    };
    Some(Outboxed {
        alert,
        since_ms: number(item, "since").unwrap_or(0),
        claim,
    })
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Loaded {
    let Some(version) = number(item, "version").and_then(|v| u64::try_from(v).ok()) else {
        // Without a version the item cannot be overwritten conditionally;
        // version 0 never matches, so the write conflicts and is retried.
        return Loaded::Corrupt {
            version: 0,
            reason: "no numeric version attribute".into(),
        };
    };
    match item.get("state") {
        Some(AttributeValue::S(json)) => match serde_json::from_str(json) {
            Ok(state) => Loaded::Found(Versioned { state, version }),
            Err(e) => Loaded::Corrupt {
                version,
                reason: format!("state: {e}"),
            },
        },
        _ => Loaded::Corrupt {
            version,
            reason: "no state attribute".into(),
        },
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
        SdkError::ServiceError(se) => matches!(
            se.err().code(),
            Some("ConditionalCheckFailedException" | "TransactionCanceledException")
        ),
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

    #[instrument(skip(self, state, outbox), fields(table = %self.table, outbox = outbox.len()))]
    async fn save(
        &self,
        pk: &str,
        state: &WindowState,
        expected: Option<u64>,
        outbox: &[Outboxed],
    ) -> Result<SaveOutcome, StoreError> {
        let version = expected.unwrap_or(0) + 1;
        let item = to_item(pk, state, version)?;
        let (condition, values) = match expected {
            None => ("attribute_not_exists(pk)", None),
            Some(v) => (
                "version = :expected",
                Some(HashMap::from([(":expected".to_owned(), n(v))])),
            ),
        };
        if outbox.is_empty() {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values);
            return match put.send().await {
                Ok(_) => Ok(SaveOutcome::Saved(version)),
                Err(e) if is_condition_failure(&e) => Ok(SaveOutcome::Conflict),
                Err(e) => Err(classify(pk, e)),
            };
        }
        let build = |p: Put| TransactWriteItem::builder().put(p).build();
        let mut items = Vec::with_capacity(outbox.len() + 1);
        items.push(build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .build()
                .map_err(|e| StoreError::Transient(e.to_string()))?,
        ));
        for entry in outbox {
            items.push(build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(outbox_item(entry)))
                    .build()
                    .map_err(|e| StoreError::Transient(e.to_string()))?,
            ));
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(SaveOutcome::Saved(version)),
            // Cancelled: the version condition failed or another transaction
            // touched the key; both are resolved by re-reading.
            Err(e) if is_condition_failure(&e) => Ok(SaveOutcome::Conflict),
            Err(e) => Err(classify(pk, e)),
        }
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn outbox(&self, limit: usize) -> Result<Vec<Outboxed>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page =
                i32::try_from(limit.saturating_sub(found.len()).clamp(1, 100)).unwrap_or(100);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OUTBOX_INDEX)
                .key_condition_expression("outbox = :pending")
                .expression_attribute_values(":pending", s(OUTBOX_PENDING))
                .limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify(OUTBOX_INDEX, e))?;
            for item in out.items.unwrap_or_default() {
                match from_outbox_item(&item) {
                    Some(entry) => found.push(entry),
                    None => tracing::error!(
                        pk = ?item.get("pk"),
                        "undeliverable outbox item: the alert cannot be read back"
                    ),
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() || found.len() >= limit {
                return Ok(found);
            }
        }
    }

    #[instrument(skip(self, claim), fields(table = %self.table))]
    async fn claim(
        &self,
        alert_id: &str,
        claim: &Claim,
        now_ms: Millis,
    ) -> Result<bool, StoreError> {
        let pk = outbox_key(alert_id);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET claim = :token, claimed_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(claimed_until) OR claimed_until <= :now)",
            )
            .expression_attribute_values(":token", s(&claim.token))
            .expression_attribute_values(":until", n(claim.until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify(&pk, e)),
        }
    }

    #[instrument(skip(self, token), fields(table = %self.table))]
    async fn release(&self, alert_id: &str, token: &str) -> Result<(), StoreError> {
        let pk = outbox_key(alert_id);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("REMOVE claim, claimed_until")
            .condition_expression("claim = :token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            // Delivered or claimed by someone else since: nothing to give up.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(classify(&pk, e)),
        }
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn delivered(&self, alert_id: &str) -> Result<(), StoreError> {
        let pk = outbox_key(alert_id);
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&pk, e))
    }
}
