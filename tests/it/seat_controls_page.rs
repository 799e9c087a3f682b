//! The Seat controls page (`/admin/seat_controls`): GitLab's admin form for the seat controls
//! (off, a user cap, block seat overages; approving those waiting when the cap is raised), the
//! users pending approval, and the dormant-user preview and exclusions — each checked against
//! the REST extension that shares its services, over plain HTTP and in Chromium at 1280 and
//! 375 px.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use gitlab_license_server::domain::users::UserState;
use gitlab_license_server::store::NewUser;

use crate::on_both_backends;
use crate::support::app::{Reply, TestApp, ROOT_TOKEN};
use crate::support::browser::{chromium, Browser};
use crate::support::csrf_of;
use crate::support::licenses::{license, premium};
use crate::web::{artifacts_dir, escaped, location, WebClient};

on_both_backends!(
    the_form_sets_each_mode_and_the_cap,
    a_bad_value_shows_gitlabs_message_and_changes_nothing,
    a_form_without_the_csrf_token_is_refused,
    only_administrators_reach_the_page,
    the_dormant_preview_is_the_apis,
    an_unlicensed_instance_says_why,
    the_seat_controls_page_works_in_chromium,
);

const PAGE: &str = "/admin/seat_controls";
const FORM: &str = "/admin/seat_controls/seat_control";
const EXCLUSIONS: &str = "/admin/seat_controls/dormant_exclusions";

/// Signed in as root, on the page; returns the client, the page and its forms' CSRF token.
async fn signed_in<'a>(app: &'a TestApp) -> (WebClient<'a>, Reply, String) {
    let web = WebClient::new(app);
    assert_eq!(web.sign_in(ROOT_TOKEN).await.status, StatusCode::SEE_OTHER);
    let page = web.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = csrf_of(&page.body);
    (web, page, csrf)
}

async fn seat_control(app: &TestApp) -> Value {
    let reply = app.get("/api/v4/-/seat_control").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()
}

async fn put_json(app: &TestApp, path: &str, body: Value) -> Reply {
    app.send_with(app.client.put(app.url(path)).json(&body), Some(ROOT_TOKEN))
        .await
}

/// The text of the element whose `id` is given (its tags dropped, spaces collapsed).
fn text_of(body: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker} in {body}"));
    let rest = &body[start..];
    let open = rest.find('>').expect("tag") + 1;
    let end = ["</dd>", "</p>", "</td>"]
        .iter()
        .filter_map(|close| rest[open..].find(close))
        .min()
        .expect("end")
        + open;
    let mut text = String::new();
    let mut in_tag = false;
    for ch in rest[open..end].chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(ch),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the radio button for `value` is checked on the page.
fn checked(body: &str, value: &str) -> bool {
    let marker = format!("name=\"seat_control\" type=\"radio\" value=\"{value}\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker} in {body}"));
    let tag = &body[start..start + body[start..].find('>').expect("tag end")];
    tag.contains(" checked")
}

fn disabled(body: &str, value: &str) -> bool {
    let marker = format!("name=\"seat_control\" type=\"radio\" value=\"{value}\"");
    let start = body.find(&marker).expect("radio");
    let tag = &body[start..start + body[start..].find('>').expect("tag end")];
    tag.contains(" disabled")
}

