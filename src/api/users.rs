//! `/api/v4/users`: the user directory in GitLab's shapes (admin-only here).

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::pagination::Page;
use super::params::{NumericId, Params};
use crate::auth::Admin;
use crate::domain::licenses::timestamp_text;
use crate::domain::users::{is_bot, Action};
use crate::error::{ApiError, ApiResult};
use crate::services::users::{self, UserError};
use crate::state::AppState;
use crate::store::{NewUser, User, UserChanges, UserFilter};

const USER_NOT_FOUND: &str = "404 User Not Found";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v4/users", get(list).post(create))
        .route("/api/v4/users/{id}", get(show).put(update).delete(destroy))
        .route("/api/v4/users/{id}/{action}", post(moderate))
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

/// GitLab's user entity, fields in its order. `using_license_seat` is EE's field of the
/// administrators' entities (`UserWithAdmin`), given where an administrator reads.
pub fn user_entity(
    user: &User,
    external_url: &str,
    detail: Detail,
    using_license_seat: Option<bool>,
) -> Value {
    let created_at = timestamp_text(user.created_at);
    let mut entity = Map::new();
    let mut put = |key: &str, value: Value| {
        entity.insert(key.to_string(), value);
    };
    put("id", json!(user.id));
    put("username", json!(user.username));
    put("name", json!(user.name));
    put("state", json!(user.state));
    put("locked", json!(false));
    put("avatar_url", Value::Null);
    put(
        "web_url",
        json!(format!("{external_url}/{}", user.username)),
    );
    put("created_at", json!(created_at));
    for key in ["bio", "location"] {
        put(key, json!(""));
    }
    put("public_email", Value::Null);
    for key in [
        "skype",
        "linkedin",
        "twitter",
        "discord",
        "website_url",
        "organization",
        "job_title",
    ] {
        put(key, json!(""));
    }
    put("pronouns", Value::Null);
    put("bot", json!(is_bot(&user.user_type)));
    put("work_information", Value::Null);
    put("followers", json!(0));
    put("following", json!(0));
    put("local_time", Value::Null);
    put("last_sign_in_at", Value::Null);
    put("confirmed_at", json!(created_at));
    put(
        "last_activity_on",
        json!(user
            .last_activity_on
            .map(|day| day.format("%Y-%m-%d").to_string())),
    );
    put("email", json!(user.email));
    put("theme_id", json!(1));
    put("color_scheme_id", json!(1));
    put("projects_limit", json!(100_000));
    put("current_sign_in_at", Value::Null);
    put("identities", json!([]));
    put("can_create_group", json!(true));
    put("can_create_project", json!(true));
    put("two_factor_enabled", json!(false));
    put("external", json!(false));
    put("private_profile", json!(false));
    put("commit_email", json!(user.email));
    put("preferred_language", json!("en"));
    if detail != Detail::Public || user.admin {
        put("is_admin", json!(user.admin));
        put("note", Value::Null);
        put("namespace_id", Value::Null);
        put("created_by", Value::Null);
        put("email_reset_offered_at", Value::Null);
        if let Some(seat) = using_license_seat {
            put("using_license_seat", json!(seat));
        }
    }
    if detail == Detail::DetailsWithAdmin {
        put("highest_role", json!(0));
        put("current_sign_in_ip", Value::Null);
        put("last_sign_in_ip", Value::Null);
        put("sign_in_count", json!(0));
    }
    Value::Object(entity)
}

/// Administrators' entities of `users`, with whether each occupies a license seat (one query
/// for all of them).
pub async fn admin_entities(
    state: &AppState,
    users: &[User],
    detail: Detail,
) -> ApiResult<Vec<Value>> {
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
async fn admin_entity(state: &AppState, user: User, detail: Detail) -> ApiResult<Value> {
    Ok(admin_entities(state, &[user], detail)
        .await?
        .pop()
        .unwrap_or_default())
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
        UserError::Store(error) => error.into(),
    }
}

const ORDER_COLUMNS: &[&str] = &["id", "name", "username", "created_at", "updated_at"];

