//! A minimal AWS Lambda Runtime API, served by the test itself, so the real
//! binary can be driven end to end exactly as Lambda drives it: the function
//! long-polls `/invocation/next`, then posts `/response` or `/error`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `/response` with this body.
    Response(String),
    /// `/error` with the `Lambda-Runtime-Function-Error-Type` and body.
    Error { error_type: String, body: String },
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<(String, Vec<u8>)>,
    results: HashMap<String, Outcome>,
    next_id: u64,
}

/// The server; invocations are queued with [`RuntimeApi::invoke`].
#[derive(Clone)]
pub struct RuntimeApi {
    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    shared: Arc<(Mutex<Inner>, Condvar)>,
}

impl RuntimeApi {
    /// Starts serving on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let api = Self {
            address,
            shared: Arc::new((Mutex::new(Inner::default()), Condvar::new())),
        };
        let server = api.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = server.clone();
                std::thread::spawn(move || s.serve(conn));
            }
        });
        api
    }

    /// Sends one event and waits for the function's answer.
    pub fn invoke(&self, body: &[u8], timeout: Duration) -> Outcome {
        let (lock, cv) = &*self.shared;
        let mut inner = lock.lock().expect("lock");
        inner.next_id += 1;
        let id = format!("req-{:04}", inner.next_id);
        inner.queue.push_back((id.clone(), body.to_vec()));
        cv.notify_all();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(outcome) = inner.results.remove(&id) {
                return outcome;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no answer to {id} within {timeout:?}");
            inner = cv.wait_timeout(inner, left).expect("wait").0;
        }
    }

    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut writer = conn;
        // HTTP/1.1 keep-alive: several requests per connection.
        while let Some((method, path, headers, body)) = read_request(&mut reader) {
            let (status, extra, reply) = self.route(&method, &path, &headers, body);
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                reply.len()
            );
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            if writer
                .write_all(head.as_bytes())
                .and_then(|_| writer.write_all(&reply))
                .is_err()
            {
                return;
            }
        }
    }

    fn route(
        &self,
        method: &str,
        path: &str,
        headers: &HashMap<String, String>,
        body: Vec<u8>,
    ) -> (&'static str, Vec<(String, String)>, Vec<u8>) {
        let (lock, cv) = &*self.shared;
        if method == "GET" && path == "/2018-06-01/runtime/invocation/next" {
            let mut inner = lock.lock().expect("lock");
            loop {
                if let Some((id, event)) = inner.queue.pop_front() {
                    let deadline = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("clock")
                        .as_millis()
                        + 60_000;
                    let headers = vec![
                        ("Lambda-Runtime-Aws-Request-Id".to_owned(), id),
                        (
                            "Lambda-Runtime-Deadline-Ms".to_owned(),
                            deadline.to_string(),
                        ),
                        (
                            "Lambda-Runtime-Invoked-Function-Arn".to_owned(),
                            "arn:aws:lambda:us-east-1:123456789012:function:eks-audit-detector"
                                .to_owned(),
                        ),
                        (
                            "Lambda-Runtime-Trace-Id".to_owned(),
                            "Root=1-00000000-000000000000000000000000".to_owned(),
                        ),
                    ];
                    return ("200 OK", headers, event);
                }
                inner = cv.wait(inner).expect("wait");
            }
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if method == "POST" && parts.len() == 5 && parts[2] == "invocation" {
            let id = parts[3].to_owned();
            let text = String::from_utf8_lossy(&body).into_owned();
            let outcome = match parts[4] {
                "response" => Outcome::Response(text),
                _ => Outcome::Error {
                    error_type: headers
                        .get("lambda-runtime-function-error-type")
                        .cloned()
                        .unwrap_or_default(),
                    body: text,
                },
            };
            let mut inner = lock.lock().expect("lock");
            inner.results.insert(id, outcome);
            cv.notify_all();
            return ("202 Accepted", vec![], b"{}".to_vec());
        }
        ("404 Not Found", vec![], b"{}".to_vec())
    }
}

type Request = (String, String, HashMap<String, String>, Vec<u8>);

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut it = line.split_whitespace();
    let method = it.next()?.to_owned();
    let path = it.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let mut body = Vec::new();
    if let Some(len) = headers
        .get("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some((method, path, headers, body))
}
