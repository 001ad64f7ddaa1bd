//! eks-audit-detector: detections on Amazon EKS Kubernetes audit logs,
//! delivered by a CloudWatch Logs subscription to an AWS Lambda function.
//!
//! # Layout
//!
//! The core is pure: it takes bytes and event times and returns matches,
//! window states and alerts; it never reads the environment, the clock or the
//! network. I/O lives at the edges behind small traits. Read it top-down;
//! no module imports one that imports it back:
//!
//! ```text
//! vocab ← window ← sigma ← config ← rules ← alert ← store, sink ← handler ← lambda, replay
//! ```
//!
//! - [`vocab`]: the shared words: rule ids and metadata, severities, matches,
//!   verdicts, window settings, the alert document.
//! - [`config`]: environment → validated [`config::DetectorConfig`], with
//!   per-rule settings (`rule_settings.rs`) and the detector's own resources
//!   whose changes are reported (`resources.rs`).
//! - [`window`]: windows, thresholds, dedup, redelivery, the earlier windows
//!   late matches still count in, and the outbox of a key, as a state
//!   machine that decides alerts without rendering them; a window's
//!   summary tallies are shared by copies of its state (`tallies.rs`).
//! - [`rules`]: the rule trait and anchors, the [`rules::registry`] (one
//!   line per rule), one file per rule (Panther's catalog under `panther/`,
//!   single-event rules through `catalog/`, workload templates under
//!   `workload/`), rule options (`options.rs`), settings applied to any rule
//!   (`configured.rs`), what an alert shows of a window's requests
//!   (`context.rs`), the filter pattern (`filter.rs`), `rules list`
//!   (`listing.rs`) and the [`rules::Detector`] (`detector.rs`).
//! - [`sigma`]: Sigma rules of your own: files → documents → checked,
//!   compiled rules and `file:line: reason` problems (`load.rs`), their
//!   correlations bound to the detections they name (`correlate.rs`), the
//!   EKS field mapping (`eks.rs`), the strings the prefilter looks for
//!   (`literals.rs`), the event as Sigma rules read it, each member parsed
//!   on first read (`event.rs`), answered from the detector's own parse
//!   where that reads the same (`known.rs`); `rules/sigma.rs` makes each a
//!   rule of the registry.
//! - [`alert`]: renders a decision into the alert document and subject
//!   (mod.rs), its e-mail layouts (email.rs), and places it where it is
//!   published: region, cluster ARN, the investigation query and its
//!   console link (place.rs).
//! - [`decode`]: Lambda event → subscription batch or schedule (capped
//!   gunzip, lenient log entries; CloudWatch's envelope read directly,
//!   `envelope.rs`, finding each message's end 64 bytes at a step,
//!   `string_end.rs`; serde_json's reading of a log entry, `entries.rs`; a
//!   candidate message unescaped a block at a time, `unescape.rs`).
//! - [`audit`]: the audit event, only the fields we use, borrowed (mod.rs),
//!   and the members serde's derived reading would misread: `sourceIPs`,
//!   members that must be objects, the status code (`fields.rs`).
//! - [`bounded`]: caps and neutralises attacker-controlled text, in one place;
//!   the size of a value as compact JSON, counted without writing it
//!   (`size.rs`); bodies parsed so no value can hide the rest (`json.rs`).
//! - [`prefilter`]: conservative byte test, from the rules' anchors, that
//!   skips most messages unparsed (mod.rs), the built-in rules' exact
//!   strings and words found in one pass (exact.rs), whether its user may
//!   be a person rather than a system principal (principal.rs), which
//!   Sigma rules a message may match (folded.rs), the short strings and
//!   escapes every message is searched for in one pass (marks.rs), and the
//!   one search they use (search.rs).
//! - [`scan`]: runs the rules over a batch's messages, counts skipped lines.
//! - [`net`]: CPython-exact `is_global` and allowlists.
//! - [`store`]: state port; DynamoDB and in-memory adapters.
//! - [`sink`]: alert port; SNS and stdout adapters.
//! - [`keep`]: failed Kinesis records kept for replay; S3 and in-memory
//!   adapters.
//! - [`handler`]: orchestration, one file per kind of invocation (logs,
//!   Kinesis, CloudTrail, the scheduled sweep) and per concern (applying
//!   matches to state, publishing and settling the outbox, hot keys).
//! - [`lambda`]: the Lambda function: env, AWS clients, runtime, logs, metrics.
//! - [`replay`]: the pipeline on local files.
//! - [`cli`]: the `replay` and `rules` commands (`main.rs` only dispatches).
//! - [`tamper`]: CloudTrail events that blind the detector, as alerts.
//! - [`silence`]: clusters whose audit log went quiet, as alerts (beside
//!   [`vocab`]: the window record keeps its watch list).
//! - [`time`]: timestamps, and the wall clock as an injectable value.

// The Lambda runtime's service stack nests deeply; its future needs more than
// the default query depth to lay out.
#![recursion_limit = "256"]

pub mod alert;
pub mod audit;
pub mod bounded;
pub mod cli;
pub mod config;
pub mod decode;
pub mod handler;
pub mod keep;
pub mod lambda;
pub mod net;
pub mod prefilter;
pub mod replay;
pub mod rules;
pub mod scan;
pub mod sigma;
pub mod silence;
pub mod sink;
pub mod store;
pub mod tamper;
pub mod time;
pub mod vocab;
pub mod window;
