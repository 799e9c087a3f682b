//! `/api/v4/hooks`: GitLab's system hooks (admin), plus each hook's delivery log.

use crate::api::responses::created;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{IdParam, Params};
use crate::auth::Admin;
use crate::domain::licenses::timestamp_text;
use crate::error::{ApiError, ApiResult};
use crate::services::hooks;
use crate::state::AppState;
use crate::store::{HookSettings, SystemHook};

const NOT_FOUND: &str = "404 Hook Not Found";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, test, update, destroy))
        .routes(routes!(deliveries))
}

/// GitLab's `Hook` entity for system hooks (the token is never shown).
#[derive(Debug, Clone, Serialize, ToSchema)]
struct HookEntity {
    id: i64,
    url: String,
    name: Option<String>,
    description: Option<String>,
    created_at: String,
    push_events: bool,
    tag_push_events: bool,
    merge_requests_events: bool,
    repository_update_events: bool,
    enable_ssl_verification: bool,
    /// Always empty: this server keeps no URL variables.
    #[schema(value_type = Vec<Object>)]
    url_variables: Vec<Value>,
}

fn hook_entity(hook: &SystemHook) -> HookEntity {
    let settings = &hook.settings;
    HookEntity {
        id: hook.id,
        url: settings.url.clone(),
        name: settings.name.clone(),
        description: settings.description.clone(),
        created_at: timestamp_text(hook.created_at),
        push_events: settings.push_events,
        tag_push_events: settings.tag_push_events,
        merge_requests_events: settings.merge_requests_events,
        repository_update_events: settings.repository_update_events,
        enable_ssl_verification: settings.enable_ssl_verification,
        url_variables: Vec::new(),
    }
}

/// One line of a hook's delivery log.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct DeliveryEntity {
    id: i64,
    event_name: String,
    /// `pending`, `delivered` or `failed`.
    state: String,
    attempts: i32,
    response_status: Option<i32>,
    error: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
}

/// The settings a request gives, over `base` (PUT changes only what it names).
fn settings(params: &Params, base: Option<&HookSettings>) -> ApiResult<HookSettings> {
    let url = match params.optional_string("url")? {
        Some(url) => url,
        None => base
            .map(|hook| hook.url.clone())
            .ok_or_else(|| ApiError::missing("url"))?,
    };
    let valid_url = reqwest::Url::parse(&url)
        .ok()
        .is_some_and(|parsed| matches!(parsed.scheme(), "http" | "https") && parsed.has_host());
    if !valid_url {
        return Err(ApiError::FieldInvalid(
            "url",
            "is blocked: Only allowed schemes are http, https".into(),
        ));
    }
    let flag = |name: &str, current: Option<bool>, default: bool| -> ApiResult<bool> {
        Ok(params.optional_bool(name)?.or(current).unwrap_or(default))
    };
    let text = |name: &str, current: Option<&Option<String>>| -> ApiResult<Option<String>> {
        Ok(match params.optional_string(name)? {
            Some(value) => Some(value),
            None => current.cloned().flatten(),
        })
    };
    Ok(HookSettings {
        url,
        token: text("token", base.map(|hook| &hook.token))?,
        name: text("name", base.map(|hook| &hook.name))?,
        description: text("description", base.map(|hook| &hook.description))?,
        push_events: flag("push_events", base.map(|hook| hook.push_events), true)?,
        tag_push_events: flag(
            "tag_push_events",
            base.map(|hook| hook.tag_push_events),
            false,
        )?,
        merge_requests_events: flag(
            "merge_requests_events",
            base.map(|hook| hook.merge_requests_events),
            false,
        )?,
        repository_update_events: flag(
            "repository_update_events",
            base.map(|hook| hook.repository_update_events),
            false,
        )?,
        enable_ssl_verification: flag(
            "enable_ssl_verification",
            base.map(|hook| hook.enable_ssl_verification),
            true,
        )?,
    })
}

async fn find(state: &AppState, id: IdParam) -> ApiResult<SystemHook> {
    match id.0 {
        Some(id) => state.store.find_hook(id).await?,
        None => None,
    }
    .ok_or(ApiError::NotFound(NOT_FOUND))
}

