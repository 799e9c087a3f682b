//! Request bodies, for the OpenAPI document only: the handlers read GitLab-style parameters
//! (JSON, a form or the query string) through `Params`; these types say which ones.
#![allow(dead_code)]

use serde::Deserialize;
use utoipa::ToSchema;

/// `POST /license`.
#[derive(ToSchema)]
pub struct LicenseUpload {
    /// The license key, as received (armored or bare Base64).
    pub license: String,
}

/// `POST /users` (no password: there is no sign-in here).
#[derive(ToSchema)]
pub struct UserCreate {
    pub username: String,
    pub name: String,
    pub email: String,
    pub admin: Option<bool>,
    /// `human` (default), `service_user`, a bot type, …
    pub user_type: Option<String>,
}

/// `PUT /users/:id`: what is given changes.
#[derive(ToSchema)]
pub struct UserUpdate {
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub admin: Option<bool>,
    pub user_type: Option<String>,
}

/// `POST /groups`.
#[derive(ToSchema)]
pub struct GroupCreate {
    pub name: String,
    pub path: String,
    pub description: Option<String>,
    /// `private` (default), `internal` or `public`.
    pub visibility: Option<String>,
}

/// `POST /groups/:id/members`.
#[derive(ToSchema)]
pub struct MemberAdd {
    pub user_id: i64,
    /// 5, 10, 15, 20, 30, 40 or 50.
    pub access_level: i32,
}

/// `PUT /groups/:id/members/:user_id`.
#[derive(ToSchema)]
pub struct MemberUpdate {
    pub access_level: i32,
}

/// `POST /users/:id/personal_access_tokens`.
#[derive(ToSchema)]
pub struct TokenCreate {
    pub name: String,
    /// `api`, `read_api`, `read_user`, `admin_mode`, …
    pub scopes: Vec<String>,
    /// `YYYY-MM-DD`.
    pub expires_at: Option<String>,
}

/// `POST /personal_access_tokens/:id/rotate` and `/self/rotate`.
#[derive(ToSchema)]
pub struct TokenRotate {
    /// `YYYY-MM-DD`; without it a week from today while expiry is required, else none.
    pub expires_at: Option<String>,
}

/// A system hook's settings besides its URL.
#[derive(ToSchema, Deserialize)]
pub struct HookOptions {
    /// Sent as `X-Gitlab-Token`.
    pub token: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub push_events: Option<bool>,
    pub tag_push_events: Option<bool>,
    pub merge_requests_events: Option<bool>,
    pub repository_update_events: Option<bool>,
    pub enable_ssl_verification: Option<bool>,
}

/// `POST /hooks`.
#[derive(ToSchema, Deserialize)]
pub struct HookCreate {
    /// http or https.
    pub url: String,
    #[serde(flatten)]
    pub options: HookOptions,
}

/// `PUT /hooks/:id`: what is given changes.
#[derive(ToSchema, Deserialize)]
pub struct HookUpdate {
    pub url: Option<String>,
    #[serde(flatten)]
    pub options: HookOptions,
}

/// `POST /namespaces/:id/subscription_add_on_purchase/:add_on_name`.
#[derive(ToSchema)]
pub struct AddOnPurchaseCreate {
    /// Seats, at least 1.
    pub quantity: i64,
    /// `YYYY-MM-DD`.
    pub started_on: String,
    /// `YYYY-MM-DD` (a purchase is active until the day before).
    pub expires_on: String,
    /// The purchase reference, e.g. the subscription name.
    pub purchase_xid: String,
    pub trial: Option<bool>,
}

/// `PUT /namespaces/:id/subscription_add_on_purchase/:add_on_name`: the dates are required,
/// what else is given changes.
#[derive(ToSchema)]
pub struct AddOnPurchaseUpdate {
    pub quantity: Option<i64>,
    pub started_on: String,
    pub expires_on: String,
    pub purchase_xid: Option<String>,
    pub trial: Option<bool>,
}

/// `POST /-/fleet/instances`.
#[derive(ToSchema)]
pub struct FleetInstanceCreate {
    /// Letters, digits, `.`, `_`, `-` (1–100).
    pub name: String,
    /// The instance's base URL, `http` or `https` (e.g. `https://gitlab.example.com`).
    pub url: String,
    /// An administrator's personal access token on that instance (`read_api`); stored
    /// encrypted, never shown.
    pub token: String,
}

/// `PUT /-/fleet/instances/:id`: what is given changes.
#[derive(ToSchema)]
pub struct FleetInstanceUpdate {
    pub name: Option<String>,
    pub url: Option<String>,
    pub token: Option<String>,
}

/// `POST /-/fleet/imports`.
#[derive(ToSchema)]
pub struct FleetImport {
    /// The offline instance's name (created when new).
    pub name: String,
    /// The JSON of `GET /api/v4/users` (every page) and `GET /api/v4/license`, concatenated
    /// or one document per line.
    pub data: String,
}

/// `PUT /-/scim/groups/:id`.
#[derive(ToSchema)]
pub struct ScimGroupLink {
    /// The GitLab Duo add-on purchase whose seats the group's members hold; empty or null
    /// unlinks the group.
    pub add_on_purchase_id: Option<i64>,
}
