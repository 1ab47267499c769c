//! The destination store against a real SQLite file in a temporary `$WHARF_HOME`.

use wharf_domain::destination::S3DestinationSpec;
use wharf_domain::{ExternalId, S3Auth, S3Destination};
use wharf_store::{DEFAULT_WORKSPACE, Store, StoreError, Unverified};

const CANARY: &str = "canary-secret-5d9c1e7b2a";

fn access_key_destination(name: &str) -> S3Destination {
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": name, "bucket": "acme-exports", "region": "eu-west-3", "prefix": "wharf",
        "auth": {"type": "access-key", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": CANARY},
        "storage_class": "STANDARD_IA", "checksum": "crc64nvme"
    }))
    .expect("spec");
    spec.validate(
        || unreachable!("access-key auth needs no External ID"),
        false,
    )
    .expect("valid")
}

fn role_destination(name: &str) -> S3Destination {
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": name, "bucket": "acme-exports", "region": "eu-west-3",
        "auth": {"type": "role", "role_arn": "arn:aws:iam::123456789012:role/wharf-export", "session_duration_seconds": 7200},
        "sse": "kms", "kms_key_id": "alias/exports"
    }))
    .expect("spec");
    spec.validate(|| ExternalId::generate().expect("random"), false)
        .expect("valid")
}

#[tokio::test]
async fn destinations_round_trip_and_secrets_stay_sealed() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = Store::open(home.path()).await.expect("open");

    let created = store
        .create_destination(DEFAULT_WORKSPACE, &access_key_destination("partner"))
        .await
        .expect("create");
    assert!(created.verified_at.is_none());
    let S3Auth::AccessKey {
        access_key_id,
        secret_access_key,
    } = &created.destination.auth
    else {
        panic!("access-key auth expected");
    };
    assert_eq!(access_key_id.as_str(), "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(secret_access_key.expose(), CANARY);
    assert_eq!(created.destination.prefix.as_str(), "wharf/");
    assert_eq!(
        created.destination.delivery.checksum.map(|c| c.as_str()),
        Some("crc64nvme")
    );

    let role = store
        .create_destination(DEFAULT_WORKSPACE, &role_destination("lake"))
        .await
        .expect("create role");
    let S3Auth::AssumeRole {
        external_id,
        session_duration_seconds,
        ..
    } = &role.destination.auth
    else {
        panic!("role auth expected");
    };
    assert!(external_id.as_str().starts_with("wharf-"));
    assert_eq!(*session_duration_seconds, 7200);

    let names: Vec<String> = store
        .list_destinations(DEFAULT_WORKSPACE)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.destination.name.to_string())
        .collect();
    assert_eq!(names, ["lake", "partner"]);

    // Nothing under $WHARF_HOME holds the secret in plain text (database, WAL, key file).
    store.clone().close().await;
    for entry in std::fs::read_dir(home.path()).expect("read home") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read file");
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{} holds the secret in plain text",
            path.display()
        );
    }
}

#[tokio::test]
async fn names_are_unique_and_missing_names_are_explained() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = Store::open(home.path()).await.expect("open");
    store
        .create_destination(DEFAULT_WORKSPACE, &access_key_destination("partner"))
        .await
        .expect("create");
    let err = store
        .create_destination(DEFAULT_WORKSPACE, &role_destination("partner"))
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");

    let err = store
        .destination(DEFAULT_WORKSPACE, "nope")
        .await
        .expect_err("missing");
    assert!(
        err.to_string().contains("no destination named \"nope\""),
        "{err}"
    );
    store
        .remove_destination(DEFAULT_WORKSPACE, "partner")
        .await
        .expect("rm");
    assert!(
        store
            .destination(DEFAULT_WORKSPACE, "partner")
            .await
            .is_err()
    );
    assert!(
        store
            .remove_destination(DEFAULT_WORKSPACE, "partner")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn another_workspace_sees_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = Store::open(home.path()).await.expect("open");
    store
        .create_destination(DEFAULT_WORKSPACE, &access_key_destination("partner"))
        .await
        .expect("create");
    let err = store
        .destination("other", "partner")
        .await
        .expect_err("isolated");
    assert!(matches!(err, StoreError::NotFound { .. }));
    assert!(
        store
            .list_destinations("other")
            .await
            .expect("list")
            .is_empty()
    );
    assert!(store.remove_destination("other", "partner").await.is_err());
}

