//! Operations: the Prometheus scrape (names and values against a known state) and who may
//! read it.

use std::collections::BTreeMap;

use serde_json::json;

use crate::on_both_backends;
use crate::support::app::{TestApp, ROOT_TOKEN};
use crate::support::licenses::cloud_license;
use gitlab_license_server::store::NewUser;

on_both_backends!(
    the_scrape_shows_the_license_as_exporters_do,
    only_allowed_peers_and_administrators_may_scrape
);

/// `name{labels}` → value, from an exposition.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(app: &TestApp, token: Option<&str>) -> crate::support::app::Reply {
    app.send(reqwest::Method::GET, "/-/metrics", token).await
}

async fn the_scrape_shows_the_license_as_exporters_do(app: TestApp) {
    // No license yet: no license series at all, the rest is there.
    let reply = scrape(&app, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply
        .header("content-type")
        .is_some_and(|value| value.starts_with("application/openmetrics-text")));
    assert!(reply.body.ends_with("# EOF\n"));
    assert_eq!(reply.body.matches("# EOF").count(), 1);
    let before = samples(&reply.body);
    assert!(!before
        .keys()
        .any(|name| name.starts_with("gitlab_license_id")));
    let backend = match app.backend {
        crate::support::app::Backend::Sqlite => "sqlite",
        crate::support::app::Backend::Postgres => "postgresql",
    };
    assert_eq!(
        before[&format!(
            "gitlab_license_server_build_info{{version=\"{}\",backend=\"{backend}\"}}",
            env!("CARGO_PKG_VERSION")
        )],
        1.0
    );
    assert_eq!(before["gitlab_license_server_db_pool_max_connections"], 4.0);

    // Three seats, four billable users (root and three more): overage 1 after a recount.
    let key = cloud_license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "premium", "active_user_count": 3,
               "add_on_products": {"duo_pro": [{"quantity": 2, "started_on": "2026-01-01",
                                                "expires_on": "2027-01-01", "trial": false}]}}),
    );
    for name in ["ada", "grace", "linus"] {
        app.add_user(NewUser::human(name, false)).await;
    }
    let uploaded = app.upload(&key).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let id = uploaded.json()["id"].as_i64().expect("id");
    app.run_jobs().await;
    let license = app.get("/api/v4/license").await.json();
    let after = samples(&scrape(&app, None).await.body);
    assert_eq!(after["gitlab_license_id"], id as f64);
    assert_eq!(after["gitlab_license_starts_at"], 1_767_225_600.0); // 2026-01-01
    assert_eq!(after["gitlab_license_expires_at"], 1_798_761_600.0); // 2027-01-01
    assert_eq!(after["gitlab_license_user_limit"], 3.0);
    assert_eq!(after["gitlab_license_active_users"], 4.0);
    assert_eq!(after["gitlab_license_expired"], 0.0);
    for (metric, field) in [
        ("gitlab_license_overage", "overage"),
        ("gitlab_license_historical_max", "historical_max"),
        ("gitlab_license_maximum_user_count", "maximum_user_count"),
        ("gitlab_license_active_users", "active_users"),
    ] {
        assert_eq!(
            after[metric],
            license[field].as_f64().expect("number"),
            "{metric} agrees with GET /license"
        );
    }
    assert_eq!(
        after["gitlab_license_server_add_on_seats_purchased{add_on=\"CODE_SUGGESTIONS\",namespace=\"\"}"],
        2.0
    );
    assert_eq!(
        after["gitlab_license_server_add_on_seats_assigned{add_on=\"CODE_SUGGESTIONS\",namespace=\"\"}"],
        0.0
    );
    // Requests by matched route, not raw path; jobs by kind and outcome.
    let route = "gitlab_license_server_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v4/license\",status=\"200\"}";
    assert!(after[route] >= 1.0, "{after:?}");
    assert!(
        after[
            "gitlab_license_server_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v4/license\",status=\"201\"}"
        ] >= 1.0
    );
    app.get("/api/v4/license/424242").await;
    let later = samples(&scrape(&app, None).await.body);
    assert!(later.contains_key(
        "gitlab_license_server_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v4/license/{id}\",status=\"404\"}"
    ));
    assert!(!later.keys().any(|series| series.contains("424242")));
    // Refused before any route is matched (a NUL in the path): counted too, as unmatched.
    assert_eq!(
        app.get("/api/v4/groups/ac%00me").await.status,
        reqwest::StatusCode::BAD_REQUEST
    );
    let refused = samples(&scrape(&app, None).await.body);
    assert!(refused.contains_key(
        "gitlab_license_server_http_request_duration_seconds_count{method=\"GET\",route=\"unmatched\",status=\"400\"}"
    ));
    assert!(
        later
            ["gitlab_license_server_job_runs_total{kind=\"billable_users_count\",outcome=\"done\"}"]
            >= 1.0
    );
    // Values are read at scrape time: a change shows at once.
    app.set_now(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2027, 1, 2, 0, 0, 0).unwrap());
    let expired = samples(&scrape(&app, None).await.body);
    assert_eq!(expired["gitlab_license_expired"], 1.0);
    assert!(!expired.keys().any(|series| series.contains("add_on_seats")
        && !series.starts_with('#')
        && series.contains("CODE_SUGGESTIONS")));
}

