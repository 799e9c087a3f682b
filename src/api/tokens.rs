//! Personal access tokens: `/users/:id/personal_access_tokens` and `/personal_access_tokens`.

use crate::api::responses::created;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::ListRequest;
use super::params::{IdParam, NumericId, Params};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::auth::{self, Admin, ApiUser, Principal, Scope};
use crate::domain::licenses::timestamp_text;
use crate::error::{ApiError, ApiResult};
use crate::policy::{authorize, AuthError, Need};
use crate::services::tokens::{self, RotateError, TokenError};
use crate::state::AppState;
use crate::store::{TokenFilter, TokenRow};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(show_self, revoke_self))
        .routes(routes!(rotate_self))
        .routes(routes!(show, revoke))
        .routes(routes!(rotate))
}

/// The caller of a rotation, as the policy says for `need` — and GitLab's reuse detection
/// first: a revoked token used to rotate has every token rotated from it revoked before the
/// usual 401 (`AuthFinders#revoke_token_family`).
async fn rotation_caller(
    parts: &Parts,
    state: &AppState,
    need: Need,
) -> Result<Principal, ApiError> {
    let record = auth::lookup_token(parts, state).await?;
    match authorize(Arc::clone(&record), auth::policy_settings(state), need) {
        Ok(principal) => {
            auth::record_use(state, &principal.token).await;
            Ok(principal)
        }
        Err(AuthError::Revoked) => {
            tokens::revoke_family(state, &record).await?;
            Err(ApiError::TokenRevoked)
        }
        Err(refusal) => Err(auth::refusal_error(refusal, state)),
    }
}

/// `POST /personal_access_tokens/:id/rotate`'s caller: an `api` token.
struct Rotating(Principal);

impl FromRequestParts<AppState> for Rotating {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        rotation_caller(parts, state, Need::Write).await.map(Self)
    }
}

/// `POST /personal_access_tokens/self/rotate`'s caller: an `api` or `self_rotate` token.
struct RotatingSelf(Principal);

impl FromRequestParts<AppState> for RotatingSelf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let need = Need::WriteWith {
            scopes: &[Scope::SelfRotate],
            names: "api self_rotate",
        };
        rotation_caller(parts, state, need).await.map(Self)
    }
}

/// The optional `expires_at` (`YYYY-MM-DD`; anything else is Grape's `expires_at is invalid`).
fn expiry_param(params: &Params) -> Result<Option<NaiveDate>, ApiError> {
    params
        .optional_string("expires_at")?
        .map(|text| {
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .map_err(|_| ApiError::invalid("expires_at"))
        })
        .transpose()
}

/// GitLab's token entity (17.x–18.x field order).
#[derive(Debug, Clone, Serialize, ToSchema)]
struct TokenEntity {
    id: i64,
    name: String,
    revoked: bool,
    created_at: String,
    description: Option<String>,
    #[schema(example = json!(["api"]))]
    scopes: Vec<String>,
    user_id: i64,
    last_used_at: Option<String>,
    active: bool,
    /// `YYYY-MM-DD`.
    expires_at: Option<String>,
}

/// A token as created: the entity and, this once, its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct CreatedToken {
    #[serde(flatten)]
    entity: TokenEntity,
    token: String,
}

fn token_entity(token: &TokenRow, today: NaiveDate) -> TokenEntity {
    let active = !token.revoked && token.expires_at.is_none_or(|expires_at| expires_at > today);
    TokenEntity {
        id: token.id,
        name: token.name.clone(),
        revoked: token.revoked,
        created_at: timestamp_text(token.created_at),
        description: None,
        scopes: token.scopes.names().to_vec(),
        user_id: token.user_id,
        last_used_at: token.last_used_at.map(timestamp_text),
        active,
        expires_at: token
            .expires_at
            .map(|day| day.format("%Y-%m-%d").to_string()),
    }
}

