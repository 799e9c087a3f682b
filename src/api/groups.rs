//! `/api/v4/groups` and their members, in GitLab's shapes (admin-only here).

use crate::api::responses::created;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::ListRequest;
use super::params::Params;
use super::responses::Message;
use super::users::{user_entity, Detail};
use crate::auth::Admin;
use crate::domain::groups::Visibility;
use crate::domain::licenses::timestamp_text;
use crate::domain::members::AccessLevel;
use crate::domain::users::UserState;
use crate::error::{ApiError, ApiResult};
use crate::services::groups::{self, GroupError};
use crate::state::AppState;
use crate::store::{Group, Member, NewGroup, SaveMode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, destroy))
        .routes(routes!(members, add_member))
        .routes(routes!(show_member, update_member, remove_member))
}

/// GitLab's `Group` entity (the fields clients read), in its order; settings this server does
/// not keep are GitLab's defaults.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupEntity {
    pub id: i64,
    pub web_url: String,
    pub name: String,
    pub path: String,
    pub description: String,
    #[schema(value_type = String, example = "private")]
    pub visibility: Visibility,
    share_with_group_lock: bool,
    require_two_factor_authentication: bool,
    two_factor_grace_period: i64,
    project_creation_level: &'static str,
    auto_devops_enabled: Option<bool>,
    subgroup_creation_level: &'static str,
    emails_disabled: bool,
    emails_enabled: bool,
    mentions_disabled: Option<bool>,
    lfs_enabled: bool,
    default_branch: Option<String>,
    avatar_url: Option<String>,
    request_access_enabled: bool,
    full_name: String,
    full_path: String,
    created_at: String,
    parent_id: Option<i64>,
    organization_id: i64,
    shared_runners_setting: &'static str,
}

fn group_entity(group: &Group, external_url: &str) -> GroupEntity {
    GroupEntity {
        id: group.id,
        web_url: format!("{external_url}/groups/{}", group.path),
        name: group.name.clone(),
        path: group.path.clone(),
        description: group.description.clone(),
        visibility: group.visibility,
        share_with_group_lock: false,
        require_two_factor_authentication: false,
        two_factor_grace_period: 48,
        project_creation_level: "developer",
        auto_devops_enabled: None,
        subgroup_creation_level: "maintainer",
        emails_disabled: false,
        emails_enabled: true,
        mentions_disabled: None,
        lfs_enabled: true,
        default_branch: None,
        avatar_url: None,
        request_access_enabled: true,
        full_name: group.name.clone(),
        full_path: group.path.clone(),
        created_at: timestamp_text(group.created_at),
        parent_id: None,
        organization_id: 1,
        shared_runners_setting: "enabled",
    }
}

/// GitLab's `Member` entity: the user's basic fields, then the membership.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct MemberEntity {
    id: i64,
    username: String,
    name: String,
    #[schema(value_type = String, example = "active")]
    state: UserState,
    locked: bool,
    avatar_url: Option<String>,
    web_url: String,
    #[schema(value_type = i64, example = 30)]
    access_level: AccessLevel,
    created_at: String,
    expires_at: Option<String>,
    membership_state: &'static str,
}

fn member_entity(member: &Member, external_url: &str) -> MemberEntity {
    let user = user_entity(&member.user, external_url, Detail::Public, None);
    MemberEntity {
        id: user.id,
        username: user.username,
        name: user.name,
        state: user.state,
        locked: user.locked,
        avatar_url: user.avatar_url,
        web_url: user.web_url,
        access_level: member.access_level,
        created_at: timestamp_text(member.member_created_at),
        expires_at: None,
        membership_state: "active",
    }
}

fn group_error(error: GroupError) -> ApiError {
    match error {
        GroupError::GroupNotFound => ApiError::NotFound("404 Group Not Found"),
        GroupError::UserNotFound => ApiError::NotFound("404 User Not Found"),
        GroupError::MemberNotFound => ApiError::NotFound("404 Not found"),
        GroupError::Invalid(message) => ApiError::BadRequest(message),
        GroupError::BadAccessLevel => {
            ApiError::FieldInvalid("access_level", "is not included in the list".into())
        }
        GroupError::Conflict(message) => ApiError::Message(StatusCode::CONFLICT, message),
        GroupError::Store(error) => error.into(),
    }
}

#[utoipa::path(get, operation_id = "groups_list", path = "/api/v4/groups", tag = "groups", summary = "List groups", params(("page" = Option<i64>, Query, description = "Page number (from 1)"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("search" = Option<String>, Query)), responses((status = 200, description = "OK", body = [GroupEntity]), crate::api::responses::ErrorResponses))]
async fn list(_: Admin, State(state): State<AppState>, list: ListRequest) -> ApiResult<Response> {
    let (params, page) = (&list.params, list.page);
    let search = params.optional_string("search")?;
    let listed = state
        .store
        .list_groups(
            search.as_deref().filter(|text| !text.is_empty()),
            page.offset(),
            page.per_page,
        )
        .await?;
    let external_url = &state.config.external_url;
    Ok(list.answer(&listed, external_url, |group| {
        group_entity(group, external_url)
    }))
}

