//! `GET`/`PUT /api/v4/application/settings`: GitLab's settings API for the settings this
//! server acts on (docs/directory-api.md), and the seat controls, which GitLab sets only from
//! its admin form, as this server's extension `GET`/`PUT /api/v4/-/seat_control`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::Params;
use crate::auth::Admin;
use crate::domain::settings::{Given, Kind, SeatControl, Settings, API_KEYS};
use crate::error::{ApiError, ApiResult};
use crate::services::settings::{self, SettingsError};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, update))
        .routes(routes!(seat_control, set_seat_control))
        .routes(routes!(dormant_preview))
        .routes(routes!(dormant_exclusions, set_dormant_exclusions))
}

fn settings_error(error: SettingsError) -> ApiError {
    match error {
        SettingsError::Invalid(errors) => ApiError::ModelInvalid(errors),
        SettingsError::Unlicensed => {
            ApiError::ForbiddenBecause("Seat controls need a Premium or Ultimate license".into())
        }
        SettingsError::Store(error) => error.into(),
    }
}

/// The keys a request gives, coerced as Grape coerces them; a value of the wrong type is
/// GitLab's `{"error":"<key> is invalid"}`.
fn given(params: &Params) -> Result<Vec<(&'static str, Given)>, ApiError> {
    let mut changes = Vec::new();
    for (key, kind) in API_KEYS {
        if !params.0.contains_key(*key) {
            continue;
        }
        let value = match kind {
            // A null boolean changes nothing (the column cannot hold one).
            Kind::Boolean => match params.optional_bool(key)? {
                Some(flag) => Given::Boolean(flag),
                None => continue,
            },
            Kind::Integer => Given::Integer(params.optional_integer(key)?),
            Kind::String => Given::String(params.optional_string(key)?.unwrap_or_default()),
            Kind::Strings => Given::Strings(params.optional_list(key)?.unwrap_or_default()),
        };
        changes.push((*key, value));
    }
    Ok(changes)
}

/// GitLab's `ApplicationSetting` entity, for the keys this server keeps.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationSettings {
    /// GitLab's settings are one row: always 1.
    pub id: i64,
    pub require_admin_approval_after_user_signup: bool,
    pub deactivate_dormant_users: bool,
    pub deactivate_dormant_users_period: i64,
    pub personal_access_token_prefix: String,
    pub require_personal_access_token_expiry: bool,
    pub max_personal_access_token_lifetime: Option<i64>,
    pub throttle_authenticated_api_enabled: bool,
    pub throttle_authenticated_api_requests_per_period: i64,
    pub throttle_authenticated_api_period_in_seconds: i64,
    pub throttle_unauthenticated_api_enabled: bool,
    pub throttle_unauthenticated_api_requests_per_period: i64,
    pub throttle_unauthenticated_api_period_in_seconds: i64,
    pub users_get_by_id_limit: i64,
    pub users_get_by_id_limit_allowlist: Vec<String>,
}

impl From<&Settings> for ApplicationSettings {
    fn from(settings: &Settings) -> Self {
        Self {
            id: 1,
            require_admin_approval_after_user_signup: settings
                .require_admin_approval_after_user_signup,
            deactivate_dormant_users: settings.deactivate_dormant_users,
            deactivate_dormant_users_period: settings.deactivate_dormant_users_period,
            personal_access_token_prefix: settings.personal_access_token_prefix.clone(),
            require_personal_access_token_expiry: settings.require_personal_access_token_expiry,
            max_personal_access_token_lifetime: settings.max_personal_access_token_lifetime,
            throttle_authenticated_api_enabled: settings.throttle_authenticated_api_enabled,
            throttle_authenticated_api_requests_per_period: settings
                .throttle_authenticated_api_requests_per_period,
            throttle_authenticated_api_period_in_seconds: settings
                .throttle_authenticated_api_period_in_seconds,
            throttle_unauthenticated_api_enabled: settings.throttle_unauthenticated_api_enabled,
            throttle_unauthenticated_api_requests_per_period: settings
                .throttle_unauthenticated_api_requests_per_period,
            throttle_unauthenticated_api_period_in_seconds: settings
                .throttle_unauthenticated_api_period_in_seconds,
            users_get_by_id_limit: settings.users_get_by_id_limit,
            users_get_by_id_limit_allowlist: settings.users_get_by_id_limit_allowlist.clone(),
        }
    }
}

#[utoipa::path(get, operation_id = "settings_show", path = "/api/v4/application/settings", tag = "settings", summary = "The application settings this server acts on", description = "GitLab's entity for the settings this server keeps: sign-up approval, dormant-user deactivation, personal access token prefix, expiry and lifetime, and the API throttles; GitLab's defaults until changed.", responses((status = 200, description = "OK", body = ApplicationSettings), crate::api::responses::ErrorResponses))]
async fn show(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let settings = settings::current(&state).await?;
    Ok(Json(ApplicationSettings::from(&*settings)).into_response())
}

#[utoipa::path(put, operation_id = "settings_update", path = "/api/v4/application/settings", tag = "settings", summary = "Change application settings", description = "Any of the keys `GET` shows, validated together as GitLab's model does (400 `{\"message\":{\"<key>\":[…]}}`); keys this server does not act on are accepted and dropped, as GitLab drops keys it does not know. Each changed setting is an audit event. Turning `require_admin_approval_after_user_signup` off approves every user waiting for approval.", request_body(content = Object, description = "JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = ApplicationSettings), crate::api::responses::ErrorResponses))]
async fn update(
    Admin(admin): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    if params.0.is_empty() {
        // Grape's `at_least_one_of`, listing the keys (GitLab lists all of its own).
        let keys: Vec<&str> = API_KEYS.iter().map(|(key, _)| *key).collect();
        return Err(ApiError::InvalidParameter(format!(
            "{} are missing, at least one parameter must be provided",
            keys.join(", ")
        )));
    }
    let changes = given(&params)?;
    let settings = settings::update(&state, &admin, &changes)
        .await
        .map_err(settings_error)?;
    Ok(Json(ApplicationSettings::from(&settings)).into_response())
}

