//! The endpoints clients call while logging in: `/user`, `/version`, `/metadata`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::users::{admin_entity, user_entity, Detail, UserEntity};
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v4/user", get(current_user))
        .route("/api/v4/version", get(version))
        .route("/api/v4/metadata", get(metadata))
}

#[utoipa::path(get, operation_id = "instance_current_user", path = "/api/v4/user", tag = "instance", summary = "The token's user", responses((status = 200, description = "OK", body = Object), crate::api::responses::ErrorResponses))]
async fn current_user(
    Authenticated(actor): Authenticated,
    State(state): State<AppState>,
) -> ApiResult<Json<UserEntity>> {
    // Administrators see themselves as `UserWithAdmin`, everybody else as `UserPublic`.
    if actor.admin {
        return Ok(Json(
            admin_entity(&state, actor.user(), Detail::WithAdmin).await?,
        ));
    }
    Ok(Json(user_entity(
        actor.user(),
        &state.config.external_url,
        Detail::Public,
        None,
    )))
}

fn version_json(state: &AppState) -> Value {
    json!({
        "version": state.config.gitlab_version,
        "revision": env!("CARGO_PKG_VERSION"),
        "kas": {"enabled": false, "externalUrl": Value::Null, "externalK8sProxyUrl": Value::Null, "version": Value::Null},
        "enterprise": true,
    })
}

#[utoipa::path(get, operation_id = "instance_version", path = "/api/v4/version", tag = "instance", summary = "The GitLab version this server reports", responses((status = 200, description = "OK", body = Object), crate::api::responses::ErrorResponses))]
async fn version(_: Authenticated, State(state): State<AppState>) -> Json<Value> {
    Json(version_json(&state))
}

#[utoipa::path(get, operation_id = "instance_metadata", path = "/api/v4/metadata", tag = "instance", summary = "Instance metadata", responses((status = 200, description = "OK", body = Object), crate::api::responses::ErrorResponses))]
async fn metadata(_: Authenticated, State(state): State<AppState>) -> Json<Value> {
    Json(version_json(&state))
}
