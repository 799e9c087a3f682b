//! GitLab's GraphQL API, the part that manages GitLab Duo seats: `POST`/`GET /api/graphql`
//! and the GraphiQL explorer at `/-/graphql-explorer`.

mod explorer;
pub mod gid;
mod mutation;
mod query;
mod response;
mod types;

use async_graphql::{Context, EmptySubscription, Result, Schema};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use self::mutation::MutationRoot;
use self::query::QueryRoot;
use self::response::execution_error;
use crate::auth::{self, SCOPE_API, SCOPE_READ_API};
use crate::services::add_ons::Caller;
use crate::state::AppState;
use crate::store::StoreError;

pub type GitlabSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// GitLab's limits: query size, complexity and depth.
const MAX_QUERY_SIZE: usize = 10_000;
const MAX_COMPLEXITY: usize = 250;
const MAX_DEPTH: usize = 15;

/// What resolvers need: the application and who is asking.
#[derive(Clone)]
pub struct RequestContext {
    pub state: AppState,
    pub caller: Caller,
}

fn request<'a>(ctx: &Context<'a>) -> &'a RequestContext {
    ctx.data_unchecked::<RequestContext>()
}

/// A store failure: logged with its cause, reported without it.
fn internal(error: StoreError) -> async_graphql::Error {
    tracing::error!(%error, "GraphQL resolver failed");
    execution_error("Internal server error")
}

/// The schema, with GitLab's limits.
pub fn schema() -> GitlabSchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_depth(MAX_DEPTH)
        .finish()
}

/// The schema every request runs on, built on the first GraphQL request: servers that never
/// see one (most replicas serve the REST API) do not keep its type registry in memory.
fn shared_schema() -> &'static GitlabSchema {
    static SCHEMA: std::sync::OnceLock<GitlabSchema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(schema)
}

/// The schema as SDL (committed as `schema.graphql`; a test keeps the two equal).
pub fn sdl() -> String {
    schema().sdl()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/graphql", get(execute_get).post(execute_post))
        .merge(explorer::router())
}

/// A GraphQL-shaped error response (`{"errors":[{"message":…}]}`).
fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "errors": [{ "message": message }] })),
    )
        .into_response()
}

/// Who the request is from. A token that does not authenticate (unknown, revoked, expired,
/// without `api`/`read_api`) is HTTP 401 "Invalid token", as on GitLab; no token at all runs
/// the request anonymously.
async fn caller(parts: &Parts, state: &AppState) -> Result<Caller, Response> {
    if auth::request_token(parts).is_none() {
        return Ok(Caller::default());
    }
    let invalid = || error_response(StatusCode::UNAUTHORIZED, "Invalid token");
    let token = auth::lookup_token(parts, state).await.map_err(|error| {
        tracing::info!(?error, "GraphQL request with an unusable token");
        invalid()
    })?;
    if !(token.has_scope(SCOPE_API) || token.has_scope(SCOPE_READ_API)) {
        return Err(invalid());
    }
    if let Some(reason) = auth::account_refusal(&token.user.state, &state.config.external_url) {
        return Err(error_response(StatusCode::FORBIDDEN, &reason));
    }
    auth::record_use(state, &token).await;
    Ok(Caller::from_actor(state, &auth::Actor { token }))
}

async fn execute(
    state: AppState,
    caller: Caller,
    batch: async_graphql::BatchRequest,
    read_only: bool,
) -> Response {
    for request in batch.iter() {
        if request.query.len() > MAX_QUERY_SIZE {
            return error_response(StatusCode::OK, "Query too large");
        }
        // No stored text can contain NUL (PostgreSQL refuses it), so no argument may.
        let variables = serde_json::to_string(&request.variables).unwrap_or_default();
        if request.query.contains('\0') || variables.contains("\\u0000") {
            return error_response(StatusCode::OK, "Arguments may not contain null bytes");
        }
        if read_only && is_mutation(request) {
            return error_response(StatusCode::OK, "Mutations are forbidden in GET requests");
        }
    }
    let operations: Vec<(String, Option<String>)> = batch
        .iter()
        .map(|request| (request.query.clone(), request.operation_name.clone()))
        .collect();
    let batch = batch.data(RequestContext {
        state: state.clone(),
        caller,
    });
    let shaped = |response: &async_graphql::Response, index: usize| {
        let (query, name) = operations.get(index).map_or(("", None), |(query, name)| {
            (query.as_str(), name.as_deref())
        });
        response::shape(response, query, name)
    };
    let body = match shared_schema().execute_batch(batch).await {
        async_graphql::BatchResponse::Single(response) => shaped(&response, 0),
        async_graphql::BatchResponse::Batch(responses) => serde_json::Value::Array(
            responses
                .iter()
                .enumerate()
                .map(|(index, response)| shaped(response, index))
                .collect(),
        ),
    };
    let mut http = axum::Json(body).into_response();
    http.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    http
}

/// Whether the operation the request selects is a mutation (GET may only query).
fn is_mutation(request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::OperationType;
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    document.operations.iter().any(|(name, operation)| {
        let selected = match (&request.operation_name, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            _ => true,
        };
        selected && operation.node.ty == OperationType::Mutation
    })
}

/// `POST /api/graphql`: one operation or a batch (a JSON array).
async fn execute_post(State(state): State<AppState>, parts: Parts, body: Bytes) -> Response {
    let caller = match caller(&parts, &state).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match serde_json::from_slice::<async_graphql::BatchRequest>(&body) {
        Ok(batch) => execute(state, caller, batch, false).await,
        Err(_) => error_response(
            StatusCode::BAD_REQUEST,
            "Invalid request: the body must be a JSON object with a `query`, or an array of them",
        ),
    }
}

/// `GET /api/graphql?query=…&variables=…&operationName=…`: queries only.
async fn execute_get(State(state): State<AppState>, parts: Parts) -> Response {
    let caller = match caller(&parts, &state).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    #[derive(serde::Deserialize)]
    struct GetRequest {
        query: Option<String>,
        variables: Option<String>,
        #[serde(rename = "operationName")]
        operation_name: Option<String>,
    }
    let params: GetRequest = match serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
    {
        Ok(params) => params,
        Err(_) => return error_response(StatusCode::BAD_REQUEST, "Invalid query parameters"),
    };
    let Some(query) = params.query else {
        return error_response(StatusCode::OK, "No query string was present");
    };
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables.filter(|text| !text.is_empty()) {
        match serde_json::from_str::<serde_json::Value>(&variables) {
            Ok(value) => {
                request = request.variables(async_graphql::Variables::from_json(value));
            }
            Err(_) => return error_response(StatusCode::UNPROCESSABLE_ENTITY, "Invalid variables"),
        }
    }
    execute(
        state,
        caller,
        async_graphql::BatchRequest::Single(request),
        true,
    )
    .await
}
