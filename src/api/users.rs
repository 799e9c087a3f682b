//! `/api/v4/users`: the user directory in GitLab's shapes (admin-only here).

use crate::api::responses::created;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{cursor_id, ListRequest};
use super::params::{NumericId, Params};
use crate::auth::{Admin, Authenticated};
use crate::domain::licenses::timestamp_text;
use crate::domain::moderation::{Action, Answer};
use crate::domain::users::{UserState, UserType};
use crate::error::{ApiError, ApiResult};
use crate::services::users::{self, UserError};
use crate::state::AppState;
use crate::store::{NewUser, User, UserChanges, UserFilter};

const USER_NOT_FOUND: &str = "404 User Not Found";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, destroy))
        .routes(routes!(moderate))
}

/// Which of GitLab's user entities to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `UserPublic`: what a user sees of themselves.
    Public,
    /// `UserWithAdmin`: lists and writes by administrators.
    WithAdmin,
    /// `UserDetailsWithAdmin`: one user, read by an administrator.
    DetailsWithAdmin,
}

/// GitLab's user entity, fields in its order: `UserPublic`, then what `UserWithAdmin` and
/// `UserDetailsWithAdmin` add. Fields this server has no data for are GitLab's defaults.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserEntity {
    pub id: i64,
    pub username: String,
    pub name: String,
    #[schema(value_type = String, example = "active")]
    pub state: UserState,
    pub locked: bool,
    pub avatar_url: Option<String>,
    pub web_url: String,
    created_at: String,
    bio: &'static str,
    location: &'static str,
    public_email: Option<String>,
    skype: &'static str,
    linkedin: &'static str,
    twitter: &'static str,
    discord: &'static str,
    website_url: &'static str,
    organization: &'static str,
    job_title: &'static str,
    pronouns: Option<String>,
    bot: bool,
    work_information: Option<String>,
    followers: i64,
    following: i64,
    local_time: Option<String>,
    last_sign_in_at: Option<String>,
    confirmed_at: String,
    last_activity_on: Option<String>,
    email: String,
    theme_id: i64,
    color_scheme_id: i64,
    projects_limit: i64,
    current_sign_in_at: Option<String>,
    #[schema(value_type = Vec<Object>)]
    identities: Vec<Value>,
    can_create_group: bool,
    can_create_project: bool,
    two_factor_enabled: bool,
    external: bool,
    private_profile: bool,
    commit_email: String,
    preferred_language: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    admin: Option<AdminFields>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    details: Option<AdminDetails>,
}

/// What `UserWithAdmin` adds (also shown to an administrator reading themselves); absent from
/// other users' `UserPublic`, hence no field is required in the schema.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct AdminFields {
    #[schema(required = false)]
    is_admin: bool,
    note: Option<String>,
    namespace_id: Option<i64>,
    created_by: Option<i64>,
    email_reset_offered_at: Option<String>,
    /// EE's field of the administrators' entities.
    #[serde(skip_serializing_if = "Option::is_none")]
    using_license_seat: Option<bool>,
}

/// What `UserDetailsWithAdmin` adds (one user read by an administrator).
#[derive(Debug, Clone, Serialize, ToSchema)]
struct AdminDetails {
    #[schema(required = false)]
    highest_role: i64,
    current_sign_in_ip: Option<String>,
    last_sign_in_ip: Option<String>,
    #[schema(required = false)]
    sign_in_count: i64,
}

/// GitLab's user entity for `user` at `detail`. `using_license_seat` is given where an
/// administrator reads.
pub fn user_entity(
    user: &User,
    external_url: &str,
    detail: Detail,
    using_license_seat: Option<bool>,
) -> UserEntity {
    let created_at = timestamp_text(user.created_at);
    let admin = (detail != Detail::Public || user.admin).then_some(AdminFields {
        is_admin: user.admin,
        note: None,
        namespace_id: None,
        created_by: None,
        email_reset_offered_at: None,
        using_license_seat,
    });
    let details = (detail == Detail::DetailsWithAdmin).then_some(AdminDetails {
        highest_role: 0,
        current_sign_in_ip: None,
        last_sign_in_ip: None,
        sign_in_count: 0,
    });
    UserEntity {
        id: user.id,
        username: user.username.clone(),
        name: user.name.clone(),
        state: user.state,
        locked: false,
        avatar_url: None,
        web_url: format!("{external_url}/{}", user.username),
        created_at: created_at.clone(),
        bio: "",
        location: "",
        public_email: None,
        skype: "",
        linkedin: "",
        twitter: "",
        discord: "",
        website_url: "",
        organization: "",
        job_title: "",
        pronouns: None,
        bot: user.user_type.is_bot(),
        work_information: None,
        followers: 0,
        following: 0,
        local_time: None,
        last_sign_in_at: None,
        confirmed_at: created_at,
        last_activity_on: user
            .last_activity_on
            .map(|day| day.format("%Y-%m-%d").to_string()),
        email: user.email.clone(),
        theme_id: 1,
        color_scheme_id: 1,
        projects_limit: 100_000,
        current_sign_in_at: None,
        identities: Vec::new(),
        can_create_group: true,
        can_create_project: true,
        two_factor_enabled: false,
        external: false,
        private_profile: false,
        commit_email: user.email.clone(),
        preferred_language: "en",
        admin,
        details,
    }
}

