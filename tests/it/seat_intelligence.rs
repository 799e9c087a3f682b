//! Seat intelligence: billable members per group (GitLab's API), the instance-wide list of
//! billable users, seat alerts, license checks and Duo seats in bulk — on both backends,
//! through the HTTP surface.

use gitlab_license_server::store::{NewUser, User, Write};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::licenses::license;

on_both_backends!(
    billable_members_of_a_group,
    billable_member_removal,
    billable_members_follow_the_plan
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
