//! The GraphQL eligible-user lists page by keyset: every order walks every user exactly
//! once forwards and backwards, cursors from GitLab's format are read and bad ones refused,
//! and each order's statement is served by an index at 20,000 users on both backends.

use chrono::NaiveDate;
use gitlab_license_server::store::{
    EligibleKey, EligibleOrder, EligiblePage, EligibleQuery, EligibleUserFilter, UserSearch,
};
use serde_json::{json, Value};

use crate::graphql_seats::duo_license;
use crate::on_both_backends;
use crate::support::app::{Backend, TestApp, ROOT_TOKEN};

const LIST: &str = "query($search: String, $sort: GitlabSubscriptionsUserSort, $first: Int,
                          $last: Int, $after: String, $before: String) {
    selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS, addOnPurchaseIds: [],
        search: $search, sort: $sort, first: $first, last: $last, after: $after, before: $before) {
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      nodes { username }
    } }";

const SORTS: [&str; 6] = [
    "ID_ASC",
    "ID_DESC",
    "NAME_ASC",
    "NAME_DESC",
    "LAST_ACTIVITY_ON_ASC",
    "LAST_ACTIVITY_ON_DESC",
];

async fn page(app: &TestApp, variables: Value) -> Value {
    let reply = app.graphql(Some(ROOT_TOKEN), LIST, variables).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["selfManagedAddOnEligibleUsers"].clone()
}

fn usernames(connection: &Value) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{connection}"))
        .iter()
        .map(|node| node["username"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Twenty-odd users with shared names and dates and no activity, so every order has ties the
/// id must break, and NULLs at one end.
async fn seed_ties(app: &TestApp) {
    assert_eq!(app.upload(&duo_license(5)).await.status, 201);
    app.execute_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 23)
         INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
         SELECT 'tie' || i, 'Name ' || (i % 4), 'tie' || i || '@example.com', 'active', 'human',
                FALSE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
         FROM n",
    )
    .await;
    // A third without activity; the rest on one of three days.
    for (remainder, day) in [(1, "2026-01-05"), (2, "2026-02-07")] {
        app.execute_sql(&format!(
            "UPDATE users SET last_activity_on = '{day}'
             WHERE username LIKE 'tie%' AND id % 3 = {remainder}"
        ))
        .await;
    }
}

on_both_backends!(every_order_pages_forwards_and_backwards_alike);

