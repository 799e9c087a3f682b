//! Benchmark: the billable-user count (one SQL aggregate) over a large directory.
//!
//!     cargo run --release --example billable_count -- DATABASE_URL [USERS]
//!
//! Fills an empty database with USERS users (default 1,000,000) of mixed types and states,
//! half of them group members above Guest, then times `count_billable_users` for a premium
//! (every active human/service user) and an Ultimate (members above Guest only) license.
//! `scripts/bench-billable.sh` runs it on SQLite and PostgreSQL.

use std::time::Instant;

use chrono::Utc;
use gitlab_license_server::store::Store;

/// Bulk-loads users and memberships in one statement each (benchmark scaffolding only).
async fn fill(url: &str, users: i64) -> Result<(), sqlx::Error> {
    let users_sql = "INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
         SELECT 'u' || n, 'User ' || n, 'u' || n || '@example.org',
                CASE WHEN n % 10 = 0 THEN 'blocked' WHEN n % 17 = 0 THEN 'deactivated' ELSE 'active' END,
                CASE WHEN n % 13 = 0 THEN 'project_bot' WHEN n % 29 = 0 THEN 'service_user' ELSE 'human' END,
                FALSE, $2, $2
         FROM numbers";
    let members_sql =
        "INSERT INTO members (user_id, source_type, source_id, access_level, created_at)
         SELECT id, 'Namespace', 1, CASE WHEN id % 4 = 0 THEN 10 ELSE 30 END, $1
         FROM users WHERE id % 2 = 0";
    let now = Utc::now();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await?;
        let sql = format!(
            "WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < $1) {users_sql}"
        );
        sqlx::query(&sql)
            .bind(users)
            .bind(now)
            .execute(&pool)
            .await?;
        sqlx::query(members_sql).bind(now).execute(&pool).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
    } else {
        let pool = sqlx::PgPool::connect(url).await?;
        let sql = format!("WITH numbers AS (SELECT generate_series(1, $1) AS n) {users_sql}");
        sqlx::query(&sql)
            .bind(users)
            .bind(now)
            .execute(&pool)
            .await?;
        sqlx::query(members_sql).bind(now).execute(&pool).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `RUST_LOG=sqlx::query=debug` shows each statement and its time (where a recount's
    // time goes).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: billable_count DATABASE_URL [USERS]")?;
    let users: i64 = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let store = Store::connect(&url, Some(2)).await?;
    store.migrate().await?;
    let started = Instant::now();
    fill(&url, users).await?;
    println!(
        "loaded {users} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (plan, ultimate) in [("premium", false), ("ultimate", true)] {
        let mut timings = Vec::new();
        let mut count = 0;
        for _ in 0..5 {
            let started = Instant::now();
            count = store.count_billable_users(ultimate).await?;
            timings.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        timings.sort_by(f64::total_cmp);
        println!(
            "{plan}: {count} billable of {users}; median {:.0} ms (min {:.0}, max {:.0}) over 5 counts",
            timings[2], timings[0], timings[4]
        );
    }
    ledger(&store, &url, users).await?;
    store.close().await;
    Ok(())
}

/// The recount with the seat ledger: its baseline (once), a recount with nothing changed, and
/// one after 1,000 users were blocked — each the count plus the commit of its measurement and
/// ledger entries, beside the count alone.
async fn ledger(store: &Store, url: &str, users: i64) -> Result<(), Box<dyn std::error::Error>> {
    let mut at = Utc::now();
    let mut recount = |label: &'static str| {
        at += chrono::TimeDelta::seconds(1);
        let recorded_at = at;
        async move {
            let started = Instant::now();
            let count = store.count_billable_users(false).await?;
            let counted = started.elapsed().as_secs_f64() * 1000.0;
            store
                .record_recount(count, recorded_at, Some("premium"))
                .await?;
            let total = started.elapsed().as_secs_f64() * 1000.0;
            println!(
                "{label}: count {counted:.0} ms, with the ledger {total:.0} ms ({:.2}x)",
                total / counted
            );
            Ok::<(), Box<dyn std::error::Error>>(())
        }
    };
    recount("ledger baseline (once, every user)").await?;
    for _ in 0..3 {
        recount("recount, nothing changed").await?;
    }
    let block = format!(
        "UPDATE users SET state = 'blocked' WHERE state = 'active' AND id % {} = 1",
        (users / 1000).max(1)
    );
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await?;
        sqlx::query(&block).execute(&pool).await?;
    } else {
        let pool = sqlx::PgPool::connect(url).await?;
        sqlx::query(&block).execute(&pool).await?;
    }
    recount("recount after ~1,000 users were blocked").await?;
    Ok(())
}
