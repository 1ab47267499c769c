//! Destinations through the service: the views every interface shows, and the error kinds,
//! codes and fields every interface maps.

use wharf_domain::destination::S3DestinationSpec;
use wharf_service::{AuthView, Caller, ClientSettings, ErrorKind, Service, Settings};

async fn service(home: &std::path::Path, operator_endpoint: Option<&str>) -> Service {
    Service::open(Settings {
        client: ClientSettings {
            allow_private_endpoints: true,
            operator_s3_endpoint: operator_endpoint.map(str::to_owned),
            ..ClientSettings::default()
        },
        ..Settings::new(home)
    })
    .await
    .expect("service")
}

fn spec(value: serde_json::Value) -> S3DestinationSpec {
    serde_json::from_value(value).expect("spec")
}

fn access_key(name: &str) -> S3DestinationSpec {
    spec(serde_json::json!({
        "name": name, "bucket": "wharf-lake", "region": "eu-west-3",
        "auth": {"type": "access-key", "access_key_id": "AKIAEXAMPLEKEY123456", "secret_access_key": "canary-secret-Qx7"},
    }))
}

#[tokio::test]
async fn the_view_shows_the_checksum_runs_send_wherever_requests_go() {
    let home = tempfile::tempdir().expect("home");
    let caller = Caller::cli("default");
    let on_aws = service(home.path(), None).await;
    let view = on_aws
        .add_destination(&caller, access_key("lake"))
        .await
        .expect("added");
    assert_eq!(view.checksum, "crc32c");
    assert!(matches!(view.auth, AuthView::AccessKey { .. }));
    let json = serde_json::to_string(&view).expect("json");
    assert!(!json.contains("canary-secret"), "{json}");
    assert!(
        !json.contains("AKIAEXAMPLEKEY123456"),
        "only a fingerprint: {json}"
    );
    // The same destination, with the operator's endpoint set for the process: runs go there,
    // so they send the custom endpoints' default, and the view says so.
    let on_operator = service(home.path(), Some("http://127.0.0.1:9")).await;
    let view = on_operator
        .destination(&caller, "lake")
        .await
        .expect("view");
    assert_eq!(view.checksum, "when-required");
}

#[tokio::test]
async fn errors_have_a_kind_a_code_and_the_field_or_object_at_fault() {
    let home = tempfile::tempdir().expect("home");
    let caller = Caller::cli("default");
    let service = service(home.path(), None).await;
    service
        .add_destination(&caller, access_key("lake"))
        .await
        .expect("added");

    let taken = service
        .add_destination(&caller, access_key("lake"))
        .await
        .expect_err("taken");
    assert_eq!(taken.kind, ErrorKind::Conflict);
    assert_eq!(taken.code, "destination.exists");
    assert_eq!(taken.object, Some(("destination", "lake".to_string())));
    assert!(
        !taken.message.contains("wharf "),
        "no CLI hints: {}",
        taken.message
    );

    let missing = service
        .destination(&caller, "nope")
        .await
        .expect_err("missing");
    assert_eq!(missing.kind, ErrorKind::NotFound);
    assert_eq!(missing.code, "destination.not_found");
    assert!(
        !missing.message.contains("wharf "),
        "no CLI hints: {}",
        missing.message
    );

    let with_id = spec(serde_json::json!({
        "name": "other", "bucket": "wharf-lake", "region": "eu-west-3", "external_id": "wharf-mine",
        "auth": {"type": "role", "role_arn": "arn:aws:iam::444455556666:role/wharf"},
    }));
    let refused = service
        .add_destination(&caller, with_id)
        .await
        .expect_err("external id is read-only");
    assert_eq!(refused.kind, ErrorKind::BadInput);
    assert_eq!(refused.field.as_deref(), Some("external_id"));

    let bad_bucket = spec(serde_json::json!({
        "name": "bad", "bucket": "Not_A_Bucket", "region": "eu-west-3",
        "auth": {"type": "access-key", "access_key_id": "AKIAEXAMPLEKEY123456", "secret_access_key": "s"},
    }));
    let refused = service
        .add_destination(&caller, bad_bucket)
        .await
        .expect_err("bad bucket");
    assert_eq!(
        (refused.kind, refused.field.as_deref()),
        (ErrorKind::BadInput, Some("bucket"))
    );

    // Another workspace sees nothing of this one.
    let other = Caller::cli("team-b");
    let hidden = service
        .destination(&other, "lake")
        .await
        .expect_err("hidden");
    assert_eq!(hidden.kind, ErrorKind::NotFound);
    assert!(service.destinations(&other).await.expect("list").is_empty());
}
