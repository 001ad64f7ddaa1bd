//! Seeded generator of realistic EKS audit traffic packed as CloudWatch Logs
//! subscription payloads, for the benchmarks. Deterministic for a seed.
//!
//! Modelled on kube-apiserver's output: compact JSON with `\u0026` escapes,
//! RFC3339 microsecond timestamps, watches at `ResponseStarted`, 401s with an
//! empty user, and in the `mixed` profile 10 % of requests logged at
//! `RequestResponse` level with 5-60 KB bodies.
#![allow(dead_code)]

use std::io::Write;

use base64::Engine as _;
use serde_json::{json, Value};

/// splitmix64: tiny, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }
    pub fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// Traffic profile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Profile {
    /// Every event at Metadata level (~1.3 KB).
    Metadata,
    /// 10 % RequestResponse events with 5-60 KB bodies.
    Mixed,
}

fn ts(ms: i64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!(
        "2024-05-14T{h:02}:{m:02}:{s:02}.{:03}{:03}Z",
        ms % 1000,
        (ms * 7) % 1000
    )
}

/// Go's encoding/json escaping of `&`, `<`, `>`.
fn go_json(v: &Value) -> String {
    v.to_string()
        .replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
}

const NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "payments",
    "web",
    "monitoring",
    "argocd",
];
const RESOURCES: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "services"),
    ("", "endpoints"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("coordination.k8s.io", "leases"),
    ("discovery.k8s.io", "endpointslices"),
];
const SCANNER_UAS: &[&str] = &[
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "kubectl/v1.30.1 (linux/amd64) kubernetes/6911225",
    "curl/8.5.0",
];

fn node(rng: &mut Rng) -> String {
    format!(
        "ip-10-0-{}-{}.us-west-2.compute.internal",
        rng.below(255),
        rng.below(255)
    )
}

fn body(rng: &mut Rng, target: usize) -> Value {
    let mut containers = Vec::new();
    let mut size = 0;
    while size < target {
        let c = json!({
            "name": format!("app-{}", rng.hex(6)),
            "image": format!("123456789012.dkr.ecr.us-west-2.amazonaws.com/app:{}", rng.hex(12)),
            "env": (0..8).map(|i| json!({"name": format!("VAR_{i}"), "value": rng.hex(24)})).collect::<Vec<_>>(),
            "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
            "args": ["--listen=:8080", "--metrics=:9090", "--log-level=info"],
        });
        size += c.to_string().len();
        containers.push(c);
    }
    json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": format!("web-{}", rng.hex(5)), "namespace": "web",
        "uid": rng.uuid(), "resourceVersion": rng.below(99_999_999).to_string(),
        "labels": {"app": "web", "pod-template-hash": rng.hex(10)}}, "spec": {"containers": containers}})
}

