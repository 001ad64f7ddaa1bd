//! The command line of `replay` and `rules` (the binary's `main.rs` only
//! dispatches): arguments, the settings from the environment with the Sigma
//! rules they name, and what each command prints.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{DetectorConfig, DetectorResources, SAMPLE_REGION};
use crate::handler::Processor;
use crate::replay::{self, Format, ReplayOptions};
use crate::rules::Detector;
use crate::sigma;
use crate::sink::stdout::LineSink;
use crate::store::memory::MemoryStore;

pub const USAGE: &str = "\
usage:
  eks-audit-detector replay [--format auto|cloudwatch|ndjson] [--cluster NAME] [--rules DIR]... PATH...
      Run both detections on CloudWatch Logs subscription payloads (one Lambda
      event per file, as is a failed Kinesis record kept in S3) or NDJSON audit
      logs, with in-memory state. A directory means every file in it and in its
      subdirectories; - reads standard input. Alerts are printed as JSON lines on
      stdout, a summary on stderr.
      --summary json prints the summary as one JSON document instead.
      --rules DIR adds the Sigma rules under DIR (repeatable), beside the bundled
      ones and RULES_DIR's.
  eks-audit-detector rules list [--format table|json|markdown] [--rules DIR]...
      Every rule: id, severity, threshold, dedup minutes, whether it runs with the
      settings in the environment, where it comes from, MITRE ATT&CK, title.
  eks-audit-detector rules check DIR...
      Loads the Sigma rules under each DIR and prints `file:line: reason` for every
      rule that cannot run; exits 1 if there is one.
  eks-audit-detector rules filter-pattern [--rules DIR]...
      The CloudWatch Logs filter pattern that forwards every event the rules enabled by
      the settings in the environment can match (empty when one needs every event).
  eks-audit-detector lambda
      Run as the AWS Lambda function (the default when AWS_LAMBDA_RUNTIME_API is set).

Rule settings come from the environment: RULE_SETTINGS (JSON by rule id: enabled,
threshold, dedup_minutes, severity, and rule options) or RULE_SETTINGS_FILE, ENABLED_RULES,
DISABLED_RULES, RULES_DIR (folders of Sigma rules, `:` separated), ALLOW_SOURCE_CIDRS, MAX_DECOMPRESSED_MB, and the older MULTIPLE_403_THRESHOLD,
MULTIPLE_403_WINDOW_MINUTES, MULTIPLE_403_SOURCE, POD_SCAN_WINDOW_MINUTES, POD_SCAN_MATCH. The detector's own resources,
whose CloudTrail changes are reported, come from DETECTOR_FUNCTION_NAME, DETECTOR_KEY_ARN,
DETECTOR_TOPIC_ARNS, DETECTOR_RULE_NAMES, DETECTOR_ALARM_NAMES, DETECTOR_STREAM_NAME and
DETECTOR_DESTINATION_NAME; without any, replay uses those of the stack `eks-audit-detector`
the samples in events/ come from (account 123456789012, us-east-1).";

/// Takes every `--rules DIR` out of `args`.
fn take_rules_dirs(args: &[String]) -> Result<(Vec<String>, Vec<PathBuf>), String> {
    let mut rest = Vec::new();
    let mut dirs = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--rules" {
            dirs.push(PathBuf::from(it.next().ok_or("--rules needs a folder")?));
        } else {
            rest.push(arg.clone());
        }
    }
    Ok((rest, dirs))
}

fn parse_replay_args(args: &[String]) -> Result<(ReplayOptions, bool), String> {
    let mut opts = ReplayOptions {
        format: Format::Auto,
        cluster: "unknown".into(),
        paths: Vec::new(),
    };
    let mut json = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--summary" => {
                json = match it.next().map(String::as_str) {
                    Some("json") => true,
                    Some("text") => false,
                    _ => return Err("--summary needs text or json".into()),
                }
            }
            "--format" => opts.format = it.next().ok_or("--format needs a value")?.parse()?,
            "--cluster" => opts.cluster = it.next().ok_or("--cluster needs a value")?.clone(),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path => opts.paths.push(PathBuf::from(path)),
        }
    }
    if opts.paths.is_empty() {
        return Err("replay needs at least one PATH".into());
    }
    Ok((opts, json))
}

