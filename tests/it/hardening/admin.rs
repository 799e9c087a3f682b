//! Who may act as an administrator: Admin Mode on every route, read-only scopes on the token
//! API, and the last administrator, who can neither lock themselves out nor be locked out —
//! with a command-line rescue for when it happened anyway.

use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, Reply, ROOT_TOKEN};
use crate::support::process::binary;
use crate::support::server::ServerProcess;

/// Creates a user through the API and returns its id.
async fn create_user(server: &ServerProcess, username: &str, admin: bool) -> i64 {
    let reply = server
        .json_as_root(
            Method::POST,
            "/api/v4/users",
            &json!({
                "username": username,
                "name": username,
                "email": format!("{username}@example.org"),
                "admin": admin,
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_i64().expect("id")
}

/// A token for `user_id` with `scopes`, made by root; returns (value, id).
async fn create_token(server: &ServerProcess, user_id: i64, scopes: &[&str]) -> (String, i64) {
    let reply = server
        .json_as_root(
            Method::POST,
            &format!("/api/v4/users/{user_id}/personal_access_tokens"),
            &json!({"name": "t", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let body = reply.json();
    (
        body["token"].as_str().expect("token").to_string(),
        body["id"].as_i64().expect("id"),
    )
}

/// Runs the CLI against the server's database; returns (success, stdout, stderr).
fn cli(server: &ServerProcess, args: &[&str]) -> (bool, String, String) {
    let output = binary()
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &server.database_url)
        .env("DATA_DIR", server.data_dir.join("data"))
        .output()
        .expect("cli runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// With Admin Mode on, root's token without `admin_mode` walks every route of the OpenAPI
/// document (plus GraphQL and the page): nothing administrative answers, nothing changes.
async fn admin_mode_holds_on_every_route(backend: Backend) {
    let mut server = ServerProcess::start(backend, &[("ADMIN_MODE", "true")]).await;
    // A Duo purchase an administrator could hand seats out of.
    server
        .upload(&crate::support::licenses::duo_today(50, 5))
        .await;
    let other = create_user(&server, "other", false).await;
    let (_, other_token) = create_token(&server, other, &["api"]).await;
    let (plain, _) = create_token(&server, 1, &["api"]).await;
    // `DELETE /personal_access_tokens/self` revokes the caller's own token (anyone may):
    // that one is walked with a token of its own.
    let (throwaway, _) = create_token(&server, 1, &["api"]).await;
    // And `POST /personal_access_tokens/self/rotate` revokes it too (anyone may rotate their own).
    let (rotating, _) = create_token(&server, 1, &["api"]).await;
    let hook = server
        .json_as_root(
            Method::POST,
            "/api/v4/hooks",
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(hook.status, 201);
    let group = server
        .json_as_root(
            Method::POST,
            "/api/v4/groups",
            &json!({"name": "g", "path": "g"}),
        )
        .await;
    assert_eq!(group.status, 201);

    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
            .expect("openapi.json"),
    )
    .expect("json");
    let paths = document["paths"].as_object().expect("paths");
    let mut walked = 0;
    for (path, operations) in paths {
        for method in operations.as_object().expect("operations").keys() {
            let concrete = path
                .replace("{user_id}", &other.to_string())
                .replace("{add_on_name}", "code_suggestions")
                .replace("{action}", "block");
            let concrete = if path.starts_with("/api/v4/personal_access_tokens/{id}") {
                concrete.replace("{id}", &other_token.to_string())
            } else if path.starts_with("/api/v4/users/{id}") {
                concrete.replace("{id}", &other.to_string())
            } else {
                concrete.replace("{id}", "1")
            };
            let method: Method = method.to_uppercase().parse().expect("method");
            let body = json!({
                "name": "x", "username": "x", "email": "x@example.org", "path": "x",
                "url": "http://127.0.0.1:9/x", "scopes": ["api"], "license": "x",
                "user_id": other, "access_level": 30, "quantity": 1, "admin": true,
            });
            let request = server
                .client
                .request(method.clone(), server.url(&concrete))
                .json(&body);
            let token = if method == Method::DELETE && path.ends_with("/self") {
                &throwaway
            } else if path.ends_with("/self/rotate") {
                &rotating
            } else {
                &plain
            };
            let reply = server.send_with(request, Some(token)).await;
            walked += 1;
            check_non_admin_answer(&method, path, &reply, other);
        }
    }
    assert!(walked >= 45, "walked {walked} operations");
    // GraphQL: administrators' fields answer as to anybody else.
    let reply = server
        .graphql(
            Some(&plain),
            &json!({"query": "{ selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS, addOnPurchaseIds: []) { nodes { id } } }"}),
        )
        .await;
    assert_eq!(
        reply.json()["data"]["selfManagedAddOnEligibleUsers"],
        Value::Null
    );
    let reply = server
        .graphql(Some(&plain), &json!({"query": "{ addOnPurchases { id } }"}))
        .await;
    assert_eq!(reply.json(), json!({"data": {"addOnPurchases": []}}));
    let mutation = format!(
        "mutation {{ userAddOnAssignmentCreate(input: {{addOnPurchaseId: \"gid://gitlab/GitlabSubscriptions::AddOnPurchase/1\", userId: \"gid://gitlab/User/{other}\"}}) {{ errors }} }}"
    );
    let reply = server
        .graphql(Some(&plain), &json!({ "query": mutation }))
        .await;
    assert!(
        reply.json()["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("don't have permission")),
        "{}",
        reply.body
    );
    // The subscription page does not let it sign in.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = client
        .get(server.url("/admin/sign_in"))
        .send()
        .await
        .expect("form");
    let cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .unwrap_or_default()
        .to_string();
    let csrf = crate::support::csrf_of(&form.text().await.expect("body"));
    let signed_in = client
        .post(server.url("/admin/sign_in"))
        .header("Cookie", cookie)
        .form(&[
            ("authenticity_token", csrf.as_str()),
            ("token", plain.as_str()),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 403);
    assert!(signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|value| !value
            .to_str()
            .unwrap_or_default()
            .starts_with("_gitlab_license_server_session=")));
    // Nothing changed: the other user's token still works, the user is active, the hook and
    // the group are there.
    let reply = server
        .send(Method::GET, "/api/v4/users/2", Some(ROOT_TOKEN))
        .await;
    assert_eq!(reply.json()["state"], "active");
    let reply = server
        .send(
            Method::GET,
            &format!("/api/v4/personal_access_tokens/{other_token}"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.json()["revoked"], false, "{}", reply.body);
    assert_eq!(
        server
            .get("/api/v4/hooks")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        server
            .get("/api/v4/groups")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    server.assert_alive().await;
}

/// What a non-administrator may see on the routes open to every user: their own things only.
fn check_non_admin_answer(method: &Method, path: &str, reply: &Reply, other: i64) {
    let open_to_all = [
        "/api/v4/user",
        "/api/v4/version",
        "/api/v4/metadata",
        "/-/health",
        "/-/liveness",
        "/-/readiness",
        // Loopback is on the scrape allow-list.
        "/-/metrics",
        "/api/v4/personal_access_tokens",
        "/api/v4/personal_access_tokens/self",
        "/api/v4/personal_access_tokens/self/rotate",
    ];
    // GET /users/:id is open to every user, with GitLab's public entity only.
    let one_user = path.strip_prefix("/api/v4/users/").is_some_and(|id| {
        id == "{id}" || (!id.is_empty() && id.bytes().all(|byte| byte.is_ascii_digit()))
    });
    if *method == Method::GET && one_user && reply.status.is_success() {
        let user = reply.json();
        assert!(
            user.get("email").is_none() && user.get("is_admin").is_none(),
            "GET {path} showed a non-administrator more than the public entity: {user}"
        );
        return;
    }
    if open_to_all.contains(&path) && reply.status.is_success() {
        if path == "/api/v4/personal_access_tokens" {
            for token in reply.json().as_array().expect("tokens") {
                assert_eq!(token["user_id"], 1, "another user's token listed: {token}");
            }
        }
        if path == "/api/v4/user" {
            assert_eq!(reply.json()["id"], 1);
        }
        if path.ends_with("/self/rotate") {
            assert_eq!(reply.json()["user_id"], 1, "rotated someone else's token");
        }
        return;
    }
    assert!(
        matches!(reply.status.as_u16(), 401 | 403 | 404),
        "{method} {path} answered {} to a token without admin_mode: {}",
        reply.status,
        reply.body
    );
    assert!(
        !reply.body.contains(&format!("\"user_id\":{other}")),
        "{method} {path} leaked: {}",
        reply.body
    );
}

/// A `read_user` token reads the user API, not the token API.
async fn read_user_tokens_cannot_list_tokens(backend: Backend) {
    let server = ServerProcess::start(backend, &[]).await;
    let other = create_user(&server, "other", false).await;
    let (read_user, _) = create_token(&server, 1, &["read_user"]).await;
    for path in [
        format!("/api/v4/personal_access_tokens?user_id={other}"),
        "/api/v4/personal_access_tokens".to_string(),
        "/api/v4/personal_access_tokens/1".to_string(),
    ] {
        let reply = server.send(Method::GET, &path, Some(&read_user)).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.body);
        assert_eq!(reply.json()["error"], "insufficient_scope");
    }
    let reply = server
        .send(Method::GET, "/api/v4/user", Some(&read_user))
        .await;
    assert_eq!(reply.status, 200);
    let (read_api, _) = create_token(&server, 1, &["read_api"]).await;
    let reply = server
        .send(
            Method::GET,
            &format!("/api/v4/personal_access_tokens?user_id={other}"),
            Some(&read_api),
        )
        .await;
    assert_eq!(reply.status, 200);
}

/// An administrator cannot ban, deactivate, demote or delete themselves; two administrators
/// demoting each other at once leave one; and `admin rescue` restores access after all.
async fn the_last_administrator_cannot_be_locked_out(backend: Backend) {
    let server = ServerProcess::start(backend, &[]).await;
    for (method, path, body, message) in [
        (
            Method::POST,
            "/api/v4/users/1/ban",
            json!({}),
            "403 Forbidden - The API initiating user cannot be banned by the API",
        ),
        (
            Method::POST,
            "/api/v4/users/1/block",
            json!({}),
            "403 Forbidden - The API initiating user cannot be blocked by the API",
        ),
        (
            Method::POST,
            "/api/v4/users/1/deactivate",
            json!({}),
            "403 Forbidden - The API initiating user cannot be deactivated by the API",
        ),
        (
            Method::PUT,
            "/api/v4/users/1",
            json!({"admin": false}),
            "403 Forbidden - The API initiating user cannot remove their own administrator access",
        ),
        (
            Method::DELETE,
            "/api/v4/users/1",
            json!({}),
            "403 Forbidden - The API initiating user cannot be deleted by the API",
        ),
    ] {
        let reply = server
            .send_with(
                server
                    .client
                    .request(method.clone(), server.url(path))
                    .json(&body),
                Some(ROOT_TOKEN),
            )
            .await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
        assert_eq!(
            reply.json(),
            json!({ "message": message }),
            "{method} {path}"
        );
    }
    let me = server.get("/api/v4/user").await.json();
    assert_eq!(me["state"], "active");
    assert_eq!(me["is_admin"], true);

    // Two administrators demote each other at the same moment, again and again: one of each
    // pair is refused, and an active administrator always remains.
    let ada = create_user(&server, "ada", true).await;
    let bob = create_user(&server, "bob", true).await;
    let (ada_token, _) = create_token(&server, ada, &["api"]).await;
    let (bob_token, _) = create_token(&server, bob, &["api"]).await;
    // Root steps down (an administrator may demote another while one remains).
    let reply = server
        .send_with(
            server
                .client
                .put(server.url("/api/v4/users/1"))
                .json(&json!({"admin": false})),
            Some(&ada_token),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for round in 0..10 {
        let demote = |token: String, target: i64| {
            let client = server.client.clone();
            let url = server.url(&format!("/api/v4/users/{target}"));
            async move {
                client
                    .put(url)
                    .header("PRIVATE-TOKEN", token)
                    .json(&json!({"admin": false}))
                    .send()
                    .await
                    .expect("demote")
                    .status()
                    .as_u16()
            }
        };
        let (a, b) = tokio::join!(
            demote(ada_token.clone(), bob),
            demote(bob_token.clone(), ada)
        );
        let mut admins = Vec::new();
        for id in [1, ada, bob] {
            // Read with whichever of the two is still an administrator.
            let mut user = Value::Null;
            for token in [&ada_token, &bob_token] {
                let reply = server
                    .send(Method::GET, &format!("/api/v4/users/{id}"), Some(token))
                    .await;
                // Non-administrators see GitLab's public `User` entity (no email, no is_admin).
                if reply.status == 200 && reply.json().get("email").is_some() {
                    user = reply.json();
                    break;
                }
            }
            if user["is_admin"] == true && user["state"] == "active" {
                admins.push(id);
            }
        }
        assert_eq!(admins.len(), 1, "round {round}: {a}/{b} left {admins:?}");
        // The survivor promotes the other again for the next round.
        let (survivor, target) = if a == 200 {
            (&ada_token, bob)
        } else {
            (&bob_token, ada)
        };
        let reply = server
            .send_with(
                server
                    .client
                    .put(server.url(&format!("/api/v4/users/{target}")))
                    .json(&json!({"admin": true})),
                Some(survivor),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    // Lock everybody out behind the server's back, then rescue root from the command line.
    let (ok, _, stderr) = cli(&server, &["admin", "rescue", "--username", "nobody"]);
    assert!(!ok);
    assert!(stderr.contains("nobody"), "{stderr}");
    lock_everyone_out(&server).await;
    let reply = server.get("/api/v4/license").await;
    assert!(reply.status == 403 || reply.status == 401, "{}", reply.body);
    let (ok, stdout, stderr) = cli(&server, &["admin", "rescue"]);
    assert!(ok, "{stderr}");
    let token = stdout.trim().to_string();
    assert!(token.starts_with("glpat-"), "{stdout}");
    let reply = server
        .send(Method::GET, "/api/v4/license", Some(&token))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let me = server
        .send(Method::GET, "/api/v4/user", Some(&token))
        .await
        .json();
    assert_eq!(
        (
            me["username"].clone(),
            me["state"].clone(),
            me["is_admin"].clone()
        ),
        (json!("root"), json!("active"), json!(true))
    );
    let audit = server
        .send(
            Method::GET,
            "/api/v4/audit_events?entity_type=User&entity_id=1",
            Some(&token),
        )
        .await
        .json();
    assert!(
        audit
            .as_array()
            .expect("events")
            .iter()
            .any(|event| event["details"]["custom_message"]
                .as_str()
                .is_some_and(|text| text.contains("rescue"))),
        "{audit}"
    );
    // Rescuing a deleted root creates it again.
    drop_root(&server).await;
    let (ok, stdout, stderr) = cli(&server, &["admin", "rescue"]);
    assert!(ok, "{stderr}");
    let token = stdout.trim().to_string();
    let me = server
        .send(Method::GET, "/api/v4/user", Some(&token))
        .await
        .json();
    assert_eq!(me["username"], "root");
    assert_eq!(me["is_admin"], true);
}

async fn execute(server: &ServerProcess, statements: &[&str]) {
    match server.backend {
        Backend::Sqlite => {
            use sqlx::Connection as _;
            let mut connection = sqlx::SqliteConnection::connect(&server.database_url)
                .await
                .expect("sqlite");
            for statement in statements {
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .expect("statement");
            }
        }
        Backend::Postgres => {
            use sqlx::Connection as _;
            let mut connection = sqlx::PgConnection::connect(&server.database_url)
                .await
                .expect("postgres");
            for statement in statements {
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .expect("statement");
            }
        }
    }
    // The server's caches hold a token check for at most a second.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
}

async fn lock_everyone_out(server: &ServerProcess) {
    execute(
        server,
        &[
            "UPDATE users SET admin = FALSE",
            "UPDATE users SET state = 'blocked' WHERE id = 1",
        ],
    )
    .await;
}

async fn drop_root(server: &ServerProcess) {
    execute(server, &["DELETE FROM users WHERE id = 1"]).await;
}

on_both_backends_as_processes!(
    admin_mode_holds_on_every_route,
    read_user_tokens_cannot_list_tokens,
    the_last_administrator_cannot_be_locked_out,
);
