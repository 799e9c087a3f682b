//! Backups: SQLite → PostgreSQL and back with every endpoint answering the same afterwards;
//! refusal of non-empty targets, `--force`, and damaged files; restores larger than one
//! batch (SQLite's multi-row `INSERT`s, PostgreSQL's `COPY`) with text that needs escaping.

use gitlab_license_server::store::Write;
use serde_json::json;

use crate::on_both_backends;
use crate::support::app::{Backend, ScratchDatabase, TestApp, ROOT_TOKEN};
use crate::support::process::binary;
use gitlab_license_server::store::{HistoryRow, NewGroup, NewUser, Store};

on_both_backends!(
    a_backup_moves_an_instance_to_the_other_backend,
    the_backup_tables_are_the_schema_tables,
    a_restore_of_many_batches_keeps_every_value,
    a_bad_row_deep_in_a_bulk_restore_restores_nothing
);

fn other(backend: Backend) -> Backend {
    match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    }
}

/// A recount as an administrator asks for one, run to its end.
async fn recount(app: &TestApp) {
    let id = app.get("/api/v4/license").await.json()["id"]
        .as_i64()
        .expect("license id");
    let reply = app
        .put(&format!("/api/v4/license/{id}/refresh_billable_users"))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    app.run_jobs().await;
}

fn cli(args: &[&str], database_url: &str) -> std::process::Output {
    binary()
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .output()
        .expect("cli runs")
}

