//! Backups: SQLite → PostgreSQL and back with every endpoint answering the same afterwards;
//! refusal of non-empty targets, `--force`, and damaged files.

use gitlab_license_server::store::Write;
use serde_json::json;

use crate::on_both_backends;
use crate::support::app::{Backend, ScratchDatabase, TestApp, ROOT_TOKEN};
use crate::support::process::binary;
use gitlab_license_server::store::{HistoryRow, NewGroup, NewUser, Store};

on_both_backends!(
    a_backup_moves_an_instance_to_the_other_backend,
    the_backup_tables_are_the_schema_tables
);

fn other(backend: Backend) -> Backend {
    match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    }
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
