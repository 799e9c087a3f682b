//! The REST routes and their OpenAPI 3.1 document, both generated from the handlers'
//! `#[utoipa::path]` annotations (so a route is declared once), served at `/api/v4/openapi.json` and committed as `openapi.json` (a test keeps
//! the two equal).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use super::{
    add_on_purchases, audit, fleet, groups, health, hooks, instance, license, metrics, scim_admin,
    seats, settings, tokens, users,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gitlab-license-server",
        description = "GitLab's license, user-directory and seat APIs, self-hosted. Authenticate with a personal access token in `PRIVATE-TOKEN`, `Authorization: Bearer`, or the `private_token` / `access_token` query parameters. Errors come in GitLab's shapes: `{\"message\": …}` or `{\"error\": …}`. GitLab Duo seats are managed over GraphQL at `/api/graphql` (schema.graphql)."
    ),
    tags(
        (name = "seat-intelligence", description = "This server's extensions, not GitLab's API: who holds a seat and why, seat alerts, license checks before upload, and GitLab Duo seats in bulk. All under `/api/v4/-/`, a prefix GitLab's API never uses (real GitLab answers 404), administrators only. See docs/seat-intelligence.md."),
        (name = "fleet", description = "This server's extension for several GitLab instances under one license view: instances registered with a token (stored encrypted), synced through GitLab's own REST API or imported from files, and the unique billable people across them — the largest instance, whether the others are subsets of it, and who breaks that. Under `/api/v4/-/fleet/`, administrators only. See docs/fleet.md."),
        (name = "settings", description = "GitLab's application settings API for the settings this server acts on, and this server's extension for the seat controls GitLab sets only on its admin form (`/api/v4/-/seat_control`). See docs/directory-api.md."),
        (name = "scim", description = "This server's extension for the instance SCIM API (`/api/scim/v2/application`, GitLab's, not in this document): the instance SCIM token (generated once, then only reset; shown once) and the SCIM groups that hold GitLab Duo seats. Under `/api/v4/-/scim/`, administrators only. See docs/scim.md."),
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

/// Every documented REST route, each declared once: the router takes its path and method from
/// the handler's `#[utoipa::path]`, and the document collects the same annotations.
pub fn rest_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(license::router())
        .merge(instance::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(users::router())
        .merge(groups::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(hooks::router())
        .merge(seats::router())
        .merge(fleet::router())
        .merge(scim_admin::router())
        .merge(settings::router())
        .merge(add_on_purchases::router())
}

/// The document as pretty JSON (what `openapi.json` holds), built once.
pub fn document() -> String {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut text = rest_routes()
                .into_openapi()
                .to_pretty_json()
                .unwrap_or_else(|_| "{}".into());
            text.push('\n');
            text
        })
        .clone()
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v4/openapi.json",
        get(|| async {
            ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
        }),
    )
}
