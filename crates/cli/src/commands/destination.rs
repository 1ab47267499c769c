//! `wharf destination ...`

use super::Context;
use crate::args::{AddDestination, AddS3, AuthMethod, DestinationCommand, PolicyArgs};
use crate::error::CliError;
use crate::output;
use serde_json::{Value, json};
use wharf_domain::Secret;
use wharf_domain::destination::{AuthSpec, S3DestinationSpec};
use wharf_service::{AuthView, ConnectionReport, DestinationView, PolicyView};

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
        auth: Some(auth),
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
    let (service, caller) = context.service().await?;
    let view = service.add_destination(&caller, spec).await?;
    if context.json {
        output::json(&view);
    } else {
        outln!("added destination {}", view.name);
        describe(&view);
        let name = &view.name;
        match view.auth {
            AuthView::Role { .. } => outln!(
                "\nNext: create the role with the policies from `wharf destination policy {name}`, then run `wharf destination test {name}`."
            ),
            AuthView::AccessKey { .. } => outln!(
                "\nNext: give the key the permissions from `wharf destination policy {name}`, then run `wharf destination test {name}`."
            ),
        }
    }
    Ok(())
}

async fn list(context: &Context) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    let views = service.destinations(&caller).await?;
    if context.json {
        output::json(&views);
        return Ok(());
    }
    if views.is_empty() {
        outln!("no destinations yet: add one with `wharf destination add s3 NAME ...`");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                match v.auth {
                    AuthView::AccessKey { .. } => "access-key",
                    AuthView::Role { .. } => "role",
                }
                .to_string(),
                format!("s3://{}/{}", v.bucket, v.prefix),
                v.region.clone(),
                v.status.to_string(),
            ]
        })
        .collect();
    output::table(&["NAME", "AUTH", "LOCATION", "REGION", "STATUS"], &rows);
    Ok(())
}

async fn show(context: &Context, name: &str) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    let view = service.destination(&caller, name).await?;
    if context.json {
        output::json(&view);
    } else {
        describe(&view);
    }
    Ok(())
}

async fn remove(context: &Context, name: &str) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    service.remove_destination(&caller, name).await?;
    if context.json {
        output::json(&json!({ "removed": name }));
    } else {
        outln!("removed destination {name}");
    }
    Ok(())
}

async fn rotate(context: &Context, name: &str) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    let view = service.rotate_external_id(&caller, name).await?;
    if context.json {
        output::json(&view);
    } else {
        outln!(
            "new External ID for {name}: {}",
            view.external_id.as_deref().unwrap_or_default()
        );
        outln!(
            "The destination is unverified until the role's trust policy requires this External ID (`wharf destination policy {name}`) and `wharf destination test {name}` passes."
        );
    }
    Ok(())
}

async fn print_policy(context: &Context, args: PolicyArgs) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    let view = service
        .destination_policy(&caller, &args.name, args.principal_arn)
        .await?;
    if context.json {
        output::json(&view);
    } else {
        print_policies(&view);
    }
    Ok(())
}

/// The human form of `destination policy`, shared with the demo.
pub fn print_policies(view: &PolicyView) {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    if let (Some(principal), Some(trust)) = (&view.principal_arn, &view.trust_policy) {
        outln!(
            "Trust policy (the role's \"Trust relationships\"): lets {principal} assume the role with the External ID only."
        );
        outln!("{}\n", pretty(trust));
        outln!("Permission policy (attach it to the role):");
    } else {
        outln!(
            "Permission policy (attach it to the IAM user that owns access key {}):",
            view.access_key_fingerprint.as_deref().unwrap_or_default()
        );
    }
    outln!("{}", pretty(&view.permission_policy));
    if view.uses_kms {
        outln!("\nThe KMS key's own key policy must also allow this principal to use the key.");
    }
}

async fn test(context: &Context, name: &str) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    let report = service.test_destination(&caller, name).await?;
    if context.json {
        output::json(&report);
    } else {
        print_report(&report);
    }
    if report.ok {
        // The destination works again: the syncs it paused can go on.
        if !context.json {
            for sync in service.paused_syncs_of(&caller, name).await? {
                outln!(
                    "\nsync {} is paused ({}); resume it with `wharf sync resume {}`",
                    sync.name,
                    sync.pause_reason.as_deref().unwrap_or("paused"),
                    sync.name
                );
            }
        }
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "the connection test of {name} failed"
        )))
    }
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

/// The human form of a destination's view.
pub fn describe(view: &DestinationView) {
    let mut rows = vec![
        ("name", view.name.clone()),
        ("location", format!("s3://{}/{}", view.bucket, view.prefix)),
        ("region", view.region.clone()),
    ];
    match &view.auth {
        AuthView::AccessKey { access_key_id } => {
            rows.push(("auth", "access key".into()));
            rows.push(("access key id", access_key_id.clone()));
        }
        AuthView::Role {
            role_arn,
            session_duration_seconds,
        } => {
            rows.push(("auth", "cross-account role".into()));
            rows.push(("role", role_arn.clone()));
            rows.push(("external id", view.external_id.clone().unwrap_or_default()));
            rows.push(("session", format!("{session_duration_seconds} s")));
        }
    }
    let optional = [
        ("endpoint", view.endpoint.as_deref()),
        ("encryption", view.sse),
        ("kms key", view.kms_key_id.as_deref()),
        ("storage class", view.storage_class),
        ("acl", view.acl),
        ("checksum", Some(view.checksum)),
    ];
    for (label, value) in optional {
        if let Some(value) = value {
            rows.push((label, value.to_string()));
        }
    }
    rows.push(("status", view.status.to_string()));
    for (label, value) in rows {
        outln!("{label:<14} {value}");
    }
}
