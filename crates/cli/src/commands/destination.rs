//! `wharf destination ...`

use super::Context;
use crate::args::{AddDestination, AddS3, AuthMethod, DestinationCommand, PolicyArgs};
use crate::error::CliError;
use crate::output;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use wharf_delivery::{ConnectionReport, Identity, TestContext};
use wharf_domain::destination::{AuthSpec, S3DestinationSpec};
use wharf_domain::{ExternalId, S3Auth, S3Destination, Secret, ServerSideEncryption, policy};
use wharf_store::{DEFAULT_WORKSPACE, DestinationRecord, Store};

pub async fn run(context: &Context, command: DestinationCommand) -> Result<(), CliError> {
    match command {
        DestinationCommand::Add(AddDestination::S3(args)) => add(context, *args).await,
        DestinationCommand::List => list(context).await,
        DestinationCommand::Show { name } => show(context, &name).await,
        DestinationCommand::Rm { name } => remove(context, &name).await,
        DestinationCommand::RotateExternalId { name } => rotate(context, &name).await,
        DestinationCommand::Policy(args) => print_policy(context, args).await,
        DestinationCommand::Test { name } => test(context, &name).await,
    }
}

/// Turns the flags into a spec, checking the combinations clap cannot express.
fn spec_from_args(args: AddS3) -> Result<S3DestinationSpec, CliError> {
    let auth = match args.auth {
        AuthMethod::AccessKey => {
            for (flag, given) in [
                ("--role-arn", args.role_arn.is_some()),
                ("--session-duration", args.session_duration.is_some()),
            ] {
                if given {
                    return Err(CliError::bad(format!(
                        "{flag} is for --auth role, not --auth access-key"
                    )));
                }
            }
            let access_key_id = args.access_key_id.ok_or_else(|| {
                CliError::bad("--auth access-key needs --access-key-id ID and the secret from --secret-access-key-env VAR or --secret-access-key-stdin")
            })?;
            let secret = read_secret(
                args.secret_access_key_env.as_deref(),
                args.secret_access_key_stdin,
            )?;
            AuthSpec::AccessKey {
                access_key_id,
                secret_access_key: secret,
            }
        }
        AuthMethod::Role => {
            for (flag, given) in [
                ("--access-key-id", args.access_key_id.is_some()),
                (
                    "--secret-access-key-env",
                    args.secret_access_key_env.is_some(),
                ),
                ("--secret-access-key-stdin", args.secret_access_key_stdin),
            ] {
                if given {
                    return Err(CliError::bad(format!(
                        "{flag} is for --auth access-key; with --auth role wharf assumes the role with its own identity"
                    )));
                }
            }
            let role_arn = args.role_arn.ok_or_else(|| {
                CliError::bad("--auth role needs --role-arn arn:aws:iam::ACCOUNT:role/NAME")
            })?;
            AuthSpec::Role {
                role_arn,
                session_duration_seconds: args.session_duration,
            }
        }
    };
    Ok(S3DestinationSpec {
        name: args.name,
        bucket: args.bucket,
        region: args.region,
        prefix: args.prefix,
        auth,
        endpoint: args.endpoint,
        sse: args.delivery.sse,
        kms_key_id: args.delivery.kms_key_id,
        storage_class: args.delivery.storage_class,
        acl: args.delivery.acl,
        checksum: args.delivery.checksum,
        external_id: None,
    })
}

/// The secret access key, from an environment variable or standard input; never an argument
/// value, which would land in shell history and process listings.
fn read_secret(env: Option<&str>, stdin: bool) -> Result<Secret<String>, CliError> {
    let value = match (env, stdin) {
        (Some(var), false) => std::env::var(var).map_err(|_| {
            CliError::bad(format!(
                "--secret-access-key-env: environment variable {var} is not set: export the secret in it first"
            ))
        })?,
        (None, true) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| CliError::bad(format!("--secret-access-key-stdin: cannot read standard input: {e}")))?;
            text.trim_end_matches(['\r', '\n']).to_string()
        }
        _ => {
            return Err(CliError::bad(
                "--auth access-key needs the secret from --secret-access-key-env VAR or --secret-access-key-stdin (secrets are never taken as argument values)",
            ));
        }
    };
    Ok(Secret::new(value))
}

