//! The command line: one binary for the server and the operator's tools.

mod backup;
mod fleet;
mod keys;
mod license;
mod ops;
mod scim;
mod seats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "gitlab-license-server",
    version,
    about = "A self-hosted server that speaks GitLab's license and seat APIs",
    long_about = "A self-hosted server that speaks GitLab's license and seat APIs.\n\nWith no command it serves. Settings come from the environment (see .env.example)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage the RSA key pair that signs and verifies license keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Issue and inspect license keys.
    #[command(subcommand)]
    License(license::LicenseCommand),
    /// Manage personal access tokens.
    #[command(subcommand)]
    Token(ops::TokenCommand),
    /// Regain administrator access when nobody can sign in any more.
    #[command(subcommand)]
    Admin(ops::AdminCommand),
    /// Billable-user history (import past daily counts, e.g. from GitLab's usage export).
    #[command(subcommand)]
    History(ops::HistoryCommand),
    /// GitLab Duo seats in bulk: assign to a group or a CSV list, reclaim from inactive
    /// holders (previews unless --apply); the seat ledger and who was billable on a day (CSV),
    /// the true-up forecast (JSON).
    #[command(subcommand)]
    Seats(seats::SeatsCommand),
    /// The fleet: GitLab instances whose users are synced through their API (or imported),
    /// and unique billable people across them (as the administrator in GITLAB_TOKEN).
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// The instance SCIM API: its token (generate once, then reset) and the SCIM groups that
    /// hold GitLab Duo seats (as the administrator in GITLAB_TOKEN).
    #[command(subcommand)]
    Scim(scim::ScimCommand),
    /// Back up every row to a portable file, or restore one (SQLite ↔ PostgreSQL).
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Exit 0 when the local server answers its readiness probe (for container health checks).
    Healthcheck,
    /// Print the GraphQL schema as SDL (the committed `schema.graphql`).
    GraphqlSchema,
    /// Print the REST API's OpenAPI document (the committed `openapi.json`).
    Openapi,
}

/// Parses the arguments, runs the command and turns failures into a one-line message.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => ops::serve(),
        Command::Migrate => ops::migrate(),
        Command::Keys(command) => keys::run(command),
        Command::License(command) => license::run(command),
        Command::Token(command) => ops::token(command),
        Command::Admin(command) => ops::admin(command),
        Command::History(command) => ops::history(command),
        Command::Healthcheck => ops::healthcheck(),
        Command::Backup(command) => backup::run(command),
        Command::Seats(command) => seats::run(command),
        Command::Fleet(command) => fleet::run(command),
        Command::Scim(command) => scim::run(command),
        Command::Openapi => {
            print!("{}", crate::api::openapi::document());
            Ok(())
        }
        Command::GraphqlSchema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The principal the token in `GITLAB_TOKEN` makes, through the one policy (`need`: what the
/// command does; `doing` words it for a refusal).
async fn principal_from_env(
    state: &crate::state::AppState,
    need: crate::policy::Need,
    doing: &str,
) -> Result<crate::policy::Principal, String> {
    let token = std::env::var("GITLAB_TOKEN")
        .ok()
        .filter(|token| !token.trim().is_empty())
        .ok_or("set GITLAB_TOKEN to an administrator's personal access token (scope api)")?;
    let record = crate::auth::find_token(token.trim(), state)
        .await
        .map_err(|_| "GITLAB_TOKEN is not a valid personal access token".to_string())?;
    crate::policy::authorize(record, crate::auth::policy_settings(state), need)
        .map_err(|refusal| format!("GITLAB_TOKEN may not {doing}: {refusal:?}"))
}

/// A command's failure, already worded for the operator.
pub type CliResult = Result<(), String>;

/// Reads a whole file, naming it in the error.
fn read_text(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// [`read_text`], or standard input for `-`.
fn read_text_or_stdin(path: &std::path::Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|error| format!("cannot read standard input: {error}"))?;
        Ok(text)
    } else {
        read_text(path)
    }
}
