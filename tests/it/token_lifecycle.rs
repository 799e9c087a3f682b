//! The token lifecycle as GitLab has it: rotation by id and of the token used, reuse detection
//! (a revoked token used to rotate revokes its family), and the settings that shape new tokens
//! (prefix, expiry required, the longest lifetime on Ultimate) — on both backends.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{TestApp, ROOT_TOKEN};
use crate::support::licenses::{license, premium};
use gitlab_license_server::store::NewUser;

on_both_backends!(
    tokens_rotate_by_id,
    the_token_used_rotates_itself,
    a_revoked_token_used_to_rotate_revokes_its_family,
    settings_shape_new_tokens,
    the_longest_lifetime_applies_on_ultimate,
);

async fn post_json(
    app: &TestApp,
    path: &str,
    body: Value,
    token: &str,
) -> crate::support::app::Reply {
    app.send_with(app.client.post(app.url(path)).json(&body), Some(token))
        .await
}

async fn put_settings(app: &TestApp, body: Value) {
    let reply = app
        .send_with(
            app.client
                .put(app.url("/api/v4/application/settings"))
                .json(&body),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// A token made through the API (as an administrator): its entity with the value.
async fn create_token(app: &TestApp, user_id: i64, body: Value) -> Value {
    let reply = post_json(
        app,
        &format!("/api/v4/users/{user_id}/personal_access_tokens"),
        body,
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.json()
}

fn secret(token: &Value) -> String {
    token["token"].as_str().expect("token value").to_string()
}

async fn works(app: &TestApp, value: &str) -> StatusCode {
    app.send(Method::GET, "/api/v4/user", Some(value))
        .await
        .status
}

const REVOKED: &str = "Token was revoked. You have to re-authorize from the user.";

async fn tokens_rotate_by_id(app: TestApp) {
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let bob = app.add_user(NewUser::human("bob", false)).await;
    let old = create_token(
        &app,
        ada.id,
        json!({"name": "ci", "scopes": ["api", "read_user"]}),
    )
    .await;
    let old_value = secret(&old);
    let path = format!("/api/v4/personal_access_tokens/{}/rotate", old["id"]);

    // An administrator rotates ada's token: 200, the successor with its value, a week's life.
    let rotated = post_json(&app, &path, json!({}), ROOT_TOKEN).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new = rotated.json();
    let keys: Vec<&str> = new
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "revoked",
            "created_at",
            "description",
            "scopes",
            "user_id",
            "last_used_at",
            "active",
            "expires_at",
            "token"
        ]
    );
    assert_ne!(new["id"], old["id"]);
    assert_eq!(
        (
            &new["name"],
            &new["scopes"],
            &new["user_id"],
            &new["expires_at"],
            &new["active"]
        ),
        (
            &json!("ci"),
            &json!(["api", "read_user"]),
            &json!(ada.id),
            &json!("2026-06-22"),
            &json!(true)
        )
    );
    let new_value = secret(&new);
    assert!(new_value.starts_with("glpat-"));
    assert_ne!(new_value, old_value);
    // The old token stops working at once; the new one works.
    let refused = app
        .send(Method::GET, "/api/v4/user", Some(&old_value))
        .await;
    assert_eq!(
        (refused.status, refused.json()),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token", "error_description": REVOKED})
        )
    );
    assert_eq!(works(&app, &new_value).await, StatusCode::OK);
    let old_now = app
        .get(&format!("/api/v4/personal_access_tokens/{}", old["id"]))
        .await
        .json();
    assert_eq!(
        (old_now["revoked"].clone(), old_now["active"].clone()),
        (json!(true), json!(false))
    );

    // Rotating it again: GitLab's 400, nothing made.
    let again = post_json(&app, &path, json!({}), ROOT_TOKEN).await;
    assert_eq!(
        (again.status, again.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "400 Bad request - Token already revoked"})
        )
    );
    assert_eq!(
        app.get(&format!(
            "/api/v4/personal_access_tokens?user_id={}",
            ada.id
        ))
        .await
        .header("x-total"),
        Some("2")
    );

    // ada rotates her own token with a date of her choosing.
    let own_path = format!("/api/v4/personal_access_tokens/{}/rotate", new["id"]);
    let own = post_json(
        &app,
        &own_path,
        json!({"expires_at": "2026-07-01"}),
        &new_value,
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    let third = own.json();
    assert_eq!(third["expires_at"], "2026-07-01");
    // bob may not rotate ada's (401, as for a token that does not exist); an administrator
    // learns that a token does not exist (404).
    let bob_token = create_token(&app, bob.id, json!({"name": "b", "scopes": ["api"]})).await;
    let third_path = format!("/api/v4/personal_access_tokens/{}/rotate", third["id"]);
    let foreign = post_json(&app, &third_path, json!({}), &secret(&bob_token)).await;
    assert_eq!(
        (foreign.status, foreign.json()),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "401 Unauthorized"})
        )
    );
    let missing = post_json(
        &app,
        "/api/v4/personal_access_tokens/999999/rotate",
        json!({}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(
        (missing.status, missing.json()),
        (StatusCode::NOT_FOUND, json!({"message": "404 Not Found"}))
    );
    let not_mine = post_json(
        &app,
        "/api/v4/personal_access_tokens/999999/rotate",
        json!({}),
        &secret(&bob_token),
    )
    .await;
    assert_eq!(not_mine.status, StatusCode::UNAUTHORIZED);
    // Bad dates: Grape's parameter error, and GitLab's model check (expiry is required by
    // default, so no date beyond a year from today).
    let bad = post_json(&app, &third_path, json!({"expires_at": "soon"}), ROOT_TOKEN).await;
    assert_eq!(
        (bad.status, bad.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "expires_at is invalid"})
        )
    );
    let far = post_json(
        &app,
        &third_path,
        json!({"expires_at": "2027-06-16"}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(
        (far.status, far.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "400 Bad request - Expires at must be before 2027-06-15"})
        )
    );
    // A refused rotation changed nothing: the token still works.
    assert_eq!(works(&app, &secret(&third)).await, StatusCode::OK);
    // A read_api token cannot rotate (it writes).
    let reader = create_token(&app, bob.id, json!({"name": "r", "scopes": ["read_api"]})).await;
    let reader_path = format!("/api/v4/personal_access_tokens/{}/rotate", reader["id"]);
    let scope = post_json(&app, &reader_path, json!({}), &secret(&reader)).await;
    assert_eq!(scope.status, StatusCode::FORBIDDEN, "{}", scope.body);
    assert_eq!(scope.json()["error"], "insufficient_scope");
    // Audited: who rotated which token of whom.
    let audited = app
        .query_texts(
            "SELECT CAST(entity_id AS TEXT) FROM audit_events
             WHERE event_name = 'personal_access_token_rotated' ORDER BY id",
        )
        .await;
    assert_eq!(audited, [ada.id.to_string(), ada.id.to_string()]);
}

