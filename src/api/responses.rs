//! The error responses every REST operation documents, declared once: GitLab answers each
//! refusal with a small JSON object (`{"message": …}` or `{"error": …}`).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

/// `201 Created` with `body` as JSON: what every REST create answers.
pub fn created(body: impl Serialize) -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::CREATED, axum::Json(body)).into_response()
}

/// 400, 401, 403, 404, 409 and 422, each a JSON object.
pub struct ErrorResponses;

impl IntoResponses for ErrorResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            (400, "Bad request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not found"),
            (409, "Conflict"),
            (422, "Unprocessable"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let object = ObjectBuilder::new().schema_type(Type::Object);
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(object)).build(),
                )
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .chain(std::iter::once((
            // GitLab's throttles answer `Retry later` as plain text, with their `RateLimit-*`
            // headers; `GET /users/:id`'s own limit answers JSON (docs/operations.md).
            "429".to_string(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("Too many requests: a rate limit is reached")
                    .content(
                        "text/plain",
                        ContentBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .build(),
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                            .build(),
                    )
                    .build(),
            ),
        )))
        .collect()
    }
}

/// A bare `{"message": …}` answer (GitLab's `202 Accepted` for work done later).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Message {
    #[schema(example = "202 Accepted")]
    pub message: &'static str,
}

impl Message {
    pub const ACCEPTED: Message = Message {
        message: "202 Accepted",
    };
}

/// `{"success": true}`: a recount was queued.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}
