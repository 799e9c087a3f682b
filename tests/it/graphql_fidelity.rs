//! GraphQL as GitLab's controller and schema answer it (`graphql_controller.rb`,
//! `gitlab_schema.rb`, the eligible-users finders): GET mutations, inactive accounts, limits per
//! caller, eligible users' order, search and seat filter, payload order.

use gitlab_license_server::store::Write;
use serde_json::{json, Value};

use crate::graphql_seats::duo_license;
use crate::on_both_backends;
use crate::support::app::{TestApp, ROOT_TOKEN};
use gitlab_license_server::store::{NewUser, User};

const ELIGIBLE: &str = "query($p: [GitlabSubscriptionsAddOnPurchaseID!]!, $search: String, $sort: GitlabSubscriptionsUserSort, $seat: String) {
  selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS, addOnPurchaseIds: $p, search: $search, sort: $sort, filterByAssignedSeat: $seat) {
    nodes { username }
  }
}";

async fn purchase(app: &TestApp, seats: u64) -> String {
    assert_eq!(app.upload(&duo_license(seats)).await.status, 201);
    let reply = app
        .graphql(Some(ROOT_TOKEN), "{ addOnPurchases { id } }", json!({}))
        .await;
    reply.json()["data"]["addOnPurchases"][0]["id"]
        .as_str()
        .expect("purchase")
        .to_string()
}

async fn human(app: &TestApp, username: &str, name: &str) -> User {
    app.add_user(NewUser {
        name: name.into(),
        ..NewUser::human(username, false)
    })
    .await
}

async fn usernames(app: &TestApp, variables: Value) -> Vec<String> {
    let reply = app.graphql(Some(ROOT_TOKEN), ELIGIBLE, variables).await;
    let body = reply.json();
    body["data"]["selfManagedAddOnEligibleUsers"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .filter_map(|node| node["username"].as_str().map(str::to_string))
        .collect()
}

async fn assign(app: &TestApp, purchase: &str, users: &[&User]) -> Value {
    let ids: Vec<String> = users
        .iter()
        .map(|user| format!("gid://gitlab/User/{}", user.id))
        .collect();
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "mutation($p: GitlabSubscriptionsAddOnPurchaseID!, $u: [UserID!]!) { userAddOnAssignmentBulkCreate(input: {addOnPurchaseId: $p, userIds: $u}) { errors users { nodes { username } } } }",
            json!({"p": purchase, "u": ids}),
        )
        .await;
    reply.json()["data"]["userAddOnAssignmentBulkCreate"].clone()
}

/// A mutation sent with GET is refused with 422, GitLab's controller's status for its
/// argument errors; an inactive account's token is 401 "Invalid token", as that controller
/// answers (it knows only "Invalid token" and "API not accessible for user").
async fn transport_answers_as_gitlabs_controller(app: TestApp) {
    let reply = app
        .send_with(
            app.client.get(app.url("/api/graphql")).query(&[(
                "query",
                "mutation { userAddOnAssignmentRemove(input: {addOnPurchaseId: \"gid://gitlab/GitlabSubscriptions::AddOnPurchase/1\", userId: \"gid://gitlab/User/1\"}) { errors } }",
            )]),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.json(),
        json!({"errors": [{"message": "Mutations are forbidden in GET requests"}]})
    );
    for state in [
        "blocked",
        "banned",
        "deactivated",
        "blocked_pending_approval",
    ] {
        let user = app
            .add_user(NewUser {
                state: gitlab_license_server::domain::users::UserState::from_name(state)
                    .expect("state"),
                ..NewUser::human(&format!("{state}_user"), false)
            })
            .await;
        let (token, _) = app.token_for(&user, &["api"], None).await;
        let reply = app
            .graphql(Some(&token), "{ currentUser { username } }", json!({}))
            .await;
        assert_eq!(reply.status, 401, "{state}: {}", reply.body);
        assert_eq!(
            reply.json(),
            json!({"errors": [{"message": "Invalid token"}]}),
            "{state}"
        );
    }
}

fn aliases(count: usize, field: &str) -> String {
    (0..count).map(|n| format!("a{n}: {field} ")).collect()
}

/// GitLab's limits per caller: complexity 200 anonymous, 250 signed in, 300 administrators;
/// depth 15 anonymous, 20 signed in.
async fn limits_depend_on_the_caller(app: TestApp) {
    let ada = human(&app, "ada", "Ada").await;
    let (ada_token, _) = app.token_for(&ada, &["api"], None).await;
    // `currentUser { id }` costs 2.
    let complexity = |cost: usize| format!("{{ {} }}", aliases(cost / 2, "currentUser { id }"));
    let refused = |body: &Value| {
        body.get("data").is_none()
            && body["errors"][0]["message"]
                .as_str()
                .is_some_and(|message| message.contains("exceeds max"))
    };
    // 210 fields: over an anonymous caller's 200, within a user's 250.
    let reply = app.graphql(None, &complexity(210), json!({})).await;
    assert!(refused(&reply.json()), "{}", reply.body);
    assert_eq!(
        reply.json()["errors"][0]["message"],
        "Query has complexity of 210, which exceeds max complexity of 200"
    );
    let reply = app
        .graphql(Some(&ada_token), &complexity(210), json!({}))
        .await;
    assert!(reply.json()["data"]["a104"].is_object(), "{}", reply.body);
    // 280: over a user's 250, within an administrator's 300.
    let reply = app
        .graphql(Some(&ada_token), &complexity(280), json!({}))
        .await;
    assert_eq!(
        reply.json()["errors"][0]["message"],
        "Query has complexity of 280, which exceeds max complexity of 250"
    );
    let reply = app
        .graphql(Some(ROOT_TOKEN), &complexity(280), json!({}))
        .await;
    assert!(reply.json()["data"]["a139"].is_object(), "{}", reply.body);

    // Depth 17: over an anonymous caller's 15, within a signed-in one's 20.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(12),
        " }".repeat(12)
    );
    let reply = app.graphql(None, &deep, json!({})).await;
    let body = reply.json();
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(
        body["errors"][0]["message"],
        "Query has depth of 17, which exceeds max depth of 15"
    );
    let reply = app.graphql(Some(&ada_token), &deep, json!({})).await;
    assert!(
        reply.json()["data"]["__schema"].is_object(),
        "{}",
        reply.body
    );
}

