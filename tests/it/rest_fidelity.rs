//! The REST API and the directory as GitLab EE's source has them: recorded activity and
//! deactivation, `using_license_seat`, the true-up message, the usage CSV's empty licensee
//! values, the add-on purchase endpoint's parameters and entity, and a 413 the client can read.

use gitlab_license_server::store::Write;
use std::io::{Read as _, Write as _};

use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::licenses::{license, license_from_payload};
use gitlab_license_server::store::{HistoryRow, NewUser};

/// Activity is recorded where the server sees it (REST, GraphQL, the page's sign-in), at most
/// once a day; a user never seen active can be deactivated, one active within 90 days not.
async fn activity_is_recorded_and_deactivation_follows_it(app: TestApp) {
    let quiet = app.add_user(NewUser::human("quiet", false)).await;
    let rest = app.add_user(NewUser::human("rest", false)).await;
    let graphql = app.add_user(NewUser::human("graphql", false)).await;
    let page = app.add_user(NewUser::human("page", true)).await;
    let (rest_token, _) = app.token_for(&rest, &["read_user"], None).await;
    let (graphql_token, _) = app.token_for(&graphql, &["read_api"], None).await;
    let (page_token, _) = app.token_for(&page, &["api"], None).await;
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&rest_token))
            .await
            .status,
        StatusCode::OK
    );
    let reply = app
        .graphql(
            Some(&graphql_token),
            "{ currentUser { username } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.json()["data"]["currentUser"]["username"], "graphql");
    // The page's sign-in form.
    let form = app.send(Method::GET, "/admin/sign_in", None).await;
    let cookie = form
        .header("set-cookie")
        .and_then(|value| value.split(';').next())
        .unwrap_or_default()
        .to_string();
    let signed_in = app
        .send_with(
            app.client
                .post(app.url("/admin/sign_in"))
                .header("Cookie", cookie)
                .form(&[
                    (
                        "authenticity_token",
                        crate::support::csrf_of(&form.body).as_str(),
                    ),
                    ("token", page_token.as_str()),
                ]),
            None,
        )
        .await;
    assert!(signed_in.status.is_redirection() || signed_in.status.is_success());

    let today = app.clock_today().format("%Y-%m-%d").to_string();
    for (user, expected) in [
        (&quiet, Value::Null),
        (&rest, json!(today)),
        (&graphql, json!(today)),
        (&page, json!(today)),
    ] {
        let shown = app.get(&format!("/api/v4/users/{}", user.id)).await.json();
        assert_eq!(shown["last_activity_on"], expected, "{}", user.username);
    }
    // Never seen active: deactivated (GitLab's nil `last_active_at` counts as inactive).
    let reply = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{}/deactivate", quiet.id),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        (reply.status, reply.json()),
        (StatusCode::CREATED, json!(true))
    );
    // Active today: refused.
    let reply = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{}/deactivate", rest.id),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // Once a day: a second request the same day writes nothing (the date stays, nothing else
    // changes); the next day moves it.
    app.set_now(test_now() + chrono::TimeDelta::days(1));
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&rest_token))
            .await
            .status,
        StatusCode::OK
    );
    let shown = app.get(&format!("/api/v4/users/{}", rest.id)).await.json();
    assert_eq!(
        shown["last_activity_on"],
        json!(app.clock_today().format("%Y-%m-%d").to_string())
    );
}

/// `using_license_seat` in the administrators' user entities, by the billable-user rule.
async fn using_license_seat_follows_the_billable_rule(app: TestApp) {
    let human = app.add_user(NewUser::human("human", false)).await;
    let bot = app
        .add_user(NewUser {
            user_type: gitlab_license_server::domain::users::UserType::ProjectBot,
            ..NewUser::human("bot", false)
        })
        .await;
    let blocked = app
        .add_user(NewUser {
            state: gitlab_license_server::domain::users::UserState::Blocked,
            ..NewUser::human("blocked", false)
        })
        .await;
    let seat = |users: &Value, id: i64| {
        users
            .as_array()
            .and_then(|users| users.iter().find(|user| user["id"] == id))
            .map(|user| user["using_license_seat"].clone())
            .unwrap_or(Value::Null)
    };
    // No license: nobody occupies a seat.
    let users = app.get("/api/v4/users").await.json();
    assert_eq!(seat(&users, human.id), json!(false));
    let premium = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "premium", "active_user_count": 10}),
    );
    assert_eq!(app.upload(&premium).await.status, StatusCode::CREATED);
    let users = app.get("/api/v4/users").await.json();
    assert_eq!(
        [
            seat(&users, 1),
            seat(&users, human.id),
            seat(&users, bot.id),
            seat(&users, blocked.id)
        ],
        [json!(true), json!(true), json!(false), json!(false)]
    );
    // The field sits where GitLab EE puts it, after `email_reset_offered_at`.
    let one = app.get(&format!("/api/v4/users/{}", human.id)).await;
    let keys: Vec<String> = one
        .json()
        .as_object()
        .expect("user")
        .keys()
        .cloned()
        .collect();
    let position = |key: &str| keys.iter().position(|k| k == key).unwrap_or(usize::MAX);
    assert_eq!(
        position("using_license_seat"),
        position("email_reset_offered_at") + 1
    );
    assert_eq!(one.json()["using_license_seat"], true);
    let me = app.get("/api/v4/user").await.json();
    assert_eq!(me["using_license_seat"], true);
    // Ultimate: only roles above Guest occupy a seat.
    let ultimate = license(
        "2026-02-01",
        "2027-01-01",
        json!({"plan": "ultimate", "active_user_count": 10}),
    );
    assert_eq!(app.upload(&ultimate).await.status, StatusCode::CREATED);
    let group = app.add_group("g").await;
    app.state
        .store
        .add_membership(
            human.id,
            "Namespace",
            group.id,
            30,
            Write::unaudited(test_now()),
        )
        .await
        .expect("member");
    let users = app.get("/api/v4/users").await.json();
    assert_eq!(
        [seat(&users, 1), seat(&users, human.id)],
        [json!(false), json!(true)]
    );
}

