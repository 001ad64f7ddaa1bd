//! Alerts: the stable JSON document, the e-mail text and the subject line.
//!
//! The JSON is what SQS, Lambda and HTTPS subscribers receive; its field
//! names are a public interface. Every string that came from a request
//! (user agent, URI, username) is attacker-controlled: the JSON escapes it by
//! construction, the text renderings strip control characters, and the
//! investigation query quotes it (or leaves it out).
//!
//! An alert is rendered where the window decides it ([`Alert::render`]) and
//! placed where it is published ([`Alert::locate`]): the region, the
//! cluster's ARN and the console link depend on where the detector runs,
//! and an alert waiting in an outbox may have been rendered by an older
//! version.

use crate::bounded::{subject_text, MAX_SUBJECT_CHARS};
use crate::rules::Rule;
use crate::time::format_rfc3339;
mod email;
mod place;

pub use crate::vocab::Alert;
use crate::vocab::{stable_hash, AlertContext, Condition, Investigate, Sample};
use crate::window::{Decision, WindowState};
use place::is_region;
pub use place::{
    cloudtrail_url, cluster_arn, cluster_name, insights_url, js_escape, query_string, query_text,
};

/// The columns of the investigation query, before its conditions.
pub const QUERY_FIELDS: &str = "fields @timestamp, user.username, verb, requestURI, \
     objectRef.namespace, objectRef.name, responseStatus.code, sourceIPs.0, userAgent";

/// The end of the investigation query, after its conditions.
pub const QUERY_END: &str = "sort @timestamp asc | limit 500";

impl Alert {
    /// The alert `rule` owes for a window, as the window stands now.
    pub fn render(rule: &dyn Rule, st: &WindowState, decision: Decision) -> Self {
        let Decision {
            severity,
            escalation,
            threshold,
        } = decision;
        let meta = rule.meta();
        let start = st.window_start.to_string();
        let id = if escalation {
            stable_hash(&[
                meta.id.as_str(),
                &st.dedup,
                &start,
                "escalation",
                severity.as_str(),
            ])
        } else {
            stable_hash(&[meta.id.as_str(), &st.dedup, &start])
        };
        // An escalation shows the request that made it worse.
        let sample = match (&st.escalation_sample, escalation) {
            (Some(s), true) => s.clone(),
            _ => st.sample.clone(),
        };
        Self {
            alert_id: format!("{id:032x}"),
            rule_id: st.rule,
            rule_name: meta.name.to_owned(),
            headline: rule.headline(severity).to_owned(),
            severity,
            escalation,
            title: rule.title(st, severity),
            dedup: st.dedup.clone(),
            cluster: st.cluster.clone(),
            source_ip: st.source_ip.clone(),
            event_count: st.count,
            threshold,
            window_start: format_rfc3339(st.window_start),
            window_end: format_rfc3339(st.window_end()),
            first_seen: format_rfc3339(st.first_seen),
            last_seen: format_rfc3339(st.last_seen),
            mitre: meta.mitre.to_owned(),
            reference: meta.reference.to_owned(),
            runbook: meta.runbook.to_owned(),
            summary: rule.summary(st),
            log_group: st.log_group.clone(),
            account: st.account.clone(),
            context: AlertContext::of(st, &sample),
            sample: std::sync::Arc::unwrap_or_clone(sample),
            fanout_dropped: st.fanout_dropped,
            // Placed when published (see `locate`).
            region: None,
            cluster_arn: None,
            investigate: Some(Investigate {
                query: query_text(&rule.investigate(st)),
                console_url: None,
            }),
        }
    }

