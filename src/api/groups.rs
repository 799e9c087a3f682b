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
use crate::domain::members::{AccessLevel, BillableMemberSort};
use crate::domain::users::UserState;
use crate::error::{ApiError, ApiResult};
use crate::services::groups::{self, GroupError};
use crate::state::AppState;
use crate::store::{BillableMember, Group, Member, NewGroup, SaveMode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, destroy))
        .routes(routes!(members, add_member))
        .routes(routes!(show_member, update_member, remove_member))
        .routes(routes!(billable_members))
        .routes(routes!(billable_member_memberships))
        .routes(routes!(remove_billable_member))
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
        GroupError::NotBillable => ApiError::NotFound("404 User Not Found"),
        GroupError::NoMemberForUser => {
            ApiError::BadRequest("400 Bad request - No member found for the given user_id".into())
        }
        // GitLab refuses the last owner by raising `Gitlab::Access::AccessDeniedError` in the
        // removal service, whose message is the class name (inferred: GitLab's specs do not
        // show this answer).
        GroupError::LastOwner => {
            ApiError::BadRequest("400 Bad request - Gitlab::Access::AccessDeniedError".into())
        }
        // Inferred: GitLab's members API answers its create service's error as a 400 with
        // the service's message.
        GroupError::NoSeats => {
            ApiError::BadRequest(crate::services::groups::NO_SEATS_MESSAGE.into())
        }
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

/// GitLab's `BillableMember` entity: the user's basic fields (with the primary e-mail, as
/// GitLab shows it to administrators), then why and how they occupy a seat in the group.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct BillableMemberEntity {
    id: i64,
    username: String,
    name: String,
    #[schema(value_type = String, example = "active")]
    state: UserState,
    locked: bool,
    avatar_url: Option<String>,
    web_url: String,
    email: String,
    #[schema(example = "2026-06-01")]
    last_activity_on: Option<String>,
    #[schema(example = "group_member")]
    membership_type: &'static str,
    removable: bool,
    created_at: String,
    is_last_owner: bool,
    /// Sign-ins are not tracked by this server: always null.
    last_login_at: Option<String>,
}

fn billable_member_entity(billable: &BillableMember, external_url: &str) -> BillableMemberEntity {
    let user = &billable.member.user;
    let basic = user_entity(user, external_url, Detail::Public, None);
    BillableMemberEntity {
        id: basic.id,
        username: basic.username,
        name: basic.name,
        state: basic.state,
        locked: basic.locked,
        avatar_url: basic.avatar_url,
        web_url: basic.web_url,
        email: user.email.clone(),
        last_activity_on: user.last_activity_on.map(|day| day.to_string()),
        // Memberships here are direct group memberships (no projects or invited groups).
        membership_type: "group_member",
        removable: true,
        created_at: timestamp_text(user.created_at),
        is_last_owner: billable.is_last_owner,
        last_login_at: None,
    }
}

/// GitLab's access level with its name, as the membership entity shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct AccessLevelDetails {
    #[schema(example = "Developer")]
    string_value: &'static str,
    #[schema(example = 30)]
    integer_value: i32,
    custom_role: Option<serde_json::Value>,
}

/// GitLab's `BillableMembership` entity.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct BillableMembershipEntity {
    id: i64,
    source_id: i64,
    source_full_name: String,
    source_members_url: String,
    created_at: String,
    expires_at: Option<String>,
    access_level: AccessLevelDetails,
}

#[utoipa::path(get, operation_id = "groups_billable_members", path = "/api/v4/groups/{id}/billable_members", tag = "groups", summary = "A group's billable members", description = "The group's members who occupy a license seat: active humans and service users with Guest or above (above Guest on Ultimate). `sort` accepts GitLab's values; as in GitLab, the access-level and joined orders answer in id order.", params(("id" = String, Path, description = "An ID or path"), ("page" = Option<i64>, Query, description = "Page number (from 1)"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("search" = Option<String>, Query, description = "GitLab's user search: part of a name or username (3 characters or more), or a whole e-mail"), ("sort" = Option<String>, Query, description = "id_asc (default), name_asc, name_desc, last_activity_on_asc, last_activity_on_desc, recent_sign_in, oldest_sign_in, access_level_asc, access_level_desc, last_joined, oldest_joined")), responses((status = 200, description = "OK", body = [BillableMemberEntity]), crate::api::responses::ErrorResponses))]
async fn billable_members(
    _: Admin,
    Path(id): Path<String>,
    State(state): State<AppState>,
    list: ListRequest,
) -> ApiResult<Response> {
    let (params, page) = (&list.params, list.page);
    let search = params.optional_string("search")?;
    let mut sorts = vec!["id_asc"];
    sorts.extend(BillableMemberSort::NAMES);
    let sort = params
        .optional_choice("sort", &sorts)?
        .as_deref()
        .and_then(BillableMemberSort::from_name)
        .unwrap_or_default();
    let listed = groups::billable_members(
        &state,
        &id,
        (search.as_deref().filter(|text| !text.is_empty()), sort),
        (page.offset(), page.per_page),
    )
    .await
    .map_err(group_error)?;
    let external_url = &state.config.external_url;
    Ok(list.answer(&listed, external_url, |billable| {
        billable_member_entity(billable, external_url)
    }))
}

#[utoipa::path(get, operation_id = "groups_billable_member_memberships", path = "/api/v4/groups/{id}/billable_members/{user_id}/memberships", tag = "groups", summary = "A billable member's memberships in the group", params(("id" = String, Path, description = "An ID or path"), ("user_id" = String, Path, description = "A user ID")), responses((status = 200, description = "OK", body = [BillableMembershipEntity]), crate::api::responses::ErrorResponses))]
async fn billable_member_memberships(
    _: Admin,
    Path(path): Path<(String, String)>,
    State(state): State<AppState>,
    list: ListRequest,
) -> ApiResult<Response> {
    let user_id = member_path(&path)?;
    let (group, billable) = groups::billable_memberships(&state, &path.0, user_id)
        .await
        .map_err(group_error)?;
    let external_url = &state.config.external_url;
    let member = &billable.member;
    let memberships = crate::store::Listed {
        rows: vec![billable.clone()],
        more: false,
        total: Some(1),
    };
    Ok(
        list.answer(&memberships, external_url, |_| BillableMembershipEntity {
            id: billable.membership_id,
            source_id: group.id,
            source_full_name: group.name.clone(),
            source_members_url: format!("{external_url}/groups/{}/-/group_members", group.path),
            created_at: timestamp_text(member.member_created_at),
            expires_at: None,
            access_level: AccessLevelDetails {
                string_value: member.access_level.name(),
                integer_value: member.access_level.number(),
                custom_role: None,
            },
        }),
    )
}

#[utoipa::path(delete, operation_id = "groups_remove_billable_member", path = "/api/v4/groups/{id}/billable_members/{user_id}", tag = "groups", summary = "Remove a billable member from the group", description = "Removes the user's membership of the group at once (GitLab schedules it). 400 for someone who is not a member and for the group's last owner.", params(("id" = String, Path, description = "An ID or path"), ("user_id" = String, Path, description = "A user ID")), responses((status = 204, description = "No content"), crate::api::responses::ErrorResponses))]
async fn remove_billable_member(
    Admin(actor): Admin,
    Path(path): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let user_id = member_path(&path)?;
    groups::remove_billable_member(&state, &actor, &path.0, user_id)
        .await
        .map_err(group_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
