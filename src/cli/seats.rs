//! `seats assign` and `seats reclaim`: GitLab Duo seats in bulk from the command line, against
//! the configured database, as the administrator whose token is in `GITLAB_TOKEN` (the same
//! policy, limits and audit as the API). A preview unless `--apply` is given.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::CliResult;
use crate::config::Config;
use crate::policy::Need;
use crate::services::add_ons::Caller;
use crate::services::duo_bulk::{self, Recipients};
use crate::state::AppState;

#[derive(Debug, Subcommand)]
pub enum SeatsCommand {
    /// Assign seats of a GitLab Duo purchase to a group's members (from a minimum role) or to
    /// the usernames / e-mail addresses of a CSV file (first column). Prints, as JSON, who
    /// gets a seat and who is skipped and why; writes only with --apply.
    Assign {
        /// The purchase's ID (a number, or GraphQL's global ID).
        #[arg(long)]
        purchase: String,
        /// A group's ID or path: its members get seats.
        #[arg(long, conflicts_with = "csv", required_unless_present = "csv")]
        group: Option<String>,
        /// The lowest role that gets a seat (10 Guest, 20 Reporter, 30 Developer, …).
        #[arg(long, default_value_t = 10, requires = "group")]
        min_access_level: i64,
        /// A CSV file of usernames or e-mail addresses (first column; `-` for standard input).
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Assign the seats (without it, nothing is written).
        #[arg(long)]
        apply: bool,
    },
    /// Take back the seats of holders not active for a number of days (or never). Prints them
    /// as JSON; takes the seats back only with --apply (each audited and sent as an
    /// add_on_seat_reclaimed system-hook event).
    Reclaim {
        #[arg(long)]
        purchase: String,
        #[arg(long)]
        inactive_days: i64,
        #[arg(long)]
        apply: bool,
    },
}

/// The purchase id from a number or a global ID.
fn purchase_id(text: &str) -> Result<i64, String> {
    text.trim()
        .rsplit('/')
        .next()
        .and_then(|id| id.parse::<i64>().ok())
        .ok_or_else(|| format!("--purchase `{text}` is not a purchase ID"))
}

/// The caller the token in `GITLAB_TOKEN` makes, through the one policy (a token that may
/// write).
async fn caller(state: &AppState) -> Result<Caller, String> {
    let principal = super::principal_from_env(state, Need::Write, "change seats").await?;
    Ok(Caller::from_principal(&principal))
}

pub fn run(command: SeatsCommand) -> CliResult {
    let config = Config::from_env()?;
    let recipients = match &command {
        SeatsCommand::Assign {
            group: Some(group),
            min_access_level,
            ..
        } => Some(Recipients::Group {
            group: group.clone(),
            min_access_level: *min_access_level,
        }),
        SeatsCommand::Assign {
            csv: Some(file), ..
        } => {
            let text = super::read_text_or_stdin(file)?;
            Some(Recipients::Listed(crate::domain::seats::list_entries(
                &text,
            )?))
        }
        _ => None,
    };
    let printed = super::ops::runtime()?.block_on(async {
        let state =
            crate::server::command_state(config, Arc::new(crate::clock::SystemClock)).await?;
        let outcome = async {
            let caller = caller(&state).await?;
            let json = match &command {
                SeatsCommand::Assign {
                    purchase, apply, ..
                } => {
                    let recipients = recipients.ok_or("give --group or --csv")?;
                    let report = duo_bulk::assign(
                        &state,
                        &caller,
                        purchase_id(purchase)?,
                        &recipients,
                        !apply,
                    )
                    .await
                    .map_err(|error| error.to_string())?;
                    serde_json::to_string_pretty(&report)
                }
                SeatsCommand::Reclaim {
                    purchase,
                    inactive_days,
                    apply,
                } => {
                    let report = duo_bulk::reclaim(
                        &state,
                        &caller,
                        purchase_id(purchase)?,
                        *inactive_days,
                        !apply,
                    )
                    .await
                    .map_err(|error| error.to_string())?;
                    serde_json::to_string_pretty(&report)
                }
            };
            json.map_err(|error| format!("cannot print the result: {error}"))
        }
        .await;
        state.store.close().await;
        outcome
    })?;
    println!("{printed}");
    Ok(())
}
