//! `wharf source ...`: warehouses.

use super::Context;
use crate::args::{AddSource, SourceCommand};
use crate::error::CliError;
use crate::output;
use wharf_domain::{PostgresSource, SourceConfig, SslMode};

pub async fn run(context: &Context, command: SourceCommand) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    match command {
        SourceCommand::Rm { name } => {
            service.remove_source(&caller, &name).await?;
            if context.json {
                output::json(&serde_json::json!({ "removed": name }));
            } else {
                outln!("removed source {name}");
            }
        }
        SourceCommand::Add(AddSource::Local { name, path }) => {
            let added = service.add_local_source(&caller, &name, &path).await?;
            let tables = &added.tables;
            if context.json {
                output::json(&added);
            } else {
                outln!(
                    "Added local source {} ({})",
                    added.name,
                    added.path.display()
                );
                if tables.is_empty() {
                    outln!("It has no tables yet: add .parquet, .csv, .ndjson or .jsonl files.");
                } else {
                    let rows: Vec<Vec<String>> = tables
                        .iter()
                        .map(|t| {
                            vec![
                                t.name.clone(),
                                t.format.to_string(),
                                t.path.display().to_string(),
                            ]
                        })
                        .collect();
                    output::table(&["TABLE", "FORMAT", "PATH"], &rows);
                }
            }
        }
        SourceCommand::Add(AddSource::Postgres {
            name,
            url_env,
            sslmode,
            sslrootcert,
        }) => {
            let url = read_url(url_env.as_deref())?;
            let sslmode = sslmode.as_deref().map(SslMode::parse).transpose()?;
            let source = PostgresSource::parse(&url, sslmode, sslrootcert)?;
            let added = service.add_postgres_source(&caller, &name, source).await?;
            if context.json {
                output::json(&added);
            } else {
                outln!(
                    "Added PostgreSQL source {} ({}, PostgreSQL {}); models on it run their SQL there.",
                    added.name,
                    location(&added.config),
                    added.server_version
                );
            }
        }
        SourceCommand::List => {
            let sources = service.sources(&caller).await?;
            if context.json {
                output::json(&sources);
            } else {
                let rows: Vec<Vec<String>> = sources
                    .iter()
                    .map(|s| vec![s.name.clone(), s.kind.into(), location(&s.config)])
                    .collect();
                output::table(&["NAME", "KIND", "LOCATION"], &rows);
            }
        }
    }
    Ok(())
}

/// Where a source is, for people: a folder, or a URL without its password.
fn location(config: &SourceConfig) -> String {
    match config {
        SourceConfig::Local { path } => path.display().to_string(),
        SourceConfig::Postgres(pg) => format!("{} sslmode={}", pg.display, pg.sslmode),
    }
}

/// The connection URL from `--url-env VAR`, or the first line of standard input.
fn read_url(env: Option<&str>) -> Result<String, CliError> {
    let url = match env {
        Some(var) => std::env::var(var).map_err(|_| {
            CliError::bad(format!(
                "--url-env: environment variable {var} is not set: export the URL in it first"
            ))
        })?,
        None => {
            let mut text = String::new();
            std::io::stdin().read_line(&mut text).map_err(|e| {
                CliError::bad(format!("cannot read the URL from standard input: {e}"))
            })?;
            text
        }
    };
    let url = url.trim().to_string();
    if url.is_empty() {
        return Err(CliError::bad(
            "no URL: give --url-env VAR, or the URL on standard input (postgres://USER:PASSWORD@HOST:PORT/DATABASE)",
        ));
    }
    Ok(url)
}
