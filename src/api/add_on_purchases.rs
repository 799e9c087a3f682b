//! `/api/v4/namespaces/:id/subscription_add_on_purchase/:add_on_name` (admin): provisions a
//! group's add-on purchase, GitLab.com style. GitLab marks it deprecated and internal (the
//! billing system calls it); here it is how administrators seed group purchases.

use crate::api::responses::created;
use axum::extract::{Path, State};

use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::Params;
use crate::auth::Admin;
use crate::domain::add_ons::{self, PurchaseTerms};
use crate::error::{ApiError, ApiResult};
use crate::policy::AdminPrincipal;
use crate::services::add_ons as seats;
use crate::state::AppState;
use crate::store::{AddOnPurchase, Group, SaveMode, StoreError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, create, update))
}

const PURCHASE_NOT_FOUND: &str = "404 Subscription Add-on Purchase Not Found";

/// GitLab's REST `AddOnPurchase` entity (it has no `id`).
#[derive(Debug, Clone, Serialize, ToSchema)]
struct PurchaseEntity {
    namespace_id: i64,
    namespace_name: String,
    #[schema(example = "Duo Enterprise")]
    add_on: String,
    quantity: i64,
    /// `YYYY-MM-DD`.
    started_on: String,
    /// `YYYY-MM-DD`.
    expires_on: String,
    purchase_xid: Option<String>,
    trial: bool,
}

fn purchase_entity(purchase: &AddOnPurchase, group: &Group) -> PurchaseEntity {
    PurchaseEntity {
        namespace_id: group.id,
        namespace_name: group.name.clone(),
        add_on: crate::domain::text::titleize(&purchase.add_on_name),
        quantity: purchase.quantity,
        started_on: purchase.started_on.to_string(),
        expires_on: purchase.expires_on.to_string(),
        purchase_xid: purchase.purchase_xid.clone(),
        trial: purchase.trial,
    }
}

/// The namespace and add-on a path names, or GitLab's 404s.
async fn target(state: &AppState, id: &str, add_on_name: &str) -> ApiResult<(Group, &'static str)> {
    let group = match id.parse::<i64>() {
        Ok(_) => state.store.find_group(id).await?,
        Err(_) => None,
    }
    .ok_or(ApiError::NotFound("404 Namespace Not Found"))?;
    let add_on = add_ons::add_on(add_on_name)
        .filter(|add_on| add_on.name == add_on_name)
        .ok_or(ApiError::NotFound("404 Add-on Not Found"))?;
    Ok((group, add_on.name))
}

/// The group's purchase of the add-on, or GitLab's 404.
async fn existing_purchase(
    state: &AppState,
    group: &Group,
    add_on_name: &str,
) -> ApiResult<AddOnPurchase> {
    state
        .store
        .find_add_on_purchase_by_name(Some(group.id), add_on_name)
        .await?
        .ok_or(ApiError::NotFound(PURCHASE_NOT_FOUND))
}

/// Creates (`SaveMode::Create`) or changes (`SaveMode::Update`: only what the request names)
/// the group's purchase of the add-on, checked in GitLab's order: namespace, add-on, the
/// purchase to change, parameters. Only a create can conflict: GitLab's 400 for a purchase
/// that exists.
async fn save(
    state: &AppState,
    actor: &AdminPrincipal,
    (id, add_on_name): &(String, String),
    params: &Params,
    mode: SaveMode,
) -> ApiResult<PurchaseEntity> {
    let (group, add_on_name) = target(state, id, add_on_name).await?;
    let (existing, required): (_, &[&str]) = match mode {
        SaveMode::Create => (
            None,
            &["quantity", "started_on", "expires_on", "purchase_xid"],
        ),
        SaveMode::Update => (
            Some(existing_purchase(state, &group, add_on_name).await?),
            &["started_on", "expires_on"],
        ),
    };
    params.require(required)?;
    let terms = terms(params, existing.as_ref())?;
    let saved = seats::save_group_purchase(state, actor, group.id, add_on_name, &terms, mode)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(message) => ApiError::BadRequest(message),
            other => other.into(),
        })?
        .ok_or(ApiError::NotFound(PURCHASE_NOT_FOUND))?;
    Ok(purchase_entity(&saved, &group))
}