    /// Fills in what depends on where the detector runs: `region` (the
    /// function's, passed in by the handler), the cluster's ARN and the
    /// console link of the investigation query. An alert rendered by an
    /// older version (waiting in an outbox) gets a context and a query from
    /// its own fields. Calling it again gives the same result.
    pub fn locate(&mut self, region: Option<&str>) {
        let region = region.map(str::trim).filter(|r| !r.is_empty());
        self.region = region.map(str::to_owned);
        // Only a region that reads as one goes into ARNs and links.
        let region = region.filter(|r| is_region(r));
        self.cluster_arn = region.and_then(|r| cluster_arn(r, &self.account, &self.log_group));
        if self.context.is_empty() {
            self.context = AlertContext::of_sample(&self.sample);
        }
        if self.rule_id == crate::tamper::RULE_ID {
            // A CloudTrail event, not requests in an audit log: its e-mail
            // links the event in CloudTrail instead.
            self.investigate = None;
            return;
        }
        let query = match self.investigate.take() {
            Some(i) if !i.query.is_empty() => i.query,
            _ => query_text(&self.fallback_conditions()),
        };
        let console_url = region.and_then(|r| {
            insights_url(
                r,
                &self.log_group,
                &self.window_start,
                &self.window_end,
                &query,
            )
        });
        self.investigate = Some(Investigate { query, console_url });
    }

    /// Conditions from the alert alone, for one stored without a query: its
    /// address, and the sample's fields when the sample is the window's
    /// only request.
    fn fallback_conditions(&self) -> Vec<Condition> {
        let mut out = Vec::new();
        if crate::net::parse_ip(&self.source_ip).is_some() {
            out.push(Condition::Mentions(self.source_ip.clone()));
        }
        if self.event_count == 1 {
            let s = &self.sample;
            for (field, value) in [
                ("user.username", &s.username),
                ("verb", &s.verb),
                ("objectRef.resource", &s.resource),
            ] {
                if let Some(v) = value {
                    out.push(Condition::OneOf(field, vec![v.clone()]));
                }
            }
            if let Some(code) = s.response_status.code {
                out.push(Condition::OneOfNumbers("responseStatus.code", vec![code]));
            }
        }
        out
    }

    /// The alert without its request sample, summary, context and query:
    /// what is published when the whole alert is refused as too large
    /// (which the caps make unexpected), so the alert still reaches people.
    pub fn minimal(&self) -> Self {
        // A tampering report's summary is who did what and how it ended
        // (capped values): without it a refused attempt reads as done.
        let summary = if self.rule_id == crate::tamper::RULE_ID {
            self.summary.clone()
        } else {
            serde_json::Value::Object(serde_json::Map::new())
        };
        Self {
            summary,
            sample: Sample::default(),
            title: crate::bounded::cap(&self.title),
            runbook: String::new(),
            context: AlertContext::default(),
            investigate: None,
            ..self.clone()
        }
    }

