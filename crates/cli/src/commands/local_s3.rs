//! `wharf local-s3`

use super::Context;
use crate::args::LocalS3Args;
use crate::error::CliError;
use wharf_delivery::local_s3::{LocalS3Config, LocalS3Server};

pub async fn run(context: &Context, args: LocalS3Args) -> Result<(), CliError> {
    let secret = std::env::var(&args.secret_key_env)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CliError::bad(format!(
                "--secret-key-env: environment variable {} is not set or empty: export the secret key in it",
                args.secret_key_env
            ))
        })?;
    let server = LocalS3Server::start(LocalS3Config {
        root: args.data.clone(),
        port: args.port,
        credentials: vec![(args.access_key.clone(), secret)],
        access_rule: None,
        hook: None,
    })
    .await
    .map_err(|e| CliError::failed(e.to_string()))?;
    if context.json {
        crate::output::json(
            &serde_json::json!({ "endpoint": server.endpoint(), "data": args.data }),
        );
    } else {
        outln!(
            "local S3 endpoint {} serving {}",
            server.endpoint(),
            args.data.display()
        );
        outln!("access key {}; press Ctrl-C to stop", args.access_key);
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| CliError::failed(format!("cannot wait for Ctrl-C: {e}")))?;
    server.shutdown().await;
    Ok(())
}
