//! `wharf segment ...`: no-code filters over models.

use super::Context;
use super::model::{print_columns, printable};
use crate::args::{AddSegment, SegmentCommand};
use crate::error::CliError;
use crate::output;
use serde_json::json;
use std::io::Read as _;

pub async fn run(context: &Context, command: SegmentCommand) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    match command {
        SegmentCommand::Add(args) => {
            let filter = filter_text(&args)?;
            let segment = service
                .add_segment(&caller, &args.name, &args.model, &filter)
                .await?;
            if context.json {
                output::json(&segment);
            } else {
                outln!("Added segment {} of model {}", segment.name, segment.model);
                outln!(
                    "\nCount and preview it with `wharf segment preview {0}`; export it with `wharf sync add NAME --segment {0} ...`.",
                    segment.name
                );
            }
        }
        SegmentCommand::List => {
            let list = service.segments(&caller).await?;
            if context.json {
                output::json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|g| {
                        vec![
                            g.name.clone(),
                            g.model.clone(),
                            printable(&g.filter.to_string()),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "MODEL", "FILTER"], &rows);
            }
        }
        SegmentCommand::Show { name } => {
            let segment = service.segment(&caller, &name).await?;
            if context.json {
                output::json(&segment);
            } else {
                outln!("segment  {}", segment.name);
                outln!("model    {}", segment.model);
                let pretty = serde_json::to_string_pretty(&segment.filter)
                    .unwrap_or_else(|_| segment.filter.to_string());
                outln!("filter   {}", pretty.replace('\n', "\n         "));
            }
        }
        SegmentCommand::Rm { name } => {
            service.remove_segment(&caller, &name).await?;
            if context.json {
                output::json(&json!({"removed": name}));
            } else {
                outln!("Removed segment {name}");
            }
        }
        SegmentCommand::Preview { name, limit, as_of } => {
            let result = service
                .preview_segment(&caller, &name, limit, as_of.as_deref())
                .await?;
            if context.json {
                output::json(&result);
            } else {
                print_columns(&result.columns);
                outln!();
                let headers: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
                let rows: Vec<Vec<String>> = result
                    .text
                    .iter()
                    .map(|row| row.iter().map(|cell| printable(cell)).collect())
                    .collect();
                output::table(&headers, &rows);
                outln!("({} rows match; {} shown)", result.count, rows.len());
            }
        }
        SegmentCommand::Sql { name, as_of } => {
            let compiled = service
                .segment_sql(&caller, &name, as_of.as_deref())
                .await?;
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
