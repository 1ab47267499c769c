//! Syncs through the service: every check that involves other objects (the segment's model,
//! mapped columns, the longest key under the destination's prefix) names its field, and the
//! demo-style shortcut of writing a sync past them no longer exists.

use wharf_domain::FileSpec;
use wharf_domain::destination::S3DestinationSpec;
use wharf_service::{Caller, ErrorKind, NewModelInput, NewSync, Service, Settings};

async fn setup(home: &std::path::Path, data: &std::path::Path) -> (Service, Caller) {
    std::fs::write(data.join("people.csv"), "id,name\n1,Ada\n2,Bob\n").expect("csv");
    let service = Service::open(Settings::new(home)).await.expect("service");
    let caller = Caller::cli("default");
    service
        .add_local_source(&caller, "files", data)
        .await
        .expect("source");
    service
        .add_model(
            &caller,
            NewModelInput {
                name: "people",
                source: "files",
                sql: "SELECT * FROM people",
                primary_key: "id",
            },
        )
        .await
        .expect("model");
    service
        .add_segment(
            &caller,
            "ada",
            "people",
            r#"{"column":"name","op":"=","value":"Ada"}"#,
        )
        .await
        .expect("segment");
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": "lake", "bucket": "wharf-lake", "region": "eu-west-3", "prefix": "p".repeat(400),
        "auth": {"type": "access-key", "access_key_id": "AKIAEXAMPLEKEY123456", "secret_access_key": "s"},
    }))
    .expect("spec");
    service
        .add_destination(&caller, spec)
        .await
        .expect("destination");
    (service, caller)
}

fn csv_sync(name: &str) -> NewSync {
    NewSync {
        name: name.into(),
        model: Some("people".into()),
        destination: "lake".into(),
        file: FileSpec {
            format: "csv".into(),
            ..FileSpec::default()
        },
        on_empty: "empty-file".into(),
        ..NewSync::default()
    }
}

#[tokio::test]
async fn adding_a_sync_checks_its_model_segment_columns_and_keys() {
    let home = tempfile::tempdir().expect("home");
    let data = tempfile::tempdir().expect("data");
    let (service, caller) = setup(home.path(), data.path()).await;

    let view = service
        .add_sync(
            &caller,
            NewSync {
                segment: Some("ada".into()),
                model: None,
                ..csv_sync("of-segment")
            },
        )
        .await
        .expect("a segment's sync");
    assert_eq!(view.model, "people", "the segment's model");
    assert_eq!(view.segment.as_deref(), Some("ada"));
    assert_eq!(
        service.sync(&caller, "of-segment").await.expect("show"),
        view
    );

    let unknown_column = service
        .add_sync(
            &caller,
            NewSync {
                columns: Some("id,email".into()),
                ..csv_sync("cols")
            },
        )
        .await
        .expect_err("no such column");
    assert_eq!(unknown_column.kind, ErrorKind::BadInput);
    assert_eq!(unknown_column.field.as_deref(), Some("columns"));
    assert!(
        unknown_column.message.contains("\"email\""),
        "{}",
        unknown_column.message
    );

    let long_key = service
        .add_sync(
            &caller,
            NewSync {
                key_template: Some(format!("{}/{{run}}.{{ext}}", "k".repeat(600))),
                ..csv_sync("long")
            },
        )
        .await
        .expect_err("keys past 1,024 bytes under a 400-byte prefix");
    assert_eq!(long_key.field.as_deref(), Some("key_template"));

    let nothing = service
        .add_sync(
            &caller,
            NewSync {
                model: None,
                ..csv_sync("none")
            },
        )
        .await
        .expect_err("neither model nor segment");
    assert_eq!(nothing.field.as_deref(), Some("model"));

    let no_destination = service
        .add_sync(
            &caller,
            NewSync {
                destination: "elsewhere".into(),
                ..csv_sync("nowhere")
            },
        )
        .await
        .expect_err("no such destination");
    assert_eq!(
        (no_destination.kind, no_destination.code.as_str()),
        (ErrorKind::NotFound, "destination.not_found")
    );
    let names: Vec<String> = service
        .syncs(&caller)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["of-segment"], "nothing else was stored");
}
