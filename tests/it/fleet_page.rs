//! The Fleet page (`/admin/fleet`): the summary, the instances and the people outside the
//! largest instance, and its forms — in headless Chromium against two upstream "GitLab"
//! instances (instances of this server, as in `fleet.rs`), and the forms' refusals over plain
//! HTTP. A token given to the page is never written back into it.

use reqwest::StatusCode;
use serde_json::json;

use crate::fleet::{add_instance, sync, upstream, Person};
use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, TestApp, ROOT_TOKEN};
use crate::support::browser::{chromium, Browser};
use crate::support::csrf_of;
use crate::web::{escaped, location, WebClient};

on_both_backends_as_processes!(
    the_fleet_page_works_in_chromium,
    the_fleet_forms_refuse_what_the_api_refuses,
);

/// A token the page must never show, whatever happens to the instance it was given for.
const UNSHOWN_TOKEN: &str = "glpat-page-must-never-show-this-1";
/// Nothing listens there: a sync fails at once.
const UNREACHABLE: &str = "http://127.0.0.1:9";

/// Waits until `selector`'s text contains `text`.
async fn wait_for_text(browser: &Browser, selector: &str, text: &str) {
    browser
        .wait_for(
            "return (document.querySelector(arguments[0])?.textContent || '').includes(arguments[1])",
            json!([selector, text]),
            &format!("{selector} to say {text}"),
        )
        .await;
}

/// The text of the first element matching `selector` (trimmed), or null.
async fn text_of(browser: &Browser, selector: &str) -> serde_json::Value {
    browser
        .script(
            "return document.querySelector(arguments[0])?.textContent.trim() ?? null",
            json!([selector]),
        )
        .await
}

/// Fills the "Add an instance" form and sends it.
async fn add_through_the_form(browser: &Browser, name: &str, url: &str, token: &str) {
    browser
        .script(
            "document.querySelector('#instance-name').value = ''; document.querySelector('#instance-url').value = ''",
            json!([]),
        )
        .await;
    browser.type_into("#instance-name", name).await;
    browser.type_into("#instance-url", url).await;
    browser.type_into("#instance-token", token).await;
    browser.click("form.add-instance button").await;
}

