//! The templates deploy the way the README says: `member.yaml` is plain
//! CloudFormation that service-managed StackSets accept, the organization
//! parameters of `template.yaml` are checked at deploy time by `Rules`, and
//! the README's StackSets commands name what the templates hold.
//!
//! The crate has no YAML dependency, and CloudFormation's short-form tags
//! (`!Ref`, `!Sub`, `!If`) need a tolerant reader anyway: [`outline`] reads
//! the block structure of a template (mapping keys by indentation, list
//! items, block scalars) and keeps every value as its raw text, which is all
//! these checks need.

use std::collections::BTreeSet;

const TEMPLATE: &str = include_str!("../template.yaml");
const MEMBER: &str = include_str!("../member.yaml");
const README: &str = include_str!("../README.md");

/// Resource types `member.yaml` may use. Service-managed StackSets deploy
/// registered AWS resource types, but refuse templates that reference
/// macros ("StackSets doesn't currently support creating or updating stack
/// sets with service-managed permissions from templates that reference
/// CloudFormation macros": AWS CloudFormation User Guide, "Overview of
/// CloudFormation macros", template-macros-overview.html), which rules out
/// `AWS::Serverless::*` (the SAM transform), `Fn::ForEach`
/// (`AWS::LanguageExtensions`) and `Custom::*` resources needing a function
/// in every account. Each entry is a plain AWS type from the CloudFormation
/// resource type reference, checked there before it was added:
const STACKSETS_TYPES: &[&str] = &[
    // aws-resource-logs-accountpolicy.html (PolicyType SUBSCRIPTION_FILTER_POLICY)
    "AWS::Logs::AccountPolicy",
    // aws-resource-events-rule.html (a target in another account's event bus, with RoleArn)
    "AWS::Events::Rule",
    // aws-resource-iam-role.html (no RoleName: CAPABILITY_IAM, one per stack instance)
    "AWS::IAM::Role",
];

// ---------------------------------------------------------------- reader

/// One line of a template's block structure: a `key: value` entry or a list
/// item (`key` is `-`), with the entries nested under it.
#[derive(Debug, Default)]
struct Node {
    key: String,
    /// The raw text after the colon (or the dash), with continuation lines
    /// and block scalars joined by spaces.
    value: String,
    children: Vec<Node>,
}

impl Node {
    /// The child entry named `key`.
    fn get(&self, key: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.key == key)
    }

    /// The entry at `path`, one key per level.
    fn at(&self, path: &[&str]) -> &Node {
        path.iter().fold(self, |node, key| {
            node.get(key)
                .unwrap_or_else(|| panic!("no `{key}` under `{}` (path {path:?})", node.key))
        })
    }

    fn keys(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.key.as_str()).collect()
    }

    /// The scalar values of a block list (`- a` lines).
    fn items(&self) -> Vec<&str> {
        self.children
            .iter()
            .filter(|c| c.key == "-")
            .map(|c| c.value.as_str())
            .collect()
    }

    /// This entry and everything nested under it, as text (for "mentions").
    fn text(&self) -> String {
        let mut out = format!("{}: {}\n", self.key, self.value);
        for c in &self.children {
            out.push_str(&c.text());
        }
        out
    }
}

/// Splits `key: value` (or `key:`); `None` for a line that is not an entry.
fn split_entry(line: &str) -> Option<(String, String)> {
    if let Some(rest) = line.strip_prefix('"') {
        let end = rest.find('"')?;
        let after = rest[end + 1..].strip_prefix(':')?;
        return Some((rest[..end].to_owned(), after.trim().to_owned()));
    }
    if line.starts_with(['[', '{', '\'', '!', '-', '>', '|']) {
        return None;
    }
    let colon = line
        .match_indices(':')
        .map(|(i, _)| i)
        .find(|&i| line[i + 1..].is_empty() || line[i + 1..].starts_with(' '))?;
    let key = &line[..colon];
    if key.contains(' ') {
        return None;
    }
    Some((key.to_owned(), line[colon + 1..].trim().to_owned()))
}

