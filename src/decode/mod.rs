//! The CloudWatch Logs subscription envelope: Lambda event → batch.
//!
//! The Lambda event is `{"awslogs":{"data":"<base64(gzip(JSON))>"}}`. The
//! data is untrusted and compressed, so it goes through one decoder with a
//! size cap that stops inflating as soon as the cap is passed
//! (decompression-bomb guard). Messages are kept as raw JSON string tokens:
//! most are never unescaped, because the prefilter rules them out first.

use std::borrow::Cow;
use std::io::Read;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::time::Millis;
use crate::vocab::strong_hash;

mod entries;
mod envelope;
mod string_end;
mod unescape;
pub use unescape::message_text;

use entries::MAX_TIMESTAMP_MS;

/// Standard alphabet, padding optional (CloudWatch pads; hand-made test
/// events often do not).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a payload could not be decoded. The whole invocation fails on these:
/// nothing in it can be trusted.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The invoke body is not JSON.
    #[error("invoke event is not JSON: {0}")]
    EventNotJson(#[source] serde_json::Error),
    /// No `awslogs.data` string.
    #[error(
        "invoke event has no awslogs.data string (is this a CloudWatch Logs subscription event?)"
    )]
    MissingData,
    /// `awslogs.data` is not base64.
    #[error("awslogs.data is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The decoded bytes are not gzip, or the stream is corrupt.
    #[error("awslogs.data is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    /// More log entries than the batch's bytes allow CloudWatch to write.
    #[error("batch holds more log entries than its {bytes} bytes allow ({most} at most): not a CloudWatch Logs batch")]
    TooManyEntries {
        /// The batch's bytes.
        bytes: usize,
        /// The most entries it may hold.
        most: usize,
    },
    /// Inflating would exceed the cap.
    #[error("decompressed payload exceeds the {limit}-byte limit (raise the function's MemorySize, or MAX_DECOMPRESSED_MB within it, if this is legitimate)")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The decompressed data is not the subscription JSON.
    #[error("decompressed payload is not a CloudWatch Logs subscription message: {0}")]
    BatchNotJson(#[source] serde_json::Error),
}

/// What kind of subscription message a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Log events.
    Data,
    /// CloudWatch checking that the destination is reachable: no events.
    Control,
    /// Anything else (treated like a control message).
    Other,
}

#[derive(Deserialize)]
struct InvokeEvent<'a> {
    #[serde(borrow)]
    awslogs: Option<AwsLogs<'a>>,
    /// `aws.events` for an EventBridge event.
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    /// `Scheduled Event` for an EventBridge schedule, `AWS API Call via
    /// CloudTrail` for a management event.
    #[serde(rename = "detail-type", borrow)]
    detail_type: Option<Cow<'a, str>>,
    /// The CloudTrail record of a management event.
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
    /// Kinesis records (`eventSource` `aws:kinesis`), each the same gzipped
    /// subscription payload a Logs destination put in the stream.
    #[serde(rename = "Records", default, borrow)]
    records: Vec<KinesisRecord<'a>>,
    /// A Lambda on-failure destination record wraps the original event, so
    /// a payload taken from the failure queue can be replayed as it is.
    #[serde(rename = "requestPayload", borrow)]
    request_payload: Option<Box<InvokeEvent<'a>>>,
}

/// One record of a Kinesis event.
#[derive(Debug, Clone, Deserialize)]
pub struct KinesisRecord<'a> {
    /// `aws:kinesis` for a Kinesis stream.
    #[serde(rename = "eventSource", borrow, default)]
    pub event_source: Option<Cow<'a, str>>,
    /// `shardId-…:sequenceNumber`, for logs.
    #[serde(rename = "eventID", borrow, default)]
    pub event_id: Option<Cow<'a, str>>,
    /// The record itself.
    #[serde(borrow)]
    pub kinesis: KinesisData<'a>,
}

/// The `kinesis` object of a record.
#[derive(Debug, Clone, Deserialize)]
pub struct KinesisData<'a> {
    /// Base64 of the gzipped subscription payload.
    #[serde(borrow, default)]
    pub data: Cow<'a, str>,
    /// What `batchItemFailures` reports a failed record by.
    #[serde(rename = "sequenceNumber", borrow, default)]
    pub sequence_number: Cow<'a, str>,
    /// When the record arrived in the stream (epoch seconds): the day a
    /// failed record is kept under, the same on every retry.
    #[serde(rename = "approximateArrivalTimestamp", default)]
    pub approximate_arrival_timestamp: Option<f64>,
}