async fn add(context: &Context, args: AddS3) -> Result<(), CliError> {
    let spec = spec_from_args(args)?;
    let external_id = ExternalId::generate().map_err(|e| {
        CliError::failed(format!(
            "cannot generate an External ID: the operating system gave no randomness ({e})"
        ))
    })?;
    let destination = spec.validate(|| external_id, context.allow_private_endpoints)?;
    if let Some(endpoint) = &destination.endpoint {
        wharf_delivery::check_endpoint(endpoint, context.allow_private_endpoints).await?;
    }
    let store = context.store().await?;
    let record = store
        .create_destination(DEFAULT_WORKSPACE, &destination)
        .await?;
    if context.json {
        output::json(&view(&record));
    } else {
        outln!("added destination {}", record.destination.name);
        describe(&record);
        match &record.destination.auth {
            S3Auth::AssumeRole { .. } => outln!(
                "\nNext: create the role with the policies from `wharf destination policy {0}`, then run `wharf destination test {0}`.",
                record.destination.name
            ),
            S3Auth::AccessKey { .. } => outln!(
                "\nNext: give the key the permissions from `wharf destination policy {0}`, then run `wharf destination test {0}`.",
                record.destination.name
            ),
        }
    }
    Ok(())
}

async fn list(context: &Context) -> Result<(), CliError> {
    let store = context.store().await?;
    let records = store.list_destinations(DEFAULT_WORKSPACE).await?;
    if context.json {
        output::json(&records.iter().map(view).collect::<Vec<_>>());
        return Ok(());
    }
    if records.is_empty() {
        outln!("no destinations yet: add one with `wharf destination add s3 NAME ...`");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let d = &r.destination;
            vec![
                d.name.to_string(),
                d.auth.kind().to_string(),
                format!("s3://{}/{}", d.bucket, d.prefix),
                d.region.to_string(),
                status(r),
            ]
        })
        .collect();
    output::table(&["NAME", "AUTH", "LOCATION", "REGION", "STATUS"], &rows);
    Ok(())
}

async fn show(context: &Context, name: &str) -> Result<(), CliError> {
    let store = context.store().await?;
    let record = store.destination(DEFAULT_WORKSPACE, name).await?;
    if context.json {
        output::json(&view(&record));
    } else {
        describe(&record);
    }
    Ok(())
}

async fn remove(context: &Context, name: &str) -> Result<(), CliError> {
    let store = context.store().await?;
    store.remove_destination(DEFAULT_WORKSPACE, name).await?;
    if context.json {
        output::json(&json!({ "removed": name }));
    } else {
        outln!("removed destination {name}");
    }
    Ok(())
}

async fn rotate(context: &Context, name: &str) -> Result<(), CliError> {
    let store = context.store().await?;
    let external_id = ExternalId::generate()
        .map_err(|e| CliError::failed(format!("cannot generate an External ID: {e}")))?;
    let record = store
        .rotate_external_id(DEFAULT_WORKSPACE, name, &external_id)
        .await?;
    if context.json {
        output::json(&view(&record));
    } else {
        outln!("new External ID for {name}: {external_id}");
        outln!(
            "The destination is unverified until the role's trust policy requires this External ID (`wharf destination policy {name}`) and `wharf destination test {name}` passes."
        );
    }
    Ok(())
}

