//! System hooks: the API, deliveries to a local receiver (token header, retry with back-off
//! after the receiver fails), license alerts, and exactly-once delivery across two replicas.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{postgres_available, test_now, Backend, TestApp, ROOT_TOKEN};
use crate::support::licenses::license;
use gitlab_license_server::services::hooks;
use gitlab_license_server::store::NewUser;

/// A local HTTP endpoint that records what it receives and fails the first `failures` posts.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    failures: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Self::default();
        let recorded = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let recorded = recorded.clone();
                async move {
                    let mut failures = recorded.failures.lock().expect("lock");
                    if *failures > 0 {
                        *failures -= 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let payload = serde_json::from_str(&body).unwrap_or(Value::Null);
                    recorded
                        .received
                        .lock()
                        .expect("lock")
                        .push((headers, payload));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (receiver, url)
    }

    fn events(&self) -> Vec<String> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, payload)| {
                payload["event_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    fn last(&self, event: &str) -> (HeaderMap, Value) {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .find(|(_, payload)| payload["event_name"] == event)
            .cloned()
            .unwrap_or_else(|| panic!("no {event} received"))
    }

    fn fail_next(&self, count: usize) {
        *self.failures.lock().expect("lock") = count;
    }
}

async fn add_hook(app: &TestApp, url: &str) -> Value {
    let reply = app
        .send_with(
            app.client
                .post(app.url("/api/v4/hooks"))
                .json(&json!({"url": url, "token": "s3cret-hook-token", "enable_ssl_verification": false})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()
}

async fn deliver(app: &TestApp) -> usize {
    hooks::deliver_due(&app.state).await.expect("deliver")
}

on_both_backends!(hooks_api_and_deliveries, license_alerts_reach_the_hooks);

async fn hooks_api_and_deliveries(app: TestApp) {
    let (receiver, url) = Receiver::start().await;
    // Validation and the entity.
    let bad = app
        .send_with(
            app.client
                .post(app.url("/api/v4/hooks"))
                .json(&json!({"url": "ftp://x"})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(bad.status, 400);
    let missing = app
        .send_with(
            app.client.post(app.url("/api/v4/hooks")).json(&json!({})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        (missing.status.as_u16(), missing.json()),
        (400, json!({"error": "url is missing"}))
    );
    let hook = add_hook(&app, &url).await;
    let id = hook["id"].as_i64().expect("id");
    assert_eq!(hook["url"], url.as_str());
    assert_eq!(hook["push_events"], true);
    assert_eq!(hook["enable_ssl_verification"], false);
    assert!(hook.get("token").is_none(), "the token is never shown");
    assert_eq!(app.get("/api/v4/hooks").await.json()[0]["id"], id);
    let updated = app
        .send_with(
            app.client
                .put(app.url(&format!("/api/v4/hooks/{id}")))
                .json(&json!({"name": "alerts"})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(updated.json()["name"], "alerts");
    assert_eq!(updated.json()["url"], url.as_str());
    let nope = app.get("/api/v4/hooks/9999").await;
    assert_eq!(
        (nope.status.as_u16(), nope.json()),
        (404, json!({"message": "404 Hook Not Found"}))
    );
    let user = app.add_user(NewUser::human("ada", false)).await;
    let (user_token, _) = app.token_for(&user, &["api"], None).await;
    assert_eq!(
        app.send(reqwest::Method::GET, "/api/v4/hooks", Some(&user_token))
            .await
            .status,
        403
    );

    // The test endpoint sends at once.
    let tested = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v4/hooks/{id}"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(tested.status, 201, "{}", tested.body);
    let (headers, _) = receiver.last("project_create");
    assert_eq!(headers["x-gitlab-token"], "s3cret-hook-token");
    assert_eq!(headers["x-gitlab-event"], "System Hook");

    // GitLab's user events, recorded with the change and delivered by the sender.
    let created = app
        .send_with(
            app.client.post(app.url("/api/v4/users")).json(
                &json!({"username": "grace", "name": "Grace Hopper", "email": "grace@example.org"}),
            ),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let grace_id = created.json()["id"].clone();
    assert_eq!(deliver(&app).await, 1);
    let (_, payload) = receiver.last("user_create");
    assert_eq!(payload["user_id"], grace_id);
    assert_eq!(payload["username"], "grace");
    assert_eq!(payload["email"], "grace@example.org");
    assert_eq!(
        app.delete(&format!("/api/v4/users/{grace_id}"))
            .await
            .status,
        204
    );
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(receiver.last("user_destroy").1["user_id"], grace_id);

    // Groups and memberships.
    let group = app
        .send_with(
            app.client
                .post(app.url("/api/v4/groups"))
                .json(&json!({"name": "Acme", "path": "acme"})),
            Some(ROOT_TOKEN),
        )
        .await
        .json();
    let group_id = group["id"].clone();
    let member_path = format!("/api/v4/groups/{group_id}/members");
    let added = app
        .send_with(
            app.client
                .post(app.url(&member_path))
                .json(&json!({"user_id": user.id, "access_level": 30})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let changed = app
        .send_with(
            app.client
                .put(app.url(&format!("{member_path}/{}", user.id)))
                .json(&json!({"access_level": 40})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        app.delete(&format!("{member_path}/{}", user.id))
            .await
            .status,
        204
    );
    assert_eq!(
        app.delete(&format!("/api/v4/groups/{group_id}"))
            .await
            .status,
        202
    );
    assert_eq!(deliver(&app).await, 5);
    // Sent several at a time (HOOK_CONCURRENCY), so they may arrive in any order — GitLab
    // promises no order either.
    let mut latest = receiver.events().split_off(receiver.events().len() - 5);
    latest.sort();
    assert_eq!(
        latest,
        [
            "group_create",
            "group_destroy",
            "user_add_to_group",
            "user_remove_from_group",
            "user_update_for_group",
        ]
    );
    assert_eq!(receiver.last("group_create").1["group_id"], group_id);
    assert_eq!(receiver.last("group_destroy").1["path"], "acme");
    let (_, joined) = receiver.last("user_add_to_group");
    assert_eq!(joined["group_access"], "Developer");
    assert_eq!(joined["user_username"], "ada");
    assert_eq!(
        receiver.last("user_update_for_group").1["group_access"],
        "Maintainer"
    );

    // The receiver fails: the delivery waits (10 s), then succeeds, exactly once.
    receiver.fail_next(1);
    assert_eq!(
        app.upload(&crate::support::licenses::premium(10))
            .await
            .status,
        201
    );
    assert_eq!(deliver(&app).await, 1, "one failed attempt");
    assert_eq!(deliver(&app).await, 0, "not yet due again");
    app.set_now(test_now() + chrono::TimeDelta::seconds(11));
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(
        receiver
            .events()
            .iter()
            .filter(|event| *event == "license_added")
            .count(),
        1
    );
    let log = app
        .get(&format!("/api/v4/hooks/{id}/deliveries"))
        .await
        .json();
    let added = log
        .as_array()
        .and_then(|log| {
            log.iter()
                .find(|delivery| delivery["event_name"] == "license_added")
        })
        .cloned()
        .expect("logged");
    assert_eq!(added["state"], "delivered");
    assert_eq!(added["attempts"], 2);
    assert_eq!(added["response_status"], 200);

    // Deleting the hook ends its deliveries.
    assert_eq!(app.delete(&format!("/api/v4/hooks/{id}")).await.status, 204);
    app.add_user(NewUser::human("linus", false)).await;
    assert_eq!(deliver(&app).await, 0);
}

async fn license_alerts_reach_the_hooks(app: TestApp) {
    let (receiver, url) = Receiver::start().await;
    add_hook(&app, &url).await;
    // 20 days left, one seat, two billable users (root and ada).
    app.add_user(NewUser::human("ada", false)).await;
    let key = license(
        "2026-01-01",
        "2026-07-05",
        json!({"plan": "premium", "active_user_count": 1}),
    );
    let uploaded = app.upload(&key).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    deliver(&app).await;
    let events = receiver.events();
    assert!(events.contains(&"license_added".to_string()), "{events:?}");
    let (_, expiring) = receiver.last("license_expiring");
    assert_eq!(expiring["days_remaining"], 20);
    assert_eq!(receiver.last("license_overage").1["overage"], 1);
    // Again: nothing new. A week before expiry: the 7-day notice; then expiry.
    assert_eq!(
        hooks::check_license_alerts(&app.state)
            .await
            .expect("check"),
        0
    );
    app.set_now(test_now() + chrono::TimeDelta::days(13));
    assert_eq!(
        hooks::check_license_alerts(&app.state)
            .await
            .expect("check"),
        1
    );
    app.set_now(test_now() + chrono::TimeDelta::days(20));
    assert_eq!(
        hooks::check_license_alerts(&app.state)
            .await
            .expect("check"),
        1
    );
    deliver(&app).await;
    assert_eq!(
        receiver.last("license_expired").1["expires_at"],
        "2026-07-05"
    );
    let expiring: Vec<i64> = receiver
        .received
        .lock()
        .expect("lock")
        .iter()
        .filter(|(_, payload)| payload["event_name"] == "license_expiring")
        .map(|(_, payload)| payload["days_remaining"].as_i64().unwrap_or_default())
        .collect();
    assert_eq!(expiring, [20, 7]);
}

/// Two server processes on one PostgreSQL database: each event reaches each hook once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_each_event_once() {
    use crate::support::process::{free_port, start_server};
    if !postgres_available() {
        return;
    }
    let app = TestApp::start(Backend::Postgres, &[]).await;
    let (receiver, url) = Receiver::start().await;
    add_hook(&app, &url).await;
    let ports = [free_port(), free_port()];
    let _servers = [
        start_server(&app.database_url, &app.data_dir.join("a"), ports[0], &[]).await,
        start_server(&app.database_url, &app.data_dir.join("b"), ports[1], &[]).await,
    ];
    for n in 0..10 {
        app.add_user(NewUser::human(&format!("user{n}"), false))
            .await;
        let created = app
            .send_with(
                app.client.post(app.url("/api/v4/users")).json(
                    &json!({"username": format!("api{n}"), "name": "Api", "email": format!("api{n}@example.org")}),
                ),
                Some(ROOT_TOKEN),
            )
            .await;
        assert_eq!(created.status, 201);
    }
    // The replicas hear of the new events (NOTIFY) and race to send them.
    let started = std::time::Instant::now();
    while receiver.events().len() < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "deliveries did not arrive: {:?}",
            receiver.events()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut users: Vec<String> = receiver
        .received
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, payload)| payload["username"].as_str().unwrap_or_default().to_string())
        .collect();
    users.sort();
    let expected: Vec<String> = {
        let mut names: Vec<String> = (0..10).map(|n| format!("api{n}")).collect();
        names.sort();
        names
    };
    assert_eq!(users, expected, "each event delivered exactly once");
}
