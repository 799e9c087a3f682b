//! Backups: every row of every table, read from one consistent snapshot, in a format that
//! does not depend on the backend (JSON values typed by column), so a backup made on SQLite
//! restores into PostgreSQL and the other way round.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use sqlx::Row;

use super::{Db, Store, StoreError, StoreResult};

mod restore;

/// How a column's values are read, written and typed in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    I16,
    I32,
    I64,
    Text,
    Bool,
    /// RFC 3339 in JSON.
    Timestamp,
    /// `YYYY-MM-DD` in JSON.
    Date,
}

pub struct TableSpec {
    pub name: &'static str,
    /// The key rows are read in order of (and paged by, when it is a number).
    pub key: &'static str,
    pub columns: &'static [(&'static str, Kind)],
}

use Kind::{Bool, Date, Text, Timestamp, I16, I32, I64};

/// Every table, parents before children (the order rows are restored in). A test compares
/// this list with the migrated schema of both backends, so a new table or column cannot be
/// left out of backups unnoticed.
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "users",
        key: "id",
        columns: &[
            ("id", I64),
            ("username", Text),
            ("name", Text),
            ("email", Text),
            ("state", Text),
            ("user_type", Text),
            ("admin", Bool),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
            ("last_activity_on", Date),
        ],
    },
    TableSpec {
        name: "groups",
        key: "id",
        columns: &[
            ("id", I64),
            ("name", Text),
            ("path", Text),
            ("description", Text),
            ("visibility", Text),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "members",
        key: "id",
        columns: &[
            ("id", I64),
            ("user_id", I64),
            ("source_type", Text),
            ("source_id", I64),
            ("access_level", I32),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "personal_access_tokens",
        key: "id",
        columns: &[
            ("id", I64),
            ("user_id", I64),
            ("name", Text),
            ("token_digest", Text),
            ("scopes", Text),
            ("expires_at", Date),
            ("revoked", Bool),
            ("created_at", Timestamp),
            ("last_used_at", Timestamp),
            ("previous_token_id", I64),
        ],
    },
    TableSpec {
        name: "licenses",
        key: "id",
        columns: &[
            ("id", I64),
            ("data", Text),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    TableSpec {
        name: "usage_trends_measurements",
        key: "id",
        columns: &[
            ("id", I64),
            ("identifier", I16),
            ("count", I64),
            ("recorded_at", Timestamp),
        ],
    },
    TableSpec {
        name: "historical_data",
        key: "id",
        columns: &[
            ("id", I64),
            ("recorded_at", Timestamp),
            ("active_user_count", I64),
        ],
    },
    TableSpec {
        name: "application_settings",
        key: "name",
        columns: &[("name", Text), ("value", Text), ("updated_at", Timestamp)],
    },
    TableSpec {
        name: "jobs",
        key: "id",
        columns: &[
            ("id", I64),
            ("kind", Text),
            ("unique_key", Text),
            ("run_at", Timestamp),
            ("state", Text),
            ("attempts", I32),
            ("locked_until", Timestamp),
            ("last_error", Text),
            ("created_at", Timestamp),
            ("finished_at", Timestamp),
            ("subject_id", I64),
        ],
    },
    TableSpec {
        name: "audit_events",
        key: "id",
        columns: &[
            ("id", I64),
            ("author_id", I64),
            ("entity_type", Text),
            ("entity_id", I64),
            ("event_name", Text),
            ("details", Text),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "add_on_purchases",
        key: "id",
        columns: &[
            ("id", I64),
            ("add_on_name", Text),
            ("namespace_id", I64),
            ("quantity", I64),
            ("started_on", Date),
            ("expires_on", Date),
            ("purchase_xid", Text),
            ("trial", Bool),
            ("last_assigned_users_refreshed_at", Timestamp),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    TableSpec {
        name: "user_add_on_assignments",
        key: "id",
        columns: &[
            ("id", I64),
            ("add_on_purchase_id", I64),
            ("user_id", I64),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "system_hooks",
        key: "id",
        columns: &[
            ("id", I64),
            ("url", Text),
            ("token", Text),
            ("name", Text),
            ("description", Text),
            ("push_events", Bool),
            ("tag_push_events", Bool),
            ("merge_requests_events", Bool),
            ("repository_update_events", Bool),
            ("enable_ssl_verification", Bool),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "hook_events",
        key: "id",
        columns: &[
            ("id", I64),
            ("event_name", Text),
            ("payload", Text),
            ("dedupe_key", Text),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "hook_deliveries",
        key: "id",
        columns: &[
            ("id", I64),
            ("hook_id", I64),
            ("event_id", I64),
            ("state", Text),
            ("attempts", I32),
            ("next_attempt_at", Timestamp),
            ("locked_until", Timestamp),
            ("response_status", I32),
            ("last_error", Text),
            ("created_at", Timestamp),
            ("delivered_at", Timestamp),
        ],
    },
    TableSpec {
        name: "seat_alerts",
        key: "id",
        columns: &[
            ("id", I64),
            ("subject", Text),
            ("threshold", I32),
            ("fired_at", Timestamp),
        ],
    },
    TableSpec {
        name: "fleet_instances",
        key: "id",
        columns: &[
            ("id", I64),
            ("name", Text),
            ("url", Text),
            // Sealed with the secrets key, which is not in the backup.
            ("token_ciphertext", Text),
            ("gitlab_version", Text),
            ("license_plan", Text),
            ("license_seats", I64),
            ("license_starts_on", Date),
            ("license_expires_on", Date),
            ("license_billable_users", I64),
            ("users_count", I64),
            ("billable_users", I64),
            ("billability_source", Text),
            ("sync_status", Text),
            ("sync_started_at", Timestamp),
            ("sync_finished_at", Timestamp),
            ("sync_error", Text),
            ("last_success_at", Timestamp),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    TableSpec {
        name: "fleet_users",
        key: "id",
        columns: &[
            ("id", I64),
            ("instance_id", I64),
            ("upstream_id", I64),
            ("username", Text),
            ("name", Text),
            ("email", Text),
            ("state", Text),
            ("bot", Bool),
            ("is_admin", Bool),
            ("billable", Bool),
            ("identities", Text),
            ("last_activity_on", Date),
            ("created_at", Timestamp),
            ("person_key", Text),
            ("person_billable", Bool),
            ("person_outside_largest", Bool),
        ],
    },
    TableSpec {
        name: "fleet_staged_users",
        key: "id",
        columns: &[
            ("id", I64),
            ("instance_id", I64),
            ("stage", Text),
            ("upstream_id", I64),
            ("username", Text),
            ("name", Text),
            ("email", Text),
            ("state", Text),
            ("bot", Bool),
            ("is_admin", Bool),
            ("billable", Bool),
            ("identities", Text),
            ("last_activity_on", Date),
            ("created_at", Timestamp),
            ("staged_at", Timestamp),
        ],
    },
    TableSpec {
        name: "fleet_summaries",
        key: "name",
        columns: &[
            ("name", Text),
            ("summary", Text),
            ("subset_holds", Bool),
            ("computed_at", Timestamp),
        ],
    },
    TableSpec {
        name: "scim_identities",
        key: "id",
        columns: &[
            ("id", I64),
            ("user_id", I64),
            ("extern_uid", Text),
            ("active", Bool),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    TableSpec {
        name: "scim_tokens",
        key: "id",
        // A digest: the token itself is nowhere.
        columns: &[
            ("id", I64),
            ("token_digest", Text),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "scim_groups",
        key: "id",
        columns: &[
            ("id", I64),
            ("scim_id", Text),
            ("display_name", Text),
            ("external_id", Text),
            ("add_on_purchase_id", I64),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    TableSpec {
        name: "scim_group_members",
        key: "id",
        columns: &[
            ("id", I64),
            ("scim_group_id", I64),
            ("user_id", I64),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "dormant_exclusions",
        key: "id",
        columns: &[
            ("id", I64),
            ("kind", Text),
            ("subject_id", I64),
            ("created_at", Timestamp),
        ],
    },
    TableSpec {
        name: "seat_ledger",
        key: "id",
        columns: &[
            ("id", I64),
            ("recorded_at", Timestamp),
            ("user_id", I64),
            ("username", Text),
            ("direction", Text),
            ("reason", Text),
            ("plan", Text),
        ],
    },
    TableSpec {
        name: "web_sessions",
        key: "id",
        columns: &[
            ("id", I64),
            ("session_digest", Text),
            ("token_id", I64),
            ("csrf_token", Text),
            ("created_at", Timestamp),
            ("expires_at", Timestamp),
        ],
    },
];

pub fn table(name: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|table| table.name == name)
}

/// Rows are read in pages of this many (memory stays flat however big a table is).
const PAGE: i64 = 1000;

/// A column of a row as JSON, read with the column's kind.
macro_rules! column_value {
    ($row:expr, $column:expr, $kind:expr) => {{
        let (column, kind) = ($column, $kind);
        let value = match kind {
            I16 => $row.try_get::<Option<i16>, _>(column)?.map(Value::from),
            I32 => $row.try_get::<Option<i32>, _>(column)?.map(Value::from),
            I64 => $row.try_get::<Option<i64>, _>(column)?.map(Value::from),
            Text => $row.try_get::<Option<String>, _>(column)?.map(Value::from),
            Bool => $row.try_get::<Option<bool>, _>(column)?.map(Value::from),
            Timestamp => $row
                .try_get::<Option<DateTime<Utc>>, _>(column)?
                .map(|time| Value::from(time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
            Date => $row
                .try_get::<Option<NaiveDate>, _>(column)?
                .map(|date| Value::from(date.format("%Y-%m-%d").to_string())),
        };
        value.unwrap_or(Value::Null)
    }};
}

/// What a restore found in the target database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTarget {
    /// Restore only into an empty database.
    MustBeEmpty,
    /// Delete whatever is there first (`--force`).
    Replace,
}

impl Store {
    /// Reads every row of every table from one snapshot (a repeatable-read transaction on
    /// PostgreSQL, a read transaction on SQLite in WAL mode), so a backup taken while the
    /// server writes is consistent. `sink` receives each row as it is read.
    pub async fn export_rows(
        &self,
        mut sink: impl FnMut(&'static str, Map<String, Value>) -> std::io::Result<()>,
    ) -> StoreResult<usize> {
        let mut written = 0;
        macro_rules! export {
            ($tx:expr) => {{
                let mut tx = $tx;
                for table in TABLES {
                    let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
                    // A table keyed by a number is read a page at a time (big tables are).
                    let paged = table
                        .columns
                        .iter()
                        .any(|(name, kind)| *name == table.key && matches!(kind, I64));
                    let sql = if paged {
                        format!(
                            "SELECT {} FROM {} WHERE {key} > $1 ORDER BY {key} LIMIT {PAGE}",
                            columns.join(", "),
                            table.name,
                            key = table.key
                        )
                    } else {
                        format!(
                            "SELECT {} FROM {} ORDER BY {}",
                            columns.join(", "),
                            table.name,
                            table.key
                        )
                    };
                    let mut after = i64::MIN;
                    loop {
                        let rows = if paged {
                            sqlx::query(&sql).bind(after).fetch_all(&mut *tx).await?
                        } else {
                            sqlx::query(&sql).fetch_all(&mut *tx).await?
                        };
                        let count = rows.len();
                        for row in rows {
                            let mut object = Map::new();
                            for (column, kind) in table.columns {
                                object.insert(
                                    (*column).to_string(),
                                    column_value!(row, *column, *kind),
                                );
                            }
                            if paged {
                                after = object
                                    .get(table.key)
                                    .and_then(Value::as_i64)
                                    .unwrap_or(after);
                            }
                            sink(table.name, object).map_err(|error| {
                                StoreError::Conflict(format!("cannot write the backup: {error}"))
                            })?;
                            written += 1;
                        }
                        if !paged || count < PAGE as usize {
                            break;
                        }
                    }
                }
                tx.rollback().await?;
            }};
        }
        match &self.db {
            Db::Sqlite(pool) => export!(pool.begin().await?),
            Db::Postgres(pool) => {
                export!(
                    pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        .await?
                )
            }
        }
        Ok(written)
    }

    /// The newest migration this build applies (a backup records it; a restore refuses a
    /// backup from a newer schema).
    pub fn schema_version(&self) -> i64 {
        let migrator = match &self.db {
            Db::Sqlite(_) => sqlx::migrate!("./migrations/sqlite"),
            Db::Postgres(_) => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .iter()
            .map(|migration| migration.version)
            .max()
            .unwrap_or(0)
    }

    /// The tables and columns the migrated schema has (to compare with [`TABLES`]). SQLite's
    /// user-search index (`users_search` and its FTS5 shadow tables) is derived from `users`
    /// by triggers, so it is rebuilt on restore rather than backed up; so is
    /// `seat_ledger_pending` (every restored user is marked, and the first recount after a
    /// restore compares them with their restored ledger entries, recording only real changes);
    /// and `rate_limit_counters`, request counts of windows an hour long at most.
    pub async fn schema_columns(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as::<_, (String, String)>(
                    "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'
                       AND m.name NOT LIKE 'users_search%' AND m.name <> 'seat_ledger_pending'
                       AND m.name <> 'rate_limit_counters'
                     ORDER BY m.name, p.cid",
                )
                .fetch_all(pool)
                .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as::<_, (String, String)>(
                    "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'
                       AND table_name <> 'seat_ledger_pending'
                       AND table_name <> 'rate_limit_counters'
                     ORDER BY table_name, ordinal_position",
                )
                .fetch_all(pool)
                .await?
            }
        })
    }
}