/// The seat controls: off, a user cap, or blocking seat overages.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatControlEntity {
    /// `off`, `user_cap` or `block_overages`.
    pub seat_control: &'static str,
    /// GitLab's number for it: 0, 1 or 2.
    pub seat_control_value: i64,
    /// The user cap (with `user_cap` only).
    pub new_user_signups_cap: Option<i64>,
    /// Whether the current license lets them act (Premium or Ultimate).
    pub licensed: bool,
}

fn seat_control_entity(settings: &Settings, licensed: bool) -> SeatControlEntity {
    SeatControlEntity {
        seat_control: settings.seat_control.as_str(),
        seat_control_value: settings.seat_control.number(),
        new_user_signups_cap: settings.new_user_signups_cap,
        licensed,
    }
}

#[utoipa::path(get, operation_id = "seat_control_show", path = "/api/v4/-/seat_control", tag = "settings", summary = "The seat controls (extension)", description = "GitLab sets the user cap and \"block seat overages\" only on its admin form; this is the same setting for scripts.", responses((status = 200, description = "OK", body = SeatControlEntity), crate::api::responses::ErrorResponses))]
async fn seat_control(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let settings = settings::current(&state).await?;
    let licensed = settings::seat_controls_licensed(&state).await?;
    Ok(Json(seat_control_entity(&settings, licensed)).into_response())
}

#[utoipa::path(put, operation_id = "seat_control_update", path = "/api/v4/-/seat_control", tag = "settings", summary = "Set the seat controls (extension)", description = "`seat_control`: `off`, `user_cap` or `block_overages` (or GitLab's 0, 1, 2); `new_user_signups_cap`: the cap, required with `user_cap` and refused otherwise (GitLab's model rules); `auto_approve_pending_users`: when the cap is raised or removed, approve the users waiting for approval (GitLab's form flag; without it they stay pending). Premium or Ultimate.", request_body(content = Object, description = "JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = SeatControlEntity), crate::api::responses::ErrorResponses))]
async fn set_seat_control(
    Admin(admin): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["seat_control"])?;
    let text = params.required_string("seat_control")?;
    let control = SeatControl::from_name(&text)
        .or_else(|| text.parse::<i64>().ok().and_then(SeatControl::from_number))
        .ok_or_else(|| {
            ApiError::InvalidParameter("seat_control does not have a valid value".into())
        })?;
    let cap = params.optional_integer("new_user_signups_cap")?;
    let approve = params
        .optional_bool("auto_approve_pending_users")?
        .unwrap_or(false);
    let licensed = settings::seat_controls_licensed(&state).await?;
    let settings = settings::set_seat_control(&state, &admin, licensed, control, cap, approve)
        .await
        .map_err(settings_error)?;
    Ok(Json(seat_control_entity(&settings, licensed)).into_response())
}

#[utoipa::path(get, operation_id = "dormant_users_preview", path = "/api/v4/-/dormant_users", tag = "settings", summary = "Who the dormant-user job takes next (extension)", description = "GitLab deactivates users inactive for `deactivate_dormant_users_period` days (and users never active, created at least 7 days ago) on its schedule, `21,42 0-4 * * *` UTC, when `deactivate_dormant_users` is on: active humans and service users, never bots, at most 10,000 a run. This answers who that is now and the seats it frees, before it happens. Writes nothing.", responses((status = 200, description = "OK", body = crate::services::dormant::DormantPreview), crate::api::responses::ErrorResponses))]
async fn dormant_preview(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(crate::services::dormant::preview(&state).await?).into_response())
}

#[utoipa::path(get, operation_id = "dormant_users_exclusions", path = "/api/v4/-/dormant_users/exclusions", tag = "settings", summary = "Users and groups the dormant-user job never deactivates (extension)", responses((status = 200, description = "OK", body = crate::services::dormant::Exclusions), crate::api::responses::ErrorResponses))]
async fn dormant_exclusions(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(crate::services::dormant::exclusions(&state).await?).into_response())
}

#[utoipa::path(put, operation_id = "dormant_users_set_exclusions", path = "/api/v4/-/dormant_users/exclusions", tag = "settings", summary = "Set the users and groups the dormant-user job never deactivates (extension)", description = "`users`: usernames or ids; `groups`: paths or ids (their members are spared). Replaces the list (at most 1,000 entries); a name that matches nothing is `404` and changes nothing. Audited.", request_body(content = Object, description = "JSON, a form or the query string: users, groups", content_type = "application/json"), responses((status = 200, description = "OK", body = crate::services::dormant::Exclusions), crate::api::responses::ErrorResponses))]
async fn set_dormant_exclusions(
    Admin(admin): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let users = params.optional_list("users")?.unwrap_or_default();
    let groups = params.optional_list("groups")?.unwrap_or_default();
    let set = crate::services::dormant::set_exclusions(&state, &admin, &users, &groups)
        .await
        .map_err(|error| match error {
            crate::services::dormant::ExclusionError::NotFound(names) => ApiError::Message(
                axum::http::StatusCode::NOT_FOUND,
                format!("404 Not found: {names}"),
            ),
            crate::services::dormant::ExclusionError::TooMany(max) => {
                ApiError::InvalidParameter(format!("users and groups: at most {max} entries"))
            }
            crate::services::dormant::ExclusionError::Store(error) => error.into(),
        })?;
    Ok(Json(set).into_response())
}
