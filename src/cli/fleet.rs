//! `fleet add|list|sync|remove|import|summary`: the fleet from the command line, against the
//! configured database, as the administrator whose token is in `GITLAB_TOKEN` (the same
//! policy, checks and audit as the API). Output is JSON, as the API answers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use super::CliResult;
use crate::config::{Config, Secret};
use crate::policy::{AdminPrincipal, Need};
use crate::services::fleet;
use crate::state::AppState;

/// How long `fleet sync` waits for a sync another process (the server) took over.
const SYNC_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Watch a GitLab instance: its users and license are synced through its REST API
    /// with an administrator's personal access token (read_api is enough).
    Add {
        name: String,
        /// The base URL, e.g. https://gitlab.example.com
        url: String,
        /// A file holding the token (`-` for standard input); never a command-line argument,
        /// which other users could read.
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
    },
    /// Every watched instance and how its last sync ended.
    List,
    /// Sync one instance now (or every online instance) and print how it ended.
    Sync { name: Option<String> },
    /// Stop watching an instance (its token and users are removed).
    Remove { name: String },
    /// Import an offline instance's data: the JSON of GET /api/v4/users (every page, as an
    /// administrator) and GET /api/v4/license, concatenated or one per line.
    Import {
        name: String,
        /// The file (`-` for standard input).
        file: PathBuf,
    },
    /// The unique billable people across the fleet (as GET /api/v4/-/fleet/summary).
    Summary,
}

async fn admin(state: &AppState, need: Need) -> Result<AdminPrincipal, String> {
    super::principal_from_env(state, need, "manage the fleet")
        .await?
        .into_admin()
        .map_err(|_| "GITLAB_TOKEN must belong to an administrator".to_string())
}

fn json(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|error| format!("cannot print the result: {error}"))
}

fn failed(error: fleet::FleetError) -> String {
    match error {
        fleet::FleetError::NotFound => "no such fleet instance".to_string(),
        other => other.to_string(),
    }
}

/// Runs the queued syncs here (unless the server's worker took them) and waits until each of
/// `instances` has finished.
async fn sync(
    state: &AppState,
    admin: &AdminPrincipal,
    instances: Vec<crate::store::FleetInstance>,
) -> Result<String, String> {
    let mut ids = Vec::new();
    for instance in &instances {
        fleet::request_sync(state, admin, instance)
            .await
            .map_err(failed)?;
        ids.push(instance.id);
    }
    crate::jobs::run_due(state)
        .await
        .map_err(|error| error.to_string())?;
    let started = std::time::Instant::now();
    loop {
        let mut shown = Vec::new();
        let mut pending = false;
        for id in &ids {
            if let Some(instance) = state
                .store
                .fleet_instance(*id)
                .await
                .map_err(|error| error.to_string())?
            {
                pending |= matches!(instance.sync_status.as_str(), "queued" | "running");
                shown.push(fleet::entity(&instance));
            }
        }
        if !pending || started.elapsed() > SYNC_WAIT {
            return json(&shown);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn run(command: FleetCommand) -> CliResult {
    let config = Config::from_env()?;
    let token = match &command {
        FleetCommand::Add { token_file, .. } => {
            Some(Secret::new(super::read_text_or_stdin(token_file)?.trim()))
        }
        _ => None,
    };
    let import_text = match &command {
        FleetCommand::Import { file, .. } => Some(super::read_text_or_stdin(file)?),
        _ => None,
    };
    let printed = super::ops::runtime()?.block_on(async {
        let state =
            crate::server::command_state(config, Arc::new(crate::clock::SystemClock)).await?;
        let outcome = async {
            let reads_only = matches!(command, FleetCommand::List | FleetCommand::Summary);
            let admin = admin(
                &state,
                if reads_only {
                    Need::Read(crate::auth::LICENSE_READ_SCOPES)
                } else {
                    Need::Write
                },
            )
            .await?;
            match &command {
                FleetCommand::Add { name, url, .. } => {
                    let token = token.as_ref().ok_or("no token")?;
                    let instance = fleet::create(&state, &admin, name, url, token)
                        .await
                        .map_err(failed)?;
                    json(&fleet::entity(&instance))
                }
                FleetCommand::List => json(
                    &fleet::instances(&state)
                        .await
                        .map_err(|error| error.to_string())?,
                ),
                FleetCommand::Sync { name } => {
                    let instances = match name {
                        Some(name) => vec![fleet::find(&state, name).await.map_err(failed)?],
                        None => fleet::online_instances(&state)
                            .await
                            .map_err(|error| error.to_string())?,
                    };
                    sync(&state, &admin, instances).await
                }
                FleetCommand::Remove { name } => {
                    let instance = fleet::find(&state, name).await.map_err(failed)?;
                    fleet::remove(&state, &admin, &instance)
                        .await
                        .map_err(failed)?;
                    Ok(format!("removed fleet instance {}", instance.name))
                }
                FleetCommand::Import { name, .. } => {
                    let text = import_text.as_deref().unwrap_or_default();
                    json(
                        &fleet::import(&state, &admin, name, text)
                            .await
                            .map_err(failed)?,
                    )
                }
                FleetCommand::Summary => json(
                    &fleet::summary(&state)
                        .await
                        .map_err(|error| error.to_string())?,
                ),
            }
        }
        .await;
        state.store.close().await;
        outcome
    })?;
    println!("{printed}");
    Ok(())
}
