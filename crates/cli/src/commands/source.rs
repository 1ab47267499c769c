//! `wharf source ...`: warehouses.

use super::Context;
use crate::args::{AddSource, SourceCommand};
use crate::error::CliError;
use crate::output;
use serde_json::json;
use wharf_domain::{Name, SourceConfig};
use wharf_store::DEFAULT_WORKSPACE;

pub async fn run(context: &Context, command: SourceCommand) -> Result<(), CliError> {
    let store = context.store().await?;
    match command {
        SourceCommand::Add(AddSource::Local { name, path }) => {
            let name = Name::parse("name", &name)?;
            let (record, tables) = wharf_runner::models::add_local_source(
                &store,
                DEFAULT_WORKSPACE,
                &name,
                &path,
                &context.runner_settings(),
            )
            .await?;
            let SourceConfig::Local { path } = &record.config;
            if context.json {
                output::json(&json!({
                    "name": record.name,
                    "kind": "local",
                    "path": path,
                    "tables": tables.iter().map(|t| json!({"name": t.name, "format": t.format, "path": t.path})).collect::<Vec<_>>(),
                }));
            } else {
                println!("Added local source {} ({})", record.name, path.display());
                if tables.is_empty() {
                    println!("It has no tables yet: add .parquet, .csv, .ndjson or .jsonl files.");
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
        SourceCommand::List => {
            let sources = store.list_sources(DEFAULT_WORKSPACE).await?;
            if context.json {
                output::json(
                    &sources
                        .iter()
                        .map(|s| json!({"name": s.name, "kind": s.config.kind(), "config": s.config}))
                        .collect::<Vec<_>>(),
                );
            } else {
                let rows: Vec<Vec<String>> = sources
                    .iter()
                    .map(|s| {
                        let SourceConfig::Local { path } = &s.config;
                        vec![
                            s.name.clone(),
                            s.config.kind().into(),
                            path.display().to_string(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "KIND", "LOCATION"], &rows);
            }
        }
    }
    Ok(())
}
