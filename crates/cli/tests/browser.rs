//! The web UI in a real browser: headless Chromium from Debian's packages, driven by Python
//! playwright (the tests in `crates/server/tests/browser/`), against the real `wharf serve`
//! with the in-process S3 server, moto for STS and the test run's PostgreSQL cluster. This test
//! starts the servers and the users, runs the browser suite, and fails with its output when any
//! browser test fails.
//!
//! Why playwright: it finds elements by role and accessible name (`get_by_label`,
//! `get_by_role`), as a person and a screen reader do, waits for the page by itself (no
//! sleeps), grants the clipboard to check copy buttons, and drives Debian's chromium directly
//! (no chromedriver in between). Python because the readers that check exports are there too.

mod common;

use common::server::Server;
use common::{CANARY, run, text, wharf};
use std::process::Command;
use wharf_testkit::{Moto, S3TestServer};

const PASSWORD: &str = "correct horse battery staple";

/// axe-core's path, from `scripts/browser` (which installs Debian's chromium if missing).
fn browser_tools() -> String {
    if let Ok(axe) = std::env::var("WHARF_AXE_JS")
        && std::path::Path::new(&axe).exists()
    {
        return axe;
    }
    let script = wharf_testkit::repo_root().join("scripts/browser");
    let output = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn add_user(home: &std::path::Path, workspace: &str, email: &str, role: &str) {
    let output = run(wharf(home)
        .args([
            "--workspace",
            workspace,
            "user",
            "add",
            email,
            "--role",
            role,
        ])
        .args(["--password-env", "UI_PASSWORD"])
        .env("UI_PASSWORD", PASSWORD));
    assert!(output.status.success(), "{}", text(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_in_headless_chromium() {
    let axe = browser_tools();
    let postgres = std::env::var("WHARF_TEST_POSTGRES_URL").expect(
        "WHARF_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a PostgreSQL cluster",
    );
    let moto = Moto::start("wharf-ui-role");
    let s3 = S3TestServer::start().await;
    s3.create_bucket("ui-exports").await;
    let home = tempfile::tempdir().expect("home");
    let h = home.path();

    // ada: admin of `default` and editor of `team-b`; bob: alone in `private`, whose
    // destination ada must never see.
    for workspace in ["team-b", "private"] {
        let output = run(wharf(h).args(["workspace", "add", workspace]));
        assert!(output.status.success(), "{}", text(&output));
    }
    add_user(h, "default", "ada@example.com", "admin");
    add_user(h, "team-b", "ada@example.com", "editor");
    add_user(h, "private", "bob@example.com", "admin");
    let output = run(wharf(h)
        .args(["--workspace", "private", "--allow-private-endpoints"])
        .args([
            "destination",
            "add",
            "s3",
            "hidden",
            "--bucket",
            "ui-exports",
        ])
        .args(["--region", "us-east-1", "--auth", "access-key"])
        .args([
            "--access-key-id",
            "AKIAHIDDENHIDDEN",
            "--secret-access-key-env",
            "SECRET",
        ])
        .args(["--endpoint", &s3.endpoint()])
        .env("SECRET", CANARY));
    assert!(output.status.success(), "{}", text(&output));

    let mut env: Vec<(String, String)> = moto.wharf_env();
    env.push(("WHARF_ALLOW_PRIVATE_ENDPOINTS".into(), "1".into()));
    env.push(("RUST_LOG".into(), "info".into()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(h, &env_refs);

    let root = wharf_testkit::repo_root();
    let pyenv = wharf_testkit::pyenv();
    let screenshots = root.join(".screenshots");
    let mut pytest = Command::new(pyenv.join("bin/python"));
    pytest
        .current_dir(&root)
        .args([
            "-m",
            "pytest",
            "crates/server/tests/browser",
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .args(["-o", "console_output_style=classic"])
        .env("WHARF_URL", &server.base)
        .env("WHARF_BIN", env!("CARGO_BIN_EXE_wharf"))
        .env("WHARF_HOME", h)
        .env("WHARF_UI_EMAIL", "ada@example.com")
        .env("WHARF_UI_PASSWORD", PASSWORD)
        .env("WHARF_UI_CANARY", CANARY)
        .env("WHARF_AXE_JS", &axe)
        .env("WHARF_SCREENSHOTS", &screenshots)
        .env("WHARF_S3_ENDPOINT", s3.endpoint())
        .env("WHARF_S3_ACCESS_KEY", &s3.access_key)
        .env("WHARF_S3_SECRET_KEY", &s3.secret_key)
        .env("WHARF_S3_BUCKET", "ui-exports")
        .env("WHARF_MOTO_ENDPOINT", moto.endpoint())
        .env("WHARF_MOTO_ADMIN_KEY", &moto.admin.access_key)
        .env("WHARF_MOTO_ADMIN_SECRET", &moto.admin.secret_key)
        .env("WHARF_MOTO_BUCKET", &moto.bucket)
        .env("WHARF_TEST_POSTGRES_URL", &postgres);
    let output = tokio::task::spawn_blocking(move || pytest.output())
        .await
        .expect("join")
        .expect("run pytest");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the browser tests failed:\n{report}"
    );
    // The suite must have run, not been collected empty or skipped.
    assert!(
        report.contains(" passed") && !report.contains(" skipped"),
        "{report}"
    );

    let log = server.log();
    assert!(!log.contains(CANARY), "a secret reached the server's log");
    assert!(
        !log.contains(PASSWORD),
        "a password reached the server's log"
    );
}
