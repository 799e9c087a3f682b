//! The GraphiQL explorer: served from the binary, and working in a real browser (headless
//! Chromium driven over WebDriver) against `/api/graphql` with a pasted token.

use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{TestApp, ROOT_TOKEN};
use crate::support::browser::{chromium, Browser};

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
    let browser = Browser::start(&browser, &driver, None).await;
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
        Some(vec![json!("linus"), json!("grace"), json!("ada")])
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
