//! GitLab's instance SCIM API (docs/scim.md), through the real HTTP surface on SQLite and
//! PostgreSQL: the token, provisioning, filters and paging, deprovisioning to `ldap_blocked`
//! and what it does to seats, Okta's and Entra's request sequences, SCIM groups holding
//! GitLab Duo seats, discovery, and bad input.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::graphql_seats::duo_license;
use crate::on_both_backends;
use crate::support::app::{Reply, TestApp, ROOT_TOKEN};
use crate::support::licenses::{license, premium};

const BASE: &str = "/api/scim/v2/application";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

on_both_backends!(
    token_and_access,
    provisioning_reads_and_filters,
    provisioning_links_and_conflicts,
    deprovisioning_frees_the_seat_at_the_recount,
    okta_sequence,
    entra_sequence,
    groups_hold_duo_seats_while_they_last,
    group_resource,
    discovery,
    bad_input_is_refused_whole,
    ten_thousand_member_patch,
    the_cli_manages_the_token,
);

/// The SCIM client an identity provider is: Bearer token, `application/scim+json`.
struct Idp<'a> {
    app: &'a TestApp,
    token: String,
}

impl Idp<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(&format!("{BASE}{path}")))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/scim+json")
                .body(body.to_string());
        }
        let reply = Reply::of(request, None).await;
        assert!(
            reply.status.as_u16() < 500,
            "{path}: {} {}",
            reply.status,
            reply.body
        );
        reply
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    async fn provision(&self, uid: &str, username: &str, email: &str) -> Value {
        let reply = self.post("/Users", user_body(uid, username, email)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json()
    }
}

fn user_body(uid: &str, username: &str, email: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "externalId": uid,
        "userName": username,
        "active": true,
        "name": {"formatted": format!("{username} Example"), "givenName": username, "familyName": "Example"},
        "emails": [{"primary": true, "type": "work", "value": email}],
    })
}

/// Generates the instance SCIM token through the administrator API.
async fn generate_token(app: &TestApp) -> String {
    let reply = app
        .send(Method::POST, "/api/v4/-/scim/token", Some(ROOT_TOKEN))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.json()["token"].as_str().expect("token").to_string()
}

/// A licensed (Premium, 10 seats) server with a SCIM token.
async fn licensed(app: &TestApp) -> Idp<'_> {
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    Idp {
        app,
        token: generate_token(app).await,
    }
}

fn assert_scim_error(reply: &Reply, status: u16, detail: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/scim+json"),
        "{}",
        reply.body
    );
    let body = reply.json();
    assert_eq!(body["schemas"], json!([ERROR_SCHEMA]), "{body}");
    assert_eq!(
        body["status"], status,
        "an integer, as GitLab sends: {body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|text| text.contains(detail)),
        "{detail:?} in {body}"
    );
}

async fn user_state(app: &TestApp, username: &str) -> Value {
    let reply = app
        .send(
            Method::GET,
            &format!("/api/v4/users?username={username}"),
            Some(ROOT_TOKEN),
        )
        .await;
    reply.json()[0].clone()
}

async fn recounted_active_users(app: &TestApp) -> Value {
    let license = app.get("/api/v4/license").await.json();
    let id = license["id"].as_i64().expect("license id");
    let bumped = app.clock_now() + chrono::TimeDelta::minutes(1);
    app.set_now(bumped);
    let reply = app
        .put(&format!("/api/v4/license/{id}/refresh_billable_users"))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    app.run_jobs().await;
    app.get("/api/v4/license").await.json()["active_users"].clone()
}

