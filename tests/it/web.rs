//! The subscription web page: sessions, CSRF and cookie flags over plain HTTP, every license
//! and seat task from its forms, and the whole page in headless Chromium (with screenshots at
//! 1280 and 375 px kept under `target/test-artifacts/`).

use gitlab_license_server::store::Write;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, TimeZone as _, Utc};
use reqwest::StatusCode;
use serde_json::json;

use gitlab_license_server::store::{HistoryRow, NewUser, User};

use crate::graphql_seats::duo_license;
use crate::on_both_backends;
use crate::support::app::{test_now, Reply, TestApp, ROOT_TOKEN};
use crate::support::browser::{chromium, Browser};
use crate::support::csrf_of;
use crate::support::licenses::license;

on_both_backends!(
    anonymous_visitors_and_non_administrators_are_refused,
    sessions_use_strict_http_only_cookies_and_every_form_checks_csrf,
    every_license_and_seat_task_works_from_the_page,
    a_read_only_token_may_look_but_not_change,
    the_page_warns_before_expiry_and_about_overage,
    licenses_no_key_verifies_are_reported_until_the_old_key_is_added,
    the_page_works_in_chromium
);

/// A browser-like client over plain HTTP: keeps cookies, does not follow redirects.
pub(crate) struct WebClient<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl<'a> WebClient<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .expect("cookies")
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let reply = self
            .app
            .send_with(request.header("Cookie", self.cookie_header()), None)
            .await;
        let mut cookies = self.cookies.lock().expect("cookies");
        for value in reply.headers.get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let Some((name, rest)) = text.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or_default();
            if value.is_empty() || text.contains("Max-Age=0") {
                cookies.remove(name);
            } else {
                cookies.insert(name.to_string(), value.to_string());
            }
        }
        reply
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.app.url(path))).await
    }

    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.send(self.client.post(self.app.url(path)).form(fields))
            .await
    }

    /// A `multipart/form-data` POST, as the upload form sends it (`file`: field, content).
    pub(crate) async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str)>,
    ) -> Reply {
        let boundary = "----gls-test-boundary";
        let mut body = String::new();
        for (name, value) in fields {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        if let Some((name, content)) = file {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"company.gitlab-license\"\r\nContent-Type: application/octet-stream\r\n\r\n{content}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let request = self
            .client
            .post(self.app.url(path))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.send(request).await
    }

    pub(crate) fn has_cookie(&self, name: &str) -> bool {
        self.cookies.lock().expect("cookies").contains_key(name)
    }

    /// Signs in through the form; returns the answer to the POST.
    pub(crate) async fn sign_in(&self, token: &str) -> Reply {
        let form = self.get("/admin/sign_in").await;
        assert_eq!(form.status, 200);
        let csrf = csrf_of(&form.body);
        self.post(
            "/admin/sign_in",
            &[("authenticity_token", &csrf), ("token", token)],
        )
        .await
    }

    /// The page, whose forms carry the session's CSRF token.
    pub(crate) async fn page(&self) -> (Reply, String) {
        let page = self.get("/admin/subscription").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = csrf_of(&page.body);
        (page, csrf)
    }
}

const SESSION_COOKIE: &str = "_gitlab_license_server_session";
const CSRF_COOKIE: &str = "_gitlab_license_server_csrf";

pub(crate) fn location(reply: &Reply) -> &str {
    reply.header("location").unwrap_or_default()
}

/// HTML-escapes text as the templates do, to find an API message in a page.
pub(crate) fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn human(app: &TestApp, username: &str, admin: bool) -> User {
    app.add_user(NewUser::human(username, admin)).await
}

async fn license_count(app: &TestApp) -> usize {
    app.get("/api/v4/licenses")
        .await
        .json()
        .as_array()
        .map_or(0, Vec::len)
}

async fn anonymous_visitors_and_non_administrators_are_refused(app: TestApp) {
    let web = WebClient::new(&app);
    let root = web.get("/admin").await;
    assert_eq!(
        (root.status, location(&root)),
        (StatusCode::SEE_OTHER, "/admin/subscription")
    );
    for path in [
        "/admin/subscription",
        "/admin/subscription/usage_export.csv",
    ] {
        let reply = web.get(path).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&reply), "/admin/sign_in", "{path}");
    }
    // Changes are refused before anything is read, and nothing changes.
    let upload = web
        .post_multipart(
            "/admin/subscription/licenses",
            &[("license", &duo_license(2))],
            None,
        )
        .await;
    assert_eq!(
        (upload.status, location(&upload)),
        (StatusCode::SEE_OTHER, "/admin/sign_in")
    );
    assert_eq!(license_count(&app).await, 0);
    let refresh = web
        .post("/admin/subscription/refresh_billable_users", &[])
        .await;
    assert_eq!(location(&refresh), "/admin/sign_in");

    // Tokens that may not sign in: unknown, a non-administrator's, too narrow a scope.
    let developer = human(&app, "dev", false).await;
    let (developer_token, _) = app.token_for(&developer, &["api"], None).await;
    let admin = human(&app, "narrow", true).await;
    let (read_user_token, _) = app.token_for(&admin, &["read_user"], None).await;
    for (token, status, message) in [
        (
            "glpat-not-a-real-token-000",
            StatusCode::UNAUTHORIZED,
            "not valid",
        ),
        (
            developer_token.as_str(),
            StatusCode::FORBIDDEN,
            "Only administrators can sign in here",
        ),
        (
            read_user_token.as_str(),
            StatusCode::FORBIDDEN,
            "needs the api or read_api scope",
        ),
    ] {
        let web = WebClient::new(&app);
        let refused = web.sign_in(token).await;
        assert_eq!(refused.status, status, "{}", refused.body);
        assert!(refused.body.contains(message), "{}", refused.body);
        assert!(!refused.body.contains(token), "the token is not echoed");
        assert!(!web.has_cookie(SESSION_COOKIE));
        assert_eq!(
            location(&web.get("/admin/subscription").await),
            "/admin/sign_in"
        );
    }

    // A session lasts only as long as its token: revoking the token ends it.
    let (admin_token, admin_token_id) = app.token_for(&admin, &["api"], None).await;
    let web = WebClient::new(&app);
    assert_eq!(
        web.sign_in(&admin_token).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(web.get("/admin/subscription").await.status, StatusCode::OK);
    let revoked = app
        .delete(&format!("/api/v4/personal_access_tokens/{admin_token_id}"))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let ended = web.get("/admin/subscription").await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&ended), "/admin/sign_in?session=refused");
    assert!(!web.has_cookie(SESSION_COOKIE));
}