/// Reads the block structure of a YAML template (see the module doc).
fn outline(src: &str) -> Node {
    let lines: Vec<&str> = src.lines().collect();
    let mut root = Node::default();
    // Indices into the tree from the root, with each level's indentation.
    let mut stack: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        let body = raw.trim_start();
        if body.is_empty() || body.starts_with('#') || raw.starts_with("---") {
            continue;
        }
        let mut indent = raw.len() - body.len();
        while stack.last().is_some_and(|(ind, _)| *ind >= indent) {
            stack.pop();
        }
        let parent_path = stack.last().map(|(_, p)| p.clone()).unwrap_or_default();
        let mut entries = Vec::new();
        let mut rest = body;
        // `- key: value` is an item holding an entry two columns in.
        while let Some(after) =
            rest.strip_prefix("- ")
                .or(if rest == "-" { Some("") } else { None })
        {
            entries.push((indent, "-".to_owned(), String::new()));
            indent += 2;
            rest = after.trim_start();
        }
        match split_entry(rest) {
            Some((key, value)) => entries.push((indent, key, value)),
            None if !entries.is_empty() => {
                if let Some(last) = entries.last_mut() {
                    last.2 = rest.to_owned();
                }
            }
            None => {
                // A continuation of the value above (a wrapped flow list).
                let node = node_mut(&mut root, &parent_path);
                node.value = format!("{} {}", node.value, rest).trim().to_owned();
                continue;
            }
        }
        let mut path = parent_path;
        for (ind, key, value) in entries {
            let parent = node_mut(&mut root, &path);
            // `>-`, `|` and the like, alone or after a tag (`!Sub >-`).
            let is_block = value
                .split_whitespace()
                .last()
                .is_some_and(|t| t.len() <= 3 && t.starts_with(['>', '|']));
            parent.children.push(Node {
                key,
                value: if is_block { String::new() } else { value },
                children: Vec::new(),
            });
            path.push(parent.children.len() - 1);
            if is_block {
                // A block scalar: every deeper (or blank) line is its text.
                let mut text = Vec::new();
                while i < lines.len() {
                    let l = lines[i];
                    let t = l.trim_start();
                    if !t.is_empty() && l.len() - t.len() <= ind {
                        break;
                    }
                    text.push(t);
                    i += 1;
                }
                node_mut(&mut root, &path).value = text.join(" ").trim().to_owned();
            }
            stack.push((ind, path.clone()));
        }
    }
    root
}

fn node_mut<'a>(root: &'a mut Node, path: &[usize]) -> &'a mut Node {
    path.iter().fold(root, |n, &i| &mut n.children[i])
}

/// Every mapping key in the tree (logical ids, intrinsic names, properties).
fn all_keys(node: &Node, out: &mut Vec<String>) {
    for c in &node.children {
        out.push(c.key.clone());
        all_keys(c, out);
    }
}

/// The README section that starts with `heading` (up to the next `## `).
fn readme_section(heading: &str) -> &'static str {
    let start = README
        .find(heading)
        .unwrap_or_else(|| panic!("README has {heading}"));
    let rest = &README[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}

// ---------------------------------------------------------------- reader, proven

#[test]
fn reader_follows_keys_items_and_block_scalars() {
    let doc = outline(
        "A:\n  B: !Ref X # not a comment to us\n  C: !Sub >-\n    folded: text\n    more\n  D:\n    - one\n    - K: v\n      L: w\n\"E:F\": 1\nG: [a,\n  b]\n",
    );
    assert_eq!(doc.keys(), ["A", "E:F", "G"]);
    assert_eq!(doc.at(&["A", "C"]).value, "folded: text more");
    assert!(doc.at(&["A", "C"]).children.is_empty());
    assert_eq!(doc.at(&["A", "D"]).items()[0], "one");
    let second = &doc.at(&["A", "D"]).children[1];
    assert_eq!(second.keys(), ["K", "L"]);
    assert_eq!(doc.at(&["G"]).value, "[a, b]");
}

// ---------------------------------------------------------------- member.yaml