/// What a client sees: every listing endpoint, the license, the CSV, and the seats.
async fn answers(app: &TestApp, group_id: i64) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for path in [
        "/api/v4/license".to_string(),
        "/api/v4/licenses".into(),
        "/api/v4/users?per_page=100".into(),
        "/api/v4/groups".into(),
        format!("/api/v4/groups/{group_id}/members"),
        "/api/v4/personal_access_tokens?per_page=100".into(),
        "/api/v4/audit_events?per_page=100".into(),
        "/api/v4/license/usage_export.csv".into(),
        // The seat ledger and what it answers (docs/true-up.md).
        "/api/v4/-/seats/ledger".into(),
        "/api/v4/-/seats/ledger.csv".into(),
        "/api/v4/-/seats/billable_on?date=2026-06-15".into(),
        "/api/v4/-/seats/peak".into(),
        "/api/v4/-/seats/forecast".into(),
    ] {
        let reply = app.get(&path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        seen.push((path, reply.body));
    }
    let seats = app
        .graphql(
            Some(ROOT_TOKEN),
            "{ addOnPurchases { id name purchasedQuantity assignedQuantity }
               selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS, addOnPurchaseIds: [\"gid://gitlab/GitlabSubscriptions::AddOnPurchase/1\"],
                                             filterByAssignedSeat: \"true\") { nodes { username } } }",
            json!({}),
        )
        .await;
    seen.push(("graphql".into(), seats.body));
    seen
}

async fn a_backup_moves_an_instance_to_the_other_backend(app: TestApp) {
    // An instance with a bit of everything.
    assert_eq!(
        app.upload(&crate::graphql_seats::duo_license(3))
            .await
            .status,
        201
    );
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let grace = app.add_user(NewUser::human("grace", false)).await;
    let now = crate::support::app::test_now();
    app.state
        .store
        .set_user_state(
            grace.id,
            gitlab_license_server::domain::users::UserState::Blocked,
            Write::unaudited(now),
        )
        .await
        .expect("block");
    let group = app
        .state
        .store
        .create_group(
            &NewGroup {
                name: "Acme".into(),
                path: "acme".into(),
                description: "héllo, wörld".into(),
                visibility: gitlab_license_server::domain::groups::Visibility::Private,
            },
            Write::unaudited(now),
        )
        .await
        .expect("group");
    app.state
        .store
        .add_membership(ada.id, "Namespace", group.id, 30, Write::unaudited(now))
        .await
        .expect("member");
    let (ada_token, _) = app
        .token_for(
            &ada,
            &["api"],
            Some(crate::support::licenses::day("2027-01-01")),
        )
        .await;
    app.state
        .store
        .insert_history(&[HistoryRow {
            recorded_at: now - chrono::TimeDelta::days(1),
            active_user_count: 2,
        }])
        .await
        .expect("history");
    app.run_jobs().await;
    // The ledger's baseline (root, ada) is written; grace comes back and starts counting.
    app.state
        .store
        .set_user_state(
            grace.id,
            gitlab_license_server::domain::users::UserState::Active,
            Write::unaudited(now),
        )
        .await
        .expect("unblock");
    recount(&app).await;
    let ledger = app.get("/api/v4/-/seats/ledger").await.json();
    let entries: Vec<(String, String)> = ledger
        .as_array()
        .expect("ledger entries")
        .iter()
        .map(|entry| {
            (
                entry["username"].as_str().unwrap_or_default().to_string(),
                entry["direction"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("root".to_string(), "baseline".to_string()),
            ("ada".into(), "baseline".into()),
            ("grace".into(), "started".into())
        ]
    );
    let assigned = app
        .graphql(
            Some(ROOT_TOKEN),
            "mutation { userAddOnAssignmentCreate(input: {addOnPurchaseId: \"gid://gitlab/GitlabSubscriptions::AddOnPurchase/1\", userId: \"gid://gitlab/User/2\"}) { errors } }",
            json!({}),
        )
        .await;
    assert_eq!(
        assigned.json()["data"]["userAddOnAssignmentCreate"]["errors"],
        json!([])
    );
    let before = answers(&app, group.id).await;

    let file = app.data_dir.join("instance.backup");
    let file_text = file.display().to_string();
    let made = cli(&["backup", "create", &file_text], &app.database_url);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "backups hold secrets");
    }

    // Into the other backend, which starts empty (the restore creates the schema).
    let target = ScratchDatabase::new(other(app.backend), &app.data_dir).await;
    let restored = cli(&["backup", "restore", &file_text], &target.url);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let moved = TestApp::start(other(app.backend), &[("DATABASE_URL", &target.url)]).await;
    let after = answers(&moved, group.id).await;
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(was, is, "{path} answers the same after the move");
    }
    // A recount after the restore compares every restored user and finds nothing new: the
    // restore is not a day on which anyone started or stopped.
    recount(&moved).await;
    assert_eq!(
        moved.get("/api/v4/-/seats/ledger").await.body,
        before
            .iter()
            .find(|(path, _)| path == "/api/v4/-/seats/ledger")
            .map(|(_, body)| body.clone())
            .unwrap_or_default(),
        "the ledger continues unchanged after the move"
    );
    // Tokens keep working (only their digests were stored), and new rows get fresh ids.
    let user = moved
        .send(reqwest::Method::GET, "/api/v4/user", Some(&ada_token))
        .await;
    assert_eq!(user.json()["username"], "ada");
    let new_user = moved.add_user(NewUser::human("newcomer", false)).await;
    assert_eq!(
        new_user.id,
        grace.id + 1,
        "ids continue after the restored ones"
    );

    // A database with rows is refused, and keeps its rows; --force replaces them.
    let refused = cli(&["backup", "restore", &file_text], &target.url);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(moved
        .state
        .store
        .find_user_by_username("newcomer")
        .await
        .expect("db")
        .is_some());
    let forced = cli(&["backup", "restore", "--force", &file_text], &target.url);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(moved
        .state
        .store
        .find_user_by_username("newcomer")
        .await
        .expect("db")
        .is_none());

    // A file cut short restores nothing.
    let text = std::fs::read_to_string(&file).expect("read");
    let cut: Vec<&str> = text.lines().collect();
    let short = app.data_dir.join("short.backup");
    std::fs::write(&short, cut[..cut.len() - 1].join("\n")).expect("write");
    let empty = ScratchDatabase::new(other(app.backend), &app.data_dir).await;
    let damaged = cli(
        &["backup", "restore", &short.display().to_string()],
        &empty.url,
    );
    assert!(!damaged.status.success());
    assert!(String::from_utf8_lossy(&damaged.stderr).contains("cut short"));
    let store = Store::connect(&empty.url, Some(1)).await.expect("connect");
    assert!(store
        .find_user_by_username("root")
        .await
        .expect("db")
        .is_none());
    store.close().await;
    // Not a backup at all.
    let not_backup = cli(
        &[
            "backup",
            "restore",
            &app.data_dir.join("nope").display().to_string(),
        ],
        &empty.url,
    );
    assert!(!not_backup.status.success());
}

async fn the_backup_tables_are_the_schema_tables(app: TestApp) {
    let schema = app.state.store.schema_columns().await.expect("schema");
    let mut expected: Vec<(String, String)> = gitlab_license_server::store::backup::TABLES
        .iter()
        .flat_map(|table| {
            table
                .columns
                .iter()
                .map(|(column, _)| (table.name.to_string(), column.to_string()))
        })
        .collect();
    let mut actual = schema;
    expected.sort();
    actual.sort();
    assert_eq!(
        actual, expected,
        "every table and column of the schema is in backups (store/backup.rs TABLES)"
    );
}