async fn sessions_use_strict_http_only_cookies_and_every_form_checks_csrf(app: TestApp) {
    let web = WebClient::new(&app);
    let form = web.get("/admin/sign_in").await;
    let csrf_cookie = form.header("set-cookie").unwrap_or_default().to_string();
    assert!(csrf_cookie.starts_with(CSRF_COOKIE), "{csrf_cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(csrf_cookie.contains(flag), "{csrf_cookie}");
    }
    assert!(!csrf_cookie.contains("Secure"), "plain http keeps working");
    assert!(form.body.contains("name=\"token\""));
    let csrf = csrf_of(&form.body);

    // Without the form's CSRF token, or with another one, nobody is signed in.
    for fields in [
        vec![("token", ROOT_TOKEN)],
        vec![("authenticity_token", "forged"), ("token", ROOT_TOKEN)],
    ] {
        let refused = web.post("/admin/sign_in", &fields).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains("Invalid authenticity token"));
        assert!(!web.has_cookie(SESSION_COOKIE));
    }
    let stranger = WebClient::new(&app);
    let cross_site = stranger
        .post(
            "/admin/sign_in",
            &[("authenticity_token", &csrf), ("token", ROOT_TOKEN)],
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::UNPROCESSABLE_ENTITY);

    let signed_in = web
        .post(
            "/admin/sign_in",
            &[("authenticity_token", &csrf), ("token", ROOT_TOKEN)],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/admin/subscription");
    let session_cookie = signed_in
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(SESSION_COOKIE))
        .expect("a session cookie")
        .to_string();
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=604800",
    ] {
        assert!(session_cookie.contains(flag), "{session_cookie}");
    }
    assert!(!session_cookie.contains("Secure"));
    assert!(!web.has_cookie(CSRF_COOKIE), "the sign-in token is spent");

    assert_eq!(app.upload(&duo_license(2)).await.status, 201);
    let (page, csrf) = web.page().await;
    assert!(page
        .header("content-type")
        .is_some_and(|value| value.starts_with("text/html")));
    let policy = page.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(
        !policy.contains("script-src"),
        "no scripts at all: {policy}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(!page.body.contains("<script"));
    // Every form that posts carries the session's CSRF token (the what-if preview is a GET
    // form: it writes nothing).
    let forms = page.body.matches("<form").count() - page.body.matches(" method=\"get\"").count();
    assert!(forms >= 5, "{forms}");
    assert_eq!(
        page.body
            .matches(&format!("name=\"authenticity_token\" value=\"{csrf}\""))
            .count(),
        forms
    );

    // Each change refuses a missing or wrong token and changes nothing.
    let upload = web
        .post_multipart(
            "/admin/subscription/licenses",
            &[
                ("authenticity_token", "forged"),
                ("license", &duo_license(5)),
            ],
            None,
        )
        .await;
    assert_eq!(upload.status, StatusCode::UNPROCESSABLE_ENTITY);
    let jobs_before = app.state.store.jobs().await.expect("jobs").len();
    for path in [
        "/admin/subscription/refresh_billable_users",
        "/admin/subscription/licenses/1/delete",
        "/admin/subscription/add_ons/1/assign",
        "/admin/subscription/add_ons/1/unassign",
        "/admin/sign_out",
    ] {
        let refused = web.post(path, &[("usernames", "root")]).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(
            refused.body.contains("Invalid authenticity token"),
            "{path}"
        );
    }
    assert_eq!(license_count(&app).await, 1);
    assert_eq!(
        app.state.store.jobs().await.expect("jobs").len(),
        jobs_before
    );
    assert_eq!(web.get("/admin/subscription").await.status, StatusCode::OK);

    // Signing out ends the session on the server, not only in the browser.
    let stolen_cookie = web.cookie_header();
    let out = web
        .post("/admin/sign_out", &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(
        (out.status, location(&out)),
        (StatusCode::SEE_OTHER, "/admin/sign_in?signed_out=1")
    );
    assert!(!web.has_cookie(SESSION_COOKIE));
    let replayed = app
        .send_with(
            app.client
                .get(app.url("/admin/subscription"))
                .header("Cookie", stolen_cookie),
            None,
        )
        .await;
    // reqwest follows the redirect to the sign-in form.
    assert!(
        replayed.body.contains("name=\"token\""),
        "{}",
        replayed.body
    );

    // Served over https, the cookies are marked Secure.
    let https = TestApp::start(
        app.backend,
        &[("EXTERNAL_URL", "https://licenses.example.com")],
    )
    .await;
    let web = WebClient::new(&https);
    let form = web.get("/admin/sign_in").await;
    assert!(form
        .header("set-cookie")
        .is_some_and(|cookie| cookie.contains("; Secure")));
    let signed_in = web.sign_in(ROOT_TOKEN).await;
    assert!(signed_in
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.starts_with(SESSION_COOKIE) && value.contains("; Secure")));
}

