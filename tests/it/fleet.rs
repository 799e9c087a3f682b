//! The fleet (docs/fleet.md): several GitLab instances under one license view. The upstream
//! "GitLab instances" are instances of this very server (it speaks GitLab's users and license
//! API), filled with overlapping users through the API; faults come from a proxy in front of
//! them (support/fault_proxy.rs). The fleet server under test runs on SQLite and PostgreSQL.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, Reply, TestApp, ROOT_TOKEN};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::licenses::premium;

/// Quick retries and a short time budget, so faults cost the tests seconds, not minutes.
const FLEET_SETTINGS: &[(&str, &str)] = &[
    ("OUTBOUND_RETRY_BASE_MILLISECONDS", "50"),
    ("OUTBOUND_TIMEOUT_SECONDS", "2"),
    ("OUTBOUND_MAX_ATTEMPTS", "4"),
];

async fn fleet_server(backend: Backend) -> TestApp {
    TestApp::start(backend, FLEET_SETTINGS).await
}

/// A user to create upstream: username, e-mail, what to do after (`block`, `deactivate`), and
/// a user type.
pub(crate) struct Person(
    pub(crate) &'static str,
    pub(crate) &'static str,
    pub(crate) Option<&'static str>,
    pub(crate) &'static str,
);

/// An upstream "GitLab" (always SQLite: its backend is not what is tested) with `people` and a
/// Premium license of 100 seats (GitLab's `using_license_seat` is false without a license).
pub(crate) async fn upstream(people: &[Person]) -> TestApp {
    let app = TestApp::start(Backend::Sqlite, &[]).await;
    let uploaded = app.upload(&premium(100)).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    for Person(username, email, then, user_type) in people {
        let created = app
            .send_with(
                app.client.post(app.url("/api/v4/users")).json(&json!({
                    "username": username, "name": username, "email": email, "user_type": user_type,
                })),
                Some(ROOT_TOKEN),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        if let Some(action) = then {
            let id = created.json()["id"].as_i64().expect("id");
            let moderated = app
                .send(
                    Method::POST,
                    &format!("/api/v4/users/{id}/{action}"),
                    Some(ROOT_TOKEN),
                )
                .await;
            assert_eq!(moderated.status, StatusCode::CREATED, "{}", moderated.body);
        }
    }
    app
}

/// `n` active users `prefix0001@bulk.example` … written straight into an upstream's table.
async fn bulk_users(app: &TestApp, prefix: &str, n: usize) {
    let rows: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                "('{prefix}{i:04}', '{prefix} {i}', '{prefix}{i:04}@bulk.example', 'active', 'human', 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
            )
        })
        .collect();
    app.execute_sql(&format!(
        "INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at) VALUES {}",
        rows.join(", ")
    ))
    .await;
}

async fn post_json(app: &TestApp, path: &str, body: Value, token: &str) -> Reply {
    app.send_with(app.client.post(app.url(path)).json(&body), Some(token))
        .await
}

