//! Restoring a backup in bulk. A restore of a large directory is dominated by round trips
//! when every row is its own statement, so consecutive rows of one table that carry the same
//! columns are written together: as multi-row `INSERT`s on SQLite, as one `COPY … FROM STDIN`
//! on PostgreSQL. Rows are grouped only while they carry the same columns, so a column a row
//! lacks (a backup from an older schema) still takes its database default.

use std::fmt::Write as _;
use std::iter::Peekable;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Connection, PgConnection, Sqlite, SqliteConnection};

use super::{Kind, RestoreTarget, TableSpec, TABLES};
use crate::store::{Db, Store, StoreError, StoreResult};
use Kind::{Bool, Date, Text, Timestamp, I16, I32, I64};

/// The most bound parameters one SQLite statement may hold (`SQLITE_MAX_VARIABLE_NUMBER` of
/// the bundled SQLite, 3.32 and later); a batch holds as many rows as fit under it.
const SQLITE_MAX_PARAMETERS: usize = 32766;

/// The page cache of the connection that restores into SQLite, in KiB. The pool keeps
/// connections' caches small (the server's working set is tiny), but a restore writes into
/// every index of the tables at once, and with a small cache it rereads the same pages from
/// the file again and again: at 1.5M rows 64 MiB took a restore from 25 s to 19 s (2 MiB
/// gained nothing, 256 MiB under half a second more).
const RESTORE_CACHE_KIB: i64 = 64 * 1024;

/// `COPY` data goes to the server in messages of about this size: big enough that the
/// per-message cost vanishes, small enough that a table is never held in memory.
const COPY_CHUNK: usize = 1 << 20;

/// 2000-01-01T00:00:00Z, the instant PostgreSQL counts timestamps' microseconds from.
const POSTGRES_EPOCH: i64 = 946_684_800;

/// A row's present columns as a bit set over its table's columns, so that checking whether
/// the next row has the same shape costs no allocation.
type Shape = u64;

// Every table's columns fit in a `Shape`.
const _: () = {
    let mut index = 0;
    while index < TABLES.len() {
        assert!(TABLES[index].columns.len() <= Shape::BITS as usize);
        index += 1;
    }
};

type Item = Result<(&'static TableSpec, Map<String, Value>), String>;

fn shape_of(table: &TableSpec, row: &Map<String, Value>) -> Shape {
    table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, (column, _))| row.contains_key(*column))
        .fold(0, |shape, (index, _)| shape | 1 << index)
}

/// The columns a shape names, in the table's order; a row with none cannot be inserted.
fn columns_of(table: &'static TableSpec, shape: Shape) -> StoreResult<Vec<(&'static str, Kind)>> {
    let columns: Vec<(&str, Kind)> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(index, _)| shape & 1 << index != 0)
        .map(|(_, column)| *column)
        .collect();
    if columns.is_empty() {
        return Err(StoreError::Conflict(format!(
            "backup row of {}: it has no columns",
            table.name
        )));
    }
    Ok(columns)
}

/// The next row, if it belongs to the same table and has the same columns as the batch.
fn next_alike(
    rows: &mut Peekable<impl Iterator<Item = Item>>,
    table: &'static TableSpec,
    shape: Shape,
) -> Option<Map<String, Value>> {
    match rows.next_if(|item| {
        matches!(item, Ok((next, row)) if std::ptr::eq(*next, table) && shape_of(next, row) == shape)
    }) {
        Some(Ok((_, row))) => Some(row),
        _ => None,
    }
}

fn invalid(table: &str, column: &str, kind: Kind) -> StoreError {
    StoreError::Conflict(format!(
        "backup row of {table}: `{column}` is not a valid {kind:?}"
    ))
}

fn integer(value: &Value, bad: impl Fn() -> StoreError) -> StoreResult<i64> {
    value.as_i64().ok_or_else(bad)
}

fn timestamp(value: &Value, bad: impl Fn() -> StoreError) -> StoreResult<DateTime<Utc>> {
    let text = value.as_str().ok_or_else(&bad)?;
    Ok(DateTime::parse_from_rfc3339(text)
        .map_err(|_| bad())?
        .with_timezone(&Utc))
}

