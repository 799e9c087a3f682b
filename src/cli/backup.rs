//! `backup create FILE` and `backup restore FILE [--force]`: every row of every table, as JSON
//! lines, portable between SQLite and PostgreSQL (see docs/backups.md).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::CliResult;
use crate::config::Config;
use crate::store::backup::{self, RestoreTarget, TableSpec};
use crate::store::Store;

/// The first line of every backup says what it is.
const FORMAT: &str = "gitlab-license-server-backup";
const FORMAT_VERSION: i64 = 1;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write every row of every table of DATABASE_URL to FILE (created with mode 0600: it
    /// holds license keys and token digests). Consistent while the server runs.
    Create {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Restore FILE into DATABASE_URL, creating the schema first. Refuses a database that
    /// holds any row unless --force, which replaces its contents.
    Restore {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(long)]
        force: bool,
    },
}

pub fn run(command: BackupCommand) -> CliResult {
    let config = Config::from_env()?;
    let runtime = super::ops::runtime()?;
    runtime.block_on(async {
        let store = super::ops::open_store(&config).await?;
        let outcome = match command {
            BackupCommand::Create { file } => create(&store, &file).await,
            BackupCommand::Restore { file, force } => restore(&store, &file, force).await,
        };
        store.close().await;
        outcome
    })
}

async fn create(store: &Store, file: &Path) -> CliResult {
    // Written next to the target and renamed at the end: a failed backup never leaves a
    // truncated file under the name asked for.
    let partial = file.with_extension("partial");
    let handle = open_private(&partial)
        .map_err(|error| format!("cannot create {}: {error}", partial.display()))?;
    let mut writer = BufWriter::new(handle);
    let header = json!({
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "schema_version": store.schema_version(),
        "server_version": env!("CARGO_PKG_VERSION"),
        "backend": store.backend_name(),
        "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let write_line = |writer: &mut BufWriter<std::fs::File>, value: &Value| {
        serde_json::to_writer(&mut *writer, value)?;
        writer.write_all(b"\n")
    };
    let result = async {
        write_line(&mut writer, &header).map_err(|error| error.to_string())?;
        let rows = store
            .export_rows(|table, row| write_line(&mut writer, &json!({"table": table, "row": row})))
            .await
            .map_err(|error| error.to_string())?;
        write_line(&mut writer, &json!({"end": true, "rows": rows}))
            .and_then(|()| writer.flush())
            .and_then(|()| writer.get_ref().sync_all())
            .map_err(|error| error.to_string())?;
        std::fs::rename(&partial, file)
            .map_err(|error| format!("cannot move the backup to {}: {error}", file.display()))?;
        Ok::<usize, String>(rows)
    }
    .await;
    match result {
        Ok(rows) => {
            println!("backed up {rows} rows to {}", file.display());
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// One data line of a backup: its table and row, or why it is not one.
fn parse_row(
    line: &str,
    number: usize,
) -> Result<(&'static TableSpec, Map<String, Value>), String> {
    let bad = |why: &str| format!("line {number}: {why}");
    let mut value: Value = serde_json::from_str(line).map_err(|_| bad("not JSON"))?;
    let table = value
        .get("table")
        .and_then(Value::as_str)
        .and_then(backup::table)
        .ok_or_else(|| bad("not a row of a known table"))?;
    match value.get_mut("row").map(Value::take) {
        Some(Value::Object(row)) => {
            if let Some(unknown) = row
                .keys()
                .find(|key| !table.columns.iter().any(|(column, _)| column == key))
            {
                return Err(bad(&format!("unknown column {}.{unknown}", table.name)));
            }
            Ok((table, row))
        }
        _ => Err(bad("a row must be an object")),
    }
}

async fn restore(store: &Store, file: &Path, force: bool) -> CliResult {
    let handle = std::fs::File::open(file)
        .map_err(|error| format!("cannot open {}: {error}", file.display()))?;
    let mut lines = BufReader::new(handle).lines();
    let header: Value = lines
        .next()
        .and_then(Result::ok)
        .and_then(|line| serde_json::from_str(&line).ok())
        .ok_or_else(|| format!("{} is not a gitlab-license-server backup", file.display()))?;
    if header["format"] != FORMAT || header["version"] != FORMAT_VERSION {
        return Err(format!(
            "{} is not a version {FORMAT_VERSION} gitlab-license-server backup",
            file.display()
        ));
    }
    let schema = header["schema_version"].as_i64().unwrap_or(i64::MAX);
    if schema > store.schema_version() {
        return Err(format!(
            "the backup comes from a newer schema ({schema}) than this build knows ({}); restore it with a newer gitlab-license-server",
            store.schema_version()
        ));
    }
    let target = if force {
        RestoreTarget::Replace
    } else {
        RestoreTarget::MustBeEmpty
    };
    let rows = BackupRows {
        lines: lines.enumerate(),
        seen: 0,
        trailer: None,
        done: false,
    };
    let restored = store
        .import_rows(rows, target)
        .await
        .map_err(|error| error.to_string())?;
    // Fresh statistics for the restored tables, so the first requests are planned well.
    store.analyze().await.map_err(|error| error.to_string())?;
    println!("restored {restored} rows from {}", file.display());
    Ok(())
}

/// The data lines of a backup, read as they are restored. When they run out it yields one
/// last error (which rolls the restore back) unless the file ended with a trailer naming
/// exactly that many rows: a cut-short file restores nothing.
struct BackupRows<L> {
    lines: L,
    seen: usize,
    trailer: Option<u64>,
    done: bool,
}

impl<L> Iterator for BackupRows<L>
where
    L: Iterator<Item = (usize, std::io::Result<String>)>,
{
    type Item = Result<(&'static TableSpec, Map<String, Value>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.lines.next() {
            Some((index, line)) => {
                let number = index + 2;
                let line = match line {
                    Ok(line) => line,
                    Err(error) => return Some(Err(format!("line {number}: {error}"))),
                };
                if self.trailer.is_some() {
                    return Some(Err(format!("line {number}: data after the end marker")));
                }
                if line.starts_with("{\"end\"") {
                    let rows = serde_json::from_str::<Value>(&line)
                        .ok()
                        .and_then(|end| end["rows"].as_u64());
                    return match rows {
                        Some(rows) => {
                            self.trailer = Some(rows);
                            self.next()
                        }
                        None => Some(Err(format!("line {number}: a damaged end marker"))),
                    };
                }
                self.seen += 1;
                Some(parse_row(&line, number))
            }
            None => {
                self.done = true;
                match self.trailer {
                    Some(rows) if rows == self.seen as u64 => None,
                    Some(rows) => Some(Err(format!(
                        "the backup says it holds {rows} rows but has {}; it is damaged",
                        self.seen
                    ))),
                    None => Some(Err(
                        "the backup has no end marker: it was cut short; nothing was restored"
                            .into(),
                    )),
                }
            }
        }
    }
}
