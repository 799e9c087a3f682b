//! A directory too large to count on every page or to scan: lists leave out totals above
//! 10,000 (as GitLab does), and the statements the list endpoints run are served by indexes —
//! proved with the planners' own plans on both backends, never with timings.

use gitlab_license_server::store::{Store, UserFilter};

use crate::on_both_backends;
use crate::support::app::{Backend, TestApp};

/// Adds `count` active human users (`bulk1`, `bulk2`, …) in one statement, then refreshes the
/// planner's statistics as an administrator would after a bulk load.
async fn seed_users(app: &TestApp, count: i64) {
    app.execute_sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})
         INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
         SELECT 'bulk' || i, 'Bulk ' || i, 'bulk' || i || '@example.com', 'active', 'human',
                FALSE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
         FROM n"
    ))
    .await;
    app.state.store.analyze().await.expect("analyze");
}

on_both_backends!(lists_above_ten_thousand_leave_out_their_totals);

async fn lists_above_ten_thousand_leave_out_their_totals(app: TestApp) {
    seed_users(&app, 10_001).await;
    let first = app.get("/api/v4/users?per_page=2").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json().as_array().map(Vec::len), Some(2));
    assert_eq!(first.header("x-total"), None);
    assert_eq!(first.header("x-total-pages"), None);
    assert_eq!(first.header("x-next-page"), Some("2"));
    assert_eq!(first.header("x-page"), Some("1"));
    let links = first.header("link").expect("link");
    assert!(links.contains("rel=\"next\"") && links.contains("rel=\"first\""));
    assert!(!links.contains("rel=\"last\""), "{links}");
    // The last page (root and 10,001 others, 100 a page): no next page, and still no total.
    let last = app.get("/api/v4/users?per_page=100&page=101").await;
    assert_eq!(last.json().as_array().map(Vec::len), Some(2));
    assert_eq!(last.header("x-next-page"), Some(""));
    assert_eq!(last.header("x-prev-page"), Some("100"));
    assert_eq!(last.header("x-total"), None);
    // A filter that matches few is counted as before.
    let one = app.get("/api/v4/users?username=BULK77").await;
    assert_eq!(one.header("x-total"), Some("1"));
    assert_eq!(one.header("x-total-pages"), Some("1"));
    assert!(one
        .header("link")
        .is_some_and(|links| links.contains("rel=\"last\"")));
}

/// What the planner does with the users list, in its words.
async fn users_plan(
    app: &TestApp,
    filter: &UserFilter,
    order: (&'static str, &'static str),
) -> String {
    let (sql, args) = Store::list_users_sql(filter, order);
    app.state
        .store
        .query_plan(&sql, &args, &[21, 0])
        .await
        .expect("plan")
}

on_both_backends!(user_lists_are_served_by_indexes);

async fn user_lists_are_served_by_indexes(app: TestApp) {
    seed_users(&app, 20_000).await;
    let by_username = UserFilter {
        username: Some("Bulk765".into()),
        ..UserFilter::default()
    };
    let plan = users_plan(&app, &by_username, ("id", "DESC")).await;
    assert!(plan.contains("users_username_unique"), "{plan}");
    // The default page walks the primary key backwards and stops at the limit: no sort of
    // every row.
    let plan = users_plan(&app, &UserFilter::default(), ("id", "DESC")).await;
    match app.backend {
        Backend::Sqlite => assert!(!plan.contains("TEMP B-TREE"), "{plan}"),
        Backend::Postgres => assert!(
            plan.contains("Index Scan Backward using users_pkey"),
            "{plan}"
        ),
    }
}

on_both_backends!(keyset_pages_walk_every_user_once);

/// `pagination=keyset`: each page links the next through its cursor until the last, every
/// user comes exactly once, and the cursor's statement is served by the primary key.
async fn keyset_pages_walk_every_user_once(app: TestApp) {
    seed_users(&app, 250).await;
    let mut path = "/api/v4/users?pagination=keyset&order_by=id&sort=asc&per_page=100".to_string();
    let mut seen: Vec<i64> = Vec::new();
    let mut pages = 0;
    loop {
        let reply = app.get(&path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.header("x-total"), None);
        seen.extend(
            reply
                .json()
                .as_array()
                .expect("users")
                .iter()
                .filter_map(|user| user["id"].as_i64()),
        );
        pages += 1;
        let Some(link) = reply.header("link") else {
            break;
        };
        assert!(link.ends_with("rel=\"next\""), "{link}");
        let start = link.find("/api/v4/users?").expect("a users link");
        let end = link.find('>').expect("link end");
        path = link[start..end].to_string();
        assert!(path.contains("cursor="), "{path}");
        assert!(pages < 10, "the pages never end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 251, "root and the 250 seeded users");
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "ascending, no repeats"
    );
    // Newest first by default.
    let desc = app.get("/api/v4/users?pagination=keyset&per_page=5").await;
    let ids: Vec<i64> = desc
        .json()
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|user| user["id"].as_i64())
        .collect();
    assert_eq!(ids.first().copied(), seen.last().copied());
    // A cursor that is not one, and an order keyset paging does not serve here.
    let bad = app
        .get("/api/v4/users?pagination=keyset&cursor=nonsense")
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let by_name = app
        .get("/api/v4/users?pagination=keyset&order_by=name")
        .await;
    assert_eq!(by_name.status, 405, "{}", by_name.body);
    assert_eq!(
        by_name.json()["message"],
        "Keyset pagination is not yet available for this type of request"
    );
    // The page after a cursor is found through the primary key, at any depth.
    let (sql, args) = Store::users_by_id_sql(&UserFilter::default(), true, true);
    let plan = app
        .state
        .store
        .query_plan(&sql, &args, &[100, 21])
        .await
        .expect("plan");
    match app.backend {
        Backend::Sqlite => assert!(plan.contains("INTEGER PRIMARY KEY"), "{plan}"),
        Backend::Postgres => assert!(plan.contains("users_pkey"), "{plan}"),
    }
}
