//! Every change an administrator would want to trace leaves an audit event: seat assignments
//! and removals (GraphQL and the page), system-hook changes, group membership changes, and
//! signing in to and out of the page.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, Reply, ROOT_TOKEN};
use crate::support::licenses::duo_today;
use crate::support::server::ServerProcess;

async fn events(server: &ServerProcess) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1..=5 {
        let reply = server
            .get(&format!("/api/v4/audit_events?per_page=100&page={page}"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let items = reply.json().as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        all.extend(items);
    }
    all
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["event_name"] == name)
        .collect()
}

/// A browser's cookies, enough for the sign-in form.
struct Browser<'a> {
    server: &'a ServerProcess,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(server: &'a ServerProcess) -> Self {
        Self {
            server,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Reply {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let reply = self
            .server
            .send_with(request.header("Cookie", cookie.join("; ")), None)
            .await;
        for value in reply.headers.get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            if let Some((name, rest)) = text.split_once('=') {
                let value = rest.split(';').next().unwrap_or_default();
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        reply
    }

    async fn csrf(&mut self, path: &str) -> String {
        let page = self.send(self.client.get(self.server.url(path))).await;
        assert_eq!(page.status, 200, "{}", page.body);
        crate::support::csrf_of(&page.body)
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.send(self.client.post(self.server.url(path)).form(fields))
            .await
    }
}

async fn changes_an_admin_would_trace_are_audited(backend: Backend) {
    let server = ServerProcess::start(backend, &[]).await;
    server.upload(&duo_today(50, 5)).await;
    let user = server
        .json_as_root(
            Method::POST,
            "/api/v4/users",
            &json!({
                "username": "ada", "name": "Ada", "email": "ada@example.org"
            }),
        )
        .await;
    assert_eq!(user.status, 201);
    let ada = user.json()["id"].as_i64().expect("id");

    // Seats over GraphQL.
    let assign = "mutation($u: [UserID!]!) { userAddOnAssignmentBulkCreate(input: {addOnPurchaseId: \"gid://gitlab/GitlabSubscriptions::AddOnPurchase/1\", userIds: $u}) { errors } }";
    let remove = "mutation($u: [UserID!]!) { userAddOnAssignmentBulkRemove(input: {addOnPurchaseId: \"gid://gitlab/GitlabSubscriptions::AddOnPurchase/1\", userIds: $u}) { errors } }";
    for query in [assign, remove, assign] {
        let reply = server
            .graphql(
                Some(ROOT_TOKEN),
                &json!({"query": query, "variables": {"u": [format!("gid://gitlab/User/{ada}")]}}),
            )
            .await;
        assert_eq!(
            reply.json()["data"].as_object().map(|data| data.len()),
            Some(1),
            "{}",
            reply.body
        );
    }
    // Hooks.
    let hook = server
        .json_as_root(
            Method::POST,
            "/api/v4/hooks",
            &json!({"url": "http://127.0.0.1:9/a"}),
        )
        .await;
    assert_eq!(hook.status, 201);
    for (method, body) in [
        (Method::PUT, json!({"url": "http://127.0.0.1:9/b"})),
        (Method::DELETE, json!({})),
    ] {
        let reply = server
            .send_with(
                server
                    .client
                    .request(method, server.url("/api/v4/hooks/1"))
                    .json(&body),
                Some(ROOT_TOKEN),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.body);
    }
    // Memberships.
    let group = server
        .json_as_root(
            Method::POST,
            "/api/v4/groups",
            &json!({"name": "G", "path": "g"}),
        )
        .await;
    assert_eq!(group.status, 201);
    let group_id = group.json()["id"].as_i64().expect("id");
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/v4/groups/{group_id}/members"),
            json!({"user_id": ada, "access_level": 30}),
        ),
        (
            Method::PUT,
            format!("/api/v4/groups/{group_id}/members/{ada}"),
            json!({"access_level": 40}),
        ),
        (
            Method::DELETE,
            format!("/api/v4/groups/{group_id}/members/{ada}"),
            json!({}),
        ),
    ] {
        let reply = server
            .send_with(
                server.client.request(method, server.url(&path)).json(&body),
                Some(ROOT_TOKEN),
            )
            .await;
        assert!(reply.status.is_success(), "{path}: {}", reply.body);
    }
    // The page: sign in, unassign a seat, sign out.
    let mut browser = Browser::new(&server);
    let csrf = browser.csrf("/admin/sign_in").await;
    let signed_in = browser
        .post(
            "/admin/sign_in",
            &[("authenticity_token", &csrf), ("token", ROOT_TOKEN)],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let csrf = browser.csrf("/admin/subscription").await;
    let unassigned = browser
        .post(
            "/admin/subscription/add_ons/1/unassign",
            &[("authenticity_token", &csrf), ("usernames", "ada")],
        )
        .await;
    assert_eq!(unassigned.status, 303, "{}", unassigned.body);
    let signed_out = browser
        .post("/admin/sign_out", &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(signed_out.status, 303);

    let all = events(&server).await;
    let expectations = [
        ("user_add_on_assignment_created", 2),
        ("user_add_on_assignment_removed", 2),
        ("system_hook_created", 1),
        ("system_hook_updated", 1),
        ("system_hook_destroyed", 1),
        ("member_created", 1),
        ("member_updated", 1),
        ("member_destroyed", 1),
        ("user_signed_in", 1),
        ("user_signed_out", 1),
    ];
    for (name, count) in expectations {
        let found = named(&all, name);
        assert_eq!(found.len(), count, "{name}: {all:#?}");
        for event in found {
            assert_eq!(event["author_id"], 1, "{event}");
            assert!(event["details"]["custom_message"]
                .as_str()
                .is_some_and(|text| !text.is_empty()));
        }
    }
    let seat = named(&all, "user_add_on_assignment_created")[0];
    assert_eq!(seat["entity_type"], "User");
    assert_eq!(seat["entity_id"], ada);
    // No secret in the trail: the hook URL is kept, the page's token is not.
    let text = serde_json::to_string(&all).expect("json");
    assert!(!text.contains(ROOT_TOKEN));
}

on_both_backends_as_processes!(changes_an_admin_would_trace_are_audited);