#[tokio::test]
async fn rotation_replaces_the_external_id_and_unverifies() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = Store::open(home.path()).await.expect("open");
    let before = store
        .create_destination(DEFAULT_WORKSPACE, &role_destination("lake"))
        .await
        .expect("create");
    store
        .record_test(DEFAULT_WORKSPACE, "lake", true)
        .await
        .expect("record");
    let verified = store
        .destination(DEFAULT_WORKSPACE, "lake")
        .await
        .expect("read");
    assert!(verified.verified_at.is_some());
    assert_eq!(verified.last_test.map(|t| t.ok), Some(true));

    let new_id = ExternalId::generate().expect("random");
    let after = store
        .rotate_external_id(DEFAULT_WORKSPACE, "lake", &new_id)
        .await
        .expect("rotate");
    let id = |r: &wharf_store::DestinationRecord| match &r.destination.auth {
        S3Auth::AssumeRole { external_id, .. } => external_id.clone(),
        S3Auth::AccessKey { .. } => panic!("role expected"),
    };
    assert_ne!(id(&before), id(&after));
    assert_eq!(id(&after), new_id);
    assert!(
        after.verified_at.is_none(),
        "rotation must mark the destination unverified"
    );
    assert_eq!(
        after.unverified_because,
        Some(Unverified::ExternalIdRotated)
    );

    // A failed test does not verify.
    store
        .record_test(DEFAULT_WORKSPACE, "lake", false)
        .await
        .expect("record");
    let failed = store
        .destination(DEFAULT_WORKSPACE, "lake")
        .await
        .expect("read");
    assert!(failed.verified_at.is_none());
    // The test is the news now, not the rotation before it.
    assert_eq!(failed.unverified_because, None);

    // Replaced settings: unverified, and why.
    let replaced = store
        .replace_destination(DEFAULT_WORKSPACE, &before.destination)
        .await
        .expect("replace");
    assert!(replaced.verified_at.is_none());
    assert_eq!(
        replaced.unverified_because,
        Some(Unverified::SettingsChanged)
    );

    store
        .create_destination(DEFAULT_WORKSPACE, &access_key_destination("partner"))
        .await
        .expect("create");
    let err = store
        .rotate_external_id(DEFAULT_WORKSPACE, "partner", &new_id)
        .await
        .expect_err("access-key destinations have no External ID");
    assert!(err.to_string().contains("only role destinations"), "{err}");
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_record_does_not_decrypt() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = Store::open(home.path()).await.expect("open");
    store
        .create_destination(DEFAULT_WORKSPACE, &access_key_destination("victim"))
        .await
        .expect("create");
    store
        .create_destination(DEFAULT_WORKSPACE, &access_key_destination("attacker"))
        .await
        .expect("create");

    // Someone with write access to the database copies the victim's sealed credentials.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        home.path().join(wharf_store::DATABASE_FILE).display()
    ))
    .await
    .expect("connect");
    sqlx::query(
        "UPDATE destinations SET credentials_ciphertext =
            (SELECT credentials_ciphertext FROM destinations WHERE name = 'victim')
         WHERE name = 'attacker'",
    )
    .execute(&db)
    .await
    .expect("tamper");

    let err = store
        .destination(DEFAULT_WORKSPACE, "attacker")
        .await
        .expect_err("bound to its record");
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err}");
    assert!(!err.to_string().contains(CANARY));
    // The victim's own record still opens.
    assert!(store.destination(DEFAULT_WORKSPACE, "victim").await.is_ok());
}

#[tokio::test]
async fn a_different_master_key_cannot_open_secrets() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = Store::open(home.path()).await.expect("open");
    store
        .create_destination(DEFAULT_WORKSPACE, &access_key_destination("partner"))
        .await
        .expect("create");
    store.close().await;
    let key_file = home.path().join(wharf_store::MASTER_KEY_FILE);
    std::fs::write(&key_file, format!("{}\n", "A".repeat(43) + "=")).expect("another key");
    let store = Store::open(home.path())
        .await
        .expect("reopen with another key");
    let err = store
        .destination(DEFAULT_WORKSPACE, "partner")
        .await
        .expect_err("new key");
    let text = err.to_string();
    assert!(
        text.contains("cannot be decrypted") && text.contains(&key_file.display().to_string()),
        "names where the key came from: {text}"
    );
}

#[tokio::test]
async fn a_deleted_master_key_file_is_reported_missing_not_replaced() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = Store::open(home.path()).await.expect("open");
    store
        .create_destination(DEFAULT_WORKSPACE, &access_key_destination("partner"))
        .await
        .expect("create");
    store.close().await;
    let key_file = home.path().join(wharf_store::MASTER_KEY_FILE);
    std::fs::remove_file(&key_file).expect("remove key");
    let err = Store::open(home.path()).await.err().expect("missing key");
    let text = err.to_string();
    assert!(
        text.contains("master.key is missing") && text.contains("cannot be opened without it"),
        "{text}"
    );
    assert!(!key_file.exists(), "no new key was made");
}

#[tokio::test]
async fn an_empty_or_foreign_database_file_is_an_error_not_a_new_store() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join(wharf_store::DATABASE_FILE);
    std::fs::write(&db, b"").expect("0 bytes");
    let err = Store::open(home.path()).await.err().expect("empty file");
    let text = err.to_string();
    assert!(
        text.contains("an empty file (0 bytes)") && text.contains("restore it from your backup"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(&db).expect("meta").len(),
        0,
        "left as found"
    );

    std::fs::write(&db, b"name,email\nAda,ada@example.com\n").expect("csv");
    let err = Store::open(home.path()).await.err().expect("not sqlite");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");

    std::fs::remove_file(&db).expect("rm");
    let pool = sqlx_sqlite_with_a_foreign_table(&db).await;
    pool.close().await;
    let err = Store::open(home.path()).await.err().expect("foreign db");
    assert!(err.to_string().contains("without wharf's tables"), "{err}");

    // Only a missing file makes a new store.
    std::fs::remove_file(&db).expect("rm");
    let _ = std::fs::remove_file(home.path().join(wharf_store::MASTER_KEY_FILE));
    Store::open(home.path()).await.expect("a new store");
}

async fn sqlx_sqlite_with_a_foreign_table(path: &std::path::Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("sqlite");
    sqlx::query("CREATE TABLE notes (body TEXT)")
        .execute(&pool)
        .await
        .expect("table");
    pool
}
