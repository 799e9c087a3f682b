//! GitLab's GraphQL API, the part that manages GitLab Duo seats: `POST`/`GET /api/graphql`
//! and the GraphiQL explorer at `/-/graphql-explorer`.

mod eligible;
mod explorer;
pub mod gid;
mod guard;
mod memo;
mod mutation;
mod namespaces;
mod query;
mod response;
mod types;
mod values;

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Context, EmptySubscription, Result, Schema, ServerError, ValidationResult};
use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use self::guard::TextProblem;
use self::memo::{Memo, MemoKey};
use self::mutation::MutationRoot;
use self::query::QueryRoot;
use self::response::Failures;
use crate::auth::{self, Scope};
use crate::error::{ApiError, FailureNote, RETRY_AFTER_SECONDS};
use crate::policy::{authorize, Need};
use crate::services::add_ons::Caller;
use crate::state::AppState;
use crate::store::StoreError;

pub type GitlabSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// GitLab's limits: query text (summed over a batch) and, per caller (`gitlab_schema.rb`),
/// complexity (summed over a batch, as graphql-ruby counts a multiplex) and depth.
pub const MAX_QUERY_SIZE: usize = 10_000;

/// The complexity and depth a caller may use: 200 and 15 anonymously, 250 and 20 signed in,
/// 300 and 20 as an administrator.
fn limits_for(caller: &Caller) -> (usize, usize) {
    match (caller.user(), caller.admin()) {
        (None, _) => (200, 15),
        (Some(_), false) => (250, 20),
        (Some(_), true) => (300, 20),
    }
}
/// Operations in one request. GitLab bounds a batch by its summed size only; this bound is
/// ours, far above what Apollo-style batching sends (10).
pub const MAX_BATCH_OPERATIONS: usize = 50;
/// Ids in one list argument (`addOnPurchaseIds`, written as the literal 100 in its
/// validator); an instance has a handful of purchases.
pub const MAX_LIST_ARGUMENT: usize = 100;

/// What resolvers need: the application, who is asking, and the lookups the operation's
/// fields share.
pub struct RequestContext {
    pub state: AppState,
    pub caller: Caller,
    pub memo: Memo,
}

fn request<'a>(ctx: &Context<'a>) -> &'a RequestContext {
    ctx.data_unchecked::<RequestContext>()
}

/// A store failure as a field error: the client sees "Internal server error" (or, while the
/// database is unreachable, the request becomes a 503); the cause goes to the request's one
/// log line.
fn internal(error: StoreError) -> async_graphql::Error {
    response::store_failure(&error)
}

/// The purchases of a namespace (`None`: the instance) the caller may administer, read once
/// per operation.
async fn visible_purchases(
    ctx: &Context<'_>,
    namespace_id: Option<i64>,
) -> Result<Arc<Vec<crate::store::AddOnPurchase>>, StoreError> {
    let context = request(ctx);
    context
        .memo
        .get(MemoKey::VisiblePurchases(namespace_id), || {
            crate::services::add_ons::visible_purchases(
                &context.state,
                &context.caller,
                namespace_id,
            )
        })
        .await
}

/// Whether the caller owns a group (or is an administrator), asked once per operation.
async fn owns_group(ctx: &Context<'_>, group_id: i64) -> Result<bool, StoreError> {
    let context = request(ctx);
    let owns = context
        .memo
        .get(MemoKey::OwnsGroup(group_id), || {
            crate::services::add_ons::owns_group(&context.state, &context.caller, group_id)
        })
        .await?;
    Ok(*owns)
}

/// The schema. Complexity and depth depend on the caller: [`execute`] measures them and
/// applies the caller's limits before anything runs.
pub fn schema() -> GitlabSchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .extension(ComplexityProbeExtension)
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

/// A GraphQL-shaped error response (`{"errors":[{"message":…}]}`), as GitLab's controller
/// renders its own refusals.
fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "errors": [{ "message": message }] })),
    )
        .into_response()
}