async fn the_token_used_rotates_itself(app: TestApp) {
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let token = create_token(
        &app,
        ada.id,
        json!({"name": "rotator", "scopes": ["self_rotate"]}),
    )
    .await;
    let value = secret(&token);
    // A self_rotate token can rotate itself, and do nothing else.
    assert_eq!(works(&app, &value).await, StatusCode::FORBIDDEN);
    let info = app
        .send(
            Method::GET,
            "/api/v4/personal_access_tokens/self",
            Some(&value),
        )
        .await;
    assert_eq!(info.status, StatusCode::FORBIDDEN, "{}", info.body);
    let rotated = post_json(
        &app,
        "/api/v4/personal_access_tokens/self/rotate",
        json!({"expires_at": "2026-08-01"}),
        &value,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new = rotated.json();
    assert_eq!(
        (
            &new["name"],
            &new["scopes"],
            &new["expires_at"],
            &new["user_id"]
        ),
        (
            &json!("rotator"),
            &json!(["self_rotate"]),
            &json!("2026-08-01"),
            &json!(ada.id)
        )
    );
    // The old one is revoked; the new one rotates again.
    let old = app
        .get(&format!("/api/v4/personal_access_tokens/{}", token["id"]))
        .await
        .json();
    assert_eq!(old["revoked"], true);
    let again = post_json(
        &app,
        "/api/v4/personal_access_tokens/self/rotate",
        json!({}),
        &secret(&new),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    // An api token rotates itself too; a read_api one gets GitLab's scope refusal.
    let api = create_token(&app, ada.id, json!({"name": "api", "scopes": ["api"]})).await;
    assert_eq!(
        post_json(
            &app,
            "/api/v4/personal_access_tokens/self/rotate",
            json!({}),
            &secret(&api)
        )
        .await
        .status,
        StatusCode::OK
    );
    let reader = create_token(
        &app,
        ada.id,
        json!({"name": "read", "scopes": ["read_api"]}),
    )
    .await;
    let refused = post_json(
        &app,
        "/api/v4/personal_access_tokens/self/rotate",
        json!({}),
        &secret(&reader),
    )
    .await;
    assert_eq!(
        (refused.status, refused.json()),
        (
            StatusCode::FORBIDDEN,
            json!({
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": "api self_rotate"
            })
        )
    );
    assert_eq!(
        works(&app, &secret(&reader)).await,
        StatusCode::OK,
        "a refusal revokes nothing"
    );
    // No token: GitLab's 401.
    let anonymous = app
        .send(
            Method::POST,
            "/api/v4/personal_access_tokens/self/rotate",
            None,
        )
        .await;
    assert_eq!(
        (anonymous.status, anonymous.json()),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "401 Unauthorized"})
        )
    );
}

