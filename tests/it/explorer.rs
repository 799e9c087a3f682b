//! The GraphiQL explorer: served from the binary, and working in a real browser (headless
//! Chromium driven over WebDriver) against `/api/graphql` with a pasted token.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{TestApp, ROOT_TOKEN};
use crate::support::process::{free_port, KillOnDrop};

on_both_backends!(
    the_explorer_page_and_its_assets_come_from_the_binary,
    the_explorer_runs_the_documented_operations_in_chromium
);

async fn the_explorer_page_and_its_assets_come_from_the_binary(app: TestApp) {
    let page = app
        .send(reqwest::Method::GET, "/-/graphql-explorer", None)
        .await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|value| value.starts_with("text/html")));
    let policy = page.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let sources: Vec<&str> = page
        .body
        .split(['"', '\''])
        .filter(|part| part.ends_with(".js") || part.ends_with(".css"))
        .collect();
    assert_eq!(sources.len(), 5, "{sources:?}");
    for source in sources {
        assert!(
            source.starts_with("/-/graphql-explorer/assets/"),
            "no CDN: {source}"
        );
        let asset = app.send(reqwest::Method::GET, source, None).await;
        assert_eq!(asset.status, 200, "{source}");
        assert!(asset.body.len() > 100, "{source}");
    }
    let missing = app
        .send(
            reqwest::Method::GET,
            "/-/graphql-explorer/assets/nope.js",
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
}

/// Chromium and its driver, or `None` (with a message) where they are not installed; CI
/// sets `REQUIRE_CHROMIUM=1` so that a missing browser fails instead.
fn chromium() -> Option<(String, String)> {
    let find = |names: &[&str]| {
        names.iter().find_map(|name| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.is_file())
                    .map(|found| found.display().to_string())
            })
        })
    };
    let browser = find(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find(&["chromedriver", "chromium-driver"]);
    match (browser, driver) {
        (Some(browser), Some(driver)) => Some((browser, driver)),
        _ => {
            assert!(
                std::env::var("REQUIRE_CHROMIUM").as_deref() != Ok("1"),
                "REQUIRE_CHROMIUM=1 but chromium/chromedriver are not installed"
            );
            eprintln!("skipped: install chromium and chromium-driver to run the explorer test");
            None
        }
    }
}

/// A minimal W3C WebDriver client (the few commands this test needs).
struct Browser {
    client: reqwest::Client,
    session: String,
    _driver: KillOnDrop,
}

