//! The endpoints clients call while logging in: `/user`, `/version`, `/metadata`.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::users::{admin_entity, user_entity, Detail, UserEntity};
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(current_user))
        .routes(routes!(version))
        .routes(routes!(metadata))
}

#[utoipa::path(get, operation_id = "instance_current_user", path = "/api/v4/user", tag = "instance", summary = "The token's user", responses((status = 200, description = "OK", body = UserEntity), crate::api::responses::ErrorResponses))]
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

/// GitLab's `/version` and `/metadata` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionEntity {
    /// The GitLab version this server speaks for (`GITLAB_VERSION`).
    version: String,
    /// This server's own version.
    revision: &'static str,
    kas: KasEntity,
    enterprise: bool,
}

/// The agent server, which this server does not run.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct KasEntity {
    enabled: bool,
    external_url: Option<String>,
    external_k8s_proxy_url: Option<String>,
    version: Option<String>,
}

fn version_entity(state: &AppState) -> VersionEntity {
    VersionEntity {
        version: state.config.gitlab_version.clone(),
        revision: env!("CARGO_PKG_VERSION"),
        kas: KasEntity {
            enabled: false,
            external_url: None,
            external_k8s_proxy_url: None,
            version: None,
        },
        enterprise: true,
    }
}

#[utoipa::path(get, operation_id = "instance_version", path = "/api/v4/version", tag = "instance", summary = "The GitLab version this server reports", responses((status = 200, description = "OK", body = VersionEntity), crate::api::responses::ErrorResponses))]
async fn version(_: Authenticated, State(state): State<AppState>) -> Json<VersionEntity> {
    Json(version_entity(&state))
}

#[utoipa::path(get, operation_id = "instance_metadata", path = "/api/v4/metadata", tag = "instance", summary = "Instance metadata", responses((status = 200, description = "OK", body = VersionEntity), crate::api::responses::ErrorResponses))]
async fn metadata(_: Authenticated, State(state): State<AppState>) -> Json<VersionEntity> {
    Json(version_entity(&state))
}