/// Administrators' entities of `users`, with whether each occupies a license seat (one query
/// for all of them).
pub async fn admin_entities(
    state: &AppState,
    users: &[User],
    detail: Detail,
) -> ApiResult<Vec<UserEntity>> {
    let ids: Vec<i64> = users.iter().map(|user| user.id).collect();
    let seats = crate::services::licenses::seat_users(state, &ids).await?;
    Ok(users
        .iter()
        .map(|user| {
            user_entity(
                user,
                &state.config.external_url,
                detail,
                Some(seats.contains(&user.id)),
            )
        })
        .collect())
}

/// One administrator's entity (see [`admin_entities`]).
pub async fn admin_entity(state: &AppState, user: &User, detail: Detail) -> ApiResult<UserEntity> {
    let seats = crate::services::licenses::seat_users(state, &[user.id]).await?;
    Ok(user_entity(
        user,
        &state.config.external_url,
        detail,
        Some(seats.contains(&user.id)),
    ))
}

fn user_error(error: UserError) -> ApiError {
    match error {
        UserError::NotFound => ApiError::NotFound(USER_NOT_FOUND),
        UserError::Conflict(message) => ApiError::Message(StatusCode::CONFLICT, message),
        UserError::Invalid(field, message) => ApiError::FieldInvalid(field, message),
        UserError::Refused(status, message) => ApiError::Message(
            StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            message,
        ),
        // GitLab's API has no answer of its own here (its create service's error carries no
        // user, and the endpoint then fails): the service's message, as a refusal.
        UserError::NoSeats => ApiError::Message(
            StatusCode::FORBIDDEN,
            crate::services::users::NO_SEATS_AVAILABLE.into(),
        ),
        UserError::Store(error) => error.into(),
    }
}

/// The `user_type` parameter: one of GitLab's types, or GitLab's validation error.
fn user_type(params: &Params) -> ApiResult<Option<UserType>> {
    params
        .optional_string("user_type")?
        .map(|name| {
            UserType::from_name(&name).ok_or_else(|| {
                ApiError::FieldInvalid("user_type", "is not included in the list".into())
            })
        })
        .transpose()
}

const ORDER_COLUMNS: &[&str] = &["id", "name", "username", "created_at", "updated_at"];

#[utoipa::path(get, operation_id = "users_list", path = "/api/v4/users", tag = "users", summary = "List users", params(("page" = Option<i64>, Query, description = "Page number (from 1)"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("search" = Option<String>, Query, description = "Part of a username, name or email"), ("username" = Option<String>, Query), ("active" = Option<bool>, Query), ("blocked" = Option<bool>, Query), ("humans" = Option<bool>, Query), ("exclude_internal" = Option<bool>, Query), ("order_by" = Option<String>, Query, description = "id, name, username, created_at or updated_at"), ("sort" = Option<String>, Query, description = "asc or desc"), ("pagination" = Option<String>, Query, description = "keyset for cursor pages (with order_by=id): a Link header with rel=next carries the cursor"), ("cursor" = Option<String>, Query, description = "The cursor of a keyset page, from the previous page's next link")), responses((status = 200, description = "OK", body = [UserEntity]), crate::api::responses::ErrorResponses))]
async fn list(_: Admin, State(state): State<AppState>, list: ListRequest) -> ApiResult<Response> {
    let (params, page) = (&list.params, list.page);
    let filter = UserFilter {
        search: params
            .optional_string("search")?
            .filter(|text| !text.is_empty()),
        username: params.optional_string("username")?,
        active: params.optional_bool("active")?.unwrap_or(false),
        blocked: params.optional_bool("blocked")?.unwrap_or(false),
        humans: params.optional_bool("humans")?.unwrap_or(false),
        exclude_internal: params.optional_bool("exclude_internal")?.unwrap_or(false),
    };
    let column = params.optional_choice("order_by", ORDER_COLUMNS)?;
    let column = ORDER_COLUMNS
        .iter()
        .find(|known| Some(**known) == column.as_deref())
        .copied()
        .unwrap_or("id");
    let direction = match params.optional_choice("sort", &["asc", "desc"])?.as_deref() {
        Some("asc") => "ASC",
        _ => "DESC",
    };
    if params.optional_string("pagination")?.as_deref() == Some("keyset") {
        return keyset_list(&state, &list, &filter, (column, direction)).await;
    }
    let listed = state
        .store
        .list_users(&filter, (column, direction), page.offset(), page.per_page)
        .await?;
    let body = admin_entities(&state, &listed.rows, Detail::WithAdmin).await?;
    let headers = list.headers(&listed, &state.config.external_url);
    Ok((headers, Json(body)).into_response())
}

