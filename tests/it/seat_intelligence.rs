//! Seat intelligence: billable members per group (GitLab's API), the instance-wide list of
//! billable users, seat alerts, license checks and Duo seats in bulk — on both backends,
//! through the HTTP surface.

use gitlab_license_server::store::{NewUser, User, Write};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::browser::{chromium, Browser};
use crate::support::licenses::license;
use crate::web::{escaped, WebClient};

on_both_backends!(
    billable_members_of_a_group,
    billable_member_removal,
    billable_members_follow_the_plan,
    who_holds_a_seat,
    who_holds_a_seat_on_the_page,
    seat_alerts_fire_once_per_crossing,
    a_license_is_checked_before_it_is_uploaded,
    duo_seats_in_bulk_with_a_preview,
    the_seat_pages_work_in_chromium
);

/// A human named `username` (display name `name`), last active on `active_on` if given.
async fn person(app: &TestApp, username: &str, name: &str, active_on: Option<&str>) -> User {
    let mut new = NewUser::human(username, false);
    new.name = name.into();
    let user = app.add_user(new).await;
    if let Some(day) = active_on {
        let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("day");
        app.state
            .store
            .set_last_activity(user.id, day)
            .await
            .expect("activity");
    }
    user
}

async fn join(app: &TestApp, group_id: i64, user: &User, access_level: i32) {
    app.state
        .store
        .add_membership(
            user.id,
            "Namespace",
            group_id,
            access_level,
            Write::unaudited(test_now()),
        )
        .await
        .expect("membership");
}

fn usernames(reply: &Value) -> Vec<String> {
    reply
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| row["username"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn billable_members_of_a_group(app: TestApp) {
    let group = app.add_group("platform").await;
    let other = app.add_group("other").await;
    let zoe = person(&app, "zoe", "Zoe Zimmer", Some("2026-06-01")).await;
    let adam = person(&app, "adam", "Adam Abel", Some("2026-05-01")).await;
    let mia = person(&app, "mia", "Mia Moss", None).await;
    let blocked = person(&app, "gone", "Gone User", None).await;
    let bot = app
        .add_user(NewUser {
            user_type: gitlab_license_server::domain::users::UserType::ProjectBot,
            ..NewUser::human("bot", false)
        })
        .await;
    let outsider = person(&app, "outsider", "Out Sider", None).await;
    join(&app, group.id, &zoe, 50).await;
    join(&app, group.id, &adam, 30).await;
    join(&app, group.id, &mia, 10).await;
    join(&app, group.id, &blocked, 30).await;
    join(&app, group.id, &bot, 30).await;
    join(&app, other.id, &outsider, 30).await;
    app.execute_sql(&format!(
        "UPDATE users SET state = 'blocked' WHERE id = {}",
        blocked.id
    ))
    .await;

    let path = format!("/api/v4/groups/{}/billable_members", group.id);
    let reply = app.get(&path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(usernames(&reply.json()), ["zoe", "adam", "mia"], "id order");
    assert_eq!(reply.header("x-total"), Some("3"));
    let first = &reply.json()[0];
    assert_eq!(
        first,
        &json!({
            "id": zoe.id,
            "username": "zoe",
            "name": "Zoe Zimmer",
            "state": "active",
            "locked": false,
            "avatar_url": first["avatar_url"],
            "web_url": format!("{}/zoe", app.state.config.external_url),
            "email": zoe.email,
            "last_activity_on": "2026-06-01",
            "membership_type": "group_member",
            "removable": true,
            "created_at": first["created_at"],
            "is_last_owner": true,
            "last_login_at": null,
        })
    );
    assert_eq!(reply.json()[1]["is_last_owner"], false);

    // GitLab's sorts, search and pagination; by path as well as by id.
    let sorted = |sort: &str| format!("/api/v4/groups/platform/billable_members?sort={sort}");
    assert_eq!(
        usernames(&app.get(&sorted("name_asc")).await.json()),
        ["adam", "mia", "zoe"]
    );
    assert_eq!(
        usernames(&app.get(&sorted("name_desc")).await.json()),
        ["zoe", "mia", "adam"]
    );
    assert_eq!(
        usernames(&app.get(&sorted("last_activity_on_desc")).await.json()),
        ["zoe", "adam", "mia"]
    );
    assert_eq!(
        usernames(&app.get(&sorted("last_activity_on_asc")).await.json()),
        ["mia", "adam", "zoe"]
    );
    assert_eq!(
        usernames(&app.get(&sorted("access_level_desc")).await.json()),
        ["zoe", "adam", "mia"],
        "accepted and, as in GitLab, not applied"
    );
    let bad = app.get(&sorted("id_desc")).await;
    assert_eq!(
        (bad.status, bad.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "sort does not have a valid value"})
        )
    );
    assert_eq!(
        usernames(&app.get(&format!("{path}?search=ada")).await.json()),
        ["adam"]
    );
    assert_eq!(
        usernames(&app.get(&format!("{path}?search=out")).await.json()),
        Vec::<String>::new(),
        "only the group's members"
    );
    let page = app.get(&format!("{path}?per_page=2&page=2")).await;
    assert_eq!(usernames(&page.json()), ["mia"]);
    assert_eq!(page.header("x-total-pages"), Some("2"));
    assert_eq!(
        app.get("/api/v4/groups/999/billable_members").await.json(),
        json!({"message": "404 Group Not Found"})
    );

    // A billable member's memberships.
    let memberships = app
        .get(&format!("{path}/{}/memberships", adam.id))
        .await
        .json();
    assert_eq!(
        memberships,
        json!([{
            "id": memberships[0]["id"],
            "source_id": group.id,
            "source_full_name": "platform",
            "source_members_url": format!("{}/groups/platform/-/group_members", app.state.config.external_url),
            "created_at": memberships[0]["created_at"],
            "expires_at": null,
            "access_level": {"string_value": "Developer", "integer_value": 30, "custom_role": null},
        }])
    );
    for (user_id, message) in [
        (outsider.id, "404 User Not Found"),
        (blocked.id, "404 User Not Found"),
        (99_999, "404 Not found"),
    ] {
        let reply = app.get(&format!("{path}/{user_id}/memberships")).await;
        assert_eq!(
            (reply.status, reply.json()),
            (StatusCode::NOT_FOUND, json!({"message": message})),
            "{user_id}"
        );
    }

    // Administrators only.
    let (token, _) = app.token_for(&outsider, &["api"], None).await;
    let refused = app.send(reqwest::Method::GET, &path, Some(&token)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

async fn billable_member_removal(app: TestApp) {
    let group = app.add_group("platform").await;
    let owner = person(&app, "owner", "Owner", None).await;
    let dev = person(&app, "dev", "Dev", None).await;
    let outsider = person(&app, "outsider", "Out", None).await;
    join(&app, group.id, &owner, 50).await;
    join(&app, group.id, &dev, 30).await;
    let path = format!("/api/v4/groups/{}/billable_members", group.id);

    let last_owner = app.delete(&format!("{path}/{}", owner.id)).await;
    assert_eq!(
        (last_owner.status, last_owner.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "400 Bad request - Gitlab::Access::AccessDeniedError"})
        )
    );
    let not_member = app.delete(&format!("{path}/{}", outsider.id)).await;
    assert_eq!(
        (not_member.status, not_member.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "400 Bad request - No member found for the given user_id"})
        )
    );
    assert_eq!(usernames(&app.get(&path).await.json()), ["owner", "dev"]);

    let removed = app.delete(&format!("{path}/{}", dev.id)).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert_eq!(usernames(&app.get(&path).await.json()), ["owner"]);
    // Audited, and announced to the system hooks, like any member removal.
    let audit = app.get("/api/v4/audit_events").await.json();
    assert!(
        audit.as_array().is_some_and(|events| events
            .iter()
            .any(|event| event["details"]["custom_message"] == "Removed dev in group platform")),
        "{audit}"
    );
    let hook_events = app.query_texts("SELECT event_name FROM hook_events").await;
    assert!(
        hook_events.contains(&"user_remove_from_group".to_string()),
        "{hook_events:?}"
    );

    // With a second owner, the first may go.
    join(&app, group.id, &outsider, 50).await;
    let removed = app.delete(&format!("{path}/{}", owner.id)).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert_eq!(usernames(&app.get(&path).await.json()), ["outsider"]);
}

