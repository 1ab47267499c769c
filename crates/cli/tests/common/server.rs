//! `wharf serve` as a child process on 127.0.0.1:0, and an HTTP client for its API.

use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `wharf serve`. Its stderr (the logs, at `RUST_LOG=trace` unless the test says
/// otherwise) is read all along into [`Server::log`], so the pipe never fills.
pub struct Server {
    child: Child,
    pub base: String,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

/// A response: status, headers we look at, and the body as JSON (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub location: Option<String>,
    pub request_id: Option<String>,
    /// The body as the server sent it.
    pub raw: String,
}

impl Server {
    /// Starts `wharf serve` on `home`, with `env` added to the environment; waits for its
    /// `listening on` line.
    pub fn start(home: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = super::wharf(home);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn wharf serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find("listening on http://") {
                        let rest = &line[at + "listening on ".len()..];
                        let url: String = rest.split_whitespace().next().unwrap_or("").into();
                        let _ = tx.send(url);
                    }
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let log = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
                panic!("wharf serve did not start: {log}");
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Self {
            child,
            base,
            log,
            agent,
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `method path` (under the server's root, e.g. `/api/v1/syncs`) with a bearer token and
    /// an optional JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.send(method, path, token, body.map(Value::to_string).as_deref())
    }

    /// As [`Self::call`], with a raw body text.
    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match method {
            "GET" | "DELETE" => {
                let mut request = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            _ => {
                let mut request = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    other => panic!("method {other}"),
                };
                request = request.header("Content-Type", "application/json");
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body.unwrap_or(""))
            }
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header("location");
        let request_id = header("x-request-id");
        let status = response.status().as_u16();
        let raw = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("{method} {path}: body: {e}"));
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {raw}"))
        };
        Reply {
            status,
            body,
            location,
            request_id,
            raw,
        }
    }

    /// `GET path` with extra headers, no token.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let mut request = self.agent.get(&format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.body_mut().read_to_string().unwrap_or_default();
        (response.status().as_u16(), id, body)
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM and waits (up to a minute) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wharf serve did not exit: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a token with `wharf token create` and returns its text.
pub fn token(home: &Path, workspace: &str, name: &str, role: &str) -> String {
    let out = super::run(super::wharf(home).args([
        "--json",
        "token",
        "create",
        name,
        "--workspace",
        workspace,
        "--role",
        role,
    ]));
    assert!(out.status.success(), "{}", super::text(&out));
    super::json(&out)["token"]
        .as_str()
        .expect("token")
        .to_string()
}