#[test]
fn member_template_uses_no_transform_or_macro() {
    let member = outline(MEMBER);
    // GIVEN service-managed StackSets, which refuse templates with macros
    // THEN member.yaml names none, in any form.
    assert!(
        !member.keys().contains(&"Transform"),
        "member.yaml has a Transform"
    );
    let mut keys = Vec::new();
    all_keys(&member, &mut keys);
    for key in &keys {
        assert!(
            !key.starts_with("Fn::ForEach") && key != "Fn::Transform" && !key.contains("&{"),
            "member.yaml uses {key}, which needs AWS::LanguageExtensions or a macro"
        );
    }
    let code: String = MEMBER
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    for function in ["Fn::ToJsonString", "Fn::Length", "!ToJsonString", "!Length"] {
        assert!(
            !code.contains(function),
            "{function} needs AWS::LanguageExtensions"
        );
    }
}

#[test]
fn member_resource_types_are_ones_stacksets_deploy() {
    let member = outline(MEMBER);
    let resources = member.at(&["Resources"]);
    assert!(!resources.children.is_empty());
    for res in &resources.children {
        let ty = &res.at(&["Type"]).value;
        assert!(
            STACKSETS_TYPES.contains(&ty.as_str()),
            "{} is {ty}, not on the list of types checked for service-managed StackSets",
            res.key
        );
    }
}

#[test]
fn member_subscribes_the_whole_account_without_cluster_names() {
    let member = outline(MEMBER);
    let params = member.at(&["Parameters"]).keys();
    assert!(
        !params.contains(&"EksClusterNames"),
        "a member account needs no list of clusters"
    );
    let policy = member.at(&["Resources", "AuditLogSubscription"]);
    assert_eq!(policy.at(&["Type"]).value, "AWS::Logs::AccountPolicy");
    assert_eq!(
        policy.at(&["Properties", "PolicyType"]).value,
        "SUBSCRIPTION_FILTER_POLICY"
    );
    assert_eq!(policy.at(&["Properties", "Scope"]).value, "ALL");
    let doc = policy.at(&["Properties", "PolicyDocument"]).text();
    assert!(
        doc.contains("\"DestinationArn\":\"${DestinationArn}\""),
        "{doc}"
    );
    assert!(doc.contains("!Ref FilterPattern"), "{doc}");
    // CloudWatch Logs selects log groups only by exclusion.
    let criteria = policy.at(&["Properties", "SelectionCriteria"]).text();
    assert!(criteria.contains("LogGroupName NOT IN ["), "{criteria}");
}

#[test]
fn every_member_parameter_is_constrained() {
    let member = outline(MEMBER);
    for p in &member.at(&["Parameters"]).children {
        assert!(
            ["AllowedPattern", "AllowedValues", "MinValue"]
                .iter()
                .any(|k| p.get(k).is_some()),
            "member.yaml parameter {} accepts anything",
            p.key
        );
    }
}

#[test]
fn filter_pattern_defaults_agree() {
    let default = |src: &str| {
        outline(src)
            .at(&["Parameters", "FilterPattern", "Default"])
            .value
            .clone()
    };
    assert_eq!(default(MEMBER), default(TEMPLATE));
}

// ---------------------------------------------------------------- logging changes

