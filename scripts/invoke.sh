#!/usr/bin/env bash
# Runs the function locally, as Lambda runs it, on one event:
#   cargo-lambda serves the Lambda Runtime API, the release binary polls it,
#   and `cargo lambda invoke` sends the event and prints the function's answer.
# State and alerts go to the AWS account of your credentials when
# STATE_TABLE_NAME and ALERT_TOPIC_ARN are set (e.g. your deployed stack's
# outputs); otherwise to local DynamoDB/SNS/SQS served by moto, and the alerts
# that arrive on a subscribed queue are printed.
set -euo pipefail
cd "$(dirname "$0")/.."

event=${1:?usage: scripts/invoke.sh EVENT_FILE}
tools=.venv-tools/bin
testpy=.venv/bin/python
bin=target/release/eks-audit-detector
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

if [[ -z "${STATE_TABLE_NAME:-}" || -z "${ALERT_TOPIC_ARN:-}" ]]; then
  echo "No STATE_TABLE_NAME/ALERT_TOPIC_ARN: using local AWS APIs (moto)." >&2
  coproc MOTO { "$testpy" tests/support/moto_server.py; }
  pids+=("$MOTO_PID")
  read -r ready moto_port <&"${MOTO[0]}"
  [[ "$ready" == READY ]] || { echo "moto did not start" >&2; exit 1; }
  export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  exports=$("$testpy" - <<'PY'
import boto3
ddb, sns, sqs = (boto3.client(s) for s in ("dynamodb", "sns", "sqs"))
# As template.yaml declares it: key pk, the sparse outbox index.
ddb.create_table(TableName="eks-audit-state", BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                       {"AttributeName": "outbox", "AttributeType": "S"},
                                       {"AttributeName": "since", "AttributeType": "N"}],
                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                 GlobalSecondaryIndexes=[{"IndexName": "outbox",
                                          "KeySchema": [{"AttributeName": "outbox", "KeyType": "HASH"},
                                                        {"AttributeName": "since", "KeyType": "RANGE"}],
                                          "Projection": {"ProjectionType": "ALL"}}])
topic = sns.create_topic(Name="eks-audit-alerts")["TopicArn"]
queue = sqs.create_queue(QueueName="eks-audit-alerts")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
print(f"export STATE_TABLE_NAME=eks-audit-state ALERT_TOPIC_ARN={topic} LOCAL_QUEUE_URL={queue}")
PY
)
  eval "$exports"
fi

"$tools/cargo-lambda" lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >/dev/null 2>&1 &
pids+=("$!")
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_VERSION='$LATEST' "$bin" lambda &
pids+=("$!")

timeout 120 "$tools/cargo-lambda" lambda invoke --invoke-address 127.0.0.1 --invoke-port "$port" --data-file "$event" _
echo

if [[ -n "${LOCAL_QUEUE_URL:-}" ]]; then
  "$testpy" - <<'PY'
import json, os, boto3
msgs = boto3.client("sqs").receive_message(QueueUrl=os.environ["LOCAL_QUEUE_URL"], MaxNumberOfMessages=10).get("Messages", [])
print(f"{len(msgs)} alert(s) published:")
for m in msgs:
    a = json.loads(m["Body"])
    print(f"  [{a['severity']}] {a['title']}")
PY
fi