async fn every_license_and_seat_task_works_from_the_page(app: TestApp) {
    let web = WebClient::new(&app);
    assert_eq!(web.sign_in(ROOT_TOKEN).await.status, StatusCode::SEE_OTHER);
    let (page, csrf) = web.page().await;
    assert!(page.body.contains("No license is active"));

    // A bad key: the API's 400 message, and nothing stored.
    let api_refusal = app.upload("not a license").await;
    assert_eq!(api_refusal.status, 400);
    let message = api_refusal.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let refused = web
        .post_multipart(
            "/admin/subscription/licenses",
            &[("authenticity_token", &csrf), ("license", "not a license")],
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains(&escaped(&message)), "{message}");
    assert_eq!(license_count(&app).await, 0);
    let empty = web
        .post_multipart(
            "/admin/subscription/licenses",
            &[("authenticity_token", &csrf), ("license", " ")],
            None,
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty
        .body
        .contains("Paste a license key or choose a license file"));

    // Pasted, then a future one as a file; an expired one stored earlier.
    let pasted = web
        .post_multipart(
            "/admin/subscription/licenses",
            &[("authenticity_token", &csrf), ("license", &duo_license(2))],
            None,
        )
        .await;
    assert_eq!(pasted.status, StatusCode::SEE_OTHER, "{}", pasted.body);
    assert_eq!(
        location(&pasted),
        "/admin/subscription?notice=license_added"
    );
    let future = license(
        "2027-01-01",
        "2028-01-01",
        json!({"plan": "ultimate", "active_user_count": 50}),
    );
    let uploaded = web
        .post_multipart(
            "/admin/subscription/licenses",
            &[("authenticity_token", &csrf), ("license", "")],
            Some(("license_file", &future)),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.body);
    let expired = license(
        "2024-01-01",
        "2025-01-01",
        json!({"plan": "starter", "active_user_count": 5}),
    );
    app.state
        .store
        .create_license(
            &expired,
            None,
            Write::unaudited(test_now() - TimeDelta::days(600)),
        )
        .await
        .expect("expired license stored");
    let listed = app.get("/api/v4/licenses").await.json();
    let ids: Vec<i64> = listed
        .as_array()
        .map(|licenses| licenses.iter().filter_map(|l| l["id"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 3);

    let page = web.get("/admin/subscription?notice=license_added").await;
    assert!(page.body.contains("The license was added."));
    let current = app.get("/api/v4/license").await.json();
    for (id, figure) in [
        ("seats-in-license", current["user_limit"].to_string()),
        (
            "billable-users",
            current["active_users"].as_i64().unwrap_or(-1).to_string(),
        ),
        ("maximum-users", current["maximum_user_count"].to_string()),
        ("users-over-license", current["overage"].to_string()),
    ] {
        assert!(
            page.body.contains(&format!("id=\"{id}\""))
                && page.body.contains(&format!(">{figure}</dd>")),
            "{id} = {figure}"
        );
    }
    for standing in ["Current", "Future", "Expired"] {
        assert!(
            page.body.contains(&format!(">{standing}</span>")),
            "{standing}"
        );
    }

    // Delete the future license; an unknown id is the API's 404.
    let future_id = listed[0]["id"].as_i64().expect("newest id");
    let deleted = web
        .post(
            &format!("/admin/subscription/licenses/{future_id}/delete"),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(
        location(&deleted),
        "/admin/subscription?notice=license_deleted"
    );
    assert_eq!(license_count(&app).await, 2);
    let missing = web
        .post(
            "/admin/subscription/licenses/999999/delete",
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("404 Not found"));

    // Refresh billable users: the recount runs and the figure follows.
    let ada = human(&app, "ada", false).await;
    let grace = human(&app, "grace", false).await;
    human(&app, "linus", false).await;
    app.run_jobs().await;
    let refreshed = web
        .post(
            "/admin/subscription/refresh_billable_users",
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(
        location(&refreshed),
        "/admin/subscription?notice=recount_queued"
    );
    assert!(app.run_jobs().await >= 1, "a recount was queued");
    let billable = app.get("/api/v4/license").await.json()["active_users"]
        .as_i64()
        .expect("active users");
    assert_eq!(billable, 4, "root and three users");
    let page = web.get("/admin/subscription").await;
    assert!(page
        .body
        .contains(&format!("id=\"billable-users\">{billable}</dd>")));

    // The CSV is the API's export, as a download.
    let csv = web.get("/admin/subscription/usage_export.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv
        .header("content-disposition")
        .is_some_and(|value| value.starts_with("attachment")));
    assert!(csv
        .header("content-type")
        .is_some_and(|value| value.starts_with("text/csv")));
    assert_eq!(
        csv.body,
        app.get("/api/v4/license/usage_export.csv").await.body
    );

    // Seats: the GraphQL mutations' rules, from the page's forms.
    let purchase_id = app
        .state
        .store
        .all_add_on_purchases()
        .await
        .expect("purchases")[0]
        .id;
    let seats = |verb: &str| format!("/admin/subscription/add_ons/{purchase_id}/{verb}");
    let assigned = web
        .post(
            &seats("assign"),
            &[("authenticity_token", &csrf), ("usernames", "ada, @Grace")],
        )
        .await;
    assert_eq!(
        location(&assigned),
        "/admin/subscription?notice=seats_assigned&count=2&skipped=0"
    );
    let graphql = app
        .graphql(
            Some(ROOT_TOKEN),
            "{ addOnPurchases { assignedQuantity purchasedQuantity } }",
            json!({}),
        )
        .await
        .json();
    assert_eq!(
        graphql["data"]["addOnPurchases"][0],
        json!({"assignedQuantity": 2, "purchasedQuantity": 2})
    );
    let page = web
        .get("/admin/subscription?notice=seats_assigned&count=2&skipped=0")
        .await;
    assert!(page.body.contains("2 seats assigned."));
    assert!(page.body.contains(
        "<span class=\"seats-used\">2</span> of <span class=\"seats-purchased\">2</span>"
    ));
    assert!(
        page.body.contains("data-username=\"ada\"")
            && page.body.contains("data-username=\"grace\"")
    );

    for (usernames, status, text) in [
        (
            "linus",
            StatusCode::UNPROCESSABLE_ENTITY,
            "NOT_ENOUGH_SEATS",
        ),
        (
            "nobody",
            StatusCode::UNPROCESSABLE_ENTITY,
            "No user with the username nobody",
        ),
        ("", StatusCode::BAD_REQUEST, "Enter at least one username"),
        (
            "ada\0",
            StatusCode::BAD_REQUEST,
            "A field contains a null byte.",
        ),
        (
            "ada.. <b>x</b>",
            StatusCode::UNPROCESSABLE_ENTITY,
            "No user with the username ada.., &lt;b&gt;x&lt;/b&gt;",
        ),
    ] {
        let refused = web
            .post(
                &seats("assign"),
                &[("authenticity_token", &csrf), ("usernames", usernames)],
            )
            .await;
        assert_eq!(refused.status, status, "{usernames}");
        assert!(refused.body.contains(text), "{usernames}: {text}");
    }
    // GitLab's bulk limit and message, for assigning and for removing.
    let crowd = (0..101)
        .map(|n| format!("user{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    for (verb, message) in [
        (
            "assign",
            "to be assigned in a single API call should be less than 100.",
        ),
        (
            "unassign",
            "to be unassigned in a single API call should be less than 100.",
        ),
    ] {
        let refused = web
            .post(
                &seats(verb),
                &[("authenticity_token", &csrf), ("usernames", &crowd)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{verb}");
        assert!(refused.body.contains(message), "{verb}");
    }
    let unknown_purchase = web
        .post(
            "/admin/subscription/add_ons/987654/assign",
            &[("authenticity_token", &csrf), ("usernames", "linus")],
        )
        .await;
    assert_eq!(unknown_purchase.status, StatusCode::NOT_FOUND);

    // A holder's own button, then the usernames box.
    let unassigned = web
        .post(
            &seats("unassign"),
            &[
                ("authenticity_token", &csrf),
                ("user_id", &ada.id.to_string()),
            ],
        )
        .await;
    assert_eq!(
        location(&unassigned),
        "/admin/subscription?notice=seats_removed&count=1"
    );
    let removed = web
        .post(
            &seats("unassign"),
            &[
                ("authenticity_token", &csrf),
                ("usernames", &grace.username),
            ],
        )
        .await;
    assert_eq!(
        location(&removed),
        "/admin/subscription?notice=seats_removed&count=1"
    );
    let nothing = web
        .post(
            &seats("unassign"),
            &[("authenticity_token", &csrf), ("usernames", "grace")],
        )
        .await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nothing.body.contains("NO_ASSIGNMENTS_FOUND"));
    let page = web.get("/admin/subscription").await;
    assert!(page.body.contains("Nobody holds a seat."));

    // A group's purchase: the REST provisioning endpoint's service and validations.
    let group = app
        .send_with(
            app.client
                .post(app.url("/api/v4/groups"))
                .json(&json!({"name": "Platform", "path": "platform"})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let group_id = group.json()["id"].as_i64().expect("group id");
    let save = |group: &'static str, quantity: &'static str, expires: &'static str| {
        [
            ("group", group),
            ("add_on", "duo_enterprise"),
            ("quantity", quantity),
            ("started_on", "2026-06-01"),
            ("expires_on", expires),
            ("purchase_xid", ""),
        ]
    };
    for (fields, status, text) in [
        (
            save("nowhere", "5", "2027-06-01"),
            StatusCode::NOT_FOUND,
            "404 Namespace Not Found",
        ),
        (
            save("platform", "0", "2027-06-01"),
            StatusCode::BAD_REQUEST,
            "quantity must be greater than or equal to 1",
        ),
        (
            save("platform", "five", "2027-06-01"),
            StatusCode::BAD_REQUEST,
            "quantity is invalid",
        ),
        (
            save("plat\0form", "5", "2027-06-01"),
            StatusCode::BAD_REQUEST,
            "A field contains a null byte.",
        ),
    ] {
        let mut fields = fields.to_vec();
        fields.push(("authenticity_token", &csrf));
        let refused = web
            .post("/admin/subscription/add_on_purchases", &fields)
            .await;
        assert_eq!(refused.status, status, "{text}");
        assert!(refused.body.contains(text), "{text}");
    }
    let purchase_path =
        format!("/api/v4/namespaces/{group_id}/subscription_add_on_purchase/duo_enterprise");
    assert_eq!(
        app.get(&purchase_path).await.status,
        404,
        "nothing was saved"
    );
    for quantity in ["5", "7"] {
        let mut fields = save("platform", quantity, "2027-06-01").to_vec();
        fields.push(("authenticity_token", &csrf));
        let saved = web
            .post("/admin/subscription/add_on_purchases", &fields)
            .await;
        assert_eq!(
            location(&saved),
            "/admin/subscription?notice=purchase_saved",
            "{}",
            saved.body
        );
        assert_eq!(
            app.get(&purchase_path).await.json()["quantity"].to_string(),
            quantity
        );
    }
    let page = web.get("/admin/subscription").await;
    assert!(page.body.contains("group platform"));
    assert!(page
        .body
        .contains("<span class=\"seats-purchased\">7</span>"));
    assert_accessible_markup(&page.body);
    assert_accessible_markup(&WebClient::new(&app).get("/admin/sign_in").await.body);
}

async fn a_read_only_token_may_look_but_not_change(app: TestApp) {
    assert_eq!(app.upload(&duo_license(2)).await.status, 201);
    let admin = human(&app, "auditor", true).await;
    let (token, _) = app.token_for(&admin, &["read_api"], None).await;
    let web = WebClient::new(&app);
    assert_eq!(web.sign_in(&token).await.status, StatusCode::SEE_OTHER);
    let (page, csrf) = web.page().await;
    assert!(page.body.contains("Your token has read-only access"));
    assert!(!page.body.contains("Add license"));
    let purchase_id = app
        .state
        .store
        .all_add_on_purchases()
        .await
        .expect("purchases")[0]
        .id;
    for path in [
        "/admin/subscription/refresh_billable_users".to_string(),
        "/admin/subscription/licenses/1/delete".to_string(),
        format!("/admin/subscription/add_ons/{purchase_id}/assign"),
    ] {
        let refused = web
            .post(
                &path,
                &[("authenticity_token", &csrf), ("usernames", "auditor")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(license_count(&app).await, 1);
    assert_eq!(
        web.get("/admin/subscription/usage_export.csv").await.status,
        StatusCode::OK
    );

    // Sessions last GitLab's default week.
    app.set_now(test_now() + TimeDelta::days(8));
    let expired = web.get("/admin/subscription").await;
    assert_eq!(
        (expired.status, location(&expired)),
        (StatusCode::SEE_OTHER, "/admin/sign_in?session=expired")
    );
}

/// Every visible form control has a label pointing at it, and headings do not skip levels.
fn assert_accessible_markup(body: &str) {
    for control in ["<input ", "<textarea "] {
        for tag in body.split(control).skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            if tag.contains("type=\"hidden\"") {
                continue;
            }
            let id = tag
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("a control without an id: {tag}"));
            assert!(
                body.contains(&format!("<label for=\"{id}\"")),
                "no label for {id}"
            );
        }
    }
    let mut previous = 1;
    for level in body
        .match_indices("<h")
        .filter_map(|(at, _)| body[at + 2..].chars().next()?.to_digit(10))
    {
        assert!(level <= previous + 1, "heading h{level} after h{previous}");
        previous = level;
    }
    assert!(body.contains("<html lang=\"en\">"));
}

/// A deployment converted to another signing key: its stored licenses are hidden (as GitLab
/// hides what its keys cannot read), and the gauge, the page and the fix say so; with the
/// old public key added beside the new one, they show again.
async fn licenses_no_key_verifies_are_reported_until_the_old_key_is_added(app: TestApp) {
    let premium = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "premium", "active_user_count": 5}),
    );
    let uploaded = app.upload(&premium).await.json()["id"].clone();
    let (_, new_public) =
        gitlab_license_server::license_key::keys::generate_pem_pair(2048).expect("key pair");
    let old_public = std::fs::read_to_string(crate::support::vectors_dir().join("public_key.pem"))
        .expect("vectors key");
    let new_only = app.data_dir.join("new_key.pub");
    let both = app.data_dir.join("both_keys.pub");
    std::fs::write(&new_only, &new_public).expect("write key");
    std::fs::write(&both, format!("{new_public}\n{old_public}")).expect("write keys");

    let hidden_line = "1 stored license is hidden: no configured public key verifies it.";
    // Restarted with the new key only, on the same database.
    let rotated = TestApp::start(
        app.backend,
        &[
            ("DATABASE_URL", &app.database_url),
            ("LICENSE_PUBLIC_KEY_FILE", &new_only.display().to_string()),
        ],
    )
    .await;
    assert_eq!(rotated.get("/api/v4/license").await.body, "null");
    assert_eq!(rotated.get("/api/v4/licenses").await.json(), json!([]));
    let scrape = rotated.send(reqwest::Method::GET, "/-/metrics", None).await;
    assert!(
        scrape
            .body
            .contains("\ngitlab_license_server_unverifiable_licenses 1\n"),
        "{}",
        scrape.body
    );
    let web = WebClient::new(&rotated);
    web.sign_in(ROOT_TOKEN).await;
    let (page, _) = web.page().await;
    assert!(page.body.contains(hidden_line), "{}", page.body);
    assert!(page.body.contains("LICENSE_PUBLIC_KEY_FILE"));

    // Both keys: the license is back, nothing is reported.
    let both_keys = TestApp::start(
        app.backend,
        &[
            ("DATABASE_URL", &app.database_url),
            ("LICENSE_PUBLIC_KEY_FILE", &both.display().to_string()),
        ],
    )
    .await;
    assert_eq!(
        both_keys.get("/api/v4/license").await.json()["id"],
        uploaded
    );
    assert_eq!(
        both_keys.get("/api/v4/licenses").await.json()[0]["id"],
        uploaded
    );
    let scrape = both_keys
        .send(reqwest::Method::GET, "/-/metrics", None)
        .await;
    assert!(scrape
        .body
        .contains("\ngitlab_license_server_unverifiable_licenses 0\n"));
    let web = WebClient::new(&both_keys);
    web.sign_in(ROOT_TOKEN).await;
    let (page, _) = web.page().await;
    assert!(!page.body.contains("hidden: no configured public key"));
}

async fn the_page_warns_before_expiry_and_about_overage(app: TestApp) {
    let short = license(
        "2026-01-01",
        "2026-07-15",
        json!({"plan": "premium", "active_user_count": 2}),
    );
    assert_eq!(app.upload(&short).await.status, 201);
    let web = WebClient::new(&app);
    web.sign_in(ROOT_TOKEN).await;

    // 30 days left: the banner shows; 31 days: it does not. No overage yet.
    let page = web.get("/admin/subscription").await;
    assert!(
        page.body.contains("Your license expires in 30 days."),
        "{}",
        page.body
    );
    assert!(!page.body.contains("more billable"));
    app.set_now(test_now() - TimeDelta::days(1));
    let page = web.get("/admin/subscription").await;
    assert!(!page.body.contains("Your license expires"));
    app.set_now(test_now());

    // Four billable users for two seats: the overage banner, the figure and the chart agree.
    for name in ["ada", "grace", "linus"] {
        human(&app, name, false).await;
    }
    app.state
        .store
        .insert_history(&[HistoryRow {
            recorded_at: test_now() - TimeDelta::days(2),
            active_user_count: 4,
        }])
        .await
        .expect("history");
    assert_eq!(
        app.put("/api/v4/license/1/refresh_billable_users")
            .await
            .status,
        202
    );
    app.run_jobs().await;
    let overage = app.get("/api/v4/license").await.json()["overage"]
        .as_i64()
        .expect("overage");
    assert_eq!(overage, 2);
    let page = web.get("/admin/subscription").await;
    assert!(
        page.body
            .contains("Your instance has 2 more billable users than the license allows."),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("id=\"users-over-license\" class=\"over\">2</dd>"));
    assert!(page
        .body
        .contains("Over the license: the peak was 4 billable users for 2 seats (2 over)."));
    assert!(page.body.contains("class=\"point over\""));

    // Past the end date (and the week-long session): the expired banner.
    app.set_now(test_now() + TimeDelta::days(31));
    let web = WebClient::new(&app);
    assert_eq!(web.sign_in(ROOT_TOKEN).await.status, StatusCode::SEE_OTHER);
    let page = web.get("/admin/subscription").await;
    assert!(
        page.body.contains("Your license has expired."),
        "{}",
        page.body
    );
}

/// Where screenshots are kept (beside the build, ignored by git, collected by CI).
pub(crate) fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts")
}

async fn the_page_works_in_chromium(app: TestApp) {
    let Some((browser, driver)) = chromium() else {
        return;
    };
    // Twelve days of history in the license's term, and one from before it (not drawn).
    let mut history: Vec<HistoryRow> = (0..12)
        .map(|day| HistoryRow {
            recorded_at: Utc
                .with_ymd_and_hms(2026, 6, 1, 23, 59, 0)
                .single()
                .expect("time")
                + TimeDelta::days(day),
            active_user_count: 40 + day,
        })
        .collect();
    history.push(HistoryRow {
        recorded_at: Utc
            .with_ymd_and_hms(2025, 12, 20, 12, 0, 0)
            .single()
            .expect("time"),
        active_user_count: 7,
    });
    app.state
        .store
        .insert_history(&history)
        .await
        .expect("history");
    human(&app, "ada", false).await;
    let downloads = app.data_dir.join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads dir");
    let key_file = app.data_dir.join("company.gitlab-license");
    std::fs::write(&key_file, duo_license(3)).expect("license file");

    let browser = Browser::start(&browser, &driver, Some(&downloads)).await;
    // Anonymous: sent to the sign-in form; sign in by typing the token.
    browser.visit(&app.url("/admin/subscription")).await;
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
            "return location.pathname === '/admin/subscription' && document.querySelector('h1')?.textContent",
            json!([]),
            "the subscription page",
        )
        .await;

    // Upload the license file.
    browser
        .type_into("#license-file", &key_file.display().to_string())
        .await;
    browser.click("form.upload button[type=submit]").await;
    browser
        .wait_for(
            "return document.querySelector('.flash.notice')?.textContent === 'The license was added.'",
            json!([]),
            "the upload notice",
        )
        .await;
    let points = browser
        .script(
            "return document.querySelectorAll('svg.chart circle.point').length",
            json!([]),
        )
        .await;
    assert_eq!(points, json!(12), "one point per day of the term");
    let verdict = browser
        .script(
            "return document.querySelector('#chart-verdict').textContent",
            json!([]),
        )
        .await;
    assert_eq!(
        verdict,
        json!("Within the license: the peak was 51 billable users for 100 seats.")
    );
    let limit_line = browser
        .script(
            "return document.querySelectorAll('svg.chart line.limit').length",
            json!([]),
        )
        .await;
    assert_eq!(limit_line, json!(1));

    // Assign a seat by username.
    browser
        .type_into("form.assign input[name=usernames]", "ada")
        .await;
    browser.click("form.assign button[type=submit]").await;
    browser
        .wait_for(
            "return document.querySelector('.flash.notice')?.textContent === '1 seat assigned.' \
             && document.querySelector('tr[data-username=ada]') !== null",
            json!([]),
            "the seat assignment",
        )
        .await;
    let used = browser
        .script(
            "return document.querySelector('.seats-used').textContent + '/' + document.querySelector('.seats-purchased').textContent",
            json!([]),
        )
        .await;
    assert_eq!(used, json!("1/3"));

    // Download the CSV through the page's link.
    browser
        .click("a[href='/admin/subscription/usage_export.csv']")
        .await;
    let csv_path = downloads.join("license_usage.csv");
    let started = Instant::now();
    while !csv_path.is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the CSV was not downloaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let downloaded = std::fs::read_to_string(&csv_path).expect("csv");
    assert_eq!(
        downloaded,
        app.get("/api/v4/license/usage_export.csv").await.body
    );

    // Screenshots of the whole page at desktop and phone widths; nothing scrolls sideways
    // on the phone.
    let name = format!("{:?}", app.backend).to_lowercase();
    for width in [1280u32, 375] {
        browser.resize(width, 900).await;
        let height = browser
            .script("return document.documentElement.scrollHeight", json!([]))
            .await
            .as_u64()
            .unwrap_or(900);
        browser
            .resize(width, u32::try_from(height).unwrap_or(900).clamp(600, 6000))
            .await;
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
                       .filter(e => !e.closest('.chart-scroll, .table-scroll') && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)\
                       .slice(0, 8).map(e => e.tagName + '.' + e.getAttribute('class') + ' ' + Math.round(e.getBoundingClientRect().right));",
                    json!([]),
                )
                .await;
            panic!("sideways scrolling at {width} px ({overflow} px), too wide: {wide}");
        }
        browser
            .screenshot(&artifacts_dir().join(format!("subscription-{name}-{width}.png")))
            .await;
    }

    // Sign out with the header's button.
    browser.click("form.sign-out button").await;
    browser
        .wait_for(
            "return location.pathname === '/admin/sign_in' && document.querySelector('.flash.notice')?.textContent === 'Signed out.'",
            json!([]),
            "the signed-out page",
        )
        .await;
}
