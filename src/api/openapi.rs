//! The OpenAPI 3.1 document of the REST API, generated from the handlers' `#[utoipa::path]`
//! annotations, served at `/api/v4/openapi.json` and committed as `openapi.json` (a test keeps
//! the two equal).

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    add_on_purchases, audit, groups, health, hooks, instance, license, metrics, tokens, users,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gitlab-license-server",
        description = "GitLab's license, user-directory and seat APIs, self-hosted. Authenticate with a personal access token in `PRIVATE-TOKEN`, `Authorization: Bearer`, or the `private_token` / `access_token` query parameters. Errors come in GitLab's shapes: `{\"message\": …}` or `{\"error\": …}`. GitLab Duo seats are managed over GraphQL at `/api/graphql` (schema.graphql)."
    ),
    paths(
        license::current, license::list, license::show, license::create, license::destroy,
        license::refresh_billable_users, license::usage_export,
        instance::current_user, instance::version, instance::metadata,
        health::health, health::liveness, health::readiness, metrics::scrape,
        users::list, users::show, users::create, users::update, users::destroy, users::moderate,
        groups::list, groups::create, groups::show, groups::destroy, groups::members,
        groups::add_member, groups::show_member, groups::update_member, groups::remove_member,
        tokens::create, tokens::list, tokens::show, tokens::revoke, tokens::show_self,
        tokens::revoke_self,
        audit::list, audit::show,
        hooks::list, hooks::create, hooks::show, hooks::update, hooks::destroy, hooks::test,
        hooks::deliveries,
        add_on_purchases::show, add_on_purchases::create, add_on_purchases::update,
    ),
    modifiers(&TokenAuth),
    security(("private_token" = []), ("bearer" = [])),
)]
struct ApiDoc;

/// The two ways scripts send a token.
struct TokenAuth;

impl Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "private_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("PRIVATE-TOKEN"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON (what `openapi.json` holds).
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v4/openapi.json",
        get(|| async {
            ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
        }),
    )
}

// Request bodies, for the document only: the handlers read GitLab-style parameters (JSON, a
// form or the query string) through `Params`; these types say which ones.
#[allow(dead_code)]
mod bodies {
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
}

pub use bodies::*;