#[utoipa::path(get, operation_id = "users_list", path = "/api/v4/users", tag = "users", summary = "List users", params(("page" = Option<i64>, Query, description = "Page number (from 1)"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("search" = Option<String>, Query, description = "Part of a username, name or email"), ("username" = Option<String>, Query), ("active" = Option<bool>, Query), ("blocked" = Option<bool>, Query), ("humans" = Option<bool>, Query), ("exclude_internal" = Option<bool>, Query), ("order_by" = Option<String>, Query, description = "id, name, username, created_at or updated_at"), ("sort" = Option<String>, Query, description = "asc or desc")), responses((status = 200, description = "OK", body = [Object]), crate::api::responses::ErrorResponses))]
async fn list(
    _: Admin,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    let page = Page::from_params(&params)?;
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
    let (users, total) = state
        .store
        .list_users(&filter, (column, direction), page.offset(), page.per_page)
        .await?;
    let body = admin_entities(&state, &users, Detail::WithAdmin).await?;
    let headers = page.headers(total, &state.config.external_url, &uri, &params);
    Ok((headers, Json(body)).into_response())
}

#[utoipa::path(get, operation_id = "users_show", path = "/api/v4/users/{id}", tag = "users", summary = "One user", params(("id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = Object), crate::api::responses::ErrorResponses))]
async fn show(_: Admin, id: NumericId, State(state): State<AppState>) -> ApiResult<Response> {
    let user = match id.0 {
        Some(id) => state.store.find_user(id).await?,
        None => None,
    }
    .ok_or(ApiError::NotFound(USER_NOT_FOUND))?;
    Ok(Json(admin_entity(&state, user, Detail::DetailsWithAdmin).await?).into_response())
}

#[utoipa::path(post, operation_id = "users_create", path = "/api/v4/users", tag = "users", summary = "Create a user", request_body(content = crate::api::bodies::UserCreate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = Object), crate::api::responses::ErrorResponses))]
async fn create(
    Admin(actor): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["email", "name", "username"])?;
    let user_type = params
        .optional_string("user_type")?
        .unwrap_or_else(|| "human".into());
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
    Ok((
        StatusCode::CREATED,
        Json(admin_entity(&state, user, Detail::WithAdmin).await?),
    )
        .into_response())
}

#[utoipa::path(put, operation_id = "users_update", path = "/api/v4/users/{id}", tag = "users", summary = "Change a user", params(("id" = String, Path, description = "An ID")), request_body(content = crate::api::bodies::UserUpdate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = Object), crate::api::responses::ErrorResponses))]
async fn update(
    Admin(actor): Admin,
    id: NumericId,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let id = id.0.ok_or(ApiError::NotFound(USER_NOT_FOUND))?;
    let changes = UserChanges {
        username: params.optional_string("username")?,
        name: params.optional_string("name")?,
        email: params.optional_string("email")?,
        admin: params.optional_bool("admin")?,
        user_type: params.optional_string("user_type")?,
    };
    let user = users::update(&state, &actor, id, changes)
        .await
        .map_err(user_error)?;
    Ok(Json(admin_entity(&state, user, Detail::WithAdmin).await?).into_response())
}

#[utoipa::path(delete, operation_id = "users_destroy", path = "/api/v4/users/{id}", tag = "users", summary = "Delete a user", params(("id" = String, Path, description = "An ID")), responses((status = 204, description = "No content"), crate::api::responses::ErrorResponses))]
async fn destroy(
    Admin(actor): Admin,
    id: NumericId,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let id = id.0.ok_or(ApiError::NotFound(USER_NOT_FOUND))?;
    let hard_delete = params.optional_bool("hard_delete")?.unwrap_or(false);
    users::delete(&state, &actor, id, hard_delete)
        .await
        .map_err(user_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, operation_id = "users_moderate", path = "/api/v4/users/{id}/{action}", tag = "users", summary = "Block, unblock, deactivate, activate, ban, unban or approve a user", params(("id" = String, Path, description = "An ID"), ("action" = String, Path, description = "block, unblock, deactivate, activate, ban, unban or approve")), responses((status = 201, description = "Created", body = serde_json::Value), crate::api::responses::ErrorResponses))]
async fn moderate(
    Admin(actor): Admin,
    id: NumericId,
    Path((_, action)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let action = Action::from_path(&action).ok_or(ApiError::RouteNotFound)?;
    let id = id.0.ok_or(ApiError::NotFound(USER_NOT_FOUND))?;
    let today = state.clock.today();
    let body = users::moderate(&state, &actor, id, action, today)
        .await
        .map_err(user_error)?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
