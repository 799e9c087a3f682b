//! The true-up on the subscription page (docs/true-up.md): the peak marked on the chart and
//! explained on its page, the forecast card, the what-if preview (which writes nothing), a
//! new license without daily counts, and all of it in Chromium at 1280 and 375 px.

use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::json;

use gitlab_license_server::store::{HistoryRow, NewUser};

use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::browser::{chromium, Browser};
use crate::support::licenses::premium;
use crate::web::{artifacts_dir, WebClient};

on_both_backends!(
    the_page_explains_the_peak_forecasts_and_previews,
    a_new_license_without_daily_counts_says_so,
    the_true_up_works_in_chromium,
);

async fn daily_count(app: &TestApp, day: &str, count: i64) {
    let at = chrono::DateTime::parse_from_rfc3339(&format!("{day}T23:59:00Z"))
        .expect("time")
        .with_timezone(&chrono::Utc);
    app.state
        .store
        .insert_history(&[HistoryRow {
            recorded_at: at,
            active_user_count: count,
        }])
        .await
        .expect("history");
}

async fn recount(app: &TestApp) {
    let id = app.get("/api/v4/license").await.json()["id"]
        .as_i64()
        .expect("license id");
    let reply = app
        .put(&format!("/api/v4/license/{id}/refresh_billable_users"))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    app.run_jobs().await;
}