/// Text that a bulk write must escape or pass through untouched.
const AWKWARD: &[&str] = &[
    "",
    "tab\there",
    "two\nlines",
    "crlf\r\nend",
    "back\\slash",
    "trailing\\",
    "\\N",
    "\\.",
    "\\t not a tab",
    "quotes ' \" `",
    "comma, semicolon; pipe |",
    "ünïcødé — 日本語 🚀",
    "  spaces  ",
    "(?, $1, %s)",
];

/// More users than three SQLite batches hold (10 columns: 3276 rows a statement), with awkward
/// text everywhere, NULLs, and every seventh user without the columns that have defaults (so
/// the rows change shape in the middle of batches); jobs add NULL and awkward text columns.
fn awkward_rows() -> Vec<(&'static str, serde_json::Map<String, serde_json::Value>)> {
    let base = crate::support::app::test_now();
    let time = |offset: i64| {
        (base + chrono::TimeDelta::microseconds(offset * 1_000_003))
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    };
    let mut rows = Vec::new();
    for id in 1..=3 * 3276 + 100_i64 {
        let awkward = AWKWARD[id as usize % AWKWARD.len()];
        let mut row = serde_json::Map::new();
        row.insert("id".into(), json!(id));
        row.insert("username".into(), json!(format!("u{id}-{awkward}")));
        row.insert("name".into(), json!(awkward));
        row.insert("email".into(), json!(format!("u{id}@example.com")));
        if id % 7 != 0 {
            row.insert("state".into(), json!("blocked"));
            row.insert("user_type".into(), json!("service_user"));
            row.insert("admin".into(), json!(id % 2 == 0));
        }
        row.insert("created_at".into(), json!(time(id)));
        row.insert("updated_at".into(), json!(time(-id)));
        row.insert(
            "last_activity_on".into(),
            if id % 3 == 0 {
                serde_json::Value::Null
            } else {
                json!(format!("2026-{:02}-{:02}", id % 12 + 1, id % 28 + 1))
            },
        );
        rows.push(("users", row));
    }
    for (id, awkward) in (1_i64..).zip(AWKWARD) {
        let nullable = |value: &str| {
            if id % 2 == 0 {
                serde_json::Value::Null
            } else {
                json!(value)
            }
        };
        let mut row = serde_json::Map::new();
        row.insert("id".into(), json!(id));
        row.insert("kind".into(), json!(awkward));
        row.insert(
            "unique_key".into(),
            nullable(&format!("key {id} {awkward}")),
        );
        row.insert("run_at".into(), json!(time(id)));
        row.insert("state".into(), json!("failed"));
        row.insert("attempts".into(), json!(id));
        row.insert("locked_until".into(), nullable(&time(2 * id)));
        row.insert("last_error".into(), nullable(awkward));
        row.insert("created_at".into(), json!(time(3 * id)));
        row.insert("finished_at".into(), serde_json::Value::Null);
        row.insert(
            "subject_id".into(),
            if id % 3 == 0 {
                json!(id)
            } else {
                serde_json::Value::Null
            },
        );
        rows.push(("jobs", row));
    }
    rows
}

fn write_backup(
    path: &std::path::Path,
    schema_version: i64,
    rows: &[(&str, serde_json::Map<String, serde_json::Value>)],
) {
    let mut text = json!({"format": "gitlab-license-server-backup", "version": 1,
                          "schema_version": schema_version})
    .to_string();
    for (table, row) in rows {
        text.push('\n');
        text.push_str(&json!({"table": table, "row": row}).to_string());
    }
    text.push('\n');
    text.push_str(&json!({"end": true, "rows": rows.len()}).to_string());
    text.push('\n');
    std::fs::write(path, text).expect("write the backup");
}

/// The rows of a backup file, keyed by table and id.
fn backup_rows(
    path: &std::path::Path,
) -> std::collections::BTreeMap<(String, i64), serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path).expect("read the backup");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let table = value["table"].as_str()?.to_string();
            let row = value["row"].as_object()?.clone();
            Some(((table, row["id"].as_i64().expect("an id")), row))
        })
        .collect()
}