async fn billable_members_follow_the_plan(app: TestApp) {
    let group = app.add_group("platform").await;
    let guest = person(&app, "guest", "Guest", None).await;
    let planner = person(&app, "planner", "Planner", None).await;
    let minimal = person(&app, "minimal", "Minimal", None).await;
    join(&app, group.id, &guest, 10).await;
    join(&app, group.id, &planner, 15).await;
    join(&app, group.id, &minimal, 5).await;
    let path = format!("/api/v4/groups/{}/billable_members", group.id);
    assert_eq!(
        usernames(&app.get(&path).await.json()),
        ["guest", "planner"],
        "without Ultimate guests occupy a seat; Minimal Access never does"
    );
    let uploaded = app
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"plan": "ultimate", "active_user_count": 10}),
        ))
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    assert_eq!(usernames(&app.get(&path).await.json()), ["planner"]);
    let guest_memberships = app
        .send(
            reqwest::Method::GET,
            &format!("{path}/{}/memberships", guest.id),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(guest_memberships.status, StatusCode::NOT_FOUND);
}

async fn who_holds_a_seat(app: TestApp) {
    // test_now is 2026-06-15.
    let platform = app.add_group("platform").await;
    let data = app.add_group("data").await;
    let ada = person(&app, "ada", "Ada", Some("2026-06-14")).await;
    let bob = person(&app, "bob", "Bob", Some("2026-03-01")).await;
    person(&app, "cy", "Cy", None).await;
    let guest = person(&app, "guest", "Guest", Some("2026-06-01")).await;
    let gone = person(&app, "gone", "Gone", None).await;
    join(&app, platform.id, &ada, 40).await;
    join(&app, data.id, &ada, 30).await;
    join(&app, platform.id, &bob, 30).await;
    join(&app, data.id, &guest, 10).await;
    app.execute_sql(&format!(
        "UPDATE users SET state = 'blocked' WHERE id = {}",
        gone.id
    ))
    .await;
    let root = "root".to_string();

    let all = app.get("/api/v4/-/seats/billable_users").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(
        usernames(&all.json()),
        [root.as_str(), "ada", "bob", "cy", "guest"]
    );
    assert_eq!(all.header("x-total"), None, "keyset pages carry no totals");
    let ada_row = &all.json()[1];
    assert_eq!(
        ada_row,
        &json!({
            "id": ada.id,
            "username": "ada",
            "name": "Ada",
            "email": ada.email,
            "state": "active",
            "user_type": "human",
            "highest_access_level": {"integer_value": 40, "string_value": "Maintainer"},
            "group_count": 2,
            "last_activity_on": "2026-06-14",
            "inactive_days": 1,
            "created_at": ada_row["created_at"],
            "billable_because": "Active human user with the Maintainer role",
        })
    );
    let filtered = |query: &str| format!("/api/v4/-/seats/billable_users?{query}");
    assert_eq!(
        usernames(&app.get(&filtered("group=platform")).await.json()),
        ["ada", "bob"]
    );
    assert_eq!(
        usernames(
            &app.get(&filtered(&format!("group={}&access_level=30", data.id)))
                .await
                .json()
        ),
        Vec::<String>::new(),
        "ada's highest role is Maintainer"
    );
    assert_eq!(
        usernames(&app.get(&filtered("access_level=10")).await.json()),
        ["guest"]
    );
    assert_eq!(
        usernames(&app.get(&filtered("inactive_for_days=90")).await.json()),
        ["bob", "cy"],
        "billable but not active for 90 days (or never); root is active through its token"
    );
    // Keyset pages.
    let first = app.get(&filtered("per_page=2")).await;
    assert_eq!(usernames(&first.json()), [root.as_str(), "ada"]);
    let link = first.header("link").expect("next link").to_string();
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("url")
        .replace(&app.state.config.external_url, "");
    assert_eq!(usernames(&app.get(&next).await.json()), ["bob", "cy"]);
    // Refusals, GitLab-shaped.
    for (query, status, body) in [
        (
            "group=nope",
            StatusCode::NOT_FOUND,
            json!({"message": "404 Group Not Found"}),
        ),
        (
            "access_level=35",
            StatusCode::BAD_REQUEST,
            json!({"error": "access_level is invalid"}),
        ),
        (
            "inactive_for_days=-1",
            StatusCode::BAD_REQUEST,
            json!({"error": "inactive_for_days is invalid"}),
        ),
        (
            "cursor=xyz",
            StatusCode::BAD_REQUEST,
            json!({"error": "cursor is invalid"}),
        ),
    ] {
        let reply = app.get(&filtered(query)).await;
        assert_eq!((reply.status, reply.json()), (status, body), "{query}");
    }
    // On Ultimate the guest holds no seat.
    app.upload(&license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "ultimate", "active_user_count": 10}),
    ))
    .await;
    assert_eq!(
        usernames(&app.get("/api/v4/-/seats/billable_users").await.json()),
        ["ada", "bob"]
    );
    // The CSV: the same rows.
    let csv = app
        .get("/api/v4/-/seats/billable_users.csv?group=platform")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 3, "{}", csv.body);
    assert!(lines[0].starts_with("id,username,name,email,state,user_type,highest_role"));
    assert!(
        lines[1].starts_with(&format!("{},ada,Ada,", ada.id)),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains(",bob,Bob,"), "{}", lines[2]);
    let refused = app
        .get("/api/v4/-/seats/billable_users.csv?access_level=1")
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