#[derive(Deserialize)]
struct AwsLogs<'a> {
    /// Borrowed from the body unless it has escapes: it is most of it.
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    data: Option<Cow<'a, str>>,
}

/// A string borrowed when it has no escapes (serde copies a `Cow` inside
/// an `Option`).
fn borrowed_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// What the function was invoked with.
#[derive(Debug, Clone)]
pub enum Invocation<'a> {
    /// A CloudWatch Logs subscription batch: its `awslogs.data`.
    Logs(Cow<'a, str>),
    /// Records from a Kinesis stream fed by a CloudWatch Logs destination
    /// (one detector for many accounts).
    Kinesis(Vec<KinesisRecord<'a>>),
    /// A CloudTrail management event delivered by EventBridge: its
    /// `detail`, the CloudTrail record.
    CloudTrail(&'a RawValue),
    /// An EventBridge schedule: time to deliver undelivered alerts.
    Schedule,
}

/// Classifies a raw Lambda invoke body: a subscription batch (directly or
/// inside an on-failure destination record) or the scheduled event. Every
/// other body, including one that is not JSON at all, is `InvalidPayload`.
pub fn classify_invoke(body: &[u8]) -> Result<Invocation<'_>, DecodeError> {
    let ev: InvokeEvent<'_> = serde_json::from_slice(body).map_err(DecodeError::EventNotJson)?;
    if ev.awslogs.is_none()
        && ev.source.as_deref() == Some("aws.events")
        && ev.detail_type.as_deref() == Some("Scheduled Event")
    {
        return Ok(Invocation::Schedule);
    }
    if ev.awslogs.is_none()
        && !ev.records.is_empty()
        && ev
            .records
            .iter()
            .all(|r| r.event_source.as_deref() == Some("aws:kinesis"))
    {
        return Ok(Invocation::Kinesis(ev.records));
    }
    if ev.awslogs.is_none() && ev.detail_type.as_deref() == Some("AWS API Call via CloudTrail") {
        if let Some(detail) = ev.detail {
            return Ok(Invocation::CloudTrail(detail));
        }
    }
    data_of(ev).map(Invocation::Logs)
}

/// Pulls `awslogs.data` out of a raw Lambda invoke body (or out of the
/// `requestPayload` of an on-failure destination record).
pub fn extract_data(body: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    match classify_invoke(body)? {
        Invocation::Logs(data) => Ok(data),
        _ => Err(DecodeError::MissingData),
    }
}

fn data_of(mut ev: InvokeEvent<'_>) -> Result<Cow<'_, str>, DecodeError> {
    loop {
        if let Some(data) = ev.awslogs.and_then(|a| a.data) {
            return Ok(data);
        }
        match ev.request_payload {
            Some(inner) => ev = *inner,
            None => return Err(DecodeError::MissingData),
        }
    }
}

/// Base64-decodes and gunzips `data`, refusing to produce more than `limit`
/// bytes.
pub fn inflate(data: &str, limit: usize) -> Result<Vec<u8>, DecodeError> {
    let compressed = B64.decode(data.trim().as_bytes())?;
    // gzip's trailer holds the size mod 2^32: a good first allocation.
    let hint = compressed
        .len()
        .checked_sub(4)
        .and_then(|at| compressed.get(at..))
        .and_then(|t| <[u8; 4]>::try_from(t).ok())
        .map_or(0, |t| u32::from_le_bytes(t) as usize);
    // The hint is attacker-controlled: never more than the cap.
    let mut out = Vec::with_capacity(hint.max(compressed.len()).min(limit.saturating_add(1)));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    MultiGzDecoder::new(compressed.as_slice())
        .take(cap)
        .read_to_end(&mut out)
        .map_err(DecodeError::Gzip)?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

/// One decoded subscription message.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch<'a> {
    /// `DATA_MESSAGE` or `CONTROL_MESSAGE`.
    #[serde(borrow, default)]
    pub message_type: Cow<'a, str>,
    /// AWS account id that owns the log group.
    #[serde(borrow, default)]
    pub owner: Cow<'a, str>,
    /// `/aws/eks/<cluster>/cluster` for EKS control-plane logs.
    #[serde(borrow, default)]
    pub log_group: Cow<'a, str>,
    /// The stream, e.g. `kube-apiserver-audit-<hex>`.
    #[serde(borrow, default)]
    pub log_stream: Cow<'a, str>,
    /// The log events. An entry of the wrong shape (not an object, a
    /// timestamp that is not an integer in range, an id that is not a
    /// string) costs only itself: its fields are left out and the scanner
    /// skips and counts it.
    #[serde(borrow, default)]
    pub log_events: Vec<LogEvent<'a>>,
}

/// One CloudWatch log event; `message` is still an escaped JSON string token.
#[derive(Debug, Default)]
pub struct LogEvent<'a> {
    /// CloudWatch's unique event id.
    pub id: Option<Cow<'a, str>>,
    /// Ingestion timestamp, epoch ms (years 1970 to 9999).
    pub timestamp: Option<Millis>,
    /// The message as a raw JSON token (normally a string, quotes and
    /// escapes as they came).
    pub message: Option<&'a str>,
}

impl<'a> Batch<'a> {
    /// Parses decompressed subscription JSON: CloudWatch's shape by the
    /// fast reader, anything else by serde_json (same result).
    ///
    /// A batch with more entries than its bytes allow CloudWatch to write
    /// (see `MIN_ENTRY_BYTES`) is refused before its entries are built:
    /// 16 MB of empty entries would take hundreds of MB.
    pub fn parse(json: &'a [u8]) -> Result<Self, DecodeError> {
        match envelope::read(json, entries::most_entries(json.len())) {
            Some(batch) => Ok(batch),
            None => Self::parse_general(json),
        }
    }

    /// Parses decompressed subscription JSON with serde_json alone (the
    /// entries counted first, as [`Self::parse`] says).
    pub fn parse_general(json: &'a [u8]) -> Result<Self, DecodeError> {
        let most = entries::most_entries(json.len());
        if entries::count(json).is_some_and(|n| n > most) {
            return Err(DecodeError::TooManyEntries {
                bytes: json.len(),
                most,
            });
        }
        serde_json::from_slice(json).map_err(DecodeError::BatchNotJson)
    }

    /// The message type.
    pub fn kind(&self) -> MessageType {
        match self.message_type.as_ref() {
            "DATA_MESSAGE" => MessageType::Data,
            "CONTROL_MESSAGE" => MessageType::Control,
            _ => MessageType::Other,
        }
    }

    /// Cluster label from the log group.
    pub fn cluster(&self) -> &str {
        cluster_label(&self.log_group)
    }

    /// The label keys, titles and alerts use: the cluster, or in
    /// organization mode `{account}/{cluster}`, so two accounts' clusters of
    /// one name never share a key.
    pub fn label(&self, with_account: bool) -> Cow<'_, str> {
        if with_account {
            Cow::Owned(format!("{}/{}", self.owner, self.cluster()))
        } else {
            Cow::Borrowed(self.cluster())
        }
    }

    /// Deterministic id of the batch: the same delivery, redelivered, has the
    /// same id; two different batches practically never share one.
    pub fn id(&self) -> String {
        let mut parts: Vec<&str> = Vec::with_capacity(self.log_events.len() + 2);
        parts.push(&self.log_group);
        parts.push(&self.log_stream);
        let ts: Vec<String>;
        if self.log_events.iter().all(|e| e.id.is_some()) {
            parts.extend(self.log_events.iter().filter_map(|e| e.id.as_deref()));
        } else {
            // No ids (hand-made events): fall back to times and messages.
            ts = self
                .log_events
                .iter()
                .map(|e| format!("{:?}{}", e.timestamp, e.message.unwrap_or_default()))
                .collect();
            parts.extend(ts.iter().map(String::as_str));
        }
        // SHA-256, which the processor computes in hardware (SHA-NI, the
        // Arm SHA2 instructions), reads the ids several times faster than a
        // byte-at-a-time hash.
        format!("{:032x}", strong_hash(&parts))
    }
}