async fn token_and_access(app: TestApp) {
    // The token: shown once, then only a reset; the status never shows it.
    let status = app.get("/api/v4/-/scim/token").await.json();
    assert_eq!(status["token_set"], false);
    assert!(status["scim_api_url"]
        .as_str()
        .is_some_and(|url| url.ends_with("/api/scim/v2/application")));
    let token = generate_token(&app).await;
    assert!(token.starts_with("glsoat-") && token.len() > 20, "{token}");
    let again = app
        .send(Method::POST, "/api/v4/-/scim/token", Some(ROOT_TOKEN))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let status = app.get("/api/v4/-/scim/token").await;
    assert_eq!(status.json()["token_set"], true);
    assert!(!status.body.contains(&token));
    let stored = app
        .query_texts("SELECT token_digest FROM scim_tokens")
        .await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token, "a digest, never the token");

    // Without a Premium or Ultimate license: GitLab's plain 404, even with the token.
    let idp = Idp {
        app: &app,
        token: token.clone(),
    };
    let reply = idp.get("/Users").await;
    assert_eq!(
        (reply.status, reply.json()),
        (StatusCode::NOT_FOUND, json!({"message": "404 Not Found"}))
    );
    let starter = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "starter", "active_user_count": 10}),
    );
    assert_eq!(app.upload(&starter).await.status, StatusCode::CREATED);
    assert_eq!(idp.get("/Users").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    assert_eq!(idp.get("/Users").await.status, StatusCode::OK);

    // A wrong token, a personal access token, no token: GitLab's plain 401, checked first.
    for bad in ["glsoat-wrong", ROOT_TOKEN, ""] {
        let reply = Idp {
            app: &app,
            token: bad.into(),
        }
        .get("/Users")
        .await;
        assert_eq!(
            (reply.status, reply.json()),
            (
                StatusCode::UNAUTHORIZED,
                json!({"message": "401 Unauthorized"})
            ),
            "{bad:?}"
        );
    }
    // A reset: the old token stops working at once.
    let reset = app
        .send(Method::POST, "/api/v4/-/scim/token/reset", Some(ROOT_TOKEN))
        .await;
    assert_eq!(reset.status, StatusCode::CREATED, "{}", reset.body);
    let new_token = reset.json()["token"].as_str().expect("token").to_string();
    assert_eq!(idp.get("/Users").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        Idp {
            app: &app,
            token: new_token
        }
        .get("/Users")
        .await
        .status,
        StatusCode::OK
    );
    // Only administrators manage it.
    let plain = app
        .add_user(gitlab_license_server::store::NewUser::human("plain", false))
        .await;
    let (plain_token, _) = app.token_for(&plain, &["api"], None).await;
    let refused = app
        .send(
            Method::POST,
            "/api/v4/-/scim/token/reset",
            Some(&plain_token),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let audit = app
        .query_texts(
            "SELECT event_name FROM audit_events WHERE event_name LIKE 'scim_token%' ORDER BY id",
        )
        .await;
    assert_eq!(audit, ["scim_token_generated", "scim_token_reset"]);
}

async fn provisioning_reads_and_filters(app: TestApp) {
    let idp = licensed(&app).await;
    let created = idp
        .provision("00u1AbC", "ada.lovelace@example.com", "ada@example.com")
        .await;
    assert_eq!(
        created,
        json!({
            "schemas": [USER_SCHEMA],
            "id": "00u1AbC",
            "active": true,
            "emails": [{"type": "work", "value": "ada@example.com", "primary": true}],
            "name": {"formatted": "ada.lovelace@example.com Example", "givenName": "ada.lovelace@example.com", "familyName": "Example"},
            "meta": {"resourceType": "User"},
            "userName": "ada.lovelace",
        })
    );
    // Idempotent on the extern_uid (any case): the existing identity, 201.
    let again = idp
        .post("/Users", user_body("00U1ABC", "other", "other@example.com"))
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.json()["userName"], "ada.lovelace");
    assert_eq!(
        user_state(&app, "other").await,
        Value::Null,
        "nothing created"
    );
    // GET by id, any case; the user is a GitLab user with a password nobody knows.
    let shown = idp.get("/Users/00u1abc").await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.header("content-type"), Some("application/scim+json"));
    assert_eq!(shown.json(), created);
    let rest = user_state(&app, "ada.lovelace").await;
    assert_eq!(
        (rest["state"].clone(), rest["email"].clone()),
        (json!("active"), json!("ada@example.com"))
    );
    assert_scim_error(
        &idp.get("/Users/nobody").await,
        404,
        "Resource nobody not found",
    );

    for n in 2..=5 {
        idp.provision(
            &format!("uid-{n}"),
            &format!("user{n}"),
            &format!("user{n}@example.com"),
        )
        .await;
    }
    let list = idp.get("/Users").await.json();
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(
        (
            list["totalResults"].clone(),
            list["itemsPerPage"].clone(),
            list["startIndex"].clone()
        ),
        (json!(5), json!(20), json!(1))
    );
    assert_eq!(list["Resources"].as_array().map(Vec::len), Some(5));
    // Paging: startIndex is 1-based and echoed as sent; count at most 100.
    let page = idp.get("/Users?startIndex=2&count=2").await.json();
    assert_eq!(
        (
            page["totalResults"].clone(),
            page["itemsPerPage"].clone(),
            page["startIndex"].clone()
        ),
        (json!(5), json!(2), json!("2"))
    );
    let ids: Vec<&str> = page["Resources"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|user| user["id"].as_str())
        .collect();
    assert_eq!(ids, ["uid-2", "uid-3"]);
    let huge = idp.get("/Users?count=100000000000000000000").await.json();
    assert_eq!(huge["itemsPerPage"], 100);
    let zero = idp.get("/Users?count=0&startIndex=0").await.json();
    assert_eq!(
        (
            zero["itemsPerPage"].clone(),
            zero["Resources"].as_array().map(Vec::len)
        ),
        (json!(20), Some(5))
    );
    assert_scim_error(&idp.get("/Users?count=many").await, 400, "count is invalid");

    // Filters: id / externalId, and userName by extern_uid, username, e-mail, local part.
    let found = |reply: Reply| {
        let body = reply.json();
        (
            body["totalResults"].as_i64(),
            body["Resources"][0]["id"].as_str().map(str::to_string),
        )
    };
    let filter = |text: &str| format!("/Users?filter={}", urlencode(text));
    assert_eq!(
        found(idp.get(&filter("id eq \"uid-3\"")).await),
        (Some(1), Some("uid-3".into()))
    );
    assert_eq!(
        found(idp.get(&filter("externalId eq \"UID-3\"")).await),
        (Some(1), Some("uid-3".into()))
    );
    assert_eq!(
        found(idp.get(&filter("userName eq \"uid-4\"")).await),
        (Some(1), Some("uid-4".into()))
    );
    assert_eq!(
        found(idp.get(&filter("userName eq \"user4\"")).await),
        (Some(1), Some("uid-4".into()))
    );
    assert_eq!(
        found(idp.get(&filter("userName eq \"user5@example.com\"")).await),
        (Some(1), Some("uid-5".into()))
    );
    assert_eq!(
        found(
            idp.get(&filter("userName eq \"user2@elsewhere.org\""))
                .await
        ),
        (Some(1), Some("uid-2".into())),
        "the local part"
    );
    assert_eq!(
        found(idp.get(&filter("userName eq \"nobody\"")).await),
        (Some(0), None)
    );
    for unsupported in [
        "id ne \"uid-3\"",
        "displayName eq \"x\"",
        "userName sw \"u\"",
        "garbage",
    ] {
        assert_scim_error(
            &idp.get(&filter(unsupported)).await,
            412,
            "Unsupported Filter",
        );
    }
    // A user without a SCIM identity is not a SCIM resource.
    app.add_user(gitlab_license_server::store::NewUser::human("local", false))
        .await;
    assert_eq!(
        found(idp.get(&filter("userName eq \"local\"")).await),
        (Some(0), None)
    );

    // Audited, the SCIM token as the author; GitLab's user_create hook event for a new user.
    let audits = app
        .query_texts("SELECT details FROM audit_events WHERE event_name = 'user_provisioned_by_scim' ORDER BY id")
        .await;
    assert_eq!(audits.len(), 5);
    let details: Value = serde_json::from_str(&audits[0]).expect("details");
    assert_eq!(
        (
            details["author_class"].clone(),
            details["author_name"].clone()
        ),
        (json!("ScimOauthAccessToken"), json!("SCIM token"))
    );
    let hooks = app
        .query_texts("SELECT payload FROM hook_events WHERE event_name = 'user_create'")
        .await;
    assert!(
        hooks.iter().any(|payload| payload.contains("ada.lovelace")),
        "{hooks:?}"
    );
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn provisioning_links_and_conflicts(app: TestApp) {
    let idp = licensed(&app).await;
    // A user with that e-mail exists: linked, not duplicated.
    let existing = app
        .add_user(gitlab_license_server::store::NewUser {
            email: "grace@example.com".into(),
            ..gitlab_license_server::store::NewUser::human("grace", false)
        })
        .await;
    let linked = idp
        .provision("okta-grace", "ghopper", "Grace@Example.com")
        .await;
    assert_eq!(linked["userName"], "grace");
    assert_eq!(user_state(&app, "ghopper").await, Value::Null);
    let users = app
        .query_texts(&format!(
            "SELECT CAST(user_id AS TEXT) FROM scim_identities WHERE extern_uid = 'okta-grace' AND user_id = {}",
            existing.id
        ))
        .await;
    assert_eq!(users.len(), 1);
    // A second identity for the same user: GitLab's 409.
    let second = idp
        .post(
            "/Users",
            user_body("okta-grace-2", "grace2", "grace@example.com"),
        )
        .await;
    assert_scim_error(&second, 409, "User has already been taken");
    assert!(second.json()["detail"]
        .as_str()
        .is_some_and(|detail| detail.starts_with("Error saving user with {")));
    // A taken username becomes a free variant, sanitised as GitLab's ExternalUsernameSanitizer.
    let variant = idp
        .provision("okta-2", "grace", "grace.two@example.com")
        .await;
    assert_eq!(variant["userName"], "grace1");
    let cleaned = idp
        .provision("okta-3", "José.Ñ--x@corp.example", "jose@example.com")
        .await;
    assert_eq!(cleaned["userName"], "Jos.x");
    // What is missing, in GitLab's words, nothing written; secrets filtered from the detail.
    let missing = idp
        .post(
            "/Users",
            json!({"externalId": "m1", "userName": "m1", "password": "hunter2-secret"}),
        )
        .await;
    assert_scim_error(&missing, 412, "Missing params: [:email]");
    assert!(
        missing.body.contains("[FILTERED]") && !missing.body.contains("hunter2"),
        "{}",
        missing.body
    );
    let none = idp.post("/Users", json!({"emails": []})).await;
    assert_scim_error(
        &none,
        412,
        "Missing params: [:extern_uid, :email, :username]",
    );
    assert_scim_error(
        &idp.post("/Users", user_body("bad-mail", "bad", "not-an-email"))
            .await,
        412,
        "Error saving user with",
    );
    let count = app
        .query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM scim_identities")
        .await;
    assert_eq!(count, ["3"]);
}