async fn only_allowed_peers_and_administrators_may_scrape(app: TestApp) {
    let strict = TestApp::start(app.backend, &[("METRICS_ALLOWED_CIDRS", "10.0.0.0/8")]).await;
    assert_eq!(scrape(&strict, None).await.status, 401);
    let user = strict.add_user(NewUser::human("ada", false)).await;
    let (token, _) = strict.token_for(&user, &["api"], None).await;
    assert_eq!(scrape(&strict, Some(&token)).await.status, 403);
    assert_eq!(scrape(&strict, Some(ROOT_TOKEN)).await.status, 200);
    // The default allow-list is loopback, where the tests run.
    assert_eq!(scrape(&app, None).await.status, 200);
}

on_both_backends!(a_separate_metrics_address_serves_only_the_scrape);

async fn a_separate_metrics_address_serves_only_the_scrape(app: TestApp) {
    use crate::support::process::{free_port, start_server};
    let (port, metrics_port) = (free_port(), free_port());
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let _server = start_server(
        &app.database_url,
        &app.data_dir.join("process"),
        port,
        &[("METRICS_ADDR", &metrics_addr)],
    )
    .await;
    let client = reqwest::Client::new();
    let scrape = client
        .get(format!("http://{metrics_addr}/-/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(scrape.status(), 200);
    assert!(scrape
        .text()
        .await
        .expect("body")
        .contains("gitlab_license_server_build_info"));
    let other = client
        .get(format!("http://{metrics_addr}/api/v4/license"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        other.status(),
        404,
        "the metrics address serves nothing else"
    );
    let main = client
        .get(format!("http://127.0.0.1:{port}/-/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(main.status(), 200, "and the main address still does");
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json is committed");
    assert!(
        committed == gitlab_license_server::api::openapi::document(),
        "openapi.json is out of date: run `cargo run -- openapi > openapi.json`"
    );
}

/// Every 2xx JSON answer is documented down to its fields: a named object schema (through
/// arrays, `$ref`s and nullable `oneOf`s), never a bare `object` or `{}`.
#[test]
fn every_success_response_documents_its_fields() {
    let document: serde_json::Value =
        serde_json::from_str(&gitlab_license_server::api::openapi::document()).expect("json");
    let schemas = &document["components"]["schemas"];
    fn documented(schema: &serde_json::Value, schemas: &serde_json::Value) -> bool {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            return documented(&schemas[name], schemas);
        }
        for composition in ["oneOf", "allOf", "anyOf"] {
            if let Some(parts) = schema[composition].as_array() {
                return parts.iter().all(|part| documented(part, schemas));
            }
        }
        let types: Vec<&str> = match &schema["type"] {
            serde_json::Value::String(one) => vec![one.as_str()],
            serde_json::Value::Array(many) => many.iter().filter_map(|t| t.as_str()).collect(),
            _ => Vec::new(),
        };
        if types.contains(&"array") {
            return documented(&schema["items"], schemas);
        }
        if types.contains(&"object") {
            return schema["properties"]
                .as_object()
                .is_some_and(|properties| !properties.is_empty());
        }
        !types.is_empty()
    }
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let Some(json) = response["content"].get("application/json") else {
                    continue;
                };
                if !status.starts_with('2') {
                    continue;
                }
                assert!(
                    documented(&json["schema"], schemas),
                    "{method} {path} {status}: {}",
                    json["schema"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 38, "only {checked} JSON answers were found");
}

on_both_backends!(the_openapi_document_is_served_and_lists_every_route);

async fn the_openapi_document_is_served_and_lists_every_route(app: TestApp) {
    let reply = app
        .send(reqwest::Method::GET, "/api/v4/openapi.json", None)
        .await;
    assert_eq!(reply.status, 200);
    let document = reply.json();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    // Every REST route the routers declare is documented (the GraphQL endpoint has its own
    // schema; the CSV alias without `.csv` is the same operation; the SCIM protocol's routes,
    // in src/api/scim.rs, are described by its own discovery resources — GitLab leaves its
    // SCIM API out of its API documentation too).
    for source in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api"))
        .expect("src/api")
        .filter_map(Result::ok)
        .filter(|source| source.file_name() != "scim.rs")
    {
        let text = std::fs::read_to_string(source.path()).expect("source");
        for route in text
            .split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"'))
            .filter_map(|rest| rest.split('"').next())
        {
            if route == "/api/v4/license/usage_export" || route == "/api/v4/openapi.json" {
                continue;
            }
            assert!(
                paths.contains_key(route),
                "{route} is not in the OpenAPI document"
            );
        }
    }
}

on_both_backends!(null_bytes_are_a_client_error_everywhere);

/// PostgreSQL refuses NUL in any text, so a NUL in a parameter once made a 500 there (found
/// by schemathesis); now every entry point refuses it the same way on both backends.
async fn null_bytes_are_a_client_error_everywhere(app: TestApp) {
    for path in [
        "/api/v4/groups?search=a%00b",
        "/api/v4/users?search=%00",
        "/api/v4/groups/ac%00me",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        assert!(reply.json()["error"].is_string(), "{path}: {}", reply.body);
    }
    let created = app
        .send_with(
            app.client
                .post(app.url("/api/v4/groups"))
                .json(&json!({"name": "a\u{0}b", "path": "ab"})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        (created.status.as_u16(), created.json()),
        (400, json!({"error": "name is invalid"}))
    );
    assert_eq!(
        app.get("/api/v4/groups").await.json(),
        json!([]),
        "nothing written"
    );
    let reply = app
        .graphql(
            Some(ROOT_TOKEN),
            "query($p: ID!) { group(fullPath: $p) { id } }",
            json!({"p": "a\u{0}b"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"errors": [{"message": "Arguments may not contain null bytes"}]})
    );
}
