//! `scim token generate|reset|status` and `scim groups`: the instance SCIM token and the SCIM
//! groups' seat links from the command line, as the administrator in `GITLAB_TOKEN` (the same
//! policy, checks and audit as the API). The token is printed once, to standard output only.

use std::sync::Arc;

use clap::Subcommand;

use super::CliResult;
use crate::config::Config;
use crate::policy::{AdminPrincipal, Need};
use crate::services::scim;
use crate::state::AppState;

#[derive(Debug, Subcommand)]
pub enum ScimCommand {
    /// The instance SCIM token (GitLab's Admin > Settings > General > SCIM token).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The SCIM groups and the GitLab Duo seats they hold (JSON, as GET /api/v4/-/scim/groups).
    Groups,
    /// Link a SCIM group (its SCIM id) to a GitLab Duo purchase, or unlink it (no purchase).
    Link {
        group: String,
        /// The add-on purchase's id; leave out to unlink.
        #[arg(long)]
        purchase: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make the first token and print it (once: only its digest is kept). Refused when one
    /// exists: use `reset`.
    Generate,
    /// Replace the token with a new one (the identity provider needs the new one) and print it.
    Reset,
    /// Whether a token exists and since when (never the token).
    Status,
}

async fn admin(state: &AppState, need: Need) -> Result<AdminPrincipal, String> {
    super::principal_from_env(state, need, "manage SCIM")
        .await?
        .into_admin()
        .map_err(|_| "GITLAB_TOKEN must belong to an administrator".to_string())
}

fn failed(error: scim::ScimError) -> String {
    match error {
        scim::ScimError::NotFound(detail)
        | scim::ScimError::Conflict(detail)
        | scim::ScimError::Invalid(detail) => detail,
        scim::ScimError::Store(error) => error.to_string(),
    }
}

pub fn run(command: ScimCommand) -> CliResult {
    let config = Config::from_env()?;
    let printed = super::ops::runtime()?.block_on(async {
        let state =
            crate::server::command_state(config, Arc::new(crate::clock::SystemClock)).await?;
        let reads_only = matches!(
            command,
            ScimCommand::Groups | ScimCommand::Token(TokenCommand::Status)
        );
        let need = if reads_only {
            Need::Read(crate::auth::LICENSE_READ_SCOPES)
        } else {
            Need::Write
        };
        let admin = admin(&state, need).await?;
        match command {
            ScimCommand::Token(TokenCommand::Generate) => {
                match scim::generate_token(&state, &admin, false).await.map_err(failed)? {
                    Some(token) => Ok(token),
                    None => Err("the instance SCIM token exists already: `scim token reset` makes a new one".to_string()),
                }
            }
            ScimCommand::Token(TokenCommand::Reset) => scim::generate_token(&state, &admin, true)
                .await
                .map_err(failed)?
                .ok_or_else(|| "the token was not reset".to_string()),
            ScimCommand::Token(TokenCommand::Status) => {
                let created = scim::token_created_at(&state).await.map_err(failed)?;
                Ok(match created {
                    Some(at) => format!(
                        "a SCIM token exists (made {}); SCIM API endpoint: {}{}",
                        crate::domain::licenses::timestamp_text(at),
                        state.config.external_url,
                        crate::api::scim::BASE
                    ),
                    None => "no SCIM token yet: `scim token generate` makes one".to_string(),
                })
            }
            ScimCommand::Groups => {
                let groups = scim::all_group_seats(&state).await.map_err(failed)?;
                serde_json::to_string_pretty(&groups)
                    .map_err(|error| format!("cannot print the result: {error}"))
            }
            ScimCommand::Link { group, purchase } => {
                let seats = scim::link_group(&state, &admin, &group, purchase)
                    .await
                    .map_err(|error| match error {
                        scim::LinkError::PurchaseNotFound => "no such add-on purchase".to_string(),
                        scim::LinkError::NotDuo => {
                            "that purchase is not a GitLab Duo add-on".to_string()
                        }
                        scim::LinkError::Scim(error) => failed(error),
                    })?;
                serde_json::to_string_pretty(&seats)
                    .map_err(|error| format!("cannot print the result: {error}"))
            }
        }
    })?;
    println!("{printed}");
    Ok(())
}
