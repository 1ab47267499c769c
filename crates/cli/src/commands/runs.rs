//! `wharf runs` and `wharf plan`.

use super::Context;
use crate::args::{RunsArgs, RunsCommand};
use crate::error::CliError;
use crate::output;
use serde_json::json;
use wharf_domain::units::human_bytes;
use wharf_store::{DEFAULT_WORKSPACE, RunRecord};

fn view(r: &RunRecord) -> serde_json::Value {
    let files: Vec<serde_json::Value> = r
        .files
        .iter()
        .filter(|f| f.part >= 0)
        .map(|f| json!({"key": f.key, "rows": f.rows, "bytes": f.bytes, "checksum": f.checksum, "request_id": f.request_id}))
        .collect();
    let manifest = r.files.iter().find(|f| f.part < 0).map(|f| f.key.clone());
    json!({
        "run_id": r.id,
        "sync": r.sync_name,
        "status": r.status.as_str(),
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "rows": r.rows,
        "bytes": r.bytes,
        "files": files,
        "manifest": manifest,
        "error": r.error.as_ref().map(|(code, message)| json!({"code": code, "message": message})),
    })
}

pub async fn run(context: &Context, args: RunsArgs) -> Result<(), CliError> {
    let store = context.store().await?;
    match args.command {
        Some(RunsCommand::Show { run_id }) => {
            let run = store.run(DEFAULT_WORKSPACE, &run_id).await?;
            if context.json {
                let mut v = view(&run);
                v["definition"] = serde_json::from_str(&run.definition).unwrap_or_default();
                output::json(&v);
                return Ok(());
            }
            outln!("run        {}", run.id);
            outln!("sync       {}", run.sync_name);
            outln!("status     {}", run.status.as_str());
            outln!("started    {}", run.started_at);
            outln!("finished   {}", run.finished_at.as_deref().unwrap_or("-"));
            outln!("rows       {}", run.rows);
            outln!("bytes      {} ({})", run.bytes, human_bytes(run.bytes));
            if let Some((code, message)) = &run.error {
                outln!("error      [{code}] {message}");
            }
            if !run.files.is_empty() {
                outln!();
                let rows: Vec<Vec<String>> = run
                    .files
                    .iter()
                    .map(|f| {
                        vec![
                            if f.part < 0 {
                                "manifest".into()
                            } else {
                                f.part.to_string()
                            },
                            f.key.clone(),
                            f.rows.to_string(),
                            f.bytes.to_string(),
                            f.checksum.clone(),
                        ]
                    })
                    .collect();
                output::table(&["FILE", "KEY", "ROWS", "BYTES", "CHECKSUM"], &rows);
            }
        }
        None => {
            let runs = store
                .list_runs(DEFAULT_WORKSPACE, args.sync.as_deref(), args.limit)
                .await?;
            if context.json {
                output::json(&runs.iter().map(view).collect::<Vec<_>>());
                return Ok(());
            }
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.sync_name.clone(),
                        r.status.as_str().into(),
                        r.started_at.clone(),
                        r.rows.to_string(),
                        human_bytes(r.bytes),
                        r.error.as_ref().map(|e| e.0.clone()).unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(
                &["RUN", "SYNC", "STATUS", "STARTED", "ROWS", "BYTES", "ERROR"],
                &rows,
            );
        }
    }
    Ok(())
}

pub async fn plan(context: &Context, name: &str) -> Result<(), CliError> {
    let store = context.store().await?;
    let report =
        wharf_runner::plan(&store, DEFAULT_WORKSPACE, name, &context.runner_settings()).await?;
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
