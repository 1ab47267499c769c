//! `wharf demo --serve`: the demo, then the web UI over its objects with a demo user, so a
//! newcomer lands in a UI that already has destinations, models, a segment and runs.

mod common;

use common::wharf;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A page's status and HTML, with the session cookie.
fn get(agent: &ureq::Agent, url: &str, cookie: &str) -> (u16, String) {
    let mut response = agent
        .get(url)
        .header("Cookie", cookie)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (status, body)
}

#[test]
fn demo_serve_opens_the_ui_on_the_demo_objects_for_a_demo_user() {
    let home = tempfile::tempdir().expect("home");
    let mut child = wharf(home.path())
        .args(["demo", "--serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wharf demo --serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut url = None;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(u) = line.strip_prefix("The web UI: ") {
                url = Some(u.trim().trim_end_matches('/').to_string());
            }
            if let (Some(u), Some(at)) = (&url, line.find("with the password ")) {
                let password = line[at + "with the password ".len()..].trim().to_string();
                let _ = tx.send((u.clone(), password));
            }
        }
    });
    let (base, password) = rx
        .recv_timeout(Duration::from_secs(240))
        .expect("demo --serve printed its address and password");
    let agent = agent();

    // A wrong password is refused; the printed one signs in.
    let refused = agent
        .post(&format!("{base}/sign-in"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("email=demo%40wharf.local&password=not-the-password-at-all")
        .expect("sign in");
    assert_eq!(refused.status().as_u16(), 401);
    let signed = agent
        .post(&format!("{base}/sign-in"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(format!("email=demo%40wharf.local&password={password}").as_str())
        .expect("sign in");
    assert_eq!(signed.status().as_u16(), 303);
    let cookie = signed
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    assert!(cookie.starts_with("wharf_session="), "{cookie}");

    for (path, expected) in [
        (
            "/destinations",
            vec!["demo-local", "demo-partner-role", "Passing"],
        ),
        ("/models", vec!["demo-customers", "demo-orders"]),
        ("/segments", vec!["demo-loyal"]),
        ("/syncs", vec!["demo-parquet", "demo-segment"]),
        ("/runs", vec!["demo-csv", "Succeeded"]),
    ] {
        let (status, html) = get(&agent, &format!("{base}{path}"), &cookie);
        assert_eq!(status, 200, "{path}: {html}");
        for text in expected {
            assert!(html.contains(text), "{path} lacks {text:?}");
        }
    }

    // SIGTERM stops the UI and the demo's local S3 endpoint.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}
