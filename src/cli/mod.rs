//! The command line: one binary for the server and the operator's tools.

mod keys;
mod license;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "gitlab-license-server",
    version,
    about = "A self-hosted server that speaks GitLab's license and seat APIs"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the RSA key pair that signs and verifies license keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Issue and inspect license keys.
    #[command(subcommand)]
    License(license::LicenseCommand),
}

/// Parses the arguments, runs the command and turns failures into a one-line message.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Keys(command) => keys::run(command),
        Command::License(command) => license::run(command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A command's failure, already worded for the operator.
pub type CliResult = Result<(), String>;

/// Reads a whole file, naming it in the error.
fn read_text(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))
}