fn optional_date(params: &Params, name: &'static str) -> ApiResult<Option<NaiveDate>> {
    params
        .optional_string(name)?
        .map(|text| {
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| ApiError::invalid(name))
        })
        .transpose()
}

/// The terms a request gives, over `base` (PUT changes only what it names).
fn terms(params: &Params, base: Option<&AddOnPurchase>) -> ApiResult<PurchaseTerms> {
    let quantity = params
        .optional_integer("quantity")?
        .or(base.map(|purchase| purchase.quantity))
        .ok_or_else(|| ApiError::missing("quantity"))?;
    let started_on = optional_date(params, "started_on")?
        .or(base.map(|purchase| purchase.started_on))
        .ok_or_else(|| ApiError::missing("started_on"))?;
    let expires_on = optional_date(params, "expires_on")?
        .or(base.map(|purchase| purchase.expires_on))
        .ok_or_else(|| ApiError::missing("expires_on"))?;
    let purchase_xid = match params.optional_string("purchase_xid")? {
        Some(xid) => Some(xid),
        None => base.and_then(|purchase| purchase.purchase_xid.clone()),
    };
    let trial = params
        .optional_bool("trial")?
        .or(base.map(|purchase| purchase.trial))
        .unwrap_or(false);
    let terms = PurchaseTerms {
        quantity,
        started_on,
        expires_on,
        purchase_xid,
        trial,
    };
    match terms.problem() {
        Some((field, message)) => Err(ApiError::FieldInvalid(field, message.into())),
        None => Ok(terms),
    }
}

#[utoipa::path(get, operation_id = "add_on_purchases_show", path = "/api/v4/namespaces/{id}/subscription_add_on_purchase/{add_on_name}", tag = "add-ons", summary = "A group's add-on purchase", params(("id" = String, Path, description = "An ID"), ("add_on_name" = String, Path, description = "The add-on's internal name, e.g. duo_enterprise")), responses((status = 200, description = "OK", body = PurchaseEntity), crate::api::responses::ErrorResponses))]
async fn show(
    _: Admin,
    State(state): State<AppState>,
    Path((id, add_on_name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (group, add_on_name) = target(&state, &id, &add_on_name).await?;
    let purchase = existing_purchase(&state, &group, add_on_name).await?;
    Ok(Json(purchase_entity(&purchase, &group)).into_response())
}

#[utoipa::path(post, operation_id = "add_on_purchases_create", path = "/api/v4/namespaces/{id}/subscription_add_on_purchase/{add_on_name}", tag = "add-ons", summary = "Create a group's add-on purchase", params(("id" = String, Path, description = "An ID"), ("add_on_name" = String, Path, description = "The add-on's internal name, e.g. duo_enterprise")), request_body(content = crate::api::bodies::AddOnPurchaseCreate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 201, description = "Created", body = PurchaseEntity), crate::api::responses::ErrorResponses))]
async fn create(
    Admin(actor): Admin,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    let entity = save(&state, &actor, &path, &params, SaveMode::Create).await?;
    Ok(created(entity))
}

#[utoipa::path(put, operation_id = "add_on_purchases_update", path = "/api/v4/namespaces/{id}/subscription_add_on_purchase/{add_on_name}", tag = "add-ons", summary = "Change a group's add-on purchase", params(("id" = String, Path, description = "An ID"), ("add_on_name" = String, Path, description = "The add-on's internal name, e.g. duo_enterprise")), request_body(content = crate::api::bodies::AddOnPurchaseUpdate, description = "GitLab's parameters, as JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = PurchaseEntity), crate::api::responses::ErrorResponses))]
async fn update(
    Admin(actor): Admin,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<PurchaseEntity>> {
    save(&state, &actor, &path, &params, SaveMode::Update)
        .await
        .map(Json)
}