async fn deprovisioning_frees_the_seat_at_the_recount(app: TestApp) {
    let idp = licensed(&app).await;
    idp.provision("e1", "erin", "erin@example.com").await;
    idp.provision("f1", "frank", "frank@example.com").await;
    assert_eq!(recounted_active_users(&app).await, 3, "root, erin, frank");

    let reply = idp.delete("/Users/e1").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    // The user stays, ldap_blocked; the identity stays readable, inactive.
    let erin = user_state(&app, "erin").await;
    assert_eq!(erin["state"], "ldap_blocked");
    assert_eq!(idp.get("/Users/e1").await.json()["active"], false);
    let blocked = app
        .send(Method::GET, "/api/v4/users?blocked=true", Some(ROOT_TOKEN))
        .await
        .json();
    assert!(blocked
        .as_array()
        .is_some_and(|users| users.iter().any(|user| user["username"] == "erin")));
    // The REST API may not unblock (or block) an ldap_blocked user.
    let id = erin["id"].as_i64().expect("id");
    let unblock = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{id}/unblock"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        (unblock.status, unblock.json()),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "403 Forbidden - LDAP blocked users cannot be unblocked by the API"})
        )
    );
    // Not billable: the seat is free at the next recount.
    assert_eq!(recounted_active_users(&app).await, 2);
    // Deprovisioning again changes nothing.
    assert_eq!(idp.delete("/Users/e1").await.status, StatusCode::NO_CONTENT);
    assert_eq!(user_state(&app, "erin").await["state"], "ldap_blocked");
    // Reprovisioning restores the user and the seat.
    let reply = idp
        .patch(
            "/Users/e1",
            json!({"Operations": [{"op": "replace", "value": {"active": true}}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(user_state(&app, "erin").await["state"], "active");
    assert_eq!(idp.get("/Users/e1").await.json()["active"], true);
    assert_eq!(recounted_active_users(&app).await, 3);
    // A deactivated user is ldap_blocked too; a blocked one keeps its state.
    let frank_id = user_state(&app, "frank").await["id"].as_i64().expect("id");
    let blocked = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{frank_id}/block"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::CREATED);
    assert_eq!(idp.delete("/Users/f1").await.status, StatusCode::NO_CONTENT);
    assert_eq!(user_state(&app, "frank").await["state"], "blocked");
    assert_eq!(idp.get("/Users/f1").await.json()["active"], false);
    let events = app
        .query_texts("SELECT event_name FROM audit_events WHERE event_name LIKE 'user_%provisioned_by_scim' ORDER BY id")
        .await;
    assert_eq!(
        events,
        [
            "user_provisioned_by_scim",
            "user_provisioned_by_scim",
            "user_deprovisioned_by_scim",
            "user_reprovisioned_by_scim",
            "user_deprovisioned_by_scim"
        ]
    );
}

/// Okta's GitLab application (Okta's SCIM documentation and GitLab's scim_setup.md).
async fn okta_sequence(app: TestApp) {
    let idp = licensed(&app).await;
    // "Test API Credentials".
    let test = idp.get("/Users?startIndex=1&count=2").await;
    assert_eq!(test.status, StatusCode::OK);
    assert_eq!(test.json()["totalResults"], 0);
    // Import/lookup before a create.
    let lookup = idp
        .get(&format!(
            "/Users?filter={}&startIndex=1&count=100",
            urlencode("userName eq \"dana@corp.example\"")
        ))
        .await;
    assert_eq!(lookup.json()["totalResults"], 0);
    let created = idp
        .post(
            "/Users",
            json!({
                "schemas": [USER_SCHEMA],
                "userName": "dana@corp.example",
                "name": {"givenName": "Dana", "familyName": "Scully"},
                "emails": [{"primary": true, "value": "dana@corp.example", "type": "work"}],
                "displayName": "Dana Scully",
                "locale": "en-US",
                "externalId": "00u5abcd",
                "groups": [],
                "password": "Okta-Generated-1",
                "active": true
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        (
            created.json()["userName"].clone(),
            created.json()["name"]["formatted"].clone()
        ),
        (json!("dana"), json!("Dana Scully"))
    );
    // Okta's profile push: path-less replace of other attributes is accepted and ignored.
    let push = idp
        .patch("/Users/00u5abcd", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"name": {"givenName": "D"}, "emails": []}}]}))
        .await;
    assert_eq!(push.status, StatusCode::NO_CONTENT);
    assert_eq!(
        idp.get("/Users/00u5abcd").await.json()["name"]["formatted"],
        "Dana Scully"
    );
    // Deactivate: path-less {"active": false}.
    let deactivate = idp
        .patch("/Users/00u5abcd", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": false}}]}))
        .await;
    assert_eq!(
        (deactivate.status, deactivate.body.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    assert_eq!(user_state(&app, "dana").await["state"], "ldap_blocked");
    // Reactivate.
    idp.patch(
        "/Users/00u5abcd",
        json!({"Operations": [{"op": "replace", "value": {"active": true}}]}),
    )
    .await;
    assert_eq!(user_state(&app, "dana").await["state"], "active");
}

/// Microsoft Entra ID's provisioning (its SCIM documentation and GitLab's attribute mapping).
async fn entra_sequence(app: TestApp) {
    let idp = licensed(&app).await;
    // Test Connection: a filter on a random value that matches nobody.
    let probe = idp
        .get(&format!(
            "/Users?filter={}",
            urlencode("userName eq \"e8f2b1c4-3a5d-4f6e-9b7a-0c1d2e3f4a5b\"")
        ))
        .await;
    assert_eq!(
        (probe.status, probe.json()["totalResults"].clone()),
        (StatusCode::OK, json!(0))
    );
    // Matching by externalId (objectId), then the create.
    let object_id = "5f1e7c9a-0b2d-4e6f-8a1b-3c5d7e9f0a2b";
    let lookup = idp
        .get(&format!(
            "/Users?filter={}",
            urlencode(&format!("externalId eq \"{object_id}\""))
        ))
        .await;
    assert_eq!(lookup.json()["totalResults"], 0);
    let created = idp
        .post(
            "/Users",
            json!({
                "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": object_id,
                "userName": "fmulder",
                "active": true,
                "emails": [{"primary": true, "type": "work", "value": "fox.mulder@corp.example"}],
                "name": {"formatted": "Fox Mulder", "familyName": "Mulder", "givenName": "Fox"}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // Entra's PATCH with a path; attribute changes other than active/externalId are ignored.
    let rename = idp
        .patch(&format!("/Users/{object_id}"), json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "name.formatted", "value": "Fox W. Mulder"}, {"op": "Replace", "path": "userName", "value": "fox"}]}))
        .await;
    assert_eq!(rename.status, StatusCode::NO_CONTENT);
    assert_eq!(
        idp.get(&format!("/Users/{object_id}")).await.json()["userName"],
        "fmulder"
    );
    // Soft delete: "False", capitalised, with a path.
    let disable = idp
        .patch(&format!("/Users/{object_id}"), json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}))
        .await;
    assert_eq!(disable.status, StatusCode::NO_CONTENT);
    assert_eq!(user_state(&app, "fmulder").await["state"], "ldap_blocked");
    // Restore, then relink to a new objectId.
    idp.patch(
        &format!("/Users/{object_id}"),
        json!({"Operations": [{"op": "Replace", "path": "active", "value": "True"}]}),
    )
    .await;
    assert_eq!(user_state(&app, "fmulder").await["state"], "active");
    let relink = idp
        .patch(
            &format!("/Users/{object_id}"),
            json!({"Operations": [{"op": "Add", "path": "externalId", "value": "new-object-id"}]}),
        )
        .await;
    assert_eq!(relink.status, StatusCode::NO_CONTENT);
    assert_eq!(idp.get("/Users/new-object-id").await.status, StatusCode::OK);
    assert_scim_error(
        &idp.get(&format!("/Users/{object_id}")).await,
        404,
        "not found",
    );
    // Relinking onto an identity someone else holds: 409, nothing changed.
    idp.provision("other-object", "other", "other@corp.example")
        .await;
    let taken = idp
        .patch("/Users/new-object-id", json!({"Operations": [{"op": "Replace", "path": "externalId", "value": "OTHER-object"}]}))
        .await;
    assert_scim_error(&taken, 409, "Extern uid has already been taken");
    assert_eq!(idp.get("/Users/new-object-id").await.status, StatusCode::OK);
    // Hard delete.
    assert_eq!(
        idp.delete("/Users/new-object-id").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(user_state(&app, "fmulder").await["state"], "ldap_blocked");
}

async fn purchase_id(app: &TestApp) -> i64 {
    let ids = app
        .query_texts("SELECT CAST(id AS TEXT) FROM add_on_purchases ORDER BY id")
        .await;
    ids[0].parse().expect("a purchase id")
}

async fn seat_holders(app: &TestApp) -> Vec<String> {
    app.query_texts(
        "SELECT u.username FROM user_add_on_assignments a JOIN users u ON u.id = a.user_id ORDER BY u.username",
    )
    .await
}

async fn groups_hold_duo_seats_while_they_last(app: TestApp) {
    assert_eq!(
        app.upload(&duo_license(2)).await.status,
        StatusCode::CREATED
    );
    app.run_jobs().await;
    let idp = Idp {
        app: &app,
        token: generate_token(&app).await,
    };
    for name in ["gina", "hank", "ivan"] {
        idp.provision(&format!("{name}-uid"), name, &format!("{name}@example.com"))
            .await;
    }
    let created = idp
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Duo Users",
                   "members": [{"value": "gina-uid"}, {"value": "hank-uid"}, {"value": "ivan-uid"}, {"value": "unknown"}]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let group_id = created.json()["id"].as_str().expect("id").to_string();
    assert_eq!(
        created.json()["members"].as_array().map(Vec::len),
        Some(3),
        "unknown members are dropped"
    );
    assert!(
        seat_holders(&app).await.is_empty(),
        "no seats before the link"
    );

    // The link: seats while they last; the one left over is reported.
    let purchase = purchase_id(&app).await;
    let linked = app
        .send_with(
            app.client
                .put(app.url(&format!("/api/v4/-/scim/groups/{group_id}")))
                .json(&json!({"add_on_purchase_id": purchase})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);
    let seats = linked.json();
    assert_eq!(
        (seats["members"].clone(), seats["without_seat"].clone()),
        (json!(3), json!(1)),
        "{seats}"
    );
    assert_eq!(seats["without_seat_usernames"], json!(["ivan"]));
    assert_eq!(seat_holders(&app).await, ["gina", "hank"]);
    let short = app
        .query_texts("SELECT payload FROM hook_events WHERE event_name = 'scim_group_seats_short'")
        .await;
    assert_eq!(short.len(), 1);
    assert!(
        short[0].contains("ivan") && short[0].contains("Duo Users"),
        "{}",
        short[0]
    );

    // Leaving the group frees the seat, and the member waiting gets it.
    let left = idp
        .patch(&format!("/Groups/{group_id}"), json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove", "path": "members[value eq \"gina-uid\"]"}]}))
        .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.body);
    assert_eq!(seat_holders(&app).await, ["hank", "ivan"]);
    // Deprovisioning frees the seat at once.
    assert_eq!(
        idp.delete("/Users/hank-uid").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(seat_holders(&app).await, ["ivan"]);
    // Rejoining (Entra's add) takes the free seat.
    let rejoin = idp
        .patch(&format!("/Groups/{group_id}"), json!({"Operations": [{"op": "Add", "path": "members", "value": [{"value": "gina-uid"}]}]}))
        .await;
    assert_eq!(rejoin.status, StatusCode::NO_CONTENT);
    assert_eq!(seat_holders(&app).await, ["gina", "ivan"]);
    // The page lists the group and its seats.
    let listed = app.get("/api/v4/-/scim/groups").await.json();
    assert_eq!(listed[0]["display_name"], "Duo Users");
    assert_eq!(
        listed[0]["without_seat"], 0,
        "hank is ldap_blocked: not eligible, not short"
    );
    // Deleting the group frees what it gave; every change is audited.
    assert_eq!(
        idp.delete(&format!("/Groups/{group_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(seat_holders(&app).await.is_empty());
    let audits = app
        .query_texts("SELECT event_name FROM audit_events WHERE event_name LIKE 'user_add_on_assignment%' OR event_name LIKE 'scim_group%' ORDER BY id")
        .await;
    assert!(
        audits.contains(&"scim_group_seat_link_changed".to_string()),
        "{audits:?}"
    );
    assert!(
        audits
            .iter()
            .filter(|name| *name == "user_add_on_assignment_removed")
            .count()
            >= 3,
        "{audits:?}"
    );
    // A purchase that is not there, a group that is not there.
    let missing = app
        .send_with(
            app.client
                .put(app.url(&format!("/api/v4/-/scim/groups/{group_id}")))
                .json(&json!({"add_on_purchase_id": purchase})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn group_resource(app: TestApp) {
    let idp = licensed(&app).await;
    for name in ["jan", "kim"] {
        idp.provision(&format!("{name}-uid"), name, &format!("{name}@example.com"))
            .await;
    }
    // Entra sends its objectId as externalId: GitLab makes it the group's id (a UUID).
    let object_id = "0b5e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
    let created = idp
        .post("/Groups", json!({"displayName": "Engineering", "externalId": object_id, "members": [{"value": "jan-uid"}]}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.json(),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": object_id, "displayName": "Engineering",
               "members": [{"value": "jan-uid", "display": "jan Example", "type": "User"}], "meta": {"resourceType": "Group"}})
    );
    assert_scim_error(
        &idp.post(
            "/Groups",
            json!({"displayName": "X", "externalId": "not-a-uuid"}),
        )
        .await,
        412,
        "Invalid UUID for scim_group_uid",
    );
    assert_scim_error(
        &idp.post("/Groups", json!({"displayName": "engineering"}))
            .await,
        409,
        "has already been taken",
    );
    assert_scim_error(
        &idp.post("/Groups", json!({"members": []})).await,
        412,
        "Missing params",
    );
    // Filter, excludedAttributes.
    let filter = urlencode("displayName eq \"Engineering\"");
    let found = idp
        .get(&format!(
            "/Groups?filter={filter}&excludedAttributes=members"
        ))
        .await
        .json();
    assert_eq!(found["totalResults"], 1);
    assert!(found["Resources"][0].get("members").is_none(), "{found}");
    assert_scim_error(
        &idp.get(&format!("/Groups?filter={}", urlencode("members eq \"x\"")))
            .await,
        412,
        "Unsupported Filter",
    );
    // PUT: the name and exactly these members; answered without members.
    let put = idp
        .send(
            Method::PUT,
            &format!("/Groups/{object_id}"),
            Some(json!({"displayName": "Eng", "members": [{"value": "kim-uid"}]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert!(put.json().get("members").is_none());
    let shown = idp.get(&format!("/Groups/{object_id}")).await.json();
    assert_eq!(
        (
            shown["displayName"].clone(),
            shown["members"][0]["value"].clone()
        ),
        (json!("Eng"), json!("kim-uid"))
    );
    assert_scim_error(
        &idp.get("/Groups/00000000-0000-4000-8000-000000000000")
            .await,
        404,
        "Group 00000000-0000-4000-8000-000000000000 not found",
    );
    // Okta's rename (path-less replace).
    let renamed = idp
        .patch(&format!("/Groups/{object_id}"), json!({"Operations": [{"op": "replace", "value": {"id": object_id, "displayName": "Platform"}}]}))
        .await;
    assert_eq!(renamed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        idp.get(&format!("/Groups/{object_id}")).await.json()["displayName"],
        "Platform"
    );
}

async fn discovery(app: TestApp) {
    let idp = licensed(&app).await;
    let config = idp.get("/ServiceProviderConfig").await;
    assert_eq!(config.status, StatusCode::OK);
    let config = config.json();
    assert_eq!(
        (
            config["patch"]["supported"].clone(),
            config["bulk"]["supported"].clone(),
            config["sort"]["supported"].clone(),
            config["filter"]["supported"].clone()
        ),
        (json!(true), json!(false), json!(false), json!(true))
    );
    let types = idp.get("/ResourceTypes").await.json();
    let names: Vec<&str> = types["Resources"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(names, ["User", "Group"]);
    assert_eq!(
        idp.get("/ResourceTypes/User").await.json()["endpoint"],
        "/Users"
    );
    let schemas = idp.get("/Schemas").await.json();
    assert_eq!(schemas["totalResults"], 2);
    assert_eq!(
        idp.get(&format!("/Schemas/{USER_SCHEMA}")).await.json()["name"],
        "User"
    );
    assert_scim_error(&idp.get("/Schemas/urn:nothing").await, 404, "not found");
    // Read-only: other methods are 405; an unknown path is a SCIM 404.
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let reply = idp
            .send(method.clone(), "/ServiceProviderConfig", Some(json!({})))
            .await;
        assert_scim_error(&reply, 405, "Not Allowed");
    }
    assert_scim_error(&idp.get("/9f0c6a3e-unknown").await, 404, "not found");
    // No search by POST (GitLab has none): a SCIM 404, never a 5xx.
    assert_scim_error(
        &idp.post("/.search", json!({"filter": "userName eq \"x\""}))
            .await,
        404,
        "not found",
    );
    // externalId is sent, never returned (GitLab answers it as the id).
    let user_schema = idp.get(&format!("/Schemas/{USER_SCHEMA}")).await.json();
    let external = user_schema["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .find(|a| a["name"] == "externalId")
        .cloned();
    assert_eq!(
        external.map(|a| a["returned"].clone()),
        Some(json!("never"))
    );
    // GitLab has no PUT on Users.
    assert_scim_error(
        &idp.send(Method::PUT, "/Users/x", Some(json!({}))).await,
        405,
        "Not Allowed",
    );
    // Discovery needs the token like every SCIM route.
    assert_eq!(
        Idp {
            app: &app,
            token: "glsoat-nope".into()
        }
        .get("/Schemas")
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn bad_input_is_refused_whole(app: TestApp) {
    let idp = licensed(&app).await;
    idp.provision("z1", "zed", "zed@example.com").await;
    let before = app
        .query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM audit_events")
        .await;
    // Wrong content type, not JSON, not an object.
    let wrong_type = Reply::of(
        app.client
            .post(app.url(&format!("{BASE}/Users")))
            .bearer_auth(&idp.token)
            .header("Content-Type", "text/plain")
            .body(user_body("t1", "t1", "t1@example.com").to_string()),
        None,
    )
    .await;
    assert_scim_error(&wrong_type, 415, "content-type");
    let not_json = Reply::of(
        app.client
            .post(app.url(&format!("{BASE}/Users")))
            .bearer_auth(&idp.token)
            .header("Content-Type", "application/scim+json")
            .body("{\"externalId\": "),
        None,
    )
    .await;
    assert_scim_error(&not_json, 400, "not valid JSON");
    assert_scim_error(&idp.post("/Users", json!(["a"])).await, 400, "JSON object");
    // Malformed PATCHes: GitLab-shaped 412, nothing changed.
    for body in [
        json!({}),
        json!({"Operations": "replace"}),
        json!({"Operations": [1, 2]}),
        json!([]),
    ] {
        assert_scim_error(&idp.patch("/Users/z1", body).await, 412, "Error updating");
    }
    assert_scim_error(
        &idp.patch("/Users/ghost", json!({"Operations": []})).await,
        404,
        "Resource ghost not found",
    );
    // Garbage inside a well-formed PATCH is ignored (GitLab: 204).
    let garbage = idp
        .patch(
            "/Users/z1",
            json!({"Operations": [{"op": "move", "path": "x"}, {"op": "add", "value": 7}]}),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::NO_CONTENT);
    assert_eq!(user_state(&app, "zed").await["state"], "active");
    // Over-long values.
    let long = "x".repeat(300);
    assert_scim_error(
        &idp.post("/Users", user_body(&long, "long", "long@example.com"))
            .await,
        412,
        "too long",
    );
    assert_scim_error(
        &idp.get(&format!(
            "/Users?filter={}",
            urlencode(&format!("id eq \"{long}\""))
        ))
        .await,
        412,
        "Unsupported Filter",
    );
    // A group PATCH naming more than 10,000 members, or members without values.
    let group = idp
        .post("/Groups", json!({"displayName": "G"}))
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let too_many: Vec<Value> = (0..10_001)
        .map(|n| json!({"value": format!("u{n}")}))
        .collect();
    assert_scim_error(
        &idp.patch(
            &format!("/Groups/{group}"),
            json!({"Operations": [{"op": "add", "path": "members", "value": too_many}]}),
        )
        .await,
        412,
        "at most 10000 members",
    );
    assert_scim_error(
        &idp.patch(
            &format!("/Groups/{group}"),
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"display": "x"}]}]}),
        )
        .await,
        412,
        "needs a value",
    );
    let after = app
        .query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM audit_events")
        .await;
    assert_eq!(
        after[0].parse::<i64>().expect("count"),
        before[0].parse::<i64>().expect("count") + 1,
        "only the group's creation was written"
    );
}

/// An identity provider's large group, pushed in one PATCH: every member joins in one
/// transaction (users and identities written straight into the tables, as 10,000 POSTs
/// are the benchmark's job).
async fn ten_thousand_member_patch(app: TestApp) {
    let idp = licensed(&app).await;
    let users: Vec<String> = (1..=10_000)
        .map(|n| format!("('bulk{n:05}', 'Bulk {n}', 'bulk{n:05}@example.com', 'active', 'human', FALSE, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"))
        .collect();
    for chunk in users.chunks(2_000) {
        app.execute_sql(&format!(
            "INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at) VALUES {}",
            chunk.join(", ")
        ))
        .await;
    }
    app.execute_sql(
        "INSERT INTO scim_identities (user_id, extern_uid, active, created_at, updated_at)
         SELECT id, 'ext-' || username, TRUE, created_at, updated_at FROM users WHERE username LIKE 'bulk%'",
    )
    .await;
    let group = idp
        .post("/Groups", json!({"displayName": "Everyone"}))
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let members: Vec<Value> = (1..=10_000)
        .map(|n| json!({"value": format!("ext-bulk{n:05}")}))
        .collect();
    let reply = idp
        .patch(
            &format!("/Groups/{group}"),
            json!({"Operations": [{"op": "add", "path": "members", "value": members}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let count = app
        .query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM scim_group_members")
        .await;
    assert_eq!(count, ["10000"]);
    let listed = idp.get(&format!("/Groups/{group}")).await.json();
    assert_eq!(listed["members"].as_array().map(Vec::len), Some(10_000));
    // The same PATCH again adds nobody; a remove of them all empties the group.
    let members: Vec<Value> = (1..=10_000)
        .map(|n| json!({"value": format!("ext-bulk{n:05}")}))
        .collect();
    let removed = idp
        .patch(
            &format!("/Groups/{group}"),
            json!({"Operations": [{"op": "remove", "path": "members", "value": members}]}),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM scim_group_members")
            .await,
        ["0"]
    );
}

/// Runs `scim <args>` against the app's database as root.
fn scim_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    crate::support::process::binary()
        .arg("scim")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("DATA_DIR", &app.data_dir)
        .env(
            "LICENSE_PUBLIC_KEY_FILE",
            crate::support::vectors_dir().join("public_key.pem"),
        )
        .env("GITLAB_TOKEN", ROOT_TOKEN)
        .output()
        .expect("the binary runs")
}

fn printed(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

async fn the_cli_manages_the_token(app: TestApp) {
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    assert!(printed(&scim_cli(&app, &["token", "status"])).starts_with("no SCIM token yet"));
    let token = printed(&scim_cli(&app, &["token", "generate"]));
    assert!(token.starts_with("glsoat-"), "{token}");
    let idp = Idp {
        app: &app,
        token: token.clone(),
    };
    assert_eq!(idp.get("/Users").await.status, StatusCode::OK);
    // Only once: a second generate is refused, the status never shows the token.
    let again = scim_cli(&app, &["token", "generate"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("scim token reset"));
    let status = printed(&scim_cli(&app, &["token", "status"]));
    assert!(
        status.contains("/api/scim/v2/application") && !status.contains(&token),
        "{status}"
    );
    let new_token = printed(&scim_cli(&app, &["token", "reset"]));
    assert!(new_token.starts_with("glsoat-") && new_token != token);
    assert_eq!(idp.get("/Users").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        Idp {
            app: &app,
            token: new_token
        }
        .get("/Users")
        .await
        .status,
        StatusCode::OK
    );
    // Groups and links from the command line.
    assert_eq!(printed(&scim_cli(&app, &["groups"])), "[]");
    let missing = scim_cli(
        &app,
        &[
            "link",
            "00000000-0000-4000-8000-000000000000",
            "--purchase",
            "1",
        ],
    );
    assert!(!missing.status.success());
    // Without an administrator's token: refused.
    let refused = crate::support::process::binary()
        .args(["scim", "token", "reset"])
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .env("DATA_DIR", &app.data_dir)
        .env("GITLAB_TOKEN", "glpat-nothing")
        .output()
        .expect("the binary runs");
    assert!(!refused.status.success());
}