impl Browser {
    async fn start(browser: &str, driver: &str) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("chromedriver-{port}.log"));
        let process = std::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver_process = KillOnDrop(process);
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"]
            }
        }}});
        let reply: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_string();
        Self {
            client,
            session: format!("{base}/session/{session}"),
            _driver: driver_process,
        }
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        let reply: Value = self
            .client
            .post(format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        reply["value"].clone()
    }

    async fn script(&self, source: &str, args: Value) -> Value {
        self.command("/execute/sync", json!({"script": source, "args": args}))
            .await
    }

    /// Polls `source` until it returns something other than null/false.
    async fn wait_for(&self, source: &str, args: Value, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.script(source, args.clone()).await;
            if !value.is_null() && value != json!(false) {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Browser {
    /// Ends the session, which closes the browser, even when the test failed; then the
    /// driver is killed. Plain blocking HTTP: `Drop` cannot await.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        let Some((address, path)) = self
            .session
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request =
                format!("DELETE /{path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
            if stream.write_all(request.as_bytes()).is_ok() {
                // The driver answers once the browser is closed; the status line is enough.
                let _ = stream.read(&mut [0u8; 512]);
            }
        }
    }
}

async fn the_explorer_runs_the_documented_operations_in_chromium(app: TestApp) {
    let Some((browser, driver)) = chromium() else {
        return;
    };
    assert_eq!(
        app.upload(&crate::graphql_seats::duo_license(4))
            .await
            .status,
        201
    );
    let browser = Browser::start(&browser, &driver).await;
    browser
        .command("/url", json!({"url": app.url("/-/graphql-explorer")}))
        .await;
    browser
        .wait_for(
            "return document.querySelector('.graphiql-query-editor .CodeMirror') !== null \
             && document.querySelector('.graphiql-editor-tool .CodeMirror') !== null",
            json!([]),
            "GraphiQL to render",
        )
        .await;
    // Paste the documented self-managed query and a token, as a user would, then run it.
    let query = "query {\n addOnPurchases\n {\n  name\n  purchasedQuantity\n  assignedQuantity\n  id\n }\n}";
    let headers = json!({"Authorization": format!("Bearer {ROOT_TOKEN}")}).to_string();
    browser
        .script(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(arguments[0]);\
             const editors = [...document.querySelectorAll('.graphiql-editor-tool .graphiql-editor')];\
             const visible = editors.find(e => !e.classList.contains('hidden')) || editors[editors.length - 1];\
             visible.querySelector('.CodeMirror').CodeMirror.setValue(arguments[1]);",
            json!([query, headers]),
        )
        .await;
    browser
        .script(
            "document.querySelector('.graphiql-execute-button').click();",
            json!([]),
        )
        .await;
    let result = browser
        .wait_for(
            "const r = document.querySelector('.graphiql-response .CodeMirror');\
             const text = r ? r.CodeMirror.getValue() : '';\
             return text.includes('addOnPurchases') ? text : null;",
            json!([]),
            "the query's result",
        )
        .await;
    let result: Value =
        serde_json::from_str(result.as_str().unwrap_or_default()).expect("JSON result");
    assert_eq!(
        result["data"]["addOnPurchases"][0],
        json!({"name": "CODE_SUGGESTIONS", "purchasedQuantity": 4, "assignedQuantity": 0,
               "id": result["data"]["addOnPurchases"][0]["id"].clone()})
    );
    assert!(result["data"]["addOnPurchases"][0]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("gid://gitlab/GitlabSubscriptions::AddOnPurchase/")));
    // Then the documented mutation, its placeholders filled in.
    let mut ids = Vec::new();
    for name in ["ada", "grace", "linus"] {
        let user = app
            .add_user(gitlab_license_server::store::NewUser::human(name, false))
            .await;
        ids.push(user.id.to_string());
    }
    let purchase = result["data"]["addOnPurchases"][0]["id"]
        .as_str()
        .and_then(|id| id.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let mutation = "mutation {\n  userAddOnAssignmentBulkCreate(input: {\n    addOnPurchaseId: \"gid://gitlab/GitlabSubscriptions::AddOnPurchase/YOUR_ADDON_PURCHASE_ID\",\n    userIds: [\n      \"gid://gitlab/User/USER_ID_1\",\n      \"gid://gitlab/User/USER_ID_2\",\n      \"gid://gitlab/User/USER_ID_3\"\n    ]\n  }) {\n    addOnPurchase {\n      id\n      name\n      assignedQuantity\n      purchasedQuantity\n    }\n    users {\n      nodes {\n        id\n        username\n        }\n      }\n    errors\n  }\n}"
        .replace("YOUR_ADDON_PURCHASE_ID", &purchase)
        .replace("USER_ID_1", &ids[0])
        .replace("USER_ID_2", &ids[1])
        .replace("USER_ID_3", &ids[2]);
    browser
        .script(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(arguments[0]);\
             document.querySelector('.graphiql-execute-button').click();",
            json!([mutation]),
        )
        .await;
    let result = browser
        .wait_for(
            "const r = document.querySelector('.graphiql-response .CodeMirror');\
             const text = r ? r.CodeMirror.getValue() : '';\
             return text.includes('userAddOnAssignmentBulkCreate') ? text : null;",
            json!([]),
            "the mutation's result",
        )
        .await;
    let result: Value =
        serde_json::from_str(result.as_str().unwrap_or_default()).expect("JSON result");
    let payload = &result["data"]["userAddOnAssignmentBulkCreate"];
    assert_eq!(payload["errors"], json!([]), "{result}");
    assert_eq!(payload["addOnPurchase"]["assignedQuantity"], 3);
    assert_eq!(
        payload["users"]["nodes"].as_array().map(|nodes| nodes
            .iter()
            .map(|node| node["username"].clone())
            .collect::<Vec<_>>()),
        Some(vec![json!("ada"), json!("grace"), json!("linus")])
    );

    // No request left the server: every resource the page loaded came from it.
    let foreign = browser
        .script(
            "return performance.getEntriesByType('resource').map(e => e.name)\
               .filter(n => !n.startsWith(location.origin));",
            json!([]),
        )
        .await;
    assert_eq!(foreign, json!([]));
}