/// One audit event at `ms`; attack traffic now and then.
pub fn event(rng: &mut Rng, ms: i64, profile: Profile) -> String {
    let roll = rng.below(1000);
    let ns = *rng.pick(NAMESPACES);
    let (group, resource) = *rng.pick(RESOURCES);
    let prefix = if group.is_empty() {
        "/api/v1".to_owned()
    } else {
        format!("/apis/{group}/v1")
    };
    let mut ev = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": rng.uuid(),
        "stage": "ResponseComplete",
        "requestURI": format!("{prefix}/namespaces/{ns}/{resource}?limit=500&resourceVersion=0"),
        "verb": "list",
        "user": {"username": format!("system:serviceaccount:{ns}:controller"), "uid": rng.uuid(),
                 "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
                 "extra": {"authentication.kubernetes.io/pod-name": [format!("controller-{}-{}", rng.hex(10), rng.hex(5))],
                           "authentication.kubernetes.io/pod-uid": [rng.uuid()],
                           "authentication.kubernetes.io/node-name": [node(rng)],
                           "authentication.kubernetes.io/credential-id": [format!("JTI={}", rng.uuid())]}},
        "sourceIPs": [format!("10.0.{}.{}", rng.below(255), rng.below(255))],
        "userAgent": "kube-controller-manager/v1.29.3 (linux/amd64) kubernetes/6813625/system:serviceaccount:kube-system:node-controller",
        "objectRef": {"resource": resource, "namespace": ns, "name": format!("{resource}-{}-{}", rng.hex(10), rng.hex(5)),
                      "uid": rng.uuid(), "apiGroup": group, "apiVersion": "v1", "resourceVersion": rng.below(999_999_999).to_string()},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": ts(ms - 2), "stageTimestamp": ts(ms),
        "annotations": {"authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason": format!("RBAC: allowed by ClusterRoleBinding \"system:controller:{resource}\" of ClusterRole \"system:controller:{resource}\" to ServiceAccount \"controller/{ns}\"")},
    });
    match roll {
        // kubelet watches, started but not complete
        0..=299 => {
            let n = node(rng);
            ev["stage"] = json!("ResponseStarted");
            ev["verb"] = json!("watch");
            ev["requestURI"] = json!(format!("{prefix}/{resource}?fieldSelector=spec.nodeName%3D{n}&allowWatchBookmarks=true&resourceVersion={}&timeout=5m44s&timeoutSeconds=344&watch=true", rng.below(99_999_999)));
            ev["user"] = json!({"username": format!("system:node:{n}"), "uid": "aws-iam-authenticator:123456789012:AROACQWDBDQ6DGJUAMT4G",
                                "groups": ["system:bootstrappers", "system:nodes", "system:authenticated"],
                                "extra": {"accessKeyId": ["ASIA-EXAMPLE-KEY-ID"], "sessionName": [format!("i-0{}", rng.hex(16))]}});
            ev["userAgent"] = json!("kubelet/v1.29.3-eks-ae9a62a (linux/amd64) kubernetes/ae9a62a");
        }
        // lease renewals and status updates
        300..=599 => {
            ev["verb"] = json!(*rng.pick(&["update", "patch", "get"]));
            ev["requestURI"] = json!(format!(
                "{prefix}/namespaces/{ns}/{resource}/obj-{}?timeout=10s",
                rng.hex(5)
            ));
        }
        // private 403s (stale RBAC inside the VPC)
        600..=609 => {
            ev["responseStatus"] =
                json!({"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403});
        }
        // a public scanner's refused API calls
        610..=619 => {
            ev["responseStatus"] =
                json!({"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403});
            ev["sourceIPs"] = json!([format!("185.220.{}.{}", rng.below(4), rng.below(255))]);
            ev["user"] =
                json!({"username": "system:anonymous", "groups": ["system:unauthenticated"]});
            ev["userAgent"] = json!(*rng.pick(SCANNER_UAS));
        }
        // anonymous pod listing
        620..=623 => {
            ev["requestURI"] = json!("/api/v1/pods");
            ev["objectRef"] = json!({"resource": "pods", "apiVersion": "v1"});
            ev["user"] =
                json!({"username": "system:anonymous", "groups": ["system:unauthenticated"]});
            ev["sourceIPs"] = json!([format!("45.33.{}.{}", rng.below(4), rng.below(255))]);
            ev["responseStatus"] =
                json!({"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403});
        }
        // failed authentication: 401 at ResponseStarted with an empty user
        624..=629 => {
            ev["stage"] = json!("ResponseStarted");
            ev["user"] = json!({});
            ev["responseStatus"] = json!({"metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
        }
        _ => {}
    }
    if profile == Profile::Mixed && rng.chance(0.10) {
        let target = 5_000 + rng.below(55_000) as usize;
        ev["level"] = json!("RequestResponse");
        ev["verb"] = json!("update");
        ev["requestObject"] = body(rng, target / 2);
        ev["responseObject"] = body(rng, target / 2);
    }
    go_json(&ev)
}

/// One Lambda invoke body with about `target_bytes` of messages, and the
/// message bytes it carries.
pub fn payload(
    rng: &mut Rng,
    start_ms: i64,
    target_bytes: usize,
    profile: Profile,
) -> (Vec<u8>, usize) {
    let mut events = Vec::new();
    let mut bytes = 0;
    let mut ms = start_ms;
    while bytes < target_bytes {
        ms += 1 + rng.below(40) as i64;
        let msg = event(rng, ms, profile);
        bytes += msg.len();
        events.push(
            json!({"id": format!("{ms:013}{:043}", events.len()), "timestamp": ms, "message": msg}),
        );
    }
    let batch = json!({"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/eks/prod/cluster",
        "logStream": format!("kube-apiserver-audit-{}", rng.hex(32)), "subscriptionFilters": ["eks-audit-detector"],
        "logEvents": events});
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(batch.to_string().as_bytes())
        .expect("in-memory write");
    let data =
        base64::engine::general_purpose::STANDARD.encode(enc.finish().expect("in-memory finish"));
    (
        json!({"awslogs": {"data": data}}).to_string().into_bytes(),
        bytes,
    )
}
