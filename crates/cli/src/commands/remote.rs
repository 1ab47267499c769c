//! `wharf sync run NAME --server URL --token-env VAR`: a running server runs the sync through
//! its queue; this command follows the run to its end and prints it as `sync run` does.

use super::Context;
use crate::error::CliError;
use crate::output;
use serde_json::{Value, json};
use std::time::Duration;
use wharf_server::client::{RemoteError, RemoteServer};

pub async fn run(
    context: &Context,
    server: &str,
    token_env: &str,
    sync: &str,
) -> Result<(), CliError> {
    let token = std::env::var(token_env).map_err(|_| {
        CliError::bad(format!(
            "--token-env {token_env}: the environment variable {token_env} is not set"
        ))
    })?;
    let remote = RemoteServer::new(server, token).map_err(|e| CliError::bad(e.to_string()))?;
    let run_id = remote.trigger(sync).await.map_err(remote_error)?;
    if !context.json {
        errln!(
            "run {run_id} of {sync} asked of {server}; following it (Ctrl-C stops following, not the run)"
        );
    }
    let mut last = String::new();
    let run = loop {
        let run = remote.run(&run_id).await.map_err(remote_error)?;
        let status = run["status"].as_str().unwrap_or_default().to_string();
        if status != "queued" && status != "running" {
            break run;
        }
        if !context.json && status != last {
            errln!("{status}");
            last = status;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => {
                return Err(CliError::failed(format!(
                    "stopped following; the run goes on on the server: `wharf runs show {run_id}` there"
                )));
            }
        }
    };
    let outcome = outcome(&run);
    if context.json {
        output::json(&outcome);
    } else {
        outln!(
            "run {} {}: {} rows, {} bytes in {} file(s)",
            run_id,
            outcome["status"].as_str().unwrap_or_default(),
            outcome["rows"],
            outcome["bytes"],
            outcome["files"].as_array().map_or(0, Vec::len)
        );
        if let Some(error) = run["error"].as_object() {
            outln!(
                "error [{}] {}",
                error["code"].as_str().unwrap_or_default(),
                error["message"].as_str().unwrap_or_default()
            );
        }
    }
    if run["status"] == "succeeded" {
        Ok(())
    } else {
        Err(CliError::Failed(String::new()))
    }
}

/// The run in the shape `wharf --json sync run` prints.
fn outcome(run: &Value) -> Value {
    let millis = |field: &str| {
        run[field].as_str().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    let duration_ms = match (millis("started_at"), millis("finished_at")) {
        (Some(a), Some(b)) => (b - a).whole_milliseconds().max(0),
        _ => 0,
    };
    json!({
        "run_id": run["run_id"],
        "status": run["status"],
        "rows": run["rows"],
        "bytes": run["bytes"],
        "files": run["files"],
        "duration_ms": duration_ms,
        "error": run["error"],
    })
}

fn remote_error(e: RemoteError) -> CliError {
    match &e {
        RemoteError::Api { status, .. } if *status < 500 => CliError::bad(e.to_string()),
        _ => CliError::failed(e.to_string()),
    }
}