async fn a_restore_of_many_batches_keeps_every_value(app: TestApp) {
    let rows = awkward_rows();
    let file = app.data_dir.join("awkward.backup");
    write_backup(&file, app.state.store.schema_version(), &rows);
    let target = ScratchDatabase::new(app.backend, &app.data_dir).await;
    let restored = cli(
        &["backup", "restore", &file.display().to_string()],
        &target.url,
    );
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(String::from_utf8_lossy(&restored.stdout)
        .contains(&format!("restored {} rows", rows.len())));

    // What comes back out is what went in, with the defaults in the columns rows lacked.
    let again = app.data_dir.join("again.backup");
    let made = cli(
        &["backup", "create", &again.display().to_string()],
        &target.url,
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = backup_rows(&again);
    assert_eq!(out.len(), rows.len());
    for (table, mut row) in rows {
        if table == "users" && !row.contains_key("state") {
            row.insert("state".into(), json!("active"));
            row.insert("user_type".into(), json!("human"));
            row.insert("admin".into(), json!(false));
        }
        let id = row["id"].as_i64().expect("id");
        assert_eq!(
            out.get(&(table.to_string(), id)),
            Some(&row),
            "{table} {id} comes back as it went in"
        );
    }
    // The user search (on SQLite an index kept by triggers) finds restored names.
    let store = Store::connect(&target.url, Some(1)).await.expect("connect");
    let filter = gitlab_license_server::store::UserFilter {
        search: Some("日本語".into()),
        ..Default::default()
    };
    let found = store
        .list_users(&filter, ("id", "ASC"), 0, 20)
        .await
        .expect("search");
    let unicode = AWKWARD.len() as i64 - 3;
    assert_eq!(
        found.rows.iter().map(|user| user.id).collect::<Vec<_>>(),
        (0..20)
            .map(|n| unicode + n * AWKWARD.len() as i64)
            .collect::<Vec<_>>()
    );
    store.close().await;
    // PostgreSQL creates the secondary indexes and the foreign keys after the rows: the same
    // ones come back.
    if app.backend == Backend::Postgres {
        assert_eq!(
            postgres_indexes(&target.url).await,
            postgres_indexes(&app.database_url).await
        );
    }
}

/// Every index and constraint of a PostgreSQL database, as the statements that define them.
async fn postgres_indexes(url: &str) -> Vec<(String, String)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let indexes = sqlx::query_as(
        "SELECT indexname::TEXT, indexdef FROM pg_indexes WHERE schemaname = current_schema()
         UNION ALL
         SELECT conname::TEXT, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE connamespace = current_schema()::regnamespace
         ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .expect("indexes");
    conn.close().await.expect("close");
    indexes
}

async fn a_bad_row_deep_in_a_bulk_restore_restores_nothing(app: TestApp) {
    let mut rows = awkward_rows();
    // In the second batch on SQLite; mid-stream of the COPY on PostgreSQL.
    rows[5000].1.insert("admin".into(), json!("yes"));
    let file = app.data_dir.join("bad.backup");
    write_backup(&file, app.state.store.schema_version(), &rows);
    let target = ScratchDatabase::new(app.backend, &app.data_dir).await;
    let refused = cli(
        &["backup", "restore", &file.display().to_string()],
        &target.url,
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("backup row of users: `admin` is not a valid Bool"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let store = Store::connect(&target.url, Some(1)).await.expect("connect");
    assert!(store
        .find_user_by_username("u1-tab\there")
        .await
        .expect("db")
        .is_none());
    store.close().await;
    // The indexes and foreign keys dropped for the rows' sake come back with the rollback.
    if app.backend == Backend::Postgres {
        assert_eq!(
            postgres_indexes(&target.url).await,
            postgres_indexes(&app.database_url).await
        );
    }

    // A membership of a user the backup does not hold: the foreign key refuses it, whether
    // it checks each row (SQLite) or all of them once the rows are in (PostgreSQL).
    let mut rows = awkward_rows();
    let mut member = serde_json::Map::new();
    member.insert("id".into(), json!(1));
    member.insert("user_id".into(), json!(1_000_000));
    member.insert("source_type".into(), json!("Namespace"));
    member.insert("source_id".into(), json!(1));
    member.insert("access_level".into(), json!(30));
    member.insert("created_at".into(), json!("2026-06-15T10:30:00Z"));
    rows.insert(rows.len() - AWKWARD.len(), ("members", member));
    write_backup(&file, app.state.store.schema_version(), &rows);
    let dangling = cli(
        &["backup", "restore", &file.display().to_string()],
        &target.url,
    );
    assert!(!dangling.status.success());
    assert!(
        String::from_utf8_lossy(&dangling.stderr).contains("FOREIGN KEY")
            || String::from_utf8_lossy(&dangling.stderr).contains("foreign key"),
        "{}",
        String::from_utf8_lossy(&dangling.stderr)
    );
    let store = Store::connect(&target.url, Some(1)).await.expect("connect");
    assert!(store
        .find_user_by_username("u1-tab\there")
        .await
        .expect("db")
        .is_none());
    store.close().await;
    if app.backend == Backend::Postgres {
        assert_eq!(
            postgres_indexes(&target.url).await,
            postgres_indexes(&app.database_url).await
        );
    }
}