async fn page_source(browser: &Browser) -> String {
    browser
        .get("/source")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn the_fleet_page_works_in_chromium(backend: Backend) {
    let Some((browser, driver)) = chromium() else {
        return;
    };
    let fleet = TestApp::start(backend, &[]).await;
    // prod: root, ada, bob, cy (4 billable); staging: root, ada, eve (3): eve is billable
    // only outside the largest instance.
    let prod = upstream(&[
        Person("ada", "ada@example.org", None, "human"),
        Person("bob", "bob@example.org", None, "human"),
        Person("cy", "cy@example.org", None, "human"),
    ])
    .await;
    let staging = upstream(&[
        Person("ada", "ada@example.org", None, "human"),
        Person("eve", "eve@example.org", None, "human"),
    ])
    .await;

    let browser = Browser::start(&browser, &driver, None).await;
    browser.visit(&fleet.url("/admin/sign_in")).await;
    browser.type_into("#token", ROOT_TOKEN).await;
    browser.click("form[action='/admin/sign_in'] button").await;
    browser
        .wait_for(
            "return location.pathname === '/admin/subscription'",
            json!([]),
            "signed in",
        )
        .await;
    browser.click("nav a[href='/admin/fleet']").await;
    wait_for_text(&browser, "h1", "Fleet").await;
    assert_eq!(
        text_of(&browser, "nav a[aria-current='page']").await,
        "Fleet"
    );
    wait_for_text(&browser, "#subset-verdict", "No instance has been synced").await;

    // prod through the form, synced with its "Sync now" button (the worker does not run in
    // tests: the job is run by hand).
    add_through_the_form(&browser, "prod", &prod.base, ROOT_TOKEN).await;
    wait_for_text(&browser, ".flash.notice", "The instance was added.").await;
    wait_for_text(&browser, "tr[data-instance='prod']", "never").await;
    browser
        .click("tr[data-instance='prod'] form.sync button")
        .await;
    wait_for_text(&browser, ".flash.notice", "The sync is queued").await;
    wait_for_text(&browser, "tr[data-instance='prod'] .last-sync", "queued").await;
    fleet.run_jobs().await;
    // staging through the API (the same service).
    add_instance(&fleet, "staging", &staging.base).await;
    assert_eq!(
        sync(&fleet, "staging").await["last_sync"]["status"],
        "success"
    );
    browser.visit(&fleet.url("/admin/fleet")).await;
    assert_eq!(text_of(&browser, "#unique-billable").await, "5");
    assert_eq!(text_of(&browser, "#largest-instance").await, "prod");
    assert_eq!(
        text_of(&browser, "#subset-verdict").await,
        "1 billable person is not billable on the largest instance (prod) — GitLab bills from the largest instance assuming the others are subsets."
    );
    let rows = browser
        .script(
            "return [...document.querySelectorAll('table.instances tbody tr')].map(r => [r.dataset.instance, r.dataset.status, r.querySelector('.billable').textContent.trim()])",
            json!([]),
        )
        .await;
    assert_eq!(
        rows,
        json!([["prod", "success", "4"], ["staging", "success", "3"]])
    );
    let prod_row = text_of(&browser, "tr[data-instance='prod']").await;
    let prod_row = prod_row.as_str().unwrap_or_default();
    for shown in [
        prod.base.as_str(),
        "18.6.0-ee",
        "premium",
        "100",
        "instance",
    ] {
        assert!(prod_row.contains(shown), "{shown} in {prod_row}");
    }
    assert_eq!(
        text_of(&browser, "tr[data-pair='prod+staging'] td.number").await,
        "2"
    );
    let outside = browser
        .script(
            "return [...document.querySelectorAll('table.outside-people tbody tr')].map(r => [r.dataset.person, r.querySelector('.billable-on').textContent])",
            json!([]),
        )
        .await;
    assert_eq!(outside, json!([["eve@example.org", "staging"]]));
    let csv_link = browser
        .script(
            "return document.querySelector('a.outside-csv').getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(
        csv_link,
        json!("/admin/fleet/people.csv?outside_largest=true")
    );

    // An offline instance imported through the form: zed is billable only there.
    browser.type_into("#import-name", "airgap").await;
    browser
        .type_into(
            "#import-data",
            r#"[{"id": 1, "username": "zed", "email": "zed@airgap.example", "state": "active", "using_license_seat": true}]"#,
        )
        .await;
    browser.click("form.import button").await;
    wait_for_text(
        &browser,
        ".flash.notice",
        "The offline instance was imported: 1 user read.",
    )
    .await;
    assert_eq!(text_of(&browser, "#unique-billable").await, "6");
    wait_for_text(&browser, "tr[data-instance='airgap']", "offline").await;
    let sync_buttons = browser
        .script(
            "return [...document.querySelectorAll('tr[data-instance] form.sync')].map(f => f.closest('tr').dataset.instance)",
            json!([]),
        )
        .await;
    assert_eq!(sync_buttons, json!(["prod", "staging"]));
    wait_for_text(&browser, "#subset-verdict", "2 billable people are not").await;
    wait_for_text(
        &browser,
        "tr[data-person='zed@airgap.example'] .billable-on",
        "airgap",
    )
    .await;

    // A token typed into the page is never written back into it: not after the instance is
    // added, nor when the same name is refused.
    add_through_the_form(&browser, "broken", UNREACHABLE, UNSHOWN_TOKEN).await;
    wait_for_text(&browser, ".flash.notice", "The instance was added.").await;
    wait_for_text(&browser, "tr[data-instance='broken']", UNREACHABLE).await;
    let source = page_source(&browser).await;
    assert!(source.contains("data-instance=\"broken\""), "{source}");
    assert!(!source.contains(UNSHOWN_TOKEN));
    add_through_the_form(&browser, "broken", UNREACHABLE, UNSHOWN_TOKEN).await;
    wait_for_text(
        &browser,
        ".flash.alert",
        "An instance with this name already exists.",
    )
    .await;
    let refused = page_source(&browser).await;
    assert!(!refused.contains(UNSHOWN_TOKEN), "{refused}");
    let kept = browser
        .script(
            "return [document.querySelector('#instance-name').value, document.querySelector('#instance-token').value]",
            json!([]),
        )
        .await;
    assert_eq!(kept, json!(["broken", ""]));
    let stored = fleet
        .query_texts("SELECT token_ciphertext FROM fleet_instances WHERE name = 'broken'")
        .await;
    assert!(!stored[0].contains(UNSHOWN_TOKEN));

    let name = format!("{backend:?}").to_lowercase();
    let artifacts = crate::web::artifacts_dir();
    std::fs::create_dir_all(&artifacts).expect("artifacts");
    // The whole page in one picture.
    browser.resize(1280, 2600).await;
    browser
        .screenshot(&artifacts.join(format!("fleet-{name}.png")))
        .await;
    browser.resize(1280, 900).await;

    // Removed with its confirmation.
    browser
        .click("tr[data-instance='broken'] details.confirm summary")
        .await;
    browser
        .click("tr[data-instance='broken'] form.remove button")
        .await;
    wait_for_text(&browser, ".flash.notice", "The instance was removed").await;
    assert_eq!(
        browser
            .script(
                "return document.querySelector(\"tr[data-instance='broken']\") === null",
                json!([]),
            )
            .await,
        json!(true)
    );
    assert!(!page_source(&browser).await.contains(UNSHOWN_TOKEN));
}

/// A multipart import as the form sends it.
async fn import(
    web: &WebClient<'_>,
    csrf: &str,
    name: &str,
    data: &str,
) -> crate::support::app::Reply {
    web.post_multipart(
        "/admin/fleet/imports",
        &[("authenticity_token", csrf), ("name", name), ("data", data)],
        None,
    )
    .await
}

async fn the_fleet_forms_refuse_what_the_api_refuses(backend: Backend) {
    // One attempt per request: a sync of an unreachable instance fails at once.
    let fleet = TestApp::start(backend, &[("OUTBOUND_MAX_ATTEMPTS", "1")]).await;
    let prod = upstream(&[Person("ada", "ada@example.org", None, "human")]).await;
    let web = WebClient::new(&fleet);
    assert_eq!(web.sign_in(ROOT_TOKEN).await.status, StatusCode::SEE_OTHER);
    let page = web.get("/admin/fleet").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = csrf_of(&page.body);
    let add = |name: &'static str, url: String, token: &'static str| {
        let csrf = csrf.clone();
        let web = &web;
        async move {
            web.post(
                "/admin/fleet/instances",
                &[
                    ("authenticity_token", csrf.as_str()),
                    ("name", name),
                    ("url", url.as_str()),
                    ("token", token),
                ],
            )
            .await
        }
    };

    // Refusals: the page again, with the API's status and message, the name and URL kept
    // and the token nowhere.
    for (name, url, token, status, message) in [
        (
            "a",
            "ftp://gitlab.example.com".to_string(),
            UNSHOWN_TOKEN,
            StatusCode::BAD_REQUEST,
            "The URL must be an http or https URL.",
        ),
        (
            "a",
            "not a url".to_string(),
            UNSHOWN_TOKEN,
            StatusCode::BAD_REQUEST,
            "The URL is not a URL.",
        ),
        (
            "a b",
            prod.base.clone(),
            UNSHOWN_TOKEN,
            StatusCode::BAD_REQUEST,
            "The name must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        ),
        (
            "a",
            prod.base.clone(),
            "",
            StatusCode::BAD_REQUEST,
            "The token must be a personal access token (read_api is enough).",
        ),
    ] {
        let refused = add(name, url.clone(), token).await;
        assert_eq!(refused.status, status, "{name} {url}: {}", refused.body);
        assert!(
            refused.body.contains(&escaped(message)),
            "{message}: {}",
            refused.body
        );
        assert!(refused.body.contains("class=\"flash alert\""));
        assert!(refused.body.contains(&format!("value=\"{}\"", escaped(&url))));
        assert!(!refused.body.contains(UNSHOWN_TOKEN));
    }
    add_instance(&fleet, "prod", &prod.base).await;
    let duplicate = add("PROD", prod.base.clone(), UNSHOWN_TOKEN).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.body);
    assert!(duplicate
        .body
        .contains("An instance with this name already exists."));
    assert!(!duplicate.body.contains(UNSHOWN_TOKEN));

    // Without the session's CSRF token nothing changes (Rails' 422).
    let instances = || async {
        fleet
            .query_texts("SELECT name FROM fleet_instances ORDER BY id")
            .await
    };
    let forged = web
        .post(
            "/admin/fleet/instances",
            &[
                ("name", "forged"),
                ("url", &prod.base),
                ("token", UNSHOWN_TOKEN),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(forged.body.contains("Invalid authenticity token"));
    let prod_id = fleet
        .query_texts("SELECT CAST(id AS TEXT) FROM fleet_instances")
        .await[0]
        .clone();
    for path in [
        format!("/admin/fleet/instances/{prod_id}/sync"),
        format!("/admin/fleet/instances/{prod_id}/remove"),
    ] {
        let forged = web.post(&path, &[("authenticity_token", "wrong")]).await;
        assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    }
    let forged = web
        .post_multipart(
            "/admin/fleet/imports",
            &[
                ("name", "forged"),
                ("data", "[{\"id\": 1, \"username\": \"x\"}]"),
            ],
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(instances().await, ["prod"]);
    assert_eq!(
        fleet
            .query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM jobs WHERE kind = 'fleet_sync'")
            .await,
        ["0"]
    );

    // Unknown instances are 404s; imports are checked as through the API.
    let unknown = web
        .post(
            "/admin/fleet/instances/999999/sync",
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("404 Fleet instance Not Found"));
    let empty = import(&web, &csrf, "airgap", "  ").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty
        .body
        .contains("Paste the exported JSON or choose a file."));
    let bad = import(&web, &csrf, "airgap", "{not json").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(
        bad.body.contains("The file document 1 is not"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"airgap\""));
    let online = import(&web, &csrf, "prod", "[{\"id\": 1, \"username\": \"x\"}]").await;
    assert_eq!(online.status, StatusCode::CONFLICT, "{}", online.body);
    assert!(online
        .body
        .contains("prod is synced through its API; imports are for offline instances."));
    let imported = import(
        &web,
        &csrf,
        "airgap",
        "[{\"id\": 1, \"username\": \"x\", \"email\": \"x@airgap.example\"}]",
    )
    .await;
    assert_eq!(imported.status, StatusCode::SEE_OTHER, "{}", imported.body);
    assert_eq!(location(&imported), "/admin/fleet?notice=imported&count=1");
    let airgap_id = fleet
        .query_texts("SELECT CAST(id AS TEXT) FROM fleet_instances WHERE name = 'airgap'")
        .await[0]
        .clone();
    let offline = web
        .post(
            &format!("/admin/fleet/instances/{airgap_id}/sync"),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(offline.status, StatusCode::BAD_REQUEST);
    assert!(offline.body.contains("The instance is offline"));

    // An unreachable instance: added, synced, failed with the reason; its token unshown.
    let added = add("down", UNREACHABLE.to_string(), UNSHOWN_TOKEN).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(location(&added), "/admin/fleet?notice=instance_added");
    let down_id = fleet
        .query_texts("SELECT CAST(id AS TEXT) FROM fleet_instances WHERE name = 'down'")
        .await[0]
        .clone();
    let queued = web
        .post(
            &format!("/admin/fleet/instances/{down_id}/sync"),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(queued.status, StatusCode::SEE_OTHER, "{}", queued.body);
    assert_eq!(location(&queued), "/admin/fleet?notice=sync_queued");
    fleet.run_jobs().await;
    assert_eq!(sync(&fleet, "prod").await["last_sync"]["status"], "success");
    let page = web.get("/admin/fleet?notice=sync_queued").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("The sync is queued"));
    assert!(
        page.body
            .contains("data-instance=\"down\" data-status=\"failed\""),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("class=\"sync-error\">GET /api/v4/version"));
    // x, billable on airgap only, is outside prod.
    assert!(
        page.body
            .contains("1 billable person is not billable on the largest instance (prod)"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(UNSHOWN_TOKEN));
    let csv = web
        .get("/admin/fleet/people.csv?outside_largest=true")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv
        .body
        .starts_with("person,username,name,billable,outside_largest"));
    assert!(csv.body.contains("x@airgap.example"), "{}", csv.body);

    // Removed once; the second time it is not found.
    let remove = format!("/admin/fleet/instances/{down_id}/remove");
    let removed = web.post(&remove, &[("authenticity_token", &csrf)]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    assert_eq!(location(&removed), "/admin/fleet?notice=instance_removed");
    let again = web.post(&remove, &[("authenticity_token", &csrf)]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(instances().await, ["prod", "airgap"]);

    // A read-only session may look, not change.
    let root = fleet
        .state
        .store
        .find_user_by_username("root")
        .await
        .expect("store")
        .expect("root");
    let (read_only, _) = fleet.token_for(&root, &["read_api"], None).await;
    let reader = WebClient::new(&fleet);
    assert_eq!(
        reader.sign_in(&read_only).await.status,
        StatusCode::SEE_OTHER
    );
    let page = reader.get("/admin/fleet").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("form class=\"add-instance\""));
    assert!(!page.body.contains("form class=\"sync\""));
    let refused = reader
        .post(
            &format!("/admin/fleet/instances/{prod_id}/remove"),
            &[("authenticity_token", &csrf_of(&page.body))],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(instances().await, ["prod", "airgap"]);

    // 50 people a page, then `after` the last one's key: a larger offline instance leaves
    // prod's two and airgap's 51 outside it.
    let users = |prefix: &str, n: usize| {
        serde_json::Value::Array(
            (0..n)
                .map(|i| json!({"id": i + 1, "username": format!("{prefix}{i:02}"), "email": format!("{prefix}{i:02}@airgap.example")}))
                .collect(),
        )
        .to_string()
    };
    for (name, prefix, n) in [("big", "y", 60), ("airgap", "x", 51)] {
        let imported = import(&web, &csrf, name, &users(prefix, n)).await;
        assert_eq!(imported.status, StatusCode::SEE_OTHER, "{}", imported.body);
    }
    let rows = |body: &str| {
        body.match_indices("<tr data-person=\"")
            .map(|(at, marker)| {
                body[at + marker.len()..]
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    let first = web.get("/admin/fleet").await;
    assert!(
        first
            .body
            .contains("53 billable people are not billable on the largest instance (big)"),
        "{}",
        first.body
    );
    let first_rows = rows(&first.body);
    assert_eq!(first_rows.len(), 50);
    let next = format!("/admin/fleet?after={}", first_rows[49].replace('@', "%40"));
    assert!(
        first
            .body
            .contains(&format!("class=\"people-next\" href=\"{next}#outside\"")),
        "{}",
        first.body
    );
    let second = web.get(&next).await;
    assert_eq!(second.status, StatusCode::OK);
    let second_rows = rows(&second.body);
    assert_eq!(second_rows.len(), 3, "{second_rows:?}");
    assert!(second_rows.iter().all(|key| !first_rows.contains(key)));
    assert!(!second.body.contains("class=\"people-next\""));
    assert!(second.body.contains("class=\"people-first\""));
}