/// HTTP 503 with `Retry-After`: the database is needed and cannot be reached.
fn unavailable_response() -> Response {
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable");
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// Who the request is from. A token that does not authenticate (unknown, revoked, expired,
/// without `api`/`read_api`) is HTTP 401 "Invalid token", as on GitLab; no token at all runs
/// the request anonymously. A token that cannot be checked (the database is unreachable and
/// the token was not seen before) is a 503, never "invalid": clients drop invalid tokens.
async fn caller(parts: &Parts, state: &AppState) -> Result<Caller, Response> {
    if auth::request_token(parts).is_none() {
        return Ok(Caller::default());
    }
    let invalid = || error_response(StatusCode::UNAUTHORIZED, "Invalid token");
    let token = match auth::lookup_token(parts, state).await {
        Ok(token) => token,
        Err(ApiError::ServiceUnavailable) => return Err(unavailable_response()),
        // The 401 in the request's log line says enough; the reason is not the client's.
        Err(_) => return Err(invalid()),
    };
    // GitLab's GraphQL controller has no scope or account messages: a token the policy
    // refuses does not authenticate at all.
    let principal = authorize(
        token,
        auth::policy_settings(state),
        Need::Read(&[Scope::ReadApi]),
    )
    .map_err(|_| invalid())?;
    auth::record_use(state, &principal.token).await;
    Ok(Caller::from_principal(&principal))
}

/// Records the complexity and depth a dry run of an operation computes.
#[derive(Default)]
struct ComplexityProbe(Mutex<Option<(usize, usize)>>);

/// With a [`ComplexityProbe`] in the request: validate, record the complexity, execute
/// nothing. Without one: out of the way.
struct ComplexityProbeExtension;

impl ExtensionFactory for ComplexityProbeExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ComplexityProbeExtension)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ComplexityProbeExtension {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some(probe) = ctx.data_opt::<Arc<ComplexityProbe>>() {
            *probe.0.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((result.complexity, result.depth));
        }
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        if ctx.data_opt::<Arc<ComplexityProbe>>().is_some() {
            return async_graphql::Response::default();
        }
        next.run(ctx, operation_name).await
    }
}

/// One operation of a request, parsed once (the parse serves the GET rule, the complexity
/// count, execution and the response's shape).
struct Operation {
    request: async_graphql::Request,
    document: Option<ExecutableDocument>,
}

impl Operation {
    /// The operation's complexity and depth, from a validation-only run (0 if it does not
    /// parse or validate: it will be refused with its own errors).
    async fn measure(&self) -> (usize, usize) {
        let Some(document) = &self.document else {
            return (0, 0);
        };
        let probe = Arc::new(ComplexityProbe::default());
        let mut dry = async_graphql::Request::new(String::new())
            .variables(self.request.variables.clone())
            .data(Arc::clone(&probe));
        if let Some(name) = &self.request.operation_name {
            dry = dry.operation_name(name.clone());
        }
        dry.set_parsed_query(document.clone());
        let _ = shared_schema().execute(dry).await;
        let recorded = *probe.0.lock().unwrap_or_else(|p| p.into_inner());
        recorded.unwrap_or((0, 0))
    }

    /// Whether the operation the request selects is a mutation (GET may only query).
    fn is_mutation(&self) -> bool {
        let Some(document) = &self.document else {
            return false;
        };
        document.operations.iter().any(|(name, operation)| {
            let selected = match (&self.request.operation_name, name) {
                (Some(wanted), Some(name)) => wanted == name.as_str(),
                _ => true,
            };
            selected && operation.node.ty == OperationType::Mutation
        })
    }
}

/// The checks GitLab's controller makes before graphql-ruby sees a request (sizes, and here
/// also nesting and NUL characters), as the refusal to send.
fn check_text(requests: &[async_graphql::Request]) -> Option<Response> {
    // GitLab's own rule first: the whole batch's text.
    if requests
        .iter()
        .map(|request| request.query.len())
        .sum::<usize>()
        > MAX_QUERY_SIZE
    {
        return Some(error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Query too large",
        ));
    }
    if requests.len() > MAX_BATCH_OPERATIONS {
        return Some(error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Too many operations in one request (at most {MAX_BATCH_OPERATIONS})"),
        ));
    }
    for request in requests {
        // No stored text can contain NUL (PostgreSQL refuses it), so no argument may.
        let variables = serde_json::to_string(&request.variables).unwrap_or_default();
        let problem = guard::scan(&request.query).err().or_else(|| {
            variables
                .contains("\\u0000")
                .then_some(TextProblem::NulCharacter)
        });
        match problem {
            Some(TextProblem::NulCharacter) => {
                return Some(error_response(
                    StatusCode::OK,
                    "Arguments may not contain null bytes",
                ))
            }
            Some(TextProblem::TooDeep) => {
                return Some(error_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!(
                        "Query is nested too deeply (at most {} levels of brackets)",
                        guard::MAX_NESTING
                    ),
                ))
            }
            None => {}
        }
    }
    None
}