async fn state_of(app: &TestApp, id: i64) -> String {
    app.get(&format!("/api/v4/users/{id}")).await.json()["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn the_form_sets_each_mode_and_the_cap(app: TestApp) {
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    app.add_user(NewUser::human("ada", false)).await;
    let (web, page, csrf) = signed_in(&app).await;
    // In the top bar, as the other pages; GitLab's three choices, "Off" chosen.
    assert!(page
        .body
        .contains("<a href=\"/admin/seat_controls\" aria-current=\"page\">Seat controls</a>"));
    assert!(page.body.contains("Open access"));
    assert!(page.body.contains("Controlled access (user cap)"));
    assert!(page
        .body
        .contains("Restricted access (block seat overages)"));
    assert!(checked(&page.body, "off"));
    assert!(!checked(&page.body, "user_cap"));
    assert_eq!(text_of(&page.body, "seat-control-now"), "Off (open access)");
    assert_eq!(
        text_of(&page.body, "billable-users"),
        "2 of 10 seats in the license"
    );
    assert_eq!(text_of(&page.body, "pending-approval-count"), "0");
    assert!(!page.body.contains("id=\"seat-controls-unlicensed\""));
    // Every other page links to it.
    let (subscription, _) = web.page().await;
    assert!(subscription
        .body
        .contains("<a href=\"/admin/seat_controls\">Seat controls</a>"));

    // A user cap of 2: saved, then a redirect with a fixed notice.
    let saved = web
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", "2"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        location(&saved),
        "/admin/seat_controls?notice=seat_control_saved#seat-control"
    );
    assert_eq!(
        seat_control(&app).await,
        json!({"seat_control": "user_cap", "seat_control_value": 1, "new_user_signups_cap": 2, "licensed": true})
    );
    let page = web.get(location(&saved)).await;
    assert!(page.body.contains("The seat controls were saved."));
    assert!(checked(&page.body, "user_cap"));
    assert!(page.body.contains("value=\"2\""));
    assert_eq!(text_of(&page.body, "user-cap-now"), "2");

    // At the cap (root and ada), a new human waits for approval; the page names them.
    let created = app
        .send_with(
            app.client.post(app.url("/api/v4/users")).json(&json!({
                "username": "cyd", "name": "Cyd", "email": "cyd@example.com",
            })),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.json()["state"], "blocked_pending_approval");
    let cyd = created.json()["id"].as_i64().expect("id");
    let page = web.get(PAGE).await;
    assert_eq!(text_of(&page.body, "pending-approval-count"), "1");
    assert!(page
        .body
        .contains("<span class=\"pending-usernames\">@cyd</span>"));
    assert!(
        page.body.contains("(1)"),
        "the count beside the approval box"
    );

    // Raising the cap without the approval box approves nobody; with it, those waiting are
    // approved (GitLab's auto_approve_pending_users).
    let raised = web
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", "5"),
            ],
        )
        .await;
    assert_eq!(raised.status, StatusCode::SEE_OTHER, "{}", raised.body);
    assert_eq!(seat_control(&app).await["new_user_signups_cap"], 5);
    assert_eq!(state_of(&app, cyd).await, "blocked_pending_approval");
    let approved = web
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", "6"),
                ("auto_approve_pending_users", "true"),
            ],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    assert_eq!(seat_control(&app).await["new_user_signups_cap"], 6);
    assert_eq!(state_of(&app, cyd).await, "active");
    let page = web.get(PAGE).await;
    assert_eq!(text_of(&page.body, "pending-approval-count"), "0");
    assert!(page.body.contains("Nobody is waiting for approval."));

    // Block seat overages: the cap field, still filled in, is cleared (as GitLab's form sends
    // the cap with Controlled access only).
    let blocked = web
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "block_overages"),
                ("new_user_signups_cap", "6"),
            ],
        )
        .await;
    assert_eq!(blocked.status, StatusCode::SEE_OTHER, "{}", blocked.body);
    assert_eq!(
        seat_control(&app).await,
        json!({"seat_control": "block_overages", "seat_control_value": 2, "new_user_signups_cap": null, "licensed": true})
    );
    let page = web.get(PAGE).await;
    assert!(checked(&page.body, "block_overages"));
    assert_eq!(
        text_of(&page.body, "seat-control-now"),
        "Block seat overages (restricted access)"
    );

    // Off, by GitLab's number as the API takes it.
    let off = web
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "0"),
                ("new_user_signups_cap", ""),
            ],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.body);
    assert_eq!(
        seat_control(&app).await,
        json!({"seat_control": "off", "seat_control_value": 0, "new_user_signups_cap": null, "licensed": true})
    );
    // Each change audited as the API's are.
    let audits = app
        .query_texts(
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events WHERE event_name = 'application_setting_updated'",
        )
        .await;
    assert_eq!(audits, ["7"], "seat_control and the cap, each that changed");
}

