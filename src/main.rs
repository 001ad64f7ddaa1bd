//! The `eks-audit-detector` binary: `replay` on local files, or the Lambda
//! function (when `AWS_LAMBDA_RUNTIME_API` is set, or with `lambda`).

// See lib.rs: the Lambda runtime's future needs a deeper query limit.
#![recursion_limit = "256"]

use std::process::ExitCode;

use eks_audit_detector::cli::{replay_main, rules_main, USAGE};
use eks_audit_detector::lambda::{self, LambdaConfig};

fn lambda_main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .init();
    let config = match LambdaConfig::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(variable = e.variable, "invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lambda::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("replay") => replay_main(&args[1..]),
        Some("rules") => rules_main(&args[1..]),
        Some("lambda") => lambda_main(),
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => lambda_main(),
        Some("-V" | "--version") => {
            println!("eks-audit-detector {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