/// `<c>` for a log group named `/aws/eks/<c>/cluster`, else the whole name.
pub fn cluster_label(log_group: &str) -> &str {
    log_group
        .strip_prefix("/aws/eks/")
        .and_then(|rest| rest.strip_suffix("/cluster"))
        .filter(|c| !c.is_empty() && !c.contains('/'))
        .unwrap_or(log_group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).expect("in-memory write");
        enc.finish().expect("in-memory finish")
    }

    #[test]
    fn accepts_base64_with_and_without_padding() {
        let data = gz(br#"{"messageType":"CONTROL_MESSAGE"}"#);
        let padded = base64::engine::general_purpose::STANDARD.encode(&data);
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(
            inflate(&padded, 1 << 20).expect("padded"),
            inflate(unpadded, 1 << 20).expect("unpadded")
        );
    }

    #[test]
    fn refuses_payloads_over_the_cap_before_inflating_them_all() {
        let bomb = gz(&vec![b'a'; 10 << 20]);
        let data = base64::engine::general_purpose::STANDARD.encode(bomb);
        match inflate(&data, 1 << 20) {
            Err(DecodeError::TooLarge { limit }) => assert_eq!(limit, 1 << 20),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(
            inflate(&data, 10 << 20).expect("exactly at the cap").len(),
            10 << 20
        );
    }

    #[test]
    fn envelope_errors_name_what_is_wrong() {
        let msg = |r: Result<Cow<'_, str>, DecodeError>| r.expect_err("must fail").to_string();
        assert!(msg(extract_data(b"not json")).contains("not JSON"));
        assert!(msg(extract_data(br#"{"awslogs":{}}"#)).contains("awslogs.data"));
        assert!(msg(extract_data(br#"{"Records":[]}"#)).contains("awslogs.data"));
        let e = inflate("%%%", 100).expect_err("bad base64").to_string();
        assert!(e.contains("base64"), "{e}");
        let e = inflate("aGVsbG8=", 100).expect_err("not gzip").to_string();
        assert!(e.contains("gzip"), "{e}");
        let e = Batch::parse(b"[1,2]")
            .expect_err("not an object")
            .to_string();
        assert!(e.contains("subscription"), "{e}");
    }

    #[test]
    fn data_is_borrowed_unless_escaped() {
        let plain = extract_data(br#"{"awslogs":{"data":"H4sI/a+b"}}"#).expect("data");
        assert!(matches!(plain, Cow::Borrowed("H4sI/a+b")));
        let escaped = extract_data(br#"{"awslogs":{"data":"H4sI\/a+b"}}"#).expect("data");
        assert_eq!(escaped, "H4sI/a+b");
        assert!(extract_data(br#"{"awslogs":{"data":null}}"#).is_err());
        assert!(extract_data(br#"{"awslogs":{"data":5}}"#).is_err());
    }

    #[test]
    fn failure_queue_records_yield_the_original_event() {
        let record = br#"{"version":"1.0","requestContext":{"condition":"RetriesExhausted"},"requestPayload":{"awslogs":{"data":"H4sI"}},"responsePayload":{"errorType":"StateStoreUnavailable"}}"#;
        assert_eq!(extract_data(record).expect("data"), "H4sI");
    }

    #[test]
    fn cluster_label_from_log_group() {
        assert_eq!(cluster_label("/aws/eks/prod-web/cluster"), "prod-web");
        assert_eq!(
            cluster_label("/aws/eks/a/b/cluster"),
            "/aws/eks/a/b/cluster"
        );
        assert_eq!(cluster_label("/custom/audit"), "/custom/audit");
        assert_eq!(cluster_label("/aws/eks//cluster"), "/aws/eks//cluster");
    }

    #[test]
    fn batch_id_is_deterministic_and_content_sensitive() {
        let a = br#"{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[{"id":"1","timestamp":1,"message":"x"}]}"#;
        let b = br#"{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[{"id":"2","timestamp":1,"message":"x"}]}"#;
        let pa = Batch::parse(a).expect("a");
        assert_eq!(pa.id(), Batch::parse(a).expect("a again").id());
        assert_ne!(pa.id(), Batch::parse(b).expect("b").id());
        assert_eq!(pa.kind(), MessageType::Data);
    }
}