    /// Subject line: printable ASCII, fewer than 100 characters, no markup
    /// or mention characters from the request.
    pub fn subject(&self) -> String {
        let what = if self.headline.is_empty() {
            &self.rule_name
        } else {
            &self.headline
        };
        let what = subject_text(what, MAX_SUBJECT_CHARS);
        let raw = format!(
            "[{}] {what} from {} on {}",
            self.severity.as_str(),
            subject_text(&self.source_ip, MAX_SUBJECT_CHARS),
            subject_text(&self.cluster, MAX_SUBJECT_CHARS)
        );
        if raw.len() <= MAX_SUBJECT_CHARS {
            return raw;
        }
        // Cut on ASCII, so byte length is character count.
        let mut s = raw;
        s.truncate(MAX_SUBJECT_CHARS - 3);
        s.push_str("...");
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::place::*;
    use super::*;
    use crate::config::DetectorConfig;
    use crate::rules::pod_scan::PodScan;
    use crate::vocab::{Match, MatchedEvent, SampleStatus, Severity, WindowParams};
    use crate::window::{apply_batch, BatchInfo};

    #[test]
    fn stable_hash_is_stable_and_separates_parts() {
        assert_eq!(stable_hash(&["a", "b"]), stable_hash(&["a", "b"]));
        assert_ne!(stable_hash(&["ab", ""]), stable_hash(&["a", "b"]));
        // Pinned: alert ids must not change between releases, or subscribers
        // deduplicating by alert_id would see old alerts as new.
        assert_eq!(
            format!("{:032x}", stable_hash(&["x"])),
            "0880955b50ab1be95aa0733055c4c358"
        );
    }

    /// A pod-scan alert whose attacker-controlled fields (a forwarded
    /// address, the user agent) carry control characters and non-ASCII text.
    pub(crate) fn hostile_alert() -> Alert {
        let evil_ip = format!("1.2.3.4\r\nBcc: victim@example.com {}", "ü".repeat(80));
        let m = Match {
            rule: crate::rules::pod_scan::META.id,
            dedup: format!("prod_{evil_ip}_system:anonymous_system:unauthenticated"),
            at_ms: 1_715_644_800_000,
            source_ip: evil_ip,
            severity: Severity::High,
            event: std::sync::Arc::new(MatchedEvent {
                sample: Sample {
                    user_agent: Some("curl\u{1b}[31m\nInjected: <!here> @channel\u{202e}".into()),
                    request_uri: Some("/api/v1/pods".into()),
                    response_status: SampleStatus {
                        code: Some(200),
                        reason: None,
                    },
                    ..Sample::default()
                }
                .into(),
                ..MatchedEvent::default()
            }),
            facts: vec![("user.groups{}", "system:unauthenticated".into())],
        };
        let batch = BatchInfo {
            id: "b",
            cluster: "prod",
            log_group: "/aws/eks/prod/cluster",
            account: "1",
            now_ms: 0,
            horizon_ms: crate::window::DEFAULT_HORIZON_MS,
            stamped_until: 0,
        };
        let params = WindowParams {
            threshold: 1,
            window_ms: 3_600_000,
            max_severity: Severity::High,
        };
        let rule = PodScan::new(&DetectorConfig::default());
        apply_batch(None, params, &batch, &[&m], &|st, d| {
            Alert::render(&rule, st, d)
        })
        .expect("applied")
        .alerts
        .remove(0)
    }

    #[test]
    fn subject_is_short_printable_ascii() {
        let subject = hostile_alert().subject();
        // SNS: "less than 100 characters".
        assert!(subject.len() < 100, "{subject}");
        assert!(
            subject
                .chars()
                .all(|c| c.is_ascii() && !c.is_ascii_control()),
            "{subject:?}"
        );
        assert!(
            subject.starts_with("[HIGH] EKS anonymous pod listing ALLOWED from 1.2.3.4??Bcc"),
            "{subject}"
        );
    }

    #[test]
    fn email_text_cannot_be_given_extra_lines_by_a_request() {
        let alert = hostile_alert();
        let text = alert.email_text();
        assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("Bcc:") || l.starts_with("Injected:")),
            "{text}"
        );
        assert!(
            !text.contains("<!here>") && !text.contains("@channel"),
            "{text}"
        );
        assert!(text.contains("Severity:   HIGH"));
        assert!(text.contains("What to check next:"));
        // The JSON keeps the value as sent, escaped.
        assert!(alert.to_json().contains(r"\r\nBcc"));
        assert!(alert.to_json().contains("<!here> @channel"));
    }

    /// An alert as a version without region, context or query stored it.
    const OLD_ALERT: &str = r#"{"alert_id": "0123", "rule_id": "Amazon.EKS.Audit.Multiple403",
        "rule_name": "r", "severity": "INFO", "escalation": false, "title": "t", "dedup": "d",
        "cluster": "prod", "source_ip": "5.5.5.5", "event_count": 1, "threshold": 10,
        "window_start": "2024-05-14T00:00:00.000Z", "window_end": "2024-05-14T00:30:00.000Z",
        "first_seen": "", "last_seen": "", "mitre": "", "reference": "", "runbook": "",
        "summary": {}, "log_group": "/aws/eks/prod/cluster", "account": "123456789012",
        "sample": {"auditID": "a", "requestURI": "/api/v1/secrets", "verb": "list",
        "userAgent": "curl/8", "username": "bob", "responseStatus": {"code": 403,
        "reason": "Forbidden"}, "stageTimestamp": null}}"#;

    fn old_alert() -> Alert {
        serde_json::from_str(OLD_ALERT).expect("an old alert reads")
    }

    #[test]
    fn an_alert_stored_by_an_older_version_still_reads_and_is_placed() {
        let mut a = old_alert();
        assert_eq!((a.region.as_ref(), a.cluster_arn.as_ref()), (None, None));
        assert!(a.context.is_empty() && a.investigate.is_none());
        assert_eq!(a.sample.source_ips, Vec::<String>::new());
        a.locate(Some("eu-central-1"));
        assert_eq!(
            a.cluster_arn.as_deref(),
            Some("arn:aws:eks:eu-central-1:123456789012:cluster/prod")
        );
        assert_eq!(a.context.username, ["bob"]);
        assert_eq!(a.context.response_status, [403]);
        // one request: its sample narrows the query
        let q = &a.investigate.as_ref().expect("a query").query;
        assert!(
            q.contains(
                r#"filter @message like "5.5.5.5" and user.username = "bob" and verb = "list""#
            ),
            "{q}"
        );
        // placing it again changes nothing
        let once = a.clone();
        a.locate(Some("eu-central-1"));
        assert_eq!(a, once);
    }

    #[test]
    fn cluster_arns_follow_the_partition_and_need_a_cluster_log_group() {
        let arn = |region, group| cluster_arn(region, "123456789012", group);
        let g = "/aws/eks/prod-1_a/cluster";
        assert_eq!(
            arn("us-east-1", g).as_deref(),
            Some("arn:aws:eks:us-east-1:123456789012:cluster/prod-1_a")
        );
        assert_eq!(
            arn("cn-northwest-1", g).as_deref(),
            Some("arn:aws-cn:eks:cn-northwest-1:123456789012:cluster/prod-1_a")
        );
        assert_eq!(
            arn("us-gov-west-1", g).as_deref(),
            Some("arn:aws-us-gov:eks:us-gov-west-1:123456789012:cluster/prod-1_a")
        );
        for bad in [
            "",
            "/aws/eks/cluster",
            "/aws/eks//cluster",
            "/aws/eks/a/b/cluster",
            "/aws/eks/prod/cluster/",
            "/aws/lambda/prod",
            "/aws/eks/-prod/cluster",
            "/aws/eks/pr\"od/cluster",
            &format!("/aws/eks/{}/cluster", "x".repeat(101)),
        ] {
            assert_eq!(arn("us-east-1", bad), None, "{bad}");
        }
        assert_eq!(cluster_arn("us-east-1", "", g), None, "no account");
        assert_eq!(cluster_arn("us-east-1", "12345", g), None, "not an account");
        assert_eq!(
            cluster_arn("US East", "123456789012", g),
            None,
            "not a region"
        );
        // and an alert without a region gets none, nor a link
        let mut a = old_alert();
        a.locate(None);
        assert_eq!(a.region, None);
        assert_eq!(a.cluster_arn, None);
        assert_eq!(
            a.investigate.as_ref().and_then(|i| i.console_url.as_ref()),
            None
        );
    }

    #[test]
    fn query_values_are_escaped_and_control_characters_never_reach_the_query() {
        assert_eq!(query_string(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(query_string("a\u{0}b\r\nc\u{7f}"), "abc");
        let q = query_text(&[
            Condition::Mentions("1.2.3.4".into()),
            Condition::OneOf("user.username", vec![r#"x" or verb = "y\"#.into()]),
        ]);
        assert!(
            q.contains(
                r#"filter @message like "1.2.3.4" and user.username = "x\" or verb = \"y\\""#
            ),
            "{q}"
        );
        // a value with control characters would compare unequal once they
        // are dropped: the condition is left out, never half-kept
        let q = query_text(&[
            Condition::OneOf("verb", vec!["get".into(), "li\u{1b}st".into()]),
            Condition::OneOfNumbers("responseStatus.code", vec![403, 404]),
        ]);
        assert!(!q.contains('\u{1b}') && !q.contains("filter verb"), "{q}");
        assert!(
            q.contains("filter responseStatus.code in [403, 404] |"),
            "{q}"
        );
    }

    #[test]
    fn cut_and_overlong_values_are_left_out_of_the_query() {
        let cut = crate::bounded::cap(&"a".repeat(1000));
        assert!(cut.contains(CUT_MARKER));
        let q = query_text(&[
            Condition::Mentions("9.9.9.9".into()),
            Condition::OneOf("user.username", vec![cut]),
            Condition::OneOf("objectRef.resource", vec!["é".repeat(129)]),
            Condition::OneOf("verb", vec!["x".repeat(256)]),
        ]);
        assert!(
            !q.contains("[cut") && !q.contains("username =") && !q.contains('é'),
            "{q}"
        );
        assert!(
            q.contains(&format!(r#"verb = "{}""#, "x".repeat(256))),
            "{q}"
        );
        // nothing usable: every request of the time range
        assert_eq!(
            query_text(&[Condition::Mentions("x…[cut, 9 bytes]".into())]),
            format!("{QUERY_FIELDS} | {QUERY_END}")
        );
    }

    #[test]
    fn the_console_link_encodes_the_query_like_javascript_escape() {
        let q = query_text(&[
            Condition::Mentions("1.2.3.4".into()),
            Condition::OneOf("verb", vec!["get".into(), "list".into()]),
        ]);
        assert_eq!(
            q,
            "fields @timestamp, user.username, verb, requestURI, objectRef.namespace, \
             objectRef.name, responseStatus.code, sourceIPs.0, userAgent | filter @message \
             like \"1.2.3.4\" and verb in [\"get\", \"list\"] | sort @timestamp asc | limit 500"
        );
        let url = insights_url(
            "us-east-1",
            "/aws/eks/prod/cluster",
            "2024-05-14T00:00:00.000Z",
            "2024-05-14T00:30:00.000Z",
            &q,
        );
        assert_eq!(
            url.as_deref(),
            Some(
                "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1\
                 #logsV2:logs-insights$3FqueryDetail$3D~(end~'2024-05-14T00*3A30*3A00.000Z\
                 ~start~'2024-05-14T00*3A00*3A00.000Z~timeType~'ABSOLUTE~tz~'UTC~editorString~'\
                 fields*20@timestamp*2C*20user.username*2C*20verb*2C*20requestURI*2C*20\
                 objectRef.namespace*2C*20objectRef.name*2C*20responseStatus.code*2C*20\
                 sourceIPs.0*2C*20userAgent*20*7C*20filter*20@message*20like*20*221.2.3.4*22\
                 *20and*20verb*20in*20*5B*22get*22*2C*20*22list*22*5D*20*7C*20sort*20\
                 @timestamp*20asc*20*7C*20limit*20500~source~(~'/aws/eks/prod/cluster))"
            )
        );
        // escape() keeps these; other bytes, UTF-8 ones too, become %XX
        assert_eq!(js_escape("aZ9@*_+-./ ~'é"), "aZ9@*_+-./%20%7E%27%C3%A9");
        // a `*` of the value itself must not read as an escape
        assert_eq!(console_escape("a*b"), "a*2Ab");
        // other partitions, their own console
        let host = |r| insights_url(r, "/g", "s", "e", "q").expect("link");
        assert!(host("cn-north-1").starts_with("https://cn-north-1.console.amazonaws.cn/"));
        assert!(host("us-gov-east-1")
            .starts_with("https://us-gov-east-1.console.amazonaws-us-gov.com/"));
        assert_eq!(insights_url("us-east-1", "", "s", "e", "q"), None);
    }

    #[test]
    fn the_longest_query_and_link_a_window_can_give_stay_small() {
        // GIVEN the most a query takes: an IPv6 address, a username and five
        // verbs and resources of 256 bytes that each double when escaped
        let v = |n: usize| format!("{n}{}", "\"".repeat(255));
        let q = query_text(&[
            Condition::Mentions("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".into()),
            Condition::OneOf("user.username", vec![v(0)]),
            Condition::OneOf("verb", (1..=5).map(v).collect()),
            Condition::OneOf("objectRef.resource", (6..=10).map(v).collect()),
            Condition::OneOfNumbers("responseStatus.code", vec![400, 401, 403, 404, 500]),
        ]);
        let url = insights_url("us-gov-west-1", &"/g".repeat(256), "s", "e", &q).expect("url");
        // THEN both stay far from SNS's 256 KB (Logs Insights takes 10,000
        // characters of query)
        assert!(q.len() < 6_000, "{} bytes", q.len());
        assert!(url.len() < 20_000, "{} bytes", url.len());
    }

    #[test]
    fn the_minimal_alert_drops_context_and_query() {
        let mut a = hostile_alert();
        a.locate(Some("us-east-1"));
        assert!(!a.context.is_empty() && a.investigate.is_some());
        let m = a.minimal();
        assert!(m.context.is_empty() && m.investigate.is_none());
        assert_eq!(m.sample, Sample::default());
        // where it is stays: it is short
        assert_eq!(m.cluster_arn, a.cluster_arn);
        assert!(!m.email_text().contains("First matching request"));
    }

    #[test]
    fn email_text_shows_where_and_what_the_window_saw() {
        let mut a = hostile_alert();
        a.locate(Some("us-east-1"));
        let text = a.email_text();
        for line in [
            "Region: us-east-1",
            "  responseStatus  200",
            "  requestURI      /api/v1/pods",
            "Investigate (",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        // account "1" is no account: no ARN, nor a forged line
        assert!(text.contains("Cluster ARN: -"), "{text}");
    }

    /// A tamper alert, as CloudTrail's record `detail` makes it.
    fn tamper(extra: serde_json::Value) -> Alert {
        let mut detail = serde_json::json!({
            "eventSource": "logs.amazonaws.com", "eventName": "DeleteSubscriptionFilter",
            "eventID": "7c1d2e3f-4a5b-4c6d-8e7f-000000000039",
            "eventTime": "2024-11-24T09:59:00Z", "recipientAccountId": "123456789012",
            "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/Admin/mallory"},
            "sourceIPAddress": "203.0.113.66", "userAgent": "aws-cli/2 <!here>",
            "requestParameters": {"logGroupName": "/aws/eks/prod/cluster", "filterName": "f"},
        });
        if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        let mut a = crate::tamper::assess(&detail, &[]).expect("a tamper alert");
        a.locate(Some("us-east-1"));
        a
    }

    #[test]
    fn a_tamper_alert_says_who_did_what_and_whether_it_worked() {
        let done = tamper(serde_json::json!({})).email_text();
        for line in [
            "Who:        arn:aws:sts::123456789012:assumed-role/Admin/mallory\n",
            "Did what:   DeleteSubscriptionFilter on logs.amazonaws.com\n",
            "To:         prod\n",
            "From:       203.0.113.66 (user agent aws-cli/2 ‹!here›)\n",
            "Result:     succeeded\n",
            "Event id:   7c1d2e3f-4a5b-4c6d-8e7f-000000000039\n",
            "CloudTrail: https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/7c1d2e3f-4a5b-4c6d-8e7f-000000000039\n",
            "\"logGroupName\":\"/aws/eks/prod/cluster\"",
        ] {
            assert!(done.contains(line), "{line:?} in\n{done}");
        }
        assert!(!done.contains("First matching request") && !done.contains("Investigate"));
        let refused = tamper(serde_json::json!({
            "errorCode": "AccessDenied", "errorMessage": "not authorized",
        }))
        .email_text();
        assert!(
            refused.contains("Result:     FAILED: AccessDenied (not authorized)\n"),
            "{refused}"
        );
        // no region: no CloudTrail link; an id that is not one: none either
        let mut a = tamper(serde_json::json!({}));
        a.locate(None);
        assert!(!a.email_text().contains("CloudTrail:"));
        assert_eq!(cloudtrail_url("us-east-1", "x/../y"), None);
    }

    #[test]
    fn a_silence_alert_says_since_when_and_links_the_log_group() {
        let mut watch = std::collections::BTreeMap::new();
        crate::silence::hear(
            &mut watch,
            "prod",
            "/aws/eks/prod/cluster",
            "123456789012",
            0,
            1,
        );
        let (mut alerts, _) =
            crate::silence::silent(&mut watch, 90 * 60_000, 60 * 60_000, |_| true);
        let mut a = alerts.remove(0);
        a.locate(Some("us-east-1"));
        let text = a.email_text();
        assert!(
            text.contains("Last heard: 1970-01-01T00:00:00.000Z"),
            "{text}"
        );
        assert!(!text.contains("First matching request"), "{text}");
        assert!(
            text.contains("https://us-east-1.console.aws.amazon.com/cloudwatch/"),
            "{text}"
        );
        assert_eq!(
            a.investigate.as_ref().map(|i| i.query.as_str()),
            Some(format!("{QUERY_FIELDS} | {QUERY_END}").as_str())
        );
    }
}
