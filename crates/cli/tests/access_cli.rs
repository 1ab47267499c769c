//! `wharf workspace` and `wharf token` through the built binary: the exact `--json` shape of
//! `token create` other tools rely on, the token printed once and never listed, and
//! `--workspace` keeping each workspace's objects apart.

mod common;

use common::{Fixture, json, keys, run, text, wharf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_and_tokens_with_their_json_shapes() {
    let Fixture {
        server: _server,
        home,
        data: _data,
    } = Fixture::start().await;
    let home = home.path();

    let out = run(wharf(home).args(["workspace", "add", "team-b"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home).args(["workspace", "add", "team-b"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already exists"), "{}", text(&out));

    let out = run(wharf(home).args([
        "--json",
        "token",
        "create",
        "ci",
        "--workspace",
        "team-b",
        "--role",
        "editor",
        "--expires-in",
        "90d",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let created = json(&out);
    assert_eq!(
        keys(&created),
        ["expires_at", "name", "role", "token", "workspace"]
    );
    assert_eq!(created["workspace"], "team-b");
    assert_eq!(created["role"], "editor");
    let token = created["token"].as_str().expect("token");
    assert!(token.starts_with("wharf_") && token.len() == 70, "{token}");
    assert!(created["expires_at"].is_string());

    let out = run(wharf(home).args(["--json", "token", "list", "--workspace", "team-b"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(token), "lists never show a token");
    assert_eq!(json(&out)[0]["name"], "ci");

    // Each workspace sees only its own objects: the fixture's destination is in `default`.
    let out = run(wharf(home).args(["--json", "destination", "list", "--workspace", "team-b"]));
    assert_eq!(json(&out), serde_json::json!([]), "{}", text(&out));
    let out = run(wharf(home).args(["--json", "destination", "list"]));
    assert_eq!(json(&out)[0]["name"], "lake");
    let out = run(wharf(home).args(["destination", "show", "lake", "--workspace", "team-b"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = run(wharf(home).args(["token", "revoke", "ci", "--workspace", "team-b"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home).args(["--json", "token", "list", "--workspace", "team-b"]));
    assert!(json(&out)[0]["revoked_at"].is_string(), "{}", text(&out));
    // Every change is in the workspace's audit log, without the token.
    let out = run(wharf(home).args(["--json", "audit", "--workspace", "team-b"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(token), "{}", text(&out));
    let actions: Vec<String> = json(&out)
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["actor"], e["action"], e["object_kind"], e["outcome"]
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            r#""cli" "revoke" "token" "ok""#,
            r#""cli" "create" "token" "ok""#
        ]
    );
    let out = run(wharf(home).args([
        "token",
        "create",
        "x",
        "--workspace",
        "nowhere",
        "--role",
        "admin",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no workspace named \"nowhere\""),
        "{}",
        text(&out)
    );
}