async fn a_revoked_token_used_to_rotate_revokes_its_family(app: TestApp) {
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let first = create_token(&app, ada.id, json!({"name": "ci", "scopes": ["api"]})).await;
    let second = post_json(
        &app,
        "/api/v4/personal_access_tokens/self/rotate",
        json!({}),
        &secret(&first),
    )
    .await
    .json();
    let third = post_json(
        &app,
        "/api/v4/personal_access_tokens/self/rotate",
        json!({}),
        &secret(&second),
    )
    .await
    .json();
    assert_eq!(works(&app, &secret(&third)).await, StatusCode::OK);
    // Another token of ada's, not of this family.
    let other = create_token(&app, ada.id, json!({"name": "other", "scopes": ["api"]})).await;
    // A revoked token used for anything else is only refused.
    assert_eq!(works(&app, &secret(&first)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(works(&app, &secret(&third)).await, StatusCode::OK);
    // Used to rotate (a copy someone kept): refused, and every token rotated from it revoked.
    let reuse = post_json(
        &app,
        "/api/v4/personal_access_tokens/self/rotate",
        json!({}),
        &secret(&first),
    )
    .await;
    assert_eq!(
        (reuse.status, reuse.json()),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token", "error_description": REVOKED})
        )
    );
    assert_eq!(works(&app, &secret(&third)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        works(&app, &secret(&other)).await,
        StatusCode::OK,
        "not of the family"
    );
    let family = app
        .query_texts(
            "SELECT CAST(entity_id AS TEXT) FROM audit_events
             WHERE event_name = 'personal_access_token_family_revoked'",
        )
        .await;
    assert_eq!(family, [ada.id.to_string()]);
    // The same through the id route.
    let a = create_token(&app, ada.id, json!({"name": "a", "scopes": ["api"]})).await;
    let b = post_json(
        &app,
        &format!("/api/v4/personal_access_tokens/{}/rotate", a["id"]),
        json!({}),
        &secret(&a),
    )
    .await
    .json();
    let reuse = post_json(
        &app,
        &format!("/api/v4/personal_access_tokens/{}/rotate", b["id"]),
        json!({}),
        &secret(&a),
    )
    .await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    assert_eq!(works(&app, &secret(&b)).await, StatusCode::UNAUTHORIZED);
}

async fn settings_shape_new_tokens(app: TestApp) {
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let before = create_token(&app, ada.id, json!({"name": "old", "scopes": ["api"]})).await;
    assert_eq!(
        before["expires_at"], "2027-06-15",
        "the longest lifetime by default"
    );
    // The prefix applies to tokens made from now on; tokens with the old prefix keep working.
    put_settings(&app, json!({"personal_access_token_prefix": "acme-"})).await;
    let prefixed = create_token(&app, ada.id, json!({"name": "new", "scopes": ["api"]})).await;
    assert!(
        secret(&prefixed).starts_with("acme-"),
        "new tokens take the prefix"
    );
    assert_eq!(works(&app, &secret(&prefixed)).await, StatusCode::OK);
    assert_eq!(works(&app, &secret(&before)).await, StatusCode::OK);
    let rotated = post_json(
        &app,
        "/api/v4/personal_access_tokens/self/rotate",
        json!({}),
        &secret(&before),
    )
    .await
    .json();
    assert!(
        secret(&rotated).starts_with("acme-"),
        "a rotated token is a new token"
    );
    // An empty prefix: tokens with no prefix at all.
    put_settings(&app, json!({"personal_access_token_prefix": ""})).await;
    let bare = create_token(&app, ada.id, json!({"name": "bare", "scopes": ["api"]})).await;
    assert_eq!(
        secret(&bare).len(),
        20,
        "20 random characters and nothing else"
    );
    // Expiry not required: no date means none, and any date is taken.
    put_settings(&app, json!({"require_personal_access_token_expiry": false})).await;
    let forever = create_token(&app, ada.id, json!({"name": "forever", "scopes": ["api"]})).await;
    assert_eq!(forever["expires_at"], Value::Null);
    let far = create_token(
        &app,
        ada.id,
        json!({"name": "far", "scopes": ["api"], "expires_at": "2030-01-01"}),
    )
    .await;
    assert_eq!(far["expires_at"], "2030-01-01");
    let rotated = post_json(
        &app,
        "/api/v4/personal_access_tokens/self/rotate",
        json!({}),
        &secret(&forever),
    )
    .await
    .json();
    assert_eq!(
        rotated["expires_at"],
        Value::Null,
        "no week when expiry is not required"
    );
    // Required again: a date beyond a year is refused with GitLab's sentence, nothing made.
    put_settings(&app, json!({"require_personal_access_token_expiry": true})).await;
    let path = format!("/api/v4/users/{}/personal_access_tokens", ada.id);
    let refused = post_json(
        &app,
        &path,
        json!({"name": "x", "scopes": ["api"], "expires_at": "2027-06-16"}),
        ROOT_TOKEN,
    )
    .await;
    assert_eq!(
        (refused.status, refused.json()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Expires at must be before 2027-06-15"})
        )
    );
    // max_personal_access_token_lifetime is stored but, below Ultimate, not enforced.
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    put_settings(&app, json!({"max_personal_access_token_lifetime": 30})).await;
    let premium_token = create_token(&app, ada.id, json!({"name": "p", "scopes": ["api"]})).await;
    assert_eq!(premium_token["expires_at"], "2027-06-15");
    assert_eq!(
        works(&app, &secret(&far)).await,
        StatusCode::OK,
        "nothing revoked below Ultimate"
    );
}

async fn the_longest_lifetime_applies_on_ultimate(app: TestApp) {
    let ultimate = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "ultimate", "active_user_count": 10}),
    );
    assert_eq!(app.upload(&ultimate).await.status, StatusCode::CREATED);
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let root_id: i64 = app
        .query_texts("SELECT CAST(id AS TEXT) FROM users WHERE username = 'root'")
        .await[0]
        .parse()
        .expect("root id");
    // The administrator's working token must outlive the change: GitLab revokes every token
    // beyond the new lifetime, and tokens that never expire (the initial root token) with them.
    let admin = create_token(
        &app,
        root_id,
        json!({"name": "admin", "scopes": ["api", "admin_mode"], "expires_at": "2026-07-01"}),
    )
    .await;
    let admin_value = secret(&admin);
    let long = create_token(
        &app,
        ada.id,
        json!({"name": "long", "scopes": ["api"], "expires_at": "2026-12-01"}),
    )
    .await;
    let short = create_token(
        &app,
        ada.id,
        json!({"name": "short", "scopes": ["api"], "expires_at": "2026-07-10"}),
    )
    .await;
    let reply = app
        .send_with(
            app.client
                .put(app.url("/api/v4/application/settings"))
                .json(&json!({"max_personal_access_token_lifetime": 30})),
            Some(&admin_value),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["max_personal_access_token_lifetime"], 30);
    assert_eq!(
        works(&app, &secret(&long)).await,
        StatusCode::UNAUTHORIZED,
        "beyond 30 days: revoked"
    );
    assert_eq!(
        works(&app, ROOT_TOKEN).await,
        StatusCode::UNAUTHORIZED,
        "never expires: revoked"
    );
    assert_eq!(works(&app, &secret(&short)).await, StatusCode::OK);
    assert_eq!(works(&app, &admin_value).await, StatusCode::OK);
    let policy = app
        .query_texts(
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events
             WHERE event_name = 'personal_access_tokens_revoked_by_lifetime_policy'",
        )
        .await;
    assert_eq!(policy, ["1"]);
    // New tokens: 30 days by default, no later date.
    let path = format!("/api/v4/users/{}/personal_access_tokens", ada.id);
    let made = post_json(
        &app,
        &path,
        json!({"name": "n", "scopes": ["api"]}),
        &admin_value,
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.json()["expires_at"], "2026-07-15");
    let refused = post_json(
        &app,
        &path,
        json!({"name": "n", "scopes": ["api"], "expires_at": "2026-07-16"}),
        &admin_value,
    )
    .await;
    assert_eq!(
        (refused.status, refused.json()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Expires at must be before 2026-07-15"})
        )
    );
    // Saving the same lifetime again revokes nothing more (only a change applies the policy).
    let again = app
        .send_with(
            app.client
                .put(app.url("/api/v4/application/settings"))
                .json(&json!({"max_personal_access_token_lifetime": 30})),
            Some(&admin_value),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        app.query_texts(
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events
             WHERE event_name = 'personal_access_tokens_revoked_by_lifetime_policy'",
        )
        .await,
        ["1"]
    );
}
