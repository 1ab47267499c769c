//! Workspaces and API tokens: a token is shown once, stored as its SHA-256, stands for its
//! workspace and role, and stops working when revoked or expired.

use wharf_service::{Actor, Caller, ErrorKind, Role, Service, Settings};

async fn open(home: &std::path::Path) -> Service {
    Service::open(Settings::new(home)).await.expect("service")
}

#[tokio::test]
async fn tokens_stand_for_their_workspace_and_role_until_revoked_or_expired() {
    let home = tempfile::tempdir().expect("home");
    let service = open(home.path()).await;
    let cli = Caller::cli("default");
    service
        .create_workspace(&cli, "team-b")
        .await
        .expect("workspace");
    let taken = service
        .create_workspace(&cli, "team-b")
        .await
        .expect_err("taken");
    assert_eq!(taken.kind, ErrorKind::Conflict);
    let names: Vec<String> = service
        .workspaces(&cli)
        .await
        .expect("list")
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["default", "team-b"]);

    let team_b = Caller::cli("team-b");
    let created = service
        .create_token(&team_b, "ci", "editor", Some("90d"))
        .await
        .expect("token");
    assert_eq!(
        (created.workspace.as_str(), created.role),
        ("team-b", "editor")
    );
    let hex = created.token.strip_prefix("wharf_").expect("prefix");
    assert_eq!(hex.len(), 64, "256 bits");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(created.expires_at.is_some());
    let other = service
        .create_token(&team_b, "other", "viewer", None)
        .await
        .expect("token");
    assert_ne!(other.token, created.token);

    let caller = service.authenticate(&created.token).await.expect("valid");
    assert_eq!(caller.workspace, "team-b");
    assert_eq!(
        caller.actor,
        Actor::Token {
            name: "ci".into(),
            role: Role::Editor
        }
    );

    // Lists never show a token's text, and the store holds only its hash.
    let listed =
        serde_json::to_string(&service.tokens(&team_b).await.expect("list")).expect("json");
    assert!(!listed.contains(hex), "{listed}");
    // The database and its write-ahead log, where recent rows may still be.
    let mut db = std::fs::read(home.path().join("wharf.db")).expect("db");
    db.extend(std::fs::read(home.path().join("wharf.db-wal")).unwrap_or_default());
    assert!(
        !db.windows(hex.len()).any(|w| w == hex.as_bytes()),
        "the token's text is not in the store"
    );

    for bad in [
        "",
        "wharf_",
        "wharf_00",
        &created.token[..created.token.len() - 1],
        "Bearer x",
    ] {
        let e = service.authenticate(bad).await.expect_err(bad);
        assert_eq!(e.kind, ErrorKind::Unauthorized, "{bad}");
    }
    service.revoke_token(&team_b, "ci").await.expect("revoke");
    let revoked = service
        .authenticate(&created.token)
        .await
        .expect_err("revoked");
    assert_eq!(revoked.kind, ErrorKind::Unauthorized);
    assert_eq!(
        revoked.message,
        service
            .authenticate("wharf_00")
            .await
            .expect_err("unknown")
            .message
    );

    // A token whose expiry has passed (written to the store as an older token would be).
    let store = wharf_store::Store::open(home.path()).await.expect("store");
    let expired = "wharf_expired-token-text";
    let sha256: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        expired.as_bytes(),
    ))
    .into();
    store
        .create_token(
            "team-b",
            &wharf_store::NewToken {
                name: &wharf_domain::Name::parse("name", "old").expect("name"),
                role: "admin",
                sha256: &sha256,
                expires_at: Some("2020-01-01T00:00:00Z"),
            },
        )
        .await
        .expect("stored");
    let e = service.authenticate(expired).await.expect_err("expired");
    assert_eq!(e.kind, ErrorKind::Unauthorized);

    // A token for a workspace that does not exist, and bad roles and lifetimes.
    let nowhere = service
        .create_token(&Caller::cli("nowhere"), "t", "admin", None)
        .await
        .expect_err("no workspace");
    assert_eq!(nowhere.code, "workspace.not_found");
    let role = service
        .create_token(&team_b, "t", "owner", None)
        .await
        .expect_err("role");
    assert_eq!(role.field.as_deref(), Some("role"));
    let lifetime = service
        .create_token(&team_b, "t", "admin", Some("3w"))
        .await
        .expect_err("lifetime");
    assert_eq!(lifetime.field.as_deref(), Some("expires_in"));
}

#[tokio::test]
async fn roles_limit_what_a_token_may_change_and_every_change_is_audited() {
    let home = tempfile::tempdir().expect("home");
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("people.csv"), "id\n1\n").expect("csv");
    let service = open(home.path()).await;
    let cli = Caller::cli("default");
    let viewer = service
        .create_token(&cli, "reader", "viewer", None)
        .await
        .expect("viewer");
    let editor = service
        .create_token(&cli, "builder", "editor", None)
        .await
        .expect("editor");
    let as_viewer = service.authenticate(&viewer.token).await.expect("viewer");
    let as_editor = service.authenticate(&editor.token).await.expect("editor");

    let refused = service
        .add_local_source(&as_viewer, "files", data.path())
        .await
        .expect_err("viewers read only");
    assert_eq!(
        (refused.kind, refused.code.as_str()),
        (ErrorKind::Forbidden, "auth.forbidden")
    );
    assert!(
        service
            .sources(&as_viewer)
            .await
            .expect("viewers read")
            .is_empty()
    );
    service
        .add_local_source(&as_editor, "files", data.path())
        .await
        .expect("editors add sources");
    let refused = service
        .create_token(&as_editor, "more", "admin", None)
        .await
        .expect_err("only admins manage tokens");
    assert_eq!(refused.kind, ErrorKind::Forbidden);

    let log = service.audit(&cli, 10).await.expect("audit");
    let lines: Vec<String> = log
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e.actor,
                e.action,
                e.object_kind,
                e.object_name,
                e.error_code.as_deref().unwrap_or("ok")
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "token:builder create token more auth.forbidden",
            "token:builder create source files ok",
            "token:reader create source files auth.forbidden",
            "cli create token builder ok",
            "cli create token reader ok",
        ]
    );
    // Neither token's text is in the log.
    let text = serde_json::to_string(&log).expect("json");
    assert!(!text.contains(&viewer.token) && !text.contains(&editor.token));
    // Another workspace's log is its own.
    assert!(
        service
            .audit(&Caller::cli("other"), 10)
            .await
            .expect("audit")
            .is_empty()
    );
}
