//! The fleet from the command line (`fleet add|list|sync|summary|import|remove`, as the
//! administrator in `GITLAB_TOKEN`), and docs/fleet.md's one-line export recipe run against a
//! real server process, its file imported as an offline instance.

use std::path::Path;
use std::process::Output;

use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, TestApp, ROOT_TOKEN};
use crate::support::licenses::premium_today;
use crate::support::process::binary;
use crate::support::server::ServerProcess;

/// Runs `fleet <args>` against the fleet server's database as root.
fn fleet_cli(fleet: &TestApp, args: &[&str]) -> Output {
    binary()
        .arg("fleet")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &fleet.database_url)
        .env("DATA_DIR", &fleet.data_dir)
        .env(
            "LICENSE_PUBLIC_KEY_FILE",
            crate::support::vectors_dir().join("public_key.pem"),
        )
        .env("GITLAB_TOKEN", ROOT_TOKEN)
        .output()
        .expect("the binary runs")
}

fn succeeded(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

/// An upstream server process (its `Link` headers name a reachable host, as a real GitLab's
/// do) with a license and `users` users besides root.
async fn upstream_process(users: usize) -> ServerProcess {
    let upstream = ServerProcess::start(Backend::Sqlite, &[]).await;
    upstream.upload(&premium_today(500)).await;
    for index in 0..users {
        let reply = upstream
            .json_as_root(
                Method::POST,
                "/api/v4/users",
                &json!({"username": format!("u{index}"), "name": format!("U {index}"), "email": format!("u{index}@example.org")}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    upstream
}

async fn the_cli_manages_the_fleet(backend: Backend) {
    let fleet = TestApp::start(backend, &[]).await;
    let upstream = upstream_process(3).await;
    let token_file = fleet.data_dir.join("prod.token");
    std::fs::write(&token_file, format!("{ROOT_TOKEN}\n")).expect("token file");
    let token_path = token_file.display().to_string();
    let added = succeeded(&fleet_cli(
        &fleet,
        &["add", "prod", &upstream.base, "--token-file", &token_path],
    ));
    assert_eq!(added["name"], "prod");
    assert_eq!(added["token_set"], true);
    let output = fleet_cli(
        &fleet,
        &["add", "prod", &upstream.base, "--token-file", &token_path],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
    let listed = succeeded(&fleet_cli(&fleet, &["list"]));
    assert_eq!(listed[0]["last_sync"]["status"], "never");
    // The CLI runs the sync itself and prints how it ended.
    let synced = succeeded(&fleet_cli(&fleet, &["sync", "prod"]));
    assert_eq!(synced[0]["last_sync"]["status"], "success", "{synced}");
    assert_eq!(synced[0]["users"], 4);
    let summary = succeeded(&fleet_cli(&fleet, &["summary"]));
    assert_eq!(summary["unique_billable_users"], 4);
    assert_eq!(summary["largest_instance"], "prod");
    assert_eq!(fleet.get("/api/v4/-/fleet/summary").await.json(), summary);
    let everything = [
        String::from_utf8_lossy(&fleet_cli(&fleet, &["list"]).stdout).into_owned(),
        serde_json::to_string(&synced).unwrap_or_default(),
    ]
    .concat();
    assert!(!everything.contains(ROOT_TOKEN));
    // Without an administrator's token nothing is done.
    let refused = binary()
        .args(["fleet", "list"])
        .env("DATABASE_URL", &fleet.database_url)
        .env(
            "LICENSE_PUBLIC_KEY_FILE",
            crate::support::vectors_dir().join("public_key.pem"),
        )
        .env("GITLAB_TOKEN", "glpat-not-a-token-of-this-server-00")
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    let removed = fleet_cli(&fleet, &["remove", "prod"]);
    assert!(removed.status.success());
    assert_eq!(
        fleet.get("/api/v4/-/fleet/instances").await.json(),
        json!([])
    );
    assert!(!fleet_cli(&fleet, &["sync", "prod"]).status.success());
}

/// docs/fleet.md's export line, for `base` and `token`, writing into `dir`.
fn export_recipe(base: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/fleet.md"))
        .expect("docs/fleet.md");
    doc.lines()
        .find(|line| line.starts_with("u=\"https://gitlab.example.com/api/v4/users"))
        .expect("the recipe is in docs/fleet.md")
        .replace("https://gitlab.example.com", base)
}

async fn the_documented_export_recipe_imports(backend: Backend) {
    let fleet = TestApp::start(backend, &[]).await;
    // 150 users and root: two pages of keyset links to follow.
    let upstream = upstream_process(150).await;
    let dir = fleet.data_dir.join("export");
    std::fs::create_dir_all(&dir).expect("dir");
    let recipe = export_recipe(&upstream.base);
    let exported = std::process::Command::new("bash")
        .arg("-c")
        .arg(&recipe)
        .current_dir(&dir)
        .env("TOKEN", ROOT_TOKEN)
        .output()
        .expect("bash runs");
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let file = dir.join("gitlab-export.json").display().to_string();
    let report = succeeded(&fleet_cli(&fleet, &["import", "airgap", &file]));
    assert_eq!(report["users_read"], 151, "{report}");
    assert_eq!(report["license_found"], true);
    assert_eq!(report["instance"]["offline"], true);
    assert_eq!(report["instance"]["billable_users"], 151);
    assert_eq!(report["instance"]["license"]["seats"], 500);
    assert_eq!(report["instance"]["billability_source"], "instance");
    let summary = fleet.get("/api/v4/-/fleet/summary").await.json();
    assert_eq!(summary["unique_billable_users"], 151);
    // A second import replaces the snapshot (users gone from the file are gone).
    let smaller = dir.join("smaller.json");
    // A user listed twice keeps the later copy.
    std::fs::write(
        &smaller,
        r#"[{"id": 1, "username": "root", "email": "admin@example.com", "using_license_seat": true}]
[{"id": 1, "username": "root", "email": "root@later.example", "using_license_seat": true}]"#,
    )
    .expect("write");
    let report = succeeded(&fleet_cli(
        &fleet,
        &["import", "airgap", &smaller.display().to_string()],
    ));
    assert_eq!(report["instance"]["users"], 1);
    assert_eq!(report["users_read"], 1);
    let people = fleet.get("/api/v4/-/fleet/people").await.json();
    assert_eq!(people[0]["person"], "root@later.example", "{people}");
    // A file that is not GitLab's JSON is refused and changes nothing.
    std::fs::write(&smaller, "id,username\n1,root\n").expect("write");
    let refused = fleet_cli(
        &fleet,
        &["import", "airgap", &smaller.display().to_string()],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not GitLab's users list"));
    assert_eq!(
        fleet.get("/api/v4/-/fleet/summary").await.json()["unique_billable_users"],
        1
    );
}

on_both_backends_as_processes!(
    the_cli_manages_the_fleet,
    the_documented_export_recipe_imports
);