/// Eligible users as GitLab's finder lists them.
async fn eligible_users_follow_gitlabs_finder(app: TestApp) {
    let purchase = purchase(&app, 10).await;
    let p = json!([purchase]);
    // root is user 1.
    let ann = human(&app, "ann", "Zed Ann").await;
    let bob = human(&app, "bobby", "Ann Bob").await;
    let annie = human(&app, "annie", "Ann").await;
    let cy = human(&app, "cy", "Cy").await;
    let gone = human(&app, "gone", "Gone").await;

    // No sort: id descending.
    assert_eq!(
        usernames(&app, json!({"p": p})).await,
        ["gone", "cy", "annie", "bobby", "ann", "root"]
    );
    // A search ignores `sort`; exact username, then exact name, then by name, then id.
    assert_eq!(
        usernames(&app, json!({"p": p, "search": "ann", "sort": "ID_DESC"})).await,
        ["ann", "annie", "bobby"]
    );
    // E-mail only as an exact public e-mail (nobody has one here): no match on the private one.
    assert_eq!(
        usernames(&app, json!({"p": p, "search": "cy@example.com"})).await,
        Vec::<String>::new()
    );
    // Fewer than three characters match exactly.
    assert_eq!(
        usernames(&app, json!({"p": p, "search": "cy"})).await,
        ["cy"]
    );
    assert_eq!(
        usernames(&app, json!({"p": p, "search": "an"})).await,
        Vec::<String>::new()
    );
    // A blank search finds nobody.
    assert_eq!(
        usernames(&app, json!({"p": p, "search": ""})).await,
        Vec::<String>::new()
    );

    // Seats: GitLab's booleans; holders on active purchases whether or not still eligible.
    assign(&app, &purchase, &[&ann, &gone]).await;
    app.state
        .store
        .set_user_state(
            gone.id,
            gitlab_license_server::domain::users::UserState::Blocked,
            Write::unaudited(crate::support::app::test_now()),
        )
        .await
        .expect("block");
    for truthy in ["true", "TRUE", "yes", "1", "t", "on"] {
        assert_eq!(
            usernames(&app, json!({"p": p, "seat": truthy})).await,
            ["gone", "ann"],
            "{truthy}"
        );
    }
    for falsy in ["false", "no", "0", "off"] {
        assert_eq!(
            usernames(&app, json!({"p": p, "seat": falsy})).await,
            ["cy", "annie", "bobby", "root"],
            "{falsy}"
        );
    }
    // Anything else is no filter.
    assert_eq!(
        usernames(&app, json!({"p": p, "seat": "maybe"})).await,
        ["cy", "annie", "bobby", "ann", "root"]
    );

    // Last activity: NULLs last when descending (id ascending among equals), first when
    // ascending (id descending among equals). Root's requests above were its activity today.
    for (user, day) in [(&bob, "2026-05-01"), (&cy, "2026-06-01")] {
        app.state
            .store
            .set_last_activity(user.id, day.parse().expect("day"))
            .await
            .expect("activity");
    }
    assert_eq!(
        usernames(&app, json!({"p": p, "sort": "LAST_ACTIVITY_ON_DESC"})).await,
        ["root", "cy", "bobby", "ann", "annie"]
    );
    assert_eq!(
        usernames(&app, json!({"p": p, "sort": "LAST_ACTIVITY_ON_ASC"})).await,
        ["annie", "ann", "bobby", "cy", "root"]
    );
    let _ = annie;
}

/// The assignment mutations list their users by id, descending (GitLab's keyset order).
async fn mutation_payloads_list_users_by_id_descending(app: TestApp) {
    let purchase = purchase(&app, 10).await;
    let first = human(&app, "first", "First").await;
    let second = human(&app, "second", "Second").await;
    let third = human(&app, "third", "Third").await;
    let payload = assign(&app, &purchase, &[&second, &first, &third]).await;
    assert_eq!(
        payload["users"]["nodes"],
        json!([{"username": "third"}, {"username": "second"}, {"username": "first"}])
    );
}

on_both_backends!(
    transport_answers_as_gitlabs_controller,
    limits_depend_on_the_caller,
    eligible_users_follow_gitlabs_finder,
    mutation_payloads_list_users_by_id_descending,
);
