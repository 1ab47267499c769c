//! `wharf segment ...`: no-code filters over models.

use super::Context;
use super::model::{print_columns, printable};
use crate::args::{AddSegment, SegmentCommand};
use crate::error::CliError;
use crate::output;
use serde_json::json;
use std::io::Read as _;
use wharf_domain::Name;
use wharf_runner::segments;
use wharf_store::{DEFAULT_WORKSPACE, SegmentRecord};

fn view(g: &SegmentRecord) -> serde_json::Value {
    json!({
        "name": g.name,
        "model": g.model_name,
        "filter": serde_json::from_str::<serde_json::Value>(&g.filter).unwrap_or_default(),
        "created_at": g.created_at,
    })
}

pub async fn run(context: &Context, command: SegmentCommand) -> Result<(), CliError> {
    let store = context.store().await?;
    let settings = context.runner_settings();
    match command {
        SegmentCommand::Add(args) => {
            let name = Name::parse("name", &args.name)?;
            let filter = filter_text(&args)?;
            let segment = segments::add_segment(
                &store,
                DEFAULT_WORKSPACE,
                &name,
                &args.model,
                &filter,
                &settings,
            )
            .await?;
            if context.json {
                output::json(&view(&segment));
            } else {
                outln!(
                    "Added segment {} of model {}",
                    segment.name,
                    segment.model_name
                );
                outln!(
                    "\nCount and preview it with `wharf segment preview {0}`; export it with `wharf sync add NAME --segment {0} ...`.",
                    segment.name
                );
            }
        }
        SegmentCommand::List => {
            let list = store.list_segments(DEFAULT_WORKSPACE).await?;
            if context.json {
                output::json(&list.iter().map(view).collect::<Vec<_>>());
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|g| vec![g.name.clone(), g.model_name.clone(), printable(&g.filter)])
                    .collect();
                output::table(&["NAME", "MODEL", "FILTER"], &rows);
            }
        }
        SegmentCommand::Show { name } => {
            let segment = store.segment(DEFAULT_WORKSPACE, &name).await?;
            if context.json {
                output::json(&view(&segment));
            } else {
                outln!("segment  {}", segment.name);
                outln!("model    {}", segment.model_name);
                let pretty = serde_json::from_str::<serde_json::Value>(&segment.filter)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or(segment.filter);
                outln!("filter   {}", pretty.replace('\n', "\n         "));
            }
        }
        SegmentCommand::Rm { name } => {
            store.remove_segment(DEFAULT_WORKSPACE, &name).await?;
            if context.json {
                output::json(&json!({"removed": name}));
            } else {
                outln!("Removed segment {name}");
            }
        }
        SegmentCommand::Preview { name, limit, as_of } => {
            let as_of = as_of_micros(as_of.as_deref())?;
            let result = segments::preview_segment(
                &store,
                DEFAULT_WORKSPACE,
                &name,
                limit,
                as_of,
                &settings,
            )
            .await?;
            if context.json {
                output::json(&json!({"count": result.count, "rows": result.preview.rows}));
            } else {
                print_columns(&result.preview.columns);
                outln!();
                let headers: Vec<&str> = result
                    .preview
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                let rows: Vec<Vec<String>> = result
                    .preview
                    .text
                    .iter()
                    .map(|row| row.iter().map(|cell| printable(cell)).collect())
                    .collect();
                output::table(&headers, &rows);
                outln!("({} rows match; {} shown)", result.count, rows.len());
            }
        }
        SegmentCommand::Sql { name, as_of } => {
            let as_of = as_of_micros(as_of.as_deref())?;
            let compiled =
                segments::segment_sql(&store, DEFAULT_WORKSPACE, &name, as_of, &settings).await?;
            if context.json {
                output::json(&compiled);
            } else {
                outln!("{}", compiled.sql);
                if !compiled.params.is_empty() {
                    outln!("\n-- parameters");
                    for (i, p) in compiled.params.iter().enumerate() {
                        outln!("-- ${} = {} ({})", i + 1, printable(&p.value), p.data_type);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The filter JSON from `--filter` or `--filter-file` (`-`: standard input).
fn filter_text(args: &AddSegment) -> Result<String, CliError> {
    match (&args.filter, &args.filter_file) {
        (Some(text), _) => Ok(text.clone()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                CliError::bad(format!("--filter-file -: cannot read standard input: {e}"))
            })?;
            Ok(text)
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| CliError::bad(format!("--filter-file {}: {e}", path.display()))),
        (None, None) => Err(CliError::bad("give --filter JSON or --filter-file FILE")),
    }
}

fn as_of_micros(text: Option<&str>) -> Result<i64, CliError> {
    match text {
        Some(t) => Ok(segments::parse_as_of(t)?),
        None => Ok(segments::now_micros()),
    }
}
