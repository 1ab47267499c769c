//! The `wharf` binary: parses the command line, wires the crates together, prints results.
//!
//! It owns argument parsing, output formatting (tables for people, `--json` for scripts) and exit
//! codes (0 success, 1 the operation ran and failed, 2 bad input). It must not hold logic that
//! a second front end (the HTTP API) would need too: that lives in the library crates.

mod args;
mod commands;
mod error;
mod output;

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = e.to_string();
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings). Whatever the filter says, the
/// AWS SDK's HTTP and signing internals never log at `trace`: there they print request and
/// response bodies and canonical requests, and S3 error bodies echo access key ids.
fn init_tracing() {
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
    let env_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let no_sensitive_trace = filter_fn(|meta| {
        *meta.level() != tracing::Level::TRACE
            || !NO_TRACE.iter().any(|t| meta.target().starts_with(t))
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(env_filter)
                .with_filter(no_sensitive_trace),
        )
        .init();
}