/// Scopes as an array or a comma-separated string.
fn scopes(params: &Params) -> Result<Vec<String>, ApiError> {
    match params.0.get("scopes") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::invalid("scopes"))
            })
            .collect(),
        Some(Value::String(text)) => Ok(text
            .split(',')
            .map(|scope| scope.trim().to_string())
            .filter(|scope| !scope.is_empty())
            .collect()),
        _ => Err(ApiError::invalid("scopes")),
    }
}

#[utoipa::path(post, operation_id = "tokens_create", path = "/api/v4/users/{id}/personal_access_tokens", tag = "tokens", summary = "Create a personal access token for a user", params(("id" = String, Path, description = "An ID")), request_body(content = crate::api::bodies::TokenCreate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = CreatedToken), crate::api::responses::ErrorResponses))]
async fn create(
    Admin(actor): Admin,
    id: NumericId,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["name", "scopes"])?;
    let name = params.required_string("name")?;
    let scopes = scopes(&params)?;
    let expires_at = expiry_param(&params)?;
    let user_id = id.or_not_found("404 User Not Found")?;
    match tokens::create_for(&state, &actor, user_id, &name, &scopes, expires_at).await {
        Ok((row, value)) => {
            let entity = token_entity(&row, state.clock.today());
            Ok(created(CreatedToken {
                entity,
                token: value,
            }))
        }
        Err(TokenError::UserNotFound) => Err(ApiError::NotFound("404 User Not Found")),
        Err(TokenError::InvalidParameter(message)) => Err(ApiError::InvalidParameter(message)),
        Err(TokenError::Unprocessable(message)) => {
            Err(ApiError::Message(StatusCode::UNPROCESSABLE_ENTITY, message))
        }
        Err(TokenError::Store(error)) => Err(error.into()),
    }
}

#[utoipa::path(get, operation_id = "tokens_list", path = "/api/v4/personal_access_tokens", tag = "tokens", summary = "List personal access tokens", params(("page" = Option<i64>, Query, description = "Page number (from 1)"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("user_id" = Option<i64>, Query), ("state" = Option<String>, Query, description = "active or inactive"), ("revoked" = Option<bool>, Query)), responses((status = 200, description = "OK", body = [TokenEntity]), crate::api::responses::ErrorResponses))]
async fn list(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    list: ListRequest,
) -> ApiResult<Response> {
    let (params, page) = (&list.params, list.page);
    let requested_user = params.optional_integer("user_id")?;
    // Administrators see every token; everybody else only their own.
    let user_id = if actor.admin {
        requested_user
    } else {
        match requested_user {
            Some(id) if id != actor.user().id => return Err(ApiError::Unauthorized),
            _ => Some(actor.user().id),
        }
    };
    let active = match params
        .optional_choice("state", &["active", "inactive"])?
        .as_deref()
    {
        Some("active") => Some(true),
        Some(_) => Some(false),
        None => None,
    };
    let filter = TokenFilter {
        user_id,
        revoked: params.optional_bool("revoked")?,
        active,
    };
    let today = state.clock.today();
    let listed = state
        .store
        .list_tokens(&filter, today, page.offset(), page.per_page)
        .await?;
    Ok(list.answer(&listed, &state.config.external_url, |row| {
        token_entity(row, today)
    }))
}

/// A token the caller may see: any for administrators, their own otherwise.
async fn visible_token(
    state: &AppState,
    actor: &crate::auth::Principal,
    id: IdParam,
    missing: &'static str,
) -> ApiResult<TokenRow> {
    let row = match id.0 {
        Some(id) => state.store.find_token_by_id(id).await?,
        None => None,
    };
    match row {
        Some(row) if actor.admin || row.user_id == actor.user().id => Ok(row),
        Some(_) => Err(ApiError::Unauthorized),
        None if actor.admin => Err(ApiError::NotFound(missing)),
        None => Err(ApiError::Unauthorized),
    }
}

