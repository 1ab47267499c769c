//! One module per command group; each turns parsed arguments into library calls and output.

mod demo;
mod destination;
mod local_s3;
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
}

impl Context {
    pub async fn store(&self) -> Result<Store, CliError> {
        Ok(Store::open(&self.home).await?)
    }

    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            allow_private_endpoints: self.allow_private_endpoints,
            operator_s3_endpoint: wharf_delivery::operator_s3_endpoint(),
            ..ClientSettings::default()
        }
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let context = Context {
        home: cli.home,
        json: cli.json,
        allow_private_endpoints: cli.allow_private_endpoints,
    };
    match cli.command {
        Command::Demo => demo::run(&context).await,
        Command::Whoami => whoami::run(&context).await,
        Command::LocalS3(args) => local_s3::run(&context, args).await,
        Command::Destination(command) => destination::run(&context, command).await,
    }
}
