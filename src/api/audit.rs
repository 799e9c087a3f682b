//! `GET /api/v4/audit_events`: the audit trail, newest first (admins only).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::ListRequest;
use super::params::{IdParam, Params};
use crate::auth::Admin;
use crate::domain::licenses::timestamp_text;
use crate::error::{ApiError, ApiResult};
use crate::services::audit::{details, ENTITY_TYPES};
use crate::state::AppState;
use crate::store::AuditRow;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
}

/// GitLab's `AuditEvent` entity.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct AuditEventEntity {
    id: i64,
    author_id: i64,
    entity_id: i64,
    #[schema(example = "User")]
    entity_type: String,
    event_name: String,
    /// What changed, as GitLab's `details` hash (author, target, change, …).
    #[schema(value_type = Object)]
    details: Value,
    created_at: String,
}

fn entity(row: &AuditRow) -> AuditEventEntity {
    AuditEventEntity {
        id: row.id,
        author_id: row.author_id,
        entity_id: row.entity_id,
        entity_type: row.entity_type.clone(),
        event_name: row.event_name.clone(),
        details: details(&row.details),
        created_at: timestamp_text(row.created_at),
    }
}

fn date_time(params: &Params, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match params.optional_string(name)? {
        None => Ok(None),
        Some(text) => crate::license_key::dates::parse_date_time(&text)
            .map(|at| Some(at.with_timezone(&Utc)))
            .ok_or_else(|| ApiError::invalid(name)),
    }
}

#[utoipa::path(get, operation_id = "audit_list", path = "/api/v4/audit_events", tag = "audit", summary = "Audit events", params(("page" = Option<i64>, Query, description = "Page number (from 1)"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("entity_type" = Option<String>, Query, description = "User, Group, Project or Gitlab::Audit::InstanceScope"), ("entity_id" = Option<i64>, Query), ("created_after" = Option<String>, Query), ("created_before" = Option<String>, Query)), responses((status = 200, description = "OK", body = [AuditEventEntity]), crate::api::responses::ErrorResponses))]
async fn list(_: Admin, State(state): State<AppState>, list: ListRequest) -> ApiResult<Response> {
    let (params, page) = (&list.params, list.page);
    let entity_type = params.optional_choice("entity_type", ENTITY_TYPES)?;
    let entity_id = params.optional_integer("entity_id")?;
    if entity_id.is_some() && entity_type.is_none() {
        return Err(ApiError::missing("entity_type"));
    }
    let created_after = date_time(params, "created_after")?;
    let created_before = date_time(params, "created_before")?;
    let listed = state
        .store
        .audit_events(
            entity_type.as_deref().map(|kind| (kind, entity_id)),
            created_after,
            created_before,
            page.offset(),
            page.per_page,
        )
        .await?;
    Ok(list.answer(&listed, &state.config.external_url, entity))
}

#[utoipa::path(get, operation_id = "audit_show", path = "/api/v4/audit_events/{id}", tag = "audit", summary = "One audit event", params(("id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = AuditEventEntity), crate::api::responses::ErrorResponses))]
async fn show(_: Admin, id: IdParam, State(state): State<AppState>) -> ApiResult<Response> {
    let row = match id.0 {
        Some(id) => state.store.find_audit_event(id).await?,
        None => None,
    };
    row.map(|row| Json(entity(&row)).into_response())
        .ok_or(ApiError::NotFound("404 Not found"))
}