/// `pagination=keyset`: GitLab's cursor pages, for `order_by=id` (the order whose index
/// serves every depth). Pages carry only a `next` link with the cursor; no counts.
async fn keyset_list(
    state: &AppState,
    list: &ListRequest,
    filter: &UserFilter,
    (column, direction): (&'static str, &'static str),
) -> ApiResult<Response> {
    if column != "id" {
        return Err(ApiError::Message(
            StatusCode::METHOD_NOT_ALLOWED,
            "Keyset pagination is not yet available for this type of request".into(),
        ));
    }
    let after = match list.params.optional_string("cursor")? {
        None => None,
        Some(cursor) => Some(cursor_id(&cursor).ok_or_else(|| ApiError::invalid("cursor"))?),
    };
    let (users, more) = state
        .store
        .list_users_by_id(filter, direction == "ASC", after, list.per_page())
        .await?;
    let next_after = users.last().filter(|_| more).map(|user| user.id);
    let body = admin_entities(state, &users, Detail::WithAdmin).await?;
    let headers = list.keyset_headers(next_after, &state.config.external_url);
    Ok((headers, Json(body)).into_response())
}

#[utoipa::path(get, operation_id = "users_show", path = "/api/v4/users/{id}", tag = "users", summary = "One user", description = "Administrators get GitLab's `UserDetailsWithAdmin`; anyone else its `User` entity (the fields up to `local_time`, and `is_followed`), within GitLab's `users_get_by_id` limit (300 per 10 minutes by default; over it `429 {\"message\":{\"error\":…}}`).", params(("id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = UserEntity), crate::api::responses::ErrorResponses))]
async fn show(
    Authenticated(actor): Authenticated,
    id: NumericId,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    if !actor.admin && !crate::services::throttles::users_get_by_id_allowed(&state, &actor).await? {
        return Err(ApiError::RateLimited);
    }
    let user = match id.0 {
        Some(id) => state.store.find_user(id).await?,
        None => None,
    }
    .ok_or(ApiError::NotFound(USER_NOT_FOUND))?;
    if actor.admin {
        return Ok(
            Json(admin_entity(&state, &user, Detail::DetailsWithAdmin).await?).into_response(),
        );
    }
    Ok(Json(others_entity(&user, &state.config.external_url)).into_response())
}

/// GitLab's `User` entity: what anyone signed in sees of another user — `UserPublic`'s fields
/// up to `local_time`, with `is_followed` (this server has no follows).
fn others_entity(user: &User, external_url: &str) -> Value {
    let entity = user_entity(user, external_url, Detail::Public, None);
    let mut shown = serde_json::Map::new();
    if let Ok(Value::Object(fields)) = serde_json::to_value(&entity) {
        for (key, value) in fields {
            if key == "local_time" {
                shown.insert("is_followed".into(), Value::Bool(false));
                shown.insert(key, value);
                break;
            }
            shown.insert(key, value);
        }
    }
    Value::Object(shown)
}

#[utoipa::path(post, operation_id = "users_create", path = "/api/v4/users", tag = "users", summary = "Create a user", request_body(content = crate::api::bodies::UserCreate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = UserEntity), crate::api::responses::ErrorResponses))]
async fn create(
    Admin(actor): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["email", "name", "username"])?;
    let user_type = user_type(&params)?.unwrap_or(UserType::Human);
    let new = NewUser {
        username: params.required_string("username")?,
        name: params.required_string("name")?,
        email: params.required_string("email")?,
        state: crate::domain::users::UserState::Active,
        user_type,
        admin: params.optional_bool("admin")?.unwrap_or(false),
    };
    let user = users::create(&state, &actor, new)
        .await
        .map_err(user_error)?;
    Ok(created(
        admin_entity(&state, &user, Detail::WithAdmin).await?,
    ))
}

