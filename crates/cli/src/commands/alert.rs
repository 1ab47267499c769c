//! `wharf alert ...`: webhook channels told when runs fail, syncs pause and recover.

use super::Context;
use crate::args::AlertCommand;
use crate::error::CliError;
use crate::output;
use wharf_service::{AlertView, NewAlert};

pub async fn run(context: &Context, command: AlertCommand) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    match command {
        AlertCommand::Add {
            name,
            url,
            on,
            sync,
            secret_env,
        } => {
            let secret = match secret_env {
                Some(var) => Some(std::env::var(&var).map_err(|_| {
                    CliError::bad(format!(
                        "--secret-env {var}: the environment variable {var} is not set"
                    ))
                })?),
                None => None,
            };
            let added = service
                .add_alert(
                    &caller,
                    NewAlert {
                        name,
                        url,
                        on,
                        sync,
                        secret,
                    },
                )
                .await?;
            if context.json {
                output::json(&added);
            } else {
                outln!("Added alert {}", added.alert.name);
                describe(&added.alert);
                if let Some(secret) = &added.secret {
                    outln!(
                        "\nsigning secret (shown once; receivers check x-wharf-signature with it):\n  {secret}"
                    );
                }
            }
        }
        AlertCommand::List => {
            let alerts = service.alerts(&caller).await?;
            if context.json {
                output::json(&alerts);
            } else {
                let rows: Vec<Vec<String>> = alerts
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            a.url.clone(),
                            a.on.join(","),
                            a.sync.clone().unwrap_or_else(|| "(all)".into()),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "URL", "ON", "SYNC"], &rows);
            }
        }
        AlertCommand::Show { name } => {
            let alert = service.alert(&caller, &name).await?;
            if context.json {
                output::json(&alert);
            } else {
                describe(&alert);
                let deliveries = alert.deliveries.as_deref().unwrap_or_default();
                if !deliveries.is_empty() {
                    outln!();
                    let rows: Vec<Vec<String>> = deliveries
                        .iter()
                        .map(|d| {
                            vec![
                                d.id.to_string(),
                                d.event.clone(),
                                d.status.clone(),
                                d.attempts.to_string(),
                                d.created_at.clone(),
                                d.last_error.clone().unwrap_or_default(),
                            ]
                        })
                        .collect();
                    output::table(
                        &[
                            "DELIVERY",
                            "EVENT",
                            "STATUS",
                            "ATTEMPTS",
                            "QUEUED",
                            "LAST ERROR",
                        ],
                        &rows,
                    );
                }
            }
        }
        AlertCommand::Rm { name } => {
            service.remove_alert(&caller, &name).await?;
            if context.json {
                output::json(&serde_json::json!({ "removed": name }));
            } else {
                outln!("removed alert {name} and its deliveries");
            }
        }
    }
    Ok(())
}

fn describe(a: &AlertView) {
    outln!("alert   {}", a.name);
    outln!("url     {}", a.url);
    outln!("on      {}", a.on.join(", "));
    outln!("sync    {}", a.sync.as_deref().unwrap_or("(every sync)"));
}
