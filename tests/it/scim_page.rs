//! The SCIM page (`/admin/scim`): the endpoint and the instance SCIM token (shown once, in the
//! answer that made it, and working against GitLab's SCIM API), the SCIM groups and their
//! links to a GitLab Duo purchase — over plain HTTP, then in headless Chromium with nothing
//! scrolling sideways at 1280 px.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::graphql_seats::duo_license;
use crate::on_both_backends;
use crate::support::app::{Reply, TestApp, ROOT_TOKEN};
use crate::support::browser::{chromium, Browser};
use crate::support::csrf_of;
use crate::support::licenses::premium;
use crate::web::{artifacts_dir, escaped, location, WebClient};

on_both_backends!(
    the_token_is_shown_once_and_works,
    only_administrators_see_the_page,
    groups_are_listed_and_linked_from_the_page,
    the_scim_page_works_in_chromium,
);

const PAGE: &str = "/admin/scim";
const SCIM_API: &str = "/api/scim/v2/application";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const HOSTILE_NAME: &str = "<script>alert('x')</script> & \"friends\"";

/// A request to GitLab's SCIM API as an identity provider sends it: the SCIM token as Bearer.
async fn scim(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, app.url(&format!("{SCIM_API}{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/scim+json")
            .body(body.to_string());
    }
    Reply::of(request, None).await
}

async fn scim_users_status(app: &TestApp, token: &str) -> StatusCode {
    scim(app, token, Method::GET, "/Users", None).await.status
}

/// The token a page shows, if it shows one.
fn shown_token(body: &str) -> Option<String> {
    let marker = "<code id=\"scim-token\">";
    let start = body.find(marker)? + marker.len();
    body[start..].split('<').next().map(str::to_string)
}

/// Signed in as root, on the SCIM page; returns the page and its forms' CSRF token.
async fn signed_in<'a>(app: &'a TestApp) -> (WebClient<'a>, Reply, String) {
    let web = WebClient::new(app);
    assert_eq!(web.sign_in(ROOT_TOKEN).await.status, StatusCode::SEE_OTHER);
    let page = web.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = csrf_of(&page.body);
    (web, page, csrf)
}

async fn token_rows(app: &TestApp) -> Vec<String> {
    app.query_texts("SELECT token_digest FROM scim_tokens")
        .await
}

