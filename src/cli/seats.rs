//! `seats assign` and `seats reclaim`: GitLab Duo seats in bulk from the command line, against
//! the configured database, as the administrator whose token is in `GITLAB_TOKEN` (the same
//! policy, limits and audit as the API). A preview unless `--apply` is given.
//!
//! `seats ledger`, `seats billable-on` and `seats forecast`: the seat ledger and the true-up
//! forecast, read as an administrator — the ledger's CSVs line for line as the API's
//! `ledger.csv` and `billable_on.csv` (the same service functions), the forecast as its JSON.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use clap::Subcommand;
use futures_util::{Stream, TryStreamExt as _};

use super::CliResult;
use crate::config::Config;
use crate::policy::Need;
use crate::services::add_ons::Caller;
use crate::services::duo_bulk::{self, Recipients};
use crate::services::ledger::{self, LedgerQuery};
use crate::services::true_up;
use crate::state::AppState;
use crate::store::StoreError;

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
    /// The seat ledger as CSV (as GET /api/v4/-/seats/ledger.csv): every recount's record of
    /// who started and who stopped being billable, when and why, in the order written.
    Ledger {
        /// A user's ID or username: their entries only.
        #[arg(long)]
        user: Option<String>,
        /// Entries recorded on or after this day (UTC).
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<String>,
        /// Entries recorded on or before this day (UTC).
        #[arg(long, value_name = "YYYY-MM-DD")]
        to: Option<String>,
        /// `started` (with the baseline) or `stopped`.
        #[arg(long, value_name = "started|stopped")]
        direction: Option<String>,
    },
    /// Who was billable at the end of a day (UTC) as CSV (as GET
    /// /api/v4/-/seats/billable_on.csv): each with since when and why; any day since the
    /// seat ledger began.
    BillableOn {
        #[arg(value_name = "YYYY-MM-DD")]
        date: String,
    },
    /// The true-up forecast of the current license as JSON (as GET /api/v4/-/seats/forecast):
    /// users over license so far, the projections to the term's end, the quarterly
    /// reconciliation, and with a price their amounts.
    Forecast {
        /// The annual price of one seat, e.g. 290 or 290.50 (else TRUE_UP_PRICE_PER_SEAT).
        #[arg(long)]
        price_per_seat: Option<String>,
        /// Three letters, e.g. EUR (default USD).
        #[arg(long, requires = "price_per_seat")]
        currency: Option<String>,
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

/// Checks that the token in `GITLAB_TOKEN` is an administrator's that may read (as the API's
/// extensions require).
async fn reader(state: &AppState) -> Result<(), String> {
    super::principal_from_env(
        state,
        Need::Read(crate::auth::LICENSE_READ_SCOPES),
        "read the seat ledger",
    )
    .await?
    .into_admin()
    .map(drop)
    .map_err(|_| "GITLAB_TOKEN must belong to an administrator".to_string())
}

/// Writes a CSV to standard output as it is read.
async fn write_csv(csv: impl Stream<Item = Result<Bytes, StoreError>>) -> Result<(), String> {
    let mut csv = std::pin::pin!(csv);
    let mut out = std::io::stdout();
    while let Some(chunk) = csv.try_next().await.map_err(|error| error.to_string())? {
        out.write_all(&chunk)
            .map_err(|error| format!("cannot write the CSV: {error}"))?;
    }
    out.flush()
        .map_err(|error| format!("cannot write the CSV: {error}"))
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
            let json = match &command {
                SeatsCommand::Assign {
                    purchase, apply, ..
                } => {
                    let caller = caller(&state).await?;
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
                    let caller = caller(&state).await?;
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
                SeatsCommand::Ledger {
                    user,
                    from,
                    to,
                    direction,
                } => {
                    reader(&state).await?;
                    let query = LedgerQuery {
                        user: user.clone(),
                        from: from.clone(),
                        to: to.clone(),
                        direction: direction.clone(),
                    };
                    let entries = ledger::prepare(&state, &query)
                        .await
                        .map_err(|error| error.to_string())?;
                    write_csv(entries.csv(state.clone())).await?;
                    return Ok(None);
                }
                SeatsCommand::BillableOn { date } => {
                    reader(&state).await?;
                    let day = ledger::prepare_billable_on(&state, date)
                        .await
                        .map_err(|error| error.to_string())?;
                    write_csv(day.csv(state.clone())).await?;
                    return Ok(None);
                }
                SeatsCommand::Forecast {
                    price_per_seat,
                    currency,
                } => {
                    reader(&state).await?;
                    let forecast =
                        true_up::forecast(&state, price_per_seat.as_deref(), currency.as_deref())
                            .await
                            .map_err(|error| error.to_string())?;
                    serde_json::to_string_pretty(&forecast)
                }
            };
            json.map(Some)
                .map_err(|error| format!("cannot print the result: {error}"))
        }
        .await;
        state.store.close().await;
        outcome
    })?;
    if let Some(printed) = printed {
        println!("{printed}");
    }
    Ok(())
}
