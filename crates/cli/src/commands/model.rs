//! `wharf model ...`: named queries.

use super::Context;
use crate::args::ModelCommand;
use crate::error::CliError;
use crate::output;
use serde_json::json;
use wharf_domain::Name;
use wharf_store::{DEFAULT_WORKSPACE, ModelRecord};

fn view(m: &ModelRecord) -> serde_json::Value {
    json!({
        "name": m.name,
        "source": m.source.name,
        "sql": m.sql,
        "primary_key": m.primary_key,
        "columns": m.columns,
        "created_at": m.created_at,
    })
}

pub async fn run(context: &Context, command: ModelCommand) -> Result<(), CliError> {
    let store = context.store().await?;
    match command {
        ModelCommand::Add {
            name,
            source,
            sql,
            primary_key,
        } => {
            let name = Name::parse("name", &name)?;
            let model = wharf_runner::models::add_model(
                &store,
                DEFAULT_WORKSPACE,
                &name,
                &source,
                &sql,
                &primary_key,
                &context.runner_settings(),
            )
            .await?;
            if context.json {
                output::json(&view(&model));
            } else {
                outln!(
                    "Added model {} on {} ({} columns, primary key {})",
                    model.name,
                    model.source.name,
                    model.columns.len(),
                    model.primary_key
                );
                print_columns(&model.columns);
            }
        }
        ModelCommand::List => {
            let models = store.list_models(DEFAULT_WORKSPACE).await?;
            if context.json {
                output::json(&models.iter().map(view).collect::<Vec<_>>());
            } else {
                let rows: Vec<Vec<String>> = models
                    .iter()
                    .map(|m| {
                        vec![
                            m.name.clone(),
                            m.source.name.clone(),
                            m.primary_key.clone(),
                            m.columns.len().to_string(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "SOURCE", "PRIMARY KEY", "COLUMNS"], &rows);
            }
        }
        ModelCommand::Show { name } => {
            let model = store.model(DEFAULT_WORKSPACE, &name).await?;
            if context.json {
                output::json(&view(&model));
            } else {
                outln!("model       {}", model.name);
                outln!("source      {}", model.source.name);
                outln!("primary key {}", model.primary_key);
                outln!("sql         {}", model.sql);
                print_columns(&model.columns);
            }
        }
        ModelCommand::Preview { name, limit } => {
            let preview = wharf_runner::models::preview_model(
                &store,
                DEFAULT_WORKSPACE,
                &name,
                limit,
                &context.runner_settings(),
            )
            .await?;
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
