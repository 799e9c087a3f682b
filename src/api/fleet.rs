//! The fleet: this server's extension for several GitLab instances under one license view,
//! under `/api/v4/-/fleet/` (administrators only; OpenAPI tag `fleet`; docs/fleet.md).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::ListRequest;
use super::params::Params;
use super::responses::created;
use crate::auth::Admin;
use crate::config::Secret;
use crate::domain::cursors;
use crate::error::{ApiError, ApiResult};
use crate::services::fleet::{
    self, FleetError, FleetSummary, ImportReport, InstanceEntity, InstanceUpdate, PeopleQuery,
    PersonEntry,
};
use crate::state::AppState;

/// The OpenAPI tag of the fleet's routes.
pub const TAG: &str = "fleet";
const NOT_FOUND: &str = "404 Fleet instance Not Found";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, destroy))
        .routes(routes!(sync))
        .routes(routes!(import))
        .routes(routes!(summary))
        .routes(routes!(people))
        .routes(routes!(people_csv))
}

fn fleet_error(error: FleetError) -> ApiError {
    match error {
        FleetError::NotFound => ApiError::NotFound(NOT_FOUND),
        FleetError::Invalid(field, message) => ApiError::FieldInvalid(field, message),
        FleetError::Conflict(message) => ApiError::Message(StatusCode::CONFLICT, message),
        FleetError::Secrets(message) => ApiError::Internal(message),
        FleetError::Store(error) => error.into(),
    }
}

async fn find(state: &AppState, id: &str) -> ApiResult<crate::store::FleetInstance> {
    fleet::find(state, id).await.map_err(fleet_error)
}

#[utoipa::path(get, operation_id = "fleet_instances_list", path = "/api/v4/-/fleet/instances", tag = TAG, summary = "The watched GitLab instances (extension)", description = "Every registered instance with its version, license, billable users and how its last sync ended. Tokens are never shown (`token_set`).", responses((status = 200, description = "OK", body = [InstanceEntity]), crate::api::responses::ErrorResponses))]
async fn list(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(fleet::instances(&state).await?).into_response())
}

#[utoipa::path(post, operation_id = "fleet_instances_create", path = "/api/v4/-/fleet/instances", tag = TAG, summary = "Watch a GitLab instance (extension)", description = "Registers an instance by name, base URL (http or https) and an administrator's personal access token (`read_api` is enough). The token is stored encrypted with the server's secrets key and never returned. Syncs run hourly (`FLEET_SYNC_INTERVAL_MINUTES`); `POST …/sync` runs one now.", request_body(content = crate::api::bodies::FleetInstanceCreate, description = "As JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = InstanceEntity), crate::api::responses::ErrorResponses))]
async fn create(
    Admin(actor): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["name", "url", "token"])?;
    let name = params.required_string("name")?;
    let url = params.required_string("url")?;
    let token = Secret::new(params.required_string("token")?);
    let instance = fleet::create(&state, &actor, &name, &url, &token)
        .await
        .map_err(fleet_error)?;
    Ok(created(fleet::entity(&instance)))
}

#[utoipa::path(get, operation_id = "fleet_instances_show", path = "/api/v4/-/fleet/instances/{id}", tag = TAG, summary = "One watched instance (extension)", params(("id" = String, Path, description = "The instance's ID or name")), responses((status = 200, description = "OK", body = InstanceEntity), crate::api::responses::ErrorResponses))]
async fn show(
    _: Admin,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let instance = find(&state, &id).await?;
    Ok(Json(fleet::entity(&instance)).into_response())
}

#[utoipa::path(put, operation_id = "fleet_instances_update", path = "/api/v4/-/fleet/instances/{id}", tag = TAG, summary = "Change a watched instance (extension)", description = "What is given changes: `name`, `url`, `token` (a new token replaces the stored one).", params(("id" = String, Path, description = "The instance's ID or name")), request_body(content = crate::api::bodies::FleetInstanceUpdate, description = "As JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = InstanceEntity), crate::api::responses::ErrorResponses))]
async fn update(
    Admin(actor): Admin,
    Path(id): Path<String>,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let changes = InstanceUpdate {
        name: params.optional_string("name")?,
        url: params.optional_string("url")?,
        token: params.optional_string("token")?.map(Secret::new),
    };
    let instance = find(&state, &id).await?;
    let instance = fleet::update(&state, &actor, &instance, &changes)
        .await
        .map_err(fleet_error)?;
    Ok(Json(fleet::entity(&instance)).into_response())
}

#[utoipa::path(delete, operation_id = "fleet_instances_destroy", path = "/api/v4/-/fleet/instances/{id}", tag = TAG, summary = "Stop watching an instance (extension)", description = "Removes the instance, its token and its users; the fleet's figures are recomputed without it.", params(("id" = String, Path, description = "The instance's ID or name")), responses((status = 204, description = "No content"), crate::api::responses::ErrorResponses))]
async fn destroy(
    Admin(actor): Admin,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let instance = find(&state, &id).await?;
    fleet::remove(&state, &actor, &instance)
        .await
        .map_err(fleet_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, operation_id = "fleet_instances_sync", path = "/api/v4/-/fleet/instances/{id}/sync", tag = TAG, summary = "Sync an instance now (extension)", description = "Queues a sync (a durable job, run once across replicas); 202 with the instance, whose `last_sync.status` is `queued` until a worker takes it. The previous snapshot answers until the new one is complete.", params(("id" = String, Path, description = "The instance's ID or name")), responses((status = 202, description = "Accepted", body = InstanceEntity), crate::api::responses::ErrorResponses))]
