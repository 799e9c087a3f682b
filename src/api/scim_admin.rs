//! The instance SCIM token and the seat links of SCIM groups: this server's administrator
//! extension under `/api/v4/-/scim/` (OpenAPI tag `scim`; docs/scim.md). GitLab makes the
//! token on its Admin > Settings page only; scripts get the same here.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::Params;
use crate::auth::Admin;
use crate::domain::licenses::timestamp_text;
use crate::error::{ApiError, ApiResult};
use crate::services::scim::{self, GroupSeats, LinkError, ScimError};
use crate::state::AppState;

/// The OpenAPI tag of these routes.
pub const TAG: &str = "scim";
const GROUP_NOT_FOUND: &str = "404 SCIM group Not Found";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token_status, generate_token))
        .routes(routes!(reset_token))
        .routes(routes!(groups))
        .routes(routes!(link_group))
}

/// The instance SCIM token as administrators see it: whether there is one, never its value
/// (shown once, when made).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenStatus {
    pub token_set: bool,
    pub created_at: Option<String>,
    /// What identity providers call the base URL or tenant URL.
    pub scim_api_url: String,
}

/// A token just made: the only time its value is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    pub token: String,
    pub created_at: String,
    pub scim_api_url: String,
}

fn scim_api_url(state: &AppState) -> String {
    format!("{}{}", state.config.external_url, super::scim::BASE)
}

fn scim_failure(error: ScimError) -> ApiError {
    match error {
        ScimError::NotFound(_) => ApiError::NotFound(GROUP_NOT_FOUND),
        ScimError::Conflict(message) => ApiError::Message(StatusCode::CONFLICT, message),
        ScimError::Invalid(message) => ApiError::BadRequest(message),
        ScimError::Store(error) => error.into(),
    }
}

#[utoipa::path(get, operation_id = "scim_token_status", path = "/api/v4/-/scim/token", tag = TAG, summary = "Whether the instance SCIM token exists (extension)", description = "Never the token itself: it is shown once, when generated or reset.", responses((status = 200, description = "OK", body = TokenStatus), crate::api::responses::ErrorResponses))]
async fn token_status(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let created_at = scim::token_created_at(&state).await.map_err(scim_failure)?;
    Ok(Json(TokenStatus {
        token_set: created_at.is_some(),
        created_at: created_at.map(timestamp_text),
        scim_api_url: scim_api_url(&state),
    })
    .into_response())
}

async fn made(
    state: &AppState,
    admin: &crate::policy::AdminPrincipal,
    reset: bool,
) -> ApiResult<Response> {
    match scim::generate_token(state, admin, reset).await.map_err(scim_failure)? {
        Some(token) => Ok((
            StatusCode::CREATED,
            Json(NewToken {
                token,
                created_at: timestamp_text(state.clock.now()),
                scim_api_url: scim_api_url(state),
            }),
        )
            .into_response()),
        None => Err(ApiError::Message(
            StatusCode::CONFLICT,
            "409 Conflict - The instance SCIM token exists already: reset it (POST /api/v4/-/scim/token/reset) to get a new one".into(),
        )),
    }
}

#[utoipa::path(post, operation_id = "scim_token_generate", path = "/api/v4/-/scim/token", tag = TAG, summary = "Generate the instance SCIM token (extension)", description = "The first token only (409 when one exists, as GitLab then offers only a reset). The answer is the one time the token (`glsoat-…`) is shown; it is stored as a digest.", responses((status = 201, description = "Created", body = NewToken), crate::api::responses::ErrorResponses))]
async fn generate_token(Admin(admin): Admin, State(state): State<AppState>) -> ApiResult<Response> {
    made(&state, &admin, false).await
}

#[utoipa::path(post, operation_id = "scim_token_reset", path = "/api/v4/-/scim/token/reset", tag = TAG, summary = "Reset the instance SCIM token (extension)", description = "A new token replaces the old one at once (the identity provider needs the new one). Shown once.", responses((status = 201, description = "Created", body = NewToken), crate::api::responses::ErrorResponses))]
async fn reset_token(Admin(admin): Admin, State(state): State<AppState>) -> ApiResult<Response> {
    made(&state, &admin, true).await
}

#[utoipa::path(get, operation_id = "scim_groups_seats", path = "/api/v4/-/scim/groups", tag = TAG, summary = "SCIM groups and the GitLab Duo seats they hold (extension)", description = "Each group pushed by the identity provider (newest first, at most 500), the purchase it is linked to, and the members who may hold a seat but got none because the seats ran out.", responses((status = 200, description = "OK", body = [GroupSeats]), crate::api::responses::ErrorResponses))]
async fn groups(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(scim::all_group_seats(&state).await.map_err(scim_failure)?).into_response())
}

#[utoipa::path(put, operation_id = "scim_group_link", path = "/api/v4/-/scim/groups/{id}", tag = TAG, summary = "Link a SCIM group to a GitLab Duo purchase (extension)", description = "`add_on_purchase_id`: the members get seats of that purchase while seats last (through the bulk seat service; who got none is listed and sent as a `scim_group_seats_short` hook event), and lose them when they leave the group or are deprovisioned. Empty or null unlinks the group, freeing the seats it gave.", params(("id" = String, Path, description = "The group's SCIM id")), request_body(content = crate::api::bodies::ScimGroupLink, description = "As JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = GroupSeats), crate::api::responses::ErrorResponses))]
async fn link_group(
    Admin(admin): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let purchase_id = params.optional_integer("add_on_purchase_id")?;
    let seats: GroupSeats = scim::link_group(&state, &admin, &id, purchase_id)
        .await
        .map_err(|error| match error {
            LinkError::PurchaseNotFound => ApiError::NotFound("404 Add-on purchase Not Found"),
            LinkError::NotDuo => ApiError::FieldInvalid(
                "add_on_purchase_id",
                "is not a GitLab Duo add-on: its seats are not assigned to users".into(),
            ),
            LinkError::Scim(error) => scim_failure(error),
        })?;
    Ok(Json(seats).into_response())
}