async fn the_token_is_shown_once_and_works(app: TestApp) {
    let (web, page, csrf) = signed_in(&app).await;
    // The endpoint is the one the API reports; no token yet, so only "Generate".
    let status = app.get("/api/v4/-/scim/token").await.json();
    let endpoint = status["scim_api_url"].as_str().expect("scim_api_url");
    assert!(endpoint.ends_with(SCIM_API), "{endpoint}");
    assert!(
        page.body.contains(&format!(
            "<code id=\"scim-endpoint\">{}</code>",
            escaped(endpoint)
        )),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("<a href=\"/admin/scim\" aria-current=\"page\">SCIM</a>"));
    assert!(page.body.contains("None yet"));
    assert!(page.body.contains("form class=\"generate-token\""));
    assert!(page.body.contains("Generate a SCIM token"));
    assert!(!page.body.contains("form class=\"reset-token\""));
    assert!(page.body.contains("Tenant URL") && page.body.contains("Secret Token"));
    assert!(!page.body.contains("glsoat-"));

    // Without the session's CSRF token nothing is made (Rails' 422).
    let forged = web.post("/admin/scim/token", &[]).await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(forged.body.contains("Invalid authenticity token"));
    let wrong = web
        .post("/admin/scim/token", &[("authenticity_token", "wrong")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(token_rows(&app).await.is_empty());

    // Generated: shown once, in this answer only — no redirect, no cookie carries it.
    let made = web
        .post("/admin/scim/token", &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let token = shown_token(&made.body).expect("the new token on the page");
    assert!(token.starts_with("glsoat-") && token.len() > 20, "{token}");
    assert_eq!(made.body.matches(&token).count(), 1, "{}", made.body);
    assert!(made.body.contains("it will not be shown again"));
    assert!(made.body.contains("The SCIM token was generated."));
    assert_eq!(made.header("location"), None);
    assert!(made
        .headers
        .get_all("set-cookie")
        .iter()
        .all(|cookie| !cookie.to_str().unwrap_or_default().contains(&token)));
    assert_eq!(made.header("cache-control"), Some("no-store"));
    // Now only "Reset" is offered.
    assert!(!made.body.contains("form class=\"generate-token\""));
    assert!(made.body.contains("form class=\"reset-token\""));

    // Reloading shows when it was made, never the token.
    let reloaded = web.get(PAGE).await;
    assert_eq!(reloaded.status, StatusCode::OK);
    assert!(!reloaded.body.contains(&token));
    assert!(!reloaded.body.contains("glsoat-"));
    assert_eq!(shown_token(&reloaded.body), None);
    assert!(
        reloaded.body.contains(
            "Created <time datetime=\"2026-06-15T10:30:00.000Z\">2026-06-15 10:30 UTC</time>"
        ),
        "{}",
        reloaded.body
    );
    assert!(reloaded.body.contains("form class=\"reset-token\""));
    // Generating again is refused: a token exists, reset it instead.
    let again = web
        .post("/admin/scim/token", &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again
        .body
        .contains("The SCIM token exists already: reset it to get a new one."));
    assert_eq!(shown_token(&again.body), None);

    // The token is the identity provider's: GitLab's plain 404 until a Premium license,
    // then the SCIM API answers.
    assert_eq!(scim_users_status(&app, &token).await, StatusCode::NOT_FOUND);
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    assert_eq!(scim_users_status(&app, &token).await, StatusCode::OK);

    // A reset without the CSRF token changes nothing.
    let forged = web.post("/admin/scim/token/reset", &[]).await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(scim_users_status(&app, &token).await, StatusCode::OK);

    // Reset: a new token, shown once; the old one stops working at once.
    let reset = web
        .post("/admin/scim/token/reset", &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let new_token = shown_token(&reset.body).expect("the new token on the page");
    assert!(new_token.starts_with("glsoat-"), "{new_token}");
    assert_ne!(new_token, token);
    assert!(!reset.body.contains(&token));
    assert!(reset.body.contains("it will not be shown again"));
    assert!(reset
        .body
        .contains("The SCIM token was reset: the old one no longer works."));
    assert_eq!(
        scim_users_status(&app, &token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(scim_users_status(&app, &new_token).await, StatusCode::OK);
    assert!(!web.get(PAGE).await.body.contains(&new_token));
    assert_eq!(token_rows(&app).await.len(), 1);
    let audit = app
        .query_texts(
            "SELECT event_name FROM audit_events WHERE event_name LIKE 'scim_token%' ORDER BY id",
        )
        .await;
    assert_eq!(audit, ["scim_token_generated", "scim_token_reset"]);
}

async fn only_administrators_see_the_page(app: TestApp) {
    // Anonymous visitors are sent to sign in, and nothing is made.
    let anonymous = WebClient::new(&app);
    for reply in [
        anonymous.get(PAGE).await,
        anonymous.post("/admin/scim/token", &[]).await,
        anonymous.post("/admin/scim/token/reset", &[]).await,
    ] {
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&reply), "/admin/sign_in");
    }
    // A non-administrator cannot sign in, so never sees the page.
    let plain = app
        .add_user(gitlab_license_server::store::NewUser::human("plain", false))
        .await;
    let (plain_token, _) = app.token_for(&plain, &["api"], None).await;
    let developer = WebClient::new(&app);
    let refused = developer.sign_in(&plain_token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let page = developer.get(PAGE).await;
    assert_eq!(
        (page.status, location(&page)),
        (StatusCode::SEE_OTHER, "/admin/sign_in")
    );
    assert!(token_rows(&app).await.is_empty());

    // A read-only administrator may look, not generate.
    let root = app
        .state
        .store
        .find_user_by_username("root")
        .await
        .expect("store")
        .expect("root");
    let (read_only, _) = app.token_for(&root, &["read_api"], None).await;
    let reader = WebClient::new(&app);
    assert_eq!(
        reader.sign_in(&read_only).await.status,
        StatusCode::SEE_OTHER
    );
    let page = reader.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("read-only access"));
    assert!(!page.body.contains("form class=\"generate-token\""));
    let refused = reader
        .post(
            "/admin/scim/token",
            &[("authenticity_token", &csrf_of(&page.body))],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(shown_token(&refused.body), None);
    assert!(token_rows(&app).await.is_empty());
}

async fn seat_holders(app: &TestApp) -> Vec<String> {
    app.query_texts(
        "SELECT u.username FROM user_add_on_assignments a JOIN users u ON u.id = a.user_id ORDER BY u.username",
    )
    .await
}

/// Users gina, hank and ivan provisioned through SCIM, and the group "Duo Users" of them
/// (and of someone nobody provisioned); returns the group's SCIM id.
async fn duo_users_group(app: &TestApp, token: &str) -> String {
    for name in ["gina", "hank", "ivan"] {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "externalId": format!("{name}-uid"), "userName": name, "active": true,
            "name": {"formatted": format!("{name} Example"), "givenName": name, "familyName": "Example"},
            "emails": [{"primary": true, "type": "work", "value": format!("{name}@example.com")}],
        });
        let made = scim(app, token, Method::POST, "/Users", Some(body)).await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }
    let group = json!({"schemas": [GROUP_SCHEMA], "displayName": "Duo Users",
        "members": [{"value": "gina-uid"}, {"value": "hank-uid"}, {"value": "ivan-uid"}, {"value": "unknown"}]});
    let created = scim(app, token, Method::POST, "/Groups", Some(group)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.json()["id"].as_str().expect("id").to_string()
}

/// The `<tr>` of a group on the page.
fn group_row<'a>(body: &'a str, scim_id: &str) -> &'a str {
    let start = body
        .find(&format!("<tr data-group=\"{scim_id}\">"))
        .unwrap_or_else(|| panic!("no row for {scim_id}: {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</tr>").unwrap_or(rest.len())]
}

async fn groups_are_listed_and_linked_from_the_page(app: TestApp) {
    assert_eq!(
        app.upload(&duo_license(2)).await.status,
        StatusCode::CREATED
    );
    app.run_jobs().await;
    let (web, page, csrf) = signed_in(&app).await;
    assert!(page.body.contains("No SCIM groups yet"));
    let made = web
        .post("/admin/scim/token", &[("authenticity_token", &csrf)])
        .await;
    let token = shown_token(&made.body).expect("a token");
    let group_id = duo_users_group(&app, &token).await;
    let hostile = scim(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP_SCHEMA], "displayName": HOSTILE_NAME})),
    )
    .await;
    assert_eq!(hostile.status, StatusCode::CREATED, "{}", hostile.body);
    let hostile_id = hostile.json()["id"].as_str().expect("id").to_string();
    let purchase: i64 = app
        .query_texts("SELECT CAST(id AS TEXT) FROM add_on_purchases ORDER BY id")
        .await[0]
        .parse()
        .expect("a purchase id");

    // Both groups listed, not linked; the name escaped like every value.
    let page = web.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK);
    let row = group_row(&page.body, &group_id);
    assert!(row.contains(">Duo Users</td>"), "{row}");
    assert!(row.contains("<td class=\"number members\">3</td>"), "{row}");
    assert!(row.contains("not linked"), "{row}");
    assert!(
        row.contains(&format!(
            "<option value=\"{purchase}\">GitLab Duo Pro (instance, 0 of 2 seats used)</option>"
        )),
        "{row}"
    );
    assert!(!row.contains("Unlink"), "{row}");
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(page.body.contains(&escaped(HOSTILE_NAME)), "{}", page.body);
    assert!(group_row(&page.body, &hostile_id).contains("<td class=\"number members\">0</td>"));
    assert!(seat_holders(&app).await.is_empty());

    // Refusals: no CSRF token, no purchase chosen, a purchase or a group that is not there.
    let link = format!("/admin/scim/groups/{group_id}/link");
    let purchase_text = purchase.to_string();
    let forged = web
        .post(&link, &[("add_on_purchase_id", &purchase_text)])
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (path, chosen, status, message) in [
        (
            link.clone(),
            "",
            StatusCode::BAD_REQUEST,
            "Choose the GitLab Duo purchase to link the group to.",
        ),
        (
            link.clone(),
            "abc",
            StatusCode::BAD_REQUEST,
            "The add-on purchase is not a purchase ID.",
        ),
        (
            link.clone(),
            "999999",
            StatusCode::NOT_FOUND,
            "404 Add-on purchase Not Found",
        ),
        (
            "/admin/scim/groups/00000000-0000-0000-0000-000000000000/link".to_string(),
            purchase_text.as_str(),
            StatusCode::NOT_FOUND,
            "404 SCIM group Not Found",
        ),
    ] {
        let refused = web
            .post(
                &path,
                &[
                    ("authenticity_token", &csrf),
                    ("add_on_purchase_id", chosen),
                ],
            )
            .await;
        assert_eq!(refused.status, status, "{path} {chosen}: {}", refused.body);
        assert!(
            refused.body.contains(&escaped(message)),
            "{message}: {}",
            refused.body
        );
        assert!(refused.body.contains("class=\"flash alert\""));
    }
    assert!(seat_holders(&app).await.is_empty());

    // Linked through the row's form: seats while they last, the member left over named.
    let linked = web
        .post(
            &link,
            &[
                ("authenticity_token", &csrf),
                ("add_on_purchase_id", &purchase_text),
            ],
        )
        .await;
    assert_eq!(linked.status, StatusCode::SEE_OTHER, "{}", linked.body);
    assert_eq!(
        location(&linked),
        "/admin/scim?notice=group_linked&without_seat=1#groups"
    );
    assert_eq!(seat_holders(&app).await, ["gina", "hank"]);
    let page = web
        .get("/admin/scim?notice=group_linked&without_seat=1")
        .await;
    assert!(page
        .body
        .contains("The group is linked, but the seats ran out: 1 member got none."));
    let row = group_row(&page.body, &group_id);
    assert!(
        row.contains("GitLab Duo Pro (instance, 2 of 2 seats used)</td>"),
        "{row}"
    );
    assert!(
        row.contains("<strong class=\"without-seat-count\">1</strong>: <span class=\"without-seat-usernames\">@ivan</span>"),
        "{row}"
    );
    assert!(
        row.contains(&format!("<option value=\"{purchase}\" selected>")),
        "{row}"
    );
    assert!(row.contains("Unlink"), "{row}");
    let audits = app
        .query_texts(
            "SELECT event_name FROM audit_events WHERE event_name = 'scim_group_seat_link_changed'",
        )
        .await;
    assert_eq!(audits.len(), 1);

    // Unlinked: the seats it gave are free again.
    let unlinked = web
        .post(
            &format!("/admin/scim/groups/{group_id}/unlink"),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(unlinked.status, StatusCode::SEE_OTHER, "{}", unlinked.body);
    assert_eq!(
        location(&unlinked),
        "/admin/scim?notice=group_unlinked#groups"
    );
    assert!(seat_holders(&app).await.is_empty());
    let page = web.get("/admin/scim?notice=group_unlinked").await;
    assert!(page
        .body
        .contains("The group is unlinked: the seats it gave are free again."));
    assert!(group_row(&page.body, &group_id).contains("not linked"));
}

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