async fn a_bad_value_shows_gitlabs_message_and_changes_nothing(app: TestApp) {
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    let set = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "user_cap", "new_user_signups_cap": 5}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let before = seat_control(&app).await;
    let settings_rows = "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events WHERE event_name = 'application_setting_updated'";
    let audits_before = app.query_texts(settings_rows).await;
    let (web, _, csrf) = signed_in(&app).await;

    // The model's messages are the API's, as sentences.
    for (cap, api_cap) in [("0", json!(0)), ("-3", json!(-3)), ("", Value::Null)] {
        let api = put_json(
            &app,
            "/api/v4/-/seat_control",
            json!({"seat_control": "user_cap", "new_user_signups_cap": api_cap}),
        )
        .await;
        assert_eq!(api.status, StatusCode::BAD_REQUEST, "{}", api.body);
        let message = api.json()["message"]["new_user_signups_cap"][0]
            .as_str()
            .expect("GitLab's message")
            .to_string();
        let refused = web
            .post(
                FORM,
                &[
                    ("authenticity_token", &csrf),
                    ("seat_control", "user_cap"),
                    ("new_user_signups_cap", cap),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{cap}");
        let sentence = format!("New user signups cap {message}.");
        assert!(
            refused.body.contains(&format!(
                "<p class=\"flash alert\" role=\"alert\">{sentence}</p>"
            )),
            "{cap}: {}",
            refused.body
        );
        // The form shows what was posted again.
        assert!(checked(&refused.body, "user_cap"));
        assert!(refused.body.contains(&format!("value=\"{cap}\"")), "{cap}");
    }
    assert!(
        web.post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", "0"),
            ],
        )
        .await
        .body
        .contains("New user signups cap must be greater than 0."),
        "GitLab's words"
    );

    // Parameter errors are the API's too; hostile text is escaped; nothing is a 500.
    let hostile = "<script>alert(1)</script>\"";
    for (fields, sentence) in [
        (
            vec![
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", "1.5"),
            ],
            "New user signups cap is invalid.",
        ),
        (
            vec![
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", hostile),
            ],
            "New user signups cap is invalid.",
        ),
        (
            vec![
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", "99999999999999999999999"),
            ],
            "New user signups cap is invalid.",
        ),
        (
            vec![("seat_control", "sometimes")],
            "Seat control does not have a valid value.",
        ),
        (
            vec![("seat_control", "7")],
            "Seat control does not have a valid value.",
        ),
        (
            vec![("new_user_signups_cap", "3")],
            "Seat control is missing.",
        ),
        (
            vec![
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", "4\0"),
            ],
            "A field contains a null byte.",
        ),
    ] {
        let mut form = vec![("authenticity_token", csrf.as_str())];
        form.extend(fields.iter().copied());
        let refused = web.post(FORM, &form).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{fields:?}");
        assert!(
            refused.body.contains(sentence),
            "{fields:?}: {}",
            refused.body
        );
        assert!(!refused.body.contains("<script>alert"), "{fields:?}");
        assert!(!refused.body.contains('\0'), "{fields:?}");
    }
    let escaped_value = escaped(hostile);
    let page = web
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", hostile),
            ],
        )
        .await;
    assert!(page.body.contains(&escaped_value), "{}", page.body);
    // A body that is no form at all is refused as a missing token.
    let garbage = web
        .send(
            app.client
                .post(app.url(FORM))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(vec![0xff, 0xfe, b'%', b'z', b'=', b'&', b'&']),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(seat_control(&app).await, before, "nothing changed");
    assert_eq!(app.query_texts(settings_rows).await, audits_before);
}

async fn a_form_without_the_csrf_token_is_refused(app: TestApp) {
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    let (web, _, _) = signed_in(&app).await;
    for token in [None, Some("wrong")] {
        let mut form = vec![("seat_control", "user_cap"), ("new_user_signups_cap", "3")];
        if let Some(token) = token {
            form.push(("authenticity_token", token));
        }
        let refused = web.post(FORM, &form).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{token:?}"
        );
        assert!(refused.body.contains("Invalid authenticity token"));
        let mut form = vec![("users", "root")];
        if let Some(token) = token {
            form.push(("authenticity_token", token));
        }
        let refused = web.post(EXCLUSIONS, &form).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{token:?}"
        );
    }
    assert_eq!(seat_control(&app).await["seat_control"], "off");
    assert_eq!(
        app.get("/api/v4/-/dormant_users/exclusions").await.json(),
        json!({"users": [], "groups": []})
    );
}

