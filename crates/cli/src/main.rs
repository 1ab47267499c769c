//! The `wharf` binary: parses the command line, wires the crates together, prints results.
//!
//! It owns argument parsing, output formatting (tables for people, `--json` for scripts) and exit
//! codes (0 success, 1 the operation ran and failed, 2 bad input). It must not hold logic that
//! a second front end (the HTTP API) would need too: that lives in the library crates.

#[macro_use]
mod output;
mod args;
mod command_names;
mod commands;
mod env;
mod error;

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    // The server logs each request at `info`; other commands only warnings unless asked.
    let default_log = if matches!(
        cli.command,
        args::Command::Serve(_) | args::Command::Worker(_)
    ) {
        "info"
    } else {
        "warn"
    };
    let environment = match env::Environment::from_process().and_then(|e| {
        init_tracing(default_log)?;
        Ok(e)
    }) {
        Ok(environment) => environment,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Every thread that may plan a query, this one included, gets a stack deep enough for the
    // largest query the limits allow (see `wharf_engine::threads`).
    let outcome = wharf_runner::threads::on_query_stack(move || {
        let runtime = wharf_runner::threads::runtime(2)?;
        Ok::<_, std::io::Error>(runtime.block_on(commands::run(cli, environment)))
    });
    let result = match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(e)) | Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = e.to_string();
            if !message.is_empty() {
                errln!("error: {message}");
            }
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: `default`). Whatever the filter says, the
/// AWS SDK's HTTP and signing internals never log at `trace`: there they print request and
/// response bodies and canonical requests, and S3 error bodies echo access key ids.
fn init_tracing(default: &str) -> Result<(), error::CliError> {
    use tracing_subscriber::filter::{EnvFilter, filter_fn};
    use tracing_subscriber::prelude::*;
    const NO_TRACE: [&str; 6] = [
        "aws_smithy_runtime",
        "aws_smithy_http_client",
        "aws_smithy_runtime_api",
        "aws_sigv4",
        "hyper",
        "h2",
    ];
    let env_filter = match std::env::var(env::RUST_LOG) {
        Ok(value) if !value.trim().is_empty() => EnvFilter::try_new(&value).map_err(|e| {
            error::CliError::bad(format!(
                "environment variable {}={value:?} is not a log filter ({e}): use a level such as `info` or `wharf_runner=debug,warn`, or unset it",
                env::RUST_LOG
            ))
        })?,
        _ => EnvFilter::new(default),
    };
    let no_sensitive_trace = filter_fn(|meta| {
        *meta.level() != tracing::Level::TRACE
            || !NO_TRACE.iter().any(|t| meta.target().starts_with(t))
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(env_filter)
                .with_filter(no_sensitive_trace),
        )
        .init();
    Ok(())
}
