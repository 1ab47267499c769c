//! `wharf demo`: wharf end to end on this machine, with no AWS account and no network.

use super::Context;
use super::destination::{describe, print_policies, print_report};
use crate::args::DemoArgs;
use crate::error::CliError;
use crate::output;
use serde_json::json;
use wharf_delivery::local_s3::{LocalS3Config, LocalS3Server};
use wharf_domain::destination::{AuthSpec, S3DestinationSpec};
use wharf_domain::{ExternalId, S3Auth, Secret};
use wharf_store::{DEFAULT_WORKSPACE, StoreError};

const BUCKET: &str = "wharf-demo";
const LOCAL: &str = "demo-local";
const ROLE: &str = "demo-partner-role";
/// AWS's documentation account id: the demo has no AWS identity of its own.
const EXAMPLE_PRINCIPAL: &str = "arn:aws:iam::111122223333:user/wharf";
const EXAMPLE_ROLE: &str = "arn:aws:iam::444455556666:role/wharf-export";

/// The user `--serve` signs in with.
const DEMO_USER: &str = "demo@wharf.local";

pub async fn run(context: &Context, args: DemoArgs) -> Result<(), CliError> {
    let store = context.store().await?;
    let say = |line: &str| {
        if !context.json {
            outln!("{line}");
        }
    };

    // 1. A local S3 endpoint, in this process, with a fresh key.
    let access_key = format!(
        "WHARFDEMO{}",
        &uuid::Uuid::new_v4().simple().to_string()[..11]
    )
    .to_uppercase();
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let data = context.home.join("local-s3");
    std::fs::create_dir_all(data.join(BUCKET))
        .map_err(|e| CliError::failed(format!("cannot create {}: {e}", data.display())))?;
    let server = LocalS3Server::start(LocalS3Config {
        root: data.clone(),
        port: 0,
        credentials: vec![(access_key.clone(), secret.clone())],
        access_rule: None,
        hook: None,
    })
    .await
    .map_err(|e| CliError::failed(e.to_string()))?;
    say(&format!(
        "1. Local S3 endpoint {} serving {}",
        server.endpoint(),
        data.display()
    ));

    // 2. An access-key destination pointing at it (updated each run: the port changes).
    let spec = S3DestinationSpec {
        name: LOCAL.into(),
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        prefix: Some("exports/".into()),
        auth: Some(AuthSpec::AccessKey {
            access_key_id: access_key,
            secret_access_key: Secret::new(secret),
        }),
        endpoint: Some(server.endpoint()),
        sse: None,
        kms_key_id: None,
        storage_class: None,
        acl: None,
        checksum: Some("crc32c".into()),
        external_id: None,
    };
    // The demo's own endpoint is on loopback, which the demo allows for itself only.
    let destination = spec.validate(
        || unreachable!("access-key auth needs no External ID"),
        true,
    )?;
    let record = match store.destination(DEFAULT_WORKSPACE, LOCAL).await {
        Ok(_) => {
            store
                .replace_destination(DEFAULT_WORKSPACE, &destination)
                .await?
        }
        Err(StoreError::NotFound { .. }) => {
            store
                .create_destination(DEFAULT_WORKSPACE, &destination)
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    say(&format!(
        "\n2. Destination {LOCAL} (access key, bucket {BUCKET}, prefix exports/):"
    ));
    // The demo's endpoint is on loopback, which it allows for itself only.
    let demo_context = super::Context {
        home: context.home.clone(),
        json: context.json,
        allow_private_endpoints: true,
        query_memory_mb: context.query_memory_mb,
        // The demo writes its objects to the default workspace.
        workspace: DEFAULT_WORKSPACE.to_string(),
        local_source_roots: None,
    };
    let (service, caller) = demo_context.service().await?;
    if !context.json {
        describe(
            &service
                .destination(&caller, record.destination.name.as_str())
                .await?,
        );
    }

    // 3. The connection test: writes through a multipart upload it aborts, leaves nothing.
    let before = count_files(&data.join(BUCKET));
    let report = service.test_destination(&caller, LOCAL).await?;
    say(&format!(
        "\n3. Connection test of {LOCAL} (`wharf destination test {LOCAL}`):"
    ));
    if !context.json {
        print_report(&report);
    }
    let leftovers = count_files(&data.join(BUCKET)).saturating_sub(before);
    say(&format!(
        "   objects left in the bucket by the test: {leftovers}"
    ));

    // 4. The sample warehouse, a model, one sync per format; each run streams into the bucket.
    let exports =
        super::demo_exports::run(&service, &caller, &demo_context, LOCAL, &data.join(BUCKET))
            .await?;

    // 5. A cross-account role destination and the policies its owner would install.
    let role_record = match store.destination(DEFAULT_WORKSPACE, ROLE).await {
        Ok(record) => record,
        Err(StoreError::NotFound { .. }) => {
            let external_id = ExternalId::generate()
                .map_err(|e| CliError::failed(format!("cannot generate an External ID: {e}")))?;
            let spec = S3DestinationSpec {
                name: ROLE.into(),
                bucket: "partner-data-lake".into(),
                region: "eu-west-3".into(),
                prefix: Some("from-wharf/".into()),
                auth: Some(AuthSpec::Role {
                    role_arn: EXAMPLE_ROLE.into(),
                    session_duration_seconds: None,
                }),
                endpoint: None,
                sse: None,
                kms_key_id: None,
                storage_class: None,
                acl: Some("bucket-owner-full-control".into()),
                checksum: None,
                external_id: None,
            };
            let destination = spec.validate(|| external_id, false)?;
            store
                .create_destination(DEFAULT_WORKSPACE, &destination)
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let S3Auth::AssumeRole { external_id, .. } = &role_record.destination.auth else {
        return Err(CliError::failed(format!(
            "{ROLE} exists but is not a role destination: remove it with `wharf destination rm {ROLE}`"
        )));
    };
    let policies = service
        .destination_policy(&caller, ROLE, Some(EXAMPLE_PRINCIPAL.into()))
        .await?;
    if !context.json {
        outln!(
            "\n5. Role destination {ROLE} (role {EXAMPLE_ROLE}, External ID generated by wharf: {external_id})."
        );
        outln!(
            "   Policies its bucket owner installs (`wharf destination policy {ROLE}`; wharf's own principal"
        );
        outln!("   comes from `wharf whoami`, here the example {EXAMPLE_PRINCIPAL}):\n");
        print_policies(&policies);
        outln!("\nNext:");
        outln!("  wharf destination list                      # both destinations");
        outln!("  wharf destination show {ROLE}      # the External ID, never a secret");
        outln!("  wharf destination add s3 NAME --bucket B --region R --auth role --role-arn ARN");
        outln!("  wharf destination test NAME                 # against your own bucket");
        if !args.serve {
            outln!(
                "  wharf demo --serve                          # all this, then the web UI on http://127.0.0.1:8080"
            );
        }
    } else {
        output::json(&json!({
            "local_s3": server.endpoint(),
            "destination": LOCAL,
            "connection_test": report,
            "objects_left": leftovers,
            "role_destination": ROLE,
            "external_id": external_id.as_str(),
            "trust_policy": policies.trust_policy,
            "permission_policy": policies.permission_policy,
            "exports": exports,
        }));
    }
    if !report.ok {
        server.shutdown().await;
        return Err(CliError::failed("the demo's connection test failed"));
    }
    if exports.iter().any(|e| e.error.is_some()) {
        server.shutdown().await;
        return Err(CliError::failed("a demo export failed"));
    }
    let served = if args.serve {
        serve_ui(&demo_context, &args.listen).await
    } else {
        Ok(())
    };
    server.shutdown().await;
    served
}

/// `--serve`: the web UI and the API on `listen`, over the demo's objects, with a demo user
/// whose password is new at each start (printed, never stored in clear), until Ctrl-C. The
/// local S3 endpoint stays up meanwhile, so Connect and Run now work.
async fn serve_ui(demo: &Context, listen: &str) -> Result<(), CliError> {
    let address: std::net::SocketAddr = listen.parse().map_err(|_| {
        CliError::bad(format!(
            "--listen {listen:?} is not an address and port; write it as 127.0.0.1:8080"
        ))
    })?;
    let roots = vec![demo.home.join("warehouse")];
    let service = wharf_service::Service::open(demo.settings(Some(roots))).await?;
    let caller = wharf_service::Caller::cli(DEFAULT_WORKSPACE);
    let password = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    match service.remove_user(&caller, DEMO_USER).await {
        Ok(()) => {}
        Err(e) if e.kind == wharf_service::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    service
        .add_user(&caller, DEMO_USER, "admin", &password)
        .await?;
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tokio::net::TcpListener::bind((address.ip(), 0))
                .await
                .map_err(|e| CliError::failed(format!("cannot listen on {}: {e}", address.ip())))?
        }
        Err(e) => return Err(CliError::failed(format!("cannot listen on {address}: {e}"))),
    };
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::failed(format!("cannot read the bound address: {e}")))?;
    errln!("\nThe web UI: http://{bound}/");
    errln!("  sign in as {DEMO_USER} with the password {password}");
    errln!(
        "  (a new password at each `wharf demo --serve`; Ctrl-C stops the UI and the local S3 endpoint)"
    );
    let mut signals = super::sync::StopSignals::new()?;
    let shutdown = async move {
        let signal = signals.next().await;
        errln!("{signal}: stopping");
    };
    wharf_server::serve(
        listener,
        service,
        wharf_server::ServerOptions::default(),
        shutdown,
    )
    .await
    .map_err(|e| CliError::failed(format!("the server stopped: {e}")))
}

/// Files under `dir`, recursively (objects of the local S3 endpoint, earlier demo runs' included).
fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() { count_files(&path) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}