async fn every_order_pages_forwards_and_backwards_alike(app: TestApp) {
    seed_ties(&app).await;
    for (sort, search) in SORTS
        .iter()
        .map(|sort| (*sort, None))
        .chain([("ID_ASC", Some("Name"))])
    {
        let all =
            usernames(&page(&app, json!({"sort": sort, "search": search, "first": 100})).await);
        assert!(all.len() >= 23, "{sort}: {all:?}");
        // Forwards, four at a time.
        let mut forwards = Vec::new();
        let mut after = Value::Null;
        let mut pages = 0;
        loop {
            let connection = page(
                &app,
                json!({"sort": sort, "search": search, "first": 4, "after": after}),
            )
            .await;
            assert_eq!(
                connection["pageInfo"]["hasPreviousPage"],
                json!(pages > 0),
                "{sort}"
            );
            forwards.extend(usernames(&connection));
            pages += 1;
            assert!(pages < 20, "{sort}: the pages never end");
            if connection["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            after = connection["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(forwards, all, "{sort} {search:?} forwards");
        // Backwards from the end, four at a time.
        let mut backwards: Vec<String> = Vec::new();
        let mut before = Value::Null;
        loop {
            let connection = page(
                &app,
                json!({"sort": sort, "search": search, "last": 4, "before": before}),
            )
            .await;
            let mut names = usernames(&connection);
            names.extend(backwards);
            backwards = names;
            if connection["pageInfo"]["hasPreviousPage"] != json!(true) {
                break;
            }
            before = connection["pageInfo"]["startCursor"].clone();
        }
        assert_eq!(backwards, all, "{sort} {search:?} backwards");
    }
    // No activity comes first from the oldest end, last from the most recent.
    let oldest = usernames(&page(&app, json!({"sort": "LAST_ACTIVITY_ON_ASC", "first": 3})).await);
    let recent = usernames(&page(&app, json!({"sort": "LAST_ACTIVITY_ON_DESC", "last": 3})).await);
    let mut reversed = recent.clone();
    reversed.reverse();
    assert_eq!(oldest, reversed);
}

on_both_backends!(cursors_are_gitlabs_and_bad_ones_are_refused);

async fn cursors_are_gitlabs_and_bad_ones_are_refused(app: TestApp) {
    seed_ties(&app).await;
    let first = page(&app, json!({"sort": "NAME_ASC", "first": 1})).await;
    let cursor = first["pageInfo"]["endCursor"]
        .as_str()
        .expect("a cursor")
        .to_string();
    let fields: Value = serde_json::from_slice(&base64_decode(&cursor)).expect("a JSON object");
    assert_eq!(fields["name"], json!("Administrator"), "{fields}");
    assert!(
        fields["id"].is_string(),
        "GitLab writes ids as strings: {fields}"
    );
    // GitLab's own id cursor, unpadded: the page after user 2 in id order.
    let after_root = page(
        &app,
        json!({"sort": "ID_ASC", "first": 1, "after": "eyJpZCI6IjEifQ"}),
    )
    .await;
    assert_eq!(after_root["pageInfo"]["hasPreviousPage"], json!(true));
    assert_ne!(usernames(&after_root), ["root"]);
    for bad in [
        json!("nonsense"),
        json!(cursor_without_name()),
        json!("e30"),
    ] {
        let reply = app
            .graphql(
                Some(ROOT_TOKEN),
                LIST,
                json!({"sort": "NAME_ASC", "first": 2, "after": bad}),
            )
            .await;
        let body = reply.json();
        assert_eq!(
            body["errors"][0]["message"],
            json!("Please provide a valid cursor"),
            "{bad}: {body}"
        );
    }
}

fn cursor_without_name() -> String {
    // {"id":"3"}: a cursor of the id order, not enough for a name order.
    "eyJpZCI6IjMifQ==".into()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE
        .decode(text)
        .expect("base64")
}

/// The instance list's page `page` in the default order.
fn first_page_of<'a>(
    filter: &'a EligibleUserFilter,
    today: NaiveDate,
    page: &'a EligiblePage,
) -> EligibleQuery<'a> {
    EligibleQuery {
        namespace_id: None,
        filter,
        order: EligibleOrder::IdDesc,
        today,
        page,
    }
}

/// Whether a SQLite plan reads the whole users table (`SCAN u`, not through an index).
fn scans_users(plan: &str) -> bool {
    plan.lines().any(|line| line.trim() == "SCAN u")
}

/// Adds 20,000 active humans (a third without activity) and refreshes the statistics.
async fn seed_many(app: &TestApp) {
    app.execute_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at,
                            last_activity_on)
         SELECT 'bulk' || i, 'Bulk ' || i, 'bulk' || i || '@example.com', 'active', 'human',
                FALSE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP,
                NULL
         FROM n",
    )
    .await;
    app.execute_sql("UPDATE users SET last_activity_on = '2026-01-01' WHERE id % 3 <> 0")
        .await;
    app.state.store.analyze().await.expect("analyze");
}

on_both_backends!(every_order_reaches_users_through_an_index);

