//! Alerts through the real binary: a webhook receiver on 127.0.0.1 gets a signed POST when a
//! run fails (the signature checked by Python's hmac module); a receiver that is down is
//! retried, then recorded failed, and the run is unaffected; private and metadata URLs are
//! refused.

mod common;

use common::server::{Server, token};
use common::{Fixture, json, run, text, wharf};
use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A webhook receiver (Python's http.server) that answers 200 and appends each request to a
/// file as JSON.
struct Receiver {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Receiver {
    fn start(dir: &std::path::Path) -> Self {
        let log = dir.join("received.jsonl");
        let script = r#"
import http.server, json, sys
out = sys.argv[1]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}) + "\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
print(server.server_port, flush=True)
server.serve_forever()
"#;
        let mut child = std::process::Command::new(wharf_testkit::pyenv().join("bin/python"))
            .args(["-c", script])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        let port = line.trim().parse().expect("a port");
        Self { child, port, log }
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `signature` (`t=..,v1=..`) is the HMAC-SHA256 of `t.body` with `secret`, as
/// Python's hmac module computes it.
fn signature_checks(secret: &str, signature: &str, body: &str) -> bool {
    let script = r#"
import hmac, hashlib, sys
secret, signature, body = sys.argv[1], sys.argv[2], sys.stdin.read()
parts = dict(p.split("=", 1) for p in signature.split(","))
expected = hmac.new(secret.encode(), (parts["t"] + "." + body).encode(), hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(expected, parts["v1"]) else 1)
"#;
    let mut child = std::process::Command::new(wharf_testkit::pyenv().join("bin/python"))
        .args(["-c", script, secret, signature])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python");
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(body.as_bytes())
            .expect("write");
    }
    child.wait().expect("wait").success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_posted_signed_and_a_receiver_that_is_down_is_retried_then_recorded() {
    let Fixture {
        server: s3,
        home,
        data,
    } = Fixture::start().await;
    let home = home.path();
    common::people_sync(home, "p", &[]);
    let receiver = Receiver::start(data.path());
    let hook = format!(
        "http://127.0.0.1:{}/hooks/wharf?token=abc123",
        receiver.port
    );

    // A loopback URL needs the operator's consent; the cloud metadata service never passes.
    let out = run(wharf(home).args(["alert", "add", "ops", "--url", &hook, "--on", "failed"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--allow-private-endpoints"),
        "{}",
        text(&out)
    );
    assert!(
        !text(&out).contains("abc123"),
        "the URL's token is not echoed"
    );
    let out = run(wharf(home).args([
        "--allow-private-endpoints",
        "alert",
        "add",
        "meta",
        "--url",
        "http://169.254.169.254/latest/meta-data/",
        "--on",
        "failed",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("never sends data there"),
        "{}",
        text(&out)
    );

    let out = run(wharf(home).args([
        "--allow-private-endpoints",
        "--json",
        "alert",
        "add",
        "ops",
        "--url",
        &hook,
        "--on",
        "failed,paused,recovered",
        "--sync",
        "p",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let added = json(&out);
    let secret = added["secret"]
        .as_str()
        .expect("a generated secret")
        .to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        added["url"],
        format!("http://127.0.0.1:{}/…", receiver.port),
        "shown without its path"
    );
    // A receiver that is down: nothing listens on this port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = dead.local_addr().expect("addr").port();
    drop(dead);
    let out = run(wharf(home).args([
        "--allow-private-endpoints",
        "alert",
        "add",
        "down",
        "--url",
        &format!("http://127.0.0.1:{dead_port}/"),
        "--on",
        "failed",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    // Shown again: never the secret, never the URL's token.
    let out = run(wharf(home).args(["--json", "alert", "list"]));
    assert!(
        !text(&out).contains(&secret) && !text(&out).contains("abc123"),
        "{}",
        text(&out)
    );

    let admin = token(home, "default", "ops", "admin");
    let roots = data.path().display().to_string();
    let mut api = Server::start(
        home,
        &[
            ("WHARF_ALLOW_PRIVATE_ENDPOINTS", "true"),
            ("WHARF_LOCAL_SOURCE_ROOTS", roots.as_str()),
            ("WHARF_ALERT_ATTEMPTS", "3"),
            ("WHARF_ALERT_RETRY_BASE_SECONDS", "1"),
            ("RUST_LOG", "info"),
        ],
    );
    // The run fails for good: access denied.
    s3.faults.inject(
        "PutObject",
        wharf_delivery::local_s3::Fault::Error {
            code: "AccessDenied".into(),
            status: 403,
        },
        100,
    );
    let triggered = api.call("POST", "/api/v1/syncs/p/runs", Some(&admin), None);
    assert_eq!(triggered.status, 202, "{}", triggered.raw);
    let run_id = triggered.body["run_id"].as_str().expect("id").to_string();

    let deadline = Instant::now() + Duration::from_secs(60);
    let posted = loop {
        if let Some(first) = receiver.received().into_iter().next() {
            break first;
        }
        assert!(Instant::now() < deadline, "nothing posted: {}", api.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(posted["path"], "/hooks/wharf?token=abc123");
    let body_text = posted["body"].as_str().expect("body");
    let body: Value = serde_json::from_str(body_text).expect("a JSON body");
    assert_eq!(body["event"], "failed");
    assert_eq!(body["sync"], "p");
    assert_eq!(body["run_id"], run_id.as_str());
    assert_eq!(body["error"]["code"], "s3.AccessDenied");
    assert_eq!(body["link"], format!("/api/v1/runs/{run_id}"));
    let slack_text = body["text"].as_str().expect("text for Slack");
    assert!(
        slack_text.starts_with("wharf: sync p failed (s3.AccessDenied)"),
        "{slack_text}"
    );
    let signature = posted["headers"]["x-wharf-signature"]
        .as_str()
        .expect("signed");
    assert!(
        signature_checks(&secret, signature, body_text),
        "{signature}"
    );
    assert!(!signature_checks(
        "another-secret-1234",
        signature,
        body_text
    ));
    assert!(posted["headers"]["x-wharf-delivery"].is_string());

    // The channel that is down: three attempts, then failed; the run's own record is its own.
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivery = loop {
        let out = run(wharf(home).args(["--json", "alert", "show", "down"]));
        let shown = json(&out);
        let first = shown["deliveries"][0].clone();
        if first["status"] == "failed" {
            break first;
        }
        assert!(Instant::now() < deadline, "{shown}\n{}", api.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    assert_eq!(delivery["event"], "failed");
    assert!(
        delivery["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot reach"),
        "{delivery}"
    );
    let out = run(wharf(home).args(["--json", "runs", "show", &run_id]));
    let shown = json(&out);
    assert_eq!(shown["status"], "failed");
    assert_eq!(shown["error"]["code"], "s3.AccessDenied");
    let out = run(wharf(home).args(["--json", "alert", "show", "ops"]));
    assert_eq!(
        json(&out)["deliveries"][0]["status"],
        "delivered",
        "{}",
        text(&out)
    );
    assert_eq!(receiver.received().len(), 1, "delivered once");
    api.terminate();
}
