//! The endpoints clients call while logging in: `/user`, `/version`, `/metadata`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::auth::Authenticated;
use crate::domain::licenses::timestamp_text;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::store::User;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v4/user", get(current_user))
        .route("/api/v4/version", get(version))
        .route("/api/v4/metadata", get(metadata))
}

/// GitLab's `UserPublic`-style entity for the caller (the fields clients read).
pub fn user_json(user: &User, external_url: &str) -> Value {
    let bot = !matches!(user.user_type.as_str(), "human" | "service_user");
    json!({
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": user.state,
        "locked": false,
        "avatar_url": Value::Null,
        "web_url": format!("{external_url}/{}", user.username),
        "created_at": timestamp_text(user.created_at),
        "bio": "",
        "location": "",
        "public_email": Value::Null,
        "linkedin": "",
        "twitter": "",
        "discord": "",
        "website_url": "",
        "organization": "",
        "job_title": "",
        "pronouns": Value::Null,
        "bot": bot,
        "work_information": Value::Null,
        "local_time": Value::Null,
        "last_sign_in_at": Value::Null,
        "confirmed_at": timestamp_text(user.created_at),
        "last_activity_on": Value::Null,
        "email": user.email,
        "theme_id": 1,
        "color_scheme_id": 1,
        "projects_limit": 100000,
        "current_sign_in_at": Value::Null,
        "identities": [],
        "can_create_group": true,
        "can_create_project": true,
        "two_factor_enabled": false,
        "external": false,
        "private_profile": false,
        "commit_email": user.email,
        "is_admin": user.admin,
        "note": Value::Null,
    })
}

async fn current_user(
    Authenticated(actor): Authenticated,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    Ok(Json(user_json(actor.user(), &state.config.external_url)))
}

fn version_json(state: &AppState) -> Value {
    json!({
        "version": state.config.gitlab_version,
        "revision": env!("CARGO_PKG_VERSION"),
        "kas": {"enabled": false, "externalUrl": Value::Null, "externalK8sProxyUrl": Value::Null, "version": Value::Null},
        "enterprise": true,
    })
}

async fn version(_: Authenticated, State(state): State<AppState>) -> Json<Value> {
    Json(version_json(&state))
}

async fn metadata(_: Authenticated, State(state): State<AppState>) -> Json<Value> {
    Json(version_json(&state))
}