#[utoipa::path(get, operation_id = "tokens_show", path = "/api/v4/personal_access_tokens/{id}", tag = "tokens", summary = "One token", params(("id" = String, Path, description = "An ID")), responses((status = 200, description = "OK", body = TokenEntity), crate::api::responses::ErrorResponses))]
async fn show(
    ApiUser(actor): ApiUser,
    id: IdParam,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let row = visible_token(&state, &actor, id, "404 Not Found").await?;
    Ok(Json(token_entity(&row, state.clock.today())).into_response())
}

#[utoipa::path(delete, operation_id = "tokens_revoke", path = "/api/v4/personal_access_tokens/{id}", tag = "tokens", summary = "Revoke a token", params(("id" = String, Path, description = "An ID")), responses((status = 204, description = "No content"), crate::api::responses::ErrorResponses))]
async fn revoke(
    ApiUser(actor): ApiUser,
    id: IdParam,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let row = visible_token(&state, &actor, id, "404 Not found").await?;
    if tokens::revoke(&state, actor.user(), &row).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::BadRequest("400 Bad request".into()))
    }
}

#[utoipa::path(get, operation_id = "tokens_show_self", path = "/api/v4/personal_access_tokens/self", tag = "tokens", summary = "The token used", responses((status = 200, description = "OK", body = TokenEntity), crate::api::responses::ErrorResponses))]
async fn show_self(ApiUser(actor): ApiUser, State(state): State<AppState>) -> ApiResult<Response> {
    let row = state
        .store
        .find_token_by_id(actor.token.token_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(token_entity(&row, state.clock.today())).into_response())
}

#[utoipa::path(delete, operation_id = "tokens_revoke_self", path = "/api/v4/personal_access_tokens/self", tag = "tokens", summary = "Revoke the token used", responses((status = 204, description = "No content"), crate::api::responses::ErrorResponses))]
async fn revoke_self(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let row = state
        .store
        .find_token_by_id(actor.token.token_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    tokens::revoke(&state, actor.user(), &row).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A rotation's answer: GitLab's token entity with the new secret (200), or its 400s.
async fn rotated(
    state: &AppState,
    actor: &Principal,
    token: &TokenRow,
    expires_at: Option<NaiveDate>,
) -> ApiResult<Response> {
    match tokens::rotate(state, actor, token, expires_at).await {
        Ok((row, value)) => Ok(Json(CreatedToken {
            entity: token_entity(&row, state.clock.today()),
            token: value,
        })
        .into_response()),
        Err(RotateError::AlreadyRevoked) => Err(ApiError::BadRequest(
            "400 Bad request - Token already revoked".into(),
        )),
        Err(RotateError::Invalid(reason)) => {
            Err(ApiError::BadRequest(format!("400 Bad request - {reason}")))
        }
        Err(RotateError::Store(error)) => Err(error.into()),
    }
}

#[utoipa::path(post, operation_id = "tokens_rotate", path = "/api/v4/personal_access_tokens/{id}/rotate", tag = "tokens", summary = "Rotate a token: revoke it and make its successor", params(("id" = String, Path, description = "An ID")), request_body(content = crate::api::bodies::TokenRotate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "The successor, with its value", body = CreatedToken), crate::api::responses::ErrorResponses))]
async fn rotate(
    Rotating(actor): Rotating,
    id: IdParam,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let expires_at = expiry_param(&params)?;
    let row = visible_token(&state, &actor, id, "404 Not Found").await?;
    rotated(&state, &actor, &row, expires_at).await
}

#[utoipa::path(post, operation_id = "tokens_rotate_self", path = "/api/v4/personal_access_tokens/self/rotate", tag = "tokens", summary = "Rotate the token used (scope api or self_rotate)", request_body(content = crate::api::bodies::TokenRotate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "The successor, with its value", body = CreatedToken), crate::api::responses::ErrorResponses))]
async fn rotate_self(
    RotatingSelf(actor): RotatingSelf,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let expires_at = expiry_param(&params)?;
    let row = state
        .store
        .find_token_by_id(actor.token.token_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    rotated(&state, &actor, &row, expires_at).await
}
