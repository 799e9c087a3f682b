//! The one authorization policy, rule by rule, through all three ways in: the REST API, GraphQL
//! and the subscription page's sign-in. Each entry point answers in its own shape (REST:
//! GitLab's 401/403; GraphQL: 401 "Invalid token", or an administrator's view withheld; the
//! page: a refused sign-in), but the decision is the same.

use gitlab_license_server::domain::users::UserState;
use gitlab_license_server::store::Write;
use gitlab_license_server::store::{NewUser, User};
use reqwest::Method;
use serde_json::json;

use crate::graphql_seats::duo_license;
use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::csrf_of;

on_both_backends!(every_rule_holds_on_every_way_in);

/// What each way in answers for one token.
#[derive(Debug, PartialEq, Eq)]
struct Answers {
    /// `GET /api/v4/license` (administrators only).
    rest: u16,
    /// `{ addOnPurchases { name } }`: the HTTP status, and how many purchases it lists (an
    /// administrator sees the instance's one).
    graphql: (u16, usize),
    /// The sign-in form's POST: 303 to the page when admitted.
    page: u16,
}

async fn answers(app: &TestApp, token: &str) -> Answers {
    let rest = app.send(Method::GET, "/api/v4/license", Some(token)).await;
    let graphql = app
        .graphql(Some(token), "{ addOnPurchases { name } }", json!({}))
        .await;
    let listed = graphql.json()["data"]["addOnPurchases"]
        .as_array()
        .map_or(0, Vec::len);
    Answers {
        rest: rest.status.as_u16(),
        graphql: (graphql.status.as_u16(), listed),
        page: sign_in(app, token).await,
    }
}

/// Posts the sign-in form as a browser would (its CSRF cookie and field), without following
/// the redirect.
async fn sign_in(app: &TestApp, token: &str) -> u16 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = client
        .get(app.url("/admin/sign_in"))
        .send()
        .await
        .expect("form");
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    let csrf = csrf_of(&form.text().await.expect("form body"));
    client
        .post(app.url("/admin/sign_in"))
        .header("Cookie", cookie)
        .form(&[("authenticity_token", csrf.as_str()), ("token", token)])
        .send()
        .await
        .expect("sign in")
        .status()
        .as_u16()
}

async fn user(app: &TestApp, username: &str, admin: bool, state: UserState) -> User {
    let mut new = NewUser::human(username, admin);
    new.state = state;
    app.add_user(new).await
}

async fn every_rule_holds_on_every_way_in(app: TestApp) {
    assert_eq!(app.upload(&duo_license(5)).await.status, 201);
    let admin = user(&app, "boss", true, UserState::Active).await;
    let today = app.clock_today();

    // An administrator's `api` token passes everywhere: the control.
    let (good, _) = app.token_for(&admin, &["api"], None).await;
    let admitted = Answers {
        rest: 200,
        graphql: (200, 1),
        page: 303,
    };
    assert_eq!(answers(&app, &good).await, admitted, "control");

    // Revoked, then expired (today is its expiry date): no way in authenticates it.
    let (revoked, revoked_id) = app.token_for(&admin, &["api"], None).await;
    app.state
        .store
        .revoke_token(revoked_id, Write::unaudited(test_now()))
        .await
        .expect("revoke");
    let unauthenticated = Answers {
        rest: 401,
        graphql: (401, 0),
        page: 401,
    };
    assert_eq!(answers(&app, &revoked).await, unauthenticated, "revoked");
    let (expired, _) = app.token_for(&admin, &["api"], Some(today)).await;
    assert_eq!(answers(&app, &expired).await, unauthenticated, "expired");

    // A scope that does not reach the API.
    let (profile_only, _) = app.token_for(&admin, &["read_user"], None).await;
    let refused = Answers {
        rest: 403,
        graphql: (401, 0),
        page: 403,
    };
    assert_eq!(answers(&app, &profile_only).await, refused, "read_user");

    // An account that may not use the API, whatever its token.
    for state in [
        UserState::Blocked,
        UserState::Deactivated,
        UserState::Banned,
        UserState::BlockedPendingApproval,
    ] {
        let account = user(&app, &format!("acct-{state}"), true, state).await;
        let (token, _) = app.token_for(&account, &["api"], None).await;
        assert_eq!(answers(&app, &token).await, refused, "{state}");
    }

    // Not an administrator: authenticated, but no administrator's view or page.
    let member = user(&app, "member", false, UserState::Active).await;
    let (plain, _) = app.token_for(&member, &["api"], None).await;
    let not_admin = Answers {
        rest: 403,
        graphql: (200, 0),
        page: 403,
    };
    assert_eq!(
        answers(&app, &plain).await,
        not_admin,
        "not an administrator"
    );

    // With Admin Mode on, an administrator's token needs `admin_mode` to act as one.
    let strict = TestApp::start(app.backend, &[("ADMIN_MODE", "true")]).await;
    assert_eq!(strict.upload(&duo_license(5)).await.status, 201);
    let boss = user(&strict, "boss", true, UserState::Active).await;
    let (without_mode, _) = strict.token_for(&boss, &["api"], None).await;
    assert_eq!(
        answers(&strict, &without_mode).await,
        not_admin,
        "admin without admin_mode"
    );
    let (with_mode, _) = strict.token_for(&boss, &["api", "admin_mode"], None).await;
    assert_eq!(answers(&strict, &with_mode).await, admitted, "admin_mode");
    // The root token made at start carries admin_mode.
    assert_eq!(answers(&strict, ROOT_TOKEN).await, admitted, "root");
}
