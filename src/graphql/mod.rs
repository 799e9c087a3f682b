//! GitLab's GraphQL API, the part that manages GitLab Duo seats: `POST`/`GET /api/graphql`
//! and the GraphiQL explorer at `/-/graphql-explorer`.

mod explorer;
pub mod gid;
mod mutation;
mod response;
mod types;

use async_graphql::{Context, EmptySubscription, Object, Result, Schema, ID};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use self::gid::{AddOnPurchaseId, NamespaceId, UserId};
use self::mutation::MutationRoot;
use self::response::execution_error;
use self::types::{
    AddOnPurchaseObject, AddOnType, AddOnUserConnection, EligibleUsersQuery, GroupObject,
    NamespaceObject, UserCore, UserSort,
};
use crate::auth::{self, SCOPE_API, SCOPE_READ_API};
use crate::services::add_ons::{self as seats, Caller, SeatError};
use crate::state::AppState;
use crate::store::{Group, StoreError};

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

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// Retrieve all active add-on purchases. This query can be used in GitLab.com and
    /// self-managed environments.
    async fn add_on_purchases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "ID of namespace that the add-ons were purchased for.")]
        namespace_id: Option<NamespaceId>,
    ) -> Result<Option<Vec<AddOnPurchaseObject>>> {
        let context = request(ctx);
        let purchases = seats::visible_purchases(
            &context.state,
            &context.caller,
            namespace_id.as_ref().map(NamespaceId::number),
        )
        .await
        .map_err(internal)?;
        Ok(Some(
            purchases.into_iter().map(AddOnPurchaseObject).collect(),
        ))
    }

    /// Retrieve the active add-on purchase of one type.
    #[graphql(deprecation = "Use addOnPurchases. Deprecated in GitLab 17.4.")]
    async fn add_on_purchase(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Type of add-on for the add-on purchase.")] add_on_type: AddOnType,
        #[graphql(desc = "ID of namespace that the add-on was purchased for.")]
        namespace_id: Option<NamespaceId>,
    ) -> Result<Option<AddOnPurchaseObject>> {
        let context = request(ctx);
        let purchases = seats::visible_purchases(
            &context.state,
            &context.caller,
            namespace_id.as_ref().map(NamespaceId::number),
        )
        .await
        .map_err(internal)?;
        Ok(purchases
            .into_iter()
            .find(|purchase| purchase.add_on_name == add_on_type.internal_name())
            .map(AddOnPurchaseObject))
    }

    /// Users within the self-managed instance who are eligible for add-ons.
    #[allow(clippy::too_many_arguments)]
    async fn self_managed_add_on_eligible_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Type of add on to filter the eligible users by.")] add_on_type: AddOnType,
        #[graphql(desc = "Global IDs of the add on purchases to find assignments for.")]
        add_on_purchase_ids: Vec<AddOnPurchaseId>,
        #[graphql(desc = "Search the user list.")] search: Option<String>,
        #[graphql(desc = "Sort the user list.")] sort: Option<UserSort>,
        #[graphql(desc = "Filter users list by assigned seat.")] filter_by_assigned_seat: Option<
            String,
        >,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Option<AddOnUserConnection>> {
        if !request(ctx).caller.admin {
            return Err(execution_error(SeatError::NotAvailable.to_string()));
        }
        types::eligible_users(
            ctx,
            EligibleUsersQuery {
                namespace_id: None,
                add_on_type,
                add_on_purchase_ids,
                search,
                sort,
                filter_by_assigned_seat,
                after,
                before,
                first,
                last,
            },
        )
        .await
        .map(Some)
    }

    /// Get information about current user.
    async fn current_user(&self, ctx: &Context<'_>) -> Option<UserCore> {
        request(ctx).caller.user.clone().map(UserCore)
    }

    /// Find a user by ID or username (signed-in callers only).
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "ID of the User.")] id: Option<UserId>,
        #[graphql(desc = "Username of the User.")] username: Option<String>,
    ) -> Result<Option<UserCore>> {
        let context = request(ctx);
        if context.caller.user.is_none() {
            return Ok(None);
        }
        let store = &context.state.store;
        let user = match (id, username) {
            (Some(id), _) => store.find_user(id.number()).await,
            (None, Some(username)) => store.find_user_by_username(&username).await,
            (None, None) => {
                return Err(execution_error("Provide either a single username or id"));
            }
        };
        Ok(user.map_err(internal)?.map(UserCore))
    }

    /// Find a group.
    async fn group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Full path of the group. For example, `gitlab-org/gitlab-foss`.")]
        full_path: ID,
    ) -> Result<Option<GroupObject>> {
        Ok(visible_group(ctx, &full_path).await?.map(GroupObject))
    }

    /// Find a namespace.
    async fn namespace(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Full path of the namespace. For example, `gitlab-org/gitlab-foss`.")]
        full_path: ID,
    ) -> Result<Option<NamespaceObject>> {
        Ok(visible_group(ctx, &full_path).await?.map(NamespaceObject))
    }
}

/// A group the caller may see: public ones, internal ones to signed-in users, private ones to
/// members and administrators. Anything else reads as absent.
async fn visible_group(ctx: &Context<'_>, full_path: &str) -> Result<Option<Group>> {
    let context = request(ctx);
    let store = &context.state.store;
    let Some(group) = store.find_group(full_path).await.map_err(internal)? else {
        return Ok(None);
    };
    let visible = match (&context.caller.user, group.visibility.as_str()) {
        (_, "public") => true,
        (None, _) => false,
        (Some(_), "internal") => true,
        (Some(_), _) if context.caller.admin => true,
        (Some(user), _) => store
            .group_member(group.id, user.id)
            .await
            .map_err(internal)?
            .is_some(),
    };
    Ok(visible.then_some(group))
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
