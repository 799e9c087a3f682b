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
