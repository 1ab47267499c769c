//! `wharf source add postgres` through the built binary against the test cluster
//! (`WHARF_TEST_POSTGRES_URL`, started by `scripts/test`): the URL from an environment variable
//! or standard input, its password never printed, and a model previewed from PostgreSQL.

mod common;

use common::{json, text, wharf};
use std::io::Write as _;
use std::process::Stdio;

fn url() -> String {
    std::env::var("WHARF_TEST_POSTGRES_URL").expect(
        "WHARF_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a PostgreSQL cluster",
    )
}

fn password(url: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .password()
        .expect("the test URL has a password")
        .to_string()
}

#[test]
fn postgres_sources_take_their_url_from_the_environment_or_stdin_and_never_show_the_password() {
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let url = url();
    let secret = password(&url);

    let out = common::run(
        wharf(h)
            .args([
                "--json",
                "source",
                "add",
                "postgres",
                "pg",
                "--url-env",
                "PG_URL",
                "--sslmode",
                "require",
            ])
            .env("PG_URL", &url),
    );
    assert!(out.status.success(), "{}", text(&out));
    let added = json(&out);
    assert_eq!(added["kind"], "postgres");
    assert_eq!(added["config"]["sslmode"], "require");
    assert!(
        added["server_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    assert!(
        !text(&out).contains(&secret),
        "the password is printed: {}",
        text(&out)
    );

    // From standard input.
    let mut child = wharf(h)
        .args([
            "source",
            "add",
            "postgres",
            "pg-stdin",
            "--sslmode",
            "disable",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    writeln!(child.stdin.take().expect("stdin"), "{url}").expect("write url");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("postgres://wharf:***@127.0.0.1"),
        "{}",
        text(&out)
    );

    // Listed without it; not in the database file either (sealed).
    let out = common::run(wharf(h).args(["--json", "source", "list"]));
    assert_eq!(json(&out).as_array().map(Vec::len), Some(2));
    assert!(!text(&out).contains(&secret));
    // The database and its write-ahead log, where recent rows may still be.
    let mut db = std::fs::read(h.join("wharf.db")).expect("database");
    db.extend(std::fs::read(h.join("wharf.db-wal")).unwrap_or_default());
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the password is stored in clear"
    );

    // A bad --sslmode, a missing variable: exit 2 naming the flag.
    let out = common::run(
        wharf(h)
            .args([
                "source",
                "add",
                "postgres",
                "x",
                "--url-env",
                "PG_URL",
                "--sslmode",
                "allow",
            ])
            .env("PG_URL", &url),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("sslmode") && text(&out).contains("verify-full"),
        "{}",
        text(&out)
    );
    let out = common::run(wharf(h).args([
        "source",
        "add",
        "postgres",
        "x",
        "--url-env",
        "NOT_SET_ANYWHERE",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--url-env"), "{}", text(&out));

    // A model on it runs in PostgreSQL.
    let out = common::run(wharf(h).args([
        "--json",
        "model",
        "add",
        "numbers",
        "--source",
        "pg",
        "--primary-key",
        "n",
        "--sql",
        "SELECT n, n * 1.5 AS x, 'ü' || n AS label FROM generate_series(1, 5) AS n",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let out = common::run(wharf(h).args(["--json", "model", "preview", "numbers", "--limit", "2"]));
    assert!(out.status.success(), "{}", text(&out));
    let rows = json(&out);
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    assert_eq!(rows[1]["label"], "ü2");
    assert!(!text(&out).contains(&secret));
}