async fn print_policy(context: &Context, args: PolicyArgs) -> Result<(), CliError> {
    let store = context.store().await?;
    let record = store.destination(DEFAULT_WORKSPACE, &args.name).await?;
    let destination = &record.destination;
    let permission_policy = policy::permission_policy(destination);
    let (principal, external_id, trust_policy) = match &destination.auth {
        S3Auth::AccessKey { .. } => (None, None, None),
        S3Auth::AssumeRole { external_id, .. } => {
            let principal = match args.principal_arn {
                Some(arn) => arn,
                None => {
                    let caller = Identity::from_environment().await.caller().await.map_err(|e| {
                        CliError::failed(format!(
                            "{e}\nwharf needs its own identity to name it in the trust policy; give it with --principal-arn ARN if wharf runs elsewhere"
                        ))
                    })?;
                    policy::trust_principal(&caller.arn)
                }
            };
            let trust = policy::trust_policy(&principal, external_id);
            (
                Some(principal),
                Some(external_id.as_str().to_string()),
                Some(trust),
            )
        }
    };
    if context.json {
        output::json(&json!({
            "principal_arn": principal,
            "external_id": external_id,
            "trust_policy": trust_policy,
            "permission_policy": permission_policy,
        }));
        return Ok(());
    }
    print_policies(
        destination,
        principal.as_deref(),
        trust_policy.as_ref(),
        &permission_policy,
    );
    Ok(())
}

/// The human form of `destination policy`, shared with the demo.
pub fn print_policies(
    destination: &S3Destination,
    principal: Option<&str>,
    trust_policy: Option<&Value>,
    permission_policy: &Value,
) {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    if let (Some(principal), Some(trust)) = (principal, trust_policy) {
        outln!(
            "Trust policy (the role's \"Trust relationships\"): lets {principal} assume the role with the External ID only."
        );
        outln!("{}\n", pretty(trust));
        outln!("Permission policy (attach it to the role):");
    } else {
        outln!(
            "Permission policy (attach it to the IAM user that owns access key {}):",
            match &destination.auth {
                S3Auth::AccessKey { access_key_id, .. } => access_key_id.fingerprint(),
                S3Auth::AssumeRole { .. } => String::new(),
            }
        );
    }
    outln!("{}", pretty(permission_policy));
    if matches!(
        destination.delivery.sse,
        Some(ServerSideEncryption::Kms { .. })
    ) {
        outln!("\nThe KMS key's own key policy must also allow this principal to use the key.");
    }
}

async fn test(context: &Context, name: &str) -> Result<(), CliError> {
    let store = context.store().await?;
    let record = store.destination(DEFAULT_WORKSPACE, name).await?;
    let report = run_test(&store, &record, context).await?;
    if context.json {
        output::json(&report);
    } else {
        print_report(&report);
    }
    if report.ok {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "the connection test of {name} failed"
        )))
    }
}

/// Runs the connection test and records its outcome.
pub async fn run_test(
    store: &Store,
    record: &DestinationRecord,
    context: &Context,
) -> Result<ConnectionReport, CliError> {
    let destination = &record.destination;
    let (identity, principal_arn) = match destination.auth {
        S3Auth::AssumeRole { .. } => {
            let identity = Identity::from_environment().await;
            let principal = identity
                .caller()
                .await
                .ok()
                .map(|c| policy::trust_principal(&c.arn));
            (Some(identity), principal)
        }
        S3Auth::AccessKey { .. } => (None, None),
    };
    let test_context = TestContext {
        principal_arn,
        external_id_rotated: record.verified_at.is_none() && record.last_test.is_some_and(|t| t.ok),
    };
    let report = wharf_delivery::test_connection(
        destination,
        identity.as_ref(),
        &test_context,
        context.client_settings(),
    )
    .await;
    store
        .record_test(DEFAULT_WORKSPACE, destination.name.as_str(), report.ok)
        .await?;
    Ok(report)
}

pub fn print_report(report: &ConnectionReport) {
    for step in &report.steps {
        let mark = match (step.ok, step.fix.is_some()) {
            (true, false) => "ok  ",
            (true, true) => "warn",
            (false, _) => "FAIL",
        };
        outln!("{mark} {:<32} {}", step.step, step.message);
        let mut details = Vec::new();
        if let Some(code) = &step.error_code {
            details.push(format!("error code {code}"));
        }
        if let Some(id) = &step.request_id
            && !step.ok
        {
            details.push(format!("request id {id}"));
        }
        if !details.is_empty() {
            outln!("     {:<32} ({})", "", details.join(", "));
        }
        if let Some(fix) = &step.fix {
            outln!("     {:<32} fix: {fix}", "");
        }
    }
    outln!(
        "{}",
        if report.ok {
            "connection test passed"
        } else {
            "connection test FAILED"
        }
    );
}

