//! Workspaces and API tokens: a token is shown once, stored as its SHA-256, stands for its
//! workspace and role, and stops working when revoked or expired.

use wharf_service::{Actor, Caller, ClientSettings, ErrorKind, Role, Service, Settings};

async fn open(home: &std::path::Path) -> Service {
    Service::open(Settings {
        home: home.to_path_buf(),
        client: ClientSettings::default(),
        query_memory_bytes: None,
    })
    .await
    .expect("service")
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
    let db = std::fs::read(home.path().join("wharf.db")).expect("db");
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
