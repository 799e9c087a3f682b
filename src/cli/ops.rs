//! Commands that need the configuration and the database: serve, migrate, token, healthcheck.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use chrono::NaiveDate;
use clap::Subcommand;

use super::CliResult;
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a personal access token for a user and print it (shown once).
    Create {
        #[arg(long)]
        username: String,
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes, e.g. api,admin_mode or read_api.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Last day before the token stops working (YYYY-MM-DD); never expires if omitted.
        #[arg(long, value_parser = parse_day)]
        expires_at: Option<NaiveDate>,
    },
    /// Print the root token generated at the first start (`DATA_DIR/initial_root_token`),
    /// for images without a shell: `docker exec <container> gitlab-license-server token
    /// initial`.
    Initial,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make a user an active administrator again (unblocked, unbanned, promoted; root is
    /// created anew if it was deleted) and print a new token with the api and admin_mode
    /// scopes, valid for a week. Works on the configured database, with or without a server
    /// running; audited.
    Rescue {
        /// The user to restore.
        #[arg(long, default_value = "root")]
        username: String,
    },
}

pub fn admin(command: AdminCommand) -> CliResult {
    let AdminCommand::Rescue { username } = command;
    let config = Config::from_env()?;
    runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let rescued =
            crate::services::users::rescue_admin(&store, &username, chrono::Utc::now()).await;
        store.close().await;
        let (user, token, expires_on) = rescued?;
        eprintln!(
            "{} (id {}) is an active administrator; this token (api, admin_mode) works until {expires_on}:",
            user.username, user.id
        );
        println!("{token}");
        Ok(())
    })
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Import `Date,Billable User Count` rows (a usage export, or just its table). Rows already
    /// present are skipped, so importing twice adds nothing.
    Import {
        #[arg(value_name = "FILE.csv")]
        file: std::path::PathBuf,
    },
}

pub fn history(command: HistoryCommand) -> CliResult {
    let HistoryCommand::Import { file } = command;
    let text = super::read_text(&file)?;
    let rows = crate::domain::usage_csv::parse_history(&text)
        .map_err(|error| format!("{}: {error}", file.display()))?;
    let config = Config::from_env()?;
    runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let inserted = store
            .import_history(&rows)
            .await
            .map_err(|error| error.to_string());
        store.close().await;
        let inserted = inserted?;
        println!(
            "imported {inserted} of {} rows ({} already present)",
            rows.len(),
            rows.len() - inserted
        );
        Ok(())
    })
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date of the form YYYY-MM-DD"))
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
}

pub fn serve() -> CliResult {
    let config = Config::from_env()?;
    let log_output = crate::logging::init(config.log_format);
    let runtime = runtime()?;
    let outcome = runtime.block_on(crate::server::serve(config));
    // The runtime first (its tasks may still log), then the log's queue is written out.
    drop(runtime);
    drop(log_output);
    outcome
}

/// Command-line tools need one connection, not a pool.
pub(super) async fn open_store(config: &Config) -> Result<Store, String> {
    crate::server::open_store(config, Some(1)).await
}

pub fn migrate() -> CliResult {
    let config = Config::from_env()?;
    runtime()?.block_on(async {
        let store = open_store(&config).await?;
        store.close().await;
        println!("migrations applied ({})", store.backend_name());
        Ok(())
    })
}

pub fn token(command: TokenCommand) -> CliResult {
    let (username, name, scopes, expires_at) = match command {
        TokenCommand::Create {
            username,
            name,
            scopes,
            expires_at,
        } => (username, name, scopes, expires_at),
        TokenCommand::Initial => return initial_token(),
    };
    let config = Config::from_env()?;
    runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let token = crate::services::tokens::create_for_user(
            &store,
            &username,
            &name,
            &scopes,
            expires_at,
            chrono::Utc::now(),
        )
        .await;
        store.close().await;
        println!("{}", token?);
        Ok(())
    })
}

fn initial_token() -> CliResult {
    let config = Config::from_env()?;
    let path = config.data_dir.join(crate::bootstrap::ROOT_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) => {
            println!("{}", token.trim());
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "{} does not exist: root's token was not generated here (it came from \
             INITIAL_ROOT_TOKEN or INITIAL_ROOT_TOKEN_FILE, or the file was removed after \
             use); `gitlab-license-server admin rescue` prints a new one",
            path.display()
        )),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// GET /-/readiness on the configured address with a plain socket (no HTTP client needed).
pub fn healthcheck() -> CliResult {
    let config = Config::from_env()?;
    let mut address = config.listen_addr;
    if address.ip().is_unspecified() {
        let loopback = if address.is_ipv4() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            Ipv6Addr::LOCALHOST.into()
        };
        address = SocketAddr::new(loopback, address.port());
    }
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|error| error.to_string())?;
    write!(
        stream,
        "GET /-/readiness HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|error| format!("cannot send the probe: {error}"))?;
    let mut response = String::new();
    let _ = stream.take(4096).read_to_string(&mut response);
    let status_line = response.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        println!("ok");
        Ok(())
    } else {
        Err(format!("not ready: {status_line}"))
    }
}
