//! Helpers shared by the end-to-end tests of the `wharf` binary.

#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const CANARY: &str = "canary-Sx9Lq2vT7wPz4Kd8";

pub fn wharf(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wharf"));
    command
        .arg("--home")
        .arg(home)
        .env_remove("WHARF_ALLOW_PRIVATE_ENDPOINTS")
        .env_remove("WHARF_MASTER_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "trace");
    command
}

pub fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run wharf")
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(output)))
}