/// The settings from the environment, with the bundled Sigma rules and
/// those of `RULES_DIR` and `dirs` (a rule that cannot load is a warning),
/// checked against the registry.
fn env_config(dirs: &[PathBuf]) -> Result<DetectorConfig, ExitCode> {
    let lookup = |k: &str| std::env::var(k).ok();
    let mut all = sigma::rules_dirs(lookup);
    all.extend_from_slice(dirs);
    let set = sigma::load_with_bundled(&all);
    for p in &set.problems {
        eprintln!("warning: rule not loaded: {p}");
    }
    DetectorConfig::from_lookup(lookup)
        .and_then(|mut c| {
            c.sigma = sigma::SigmaRules(std::sync::Arc::new(set));
            crate::rules::check_rules(&c).map(|()| c)
        })
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })
}

/// `rules check DIR...`: every rule under the folders that cannot run,
/// loaded beside the bundled rules as the function loads them (an id the
/// bundled rules hold is taken; a correlation may name a bundled rule). A
/// file identical to a bundled one is that rule itself (`rules check
/// rules/` in this repository).
fn rules_check(dirs: &[String]) -> ExitCode {
    if dirs.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut files = sigma::bundled();
    let bundled = files.len();
    let mut problems = Vec::new();
    for dir in dirs {
        let (more, unreadable) = sigma::read_dir(std::path::Path::new(dir));
        for file in more {
            if !files[..bundled].iter().any(|b| b.text == file.text) {
                files.push(file);
            }
        }
        problems.extend(unreadable);
    }
    let set = sigma::load(&files);
    problems.extend(set.problems);
    for p in &problems {
        println!("{p}");
    }
    eprintln!(
        "{} rule(s) loaded from {} file(s), {} not loaded",
        set.rules.len(),
        files.len(),
        problems.len()
    );
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn rules_main(args: &[String]) -> ExitCode {
    use crate::rules::listing;
    if let Some((check, dirs)) = args.split_first() {
        if check == "check" {
            return rules_check(dirs);
        }
    }
    let (args, dirs) = match take_rules_dirs(args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let args = args.as_slice();
    if let [what] = args {
        if what == "filter-pattern" {
            let config = match env_config(&dirs) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let detector = Detector::new(config);
            println!("{}", crate::rules::filter::pattern(detector.rules()));
            return ExitCode::SUCCESS;
        }
    }
    let format = match args {
        [list] if list == "list" => "table",
        [list, flag, f] if list == "list" && flag == "--format" => f.as_str(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match env_config(&dirs) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rows = listing::rows(&config);
    let text = match format {
        "table" => listing::render_table(&rows),
        "json" => listing::render_json(&rows),
        "markdown" => listing::render_markdown(&rows),
        other => {
            eprintln!("error: unknown format '{other}' (table, json or markdown)");
            return ExitCode::from(2);
        }
    };
    print!("{text}");
    ExitCode::SUCCESS
}

pub fn replay_main(args: &[String]) -> ExitCode {
    let (args, dirs) = match take_rules_dirs(args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let (opts, json) = match parse_replay_args(&args) {
        Ok(o) => o,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = match env_config(&dirs) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Without DETECTOR_* settings, the resources of the stack the samples
    // in events/ come from, so that `make run` shows every kind of report.
    if !config.resources.is_known() {
        config.resources = DetectorResources::sample_stack();
        // ...and its region, for the ARNs and console links of the alerts.
        if config.region.is_none() {
            config.region = Some(SAMPLE_REGION.to_owned());
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let processor = Processor::new(
        Detector::new(config),
        MemoryStore::new(),
        LineSink::stdout(),
    );
    let summary = runtime.block_on(replay::run(&processor, &opts));
    if json {
        eprintln!("{}", replay::summary_json(&summary));
    } else {
        eprint!("{}", replay::render_summary(&summary));
    }
    if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