fn date(value: &Value, bad: impl Fn() -> StoreError) -> StoreResult<NaiveDate> {
    let text = value.as_str().ok_or_else(&bad)?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Binds one JSON value as the column's type; a value of the wrong type is an error that
/// names the table and column.
fn bind<'q>(
    query: SqliteQuery<'q>,
    table: &str,
    column: &str,
    kind: Kind,
    value: &'q Value,
) -> StoreResult<SqliteQuery<'q>> {
    let bad = || invalid(table, column, kind);
    Ok(match (kind, value.is_null()) {
        (I16, true) => query.bind(None::<i16>),
        (I32, true) => query.bind(None::<i32>),
        (I64, true) => query.bind(None::<i64>),
        (Text, true) => query.bind(None::<String>),
        (Bool, true) => query.bind(None::<bool>),
        (Timestamp, true) => query.bind(None::<DateTime<Utc>>),
        (Date, true) => query.bind(None::<NaiveDate>),
        (I16, false) => query.bind(i16::try_from(integer(value, bad)?).map_err(|_| bad())?),
        (I32, false) => query.bind(i32::try_from(integer(value, bad)?).map_err(|_| bad())?),
        (I64, false) => query.bind(integer(value, bad)?),
        (Text, false) => query.bind(value.as_str().ok_or_else(bad)?),
        (Bool, false) => query.bind(value.as_bool().ok_or_else(bad)?),
        (Timestamp, false) => query.bind(timestamp(value, bad)?),
        (Date, false) => query.bind(date(value, bad)?),
    })
}

