//! One module per command group; each turns parsed arguments into library calls and output.

mod access;
mod alert;
mod demo;
mod demo_exports;
mod destination;
mod local_s3;
mod model;
mod remote;
mod runs;
mod segment;
mod serve;
mod source;
mod sync;
mod whoami;

use crate::args::{Cli, Command};
use crate::error::CliError;
use std::path::PathBuf;
use wharf_delivery::ClientSettings;
use wharf_store::Store;

/// What every command may need from the global flags.
pub struct Context {
    pub home: PathBuf,
    pub json: bool,
    pub allow_private_endpoints: bool,
    /// The query engine's memory budget in MiB (`WHARF_QUERY_MEMORY_MB`), when set.
    pub query_memory_mb: Option<u64>,
    /// `--workspace`: where every command works.
    pub workspace: String,
    /// `WHARF_LOCAL_SOURCE_ROOTS`, for `serve`.
    pub local_source_roots: Option<Vec<PathBuf>>,
}

impl Context {
    pub async fn store(&self) -> Result<Store, CliError> {
        Ok(Store::open(&self.home).await?)
    }

    /// The service on this home, and the caller the CLI acts as.
    pub async fn service(
        &self,
    ) -> Result<(wharf_service::Service, wharf_service::Caller), CliError> {
        // The command line runs on one's own machine, with one's own file permissions.
        let service = wharf_service::Service::open(self.settings(None)).await?;
        Ok((service, wharf_service::Caller::cli(&self.workspace)))
    }

    /// The service's settings from the global flags and the environment.
    pub fn settings(&self, local_source_roots: Option<Vec<PathBuf>>) -> wharf_service::Settings {
        wharf_service::Settings {
            home: self.home.clone(),
            client: self.client_settings(),
            query_memory_bytes: self
                .query_memory_mb
                .map(|mb| usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)),
            local_source_roots,
            ..wharf_service::Settings::new(&self.home)
        }
    }

    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            allow_private_endpoints: self.allow_private_endpoints,
            operator_s3_endpoint: wharf_delivery::operator_s3_endpoint(),
            ..ClientSettings::default()
        }
    }
}

pub async fn run(cli: Cli, environment: crate::env::Environment) -> Result<(), CliError> {
    let context = Context {
        home: cli.home,
        json: cli.json,
        allow_private_endpoints: cli.allow_private_endpoints
            || environment.allow_private_endpoints.unwrap_or(false),
        query_memory_mb: environment.query_memory_mb,
        workspace: cli.workspace,
        local_source_roots: environment.local_source_roots,
    };
    match cli.command {
        Command::Demo(args) => demo::run(&context, args).await,
        Command::Whoami => whoami::run(&context).await,
        Command::LocalS3(args) => local_s3::run(&context, args).await,
        Command::Serve(args) => serve::run(&context, args).await,
        Command::Worker(args) => serve::worker(&context, args).await,
        Command::Destination(command) => destination::run(&context, command).await,
        Command::Source(command) => source::run(&context, command).await,
        Command::Model(command) => model::run(&context, command).await,
        Command::Segment(command) => segment::run(&context, command).await,
        Command::Sync(command) => sync::run(&context, command).await,
        Command::Runs(args) => runs::run(&context, args).await,
        Command::Alert(command) => alert::run(&context, command).await,
        Command::Plan { name } => runs::plan(&context, &name).await,
        Command::Workspace(command) => access::workspace(&context, command).await,
        Command::Token(command) => access::token(&context, command).await,
        Command::User(command) => access::user(&context, command).await,
        Command::Audit { limit } => access::audit(&context, limit).await,
        Command::Sample(command) => sample(command),
    }
}

fn sample(command: crate::args::SampleCommand) -> Result<(), CliError> {
    use crate::args::SampleCommand;
    use wharf_runner::sample;
    match command {
        SampleCommand::Customers { rows, out } => {
            sample::write_customers(&out, rows).map_err(CliError::failed)?;
            errln!("wrote {rows} customers to {}", out.display());
        }
        SampleCommand::Orders { customers, out } => {
            let n = sample::write_orders(&out, customers, sample::ORDERS_UNTIL)
                .map_err(CliError::failed)?;
            errln!("wrote {n} orders to {}", out.display());
        }
    }
    Ok(())
}
