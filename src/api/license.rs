//! The seven License endpoints (`ee/lib/api/license.rb`), all admin-only.

use crate::api::responses::created;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{IdParam, Params};
use super::responses::Success;
use crate::auth::Admin;
use crate::domain::licenses::LicenseEntity;
use crate::error::{ApiError, ApiResult, NOT_FOUND};
use crate::services::license_changes::{self, UploadError};
use crate::services::licenses;
use crate::state::AppState;

/// `DELETE` reaches GitLab's RecordNotFound handler, which words it differently.
const DELETE_NOT_FOUND: &str = "404 Not found";
/// Our answer for an export with no current license (GitLab raises a 500 there).
const NO_LICENSE_FOR_EXPORT: &str = "404 License Not Found";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(current, create))
        .routes(routes!(list))
        // Declared before `/license/{id}`, as in GitLab, so they never read as an id; the
        // alias without `.csv` is the same operation, documented once.
        .routes(routes!(usage_export))
        .route("/api/v4/license/usage_export", get(usage_export))
        .routes(routes!(show, destroy))
        .routes(routes!(refresh_billable_users))
}

fn json_bytes(body: bytes::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[utoipa::path(get, operation_id = "license_current", path = "/api/v4/license", tag = "license", summary = "The current license, or null", responses((status = 200, description = "OK", body = Option<LicenseEntity>), crate::api::responses::ErrorResponses))]
async fn current(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    Ok(json_bytes(licenses::current_license_json(&state).await?))
}

#[utoipa::path(get, operation_id = "license_list", path = "/api/v4/licenses", tag = "license", summary = "Every license, newest first", responses((status = 200, description = "OK", body = [LicenseEntity]), crate::api::responses::ErrorResponses))]
async fn list(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(licenses::list(&state).await?).into_response())
}

#[utoipa::path(get, operation_id = "license_show", path = "/api/v4/license/{id}", tag = "license", summary = "One license", params(("id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = LicenseEntity), crate::api::responses::ErrorResponses))]
async fn show(_: Admin, id: IdParam, State(state): State<AppState>) -> ApiResult<Response> {
    let IdParam(Some(id)) = id else {
        return Err(ApiError::NotFound(NOT_FOUND));
    };
    match licenses::find(&state, id).await? {
        Some(entity) => Ok(Json(entity).into_response()),
        None => Err(ApiError::NotFound(NOT_FOUND)),
    }
}

#[utoipa::path(post, operation_id = "license_create", path = "/api/v4/license", tag = "license", summary = "Add a license (`license`: the key)", request_body(content = crate::api::bodies::LicenseUpload, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = LicenseEntity), crate::api::responses::ErrorResponses))]
async fn create(
    Admin(actor): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let data = params.required_string("license")?;
    match license_changes::upload(&state, &actor, &data).await {
        Ok(entity) => Ok(created(entity)),
        Err(UploadError::Rejected(rejected)) => Err(ApiError::BadRequest(rejected.0)),
        Err(UploadError::Store(error)) => Err(error.into()),
    }
}

#[utoipa::path(delete, operation_id = "license_destroy", path = "/api/v4/license/{id}", tag = "license", summary = "Delete a license", params(("id" = String, Path, description = "An ID")), responses((status = 204, description = "No content"), crate::api::responses::ErrorResponses))]
async fn destroy(
    Admin(actor): Admin,
    id: IdParam,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let IdParam(Some(id)) = id else {
        return Err(ApiError::NotFound(DELETE_NOT_FOUND));
    };
    if license_changes::delete(&state, &actor, id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(DELETE_NOT_FOUND))
    }
}

#[utoipa::path(put, operation_id = "license_refresh_billable_users", path = "/api/v4/license/{id}/refresh_billable_users", tag = "license", summary = "Recount billable users", params(("id" = String, Path, description = "An ID")), responses((status = 202, description = "Accepted", body = Success), crate::api::responses::ErrorResponses))]
async fn refresh_billable_users(
    _: Admin,
    id: IdParam,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let IdParam(Some(id)) = id else {
        return Err(ApiError::NotFound(NOT_FOUND));
    };
    match licenses::refresh_billable_users(&state, id).await? {
        Some(()) => Ok((StatusCode::ACCEPTED, Json(Success { success: true })).into_response()),
        None => Err(ApiError::NotFound(NOT_FOUND)),
    }
}

#[utoipa::path(get, operation_id = "license_usage_export", path = "/api/v4/license/usage_export.csv", tag = "license", summary = "Usage export (CSV)", responses((status = 200, description = "OK", body = String, content_type = "text/csv"), crate::api::responses::ErrorResponses))]
async fn usage_export(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    match licenses::usage_csv(&state).await? {
        Some(csv) => Ok(([(header::CONTENT_TYPE, "text/csv")], csv).into_response()),
        None => Err(ApiError::NotFound(NO_LICENSE_FOR_EXPORT)),
    }
}
