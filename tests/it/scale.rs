//! A directory too large to count on every page or to scan: lists leave out totals above
//! 10,000 (as GitLab does), and the statements the list endpoints run are served by indexes —
//! proved with the planners' own plans on both backends, never with timings.

use gitlab_license_server::store::UserFilter;

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
    let (sql, args) = app.state.store.list_users_sql(filter, order);
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
    let (sql, args) = app
        .state
        .store
        .users_by_id_sql(&UserFilter::default(), true, true);
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

on_both_backends!(search_follows_gitlabs_rules_alike_on_both_backends);

/// Three characters or more match part of a username or name, fewer match exactly, e-mail
/// addresses match whole; a leading `@` is dropped — the same rows in the same order on both
/// backends.
async fn search_follows_gitlabs_rules_alike_on_both_backends(app: TestApp) {
    use gitlab_license_server::store::NewUser;
    for (username, name, email) in [
        ("ada", "Ada Lovelace", "ada@example.com"),
        ("adam", "Adam Smith", "adam@example.org"),
        ("grace", "Grace Hopper", "hopper@navy.example"),
        ("al", "Al", "al@example.com"),
        ("ed", "Edsger Dijkstra", "ewd@example.net"),
    ] {
        let mut user = NewUser::human(username, false);
        user.name = name.into();
        user.email = email.into();
        app.add_user(user).await;
    }
    let app = &app;
    let names = |path: String| async move {
        let reply = app.get(&path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply
            .json()
            .as_array()
            .expect("users")
            .iter()
            .filter_map(|user| user["username"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let search = |term: &str| format!("/api/v4/users?order_by=username&sort=asc&search={term}");
    assert_eq!(names(search("ADA")).await, ["ada", "adam"]);
    assert_eq!(names(search("%40ada")).await, ["ada", "adam"], "@ada");
    assert_eq!(names(search("lovelace")).await, ["ada"]);
    assert_eq!(names(search("hopp")).await, ["grace"]);
    // Two characters: whole usernames or names only.
    assert_eq!(names(search("al")).await, ["al"]);
    assert!(names(search("ad")).await.is_empty());
    // E-mail: the whole address, never a part of it.
    assert_eq!(names(search("hopper%40navy.example")).await, ["grace"]);
    assert!(names(search("navy.example")).await.is_empty());
    assert!(names(search("example.com")).await.is_empty());
    // Quotes and wildcards are plain characters.
    assert!(names(search("%22ad%22")).await.is_empty());
    assert!(names(search("a%25a")).await.is_empty());
}

on_both_backends!(search_is_served_by_indexes);

/// Enough rows that PostgreSQL's planner prefers the trigram indexes to reading the table
/// (at 20,000 a scan is honestly cheaper there).
async fn search_is_served_by_indexes(app: TestApp) {
    seed_users(&app, 100_000).await;
    for term in ["bulk76543", "bu", "bulk7@example.com"] {
        let filter = UserFilter {
            search: Some(term.into()),
            ..UserFilter::default()
        };
        let plan = users_plan(&app, &filter, ("id", "DESC")).await;
        match app.backend {
            Backend::Sqlite => {
                assert!(
                    !plan.lines().any(|line| line.trim() == "SCAN users"),
                    "{term}: {plan}"
                );
                if term.len() >= 3 {
                    assert!(plan.contains("users_search"), "{term}: {plan}");
                }
            }
            Backend::Postgres => {
                assert!(!plan.contains("Seq Scan on users"), "{term}: {plan}");
                let index = if term.len() >= 3 {
                    "users_username_trigram"
                } else {
                    "users_username_unique"
                };
                assert!(plan.contains(index), "{term}: {plan}");
            }
        }
    }
}

on_both_backends!(missing_search_indexes_are_reported_and_added_once_possible);

/// Without pg_trgm (a database user that may not install it) search still answers, and the
/// store says so; once a superuser installs it, the indexes are created at the next start.
async fn missing_search_indexes_are_reported_and_added_once_possible(app: TestApp) {
    let store = &app.state.store;
    if app.backend == Backend::Sqlite {
        assert!(store.ensure_search_indexes().await.expect("check"));
        return;
    }
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("connect");
    let trigram_indexes = "SELECT COUNT(*) FROM pg_indexes WHERE indexname LIKE 'users_%_trigram'";
    app.execute_sql("DROP EXTENSION pg_trgm CASCADE").await;
    let count: i64 = sqlx::query_scalar(trigram_indexes)
        .fetch_one(&mut connection)
        .await
        .expect("count");
    assert_eq!(count, 0);
    assert!(!store.ensure_search_indexes().await.expect("check"));
    let found = app.get("/api/v4/users?search=roo").await;
    assert_eq!(
        found.json()[0]["username"],
        "root",
        "search works without them"
    );
    app.execute_sql("CREATE EXTENSION pg_trgm").await;
    assert!(store.ensure_search_indexes().await.expect("check"));
    let count: i64 = sqlx::query_scalar(trigram_indexes)
        .fetch_one(&mut connection)
        .await
        .expect("count");
    assert_eq!(count, 2);
}

on_both_backends!(the_planner_gets_statistics_after_a_bulk_load);

/// SQLite gathers no statistics by itself: start-up (`migrate`) runs `PRAGMA optimize`, which
/// analyses a table that grew; a restore analyses everything (both backends).
async fn the_planner_gets_statistics_after_a_bulk_load(app: TestApp) {
    use sqlx::Connection as _;
    app.execute_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
         INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
         SELECT 'load' || i, 'Load ' || i, 'load' || i || '@example.com', 'active', 'human',
                FALSE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
         FROM n",
    )
    .await;
    match app.backend {
        Backend::Sqlite => {
            app.state.store.migrate().await.expect("migrate");
            let mut connection = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("connect");
            let rows: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'users'")
                    .fetch_one(&mut connection)
                    .await
                    .expect("sqlite_stat1");
            assert!(rows > 0, "no statistics for users after start-up");
        }
        Backend::Postgres => {
            app.state.store.analyze().await.expect("analyze");
            let mut connection = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connect");
            let analysed: bool = sqlx::query_scalar(
                "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'users'",
            )
            .fetch_one(&mut connection)
            .await
            .expect("pg_stat_user_tables");
            assert!(analysed);
        }
    }
}

on_both_backends!(member_pages_are_served_by_an_index);

/// A page of a group's members is read in id order from the group's index, not sorted, beside
/// a group with 20,000 members.
async fn member_pages_are_served_by_an_index(app: TestApp) {
    seed_users(&app, 20_000).await;
    let big = app.add_group("big").await;
    let small = app.add_group("small").await;
    app.execute_sql(&format!(
        "INSERT INTO members (user_id, source_type, source_id, access_level, created_at)
         SELECT id, 'Namespace', {}, 30, CURRENT_TIMESTAMP FROM users;
         INSERT INTO members (user_id, source_type, source_id, access_level, created_at)
         SELECT id, 'Namespace', {}, 30, CURRENT_TIMESTAMP FROM users WHERE id % 200 = 0",
        big.id, small.id
    ))
    .await;
    app.state.store.analyze().await.expect("analyze");
    let sql = format!(
        "{} ORDER BY m.id LIMIT $2 OFFSET $3",
        gitlab_license_server::store::MEMBER_SELECT
    );
    let plan = app
        .state
        .store
        .query_plan(&sql, &[], &[small.id, 20, 0])
        .await
        .expect("plan");
    assert!(plan.contains("members_source_id"), "{plan}");
    assert!(
        !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
        "{plan}"
    );
    let page = app.get(&format!("/api/v4/groups/{}/members", big.id)).await;
    assert_eq!(page.json().as_array().map(Vec::len), Some(20));
    assert_eq!(
        page.header("x-total"),
        None,
        "20,001 members: above the count cap"
    );
}

on_both_backends!(billable_member_pages_are_served_by_an_index);

/// A page of a large group's billable members (in GitLab's default id order) is read from the
/// group's membership index, not sorted — and owners are looked for only on owners' rows.
async fn billable_member_pages_are_served_by_an_index(app: TestApp) {
    seed_users(&app, 20_000).await;
    let big = app.add_group("big").await;
    app.execute_sql(&format!(
        "INSERT INTO members (user_id, source_type, source_id, access_level, created_at)
         SELECT id, 'Namespace', {}, 30, CURRENT_TIMESTAMP FROM users",
        big.id
    ))
    .await;
    app.state.store.analyze().await.expect("analyze");
    let sql = app.state.store.billable_members_page_sql(
        gitlab_license_server::domain::members::BillableMemberSort::IdAsc,
    );
    let plan = app
        .state
        .store
        .query_plan(&sql, &[], &[big.id, 10, 21, 0])
        .await
        .expect("plan");
    // Members are reached through an index that gives them in user order (the group's unique
    // (source_type, source_id, user_id) index, or on PostgreSQL, when every member is in
    // this group, the (user_id, access_level) one): no sort of the group.
    match app.backend {
        Backend::Sqlite => assert!(plan.contains("sqlite_autoindex_members_1"), "{plan}"),
        Backend::Postgres => assert!(plan.contains("Index Scan using members_"), "{plan}"),
    }
    assert!(
        !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
        "{plan}"
    );
    let page = app
        .get(&format!("/api/v4/groups/{}/billable_members", big.id))
        .await;
    assert_eq!(page.json().as_array().map(Vec::len), Some(20));
    assert_eq!(page.header("x-total"), None, "above 10,000: not counted");

    // A bulk Duo assignment to a group over 10,000 members is refused, not answered with a
    // report of every member.
    app.execute_sql(
        "INSERT INTO add_on_purchases (add_on_name, namespace_id, quantity, started_on, expires_on,
                                       trial, created_at, updated_at)
         VALUES ('code_suggestions', NULL, 10, '2026-01-01', '2099-01-01', FALSE,
                 CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    )
    .await;
    let refused = app
        .send_with(
            app.client
                .post(app.url("/api/v4/-/duo_seats/assign"))
                .json(&serde_json::json!({"add_on_purchase_id": 1, "group": "big"})),
            Some(crate::support::app::ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        (refused.status, refused.json()),
        (
            reqwest::StatusCode::BAD_REQUEST,
            serde_json::json!({"message": "big has more than 10000 members from that role: assign by a higher role, or by lists of up to 10000 users"})
        )
    );
}

on_both_backends!(fleet_people_lists_are_served_by_indexes);

/// The fleet's people list, with each filter, reads person keys in order from an index and
/// stops at the page: no scan of every account, no sort (docs/fleet.md).
async fn fleet_people_lists_are_served_by_indexes(app: TestApp) {
    use gitlab_license_server::store::PeopleFilter;
    let now = "'2026-06-15T10:30:00Z'";
    app.execute_sql(&format!(
        "INSERT INTO fleet_instances (name, url, sync_status, created_at, updated_at, last_success_at)
         VALUES ('a', 'http://a', 'success', {now}, {now}, {now}), ('b', 'http://b', 'success', {now}, {now}, {now}),
                ('c', 'http://c', 'success', {now}, {now}, {now})"
    ))
    .await;
    let rows: Vec<String> = (1..=30_000)
        .map(|i| {
            format!(
                "({}, {i}, 'u{i}', 'U', 'u{i}@example.com', 'active', FALSE, FALSE, {}, '', 'u{i:06}@example.com', {}, {})",
                i % 3 + 1,
                if i % 10 == 0 { "FALSE" } else { "TRUE" },
                if i % 10 == 0 { "FALSE" } else { "TRUE" },
                if i % 50 == 0 { "TRUE" } else { "FALSE" },
            )
        })
        .collect();
    for chunk in rows.chunks(5_000) {
        app.execute_sql(&format!(
            "INSERT INTO fleet_users (instance_id, upstream_id, username, name, email, state, bot, is_admin, billable, identities, person_key, person_billable, person_outside_largest) VALUES {}",
            chunk.join(", ")
        ))
        .await;
    }
    app.state.store.analyze().await.expect("analyze");
    // A filter most accounts pass (an instance holding a third of them, billable people) may
    // be read through the person index, stopping at the page; a rare one (outside the
    // largest instance: one account in fifty) must be read through its own.
    for (filter, indexes) in [
        (PeopleFilter::default(), &["fleet_users_person"][..]),
        (
            PeopleFilter {
                instance_id: Some(2),
                ..PeopleFilter::default()
            },
            &["fleet_users_instance_person", "fleet_users_person"][..],
        ),
        (
            PeopleFilter {
                billable: Some(true),
                ..PeopleFilter::default()
            },
            &["fleet_users_billable_person", "fleet_users_person"][..],
        ),
        (
            PeopleFilter {
                outside_largest: Some(true),
                ..PeopleFilter::default()
            },
            &["fleet_users_outside_person"][..],
        ),
    ] {
        let plan = app
            .state
            .store
            .fleet_people_plan(filter)
            .await
            .expect("plan");
        assert!(
            indexes.iter().any(|index| plan.contains(index)),
            "{filter:?}: {plan}"
        );
        assert!(
            !plan.contains("TEMP B-TREE") && !plan.contains("Sort") && !plan.contains("Seq Scan"),
            "{filter:?}: {plan}"
        );
    }
}

on_both_backends!(scim_lookups_are_served_by_indexes);

/// The instance SCIM API's lookups — an identity by `extern_uid` (Okta's and Entra's `eq`
/// filters, every PATCH and DELETE), by user, a page of identities, a group by name or id —
/// read through an index, never a scan of every identity or a sort (docs/scim.md).
async fn scim_lookups_are_served_by_indexes(app: TestApp) {
    seed_users(&app, 20_000).await;
    app.execute_sql(
        "INSERT INTO scim_identities (user_id, extern_uid, active, created_at, updated_at)
         SELECT id, 'uid-' || id, TRUE, created_at, updated_at FROM users",
    )
    .await;
    let groups: Vec<String> = (1..=2_000)
        .map(|n| format!("('{n:08}-0000-4000-8000-000000000000', 'Group {n}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"))
        .collect();
    app.execute_sql(&format!(
        "INSERT INTO scim_groups (scim_id, display_name, created_at, updated_at) VALUES {}",
        groups.join(", ")
    ))
    .await;
    app.execute_sql(
        "INSERT INTO scim_group_members (scim_group_id, user_id, created_at)
         SELECT g.id, u.id, u.created_at FROM users u JOIN scim_groups g ON g.id = u.id % 2000 + 1",
    )
    .await;
    app.state.store.analyze().await.expect("analyze");
    for (lookup, plan) in app.state.store.scim_plans().await.expect("plans") {
        assert!(
            plan.contains("USING INDEX")
                || plan.contains("USING COVERING INDEX")
                || plan.contains("USING INTEGER PRIMARY KEY")
                || plan.contains("Index Scan")
                || plan.contains("Index Only Scan")
                || plan.contains("Bitmap Index Scan")
                || (lookup == "a page"
                    && plan.starts_with("SCAN i")
                    && !plan.contains("TEMP B-TREE")),
            "{lookup}: {plan}"
        );
        assert!(
            !plan.contains("TEMP B-TREE")
                && !plan.contains("Sort")
                && !plan.contains("Seq Scan on scim"),
            "{lookup}: {plan}"
        );
    }
}

on_both_backends!(ledger_reads_are_served_by_indexes);

/// The seat ledger's reads — a user's entries, who was billable at a moment — walk
/// `seat_ledger_user`, never every entry and never a sort (docs/true-up.md).
async fn ledger_reads_are_served_by_indexes(app: TestApp) {
    seed_users(&app, 20_000).await;
    app.execute_sql(
        "INSERT INTO seat_ledger (recorded_at, user_id, username, direction, reason, plan)
         SELECT '2025-12-01 00:00:00+00:00', id, username, 'baseline', 'Active human user', 'premium' FROM users",
    )
    .await;
    app.execute_sql(
        "INSERT INTO seat_ledger (recorded_at, user_id, username, direction, reason, plan)
         SELECT '2025-12-02 00:00:00+00:00', id, username, 'stopped', 'State changed to blocked', 'premium'
         FROM users WHERE id % 10 = 0",
    )
    .await;
    app.state.store.analyze().await.expect("analyze");
    for (read, plan) in app.state.store.ledger_plans().await.expect("plans") {
        assert!(plan.contains("seat_ledger_user"), "{read}: {plan}");
        assert!(
            !plan.contains("TEMP B-TREE")
                && !plan.contains("Sort")
                && !plan.contains("Seq Scan on seat_ledger"),
            "{read}: {plan}"
        );
    }
}

on_both_backends!(the_dormant_user_statements_are_served_by_their_index);

/// The dormant-user preview and job read ranges of `users_dormant` — the counts, and first and
/// later pages of both kinds of dormancy — never the whole table (at a million users, the
/// single `OR` they replaced read every row when few were dormant: 372–478 ms on SQLite).
async fn the_dormant_user_statements_are_served_by_their_index(app: TestApp) {
    seed_users(&app, 20_000).await;
    let plans = app.state.store.dormant_query_plans().await.expect("plans");
    assert!(plans.contains("users_dormant"), "{plans}");
    assert!(plans.contains("users_never_active"), "{plans}");
    match app.backend {
        Backend::Sqlite => assert!(
            !plans
                .lines()
                .any(|line| line.trim_start().starts_with("SCAN u")),
            "{plans}"
        ),
        Backend::Postgres => assert!(
            !plans.contains("Seq Scan on users") && !plans.contains("Sort"),
            "{plans}"
        ),
    }
}
