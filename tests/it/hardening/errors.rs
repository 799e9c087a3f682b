//! Refusals made below the handlers — URI and header limits, paths that do not decode to
//! UTF-8 — come out in GitLab's JSON shape like every other error.

use reqwest::Method;
use serde_json::json;

use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, ROOT_TOKEN};
use crate::support::server::ServerProcess;

async fn low_level_refusals_are_gitlab_shaped(backend: Backend) {
    let mut server = ServerProcess::start(backend, &[]).await;
    // A URI over the 32 KiB limit.
    let long = format!("/api/v4/users?search={}", "a".repeat(40_000));
    let reply = server.send(Method::GET, &long, Some(ROOT_TOKEN)).await;
    assert_eq!(reply.status, 414);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({"message": "414 URI Too Long"}));
    // Headers over the 64 KiB limit.
    let mut request = server.client.get(server.url("/api/v4/version"));
    for n in 0..40 {
        request = request.header(format!("x-filler-{n}"), "b".repeat(2_000));
    }
    let reply = server.send_with(request, Some(ROOT_TOKEN)).await;
    assert_eq!(reply.status, 431);
    assert_eq!(
        reply.json(),
        json!({"message": "431 Request Header Fields Too Large"})
    );
    // A path that is not UTF-8 once decoded.
    for path in [
        "/api/v4/users/%FF",
        "/api/v4/groups/%C3%28",
        "/api/v4/hooks/%FF/deliveries",
        "/api/v4/namespaces/%FF/subscription_add_on_purchase/x",
    ] {
        let reply = server.send(Method::GET, path, Some(ROOT_TOKEN)).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(
            reply.json(),
            json!({"error": "400 Bad request - the path is not valid UTF-8"}),
            "{path}"
        );
    }
    server.assert_alive().await;
}

on_both_backends_as_processes!(low_level_refusals_are_gitlab_shaped);