#[utoipa::path(get, operation_id = "hooks_list", path = "/api/v4/hooks", tag = "hooks", summary = "List system hooks", responses((status = 200, description = "OK", body = [HookEntity]), crate::api::responses::ErrorResponses))]
async fn list(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let hooks: Vec<HookEntity> = state
        .store
        .list_hooks()
        .await?
        .iter()
        .map(hook_entity)
        .collect();
    Ok(Json(hooks).into_response())
}

#[utoipa::path(post, operation_id = "hooks_create", path = "/api/v4/hooks", tag = "hooks", summary = "Add a system hook", request_body(content = crate::api::bodies::HookCreate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = HookEntity), crate::api::responses::ErrorResponses))]
async fn create(
    Admin(actor): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["url"])?;
    let settings = settings(&params, None)?;
    let hook = hooks::create(&state, &actor, &settings)
        .await?
        .ok_or_else(|| ApiError::Internal("the hook was not created".into()))?;
    Ok(created(hook_entity(&hook)))
}

#[utoipa::path(get, operation_id = "hooks_show", path = "/api/v4/hooks/{id}", tag = "hooks", summary = "One system hook", params(("id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = HookEntity), crate::api::responses::ErrorResponses))]
async fn show(_: Admin, id: IdParam, State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(hook_entity(&find(&state, id).await?)).into_response())
}

#[utoipa::path(put, operation_id = "hooks_update", path = "/api/v4/hooks/{id}", tag = "hooks", summary = "Change a system hook", params(("id" = String, Path, description = "An ID")), request_body(content = crate::api::bodies::HookUpdate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = HookEntity), crate::api::responses::ErrorResponses))]
async fn update(
    Admin(actor): Admin,
    id: IdParam,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let existing = find(&state, id).await?;
    let settings = settings(&params, Some(&existing.settings))?;
    let hook = hooks::update(&state, &actor, existing.id, &settings)
        .await?
        .ok_or(ApiError::NotFound(NOT_FOUND))?;
    Ok(Json(hook_entity(&hook)).into_response())
}

#[utoipa::path(delete, operation_id = "hooks_destroy", path = "/api/v4/hooks/{id}", tag = "hooks", summary = "Delete a system hook", params(("id" = String, Path, description = "An ID")), responses((status = 204, description = "No content"), crate::api::responses::ErrorResponses))]
async fn destroy(
    Admin(actor): Admin,
    id: IdParam,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let hook = find(&state, id).await?;
    hooks::delete(&state, &actor, hook.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GitLab's "test system hook": a sample event, sent now; 201 with what was sent.
#[utoipa::path(post, operation_id = "hooks_test", path = "/api/v4/hooks/{id}", tag = "hooks", summary = "Send a test event", params(("id" = String, Path, description = "An ID")), responses((status = 201, description = "Created", body = crate::services::hooks::SampleEvent), crate::api::responses::ErrorResponses))]
async fn test(_: Admin, id: IdParam, State(state): State<AppState>) -> ApiResult<Response> {
    let hook = find(&state, id).await?;
    match hooks::test(&state.outbound, &hook, state.config.limits.hook_timeout).await {
        Ok(payload) => Ok(created(payload)),
        Err(reason) => Err(ApiError::Message(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("422 Unprocessable Entity - {reason}"),
        )),
    }
}

/// The hook's latest deliveries (not in GitLab's API, which shows them in the UI only).
#[utoipa::path(get, operation_id = "hooks_deliveries", path = "/api/v4/hooks/{id}/deliveries", tag = "hooks", summary = "A hook's latest deliveries", params(("id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = [DeliveryEntity]), crate::api::responses::ErrorResponses))]
async fn deliveries(_: Admin, id: IdParam, State(state): State<AppState>) -> ApiResult<Response> {
    let hook = find(&state, id).await?;
    let log: Vec<DeliveryEntity> = state
        .store
        .hook_deliveries(hook.id, 100)
        .await?
        .into_iter()
        .map(|delivery| DeliveryEntity {
            id: delivery.id,
            event_name: delivery.event_name,
            state: delivery.state,
            attempts: delivery.attempts,
            response_status: delivery.response_status,
            error: delivery.last_error,
            created_at: timestamp_text(delivery.created_at),
            delivered_at: delivery.delivered_at.map(timestamp_text),
        })
        .collect();
    Ok(Json(log).into_response())
}