async fn every_order_reaches_users_through_an_index(app: TestApp) {
    seed_many(&app).await;
    let today = NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date");
    let deep = EligibleKey {
        id: 14_000,
        name: "Bulk 14000".into(),
        last_activity_on: NaiveDate::from_ymd_opt(2026, 1, 1),
        search_rank: 3,
    };
    let orders = [
        EligibleOrder::IdAsc,
        EligibleOrder::IdDesc,
        EligibleOrder::NameAsc,
        EligibleOrder::NameDesc,
        EligibleOrder::LastActivityAsc,
        EligibleOrder::LastActivityDesc,
    ];
    for order in orders {
        for backward in [false, true] {
            let page = EligiblePage {
                after: Some(deep.clone()),
                before: None,
                backward,
                limit: 20,
            };
            let plan = app
                .state
                .store
                .eligible_users_plan(&EligibleQuery {
                    namespace_id: None,
                    filter: &EligibleUserFilter::default(),
                    order,
                    today,
                    page: &page,
                })
                .await
                .expect("plan");
            // The page is read in the order of an index and stops at the limit: no sort of
            // every eligible user.
            match app.backend {
                Backend::Sqlite => {
                    assert!(
                        !plan.contains("TEMP B-TREE"),
                        "{order:?} {backward}: {plan}"
                    );
                    assert!(!scans_users(&plan), "{order:?} {backward}: {plan}");
                }
                Backend::Postgres => {
                    assert!(!plan.contains("Sort"), "{order:?} {backward}: {plan}");
                    assert!(plan.contains("Index"), "{order:?} {backward}: {plan}");
                }
            }
            // And the cursor is where the index is entered, not a filter over the rows
            // before it (the page 700,000 deep would read them all).
            let ranged = order != EligibleOrder::LastActivityDesc
                && !(order == EligibleOrder::LastActivityAsc && backward);
            if ranged {
                let entered = match app.backend {
                    Backend::Sqlite => plan.lines().any(|line| line.starts_with("SEARCH u ")),
                    Backend::Postgres => plan.contains("Index Cond"),
                };
                assert!(entered, "{order:?} {backward}: {plan}");
            }
        }
    }
    // Seat holders: found through the assignments, not by walking the users.
    let holders = EligibleUserFilter {
        search: None,
        seat_holders: Some((vec![1], true)),
    };
    let first_page = EligiblePage {
        after: None,
        before: None,
        backward: false,
        limit: 20,
    };
    let plan = app
        .state
        .store
        .eligible_users_plan(&first_page_of(&holders, today, &first_page))
        .await
        .expect("plan");
    match app.backend {
        Backend::Sqlite => assert!(!scans_users(&plan), "{plan}"),
        Backend::Postgres => assert!(!plan.contains("Seq Scan on users"), "{plan}"),
    }
    // A search: through the trigram indexes.
    let search = EligibleUserFilter {
        search: UserSearch::new("ulk 1234"),
        seat_holders: None,
    };
    let plan = app
        .state
        .store
        .eligible_users_plan(&first_page_of(&search, today, &first_page))
        .await
        .expect("plan");
    match app.backend {
        Backend::Sqlite => assert!(plan.contains("users_search"), "{plan}"),
        Backend::Postgres => assert!(!plan.contains("Seq Scan on users"), "{plan}"),
    }
}

on_both_backends!(the_pages_suggestions_are_read_through_the_username_index);

async fn the_pages_suggestions_are_read_through_the_username_index(app: TestApp) {
    seed_many(&app).await;
    let store = &app.state.store;
    let plan = store
        .query_plan(&store.instance_eligible_users_sql(), &[], &[200])
        .await
        .expect("plan");
    assert!(plan.contains("users_username_unique"), "{plan}");
    match app.backend {
        Backend::Sqlite => assert!(!plan.contains("TEMP B-TREE"), "{plan}"),
        Backend::Postgres => assert!(!plan.contains("Sort"), "{plan}"),
    }
    let suggested = store.instance_eligible_users(3).await.expect("users");
    let names: Vec<&str> = suggested
        .iter()
        .map(|user| user.username.as_str())
        .collect();
    assert_eq!(names, ["bulk1", "bulk10", "bulk100"]);
}

on_both_backends!(the_pages_holders_are_the_newest_listed_by_username);

async fn the_pages_holders_are_the_newest_listed_by_username(app: TestApp) {
    seed_ties(&app).await;
    // Seats for tie1, then tie3 and tie2: the newest two are tie2 and tie3 (the first two by
    // username would be tie1 and tie2).
    app.execute_sql(
        "INSERT INTO user_add_on_assignments (add_on_purchase_id, user_id, created_at)
         SELECT p.id, u.id, CURRENT_TIMESTAMP FROM add_on_purchases p, users u
         WHERE u.username = 'tie1'",
    )
    .await;
    app.execute_sql(
        "INSERT INTO user_add_on_assignments (add_on_purchase_id, user_id, created_at)
         SELECT p.id, u.id, CURRENT_TIMESTAMP FROM add_on_purchases p, users u
         WHERE u.username IN ('tie3', 'tie2') ORDER BY u.username DESC",
    )
    .await;
    let holders = app.state.store.seat_holders(2).await.expect("holders");
    let names: Vec<&str> = holders
        .iter()
        .map(|holder| holder.user.username.as_str())
        .collect();
    assert_eq!(names, ["tie2", "tie3"]);
}