#[utoipa::path(post, operation_id = "groups_create", path = "/api/v4/groups", tag = "groups", summary = "Create a group", request_body(content = crate::api::bodies::GroupCreate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = GroupEntity), crate::api::responses::ErrorResponses))]
async fn create(
    Admin(actor): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["name", "path"])?;
    let new = NewGroup {
        name: params.required_string("name")?,
        path: params.required_string("path")?,
        description: params.optional_string("description")?.unwrap_or_default(),
        visibility: params
            .optional_choice("visibility", &Visibility::ALL.map(Visibility::as_str))?
            .as_deref()
            .and_then(Visibility::from_name)
            .unwrap_or(Visibility::Private),
    };
    let group = groups::create(&state, &actor, new)
        .await
        .map_err(group_error)?;
    Ok(created(group_entity(&group, &state.config.external_url)))
}

#[utoipa::path(get, operation_id = "groups_show", path = "/api/v4/groups/{id}", tag = "groups", summary = "One group (by ID or path)", params(("id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = GroupEntity), crate::api::responses::ErrorResponses))]
async fn show(
    _: Admin,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let group = groups::find(&state, &id).await.map_err(group_error)?;
    Ok(Json(group_entity(&group, &state.config.external_url)).into_response())
}

#[utoipa::path(delete, operation_id = "groups_destroy", path = "/api/v4/groups/{id}", tag = "groups", summary = "Delete a group", params(("id" = String, Path, description = "An ID")), responses((status = 202, description = "Accepted", body = Message), crate::api::responses::ErrorResponses))]
async fn destroy(
    Admin(actor): Admin,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    groups::delete(&state, &actor, &id)
        .await
        .map_err(group_error)?;
    Ok((StatusCode::ACCEPTED, Json(Message::ACCEPTED)).into_response())
}

#[utoipa::path(get, operation_id = "groups_members", path = "/api/v4/groups/{id}/members", tag = "groups", summary = "A group's members", params(("id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = [MemberEntity]), crate::api::responses::ErrorResponses))]
async fn members(
    _: Admin,
    Path(id): Path<String>,
    State(state): State<AppState>,
    list: ListRequest,
) -> ApiResult<Response> {
    let page = list.page;
    let group = groups::find(&state, &id).await.map_err(group_error)?;
    let listed = state
        .store
        .group_members(group.id, page.offset(), page.per_page)
        .await?;
    let external_url = &state.config.external_url;
    Ok(list.answer(&listed, external_url, |member| {
        member_entity(member, external_url)
    }))
}

#[utoipa::path(post, operation_id = "groups_add_member", path = "/api/v4/groups/{id}/members", tag = "groups", summary = "Add a member", params(("id" = String, Path, description = "An ID")), request_body(content = crate::api::bodies::MemberAdd, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = MemberEntity), crate::api::responses::ErrorResponses))]
async fn add_member(
    Admin(actor): Admin,
    Path(id): Path<String>,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["user_id", "access_level"])?;
    let user_id = params.required_integer("user_id")?;
    let access_level = params.required_integer("access_level")?;
    let member = groups::save_member(
        &state,
        &actor,
        &id,
        (user_id, access_level),
        SaveMode::Create,
    )
    .await
    .map_err(group_error)?;
    Ok(created(member_entity(&member, &state.config.external_url)))
}

fn member_path(path: &(String, String)) -> Result<i64, ApiError> {
    path.1.parse().map_err(|_| ApiError::invalid("user_id"))
}

#[utoipa::path(get, operation_id = "groups_show_member", path = "/api/v4/groups/{id}/members/{user_id}", tag = "groups", summary = "One member", params(("id" = String, Path, description = "An ID"), ("user_id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = MemberEntity), crate::api::responses::ErrorResponses))]
async fn show_member(
    _: Admin,
    Path(path): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let user_id = member_path(&path)?;
    let group = groups::find(&state, &path.0).await.map_err(group_error)?;
    let member = state
        .store
        .group_member(group.id, user_id)
        .await?
        .ok_or(ApiError::NotFound("404 Not found"))?;
    Ok(Json(member_entity(&member, &state.config.external_url)).into_response())
}

#[utoipa::path(put, operation_id = "groups_update_member", path = "/api/v4/groups/{id}/members/{user_id}", tag = "groups", summary = "Change a member's access level", params(("id" = String, Path, description = "An ID"), ("user_id" = String, Path, description = "An ID")), request_body(content = crate::api::bodies::MemberUpdate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = MemberEntity), crate::api::responses::ErrorResponses))]
async fn update_member(
    Admin(actor): Admin,
    Path(path): Path<(String, String)>,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let user_id = member_path(&path)?;
    params.require(&["access_level"])?;
    let access_level = params.required_integer("access_level")?;
    let member = groups::save_member(
        &state,
        &actor,
        &path.0,
        (user_id, access_level),
        SaveMode::Update,
    )
    .await
    .map_err(group_error)?;
    Ok(Json(member_entity(&member, &state.config.external_url)).into_response())
}

#[utoipa::path(delete, operation_id = "groups_remove_member", path = "/api/v4/groups/{id}/members/{user_id}", tag = "groups", summary = "Remove a member", params(("id" = String, Path, description = "An ID"), ("user_id" = String, Path, description = "An ID")), responses((status = 204, description = "No content"), crate::api::responses::ErrorResponses))]
async fn remove_member(
    Admin(actor): Admin,
    Path(path): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let user_id = member_path(&path)?;
    groups::remove_member(&state, &actor, &path.0, user_id)
        .await
        .map_err(group_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