async fn sync(
    Admin(actor): Admin,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let instance = find(&state, &id).await?;
    let instance = fleet::request_sync(&state, &actor, &instance)
        .await
        .map_err(fleet_error)?;
    Ok((StatusCode::ACCEPTED, Json(fleet::entity(&instance))).into_response())
}

#[utoipa::path(post, operation_id = "fleet_import", path = "/api/v4/-/fleet/imports", tag = TAG, summary = "Import an offline instance (extension)", description = "For air-gapped instances: `data` holds what `GET /api/v4/users` (as an administrator, every page) and `GET /api/v4/license` return, concatenated or one JSON document per line (docs/fleet.md has the curl recipe). The instance `name` is created offline when new. All or nothing, like a sync. Through the API a file is at most 1 MiB; `gitlab-license-server fleet import NAME FILE` takes any size.", request_body(content = crate::api::bodies::FleetImport, description = "As JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = ImportReport), crate::api::responses::ErrorResponses))]
async fn import(
    Admin(actor): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["name", "data"])?;
    let name = params.required_string("name")?;
    let data = params.required_string("data")?;
    let report = fleet::import(&state, &actor, &name, &data)
        .await
        .map_err(fleet_error)?;
    Ok(created(report))
}

#[utoipa::path(get, operation_id = "fleet_summary", path = "/api/v4/-/fleet/summary", tag = TAG, summary = "Unique billable people across the fleet (extension)", description = "Each person counted once across instances (matched by a shared identity, then by e-mail address), the largest instance, whether every other instance's billable users are a subset of it (GitLab's multi-instance licensing assumes so), how many people break that, the overlap of each pair of instances, and each instance's figures and last sync. Computed when a snapshot changes.", responses((status = 200, description = "OK", body = FleetSummary), crate::api::responses::ErrorResponses))]
async fn summary(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(fleet::summary(&state).await?).into_response())
}

/// The people list's filters.
fn people_query(params: &Params) -> Result<PeopleQuery, ApiError> {
    Ok(PeopleQuery {
        instance: params.optional_string("instance")?,
        billable: params.optional_bool("billable")?,
        outside_largest: params.optional_bool("outside_largest")?,
    })
}

/// A people cursor: the key the page ended at.
fn people_cursor(key: &str) -> String {
    let mut fields = serde_json::Map::new();
    fields.insert("person".into(), serde_json::Value::String(key.to_string()));
    cursors::encode(fields)
}

#[utoipa::path(get, operation_id = "fleet_people", path = "/api/v4/-/fleet/people", tag = TAG, summary = "Every person across the fleet (extension)", description = "Each person with their accounts per instance, in person-key order. Keyset pages: a `Link` header with rel=next carries the cursor; no totals.", params(("instance" = Option<String>, Query, description = "Only people with an account on this instance (ID or name)"), ("billable" = Option<bool>, Query, description = "Only people billable somewhere (true) or nowhere (false)"), ("outside_largest" = Option<bool>, Query, description = "true: the people who break the subset assumption — billable somewhere but absent from, or not billable on, the largest instance"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("cursor" = Option<String>, Query, description = "The cursor from the previous page's next link")), responses((status = 200, description = "OK", body = [PersonEntry]), crate::api::responses::ErrorResponses))]
async fn people(_: Admin, State(state): State<AppState>, list: ListRequest) -> ApiResult<Response> {
    let query = people_query(&list.params)?;
    let after = match list.params.optional_string("cursor")? {
        None => String::new(),
        Some(cursor) => cursors::decode(&cursor)
            .and_then(|fields| fields.get("person")?.as_str().map(str::to_string))
            .ok_or_else(|| ApiError::invalid("cursor"))?,
    };
    let prepared = fleet::prepare_people(&state, &query)
        .await
        .map_err(fleet_error)?;
    let page = prepared.page(&state, &after, list.per_page()).await?;
    let headers = list.keyset_cursor_headers(
        page.next_after.as_deref().map(people_cursor),
        &state.config.external_url,
    );
    Ok((headers, Json(page.people)).into_response())
}

#[utoipa::path(get, operation_id = "fleet_people_csv", path = "/api/v4/-/fleet/people.csv", tag = TAG, summary = "Every person across the fleet, as CSV (extension)", description = "The whole list with the same filters (written as it is read): person, username, name, billable, outside_largest, and the instances each is billable on and present on.", params(("instance" = Option<String>, Query, description = "ID or name"), ("billable" = Option<bool>, Query, description = "Billable somewhere"), ("outside_largest" = Option<bool>, Query, description = "Outside the largest instance")), responses((status = 200, description = "OK", content_type = "text/csv", body = String), crate::api::responses::ErrorResponses))]
async fn people_csv(
    _: Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let query = people_query(&params)?;
    let prepared = fleet::prepare_people(&state, &query)
        .await
        .map_err(fleet_error)?;
    Ok(crate::body::csv_download(
        "fleet_people.csv",
        Body::from_stream(prepared.csv(state.clone())),
    ))
}
