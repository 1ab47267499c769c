//! `wharf serve` refusing to start when nobody could sign in, and `wharf user`: passwords from
//! the environment or standard input, argon2id hashes, one person in several workspaces.

mod common;

use common::{json, run, text, wharf};
use serde_json::json;

#[test]
fn serve_refuses_to_start_with_no_way_in_and_says_how_to_make_one() {
    let home = tempfile::tempdir().expect("home");
    let out = run(wharf(home.path()).args(["serve", "--listen", "127.0.0.1:0"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("token create admin --workspace default --role admin"),
        "{}",
        text(&out)
    );
    let out = run(wharf(home.path()).args(["serve", "--listen", "not an address"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--listen"), "{}", text(&out));
}

#[test]
fn users_are_added_with_a_password_from_the_environment_or_stdin() {
    let home = tempfile::tempdir().expect("home");
    let out = run(wharf(home.path())
        .args([
            "--json",
            "user",
            "add",
            "Ada@Example.com",
            "--role",
            "editor",
            "--password-env",
            "PW",
        ])
        .env("PW", "correct horse battery staple"));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        json(&out),
        json!({"email": "ada@example.com", "workspace": "default", "role": "editor",
            "created_at": json(&out)["created_at"]})
    );
    // The database and its write-ahead log (not yet checkpointed, the row may be there).
    let mut store = std::fs::read(home.path().join("wharf.db")).unwrap_or_default();
    store.extend(std::fs::read(home.path().join("wharf.db-wal")).unwrap_or_default());
    assert!(
        String::from_utf8_lossy(&store).contains("$argon2id$"),
        "hashed with argon2id"
    );
    // Too short; no password; the same email twice.
    let out = run(wharf(home.path())
        .args([
            "user",
            "add",
            "bob@example.com",
            "--role",
            "viewer",
            "--password-env",
            "PW",
        ])
        .env("PW", "short"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--password"), "{}", text(&out));
    let out = run(wharf(home.path()).args(["user", "add", "bob@example.com", "--role", "viewer"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("--password-env VAR or --password-stdin"),
        "{}",
        text(&out)
    );
    // Another workspace: the same person joins with their own password, not a new one.
    let out = run(wharf(home.path()).args(["workspace", "add", "b"]));
    assert!(out.status.success());
    let mut child = wharf(home.path())
        .args([
            "--workspace",
            "b",
            "user",
            "add",
            "ada@example.com",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        b"a different password!\n",
    )
    .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("current password"), "{}", text(&out));
    let out = run(wharf(home.path())
        .args([
            "--workspace",
            "b",
            "user",
            "add",
            "ada@example.com",
            "--role",
            "viewer",
            "--password-env",
            "PW",
        ])
        .env("PW", "correct horse battery staple"));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home.path()).args(["--json", "--workspace", "b", "user", "list"]));
    assert_eq!(json(&out)[0]["role"], "viewer");
    let out = run(wharf(home.path()).args(["--workspace", "b", "user", "rm", "ada@example.com"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home.path()).args(["--json", "user", "list"]));
    assert_eq!(
        json(&out)[0]["email"],
        "ada@example.com",
        "still in default"
    );
}