async fn who_holds_a_seat_on_the_page(app: TestApp) {
    let platform = app.add_group("platform").await;
    let ada = person(&app, "ada", "Ada Lovelace", Some("2026-06-14")).await;
    let bob = person(&app, "bob", "Bob", Some("2026-01-01")).await;
    join(&app, platform.id, &ada, 40).await;
    join(&app, platform.id, &bob, 30).await;
    let web = WebClient::new(&app);
    assert_eq!(web.sign_in(ROOT_TOKEN).await.status, StatusCode::SEE_OTHER);

    let page = web.get("/admin/seats").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("3 billable users match."),
        "{}",
        page.body
    );
    assert!(page.body.contains("tr data-username=\"ada\""));
    assert!(page
        .body
        .contains("Active human user with the Maintainer role"));

    let filtered = web
        .get("/admin/seats?group=platform&access_level=&inactive_for_days=90")
        .await;
    assert_eq!(filtered.status, StatusCode::OK);
    assert!(
        filtered.body.contains("1 billable user match."),
        "{}",
        filtered.body
    );
    assert!(filtered.body.contains("tr data-username=\"bob\""));
    assert!(!filtered.body.contains("tr data-username=\"ada\""));
    assert!(filtered.body.contains(&escaped(
        "/admin/seats/billable_users.csv?group=platform&inactive_for_days=90"
    )));
    let csv = web
        .get("/admin/seats/billable_users.csv?group=platform&inactive_for_days=90")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(
        csv.body,
        app.get("/api/v4/-/seats/billable_users.csv?group=platform&inactive_for_days=90")
            .await
            .body
    );

    // Removing a billable member from the filtered list: the last owner is refused.
    let (_, csrf) = web.page().await;
    let owner = person(&app, "owner", "Owner", None).await;
    join(&app, platform.id, &owner, 50).await;
    let last_owner = web
        .post(
            &format!(
                "/admin/seats/groups/platform/billable_members/{}/remove",
                owner.id
            ),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(last_owner.status, StatusCode::BAD_REQUEST);
    assert!(
        last_owner
            .body
            .contains(&escaped("The group's last owner cannot be removed.")),
        "{}",
        last_owner.body
    );
    let removed = web
        .post(
            &format!(
                "/admin/seats/groups/platform/billable_members/{}/remove",
                bob.id
            ),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    assert_eq!(
        crate::web::location(&removed),
        "/admin/seats?group=platform&notice=member_removed"
    );
    let after = web.get(crate::web::location(&removed)).await;
    assert!(after
        .body
        .contains("The member was removed from the group."));
    assert!(!after.body.contains("tr data-username=\"bob\""));
    let forged = web
        .post(
            &format!(
                "/admin/seats/groups/platform/billable_members/{}/remove",
                ada.id
            ),
            &[("authenticity_token", "forged")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = web.get("/admin/seats?group=nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("404 Group Not Found"));
    let bad = web.get("/admin/seats?inactive_for_days=soon").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("inactive_for_days is invalid"));
    // Signed out: sent to sign in.
    let anonymous = WebClient::new(&app).get("/admin/seats").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
}

/// The seat-alert hook events recorded so far: (subject kind, threshold, used).
async fn seat_alert_events(app: &TestApp) -> Vec<(String, i64, i64)> {
    app.query_texts(
        "SELECT payload FROM hook_events WHERE event_name = 'seat_usage_threshold_reached' ORDER BY id",
    )
    .await
    .iter()
    .map(|payload| {
        let payload: Value = serde_json::from_str(payload).expect("payload");
        (
            payload["subject"].as_str().unwrap_or_default().to_string(),
            payload["threshold_percent"].as_i64().unwrap_or_default(),
            payload["used"].as_i64().unwrap_or_default(),
        )
    })
    .collect()
}

async fn recount(app: &TestApp) {
    // Each recount is a new measurement (one per moment, as GitLab's table keys them).
    app.set_now(app.state.clock.now() + chrono::TimeDelta::minutes(1));
    let id = app.get("/api/v4/license").await.json()["id"].clone();
    let reply = app
        .put(&format!("/api/v4/license/{id}/refresh_billable_users"))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    app.run_jobs().await;
}

async fn seat_alerts_fire_once_per_crossing(app: TestApp) {
    // A 10-seat license with 2 GitLab Duo Pro seats; root is the only billable user.
    let key = crate::support::licenses::cloud_license(
        "2026-01-01",
        "2027-01-01",
        json!({
            "plan": "premium",
            "active_user_count": 10,
            "add_on_products": {"duo_pro": [{
                "quantity": 2, "started_on": "2026-01-01", "expires_on": "2027-01-01",
                "purchase_xid": "A-1", "trial": false
            }]}
        }),
    );
    assert_eq!(app.upload(&key).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    assert_eq!(seat_alert_events(&app).await, []);

    let mut people = Vec::new();
    for index in 0..7 {
        people.push(person(&app, &format!("user{index}"), "User", None).await);
    }
    recount(&app).await;
    assert_eq!(
        seat_alert_events(&app).await,
        [("license".to_string(), 80, 8)],
        "8 of 10 seats crosses 80 %"
    );
    recount(&app).await;
    assert_eq!(seat_alert_events(&app).await.len(), 1, "once per crossing");

    // Shown on the page, in the API and as a gauge.
    let alerts = app.get("/api/v4/-/seats/alerts").await.json();
    assert_eq!(alerts["thresholds"], json!([80, 90, 100]));
    let license_seats = &alerts["seats"][0];
    assert_eq!(
        (
            license_seats["kind"].clone(),
            license_seats["used"].clone(),
            license_seats["capacity"].clone(),
            license_seats["reached"].clone(),
            license_seats["fired"].clone()
        ),
        (
            json!("license"),
            json!(8),
            json!(10),
            json!([80]),
            json!([80])
        )
    );
    let metrics = app.get("/-/metrics").await.body;
    assert!(
        metrics.contains(
            "gitlab_license_server_seat_utilization_ratio{kind=\"license\",seats=\"License seats\"} 0.8"
        ),
        "{metrics}"
    );
    let web = WebClient::new(&app);
    web.sign_in(ROOT_TOKEN).await;
    let (page, _) = web.page().await;
    assert!(
        page.body
            .contains("License seats are 80 % used</strong> (8 of 10): past the 80 % seat alert."),
        "{}",
        page.body
    );

    // Down below 80 %: re-armed, and crossing again fires again.
    let blocked = &people[0];
    app.execute_sql(&format!(
        "UPDATE users SET state = 'blocked' WHERE id = {}",
        blocked.id
    ))
    .await;
    recount(&app).await;
    assert_eq!(
        app.get("/api/v4/-/seats/alerts").await.json()["seats"][0]["fired"],
        json!([])
    );
    app.execute_sql(&format!(
        "UPDATE users SET state = 'active' WHERE id = {}",
        blocked.id
    ))
    .await;
    person(&app, "ninth", "Ninth", None).await;
    recount(&app).await;
    assert_eq!(
        seat_alert_events(&app).await,
        [
            ("license".to_string(), 80, 8),
            ("license".to_string(), 80, 9),
            ("license".to_string(), 90, 9)
        ]
    );

    // Duo seats: assigning both of the 2 seats crosses 80, 90 and 100 % at once.
    let purchases = app
        .graphql(
            Some(ROOT_TOKEN),
            crate::graphql_seats::PURCHASES_QUERY,
            json!({}),
        )
        .await
        .json();
    let purchase_id = purchases["data"]["addOnPurchases"][0]["id"].clone();
    let user_ids: Vec<String> = people[1..3]
        .iter()
        .map(|user| format!("gid://gitlab/User/{}", user.id))
        .collect();
    let assigned = app
        .graphql(
            Some(ROOT_TOKEN),
            crate::graphql_seats::BULK_CREATE_MUTATION,
            json!({"p": purchase_id, "u": user_ids}),
        )
        .await
        .json();
    assert_eq!(
        assigned["data"]["userAddOnAssignmentBulkCreate"]["errors"],
        json!([]),
        "{assigned}"
    );
    let duo_events: Vec<_> = seat_alert_events(&app)
        .await
        .into_iter()
        .filter(|(kind, _, _)| kind == "add_on")
        .collect();
    assert_eq!(
        duo_events,
        [
            ("add_on".to_string(), 80, 2),
            ("add_on".to_string(), 90, 2),
            ("add_on".to_string(), 100, 2)
        ]
    );
    let (page, _) = web.page().await;
    assert!(
        page.body
            .contains("GitLab Duo Pro seats (instance) are 100 % used</strong> (2 of 2)"),
        "{}",
        page.body
    );
}

/// A current cloud license with `seats` seats and `duo` GitLab Duo Pro seats.
fn duo_pro_license(plan: &str, seats: u64, duo: u64) -> String {
    crate::support::licenses::cloud_license(
        "2026-01-01",
        "2027-01-01",
        json!({
            "plan": plan,
            "active_user_count": seats,
            "add_on_products": {"duo_pro": [{
                "quantity": duo, "started_on": "2026-01-01", "expires_on": "2027-01-01",
                "purchase_xid": "A-1", "trial": false
            }]}
        }),
    )
}

/// Assigns seats of the instance's GitLab Duo purchase to `users`, in order.
async fn assign_duo(app: &TestApp, users: &[&User]) -> Value {
    let purchases = app
        .graphql(
            Some(ROOT_TOKEN),
            crate::graphql_seats::PURCHASES_QUERY,
            json!({}),
        )
        .await
        .json();
    let purchase_id = purchases["data"]["addOnPurchases"][0]["id"].clone();
    for user in users {
        let reply = app
            .graphql(
                Some(ROOT_TOKEN),
                crate::graphql_seats::BULK_CREATE_MUTATION,
                json!({"p": purchase_id, "u": [format!("gid://gitlab/User/{}", user.id)]}),
            )
            .await
            .json();
        assert_eq!(
            reply["data"]["userAddOnAssignmentBulkCreate"]["errors"],
            json!([]),
            "{reply}"
        );
    }
    purchase_id
}

async fn a_license_is_checked_before_it_is_uploaded(app: TestApp) {
    assert_eq!(
        app.upload(&duo_pro_license("premium", 10, 3)).await.status,
        201
    );
    let ada = person(&app, "ada", "Ada", None).await;
    let bob = person(&app, "bob", "Bob", None).await;
    let cy = person(&app, "cy", "Cy", None).await;
    app.set_now(test_now() + chrono::TimeDelta::seconds(1));
    assign_duo(&app, &[&ada]).await;
    app.set_now(test_now() + chrono::TimeDelta::seconds(2));
    assign_duo(&app, &[&bob, &cy]).await;
    app.run_jobs().await;
    let audit_before = app.get("/api/v4/audit_events?per_page=100").await.json();

    // Fewer Duo seats and fewer license seats: accepted, with what it would change.
    let smaller = duo_pro_license("premium", 2, 1);
    let checked = app
        .send_with(
            app.client
                .post(app.url("/api/v4/-/license/check"))
                .json(&json!({"license": smaller})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    let checked = checked.json();
    assert_eq!(checked["accepted"], true, "{checked}");
    assert_eq!(checked["message"], Value::Null);
    assert_eq!(checked["becomes_current"], true);
    assert_eq!(checked["license"]["user_limit"], 2);
    assert_eq!(
        checked["add_on_purchases"],
        json!([{
            "action": "change",
            "purchase_id": checked["add_on_purchases"][0]["purchase_id"],
            "add_on": "CODE_SUGGESTIONS",
            "product": "GitLab Duo Pro",
            "quantity_before": 3,
            "quantity_after": 1,
            "expires_on_before": "2027-01-01",
            "expires_on_after": "2027-01-01",
            "assigned": 3,
            "seats_lost": 2,
            "users_losing_seats": ["bob", "cy"],
        }])
    );
    // Nothing was written.
    assert_eq!(
        app.get("/api/v4/licenses")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        app.get("/api/v4/audit_events?per_page=100").await.json(),
        audit_before
    );

    // The upload then does what the check said.
    let uploaded = app.upload(&smaller).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let uploaded = uploaded.json();
    for field in [
        "user_limit",
        "overage",
        "active_users",
        "historical_max",
        "maximum_user_count",
        "plan",
        "starts_at",
        "expires_at",
    ] {
        assert_eq!(checked["license"][field], uploaded[field], "{field}");
    }
    let holders = app
        .graphql(
            Some(ROOT_TOKEN),
            "query { addOnPurchases { assignedQuantity } }",
            json!({}),
        )
        .await
        .json();
    assert_eq!(holders["data"]["addOnPurchases"][0]["assignedQuantity"], 1);

    // Refusals are answers, with GitLab's messages; bad requests are GitLab-shaped errors.
    let expired = license(
        "2025-01-01",
        "2026-01-01",
        json!({"plan": "premium", "active_user_count": 10}),
    );
    for (key, message) in [
        (expired.as_str(), "This license has already expired."),
        (
            "not a license",
            "The license key is invalid. Make sure it is exactly as you received it from the license issuer.",
        ),
    ] {
        let reply = app
            .send_with(
                app.client
                    .post(app.url("/api/v4/-/license/check"))
                    .json(&json!({"license": key})),
                Some(ROOT_TOKEN),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            (reply.json()["accepted"].clone(), reply.json()["message"].clone()),
            (json!(false), json!(message))
        );
    }
    let missing = app
        .send_with(
            app.client
                .post(app.url("/api/v4/-/license/check"))
                .json(&json!({})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        (missing.status, missing.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "license is missing"})
        )
    );

    // The CLI, against the same database.
    let key_file = app.data_dir.join("bigger.gitlab-license");
    std::fs::write(&key_file, duo_pro_license("premium", 50, 5)).expect("key file");
    let expired_file = app.data_dir.join("expired.gitlab-license");
    std::fs::write(&expired_file, &expired).expect("key file");
    let run = |file: &std::path::Path| {
        crate::support::process::binary()
            .args(["license", "check"])
            .arg(file)
            .env("DATABASE_URL", &app.database_url)
            .env("DATA_DIR", app.data_dir.join("cli"))
            .env(
                "LICENSE_PUBLIC_KEY_FILE",
                crate::support::vectors_dir().join("public_key.pem"),
            )
            .output()
            .expect("cli")
    };
    let output = run(&key_file);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(printed["accepted"], true);
    assert_eq!(printed["license"]["user_limit"], 50);
    assert_eq!(printed["add_on_purchases"][0]["quantity_after"], 5);
    assert_eq!(printed["add_on_purchases"][0]["seats_lost"], 0);
    let refused = run(&expired_file);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr)
        .contains("the upload would be refused: This license has already expired."));
    assert_eq!(
        app.get("/api/v4/licenses")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // The page's "Check first".
    let web = WebClient::new(&app);
    web.sign_in(ROOT_TOKEN).await;
    let (_, csrf) = web.page().await;
    let page = web
        .post_multipart(
            "/admin/subscription/licenses/check",
            &[("authenticity_token", &csrf), ("license", "")],
            Some(("license_file", &duo_pro_license("premium", 3, 1))),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("The upload would be accepted."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("No add-on purchase would change."),
        "{}",
        page.body
    );
    let refused = web
        .post_multipart(
            "/admin/subscription/licenses/check",
            &[("authenticity_token", &csrf), ("license", &expired)],
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert!(refused
        .body
        .contains("The upload would be refused: This license has already expired."));
    assert_eq!(
        app.get("/api/v4/licenses")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

async fn post_json(app: &TestApp, path: &str, body: Value) -> crate::support::app::Reply {
    app.send_with(app.client.post(app.url(path)).json(&body), Some(ROOT_TOKEN))
        .await
}

fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|user| {
                    (
                        user["entry"].as_str().unwrap_or_default().to_string(),
                        user["outcome"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn duo_seats_in_bulk_with_a_preview(app: TestApp) {
    assert_eq!(
        app.upload(&duo_pro_license("premium", 100, 3)).await.status,
        201
    );
    let eng = app.add_group("eng").await;
    let ada = person(&app, "ada", "Ada", Some("2026-06-10")).await;
    let bob = person(&app, "bob", "Bob", Some("2026-01-10")).await;
    let cy = person(&app, "cy", "Cy", None).await;
    let dee = person(&app, "dee", "Dee", None).await;
    let eve = person(&app, "eve", "Eve", None).await;
    let fay = person(&app, "fay", "Fay", None).await;
    for (user, level) in [
        (&ada, 30),
        (&bob, 30),
        (&cy, 10),
        (&dee, 30),
        (&eve, 40),
        (&fay, 30),
    ] {
        join(&app, eng.id, user, level).await;
    }
    app.execute_sql(&format!(
        "UPDATE users SET state = 'blocked' WHERE id = {}",
        dee.id
    ))
    .await;
    let purchase = assign_duo(&app, &[&eve]).await;
    let assigned = || async {
        app.graphql(
            Some(ROOT_TOKEN),
            "query { addOnPurchases { assignedQuantity } }",
            json!({}),
        )
        .await
        .json()["data"]["addOnPurchases"][0]["assignedQuantity"]
            .clone()
    };

    // The preview: who would get a seat, who is skipped and why; nothing written.
    let group_request =
        json!({"add_on_purchase_id": purchase, "group": "eng", "min_access_level": 30});
    let preview = post_json(&app, "/api/v4/-/duo_seats/assign", group_request.clone()).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    let preview = preview.json();
    assert_eq!(preview["dry_run"], true);
    assert_eq!(
        outcomes(&preview),
        [
            ("ada".to_string(), "assign".to_string()),
            ("bob".to_string(), "assign".to_string()),
            ("dee".to_string(), "not_eligible".to_string()),
            ("eve".to_string(), "already_seated".to_string()),
            ("fay".to_string(), "not_enough_seats".to_string()),
        ],
        "cy is a Guest, below the minimum role"
    );
    assert_eq!(
        preview["counts"],
        json!({"assign": 2, "not_found": 0, "not_eligible": 1, "already_seated": 1, "not_enough_seats": 1})
    );
    assert_eq!(assigned().await, 1, "a dry run writes nothing");

    // The real run: the same outcomes, written through the seat service (audited).
    let mut apply = group_request.clone();
    apply["dry_run"] = json!(false);
    let done = post_json(&app, "/api/v4/-/duo_seats/assign", apply)
        .await
        .json();
    assert_eq!(done["dry_run"], false);
    assert_eq!(outcomes(&done), outcomes(&preview));
    assert_eq!(done["purchase"]["assigned_quantity"], 3);
    assert_eq!(assigned().await, 3);
    let audit = app.get("/api/v4/audit_events?per_page=100").await.body;
    assert!(
        audit.contains("Assigned a CODE_SUGGESTIONS seat to ada"),
        "{audit}"
    );

    // A list (usernames or e-mails, from a CSV file's first column), once seats are freed.
    let freed = post_json(
        &app,
        "/api/v4/-/duo_seats/reclaim",
        json!({"add_on_purchase_id": purchase, "inactive_for_days": 30}),
    )
    .await;
    assert_eq!(freed.status, StatusCode::OK, "{}", freed.body);
    let freed = freed.json();
    let inactive: Vec<&str> = freed["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .filter_map(|user| user["username"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        inactive,
        ["eve", "bob"],
        "oldest assignment first; ada was active 5 days ago"
    );
    assert_eq!(
        (freed["dry_run"].clone(), freed["reclaimed"].clone()),
        (json!(true), json!(0))
    );
    assert_eq!(assigned().await, 3);
    let reclaimed = post_json(
        &app,
        "/api/v4/-/duo_seats/reclaim",
        json!({"add_on_purchase_id": purchase, "inactive_for_days": "30", "dry_run": false}),
    )
    .await
    .json();
    assert_eq!(reclaimed["reclaimed"], 2, "{reclaimed}");
    assert_eq!(assigned().await, 1);
    let hook_events = app
        .query_texts("SELECT payload FROM hook_events WHERE event_name = 'add_on_seat_reclaimed' ORDER BY id")
        .await;
    assert_eq!(hook_events.len(), 2, "one hook event per reclaimed seat");
    assert!(
        hook_events[0].contains("\"inactive_for_days\":30"),
        "{}",
        hook_events[0]
    );

    let csv = format!(
        "username,note\n{}\nnobody\n\"@ADA\",again\nfay\ncy\n",
        bob.email
    );
    let listed = post_json(
        &app,
        "/api/v4/-/duo_seats/assign",
        json!({"add_on_purchase_id": purchase, "csv": csv, "dry_run": false}),
    )
    .await
    .json();
    assert_eq!(
        outcomes(&listed),
        [
            (bob.email.clone(), "assign".to_string()),
            ("nobody".to_string(), "not_found".to_string()),
            ("ADA".to_string(), "already_seated".to_string()),
            ("fay".to_string(), "assign".to_string()),
            ("cy".to_string(), "not_enough_seats".to_string()),
        ],
        "{listed}"
    );
    assert_eq!(assigned().await, 3);
    let by_name = post_json(
        &app,
        "/api/v4/-/duo_seats/assign",
        json!({"add_on_purchase_id": format!("gid://gitlab/GitlabSubscriptions::AddOnPurchase/{}", purchase.as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default()), "usernames": "cy, nobody"}),
    )
    .await;
    assert_eq!(by_name.status, StatusCode::OK, "{}", by_name.body);
    assert_eq!(
        outcomes(&by_name.json()),
        [
            ("cy".to_string(), "not_enough_seats".to_string()),
            ("nobody".to_string(), "not_found".to_string())
        ]
    );

    // Refusals, GitLab-shaped, writing nothing.
    for (body, status, answer) in [
        (
            json!({"add_on_purchase_id": purchase, "group": "eng", "usernames": ["ada"]}),
            StatusCode::BAD_REQUEST,
            json!({"error": "group, usernames are mutually exclusive"}),
        ),
        (
            json!({"add_on_purchase_id": purchase}),
            StatusCode::BAD_REQUEST,
            json!({"error": "group, usernames, csv are missing, exactly one parameter must be provided"}),
        ),
        (
            json!({"group": "eng"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "add_on_purchase_id is missing"}),
        ),
        (
            json!({"add_on_purchase_id": 999, "group": "eng"}),
            StatusCode::NOT_FOUND,
            json!({"message": "404 Add-on purchase Not Found"}),
        ),
        (
            json!({"add_on_purchase_id": purchase, "group": "nope"}),
            StatusCode::NOT_FOUND,
            json!({"message": "404 Group Not Found"}),
        ),
        (
            json!({"add_on_purchase_id": purchase, "group": "eng", "min_access_level": 35}),
            StatusCode::BAD_REQUEST,
            json!({"error": "min_access_level is invalid"}),
        ),
    ] {
        let reply = post_json(&app, "/api/v4/-/duo_seats/assign", body.clone()).await;
        assert_eq!((reply.status, reply.json()), (status, answer), "{body}");
    }
    let bad_days = post_json(
        &app,
        "/api/v4/-/duo_seats/reclaim",
        json!({"add_on_purchase_id": purchase, "inactive_for_days": 0}),
    )
    .await;
    assert_eq!(
        (bad_days.status, bad_days.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "inactive_for_days is invalid"})
        )
    );
    assert_eq!(assigned().await, 3);
}

/// Waits until `selector`'s text contains `text`.
async fn wait_for_text(browser: &Browser, selector: &str, text: &str) {
    browser
        .wait_for(
            "return (document.querySelector(arguments[0])?.textContent || '').includes(arguments[1])",
            json!([selector, text]),
            &format!("{selector} to say {text}"),
        )
        .await;
}

async fn the_seat_pages_work_in_chromium(app: TestApp) {
    let Some((browser, driver)) = chromium() else {
        return;
    };
    assert_eq!(
        app.upload(&duo_pro_license("premium", 10, 2)).await.status,
        201
    );
    let eng = app.add_group("eng").await;
    for name in ["ada", "bob", "cy"] {
        let user = person(&app, name, name, None).await;
        join(&app, eng.id, &user, 30).await;
    }
    for index in 0..4 {
        person(&app, &format!("other{index}"), "Other", Some("2026-06-14")).await;
    }
    recount(&app).await;
    let key_file = app.data_dir.join("next.gitlab-license");
    std::fs::write(&key_file, duo_pro_license("premium", 20, 1)).expect("key file");

    let browser = Browser::start(&browser, &driver, None).await;
    browser.visit(&app.url("/admin/sign_in")).await;
    browser.type_into("#token", ROOT_TOKEN).await;
    browser.click("form[action='/admin/sign_in'] button").await;
    browser
        .wait_for(
            "return location.pathname === '/admin/subscription'",
            json!([]),
            "signed in",
        )
        .await;
    // The alert banner, on the subscription page and on the Seats page.
    wait_for_text(&browser, ".seat-alert", "License seats are 80 % used").await;
    browser.click("nav a[href='/admin/seats']").await;
    wait_for_text(&browser, "h1", "Seats").await;
    wait_for_text(&browser, ".seat-alert", "(8 of 10)").await;

    // Who holds a seat, filtered by group.
    browser.type_into("#filter-group", "eng").await;
    browser.click("form.holder-filters button").await;
    wait_for_text(&browser, ".holder-count", "3 billable users match.").await;
    let csv_link = browser
        .script(
            "return document.querySelector('a.holders-csv').getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(csv_link, json!("/admin/seats/billable_users.csv?group=eng"));

    // Duo seats for the group's developers: preview, then confirm.
    browser.type_into("#bulk-group", "eng").await;
    browser
        .script(
            "document.querySelector('#bulk-role').value = '30'",
            json!([]),
        )
        .await;
    browser.click("form.bulk-assign button.bulk-preview").await;
    wait_for_text(&browser, ".bulk-summary", "2 would get a seat").await;
    let skipped = browser
        .script(
            "return [...document.querySelectorAll('tr[data-outcome]')].map(r => r.dataset.entry + ':' + r.dataset.outcome)",
            json!([]),
        )
        .await;
    assert_eq!(
        skipped,
        json!(["ada:assign", "bob:assign", "cy:not_enough_seats"])
    );
    browser.click("form.bulk-confirm button").await;
    wait_for_text(&browser, ".bulk-summary", "2 got a seat").await;
    wait_for_text(&browser, ".bulk-summary", "2 of 2 seats used.").await;

    // Reclaim from holders inactive for a day (both were never active): preview, confirm.
    browser
        .script(
            "document.querySelector('#reclaim-days').value = '1'",
            json!([]),
        )
        .await;
    browser
        .click("form.bulk-reclaim button.reclaim-preview")
        .await;
    wait_for_text(
        &browser,
        ".bulk-summary",
        "2 seat holders have not been active for 1 days.",
    )
    .await;
    browser.click("form.bulk-confirm button").await;
    wait_for_text(&browser, ".bulk-summary", "2 seats reclaimed.").await;

    // A group's billable member removed from the group, from the filtered list.
    browser.type_into("#filter-group", "eng").await;
    browser.click("form.holder-filters button").await;
    wait_for_text(&browser, ".holder-count", "3 billable users match.").await;
    browser
        .click("tr[data-username=cy] form.remove-member button")
        .await;
    wait_for_text(
        &browser,
        ".flash.notice",
        "The member was removed from the group.",
    )
    .await;
    wait_for_text(&browser, ".holder-count", "2 billable users match.").await;

    // A license checked before it is uploaded.
    browser.click("nav a[href='/admin/subscription']").await;
    wait_for_text(&browser, "h1", "Subscription").await;
    browser
        .type_into("#license-file", &key_file.display().to_string())
        .await;
    browser.click("form.upload button.check-license").await;
    wait_for_text(&browser, ".check-verdict", "The upload would be accepted.").await;
    wait_for_text(&browser, ".check-seats", "20").await;
    wait_for_text(&browser, ".check-purchases", "GitLab Duo Pro: 2 → 1 seats.").await;
    assert_eq!(
        app.get("/api/v4/licenses")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let name = format!("{:?}", app.backend).to_lowercase();
    let artifacts = crate::web::artifacts_dir();
    std::fs::create_dir_all(&artifacts).expect("artifacts");
    browser
        .screenshot(&artifacts.join(format!("license-check-{name}.png")))
        .await;
}