async fn execute(
    state: AppState,
    caller: Caller,
    batch: async_graphql::BatchRequest,
    read_only: bool,
) -> Response {
    let (requests, batched) = match batch {
        async_graphql::BatchRequest::Single(request) => (vec![request], false),
        async_graphql::BatchRequest::Batch(requests) => (requests, true),
    };
    if let Some(refusal) = check_text(&requests) {
        return refusal;
    }
    let operations: Vec<Operation> = requests
        .into_iter()
        .map(|request| Operation {
            document: async_graphql::parser::parse_query(&request.query).ok(),
            request,
        })
        .collect();
    if read_only && operations.iter().any(Operation::is_mutation) {
        return error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Mutations are forbidden in GET requests",
        );
    }
    let (max_complexity, max_depth) = limits_for(&caller);
    let mut complexity = 0;
    let mut depths = Vec::with_capacity(operations.len());
    for operation in &operations {
        let (operation_complexity, depth) = operation.measure().await;
        complexity += operation_complexity;
        depths.push(depth);
    }
    let mut failures = Failures::default();
    let refusal = |message: String| json!({ "errors": [{ "message": message }] });
    let answers: Vec<serde_json::Value> = if complexity > max_complexity {
        let message = format!(
            "Query has complexity of {complexity}, which exceeds max complexity of {max_complexity}"
        );
        operations
            .iter()
            .map(|_| refusal(message.clone()))
            .collect()
    } else {
        let mut answers = Vec::with_capacity(operations.len());
        // One operation at a time: a batch holds no more of the pool than its largest
        // operation, whose fields are few (complexity) and share their lookups (memo).
        for (
            Operation {
                mut request,
                document,
            },
            depth,
        ) in operations.into_iter().zip(depths)
        {
            // Depth is per query (graphql-ruby's `max_depth`): a deep one is refused, the
            // others of its batch run.
            if depth > max_depth {
                answers.push(refusal(format!(
                    "Query has depth of {depth}, which exceeds max depth of {max_depth}"
                )));
                continue;
            }
            let operation_name = request.operation_name.clone();
            if let Some(document) = &document {
                request.set_parsed_query(document.clone());
            }
            let request = request.data(RequestContext {
                state: state.clone(),
                caller: caller.clone(),
                memo: Memo::default(),
            });
            let answer = shared_schema().execute(request).await;
            answers.push(response::shape(
                &answer,
                document.as_ref(),
                operation_name.as_deref(),
                &mut failures,
            ));
        }
        answers
    };
    if failures.unavailable {
        return with_failure_note(unavailable_response(), &failures);
    }
    let body = if batched {
        serde_json::Value::Array(answers)
    } else {
        answers.into_iter().next().unwrap_or_default()
    };
    let mut http = axum::Json(body).into_response();
    http.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    with_failure_note(http, &failures)
}

/// Hands the request's failed fields to its one log line (see `api::app`'s trace layer).
fn with_failure_note(mut response: Response, failures: &Failures) -> Response {
    if let Some(cause) = &failures.first_cause {
        response.extensions_mut().insert(FailureNote(format!(
            "{} GraphQL field(s) failed; first: {cause}",
            failures.count
        )));
    }
    response
}

/// `POST /api/graphql`: one operation or a batch (a JSON array).
async fn execute_post(State(state): State<AppState>, parts: Parts, body: Body) -> Response {
    let caller = match caller(&parts, &state).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let body = match crate::body::read_body(body).await {
        Ok(body) => body,
        Err(ApiError::PayloadTooLarge) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large",
            )
        }
        Err(ApiError::RequestTimeout) => {
            return error_response(StatusCode::REQUEST_TIMEOUT, "408 Request Timeout")
        }
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "Invalid request: the body could not be read",
            )
        }
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
