//! Sources and models through the service: the views, and errors that name the field or the
//! object at fault without telling an API caller to type a CLI flag.

use wharf_service::{Caller, ErrorKind, NewModelInput, Service, Settings};

async fn service(home: &std::path::Path) -> Service {
    Service::open(Settings::new(home)).await.expect("service")
}

#[tokio::test]
async fn a_local_source_and_a_model_on_it_are_added_previewed_and_refused_by_field() {
    let home = tempfile::tempdir().expect("home");
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("people.csv"), "id,name\n1,Ada\n2,Bob\n").expect("csv");
    let caller = Caller::cli("default");
    let service = service(home.path()).await;

    let added = service
        .add_local_source(&caller, "files", data.path())
        .await
        .expect("source");
    assert_eq!(added.tables.len(), 1);
    assert_eq!(added.tables[0].name, "people");
    let missing_folder = service
        .add_local_source(&caller, "gone", &data.path().join("nope"))
        .await
        .expect_err("no such folder");
    assert_eq!(missing_folder.kind, ErrorKind::BadInput);
    assert_eq!(missing_folder.field.as_deref(), Some("path"));
    assert!(
        !missing_folder.message.contains("--"),
        "{}",
        missing_folder.message
    );

    let model = |name: &'static str, source: &'static str, sql: &'static str| NewModelInput {
        name,
        source,
        sql,
        primary_key: "id",
    };
    let view = service
        .add_model(&caller, model("people", "files", "SELECT * FROM people"))
        .await
        .expect("model");
    assert_eq!(view.columns.len(), 2);
    assert_eq!(service.model(&caller, "people").await.expect("show"), view);
    assert_eq!(service.models(&caller).await.expect("list"), vec![view]);
    let preview = service
        .preview_model(&caller, "people", 1)
        .await
        .expect("preview");
    assert_eq!(preview.rows.len(), 1);
    assert_eq!(preview.rows[0]["name"], "Ada");

    let no_source = service
        .add_model(&caller, model("m", "nowhere", "SELECT 1 AS id"))
        .await
        .expect_err("no source");
    assert_eq!(
        (no_source.kind, no_source.code.as_str()),
        (ErrorKind::NotFound, "source.not_found")
    );
    let explain = service
        .add_model(&caller, model("m", "files", "EXPLAIN SELECT * FROM people"))
        .await
        .expect_err("not a query");
    assert_eq!(
        (explain.kind, explain.code.as_str()),
        (ErrorKind::BadInput, "model.not_a_query")
    );
    let taken = service
        .add_model(&caller, model("people", "files", "SELECT * FROM people"))
        .await
        .expect_err("taken");
    assert_eq!(taken.kind, ErrorKind::Conflict);
}

#[tokio::test]
async fn on_a_shared_server_local_sources_stay_inside_the_operators_folders() {
    let home = tempfile::tempdir().expect("home");
    let allowed = tempfile::tempdir().expect("allowed");
    let outside = tempfile::tempdir().expect("outside");
    std::fs::create_dir(allowed.path().join("team")).expect("mkdir");
    std::fs::write(allowed.path().join("team/people.csv"), "id\n1\n").expect("csv");
    std::fs::write(outside.path().join("secrets.csv"), "id\n1\n").expect("csv");
    std::os::unix::fs::symlink(outside.path(), allowed.path().join("escape")).expect("symlink");
    // A table file inside the folder that is a link to a file outside it.
    std::os::unix::fs::symlink(
        outside.path().join("secrets.csv"),
        allowed.path().join("team/leak.csv"),
    )
    .expect("symlink");
    let service = Service::open(Settings {
        local_source_roots: Some(vec![allowed.path().to_path_buf()]),
        ..Settings::new(home.path())
    })
    .await
    .expect("service");
    let caller = Caller::cli("default");
    service
        .add_local_source(&caller, "team", &allowed.path().join("team"))
        .await
        .expect("inside the root");
    for (name, path) in [
        ("out", outside.path().to_path_buf()),
        ("link", allowed.path().join("escape")),
        ("dots", allowed.path().join("team/../../")),
        ("root", std::path::PathBuf::from("/")),
    ] {
        let e = service
            .add_local_source(&caller, name, &path)
            .await
            .expect_err(name);
        assert_eq!(
            (e.kind, e.code.as_str(), e.field.as_deref()),
            (ErrorKind::Forbidden, "source.outside_roots", Some("path")),
            "{name}: {e}"
        );
    }
    let names: Vec<String> = service
        .sources(&caller)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["team"]);

    let model = |name: &'static str| NewModelInput {
        name,
        source: "team",
        sql: if name == "people" {
            "SELECT * FROM people"
        } else {
            "SELECT * FROM leak"
        },
        primary_key: "id",
    };
    service
        .add_model(&caller, model("people"))
        .await
        .expect("a table inside");
    let leak = service
        .add_model(&caller, model("leak"))
        .await
        .expect_err("a link out of the folder");
    assert!(leak.message.contains("leads outside"), "{leak}");
}
