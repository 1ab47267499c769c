//! Web UI sessions on a controlled clock: a session ends after 2 hours idle or 12 hours in all,
//! on sign-out, and in a workspace its user leaves; failed sign-ins are refused for a while.

use std::time::Duration;
use wharf_service::{
    Actor, Caller, ErrorKind, Role, SESSION_IDLE, SESSION_LIFETIME, Service, Settings,
};

const PASSWORD: &str = "correct horse battery staple";

async fn service_with_ada(home: &std::path::Path) -> Service {
    let service = Service::open(Settings::new(home)).await.expect("service");
    let cli = Caller::cli("default");
    service
        .create_workspace(&cli, "team-b")
        .await
        .expect("workspace");
    service
        .add_user(&cli, "ada@example.com", "editor", PASSWORD)
        .await
        .expect("user");
    service
        .add_user(
            &Caller::cli("team-b"),
            "Ada@Example.com",
            "viewer",
            PASSWORD,
        )
        .await
        .expect("second workspace");
    service
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

#[tokio::test]
async fn a_session_ends_when_idle_or_old_and_on_sign_out() {
    let home = tempfile::tempdir().expect("home");
    let service = service_with_ada(home.path()).await;
    let here = [127, 0, 0, 1].into();
    let start = time::OffsetDateTime::now_utc();

    let new = service
        .sign_in("ADA@example.com", PASSWORD, here)
        .await
        .expect("sign in");
    let session = service.session(&new.token).await.expect("live");
    assert_eq!(session.email, "ada@example.com");
    assert_eq!(
        session.caller.workspace, "default",
        "the first workspace by name"
    );
    assert_eq!(
        session.caller.actor,
        Actor::User {
            email: "ada@example.com".into(),
            role: Role::Editor
        }
    );
    assert_eq!(
        session.workspaces,
        [
            ("default".into(), Role::Editor),
            ("team-b".into(), Role::Viewer)
        ]
    );
    assert_ne!(session.csrf_token, new.token);

    // Idle: used within the idle limit it lives (and the use counts); unused for longer than
    // the limit after that, it is over, for good.
    let used = start + SESSION_IDLE - minutes(5);
    assert!(service.session_at(&new.token, used).await.is_ok());
    assert!(
        service
            .session_at(&new.token, start + SESSION_IDLE + minutes(5))
            .await
            .is_ok(),
        "idle for 10 minutes since its last use"
    );
    let idle = service
        .session_at(&new.token, used + SESSION_IDLE + minutes(60))
        .await
        .expect_err("idle");
    assert_eq!(idle.kind, ErrorKind::Unauthorized);
    assert!(
        service.session(&new.token).await.is_err(),
        "deleted once over"
    );

    // Absolute: a session used every hour still ends SESSION_LIFETIME after sign-in.
    let new = service
        .sign_in("ada@example.com", PASSWORD, here)
        .await
        .expect("sign in");
    let mut at = start;
    while at + minutes(60) < start + SESSION_LIFETIME {
        at += minutes(60);
        service
            .session_at(&new.token, at)
            .await
            .expect("used every hour: live");
    }
    let over = service
        .session_at(&new.token, start + SESSION_LIFETIME + minutes(5))
        .await
        .expect_err("old");
    assert_eq!(over.kind, ErrorKind::Unauthorized);

    // Sign-out.
    let new = service
        .sign_in("ada@example.com", PASSWORD, here)
        .await
        .expect("sign in");
    service.sign_out(&new.token).await.expect("sign out");
    assert!(service.session(&new.token).await.is_err());
    assert!(service.session("not a token").await.is_err());
}

#[tokio::test]
async fn a_session_follows_the_users_workspaces() {
    let home = tempfile::tempdir().expect("home");
    let service = service_with_ada(home.path()).await;
    let new = service
        .sign_in("ada@example.com", PASSWORD, [10, 0, 0, 1].into())
        .await
        .expect("sign in");
    service
        .switch_workspace(&new.token, "team-b")
        .await
        .expect("switch");
    let session = service.session(&new.token).await.expect("live");
    assert_eq!(session.caller.workspace, "team-b");
    assert_eq!(session.role, Role::Viewer);
    // A viewer's session may read, not change.
    let refused = service
        .create_workspace(&session.caller, "x")
        .await
        .expect_err("viewer");
    assert_eq!(refused.kind, ErrorKind::Forbidden);
    // A workspace the user is not in cannot be switched to.
    let elsewhere = service
        .switch_workspace(&new.token, "nowhere")
        .await
        .expect_err("not a member");
    assert_eq!(elsewhere.kind, ErrorKind::NotFound);
    // Removed from the workspace: the session there ends at once.
    service
        .remove_user(&Caller::cli("team-b"), "ada@example.com")
        .await
        .expect("remove");
    let ended = service.session(&new.token).await.expect_err("removed");
    assert_eq!(ended.kind, ErrorKind::Unauthorized);
}

#[tokio::test]
async fn wrong_passwords_are_refused_then_throttled() {
    let home = tempfile::tempdir().expect("home");
    let service = service_with_ada(home.path()).await;
    let from = [192, 0, 2, 7].into();
    let unknown = service
        .sign_in("nobody@example.com", PASSWORD, from)
        .await
        .expect_err("unknown");
    let wrong = service
        .sign_in("ada@example.com", "wrong password!", from)
        .await
        .expect_err("wrong");
    assert_eq!(unknown.message, wrong.message, "no hint which emails exist");
    assert_eq!(wrong.kind, ErrorKind::Unauthorized);
    for _ in 0..4 {
        let _ = service
            .sign_in("ada@example.com", "wrong password!", from)
            .await;
    }
    // Five failures: even the right password is refused for now, without being checked.
    let throttled = service
        .sign_in("ada@example.com", PASSWORD, from)
        .await
        .expect_err("throttled");
    assert_eq!(throttled.kind, ErrorKind::Throttled);
    assert!(
        throttled.message.contains("try again in"),
        "{}",
        throttled.message
    );
}
