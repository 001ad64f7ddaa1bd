#!/usr/bin/env python3
"""Writes the sample Lambda events in events/ (deterministic: same bytes every run).

Each file is one CloudWatch Logs subscription invocation, {"awslogs":{"data": base64(gzip(json))}},
carrying kube-apiserver audit events in their real shape (compact JSON, \\u0026 escapes,
RFC3339 microsecond timestamps, EKS stream names). Run: python3 scripts/make-events.py
"""
import base64, gzip, io, json, os, sys

ACCOUNT = "123456789012"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "events")
T0 = 1732435200000  # 2024-11-24T08:00:00Z
FORBID = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
ANON = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}


def go_json(obj):
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def ts(ms, us=0):
    import datetime
    d = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ms % 1000) * 1000 + us:06d}Z"


def event(n, ms, *, uri, verb, user, ips, ua, oref, code, reason=None, stage="ResponseComplete", ann=None):
    status = {"metadata": {}, "code": code}
    if code >= 400:
        status.update({"status": "Failure", "message": f"{oref.get('resource', 'path')} is forbidden: User \"{user.get('username', '')}\" cannot {verb} resource \"{oref.get('resource', '')}\"", "reason": reason or "Forbidden", "details": {"kind": oref.get("resource", "")}})
    ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
          "auditID": f"{n:08x}-5e1f-4c8a-9d2b-{ms % 10**12:012d}", "stage": stage, "requestURI": uri,
          "verb": verb, "user": user, "sourceIPs": ips, "userAgent": ua, "objectRef": oref,
          "responseStatus": status, "requestReceivedTimestamp": ts(ms - 2, 113),
          "stageTimestamp": ts(ms, 407), "annotations": ann or ({"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""} if code < 400 else FORBID)}
    return ev


def kubelet(n, ms):
    node = "ip-10-0-234-125.us-west-2.compute.internal"
    return event(n, ms, uri=f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}?timeout=10s",
                 verb="update", user={"username": f"system:node:{node}", "uid": "aws-iam-authenticator:123456789012:AROACQWDBDQ6DGJUAMT4G",
                                      "groups": ["system:bootstrappers", "system:nodes", "system:authenticated"]},
                 ips=["10.0.234.125"], ua="kubelet/v1.29.3-eks-ae9a62a (linux/amd64) kubernetes/ae9a62a",
                 oref={"resource": "leases", "namespace": "kube-node-lease", "name": node, "apiGroup": "coordination.k8s.io", "apiVersion": "v1"},
                 code=200)


def payload(name, cluster, stream, messages):
    """messages: list of (ms, text)."""
    evs = [{"id": f"{ms:013d}{i:013d}{(ms * 7919 + i) % 10**30:030d}", "timestamp": ms, "message": text}
           for i, (ms, text) in enumerate(messages)]
    body = {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": f"/aws/eks/{cluster}/cluster",
            "logStream": stream, "subscriptionFilters": ["eks-audit-detector"], "logEvents": evs}
    write(name, body)


def encode(body):
    """base64(gzip(JSON)), as CloudWatch Logs sends a subscription payload."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(raw)
    return base64.b64encode(buf.getvalue()).decode()


def write(name, body):
    data = encode(body)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump({"awslogs": {"data": data}}, f)
        f.write("\n")



def cloudtrail(name, event_id, source, event_name, params, time):
    body = {"version": "0", "id": event_id, "detail-type": "AWS API Call via CloudTrail",
            "source": "aws." + source.split(".")[0], "account": "123456789012", "time": time,
            "region": "us-east-1", "resources": [],
            "detail": {"eventVersion": "1.09", "eventTime": time, "eventSource": source,
                       "eventName": event_name, "awsRegion": "us-east-1",
                       "userIdentity": {"type": "AssumedRole",
                                        "arn": "arn:aws:sts::123456789012:assumed-role/ci-deployer/session-7",
                                        "accountId": "123456789012"},
                       "sourceIPAddress": "198.51.100.23", "userAgent": "aws-cli/2.17.0",
                       "requestParameters": params, "responseElements": None,
                       "eventID": event_id, "readOnly": False, "eventType": "AwsApiCall",
                       "managementEvent": True, "recipientAccountId": "123456789012"}}
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(body, f, separators=(",", ":"))
        f.write("\n")


def kinesis(name, bodies):
    """A Kinesis event as Lambda's event source mapping delivers it: one
    record per subscription payload a Logs destination put in the stream."""
    records = []
    for i, body in enumerate(bodies):
        seq = f"49656{i:03d}{'7' * 48}"[:56]
        records.append({
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": f"{body['owner']}-{i}",
                        "sequenceNumber": seq, "data": encode(body),
                        "approximateArrivalTimestamp": 1732439200.123 + i},
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{seq}", "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::999999999999:role/eks-audit-detector-function",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:999999999999:stream/eks-audit-detector"})
    with open(os.path.join(OUT, name), "w") as f:
        json.dump({"Records": records}, f, separators=(",", ":"))
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    stream = "kube-apiserver-audit-6513270e269e0d37f2a74de452e6b438"
    n = 1

    # 1. A public IP probing the API with a leaked service-account token: 12 refusals in 3 minutes.
    msgs = []
    probes = [("/api/v1/secrets", "list", "secrets", None), ("/api/v1/namespaces/kube-system/secrets", "list", "secrets", "kube-system"),
              ("/apis/apps/v1/deployments", "list", "deployments", None), ("/api/v1/nodes", "list", "nodes", None),
              ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "list", "clusterrolebindings", None),
              ("/api/v1/namespaces/default/pods/web-7d4b9c/exec?command=id\u0026stdout=true", "create", "pods", "default")]
    leaked = {"username": "system:serviceaccount:default:default", "uid": "0f6e3a8e-2b1c-4d5e-9f70-8a9b0c1d2e3f",
              "groups": ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]}
    for i in range(12):
        ms = T0 + i * 15000 + 311
        uri, verb, res, ns = probes[i % len(probes)]
        oref = {"resource": res, "apiVersion": "v1"}
        if ns:
            oref["namespace"] = ns
        if "exec" in uri:
            oref.update({"name": "web-7d4b9c", "subresource": "exec"})
        msgs.append((ms - 40, go_json(kubelet(n, ms - 40)))); n += 1
        msgs.append((ms, go_json(event(n, ms, uri=uri.replace("\u0026", "&"), verb=verb, user=leaked, ips=["185.220.101.47"],
                                       ua="kubectl/v1.30.1 (linux/amd64) kubernetes/6911225", oref=oref, code=403)))); n += 1
    payload("01-public-403-burst.json", "prod-payments", stream, msgs)

    # 2. The same burst shape from inside the VPC (coredns with a stale role): private IP, no alert.
    msgs = []
    for i in range(15):
        ms = T0 + 600000 + i * 4000
        msgs.append((ms, go_json(event(n, ms, uri="/apis/discovery.k8s.io/v1/endpointslices?allowWatchBookmarks=true&resourceVersion=2528212&timeout=5m56s&timeoutSeconds=356&watch=true",
                                       verb="watch", user={"username": "system:serviceaccount:kube-system:coredns", "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]},
                                       ips=["10.0.27.115"], ua="coredns/v1.11.1 (linux/amd64) kubernetes/ae9a62a",
                                       oref={"resource": "endpointslices", "apiGroup": "discovery.k8s.io", "apiVersion": "v1"}, code=403)))); n += 1
    payload("02-private-403-burst.json", "prod-payments", stream, msgs)

    # 3. An unauthenticated client lists every pod and is refused: LOW.
    scanner_ip, scanner_ua = "45.33.32.156", "python-requests/2.31.0"
    ms = T0 + 1200000
    msgs = [(ms - 900, go_json(kubelet(n, ms - 900)))]; n += 1
    msgs.append((ms, go_json(event(n, ms, uri="/api/v1/pods", verb="list", user=ANON, ips=[scanner_ip], ua=scanner_ua,
                                   oref={"resource": "pods", "apiVersion": "v1"}, code=403)))); n += 1
    payload("03-pod-scan-refused.json", "prod-web", "kube-apiserver-audit-59ff2a92396531f12adbc8585cc48530", msgs)

    # 4. Twenty minutes later the same client succeeds (someone bound system:anonymous to "view"): HIGH.
    ms = T0 + 2400000
    allow = {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "anonymous-view" of ClusterRole "view" to User "system:anonymous"'}
    msgs = [(ms, go_json(event(n, ms, uri="/api/v1/pods", verb="list", user=ANON, ips=[scanner_ip], ua=scanner_ua,
                               oref={"resource": "pods", "apiVersion": "v1"}, code=200, ann=allow)))]; n += 1
    payload("04-pod-scan-allowed.json", "prod-web", "kube-apiserver-audit-e1c82f1d9c38cb57d0dbaad5e3cd9c9e", msgs)

    # 5. CloudWatch checking the subscription.
    write("05-control-message.json", {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
                                      "logStream": "", "subscriptionFilters": [], "logEvents": [
                                          {"id": "", "timestamp": T0, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]})

    # 6. Normal traffic with lines that are not usable audit events.
    ms = T0 + 3000000
    big = go_json(event(n, ms, uri="/api/v1/namespaces/default/configmaps/big", verb="update", user=ANON, ips=["203.0.113.9"],
                        ua="kubectl/v1.30.1", oref={"resource": "configmaps", "apiVersion": "v1"}, code=403))
    msgs = [(ms, go_json(kubelet(n + 1, ms))),
            (ms + 1, big[:180] + "[Truncated...]"),
            (ms + 2, 'time="2024-11-24T08:50:00Z" level=info msg="access granted" arn="arn:aws:iam::123456789012:role/eks-node" client="127.0.0.1:42114" method=POST path=/authenticate uid="aws-iam-authenticator:123456789012:AROACQWDBDQ6DGJUAMT4G" username="system:node:ip-10-0-234-125"'),
            (ms + 3, '{"level":"info","ts":1732438200.123,"caller":"server/server.go:403","msg":"access granted","username":"kubernetes-admin"}'),
            (ms + 4, go_json(kubelet(n + 2, ms + 4)))]
    n += 3
    payload("06-bad-lines.json", "prod-payments", stream, msgs)

    # 7. The EventBridge schedule that delivers alerts left undelivered.
    with open(os.path.join(OUT, "07-scheduled-sweep.json"), "w") as f:
        json.dump({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
                   "source": "aws.events", "account": "123456789012", "time": "2024-11-24T08:05:00Z",
                   "region": "us-east-1",
                   "resources": ["arn:aws:events:us-east-1:123456789012:rule/eks-audit-detector-OutboxSweep"],
                   "detail": {}}, f, separators=(",", ":"))
        f.write("\n")

    # 8-9. CloudTrail management events that blind the detector, as the
    # EventBridge rule delivers them.
    cloudtrail("08-subscription-filter-deleted.json", "0b8c1f7e-3a51-4f7e-9d1a-6a2f41c0e801",
               "logs.amazonaws.com", "DeleteSubscriptionFilter",
               {"logGroupName": "/aws/eks/prod-payments/cluster",
                "filterName": "eks-audit-detector-eks-audit-detector"}, "2024-11-24T09:10:00Z")
    cloudtrail("09-audit-logging-disabled.json", "0b8c1f7e-3a51-4f7e-9d1a-6a2f41c0e802",
               "eks.amazonaws.com", "UpdateClusterConfig",
               {"name": "prod-web", "logging": {"clusterLogging": [{"types": ["audit"], "enabled": False}]}},
               "2024-11-24T09:12:00Z")

    # 10. One detector for an organization: a Kinesis batch from a Logs
    # destination with the same 403 burst on a cluster named prod in two
    # accounts, and a CONTROL_MESSAGE.
    def prod_burst(account, first):
        ms = T0 + 4000000
        msgs = [(ms + i * 1000, go_json(event(first + i, ms + i * 1000, uri="/api/v1/secrets", verb="list",
                                              user={"username": "system:serviceaccount:default:default"},
                                              ips=["185.220.101.47"], ua="kubectl/v1.30.1 (linux/amd64) kubernetes/6911225",
                                              oref={"resource": "secrets", "apiVersion": "v1"}, code=403)))
                for i in range(10)]
        return {"messageType": "DATA_MESSAGE", "owner": account, "logGroup": "/aws/eks/prod/cluster",
                "logStream": f"kube-apiserver-audit-{account}", "subscriptionFilters": ["to-security-account"],
                "logEvents": [{"id": f"{m:013d}{j:013d}{int(account) % 10**10:010d}", "timestamp": m, "message": t}
                              for j, (m, t) in enumerate(msgs)]}
    kinesis("10-kinesis-two-accounts.json", [
        prod_burst("111111111111", 9000),
        prod_burst("222222222222", 9100),
        {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
         "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": T0 + 4100000,
                                                   "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]},
    ])


if __name__ == "__main__":
    sys.exit(main())