#[utoipa::path(put, operation_id = "users_update", path = "/api/v4/users/{id}", tag = "users", summary = "Change a user", params(("id" = String, Path, description = "An ID")), request_body(content = crate::api::bodies::UserUpdate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = UserEntity), crate::api::responses::ErrorResponses))]
async fn update(
    Admin(actor): Admin,
    id: NumericId,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let changes = UserChanges {
        username: params.optional_string("username")?,
        name: params.optional_string("name")?,
        email: params.optional_string("email")?,
        admin: params.optional_bool("admin")?,
        user_type: user_type(&params)?,
    };
    let id = id.or_not_found(USER_NOT_FOUND)?;
    let user = users::update(&state, &actor, id, changes)
        .await
        .map_err(user_error)?;
    Ok(Json(admin_entity(&state, &user, Detail::WithAdmin).await?).into_response())
}

#[utoipa::path(delete, operation_id = "users_destroy", path = "/api/v4/users/{id}", tag = "users", summary = "Delete a user", params(("id" = String, Path, description = "An ID")), responses((status = 204, description = "No content"), crate::api::responses::ErrorResponses))]
async fn destroy(
    Admin(actor): Admin,
    id: NumericId,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let hard_delete = params.optional_bool("hard_delete")?.unwrap_or(false);
    users::delete(
        &state,
        &actor,
        id.or_not_found(USER_NOT_FOUND)?,
        hard_delete,
    )
    .await
    .map_err(user_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, operation_id = "users_moderate", path = "/api/v4/users/{id}/{action}", tag = "users", summary = "Block, unblock, deactivate, activate, ban, unban, approve or reject a user", params(("id" = String, Path, description = "An ID"), ("action" = String, Path, description = "block, unblock, deactivate, activate, ban, unban, approve or reject")), responses((status = 201, description = "Created", body = Answer), (status = 200, description = "Rejected: the user waiting for approval is removed", body = Answer), crate::api::responses::ErrorResponses))]
async fn moderate(
    Admin(actor): Admin,
    id: NumericId,
    Path((_, action)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    if action == "reject" {
        let id = id.or_not_found(USER_NOT_FOUND)?;
        users::reject(&state, &actor, id)
            .await
            .map_err(user_error)?;
        return Ok((StatusCode::OK, Json(Answer::SUCCESS)).into_response());
    }
    let action = Action::from_path(&action).ok_or(ApiError::RouteNotFound)?;
    let id = id.or_not_found(USER_NOT_FOUND)?;
    let today = state.clock.today();
    let body = users::moderate(&state, &actor, id, action, today)
        .await
        .map_err(user_error)?;
    Ok(created(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada(admin: bool) -> User {
        User {
            id: 7,
            username: "ada".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            state: UserState::Active,
            user_type: UserType::Human,
            admin,
            created_at: chrono::DateTime::UNIX_EPOCH,
            last_activity_on: None,
        }
    }

    fn keys(entity: &UserEntity) -> Vec<String> {
        match serde_json::to_value(entity).expect("json") {
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn fields_come_in_gitlab_order_with_each_detail_level() {
        let public = keys(&user_entity(&ada(false), "http://x", Detail::Public, None));
        assert_eq!(public.first().map(String::as_str), Some("id"));
        assert_eq!(public[3..7], ["state", "locked", "avatar_url", "web_url"]);
        assert_eq!(
            public.last().map(String::as_str),
            Some("preferred_language")
        );
        assert_eq!(public.len(), 40);
        let admin = keys(&user_entity(
            &ada(false),
            "http://x",
            Detail::WithAdmin,
            Some(true),
        ));
        assert_eq!(
            admin[40..],
            [
                "is_admin",
                "note",
                "namespace_id",
                "created_by",
                "email_reset_offered_at",
                "using_license_seat"
            ]
        );
        let details = keys(&user_entity(
            &ada(true),
            "http://x",
            Detail::DetailsWithAdmin,
            None,
        ));
        assert_eq!(
            details[45..],
            [
                "highest_role",
                "current_sign_in_ip",
                "last_sign_in_ip",
                "sign_in_count"
            ]
        );
        // An administrator reading themselves sees the administrator's fields.
        let own = keys(&user_entity(&ada(true), "http://x", Detail::Public, None));
        assert_eq!(own.len(), 45);
    }
}