/// Registers `base` as instance `name`, with the upstream's root token.
pub(crate) async fn add_instance(fleet: &TestApp, name: &str, base: &str) -> Value {
    let reply = post_json(
        fleet,
        "/api/v4/-/fleet/instances",
        json!({"name": name, "url": base, "token": ROOT_TOKEN}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.json()
}

/// Asks for a sync (202) and runs the job; returns the instance afterwards.
pub(crate) async fn sync(fleet: &TestApp, name: &str) -> Value {
    let reply = fleet
        .send(
            Method::POST,
            &format!("/api/v4/-/fleet/instances/{name}/sync"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.json()["last_sync"]["status"], "queued");
    fleet.run_jobs().await;
    fleet
        .get(&format!("/api/v4/-/fleet/instances/{name}"))
        .await
        .json()
}

async fn summary(fleet: &TestApp) -> Value {
    let reply = fleet.get("/api/v4/-/fleet/summary").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()
}

/// Every person of the people list with `query`, following the keyset pages.
async fn people(fleet: &TestApp, query: &str) -> Vec<Value> {
    let mut path = format!("/api/v4/-/fleet/people?per_page=3&{query}");
    let mut all = Vec::new();
    loop {
        let reply = fleet.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        all.extend(reply.json().as_array().cloned().unwrap_or_default());
        let Some(link) = reply.header("link") else {
            return all;
        };
        let url = link
            .split(';')
            .next()
            .unwrap_or_default()
            .trim_matches(|c| c == '<' || c == '>');
        let parsed = reqwest::Url::parse(url).expect("next link");
        path = format!("{}?{}", parsed.path(), parsed.query().unwrap_or_default());
    }
}

fn names(people: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = people
        .iter()
        .map(|person| {
            person["accounts"][0]["username"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    names.sort();
    names
}

/// The three instances of the hand count (docs/fleet.md walks through it):
/// prod: root, ada, bob, cy, hal (5 billable); dee blocked; a project bot.
/// staging: root, ada, BOB@ (same person as bob by e-mail, any case), eve (4 billable).
/// dr: root, ada, gus (3 billable); fay deactivated.
async fn three_upstreams() -> (TestApp, TestApp, TestApp) {
    let prod = upstream(&[
        Person("ada", "ada@example.org", None, "human"),
        Person("bob", "bob@example.org", None, "human"),
        Person("cy", "cy@example.org", None, "human"),
        Person("hal", "hal@example.org", None, "human"),
        Person("dee", "dee@example.org", Some("block"), "human"),
        Person("buildbot", "buildbot@example.org", None, "project_bot"),
    ])
    .await;
    let staging = upstream(&[
        Person("ada", "ada@example.org", None, "human"),
        Person("robert", "BOB@Example.org", None, "human"),
        Person("eve", "eve@example.org", None, "human"),
    ])
    .await;
    let dr = upstream(&[
        Person("ada", "ada@example.org", None, "human"),
        Person("gus", "gus@example.org", None, "human"),
        Person("fay", "fay@example.org", Some("deactivate"), "human"),
    ])
    .await;
    (prod, staging, dr)
}

async fn three_instances_give_the_hand_counted_answer(backend: Backend) {
    let fleet = fleet_server(backend).await;
    let (prod, staging, dr) = three_upstreams().await;
    for (name, app) in [("prod", &prod), ("staging", &staging), ("dr", &dr)] {
        let added = add_instance(&fleet, name, &app.base).await;
        assert_eq!(added["token_set"], true);
        assert_eq!(added["last_sync"]["status"], "never");
        let synced = sync(&fleet, name).await;
        assert_eq!(synced["last_sync"]["status"], "success", "{synced}");
        assert_eq!(synced["billability_source"], "instance");
        assert_eq!(synced["gitlab_version"], "18.6.0-ee");
        assert_eq!(synced["license"]["plan"], "premium");
        assert_eq!(synced["license"]["seats"], 100);
        assert_eq!(synced["license"]["expires_at"], "2027-01-01");
    }
    let figures = summary(&fleet).await;
    assert_eq!(figures["unique_billable_users"], 7, "{figures}");
    assert_eq!(figures["largest_instance"], "prod");
    assert_eq!(figures["subset_holds"], false);
    assert_eq!(figures["people_outside_largest"], 2);
    assert_eq!(figures["billable_accounts"], 12);
    assert_eq!(figures["people"], 10);
    let billable: Vec<(String, i64)> = figures["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|instance| {
            (
                instance["name"].as_str().unwrap_or_default().to_string(),
                instance["billable_users"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        billable,
        [
            ("prod".to_string(), 5),
            ("staging".to_string(), 4),
            ("dr".to_string(), 3)
        ]
    );
    assert_eq!(
        figures["overlaps"],
        json!([
            {"instances": ["prod", "staging"], "shared_billable_people": 3},
            {"instances": ["prod", "dr"], "shared_billable_people": 2},
            {"instances": ["staging", "dr"], "shared_billable_people": 2},
        ])
    );

    // The people who break the subset assumption, with where they are billable.
    let outside = people(&fleet, "outside_largest=true").await;
    assert_eq!(names(&outside), ["eve", "gus"]);
    let eve = outside
        .iter()
        .find(|p| p["person"] == "eve@example.org")
        .expect("eve");
    assert_eq!(eve["billable_on"], json!(["staging"]));
    // bob is one person on two instances despite the e-mail's case and another username.
    let everyone = people(&fleet, "").await;
    assert_eq!(everyone.len(), 10);
    let bob = everyone
        .iter()
        .find(|p| p["person"] == "bob@example.org")
        .expect("bob");
    assert_eq!(bob["present_on"], json!(["prod", "staging"]));
    assert_eq!(bob["accounts"][1]["username"], "robert");
    assert_eq!(
        names(&people(&fleet, "billable=false").await),
        ["buildbot", "dee", "fay"]
    );
    assert_eq!(people(&fleet, "instance=dr").await.len(), 4);
    assert_eq!(
        people(&fleet, "instance=dr&billable=true&outside_largest=true")
            .await
            .len(),
        1
    );
    let csv = fleet
        .get("/api/v4/-/fleet/people.csv?outside_largest=true")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(
        csv.body,
        "person,username,name,billable,outside_largest,billable_on,present_on\neve@example.org,eve,eve,true,true,staging,staging\ngus@example.org,gus,gus,true,true,dr,dr\n"
    );

    // The subset violation was raised once, as a system-hook event.
    let events = fleet
        .query_texts("SELECT payload FROM hook_events WHERE event_name = 'fleet_subset_violated'")
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].contains("\"largest_instance\":\"prod\""),
        "{}",
        events[0]
    );

    // A user removed upstream is gone after the next sync; eve leaving staging shrinks the
    // people outside prod. A second violation event needs the subset to hold first.
    let eve_id = staging.get("/api/v4/users?username=eve").await.json()[0]["id"].clone();
    let deleted = staging.delete(&format!("/api/v4/users/{eve_id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    sync(&fleet, "staging").await;
    let figures = summary(&fleet).await;
    assert_eq!(figures["unique_billable_users"], 6);
    assert_eq!(figures["people_outside_largest"], 1);
    assert!(people(&fleet, "")
        .await
        .iter()
        .all(|p| p["person"] != "eve@example.org"));
    assert_eq!(
        fleet
            .query_texts(
                "SELECT event_name FROM hook_events WHERE event_name = 'fleet_subset_violated'"
            )
            .await
            .len(),
        1
    );

    // Removing an instance recomputes the fleet without it: prod alone holds everyone left.
    let removed = fleet.delete("/api/v4/-/fleet/instances/dr").await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let figures = summary(&fleet).await;
    assert_eq!(figures["subset_holds"], true, "{figures}");
    assert_eq!(figures["unique_billable_users"], 5);

    // Every change an administrator made is audited.
    let audited = fleet
        .query_texts(
            "SELECT event_name FROM audit_events WHERE event_name LIKE 'fleet%' ORDER BY id",
        )
        .await;
    assert_eq!(
        audited
            .iter()
            .filter(|e| *e == "fleet_instance_created")
            .count(),
        3
    );
    assert_eq!(
        audited
            .iter()
            .filter(|e| *e == "fleet_sync_requested")
            .count(),
        4
    );
    assert_eq!(
        audited
            .iter()
            .filter(|e| *e == "fleet_instance_removed")
            .count(),
        1
    );

    // The gauges.
    let metrics = fleet.get("/-/metrics").await.body;
    assert!(
        metrics.contains("gitlab_license_server_fleet_unique_billable_users 5"),
        "{metrics}"
    );
    assert!(metrics
        .contains("gitlab_license_server_fleet_instance_billable_users{instance=\"prod\"} 5"));
    assert!(metrics
        .contains("gitlab_license_server_fleet_instance_sync_success{instance=\"staging\"} 1"));
    assert!(metrics.contains(
        "gitlab_license_server_fleet_instance_last_success_timestamp_seconds{instance=\"prod\"}"
    ));
}

async fn faults_are_survived_or_fail_with_the_reason(backend: Backend) {
    let fleet = fleet_server(backend).await;
    let prod = upstream(&[]).await;
    // 250 users and root: three pages of 100.
    bulk_users(&prod, "user", 250).await;
    let proxy = FaultProxy::start(&prod.base).await;
    add_instance(&fleet, "prod", &proxy.base).await;
    // Page 2 is rate-limited twice, then fails once with a 502, page 3 is cut mid-answer once
    // and stalls once: every fault is retried within the budget of 4 attempts per request.
    let users = "/api/v4/users";
    proxy.add(Rule {
        path: users,
        skip: 1,
        times: 2,
        fault: Fault::RateLimited {
            retry_after_seconds: 1,
        },
    });
    proxy.add(Rule {
        path: users,
        skip: 0,
        times: 1,
        fault: Fault::Status(502),
    });
    proxy.add(Rule {
        path: users,
        skip: 1,
        times: 1,
        fault: Fault::Cut,
    });
    proxy.add(Rule {
        path: users,
        skip: 0,
        times: 1,
        fault: Fault::Stall,
    });
    let synced = sync(&fleet, "prod").await;
    assert_eq!(synced["last_sync"]["status"], "success", "{synced}");
    assert_eq!(synced["users"], 251);
    assert_eq!(synced["billable_users"], 251);
    let seen = proxy.seen();
    let faults: Vec<Option<Fault>> = seen
        .iter()
        .filter(|s| s.path == users)
        .map(|s| s.fault.clone())
        .collect();
    assert_eq!(
        faults.iter().filter(|f| f.is_some()).count(),
        5,
        "{faults:?}"
    );
    // Retry-After was honoured: the request after a 429 waited at least its second.
    let rate_limited = seen
        .iter()
        .position(|s| matches!(s.fault, Some(Fault::RateLimited { .. })))
        .expect("a 429");
    assert!(
        seen[rate_limited + 1].at - seen[rate_limited].at >= std::time::Duration::from_millis(950)
    );

    // A fault that does not go away mid-sync fails it with the reason, and the previous
    // snapshot keeps answering; nothing staged is left behind.
    bulk_users(&prod, "late", 5).await;
    proxy.clear();
    proxy.add(Rule {
        path: users,
        skip: 2,
        times: 100,
        fault: Fault::Status(500),
    });
    let failed = sync(&fleet, "prod").await;
    assert_eq!(failed["last_sync"]["status"], "failed", "{failed}");
    let error = failed["last_sync"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("page 3")
            && error.contains("gave up after 4 attempts")
            && error.contains("HTTP 500"),
        "{error}"
    );
    assert_eq!(failed["users"], 251, "the previous snapshot answers");
    assert_eq!(summary(&fleet).await["unique_billable_users"], 251);
    assert_eq!(
        fleet
            .query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM fleet_staged_users")
            .await,
        ["0"]
    );
    let events = fleet
        .query_texts("SELECT payload FROM hook_events WHERE event_name = 'fleet_sync_failed'")
        .await;
    assert_eq!(events.len(), 1);
    assert!(events[0].contains("\"instance\":\"prod\""));

    // The instance recovers: the next sync finishes with the new users.
    proxy.clear();
    let recovered = sync(&fleet, "prod").await;
    assert_eq!(recovered["last_sync"]["status"], "success");
    assert_eq!(recovered["users"], 256);
    assert_eq!(recovered["last_sync"]["error"], Value::Null);

    // A peer asking to wait longer than the server honours fails the sync with that reason.
    proxy.add(Rule {
        path: users,
        skip: 0,
        times: 1,
        fault: Fault::RateLimited {
            retry_after_seconds: 3600,
        },
    });
    let limited = sync(&fleet, "prod").await;
    assert!(
        limited["last_sync"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("asks to wait 3600 s"),
        "{limited}"
    );

    // A redirect to another host is not followed.
    proxy.clear();
    proxy.add(Rule {
        path: "/api/v4/version",
        skip: 0,
        times: 1,
        fault: Fault::RedirectElsewhere,
    });
    let redirected = sync(&fleet, "prod").await;
    assert!(
        redirected["last_sync"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("redirected to another host (127.0.0.2)"),
        "{redirected}"
    );
    assert_eq!(redirected["users"], 256);
}

async fn instances_without_the_seat_field_or_with_revoked_tokens(backend: Backend) {
    let fleet = fleet_server(backend).await;
    let (prod, staging, _) = three_upstreams().await;
    // An instance that does not send `using_license_seat` (GitLab CE, older versions): this
    // server's rule decides, and says so.
    let proxy = FaultProxy::start(&prod.base).await;
    proxy.strip_seat_field(true);
    add_instance(&fleet, "prod", &proxy.base).await;
    let synced = sync(&fleet, "prod").await;
    assert_eq!(synced["billability_source"], "computed", "{synced}");
    // root, ada, bob, cy, hal; not the blocked user nor the bot.
    assert_eq!(synced["billable_users"], 5);
    assert_eq!(synced["users"], 7);

    // A revoked token stops the sync at once with the instance's reason.
    let root = staging
        .state
        .store
        .find_user_by_username("root")
        .await
        .expect("store")
        .expect("root");
    let (token, token_id) = staging.token_for(&root, &["read_api"], None).await;
    let reply = post_json(
        &fleet,
        "/api/v4/-/fleet/instances",
        json!({"name": "staging", "url": staging.base, "token": token}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        sync(&fleet, "staging").await["last_sync"]["status"],
        "success"
    );
    let revoked = staging
        .delete(&format!("/api/v4/personal_access_tokens/{token_id}"))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let failed = sync(&fleet, "staging").await;
    assert_eq!(failed["last_sync"]["status"], "failed");
    let error = failed["last_sync"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refused the token (HTTP 401: Token was revoked."),
        "{error}"
    );
    assert!(!error.contains(&token));
    // The previous snapshot still counts: root, ada, bob, cy, hal on prod; eve on staging.
    assert_eq!(failed["billable_users"], 4);
    assert_eq!(summary(&fleet).await["unique_billable_users"], 6);
}

async fn offline_instances_are_imported_and_matched_by_identity(backend: Backend) {
    let fleet = fleet_server(backend).await;
    let prod = upstream(&[Person("ada", "ada@example.org", None, "human")]).await;
    add_instance(&fleet, "prod", &prod.base).await;
    sync(&fleet, "prod").await;
    // An air-gapped instance's files: its users (ada under another address, linked by her
    // SAML identity to… nobody on prod, which has no identities; and zed, linked by identity to
    // ada's account here), its license, one document per line.
    let data = [
        json!([
            {"id": 7, "username": "ada.l", "email": "ada@airgap.example", "state": "active", "bot": false,
             "identities": [{"provider": "saml", "extern_uid": "ada-1"}], "using_license_seat": true},
            {"id": 8, "username": "zed", "email": "", "state": "active",
             "identities": [{"provider": "SAML", "extern_uid": "ada-1"}], "using_license_seat": true},
            {"id": 9, "username": "ops", "email": "ops@airgap.example", "state": "active", "bot": true},
        ])
        .to_string(),
        json!({"plan": "premium", "user_limit": 50, "starts_at": "2026-01-01", "expires_at": "2027-01-01", "active_users": 2}).to_string(),
    ]
    .join("\n");
    let reply = post_json(
        &fleet,
        "/api/v4/-/fleet/imports",
        json!({"name": "airgap", "data": data}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let report = reply.json();
    assert_eq!(report["users_read"], 3);
    assert_eq!(report["instance"]["offline"], true);
    assert_eq!(report["instance"]["url"], Value::Null);
    assert_eq!(report["instance"]["license"]["plan"], "premium");
    assert_eq!(report["instance"]["license"]["seats"], 50);
    assert_eq!(report["instance"]["billability_source"], "mixed");
    // ada.l and zed share an identity: one person; ops is a bot.
    let figures = summary(&fleet).await;
    assert_eq!(figures["unique_billable_users"], 3, "{figures}");
    let airgap_people = people(&fleet, "instance=airgap").await;
    assert_eq!(airgap_people.len(), 2);
    let ada = airgap_people
        .iter()
        .find(|p| p["person"] == "ada@airgap.example")
        .expect("ada");
    assert_eq!(ada["accounts"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        ada["accounts"][0]["identities"],
        json!([{"provider": "saml", "extern_uid": "ada-1"}])
    );
    // An offline instance is not synced through an API; a bad file changes nothing.
    let refused = fleet
        .send(
            Method::POST,
            "/api/v4/-/fleet/instances/airgap/sync",
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    for bad in ["[{\"id\": \"x\"}]", "{not json", "{\"plan\": \"premium\"}"] {
        let reply = post_json(
            &fleet,
            "/api/v4/-/fleet/imports",
            json!({"name": "airgap", "data": bad}),
            ROOT_TOKEN,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
    }
    assert_eq!(summary(&fleet).await, figures);
    // Importing into an online instance is refused.
    let reply = post_json(
        &fleet,
        "/api/v4/-/fleet/imports",
        json!({"name": "prod", "data": data}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    // One identity shared by 120 accounts (a misconfigured identity provider): one person,
    // whose page entry lists the first 50 accounts and counts them all.
    let shared: Vec<Value> = (1..=120)
        .map(|id| json!({"id": id, "username": format!("svc{id}"), "email": "", "using_license_seat": true,
                          "identities": [{"provider": "saml", "extern_uid": "shared"}]}))
        .collect();
    let reply = post_json(
        &fleet,
        "/api/v4/-/fleet/imports",
        json!({"name": "crowded", "data": Value::Array(shared).to_string()}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let crowded = people(&fleet, "instance=crowded").await;
    assert_eq!(crowded.len(), 1);
    assert_eq!(crowded[0]["person"], "identity:saml:shared");
    assert_eq!(crowded[0]["account_count"], 120);
    assert_eq!(crowded[0]["accounts"].as_array().map(Vec::len), Some(50));
    assert_eq!(crowded[0]["present_on"], json!(["crowded"]));
    assert_eq!(crowded[0]["billable_on"], json!(["crowded"]));
}

async fn registrations_are_checked_and_the_token_never_leaves(backend: Backend) {
    let fleet = fleet_server(backend).await;
    let prod = upstream(&[]).await;
    let secret = "glpat-never-shown-anywhere-123456";
    for (body, field) in [
        (
            json!({"name": "a", "url": "ftp://gitlab.example.com", "token": secret}),
            "url",
        ),
        (
            json!({"name": "a", "url": "https://user:pw@gitlab.example.com", "token": secret}),
            "url",
        ),
        (
            json!({"name": "a", "url": "not a url", "token": secret}),
            "url",
        ),
        (
            json!({"name": "a b", "url": "https://gitlab.example.com", "token": secret}),
            "name",
        ),
        (
            json!({"name": "a", "url": "https://gitlab.example.com", "token": ""}),
            "token",
        ),
    ] {
        let reply = post_json(
            &fleet,
            "/api/v4/-/fleet/instances",
            body.clone(),
            ROOT_TOKEN,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
        assert!(reply.json()["message"][field].is_array(), "{}", reply.body);
        assert!(!reply.body.contains(secret));
    }
    let missing = post_json(
        &fleet,
        "/api/v4/-/fleet/instances",
        json!({"name": "a"}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json()["error"], "url is missing, token is missing");
    // The token is stored sealed, shown nowhere.
    let reply = post_json(
        &fleet,
        "/api/v4/-/fleet/instances",
        json!({"name": "prod", "url": format!("{}/api/v4/", prod.base), "token": secret}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["url"], prod.base.as_str());
    let duplicate = post_json(
        &fleet,
        "/api/v4/-/fleet/instances",
        json!({"name": "PROD", "url": prod.base, "token": secret}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let stored = fleet
        .query_texts("SELECT token_ciphertext FROM fleet_instances")
        .await;
    assert!(stored[0].starts_with("v1:") && !stored[0].contains(secret));
    sync(&fleet, "prod").await;
    let mut dump = String::new();
    fleet
        .state
        .store
        .export_rows(|table, row| {
            dump.push_str(table);
            dump.push_str(&serde_json::Value::Object(row).to_string());
            Ok(())
        })
        .await
        .expect("backup");
    assert!(dump.contains("fleet_instances") && !dump.contains(secret));
    // And the backup file itself, as `backup create` writes it.
    let file = fleet.data_dir.join("fleet.backup");
    let made = crate::support::process::binary()
        .args(["backup", "create"])
        .arg(&file)
        .env("DATABASE_URL", &fleet.database_url)
        .output()
        .expect("the binary runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let backup = std::fs::read_to_string(&file).expect("backup file");
    assert!(backup.contains("token_ciphertext") && !backup.contains(secret));
    for path in [
        "/api/v4/-/fleet/instances",
        "/api/v4/-/fleet/instances/prod",
        "/api/v4/-/fleet/summary",
        "/api/v4/-/fleet/people",
        "/-/metrics",
        "/api/v4/audit_events",
        "/admin/fleet",
    ] {
        let body = fleet.get(path).await.body;
        assert!(!body.contains(secret), "{path}");
    }
    // A new token replaces the old; renaming keeps the snapshot.
    let changed = fleet
        .send_with(
            fleet
                .client
                .put(fleet.url("/api/v4/-/fleet/instances/prod"))
                .json(&json!({"name": "production", "token": ROOT_TOKEN})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.json()["name"], "production");
    assert_ne!(
        fleet
            .query_texts("SELECT token_ciphertext FROM fleet_instances")
            .await,
        stored
    );
    assert_eq!(
        sync(&fleet, "production").await["last_sync"]["status"],
        "success"
    );
    // Administrators only; unknown instances are 404s.
    let user = fleet
        .add_user(gitlab_license_server::store::NewUser::human(
            "someone", false,
        ))
        .await;
    let (token, _) = fleet.token_for(&user, &["api"], None).await;
    for (method, path) in [
        (Method::GET, "/api/v4/-/fleet/instances"),
        (Method::GET, "/api/v4/-/fleet/summary"),
        (Method::POST, "/api/v4/-/fleet/instances/production/sync"),
        (Method::GET, "/api/v4/-/fleet/people"),
    ] {
        assert_eq!(
            fleet.send(method, path, Some(&token)).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        fleet.get("/api/v4/-/fleet/instances/nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fleet.get("/api/v4/-/fleet/people?cursor=bad").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        fleet
            .get("/api/v4/-/fleet/people?instance=nope")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// Online instances are synced on the schedule (hourly by default), once per interval however
/// often the scheduler runs; offline ones are not.
async fn instances_are_synced_on_the_schedule(backend: Backend) {
    let fleet = fleet_server(backend).await;
    let prod = upstream(&[Person("ada", "ada@example.org", None, "human")]).await;
    add_instance(&fleet, "prod", &prod.base).await;
    let data = json!([{"id": 1, "username": "solo", "email": "solo@example.org"}]).to_string();
    let imported = post_json(
        &fleet,
        "/api/v4/-/fleet/imports",
        json!({"name": "airgap", "data": data}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(imported.status, StatusCode::CREATED);
    let fleet_jobs = |fleet: &TestApp| {
        let store = fleet.state.store.clone();
        async move {
            store
                .jobs()
                .await
                .expect("jobs")
                .into_iter()
                .filter(|job| job.kind == "fleet_sync")
                .map(|job| job.unique_key.unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    for _ in 0..3 {
        gitlab_license_server::jobs::schedule_due(&fleet.state)
            .await
            .expect("schedule");
    }
    // The test clock stands at 2026-06-15 10:30: this hour's slot, for prod only.
    assert_eq!(fleet_jobs(&fleet).await, ["fleet_sync:1:2026-06-15T10:00"]);
    fleet.run_jobs().await;
    let instance = fleet.get("/api/v4/-/fleet/instances/prod").await.json();
    assert_eq!(instance["last_sync"]["status"], "success", "{instance}");
    fleet.set_now(crate::support::app::test_now() + chrono::TimeDelta::minutes(45));
    gitlab_license_server::jobs::schedule_due(&fleet.state)
        .await
        .expect("schedule");
    assert_eq!(
        fleet_jobs(&fleet).await,
        [
            "fleet_sync:1:2026-06-15T10:00",
            "fleet_sync:1:2026-06-15T11:00"
        ]
    );
}

/// The real binary, logging at debug, syncing through rate limits and then with a revoked
/// token: the token is in none of its log lines, answers or metrics.
async fn a_server_process_never_logs_the_token(backend: Backend) {
    let prod = upstream(&[Person("ada", "ada@example.org", None, "human")]).await;
    let root = prod
        .state
        .store
        .find_user_by_username("root")
        .await
        .expect("store")
        .expect("root");
    let (token, token_id) = prod.token_for(&root, &["read_api"], None).await;
    let proxy = FaultProxy::start(&prod.base).await;
    proxy.add(Rule {
        path: "/api/v4/users",
        skip: 0,
        times: 2,
        fault: Fault::RateLimited {
            retry_after_seconds: 1,
        },
    });
    let (server, created) = process_watching(
        backend,
        &[
            ("RUST_LOG", "debug"),
            ("OUTBOUND_RETRY_BASE_MILLISECONDS", "50"),
        ],
        &proxy.base,
        &token,
    )
    .await;
    let mut answers = created;
    let wait_for = |status: &'static str| {
        let server = &server;
        async move {
            let started = std::time::Instant::now();
            loop {
                let instance = server.get("/api/v4/-/fleet/instances/prod").await;
                if instance.json()["last_sync"]["status"] == status {
                    return instance.body;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "no {status}: {}",
                    instance.body
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    let synced = server
        .send(
            Method::POST,
            "/api/v4/-/fleet/instances/prod/sync",
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(synced.status, StatusCode::ACCEPTED);
    answers.push_str(&wait_for("success").await);
    assert_eq!(
        prod.delete(&format!("/api/v4/personal_access_tokens/{token_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    server
        .send(
            Method::POST,
            "/api/v4/-/fleet/instances/prod/sync",
            Some(ROOT_TOKEN),
        )
        .await;
    answers.push_str(&wait_for("failed").await);
    for path in [
        "/-/metrics",
        "/api/v4/-/fleet/summary",
        "/api/v4/audit_events",
    ] {
        answers.push_str(&server.get(path).await.body);
    }
    assert!(answers.contains("refused the token"), "{answers}");
    assert!(!answers.contains(&token));
    let log = server.log();
    assert!(
        log.contains("fleet instance synced") && log.contains("fleet sync failed"),
        "{log}"
    );
    assert!(!log.contains(&token), "a log line carries the token");
}

/// The real binary with `env`, watching the instance at `url` as `prod`; returns the server
/// and the registration's answer.
async fn process_watching(
    backend: Backend,
    env: &[(&str, &str)],
    url: &str,
    token: &str,
) -> (crate::support::server::ServerProcess, String) {
    let server = crate::support::server::ServerProcess::start(backend, env).await;
    let created = server
        .json_as_root(
            Method::POST,
            "/api/v4/-/fleet/instances",
            &json!({"name": "prod", "url": url, "token": token}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    (server, created.body)
}

/// The first column of each row `sql` returns, as text, from a server process's database.
async fn texts_of(backend: Backend, database_url: &str, sql: &str) -> Vec<String> {
    use sqlx::Connection as _;
    match backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(database_url)
                .await
                .expect("connect SQLite");
            sqlx::query_scalar(sql)
                .fetch_all(&mut connection)
                .await
                .expect("sql")
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(database_url)
                .await
                .expect("connect PostgreSQL");
            sqlx::query_scalar(sql)
                .fetch_all(&mut connection)
                .await
                .expect("sql")
        }
    }
}

/// An instance that never answers holds only its own sync: the server's other jobs (here the
/// recount a license upload queues) run meanwhile.
async fn a_stalled_instance_holds_up_no_other_job(backend: Backend) {
    let prod = upstream(&[]).await;
    let proxy = FaultProxy::start(&prod.base).await;
    proxy.add(Rule {
        path: "/api/v4/users",
        skip: 0,
        times: 1000,
        fault: Fault::Stall,
    });
    let (server, _) = process_watching(
        backend,
        &[
            ("OUTBOUND_TIMEOUT_SECONDS", "2"),
            ("OUTBOUND_MAX_ATTEMPTS", "20"),
        ],
        &proxy.base,
        ROOT_TOKEN,
    )
    .await;
    let started = std::time::Instant::now();
    while server.get("/api/v4/-/fleet/instances/prod").await.json()["last_sync"]["status"]
        != "running"
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no sync started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The sync now waits on pages that never come (20 attempts of 2 s each for the first).
    server
        .upload(&crate::support::licenses::premium_today(10))
        .await;
    let recounted = "SELECT state FROM jobs WHERE kind = 'billable_users_count'";
    while texts_of(backend, &server.database_url, recounted).await != ["done"] {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the recount waited for the sync: {:?}",
            texts_of(
                backend,
                &server.database_url,
                "SELECT kind || ' ' || state FROM jobs"
            )
            .await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.get("/api/v4/-/fleet/instances/prod").await.json()["last_sync"]["status"],
        "running"
    );
}

on_both_backends_as_processes!(
    a_stalled_instance_holds_up_no_other_job,
    a_server_process_never_logs_the_token,
    instances_are_synced_on_the_schedule,
    three_instances_give_the_hand_counted_answer,
    faults_are_survived_or_fail_with_the_reason,
    instances_without_the_seat_field_or_with_revoked_tokens,
    offline_instances_are_imported_and_matched_by_identity,
    registrations_are_checked_and_the_token_never_leaves,
);