/// The CloudTrail event names a pattern matches.
fn event_names(pattern: &Node) -> BTreeSet<String> {
    pattern
        .at(&["detail", "eventName"])
        .items()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[test]
fn member_forwards_every_logging_change_the_detector_matches() {
    let member = outline(MEMBER);
    let template = outline(TEMPLATE);
    let rule = member.at(&["Resources", "TamperForwardRule", "Properties"]);
    let local = template.at(&[
        "Resources",
        "DetectorFunction",
        "Properties",
        "Events",
        "LoggingChanges",
        "Properties",
        "Pattern",
    ]);
    let forwarded = event_names(rule.at(&["EventPattern"]));
    // The local rule may match more (changes to the detector's own
    // resources, which live in the security account only).
    let matched = event_names(local);
    assert!(
        forwarded.is_subset(&matched),
        "forwarded but never matched: {:?}",
        forwarded.difference(&matched).collect::<Vec<_>>()
    );
    for name in [
        "DeleteSubscriptionFilter",
        "PutSubscriptionFilter",
        "DeleteLogGroup",
        "PutRetentionPolicy",
        "UpdateClusterConfig",
        "DeleteAccountPolicy",
        "PutAccountPolicy",
        "AssociateKmsKey",
    ] {
        assert!(forwarded.contains(name), "{name} is not forwarded");
    }
    // Rewrites the detector judges reach it.
    for name in [
        "PutRule",
        "PutTargets",
        "PutMetricAlarm",
        "PutDestination",
        "AssociateKmsKey",
        "UpdateTrail",
    ] {
        assert!(matched.contains(name), "{name} is not matched");
    }
    // Forwarded events keep the member's `account`: the local rule must not
    // pin one.
    assert!(local.get("account").is_none());
    let target = &rule.at(&["Targets"]).children[0];
    assert!(
        target.get("RoleArn").is_some(),
        "cross-account PutEvents needs a role"
    );
    // The security account lets them in.
    let bus = template.at(&["Resources", "MemberEventsPolicy"]);
    assert_eq!(bus.at(&["Type"]).value, "AWS::Events::EventBusPolicy");
    assert!(bus.text().contains("aws:PrincipalOrgID"));
    assert!(bus.text().contains("!Ref MemberAccountIds"));
}

// ---------------------------------------------------------------- template.yaml

#[test]
fn organization_parameters_are_checked_at_deploy_time() {
    let template = outline(TEMPLATE);
    let rules = template.at(&["Rules"]);
    let kinesis = rules.at(&["KinesisNeedsSenders"]);
    assert!(kinesis.at(&["RuleCondition"]).value.contains("kinesis"));
    let text = kinesis.text();
    for needed in [
        "!Ref OrganizationId",
        "!Ref MemberAccountIds",
        "AssertDescription",
    ] {
        assert!(text.contains(needed), "KinesisNeedsSenders lacks {needed}");
    }
    let subscription = rules.at(&["SubscriptionTakesNoSenders"]);
    assert!(subscription
        .at(&["RuleCondition"])
        .value
        .contains("subscription"));
    // Every assertion says what to do.
    for rule in &rules.children {
        for assertion in &rule.at(&["Assertions"]).children {
            assert!(
                assertion
                    .get("AssertDescription")
                    .is_some_and(|d| d.value.len() > 20),
                "a rule of {} fails without a message",
                rule.key
            );
        }
    }
    // And the organization parameters have patterns of their own.
    for p in [
        "EksClusterNames",
        "OrganizationId",
        "MemberAccountIds",
        "ExcludedLogGroups",
    ] {
        assert!(
            template
                .at(&["Parameters", p])
                .get("AllowedPattern")
                .is_some(),
            "{p}"
        );
    }
    assert!(template
        .at(&["Parameters", "Ingestion"])
        .get("AllowedValues")
        .is_some());
}

#[test]
fn cluster_names_make_no_logical_ids() {
    // GIVEN clusters prod-web and prod_web, which once made the same
    // logical id: the templates now make none per cluster.
    for (name, src) in [("template.yaml", TEMPLATE), ("member.yaml", MEMBER)] {
        let doc = outline(src);
        for id in doc.at(&["Resources"]).keys() {
            assert!(
                !id.starts_with("Fn::ForEach") && !id.contains("&{"),
                "{name} generates {id} per cluster"
            );
            assert!(
                !id.starts_with("SilentAuditLog"),
                "{name} keeps a per-cluster alarm {id}"
            );
        }
    }
    let template = outline(TEMPLATE);
    let cluster_names = template.at(&["Parameters", "EksClusterNames", "Default"]);
    assert_eq!(cluster_names.value, "\"\"", "EksClusterNames is optional");
}

#[test]
fn one_alarm_says_nothing_arrives_at_all() {
    let template = outline(TEMPLATE);
    let alarm = template.at(&["Resources", "NothingReceivedAlarm", "Properties"]);
    assert_eq!(alarm.at(&["Namespace"]).value, "EksAuditDetector");
    assert_eq!(alarm.at(&["MetricName"]).value, "Events");
    assert_eq!(alarm.at(&["EvaluationPeriods"]).value, "!Ref SilentMinutes");
    assert_eq!(alarm.at(&["TreatMissingData"]).value, "breaching");
    assert_eq!(alarm.at(&["AlarmActions"]).value, "[!Ref OpsTopic]");
    // The function's own silence detection gets the same number.
    let env = template.at(&[
        "Resources",
        "DetectorFunction",
        "Properties",
        "Environment",
        "Variables",
    ]);
    assert_eq!(env.at(&["SILENT_MINUTES"]).value, "!Ref SilentMinutes");
    assert_eq!(
        env.at(&["EKS_CLUSTER_NAMES"]).value,
        "!Join [\",\", !Ref EksClusterNames]"
    );
}

#[test]
fn single_account_policy_never_feeds_the_function_its_own_logs() {
    let template = outline(TEMPLATE);
    let policy = template.at(&["Resources", "AuditLogSubscription", "Properties"]);
    let criteria = policy.at(&["SelectionCriteria"]);
    // Both branches (with and without ExcludedLogGroups) leave it out.
    assert_eq!(
        criteria.text().matches("\"${FunctionLogGroup}\"").count(),
        2,
        "{}",
        criteria.text()
    );
    let permission = template.at(&["Resources", "LogsInvokePermission", "Properties"]);
    assert!(permission
        .at(&["SourceArn"])
        .value
        .ends_with(":log-group:*\""));
    assert!(permission.get("SourceAccount").is_some());
}

// ---------------------------------------------------------------- README

#[test]
fn readme_stacksets_commands_match_member_template() {
    let section = readme_section("## Organization: one detector for many accounts");
    let member = outline(MEMBER);
    let params: Vec<&str> = member.at(&["Parameters"]).keys();
    assert!(section.contains("--template-body file://member.yaml"));
    assert!(section.contains("--permission-model SERVICE_MANAGED"));
    // No transform, so no CAPABILITY_AUTO_EXPAND; an unnamed role needs CAPABILITY_IAM.
    assert!(!section.contains("CAPABILITY_AUTO_EXPAND"));
    assert!(section.contains("--capabilities CAPABILITY_IAM"));
    let mut named = 0;
    for part in section.split("ParameterKey=").skip(1) {
        let key: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(
            params.contains(&key.as_str()),
            "README passes {key}, member.yaml has {params:?}"
        );
        named += 1;
    }
    assert!(named > 0);
    // Every required parameter (no Default) is passed.
    for p in &member.at(&["Parameters"]).children {
        if p.get("Default").is_none() {
            assert!(
                section.contains(&format!("ParameterKey={}", p.key)),
                "{} is required",
                p.key
            );
        }
    }
}

#[test]
fn readme_names_every_deploy_time_rule() {
    let template = outline(TEMPLATE);
    let config = readme_section("## Organization: one detector for many accounts");
    for rule in template.at(&["Rules"]).keys() {
        assert!(config.contains(rule), "README does not explain rule {rule}");
    }
}

/// The README's StackSets commands, as the AWS CLI parses them: each must get
/// past its parameter parsing and fail only on the (unreachable) endpoint.
/// Needs an AWS CLI, named by `AWS_CLI` (e.g. a throwaway venv with `pip
/// install awscli`; it pins its own botocore, so it stays out of `.venv`);
/// without one this test checks nothing and says so.
#[test]
fn readme_stacksets_commands_parse_with_the_aws_cli() {
    let Ok(cli) = std::env::var("AWS_CLI") else {
        eprintln!("AWS_CLI not set: the README's commands were not run through the AWS CLI");
        return;
    };
    let section = readme_section("## Organization: one detector for many accounts");
    let block = section
        .split("```sh")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("create-stack-set"))
        .expect("a StackSets block");
    let joined = block.replace("\\\n", " ");
    let commands: Vec<&str> = joined
        .lines()
        .filter(|l| l.trim_start().starts_with("aws "))
        .collect();
    assert_eq!(commands.len(), 2, "{block}");
    for command in commands {
        let command = command
            .replace(
                "<DestinationArn>",
                "arn:aws:logs:us-east-1:222222222222:destination:d",
            )
            .replace("<ou-id>", "ou-abcd-12345678");
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        let out = std::process::Command::new(&cli)
            .args(&args)
            .args([
                "--endpoint-url",
                "http://127.0.0.1:9",
                "--cli-connect-timeout",
                "1",
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("the AWS CLI runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Could not connect to the endpoint URL"),
            "`{command}` did not parse:\n{stderr}"
        );
    }
}
