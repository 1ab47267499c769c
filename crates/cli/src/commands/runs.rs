//! `wharf runs` and `wharf plan`.

use super::Context;
use crate::args::{RunsArgs, RunsCommand};
use crate::error::CliError;
use crate::output;
use wharf_domain::units::human_bytes;

pub async fn run(context: &Context, args: RunsArgs) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    match args.command {
        Some(RunsCommand::Show { run_id }) => {
            let run = service.run(&caller, &run_id).await?;
            if context.json {
                output::json(&run);
                return Ok(());
            }
            outln!("run        {}", run.run_id);
            outln!("sync       {}", run.sync);
            outln!("status     {}", run.status);
            outln!(
                "trigger    {}{}{}",
                run.trigger,
                run.actor
                    .as_ref()
                    .map(|a| format!(" by {a}"))
                    .unwrap_or_default(),
                run.retry_of
                    .as_ref()
                    .map(|r| format!(" (attempt {} after {r})", run.attempt))
                    .unwrap_or_default()
            );
            if run.logical_run != run.run_id {
                outln!(
                    "continues  run {} (its keys and manifest; files it committed are kept)",
                    run.logical_run
                );
            }
            outln!("due        {}", run.due_at);
            outln!(
                "started    {}",
                run.started_at.as_deref().unwrap_or("- (queued)")
            );
            outln!("finished   {}", run.finished_at.as_deref().unwrap_or("-"));
            outln!("rows       {}", run.rows);
            if let Some(c) = &run.changes {
                outln!(
                    "changes    {}: {} added, {} changed, {} removed, {} unchanged",
                    run.mode,
                    c.added,
                    c.changed,
                    c.removed,
                    c.unchanged
                );
            }
            outln!("bytes      {} ({})", run.bytes, human_bytes(run.bytes));
            if let Some(error) = &run.error {
                outln!("error      [{}] {}", error.code, error.message);
            }
            if let Some(reason) = &run.paused_sync {
                outln!("paused     the sync: {reason}");
                outln!("           resume it with: wharf sync resume {}", run.sync);
            }
            if !run.files.is_empty() || run.manifest.is_some() {
                outln!();
                let mut rows: Vec<Vec<String>> = run
                    .files
                    .iter()
                    .map(|f| {
                        vec![
                            f.part.to_string(),
                            f.key.clone(),
                            f.rows.to_string(),
                            f.bytes.to_string(),
                            f.checksum.clone(),
                            f.carried_from
                                .as_ref()
                                .cloned()
                                .unwrap_or_else(|| "this attempt".into()),
                        ]
                    })
                    .collect();
                if let Some(manifest) = &run.manifest {
                    rows.push(vec!["manifest".into(), manifest.clone()]);
                }
                output::table(
                    &["FILE", "KEY", "ROWS", "BYTES", "CHECKSUM", "WRITTEN BY"],
                    &rows,
                );
            }
        }
        None => {
            let runs = service
                .runs(&caller, args.sync.as_deref(), args.limit)
                .await?;
            if context.json {
                output::json(&runs);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.run_id.clone(),
                        r.sync.clone(),
                        r.status.into(),
                        r.trigger.into(),
                        r.attempt.to_string(),
                        r.started_at.clone().unwrap_or_else(|| "-".into()),
                        r.rows.to_string(),
                        human_bytes(r.bytes),
                        match (&r.error, &r.paused_sync) {
                            (Some(e), Some(_)) => format!("{} (paused the sync)", e.code),
                            (Some(e), None) => e.code.clone(),
                            (None, _) => String::new(),
                        },
                    ]
                })
                .collect();
            output::table(
                &[
                    "RUN", "SYNC", "STATUS", "TRIGGER", "ATTEMPT", "STARTED", "ROWS", "BYTES",
                    "ERROR",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

pub async fn plan(context: &Context, name: &str) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    let report = service.plan(&caller, name).await?;
    if context.json {
        output::json(&report);
        return Ok(());
    }
    outln!(
        "A run of {} now would write {} rows as {} to s3://{}/:",
        report.sync,
        report.rows,
        report.format,
        report.bucket
    );
    for key in &report.keys {
        outln!("  {key}");
    }
    if report.keys.is_empty() {
        outln!("  (no data file: the result is empty and the sync skips empty results)");
    }
    if report.more_files_possible {
        outln!("  ... and more files if a file reaches --max-bytes-per-file");
    }
    if let Some(manifest) = &report.manifest {
        outln!("  {manifest}   (written last)");
    }
    outln!("RUN-ID stands for the id each run gets when it starts. Nothing was written.");
    Ok(())
}