async fn only_administrators_reach_the_page(app: TestApp) {
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    // Anonymous visitors are sent to sign in, and nothing changes.
    let anonymous = WebClient::new(&app);
    for reply in [
        anonymous.get(PAGE).await,
        anonymous
            .post(FORM, &[("seat_control", "block_overages")])
            .await,
        anonymous.post(EXCLUSIONS, &[("users", "root")]).await,
    ] {
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&reply), "/admin/sign_in");
    }
    // A non-administrator cannot sign in, so never reaches it.
    let plain = app.add_user(NewUser::human("plain", false)).await;
    let (plain_token, _) = app.token_for(&plain, &["api"], None).await;
    let developer = WebClient::new(&app);
    assert_eq!(
        developer.sign_in(&plain_token).await.status,
        StatusCode::FORBIDDEN
    );
    let page = developer.get(PAGE).await;
    assert_eq!(
        (page.status, location(&page)),
        (StatusCode::SEE_OTHER, "/admin/sign_in")
    );
    // Their token cannot use the API either.
    let api = app
        .send(Method::GET, "/api/v4/-/seat_control", Some(&plain_token))
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);

    // A read-only administrator may look, not change.
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
    assert!(page.body.contains("<fieldset disabled>"));
    assert!(!page.body.contains("class=\"exclusions-form\""));
    let csrf = csrf_of(&page.body);
    let refused = reader
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "block_overages"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let refused = reader
        .post(
            EXCLUSIONS,
            &[("authenticity_token", &csrf), ("users", "root")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(seat_control(&app).await["seat_control"], "off");
    assert_eq!(
        app.get("/api/v4/-/dormant_users/exclusions").await.json()["users"],
        json!([])
    );
}

/// The usernames of the page's preview rows, in order.
fn preview_rows(body: &str) -> Vec<String> {
    let Some(start) = body.find("<table class=\"dormant-users\">") else {
        return Vec::new();
    };
    let table = &body[start..start + body[start..].find("</table>").expect("table end")];
    table
        .split("<tr data-username=\"")
        .skip(1)
        .map(|row| row.split('"').next().unwrap_or_default().to_string())
        .collect()
}

/// The page's preview says what `GET /api/v4/-/dormant_users` says.
async fn assert_same_preview(app: &TestApp, web: &WebClient<'_>) -> Vec<String> {
    let api = app.get("/api/v4/-/dormant_users").await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    let api = api.json();
    let page = web.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK);
    let named: Vec<String> = api["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|user| user["username"].as_str().map(str::to_string))
        .collect();
    assert_eq!(preview_rows(&page.body), named);
    assert_eq!(
        text_of(&page.body, "dormant-count"),
        api["dormant_users"].to_string()
    );
    assert_eq!(
        text_of(&page.body, "dormant-seats-freed"),
        api["seats_freed"].to_string()
    );
    assert_eq!(
        text_of(&page.body, "dormant-enabled"),
        if api["enabled"] == true { "On" } else { "Off" }
    );
    assert_eq!(
        text_of(&page.body, "dormant-period"),
        format!("{} days", api["period_days"])
    );
    let next_run = api["next_run_at"].as_str().expect("next run");
    assert!(
        page.body
            .contains(&format!("<time datetime=\"{next_run}\">")),
        "{next_run}"
    );
    named
}

async fn the_dormant_preview_is_the_apis(app: TestApp) {
    assert_eq!(app.upload(&premium(20)).await.status, StatusCode::CREATED);
    let (web, page, csrf) = signed_in(&app).await;
    // Nobody dormant yet, and the job off.
    assert!(page.body.contains("Nobody is dormant."));
    assert!(page.body.contains("id=\"dormant-off\""));
    assert_eq!(assert_same_preview(&app, &web).await, Vec::<String>::new());

    crate::settings::dormant_people(&app).await;
    // Off: the page says so, and what the job would do.
    let named = assert_same_preview(&app, &web).await;
    // The longest inactive first (ties by creation, then id), then the never active.
    assert_eq!(named, ["svc", "spared", "grouped", "old", "never_old"]);
    let on = put_json(
        &app,
        "/api/v4/application/settings",
        json!({"deactivate_dormant_users": true, "deactivate_dormant_users_period": 100}),
    )
    .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    let page = web.get(PAGE).await;
    assert!(!page.body.contains("id=\"dormant-off\""));
    assert_eq!(
        text_of(&page.body, "dormant-next-run"),
        "2026-06-16 00:21 UTC"
    );
    assert_eq!(
        assert_same_preview(&app, &web).await,
        ["svc", "spared", "grouped", "old", "never_old"]
    );
    assert!(page.body.contains("<td class=\"wrap\">@old</td>"));
    assert!(page.body.contains("2026-03-01"));

    // The exclusions: shown, and set from the page as the API sets them.
    assert_eq!(text_of(&page.body, "excluded-users"), "none");
    let missing = web
        .post(
            EXCLUSIONS,
            &[
                ("authenticity_token", &csrf),
                ("users", "spared, nobody"),
                ("groups", ""),
            ],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    assert!(missing.body.contains("Not found: nobody."));
    assert!(missing.body.contains("value=\"spared, nobody\""));
    assert_eq!(
        app.get("/api/v4/-/dormant_users/exclusions").await.json(),
        json!({"users": [], "groups": []})
    );
    let saved = web
        .post(
            EXCLUSIONS,
            &[
                ("authenticity_token", &csrf),
                ("users", "@spared"),
                ("groups", "keep"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        location(&saved),
        "/admin/seat_controls?notice=exclusions_saved#exclusions"
    );
    assert_eq!(
        app.get("/api/v4/-/dormant_users/exclusions").await.json(),
        json!({"users": ["spared"], "groups": ["keep"]})
    );
    let page = web.get(location(&saved)).await;
    assert!(page.body.contains("The exclusions were saved."));
    assert_eq!(text_of(&page.body, "excluded-users"), "@spared");
    assert_eq!(text_of(&page.body, "excluded-groups"), "keep");
    assert!(page.body.contains("value=\"spared\""));
    // The preview leaves them out, as the API's does.
    assert_eq!(
        assert_same_preview(&app, &web).await,
        ["svc", "old", "never_old"]
    );

    // More than the preview lists: the first 100 in the job's order, and the total.
    for index in 0..101 {
        app.add_user(NewUser::human(&format!("idle{index:03}"), false))
            .await;
    }
    app.execute_sql("UPDATE users SET last_activity_on = '2026-01-02' WHERE username LIKE 'idle%'")
        .await;
    let named = assert_same_preview(&app, &web).await;
    assert_eq!(named.len(), 100);
    let page = web.get(PAGE).await;
    assert_eq!(text_of(&page.body, "dormant-count"), "104");
    assert!(page
        .body
        .contains("Showing the first 100 of 104, in the order the job takes them."));
}

async fn an_unlicensed_instance_says_why(app: TestApp) {
    // No license: the reason, the paid choices unavailable, and the service's refusal.
    let (web, page, csrf) = signed_in(&app).await;
    assert_eq!(
        text_of(&page.body, "seat-controls-unlicensed"),
        "Seat controls need a Premium or Ultimate license: no license is active."
    );
    assert!(disabled(&page.body, "user_cap"));
    assert!(disabled(&page.body, "block_overages"));
    assert!(!disabled(&page.body, "off"));
    let refused = web
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", "5"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains(
        "<p class=\"flash alert\" role=\"alert\">Seat controls need a Premium or Ultimate license: no license is active.</p>"
    ));
    let api = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "user_cap", "new_user_signups_cap": 5}),
    )
    .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN, "the API refuses alike");
    assert_eq!(
        seat_control(&app).await,
        json!({"seat_control": "off", "seat_control_value": 0, "new_user_signups_cap": null, "licensed": false})
    );
    // "Off" may always be saved.
    let off = web
        .post(
            FORM,
            &[("authenticity_token", &csrf), ("seat_control", "off")],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.body);

    // A Premium license, a cap; then a Starter license: the cap is kept but does not act.
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    let page = web.get(PAGE).await;
    assert!(!page.body.contains("id=\"seat-controls-unlicensed\""));
    assert!(!disabled(&page.body, "user_cap"));
    let capped = web
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "user_cap"),
                ("new_user_signups_cap", "5"),
            ],
        )
        .await;
    assert_eq!(capped.status, StatusCode::SEE_OTHER, "{}", capped.body);
    let starter = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "starter", "active_user_count": 10}),
    );
    assert_eq!(app.upload(&starter).await.status, StatusCode::CREATED);
    let page = web.get(PAGE).await;
    assert_eq!(
        text_of(&page.body, "seat-controls-unlicensed"),
        "Seat controls need a Premium or Ultimate license: the current license is Starter. \
         The setting is kept (User cap (controlled access)) but does not act until such a \
         license is current; it can still be turned off."
    );
    let refused = web
        .post(
            FORM,
            &[
                ("authenticity_token", &csrf),
                ("seat_control", "block_overages"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains(
        "Seat controls need a Premium or Ultimate license: the current license is Starter."
    ));
    assert_eq!(seat_control(&app).await["seat_control"], "user_cap");
}

/// Fails when the page scrolls sideways at the window's width (or, with `table`, when that
/// table scrolls inside its card); saves a screenshot.
async fn fits(browser: &Browser, page: &str, width: u32, table: Option<&str>, name: &str) {
    browser.resize(width, 900).await;
    let overflow = browser
        .script(
            "return document.documentElement.scrollWidth - window.innerWidth",
            json!([]),
        )
        .await;
    assert!(
        overflow.as_i64().is_some_and(|px| px <= 0),
        "{page} scrolls sideways at {width} px ({overflow} px)"
    );
    if let Some(selector) = table {
        let inner = browser
            .script(
                "const e = document.querySelector(arguments[0]); return e ? e.scrollWidth - e.clientWidth : -1",
                json!([selector]),
            )
            .await;
        assert_eq!(
            inner,
            json!(0),
            "{selector} on {page} scrolls at {width} px"
        );
    }
    browser
        .screenshot(&artifacts_dir().join(format!("seat-controls-{page}-{name}-{width}.png")))
        .await;
}

async fn the_seat_controls_page_works_in_chromium(app: TestApp) {
    let Some((browser, driver)) = chromium() else {
        return;
    };
    assert_eq!(app.upload(&premium(20)).await.status, StatusCode::CREATED);
    crate::settings::dormant_people(&app).await;
    let mut waiting = NewUser::human("waiting", false);
    waiting.state = UserState::BlockedPendingApproval;
    app.add_user(waiting).await;
    let name = format!("{:?}", app.backend).to_lowercase();
    let browser = Browser::start(&browser, &driver, None).await;
    browser.visit(&app.url(PAGE)).await;
    browser
        .wait_for(
            "return location.pathname === '/admin/sign_in'",
            json!([]),
            "the sign-in form",
        )
        .await;
    browser.type_into("#token", ROOT_TOKEN).await;
    browser.click("form[action='/admin/sign_in'] button").await;
    browser
        .wait_for(
            "return location.pathname === '/admin/subscription'",
            json!([]),
            "the subscription page",
        )
        .await;
    // From the top bar.
    browser.click("nav a[href='/admin/seat_controls']").await;
    browser
        .wait_for(
            "return location.pathname === '/admin/seat_controls' && document.querySelector('table.dormant-users')",
            json!([]),
            "the seat controls page",
        )
        .await;
    let current = browser
        .script(
            "return document.querySelector('nav a[aria-current=page]').textContent",
            json!([]),
        )
        .await;
    assert_eq!(current, json!("Seat controls"));
    fits(
        &browser,
        "page",
        1280,
        Some(".table-scroll:has(table.dormant-users)"),
        &name,
    )
    .await;
    fits(&browser, "page", 375, None, &name).await;

    // Choose Controlled access, type a cap, save.
    browser.resize(1280, 900).await;
    browser.click("#seat-control-user-cap").await;
    browser.type_into("#new-user-signups-cap", "7").await;
    browser
        .click("form.seat-control-form button[type=submit]")
        .await;
    browser
        .wait_for(
            "const notice = document.querySelector('.flash.notice'); return notice && notice.textContent.includes('The seat controls were saved.')",
            json!([]),
            "the saved notice",
        )
        .await;
    assert_eq!(
        seat_control(&app).await,
        json!({"seat_control": "user_cap", "seat_control_value": 1, "new_user_signups_cap": 7, "licensed": true})
    );
    let state = browser
        .script(
            "return [document.querySelector('#seat-control-user-cap').checked, document.querySelector('#new-user-signups-cap').value, document.querySelector('#pending-approval-count').textContent.trim()]",
            json!([]),
        )
        .await;
    assert_eq!(state, json!([true, "7", "1"]));

    // A refusal is shown on the page, and fits too (the browser's own check on the number
    // field is bypassed, as a script or an old browser would).
    browser
        .script(
            "document.querySelector('#new-user-signups-cap').removeAttribute('min'); document.querySelector('#new-user-signups-cap').value = '0'; return true",
            json!([]),
        )
        .await;
    browser
        .click("form.seat-control-form button[type=submit]")
        .await;
    browser
        .wait_for(
            "const alert = document.querySelector('.flash.alert'); return alert && alert.textContent",
            json!([]),
            "the refusal",
        )
        .await;
    let alert = browser
        .script(
            "return document.querySelector('.flash.alert').textContent",
            json!([]),
        )
        .await;
    assert_eq!(alert, json!("New user signups cap must be greater than 0."));
    assert_eq!(seat_control(&app).await["new_user_signups_cap"], 7);
    fits(&browser, "refused", 1280, None, &name).await;
    fits(&browser, "refused", 375, None, &name).await;
}