/// The true-up refusal interpolates the numbers as they are (no thousands separators); the
/// seat-limit message keeps its separators.
async fn trueup_numbers_are_raw(app: TestApp) {
    app.state
        .store
        .insert_history(&[HistoryRow {
            recorded_at: Utc
                .with_ymd_and_hms(2025, 5, 1, 12, 0, 0)
                .single()
                .expect("time"),
            active_user_count: 3500,
        }])
        .await
        .expect("history");
    let trueup = license(
        "2026-01-01",
        "2027-01-01",
        json!({
            "active_user_count": 5000, "previous_user_count": 2000,
            "trueup_quantity": 1000, "trueup_from": "2025-01-01", "trueup_to": "2025-12-31",
        }),
    );
    let reply = app.upload(&trueup).await;
    assert_eq!(
        reply.json()["message"],
        "You have applied a True-up for 1000 users but you need one for 1500 users. Please contact sales at https://about.gitlab.com/sales/"
    );
}

/// An empty licensee value is `""` in the usage CSV, as Ruby's CSV writes an empty string.
async fn usage_csv_quotes_empty_licensee_values(app: TestApp) {
    let key = license_from_payload(json!({
        "version": 1,
        "licensee": {"Name": "Ada", "Email": "", "Company": ""},
        "issued_at": "2026-01-01",
        "expires_at": "2027-01-01",
        "restrictions": {"plan": "premium", "active_user_count": 10}
    }));
    assert_eq!(app.upload(&key).await.status, StatusCode::CREATED);
    let csv = app.get("/api/v4/license/usage_export.csv").await.body;
    assert!(csv.contains("\nEmail,\"\"\n"), "{csv}");
    assert!(csv.contains("\nCompany,\"\"\n"), "{csv}");
}

/// `/namespaces/:id/subscription_add_on_purchase/:add_on_name` as GitLab declares it: POST
/// requires `purchase_xid`, PUT requires the dates, no `id` in the entity, no rule of ours on
/// the order of the dates.
async fn add_on_purchase_endpoint_matches_gitlabs(app: TestApp) {
    let group = app.add_group("acme").await;
    let path = format!(
        "/api/v4/namespaces/{}/subscription_add_on_purchase/duo_enterprise",
        group.id
    );
    let send = |method: Method, body: Value| {
        let app = &app;
        let path = path.clone();
        async move {
            app.send_with(
                app.client.request(method, app.url(&path)).json(&body),
                Some(ROOT_TOKEN),
            )
            .await
        }
    };
    let reply = send(
        Method::POST,
        json!({"quantity": 5, "started_on": "2026-01-01", "expires_on": "2027-01-01"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json(), json!({"error": "purchase_xid is missing"}));
    // The dates in the wrong order are no refusal of GitLab's: the purchase is never active.
    let reply = send(
        Method::POST,
        json!({"quantity": 5, "started_on": "2027-01-01", "expires_on": "2026-01-01", "purchase_xid": "A-S1"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let entity = reply.json();
    assert!(entity.get("id").is_none(), "{entity}");
    assert_eq!(
        entity
            .as_object()
            .map(|object| object.keys().cloned().collect::<Vec<_>>()),
        Some(
            [
                "namespace_id",
                "namespace_name",
                "add_on",
                "quantity",
                "started_on",
                "expires_on",
                "purchase_xid",
                "trial"
            ]
            .map(String::from)
            .to_vec()
        )
    );
    let reply = send(Method::PUT, json!({"quantity": 7})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({"error": "started_on is missing, expires_on is missing"})
    );
    let reply = send(
        Method::PUT,
        json!({"quantity": 7, "started_on": "2026-01-01", "expires_on": "2027-01-01"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["quantity"], 7);
}

/// A body over the limit, sent whole by a client that reads only afterwards (as Python's
/// `requests` does): it reads the JSON 413 instead of a broken pipe.
async fn an_oversized_body_gets_a_readable_413(app: TestApp) {
    let address = app.base.trim_start_matches("http://").to_string();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        let body = vec![b'a'; 12 * 1024 * 1024];
        let head = format!(
            "POST /api/v4/license HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {ROOT_TOKEN}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("head");
        stream.write_all(&body).expect("the whole body is accepted");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .expect("client");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.ends_with("{\"message\":\"413 Request Entity Too Large\"}"),
        "{answer}"
    );
}

on_both_backends!(
    activity_is_recorded_and_deactivation_follows_it,
    using_license_seat_follows_the_billable_rule,
    trueup_numbers_are_raw,
    usage_csv_quotes_empty_licensee_values,
    add_on_purchase_endpoint_matches_gitlabs,
    an_oversized_body_gets_a_readable_413,
);