fn status(record: &DestinationRecord) -> String {
    match (&record.verified_at, &record.last_test) {
        (Some(_), _) => "verified".to_string(),
        (None, Some(t)) if !t.ok => "test failed".to_string(),
        (None, Some(_)) => "unverified (External ID rotated)".to_string(),
        (None, None) => "untested".to_string(),
    }
}

fn timestamp(t: &time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The public view of a destination: everything but secrets. Access key ids appear only as a
/// fingerprint.
pub fn view(record: &DestinationRecord) -> Value {
    let d = &record.destination;
    let auth = match &d.auth {
        S3Auth::AccessKey { access_key_id, .. } => json!({
            "type": "access-key",
            "access_key_id": access_key_id.fingerprint(),
        }),
        S3Auth::AssumeRole {
            role_arn,
            session_duration_seconds,
            ..
        } => json!({
            "type": "role",
            "role_arn": role_arn.as_str(),
            "session_duration_seconds": session_duration_seconds,
        }),
    };
    let external_id = match &d.auth {
        S3Auth::AssumeRole { external_id, .. } => Some(external_id.as_str()),
        S3Auth::AccessKey { .. } => None,
    };
    let (sse, kms_key_id) = match &d.delivery.sse {
        None => (None, None),
        Some(ServerSideEncryption::Aes256) => (Some("aes256"), None),
        Some(ServerSideEncryption::Kms { key_id }) => (Some("kms"), Some(key_id.as_str())),
    };
    json!({
        "name": d.name.as_str(),
        "kind": "s3",
        "bucket": d.bucket.as_str(),
        "region": d.region.as_str(),
        "prefix": d.prefix.as_str(),
        "auth": auth,
        "external_id": external_id,
        "endpoint": d.endpoint.as_ref().map(|e| e.to_string()),
        "sse": sse,
        "kms_key_id": kms_key_id,
        "storage_class": d.delivery.storage_class.map(|s| s.as_str()),
        "acl": d.delivery.acl.map(|a| a.as_str()),
        "checksum": d.delivery.effective_checksum(d.endpoint.is_some()).as_str(),
        "verified": record.verified_at.is_some(),
        "verified_at": record.verified_at.as_ref().map(timestamp),
        "last_test": record.last_test.map(|t| json!({"at": timestamp(&t.at), "ok": t.ok})),
        "created_at": timestamp(&record.created_at),
        "status": status(record),
    })
}

/// The human form of [`view`].
pub fn describe(record: &DestinationRecord) {
    let v = view(record);
    let d = &record.destination;
    let mut rows = vec![
        ("name", d.name.to_string()),
        ("location", format!("s3://{}/{}", d.bucket, d.prefix)),
        ("region", d.region.to_string()),
    ];
    match &d.auth {
        S3Auth::AccessKey { access_key_id, .. } => {
            rows.push(("auth", "access key".into()));
            rows.push(("access key id", access_key_id.fingerprint()));
        }
        S3Auth::AssumeRole {
            role_arn,
            external_id,
            session_duration_seconds,
        } => {
            rows.push(("auth", "cross-account role".into()));
            rows.push(("role", role_arn.to_string()));
            rows.push(("external id", external_id.to_string()));
            rows.push(("session", format!("{session_duration_seconds} s")));
        }
    }
    for (label, field) in [
        ("endpoint", "endpoint"),
        ("encryption", "sse"),
        ("kms key", "kms_key_id"),
        ("storage class", "storage_class"),
        ("acl", "acl"),
        ("checksum", "checksum"),
    ] {
        if let Some(value) = v[field].as_str() {
            rows.push((label, value.to_string()));
        }
    }
    rows.push(("status", status(record)));
    for (label, value) in rows {
        outln!("{label:<14} {value}");
    }
}
