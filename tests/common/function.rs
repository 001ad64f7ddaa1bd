//! The real binary run as a Lambda function against a local Runtime API and
//! local AWS APIs (moto).

use std::io::Read;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::aws::{endpoint, unique};
use super::runtime_api::RuntimeApi;

/// The function process; killed when the test ends, however it ends. Its
/// stdout (the log lines) goes to a file, so it never blocks on a full pipe.
pub struct Function(Child, std::path::PathBuf);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

impl Function {
    /// Starts the binary serving `api`, with the given AWS access key.
    pub fn start(api: &RuntimeApi, table: &str, topic_arn: &str, key: (&str, &str)) -> Self {
        Self::start_with(api, table, topic_arn, key, &[])
    }

    /// As [`Function::start`], with more environment variables.
    pub fn start_with(
        api: &RuntimeApi,
        table: &str,
        topic_arn: &str,
        key: (&str, &str),
        env: &[(&str, &str)],
    ) -> Self {
        let log = std::env::temp_dir().join(unique("function-stdout"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_eks-audit-detector"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "eks-audit-detector")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "/aws/lambda/eks-audit-detector",
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", key.0)
            .env("AWS_SECRET_ACCESS_KEY", key.1)
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("STATE_TABLE_NAME", table)
            .env("ALERT_TOPIC_ARN", topic_arn)
            // The machinery's tests count the first rules' alerts; a test
            // of the whole catalog sets DISABLED_RULES itself.
            .env("DISABLED_RULES", super::seed_disabled())
            .envs(env.iter().copied())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("the function starts");
        Self(child, log)
    }

    /// What the function wrote on stdout (stops it first).
    pub fn output(mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut stdout = String::new();
        std::fs::File::open(&self.1)
            .and_then(|mut f| f.read_to_string(&mut stdout))
            .expect("read the function's stdout");
        stdout
    }

    /// The highest peak RSS the function reported, in MB (stops it first).
    pub fn peak_rss_mb(self) -> u64 {
        self.logs()
            .iter()
            .filter_map(|l| l["fields"]["peak_rss_mb"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// The function's JSON log lines (stops it first).
    pub fn logs(self) -> Vec<Value> {
        self.output()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
