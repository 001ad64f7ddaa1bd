//! Real AWS APIs served locally by moto: one server per test binary, started
//! on a free loopback port; each test makes its own uniquely named table,
//! topic and queue, so tests run in parallel without resetting each other.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use eks_audit_detector::alert::Alert;
use serde_json::Value;

/// The running server (kept alive, with its stdin pipe, for the process).
struct Moto {
    endpoint: String,
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(0);

fn python() -> String {
    std::env::var("TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").to_owned())
}

/// Endpoint of the shared moto server, starting it on first use.
pub fn endpoint() -> &'static str {
    &MOTO
        .get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/moto_server.py");
            let mut child = Command::new(python())
                .arg(script)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start moto with {} ({e}); run `make test`, which installs it into .venv", python())
                });
            let stdout = child.stdout.take().expect("piped stdout");
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).expect("moto prints its port");
            let port = line
                .strip_prefix("READY ")
                .map(str::trim)
                .unwrap_or_else(|| panic!("moto did not start: {line:?}"));
            Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                _child: Mutex::new(child),
            }
        })
        .endpoint
}

/// SDK configuration pointing at moto with dummy credentials.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// A unique name for this test's resources.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// What one test uses: a state table, an alert topic and a queue subscribed
/// to it with raw delivery.
pub struct Stack {
    pub config: aws_config::SdkConfig,
    pub table: String,
    pub topic_arn: String,
    pub queue_url: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
}

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("attribute")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key")
}

/// Creates the table as the SAM template does: `pk` String key, TTL on
/// `expires_at`, and the sparse `outbox` index (`outbox` S, `since` N).
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .attribute_definitions(attribute("outbox", ScalarAttributeType::S))
        .attribute_definitions(attribute("since", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("outbox")
                .key_schema(key("outbox", KeyType::Hash))
                .key_schema(key("since", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index"),
        )
        .send()
        .await
        .expect("create table");
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .expect("enable ttl");
}

/// Creates a topic named `name` with a raw-delivery queue subscribed.
pub async fn create_topic_with_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> (String, String) {
    let topic_arn = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let queue_arn = attrs
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("subscribe");
    (topic_arn, queue_url)
}

impl Stack {
    /// A fresh table, topic and queue.
    pub async fn new() -> Self {
        let config = sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let sns = aws_sdk_sns::Client::new(&config);
        let table = unique("state");
        create_table(&dynamodb, &table).await;
        let (topic_arn, queue_url) = create_topic_with_queue(&sns, &sqs, &unique("alerts")).await;
        Self {
            config,
            table,
            topic_arn,
            queue_url,
            dynamodb,
            sqs,
            sns,
        }
    }

    /// Every message on the queue so far, removed from it: (body, attributes).
    pub async fn drain(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.drain_from(&self.queue_url).await
    }

    /// The bodies of every message on another queue so far, removed from it.
    pub async fn bodies_from(&self, queue_url: &str) -> Vec<String> {
        self.drain_from(queue_url)
            .await
            .into_iter()
            .map(|(body, _)| body)
            .collect()
    }

    /// Every message on `queue_url` so far, removed from it.
    async fn drain_from(&self, queue_url: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut out = Vec::new();
        loop {
            let resp = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            let messages = resp.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                let mut attrs: Vec<(String, String)> = m
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.string_value.unwrap_or_default()))
                    .collect();
                attrs.sort();
                out.push((m.body.unwrap_or_default(), attrs));
                if let Some(handle) = m.receipt_handle {
                    self.sqs
                        .delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete");
                }
            }
        }
    }

    /// Alerts on the queue so far, parsed.
    pub async fn alerts(&self) -> Vec<Alert> {
        self.drain()
            .await
            .into_iter()
            .map(|(body, _)| {
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("alert JSON ({e}): {body}"))
            })
            .collect()
    }

    /// Every item of the state table.
    pub async fn items(
        &self,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.dynamodb
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .expect("scan")
            .items
            .unwrap_or_default()
    }

    /// Number of items in the state table.
    pub async fn item_count(&self) -> usize {
        self.items().await.len()
    }

    /// A stored item's attribute.
    pub async fn item(
        &self,
        pk: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    }

    /// Alerts waiting in the outbox.
    pub async fn outbox(&self) -> Vec<Value> {
        self.items()
            .await
            .into_iter()
            .filter_map(|item| match item.get("state") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(s)) => {
                    serde_json::from_str::<Value>(s).ok()
                }
                _ => None,
            })
            .flat_map(|state| state["outbox"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// The stored window state of a key, as JSON.
    pub async fn state(&self, pk: &str) -> Option<Value> {
        let item = self.item(pk).await?;
        match item.get("state") {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(s)) => serde_json::from_str(s).ok(),
            _ => None,
        }
    }
}

/// An S3 client for moto (path-style: the bucket is not a host name here).
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// A fresh bucket, as the template's FailedRecordsBucket (without its
/// encryption and policy, which moto does not need).
pub async fn create_bucket(s3: &aws_sdk_s3::Client) -> String {
    let bucket = unique("failed-records");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    bucket
}

/// One object of a bucket: its body and user metadata.
pub struct Object {
    pub key: String,
    pub body: String,
    pub metadata: std::collections::HashMap<String, String>,
}

/// Every object of `bucket`, read back, by key.
pub async fn objects(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<Object> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list objects");
    let mut out = Vec::new();
    for o in listed.contents.unwrap_or_default() {
        let key = o.key.expect("key");
        let got = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("get object");
        let metadata = got.metadata.clone().unwrap_or_default();
        let bytes = got.body.collect().await.expect("body").into_bytes();
        out.push(Object {
            key,
            body: String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
            metadata,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}