/// The ledger's hand count: 3 seats; root counts from day 1; alice, bob and carol join on day
/// 2 (4 billable: the peak, 1 over); bob is blocked on day 3 (3 billable).
async fn hand_count(app: &TestApp) {
    assert_eq!(app.upload(&premium(3)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    daily_count(app, "2026-06-15", 1).await;
    app.set_now(test_now() + TimeDelta::days(1));
    let mut bob = 0;
    for name in ["alice", "bob", "carol"] {
        let user = app.add_user(NewUser::human(name, false)).await;
        if name == "bob" {
            bob = user.id;
        }
    }
    recount(app).await;
    daily_count(app, "2026-06-16", 4).await;
    app.set_now(test_now() + TimeDelta::days(2));
    let blocked = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{bob}/block"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::CREATED, "{}", blocked.body);
    recount(app).await;
    daily_count(app, "2026-06-17", 3).await;
}

/// The text of the first element with `class` (its tags dropped, spaces collapsed).
fn text_of(body: &str, marker: &str) -> String {
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {body}"));
    let rest = &body[start..];
    let open = rest.find('>').expect("tag") + 1;
    let end = [rest[open..].find("</dd>"), rest[open..].find("</tr>")]
        .into_iter()
        .flatten()
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

async fn the_page_explains_the_peak_forecasts_and_previews(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let app = TestApp::start(
        backend,
        &[
            ("TRUE_UP_PRICE_PER_SEAT", "100"),
            ("TRUE_UP_CURRENCY", "eur"),
        ],
    )
    .await;
    hand_count(&app).await;
    let web = WebClient::new(&app);
    web.sign_in(ROOT_TOKEN).await;

    // The chart marks the peak and links to its explanation; today's count is drawn.
    let (page, _) = web.page().await;
    let body = &page.body;
    assert!(body.contains("class=\"peak-mark\" href=\"/admin/subscription/peak\""));
    assert!(body.contains("peak 4"));
    assert!(
        body.contains("The peak (GitLab's historical maximum): 4 billable users on 2026-06-16.")
    );
    assert!(body.contains("class=\"peak-link\" href=\"/admin/subscription/peak\""));
    assert!(
        !body.contains("class=\"today-point"),
        "today has its daily count already"
    );

    // The forecast card: 1 over so far (the peak), 0 over today (GET /license), 1 projected,
    // 100 EUR.
    assert_eq!(
        text_of(body, "id=\"forecast-so-far\""),
        "1 peak 4 for 3 seats"
    );
    assert_eq!(text_of(body, "id=\"forecast-today\""), "0 3 billable today");
    assert_eq!(app.get("/api/v4/license").await.json()["overage"], json!(0));
    assert_eq!(
        text_of(body, "id=\"forecast-projected\""),
        "1 on 2027-01-01"
    );
    assert_eq!(text_of(body, "id=\"forecast-amount\""), "100.00 EUR");
    let explanation = app.get("/api/v4/-/seats/forecast").await.json()["explanation"]
        .as_str()
        .expect("explanation")
        .to_string();
    assert!(body.contains(&crate::web::escaped(&explanation)));
    // The projections (today's count, the 30- and 90-day trends) and the quarters so far,
    // with the API's figures.
    let figures = app.get("/api/v4/-/seats/forecast").await.json();
    for projection in figures["projections"].as_array().expect("projections") {
        let basis = projection["basis"].as_str().expect("basis");
        let label = match basis {
            "current_count" => "At today's count",
            "trend_30_days" => "At the last 30 days' trend",
            _ => "At the last 90 days' trend",
        };
        assert_eq!(
            text_of(body, &format!("data-basis=\"{basis}\"")).replace(',', ""),
            format!(
                "{label} {:+.2} {} {} {} {:.2} EUR",
                projection["users_per_day"].as_f64().expect("slope"),
                projection["projected_count_at_end"],
                projection["projected_peak"],
                projection["projected_overage"],
                projection["amount"].as_f64().expect("amount"),
            ),
            "{basis}"
        );
    }
    let quarters = figures["quarters"].as_array().expect("quarters");
    assert!(!quarters.is_empty());
    for quarter in quarters {
        let number = quarter["quarter"].as_i64().expect("quarter");
        assert_eq!(
            text_of(body, &format!("data-quarter=\"{number}\"")).replace(',', ""),
            format!(
                "Q{number} {} – {} {} {} {:.0} % of the term {:.2} EUR",
                quarter["starts_on"].as_str().expect("start"),
                quarter["ends_on"].as_str().expect("end"),
                quarter["max_count"]
                    .as_i64()
                    .map_or("no count".to_string(), |max| max.to_string()),
                quarter["new_overage"],
                quarter["prorated_fraction"].as_f64().expect("fraction") * 100.0,
                quarter["amount"].as_f64().expect("amount"),
            ),
            "quarter {number}"
        );
    }
    // A price in the form prices the forecast and the preview (not the configured one).
    let priced = web
        .get("/admin/subscription?price_per_seat=250&currency=usd")
        .await;
    assert_eq!(
        text_of(&priced.body, "id=\"forecast-amount\""),
        "250.00 USD"
    );
    assert!(!priced.body.contains("class=\"what-if-result\""));
    assert!(priced.body.contains("value=\"250\""));
    let priced_preview = web
        .get("/admin/subscription?usernames=alice&price_per_seat=250.5&currency=usd")
        .await;
    assert_eq!(
        text_of(&priced_preview.body, "class=\"what-if-amount\""),
        "Amount at renewal 250.50 USD 250.50 USD"
    );
    let bad_price = web.get("/admin/subscription?price_per_seat=lots").await;
    assert_eq!(bad_price.status, StatusCode::OK);
    assert!(bad_price
        .body
        .contains("The price per seat must be a number such as 290 or 290.50."));
    assert_eq!(
        text_of(&bad_price.body, "id=\"forecast-amount\""),
        "100.00 EUR",
        "the configured price stays"
    );

    // The peak's page: the four people of that day, bob stopped since (when and why), the rule.
    let peak = web.get("/admin/subscription/peak").await;
    assert_eq!(peak.status, StatusCode::OK, "{}", peak.body);
    let rows: Vec<&str> = peak
        .body
        .split("<tr data-username=\"")
        .skip(1)
        .map(|row| row.split('"').next().unwrap_or_default())
        .collect();
    assert_eq!(rows, ["root", "alice", "bob", "carol"]);
    assert!(peak.body.contains("4 billable users on 2026-06-16"));
    assert!(peak
        .body
        .contains("Stopped on 2026-06-17: State changed to blocked"));
    assert!(peak
        .body
        .contains("1 of these 4 people have stopped counting since."));
    assert!(peak
        .body
        .contains("It does not fall when people are blocked"));
    assert_eq!(peak.body.matches("Still billable").count(), 3);
    // Signed out: sent to the sign-in form.
    let anonymous = WebClient::new(&app).get("/admin/subscription/peak").await;
    assert!(anonymous.status.is_redirection(), "{}", anonymous.status);

    // The what-if preview: alice going takes today from 3 to 2; the projection stays at the
    // peak; nothing is written.
    let ledger = "SELECT CAST(COUNT(*) AS TEXT) FROM seat_ledger";
    let ledger_before = app.query_texts(ledger).await;
    let preview = web
        .get("/admin/subscription?usernames=alice%2C+nobody")
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(
        text_of(&preview.body, "class=\"what-if-today\""),
        "Billable today 3 2"
    );
    assert_eq!(
        text_of(&preview.body, "class=\"what-if-projected\""),
        "Projected overage at renewal 1 1"
    );
    assert_eq!(
        text_of(&preview.body, "class=\"what-if-amount\""),
        "Amount at renewal 100.00 EUR 100.00 EUR"
    );
    assert_eq!(
        text_of(&preview.body, "class=\"what-if-peak\""),
        "The peak (unchanged) 4 4"
    );
    assert!(preview.body.contains("Not found: @nobody."));
    assert!(preview.body.contains("href=\"/admin/seats\""));
    assert!(preview.body.contains("value=\"alice, nobody\""));
    let inactive = web.get("/admin/subscription?inactive_for_days=30").await;
    assert_eq!(inactive.status, StatusCode::OK);
    assert!(inactive.body.contains("class=\"what-if-today\""));
    assert_eq!(app.query_texts(ledger).await, ledger_before);
    let alice = app
        .send(
            Method::GET,
            "/api/v4/users?username=alice",
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(alice.json()[0]["state"], "active");

    // Bad input is a sentence, never an error page; what was typed is escaped.
    for (query, sentence) in [
        (
            "usernames=alice&inactive_for_days=3",
            "Give usernames or a number of days, not both.",
        ),
        (
            "inactive_for_days=abc",
            "The number of days must be a whole number from 0 to 36500.",
        ),
        ("usernames=+&inactive_for_days=", ""),
    ] {
        let reply = web.get(&format!("/admin/subscription?{query}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
        assert!(reply.body.contains(sentence), "{query}");
        assert!(!reply.body.contains("class=\"what-if-result\""), "{query}");
    }
    let hostile = web
        .get("/admin/subscription?usernames=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22")
        .await;
    assert_eq!(hostile.status, StatusCode::OK);
    assert!(!hostile.body.contains("<script>alert"));
    assert!(hostile
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;"));
}

async fn a_new_license_without_daily_counts_says_so(app: TestApp) {
    assert_eq!(app.upload(&premium(3)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    let web = WebClient::new(&app);
    web.sign_in(ROOT_TOKEN).await;
    let (page, _) = web.page().await;
    let body = &page.body;
    assert!(
        body.contains(
            "No daily counts yet: the first is recorded at 2026-06-15 12:00 UTC. Today: 1 billable user for 3 seats."
        ),
        "{body}"
    );
    assert!(!body.contains("the peak was 0"));
    assert_eq!(body.matches("class=\"today-point\"").count(), 1);
    assert!(body.contains("Today (2026-06-15, not yet a daily count): 1 billable users"));
    assert!(!body.contains("class=\"peak-mark\""));
    // The forecast card says what there is: nothing over.
    assert_eq!(
        text_of(body, "id=\"forecast-so-far\""),
        "0 peak 0 for 3 seats"
    );
    assert_eq!(text_of(body, "id=\"forecast-today\""), "0 1 billable today");
    let peak = web.get("/admin/subscription/peak").await;
    assert_eq!(peak.status, StatusCode::OK);
    assert!(peak
        .body
        .contains("No daily counts yet this term: there is no peak."));

    // Without a license: no true-up, a sentence on the peak's page, no card.
    let id = app.get("/api/v4/license").await.json()["id"]
        .as_i64()
        .expect("id");
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v4/license/{id}"),
            Some(ROOT_TOKEN)
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let (page, _) = web.page().await;
    assert!(!page.body.contains("id=\"forecast\""));
    let peak = web.get("/admin/subscription/peak").await;
    assert_eq!(peak.status, StatusCode::OK);
    assert!(peak
        .body
        .contains("No license is active: there is no true-up."));
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
        .screenshot(&artifacts_dir().join(format!("true-up-{page}-{name}-{width}.png")))
        .await;
}

async fn the_true_up_works_in_chromium(app: TestApp) {
    let Some((browser, driver)) = chromium() else {
        return;
    };
    hand_count(&app).await;
    let name = format!("{:?}", app.backend).to_lowercase();
    let browser = Browser::start(&browser, &driver, None).await;
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
            "return location.pathname === '/admin/subscription' && document.querySelector('#forecast')",
            json!([]),
            "the subscription page with its forecast",
        )
        .await;
    let forecast = browser
        .script(
            "return document.querySelector('#forecast-so-far').firstChild.textContent.trim() + '/' + document.querySelector('#forecast-projected').firstChild.textContent.trim()",
            json!([]),
        )
        .await;
    assert_eq!(forecast, json!("1/1"));
    fits(&browser, "subscription", 1280, None, &name).await;
    fits(&browser, "subscription", 375, None, &name).await;

    // Follow the peak's link from the chart.
    browser.resize(1280, 900).await;
    let href = browser
        .script(
            "return document.querySelector('svg.chart a.peak-mark').getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(href, json!("/admin/subscription/peak"));
    browser.click("svg.chart a.peak-mark .peak-label").await;
    browser
        .wait_for(
            "return location.pathname === '/admin/subscription/peak' && document.querySelectorAll('table.peak-people tbody tr').length === 4",
            json!([]),
            "the peak's page",
        )
        .await;
    let stopped = browser
        .script(
            "return [...document.querySelectorAll('tr.stopped')].map(r => r.dataset.username)",
            json!([]),
        )
        .await;
    assert_eq!(stopped, json!(["bob"]));
    fits(&browser, "peak", 1280, Some(".peak .table-scroll"), &name).await;
    fits(&browser, "peak", 375, None, &name).await;

    // The what-if form.
    browser.resize(1280, 900).await;
    browser.visit(&app.url("/admin/subscription")).await;
    browser.type_into("#what-if-usernames", "alice carol").await;
    browser.click("form.what-if-form button[type=submit]").await;
    let today = browser
        .wait_for(
            "const row = document.querySelector('tr.what-if-today'); return row && [...row.querySelectorAll('td')].map(td => td.textContent)",
            json!([]),
            "the what-if preview",
        )
        .await;
    assert_eq!(today, json!(["3", "1"]));
    fits(&browser, "what-if", 1280, None, &name).await;
    fits(&browser, "what-if", 375, None, &name).await;

    // The Seats page: its seat-holder table fits at 1280 px (the "why" column wraps).
    browser.visit(&app.url("/admin/seats")).await;
    browser
        .wait_for(
            "return document.querySelector('table.holders')",
            json!([]),
            "the Seats page",
        )
        .await;
    fits(
        &browser,
        "seats",
        1280,
        Some(".table-scroll:has(table.holders)"),
        &name,
    )
    .await;
    fits(&browser, "seats", 375, None, &name).await;
}