async fn text_of(browser: &Browser, selector: &str) -> Value {
    browser
        .script(
            "return document.querySelector(arguments[0])?.textContent.trim() ?? null",
            json!([selector]),
        )
        .await
}

/// Fails when the page scrolls sideways at the window's width, naming what is too wide.
async fn assert_no_sideways_scrolling(browser: &Browser, width: u32) {
    let overflow = browser
        .script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            json!([]),
        )
        .await;
    if overflow != json!(0) {
        let wide = browser
            .script(
                "return [...document.querySelectorAll('body *')]\
                   .filter(e => !e.closest('.table-scroll') && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)\
                   .slice(0, 8).map(e => e.tagName + '.' + e.getAttribute('class') + ' ' + Math.round(e.getBoundingClientRect().right));",
                json!([]),
            )
            .await;
        panic!("sideways scrolling at {width} px ({overflow} px), too wide: {wide}");
    }
    // Inside the table too: long cells wrap instead of widening it past its card.
    let table_overflow = browser
        .script(
            "const s = document.querySelector('.table-scroll'); return s ? s.scrollWidth - s.clientWidth : 0",
            json!([]),
        )
        .await;
    assert_eq!(
        table_overflow,
        json!(0),
        "the groups table scrolls at {width} px"
    );
}