/// The start of a run of rows of one table with the same columns (one statement writes a
/// run): its table, columns and first row.
struct Run {
    table: &'static TableSpec,
    shape: Shape,
    columns: Vec<(&'static str, Kind)>,
    first: Map<String, Value>,
}

fn next_run(rows: &mut Peekable<impl Iterator<Item = Item>>) -> Option<StoreResult<Run>> {
    let start = |(table, first): (&'static TableSpec, Map<String, Value>)| {
        let shape = shape_of(table, &first);
        let columns = columns_of(table, shape)?;
        Ok(Run {
            table,
            shape,
            columns,
            first,
        })
    };
    rows.next()
        .map(|item| item.map_err(StoreError::Conflict).and_then(start))
}

/// SQLite: `INSERT INTO t (…) VALUES (…), (…), …` with as many rows as the parameter limit
/// allows.
async fn insert_sqlite(
    conn: &mut SqliteConnection,
    rows: &mut Peekable<impl Iterator<Item = Item>>,
) -> StoreResult<usize> {
    let mut restored = 0;
    while let Some(run) = next_run(rows).transpose()? {
        let (table, shape, columns, first) = (run.table, run.shape, run.columns, run.first);
        let mut batch = vec![first];
        let per_batch = SQLITE_MAX_PARAMETERS / columns.len();
        while batch.len() < per_batch {
            match next_alike(rows, table, shape) {
                Some(row) => batch.push(row),
                None => break,
            }
        }
        let placeholders = format!("({})", vec!["?"; columns.len()].join(", "));
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            table.name,
            columns
                .iter()
                .map(|(column, _)| *column)
                .collect::<Vec<_>>()
                .join(", "),
            vec![placeholders; batch.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for row in &batch {
            for (column, kind) in &columns {
                let value = row.get(*column).unwrap_or(&Value::Null);
                query = bind(query, table.name, column, *kind, value)?;
            }
        }
        query.execute(&mut *conn).await?;
        restored += batch.len();
    }
    Ok(restored)
}

/// Appends `text` in `COPY`'s text format: backslash, tab, newline and carriage return
/// escaped (every other character, multi-byte ones included, stands for itself).
fn push_copy_text(out: &mut String, text: &str) -> Result<(), ()> {
    let mut rest = text;
    while let Some(at) = rest.find(['\\', '\t', '\n', '\r', '\0']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\r' => "\\r",
            // PostgreSQL text cannot hold NUL, however it is sent.
            _ => return Err(()),
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    Ok(())
}

/// Writing into a `String` cannot fail.
fn push_display(out: &mut String, value: impl std::fmt::Display) {
    let _ = write!(out, "{value}");
}

/// Appends one value in `COPY`'s text format (`\N` for NULL), checked as [`bind`] checks it.
fn push_copy_value(
    out: &mut String,
    table: &str,
    column: &str,
    kind: Kind,
    value: &Value,
) -> StoreResult<()> {
    let bad = || invalid(table, column, kind);
    if value.is_null() {
        out.push_str("\\N");
        return Ok(());
    }
    match kind {
        I16 => push_display(out, i16::try_from(integer(value, bad)?).map_err(|_| bad())?),
        I32 => push_display(out, i32::try_from(integer(value, bad)?).map_err(|_| bad())?),
        I64 => push_display(out, integer(value, bad)?),
        Text => push_copy_text(out, value.as_str().ok_or_else(bad)?).map_err(|()| {
            StoreError::Conflict(format!(
                "backup row of {table}: `{column}` holds a NUL character, which PostgreSQL cannot store"
            ))
        })?,
        Bool => out.push(if value.as_bool().ok_or_else(bad)? { 't' } else { 'f' }),
        Timestamp => {
            // Cut to whole microseconds the way a bound value is (sqlx truncates; PostgreSQL
            // would round text), so both paths store the same instant.
            let epoch = DateTime::<Utc>::from_timestamp(POSTGRES_EPOCH, 0).ok_or_else(bad)?;
            let micros = (timestamp(value, bad)? - epoch)
                .num_microseconds()
                .ok_or_else(bad)?;
            let time = epoch + TimeDelta::microseconds(micros);
            push_display(out, time.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
        }
        Date => push_display(out, date(value, bad)?.format("%Y-%m-%d")),
    }
    Ok(())
}

/// Appends one row as a line of `COPY` text.
fn push_copy_row(
    out: &mut String,
    table: &str,
    columns: &[(&str, Kind)],
    row: &Map<String, Value>,
) -> StoreResult<()> {
    for (index, (column, kind)) in columns.iter().enumerate() {
        if index > 0 {
            out.push('\t');
        }
        let value = row.get(*column).unwrap_or(&Value::Null);
        push_copy_value(out, table, column, *kind, value)?;
    }
    out.push('\n');
    Ok(())
}

/// PostgreSQL: one `COPY t (…) FROM STDIN` (text format) per run of alike rows, streamed in
/// chunks, inside the restore's transaction.
async fn copy_postgres(
    conn: &mut PgConnection,
    rows: &mut Peekable<impl Iterator<Item = Item>>,
) -> StoreResult<usize> {
    let mut restored = 0;
    while let Some(run) = next_run(rows).transpose()? {
        let (table, shape, columns, first) = (run.table, run.shape, run.columns, run.first);
        let names: Vec<&str> = columns.iter().map(|(column, _)| *column).collect();
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY {} ({}) FROM STDIN",
                table.name,
                names.join(", ")
            ))
            .await?;
        let mut chunk = String::with_capacity(COPY_CHUNK + COPY_CHUNK / 8);
        let mut row = Some(first);
        while let Some(current) = row {
            if let Err(error) = push_copy_row(&mut chunk, table.name, &columns, &current) {
                // The reason to report is the row's; the server's answer to the abort (or an
                // earlier row's error it had already found) would only hide it.
                let _ = copy.abort(error.to_string()).await;
                return Err(error);
            }
            restored += 1;
            if chunk.len() >= COPY_CHUNK {
                copy.send(chunk.as_bytes()).await?;
                chunk.clear();
            }
            row = next_alike(rows, table, shape);
        }
        if !chunk.is_empty() {
            copy.send(chunk.as_bytes()).await?;
        }
        copy.finish().await?;
    }
    Ok(restored)
}

/// What `pg_restore` creates after the rows rather than before, for the restored tables:
/// the indexes no constraint stands behind, then the foreign keys — each as the statement
/// that drops it and the one that creates it again, in the order to create them. Primary
/// keys and `UNIQUE` constraints stay (foreign keys need them). A unique index among those
/// dropped (`lower(username)`) checks the rows when it is built ("could not create unique
/// index"), a foreign key when it is added (the error a row would have met).
const DEFERRED: &str = "
    SELECT 1 AS step, format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
      FROM pg_index i
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND t.relname = ANY($1)
       AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                       WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
    UNION ALL
    SELECT 2, format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
           format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                  pg_get_constraintdef(c.oid))
      FROM pg_constraint c
      JOIN pg_class t ON t.oid = c.conrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname = ANY($1)
     ORDER BY 1, 2";

/// PostgreSQL: the rows, with the tables' other indexes and foreign keys created once
/// afterwards rather than maintained and checked row by row (as `pg_restore` does). At 1.5M
/// rows `COPY` into the indexed tables took 105 s, most of it in the users' trigram indexes;
/// with the indexes built afterwards 17 s, of which 3 s checked each membership's user,
/// which the foreign key's one check when added does in 0.5 s. Dropping and creating them is
/// transactional, so a failed restore leaves the schema as it was.
async fn restore_postgres(
    conn: &mut PgConnection,
    rows: impl IntoIterator<Item = Item>,
) -> StoreResult<usize> {
    let tables: Vec<&str> = TABLES.iter().map(|table| table.name).collect();
    let deferred: Vec<(i32, String, String)> = sqlx::query_as(DEFERRED)
        .bind(&tables)
        .fetch_all(&mut *conn)
        .await?;
    for (_, drop, _) in &deferred {
        sqlx::raw_sql(drop).execute(&mut *conn).await?;
    }
    let restored = copy_postgres(conn, &mut rows.into_iter().peekable()).await?;
    for (_, _, create) in &deferred {
        sqlx::raw_sql(create).execute(&mut *conn).await?;
    }
    Ok(restored)
}

impl Store {
    /// Writes restored rows in one transaction: all of them or none. Refuses a database that
    /// holds any row unless told to replace it; afterwards, PostgreSQL's id sequences continue
    /// after the restored ids.
    pub async fn import_rows(
        &self,
        rows: impl IntoIterator<Item = Item>,
        target: RestoreTarget,
    ) -> StoreResult<usize> {
        macro_rules! clear {
            ($tx:expr) => {{
                let mut existing = 0i64;
                for table in TABLES {
                    existing += sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {}", table.name))
                        .fetch_one(&mut *$tx)
                        .await?;
                }
                if existing > 0 {
                    if target == RestoreTarget::MustBeEmpty {
                        return Err(StoreError::Conflict(format!(
                            "the database is not empty ({existing} rows); restore into an empty database, or pass --force to replace its contents"
                        )));
                    }
                    for table in TABLES.iter().rev() {
                        sqlx::query(&format!("DELETE FROM {}", table.name))
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
            }};
        }
        let restored = match &self.db {
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                let kept: i64 = sqlx::query_scalar("PRAGMA cache_size")
                    .fetch_one(&mut *conn)
                    .await?;
                sqlx::query(&format!("PRAGMA cache_size = -{RESTORE_CACHE_KIB}"))
                    .execute(&mut *conn)
                    .await?;
                let outcome = async {
                    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                    clear!(tx);
                    let restored = insert_sqlite(&mut tx, &mut rows.into_iter().peekable()).await?;
                    tx.commit().await?;
                    Ok::<usize, StoreError>(restored)
                }
                .await;
                // The connection goes back to the pool with the cache it had; a failed restore
                // reports its own error before one from this.
                let reset = sqlx::query(&format!("PRAGMA cache_size = {kept}"))
                    .execute(&mut *conn)
                    .await;
                let restored = outcome?;
                reset?;
                restored
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                clear!(tx);
                let restored = restore_postgres(&mut tx, rows).await?;
                for table in TABLES.iter().filter(|table| table.key == "id") {
                    sqlx::query(&format!(
                        "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {0}",
                        table.name
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                restored
            }
        };
        self.changed();
        Ok(restored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn copy_value(kind: Kind, value: Value) -> StoreResult<String> {
        let mut out = String::new();
        push_copy_value(&mut out, "t", "c", kind, &value)?;
        Ok(out)
    }

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let escaped = copy_value(Text, json!("a\tb\nc\r\nd\\e \\N \\. ü 🚀 ' \" ,")).expect("text");
        assert_eq!(escaped, "a\\tb\\nc\\r\\nd\\\\e \\\\N \\\\. ü 🚀 ' \" ,");
        assert_eq!(copy_value(Text, json!("")).expect("empty"), "");
        assert_eq!(copy_value(Text, Value::Null).expect("null"), "\\N");
        let nul = copy_value(Text, json!("a\u{0}b")).expect_err("NUL");
        assert!(nul.to_string().contains("NUL"), "{nul}");
    }

    #[test]
    fn copy_values_are_checked_as_bound_ones_are() {
        assert_eq!(copy_value(I16, json!(-32768)).expect("i16"), "-32768");
        assert!(copy_value(I16, json!(32768)).is_err());
        assert!(copy_value(I64, json!(1.5)).is_err());
        assert_eq!(copy_value(Bool, json!(false)).expect("bool"), "f");
        assert!(copy_value(Bool, json!("true")).is_err());
        assert_eq!(
            copy_value(Date, json!("2026-02-28")).expect("date"),
            "2026-02-28"
        );
        assert!(copy_value(Date, json!("2026-02-30")).is_err());
    }

    #[test]
    fn copy_timestamps_are_cut_to_microseconds_as_bound_ones_are() {
        // sqlx binds whole microseconds since 2000, cut toward zero; PostgreSQL would round
        // the extra digits of text instead.
        let cut = |text: &str| copy_value(Timestamp, json!(text)).expect("timestamp");
        assert_eq!(
            cut("2026-06-15T12:30:00.123456789+02:00"),
            "2026-06-15T10:30:00.123456Z"
        );
        assert_eq!(
            cut("1999-12-31T23:59:59.9999999Z"),
            "2000-01-01T00:00:00.000000Z"
        );
        assert_eq!(cut("2026-06-15T10:30:00Z"), "2026-06-15T10:30:00.000000Z");
        assert!(copy_value(Timestamp, json!("2026-06-15 10:30")).is_err());
    }
}
