//! `wharf model ...`: named queries.

use super::Context;
use crate::args::ModelCommand;
use crate::error::CliError;
use crate::output;
use wharf_service::{ModelView, NewModelInput};

pub async fn run(context: &Context, command: ModelCommand) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    match command {
        ModelCommand::Add {
            name,
            source,
            sql,
            primary_key,
        } => {
            let model = service
                .add_model(
                    &caller,
                    NewModelInput {
                        name: &name,
                        source: &source,
                        sql: &sql,
                        primary_key: &primary_key,
                    },
                )
                .await?;
            if context.json {
                output::json(&model);
            } else {
                outln!(
                    "Added model {} on {} ({} columns, primary key {})",
                    model.name,
                    model.source,
                    model.columns.len(),
                    model.primary_key
                );
                print_columns(&model.columns);
            }
        }
        ModelCommand::List => {
            let models = service.models(&caller).await?;
            if context.json {
                output::json(&models);
            } else {
                let rows: Vec<Vec<String>> = models
                    .iter()
                    .map(|m: &ModelView| {
                        vec![
                            m.name.clone(),
                            m.source.clone(),
                            m.primary_key.clone(),
                            m.columns.len().to_string(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "SOURCE", "PRIMARY KEY", "COLUMNS"], &rows);
            }
        }
        ModelCommand::Rm { name } => {
            service.remove_model(&caller, &name).await?;
            if context.json {
                output::json(&serde_json::json!({ "removed": name }));
            } else {
                outln!("removed model {name}");
            }
        }
        ModelCommand::Show { name } => {
            let model = service.model(&caller, &name).await?;
            if context.json {
                output::json(&model);
            } else {
                outln!("model       {}", model.name);
                outln!("source      {}", model.source);
                outln!("primary key {}", model.primary_key);
                outln!("sql         {}", model.sql);
                print_columns(&model.columns);
            }
        }
        ModelCommand::Preview { name, limit } => {
            let preview = service.preview_model(&caller, &name, limit).await?;
            if context.json {
                output::json(&preview.rows);
            } else {
                print_columns(&preview.columns);
                outln!();
                let headers: Vec<&str> = preview.columns.iter().map(|c| c.name.as_str()).collect();
                let rows: Vec<Vec<String>> = preview
                    .text
                    .iter()
                    .map(|row| row.iter().map(|cell| printable(cell)).collect())
                    .collect();
                output::table(&headers, &rows);
                outln!("({} rows)", rows.len());
            }
        }
    }
    Ok(())
}

pub(super) fn print_columns(columns: &[wharf_domain::ColumnInfo]) {
    let rows: Vec<Vec<String>> = columns
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.data_type.clone(),
                if c.nullable { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    output::table(&["COLUMN", "TYPE", "NULLABLE"], &rows);
}

/// A cell on one line of a terminal: control characters escaped, long text cut.
pub(super) fn printable(cell: &str) -> String {
    let escaped: String = cell
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if escaped.chars().count() > 40 {
        let cut: String = escaped.chars().take(39).collect();
        format!("{cut}…")
    } else {
        escaped
    }
}