async fn the_scim_page_works_in_chromium(app: TestApp) {
    let Some((browser, driver)) = chromium() else {
        return;
    };
    assert_eq!(
        app.upload(&duo_license(2)).await.status,
        StatusCode::CREATED
    );
    app.run_jobs().await;
    let browser = Browser::start(&browser, &driver, None).await;
    browser.visit(&app.url("/admin/sign_in")).await;
    browser.type_into("#token", ROOT_TOKEN).await;
    browser.click("form[action='/admin/sign_in'] button").await;
    browser
        .wait_for(
            "return location.pathname === '/admin/subscription'",
            json!([]),
            "signed in",
        )
        .await;
    browser.click("nav a[href='/admin/scim']").await;
    wait_for_text(&browser, "h1", "SCIM").await;
    assert_eq!(
        text_of(&browser, "nav a[aria-current='page']").await,
        "SCIM"
    );
    assert_eq!(text_of(&browser, "#scim-token-state").await, "None yet");

    // Generate: the token once, then only a reset.
    browser.click("form.generate-token button").await;
    wait_for_text(&browser, ".new-token", "will not be shown again").await;
    let token = text_of(&browser, "#scim-token").await;
    let token = token.as_str().expect("a token").to_string();
    assert!(token.starts_with("glsoat-"), "{token}");
    assert_eq!(scim_users_status(&app, &token).await, StatusCode::OK);
    browser.visit(&app.url(PAGE)).await;
    wait_for_text(&browser, "#scim-token-state", "Created").await;
    assert_eq!(text_of(&browser, "#scim-token").await, Value::Null);
    assert_eq!(text_of(&browser, "form.generate-token").await, Value::Null);

    // A group with long names and many members short of a seat, linked through its form.
    let group_id = duo_users_group(&app, &token).await;
    let long_name = format!(
        "{} {}",
        "Engineering-Platform-Developer-Experience".repeat(4),
        "team"
    );
    let renamed = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{group_id}"),
        Some(json!({"Operations": [{"op": "replace", "value": {"displayName": long_name}}]})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::NO_CONTENT, "{}", renamed.body);
    browser.visit(&app.url(PAGE)).await;
    let row = format!("tr[data-group='{group_id}']");
    wait_for_text(&browser, &format!("{row} .linked-purchase"), "not linked").await;
    browser
        .click(&format!("{row} form.link-group button"))
        .await;
    wait_for_text(&browser, ".flash.notice", "1 member got none").await;
    wait_for_text(&browser, &format!("{row} .without-seat"), "@ivan").await;
    wait_for_text(
        &browser,
        &format!("{row} .linked-purchase"),
        "2 of 2 seats used",
    )
    .await;
    assert_eq!(seat_holders(&app).await, ["gina", "hank"]);

    // Nothing scrolls sideways at 1280 px, whatever the page's length.
    let height = browser
        .script("return document.documentElement.scrollHeight", json!([]))
        .await
        .as_u64()
        .unwrap_or(900);
    browser
        .resize(1280, u32::try_from(height).unwrap_or(900).clamp(600, 6000))
        .await;
    assert_no_sideways_scrolling(&browser, 1280).await;
    let name = format!("{:?}", app.backend).to_lowercase();
    browser
        .screenshot(&artifacts_dir().join(format!("scim-{name}-1280.png")))
        .await;

    // Reset behind its confirmation: a new token, the old one refused.
    browser.resize(1280, 900).await;
    browser.click("details.confirm summary").await;
    browser.click("form.reset-token button").await;
    wait_for_text(&browser, ".flash.notice", "The SCIM token was reset").await;
    let new_token = text_of(&browser, "#scim-token").await;
    let new_token = new_token.as_str().expect("a new token").to_string();
    assert_ne!(new_token, token);
    assert_eq!(
        scim_users_status(&app, &token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(scim_users_status(&app, &new_token).await, StatusCode::OK);
}
