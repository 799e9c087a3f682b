//! GraphQL requests built to crash or stall the server: values nested thousands deep, batches
//! of aliased operations, huge id lists — each answered with a GraphQL error, quickly, by a
//! process that keeps serving everybody else.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, Reply, ROOT_TOKEN};
use crate::support::licenses::duo_today;
use crate::support::server::ServerProcess;

/// A refusal before execution: an `errors` array and no `data`.
fn assert_refused(reply: &Reply, what: &str) {
    assert!(
        reply.status.is_client_error() || reply.status.is_success(),
        "{what}: status {}",
        reply.status
    );
    let body = reply.json();
    assert!(
        body["errors"][0]["message"].is_string() && body.get("data").is_none(),
        "{what}: {body}"
    );
}

fn nested_lists(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_objects(depth: usize) -> String {
    format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth))
}

/// Values nested far beyond any real query, anonymous, by POST and by GET: a GraphQL error
/// each time, and the process lives.
async fn deeply_nested_values_are_refused_not_fatal(backend: Backend) {
    let mut server = ServerProcess::start(backend, &[]).await;
    let queries = [
        format!("{{ user(id: {}) {{ id }} }}", nested_lists(2_000)),
        format!("{{ user(id: {}) {{ id }} }}", nested_objects(1_500)),
        // Selection sets nested as deep, and a mix of everything.
        format!(
            "{{ {} }}",
            "currentUser { ".repeat(3_000) + &"}".repeat(3_000)
        ),
        format!(
            "query {{ user(id: {}) {{ id }} }}",
            "[{a: (".repeat(800) + &")}]".repeat(800)
        ),
    ];
    for query in &queries {
        let reply = server.graphql(None, &json!({ "query": query })).await;
        assert_refused(&reply, "POST");
        server.assert_alive().await;
        let reply = server
            .send_with(
                server
                    .client
                    .get(server.url("/api/graphql"))
                    .query(&[("query", query.as_str())]),
                None,
            )
            .await;
        // A GET carries the query in its URL: past 32 KiB the URL limit refuses it first.
        if reply.status != 414 {
            assert_refused(&reply, "GET");
        }
        server.assert_alive().await;
    }
    // Nesting that real queries use still works (GraphiQL's introspection query nests about a
    // dozen levels).
    let reply = server
        .graphql(
            None,
            &json!({"query": "{ __schema { types { name fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.json()["data"]["__schema"]["types"].is_array());
}

/// JSON is parsed with a recursion limit: bodies and variables nested 100,000 deep are a 400 on
/// every JSON parser the server has, never a crash.
async fn deeply_nested_json_is_refused_not_fatal(backend: Backend) {
    let mut server = ServerProcess::start(backend, &[]).await;
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    for path in ["/api/graphql", "/api/v4/license", "/api/v4/users"] {
        let reply = server
            .send_with(
                server
                    .client
                    .post(server.url(path))
                    .header("Content-Type", "application/json")
                    .body(deep.clone()),
                Some(ROOT_TOKEN),
            )
            .await;
        assert!(reply.status.is_client_error(), "{path}: {}", reply.status);
        server.assert_alive().await;
    }
    let deep_object = "{\"a\":".repeat(50_000) + "1" + &"}".repeat(50_000);
    let body =
        format!("{{\"query\": \"{{ currentUser {{ id }} }}\", \"variables\": {deep_object}}}");
    // As deep as fits in a URL under the 32 KiB limit.
    let deep_url_object = "{\"a\":".repeat(1_500) + "1" + &"}".repeat(1_500);
    let reply = server
        .send_with(
            server
                .client
                .post(server.url("/api/graphql"))
                .header("Content-Type", "application/json")
                .body(body),
            None,
        )
        .await;
    assert!(reply.status.is_client_error());
    let reply = server
        .send_with(
            server.client.get(server.url("/api/graphql")).query(&[
                ("query", "{ currentUser { id } }"),
                ("variables", deep_url_object.as_str()),
            ]),
            None,
        )
        .await;
    assert!(reply.status.is_client_error());
    server.assert_alive().await;
}

/// `\u0000` inside a GraphQL string literal is a NUL character once parsed: refused like a raw
/// one, before any query (PostgreSQL would answer "invalid byte sequence" with a 500).
async fn nul_escapes_in_query_text_are_refused(backend: Backend) {
    let mut server = ServerProcess::start(backend, &[]).await;
    for query in [
        r#"{ user(username: "ro\u0000ot") { id } }"#,
        r#"{ group(fullPath: "a\u0000") { id } }"#,
        r#"{ namespace(fullPath: "\u{0}") { id } }"#,
    ] {
        let reply = server
            .graphql(Some(ROOT_TOKEN), &json!({ "query": query }))
            .await;
        assert!(reply.status.as_u16() < 500, "{query}: {}", reply.status);
        assert_eq!(
            reply.json(),
            json!({"errors": [{"message": "Arguments may not contain null bytes"}]}),
            "{query}"
        );
    }
    // A block string keeps `\u0000` as six characters, and an escaped backslash is not an
    // escape: neither is a NUL.
    let reply = server
        .graphql(
            Some(ROOT_TOKEN),
            &json!({"query": r#"{ a: user(username: """x\u0000""") { id } b: user(username: "x\\u0000") { id } }"#}),
        )
        .await;
    assert_eq!(reply.json(), json!({"data": {"a": null, "b": null}}));
    server.assert_alive().await;
}

fn aliases(count: usize, field: &str) -> String {
    (0..count).map(|n| format!("a{n}: {field} ")).collect()
}

/// The measured bomb (300 operations × 120 aliases, anonymous) is refused at once by GitLab's
/// query-size limit summed over the batch; a batch that fits in size but not in complexity is
/// refused as a whole; six bombs in parallel do not stall other requests; and each request
/// writes one log line.
async fn batches_cannot_multiply_work(backend: Backend) {
    let server = ServerProcess::start(backend, &[]).await;
    let operation = format!("{{ {} }}", aliases(120, "currentUser{id}"));
    let bomb: Vec<Value> = (0..300).map(|_| json!({ "query": operation })).collect();
    let bomb = Value::Array(bomb);
    let started = Instant::now();
    let reply = server.graphql(None, &bomb).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(
        reply.json(),
        json!({"errors": [{"message": "Query too large"}]})
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // Under the size limit, over the complexity limit only when summed: every operation is
    // refused, none runs.
    let small = format!("{{ {} }}", aliases(15, "currentUser { id }"));
    let batch = Value::Array((0..15).map(|_| json!({ "query": small })).collect());
    let reply = server.graphql(Some(ROOT_TOKEN), &batch).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answers = reply.json();
    let answers = answers.as_array().expect("an array for a batch");
    assert_eq!(answers.len(), 15);
    for answer in answers {
        assert!(answer.get("data").is_none(), "{answer}");
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("exceeds max complexity of 300"),
            "{message}"
        );
    }
    // One operation of the same batch alone runs.
    let reply = server
        .graphql(Some(ROOT_TOKEN), &json!([{ "query": small }]))
        .await;
    assert_eq!(reply.json()[0]["data"]["a14"]["id"], "gid://gitlab/User/1");
    // Too many operations, whatever their size.
    let many = Value::Array(
        (0..51)
            .map(|_| json!({"query": "{a:__typename}"}))
            .collect(),
    );
    let reply = server.graphql(None, &many).await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.json(),
        json!({"errors": [{"message": "Too many operations in one request (at most 50)"}]})
    );

    // The largest batch that passes every limit, six at a time, while an administrator reads
    // the license: the reads stay fast.
    let lines_before = server.log().lines().count();
    let heavy = format!("{{ {} }}", aliases(60, "namespace(fullPath: \"x\") { id }"));
    let heavy_batch = Value::Array((0..2).map(|_| json!({ "query": heavy })).collect());
    let mut attackers = Vec::new();
    for _ in 0..6 {
        let client = server.client.clone();
        let url = server.url("/api/graphql");
        let body = heavy_batch.clone();
        attackers.push(tokio::spawn(async move {
            let mut sent = 0;
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                let _ = client.post(&url).json(&body).send().await;
                sent += 1;
            }
            sent
        }));
    }
    let mut slowest = Duration::ZERO;
    let mut reads = 0;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let started = Instant::now();
        let reply = server
            .send(Method::GET, "/api/v4/licenses", Some(ROOT_TOKEN))
            .await;
        assert_eq!(reply.status, 200);
        slowest = slowest.max(started.elapsed());
        reads += 1;
    }
    let mut attacks = 0;
    for attacker in attackers {
        attacks += attacker.await.expect("attacker");
    }
    assert!(
        slowest < Duration::from_millis(1_500),
        "an unrelated request waited {slowest:?} behind the batches"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = server.log().lines().count() - lines_before;
    assert!(
        lines <= 2 * (attacks + reads) + 10,
        "{lines} log lines for {} requests",
        attacks + reads
    );
}

/// Aliases of one field share one lookup per request: eighty `addOnPurchases` cost about as
/// many statements as one (counted from sqlx's statement log).
async fn aliases_share_per_request_data(backend: Backend) {
    let server = ServerProcess::start(backend, &[("RUST_LOG", "info,sqlx::query=debug")]).await;
    server.upload(&duo_today(10, 5)).await;
    let statements = |log: &str| log.matches("\"target\":\"sqlx::query\"").count();
    // Warm-up: the token is cached and the purchase provisioned.
    let one = json!({"query": "{ addOnPurchases { name purchasedQuantity } }"});
    let reply = server.graphql(Some(ROOT_TOKEN), &one).await;
    assert_eq!(
        reply.json()["data"]["addOnPurchases"][0]["purchasedQuantity"],
        5
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = statements(&server.log());
    let reply = server.graphql(Some(ROOT_TOKEN), &one).await;
    assert_eq!(reply.status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let single = statements(&server.log()) - before;

    // 80 aliases of complexity 3: within the limit of 250.
    let many = json!({"query": format!("{{ {} }}", aliases(80, "addOnPurchases { name purchasedQuantity }"))});
    let before = statements(&server.log());
    let reply = server.graphql(Some(ROOT_TOKEN), &many).await;
    let body = reply.json();
    assert_eq!(body["data"]["a79"][0]["purchasedQuantity"], 5, "{body}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hundred = statements(&server.log()) - before;
    assert!(
        hundred <= single + 2,
        "80 aliases ran {hundred} statements, one alias {single}"
    );
}

/// An administrator's query with 15,000 purchase ids is refused by validation, quickly.
async fn huge_id_lists_are_refused(backend: Backend) {
    let mut server = ServerProcess::start(backend, &[]).await;
    let ids: Vec<String> = (0..15_000)
        .map(|n| format!("gid://gitlab/GitlabSubscriptions::AddOnPurchase/{n}"))
        .collect();
    let started = Instant::now();
    let reply = server
        .graphql(
            Some(ROOT_TOKEN),
            &json!({
                "query": "query($ids: [GitlabSubscriptionsAddOnPurchaseID!]!) { selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS, addOnPurchaseIds: $ids) { nodes { id } } }",
                "variables": {"ids": ids}
            }),
        )
        .await;
    assert_refused(&reply, "15,000 ids");
    let message = reply.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("must be less than or equal to 100"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // As many user ids in a mutation: refused with GitLab's bulk limit before any lookup.
    let users: Vec<String> = (0..15_000)
        .map(|n| format!("gid://gitlab/User/{n}"))
        .collect();
    let reply = server
        .graphql(
            Some(ROOT_TOKEN),
            &json!({
                "query": "mutation($u: [UserID!]!) { userAddOnAssignmentBulkCreate(input: {addOnPurchaseId: \"gid://gitlab/GitlabSubscriptions::AddOnPurchase/1\", userIds: $u}) { errors } }",
                "variables": {"u": users}
            }),
        )
        .await;
    assert!(reply.status.as_u16() < 500);
    assert!(
        reply.json()["errors"][0]["message"].is_string(),
        "{}",
        reply.body
    );
    server.assert_alive().await;
}

on_both_backends_as_processes!(
    deeply_nested_values_are_refused_not_fatal,
    deeply_nested_json_is_refused_not_fatal,
    nul_escapes_in_query_text_are_refused,
    batches_cannot_multiply_work,
    aliases_share_per_request_data,
    huge_id_lists_are_refused,
);
