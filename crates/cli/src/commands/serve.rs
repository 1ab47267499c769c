//! `wharf serve`: the REST API and the web UI on a TCP address until SIGTERM or Ctrl-C.

use super::Context;
use super::sync::StopSignals;
use crate::args::{ServeArgs, WorkerArgs};
use crate::error::CliError;
use std::net::SocketAddr;

pub async fn run(context: &Context, args: ServeArgs) -> Result<(), CliError> {
    let address: SocketAddr = args.listen.parse().map_err(|_| {
        CliError::bad(format!(
            "--listen {:?} is not an address and port; write it as 127.0.0.1:8080 (or 0.0.0.0:8080 for every interface)",
            args.listen
        ))
    })?;
    // A shared server must not become a way to read its own disk: local sources stay in the
    // folders the operator allows (by default the home's warehouse folder).
    let roots = context
        .local_source_roots
        .clone()
        .unwrap_or_else(|| vec![context.home.join("warehouse")]);
    let service =
        wharf_service::Service::open(settings(context, &args.worker, roots.clone())?).await?;
    if !service.has_way_in().await? {
        return Err(CliError::bad(format!(
            "no API token or user can sign in, so every request would be refused; create the first admin token with:\n  wharf --home {} token create admin --workspace {} --role admin",
            context.home.display(),
            context.workspace
        )));
    }
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| CliError::failed(format!("cannot listen on {address}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::failed(format!("cannot read the bound address: {e}")))?;
    let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    errln!(
        "wharf {} listening on http://{bound} (web UI at /, API under /api/v1, OpenAPI at /api/openapi.json; local sources in {}; at most {} runs at once)",
        env!("CARGO_PKG_VERSION"),
        roots.join(", "),
        args.worker.max_concurrent_runs
    );
    let mut signals = StopSignals::new()?;
    let shutdown = async move {
        let signal = signals.next().await;
        errln!("{signal}: shutting down; interrupting runs in progress");
    };
    let options = wharf_server::ServerOptions {
        metrics_public: args.metrics_public,
        behind_https_proxy: args.behind_https_proxy,
    };
    wharf_server::serve(listener, service, options, shutdown)
        .await
        .map_err(|e| CliError::failed(format!("the server stopped: {e}")))?;
    errln!("stopped");
    Ok(())
}

/// `wharf worker`: the scheduler alone, until SIGTERM or Ctrl-C.
pub async fn worker(context: &Context, args: WorkerArgs) -> Result<(), CliError> {
    let roots = context
        .local_source_roots
        .clone()
        .unwrap_or_else(|| vec![context.home.join("warehouse")]);
    let service = wharf_service::Service::open(settings(context, &args, roots.clone())?).await?;
    let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    errln!(
        "wharf {} worker running syncs on their schedules (home {}; local sources in {}; at most {} runs at once)",
        env!("CARGO_PKG_VERSION"),
        context.home.display(),
        roots.join(", "),
        args.max_concurrent_runs
    );
    let mut signals = StopSignals::new()?;
    let shutdown = async move {
        let signal = signals.next().await;
        errln!("{signal}: shutting down; interrupting runs in progress");
    };
    wharf_server::work(service, shutdown).await;
    errln!("stopped");
    Ok(())
}

fn settings(
    context: &Context,
    args: &WorkerArgs,
    roots: Vec<std::path::PathBuf>,
) -> Result<wharf_service::Settings, CliError> {
    if args.max_concurrent_runs == 0 {
        return Err(CliError::bad(
            "--max-concurrent-runs 0 would never run anything; give 1 or more",
        ));
    }
    if args.alert_attempts == 0 {
        return Err(CliError::bad(
            "--alert-attempts 0 would never deliver an alert; give 1 or more",
        ));
    }
    let mut settings = context.settings(Some(roots));
    settings.max_concurrent_runs = args.max_concurrent_runs;
    settings.alert_retry = wharf_service::AlertRetry {
        attempts: args.alert_attempts,
        base: std::time::Duration::from_secs(args.alert_retry_base_seconds.max(1)),
    };
    Ok(settings)
}
