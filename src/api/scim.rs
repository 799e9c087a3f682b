//! GitLab's instance SCIM API at `/api/scim/v2/application` (`ee/lib/api/scim/instance_scim.rb`):
//! `Users` as GitLab serves them, and — extensions GitLab does not have — `Groups` that may
//! hold GitLab Duo seats and the discovery resources (`ServiceProviderConfig`,
//! `ResourceTypes`, `Schemas`) identity providers and SCIM test tools read. Errors are SCIM
//! `Error` resources (integer `status`, as GitLab sends), except GitLab's plain 401 and 404
//! for a wrong token or a license without instance SCIM.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::domain::scim::{
    self as rules, Page, ERROR_SCHEMA, GROUP_SCHEMA, LIST_SCHEMA, USER_SCHEMA,
};
use crate::policy::ScimAccess;
use crate::services::scim::{self, ScimError};
use crate::state::AppState;
use crate::store::{ScimGroup, ScimMember, ScimUser};

/// Where the API lives.
pub const BASE: &str = rules::API_PATH;
const CONTENT_TYPE: &str = "application/scim+json";

pub fn router() -> Router<AppState> {
    let scim = Router::new()
        .route("/Users", get(list_users).post(create_user))
        .route(
            "/Users/{id}",
            get(show_user).patch(patch_user).delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route(
            "/Groups/{id}",
            get(show_group)
                .patch(patch_group)
                .put(replace_group)
                .delete(delete_group),
        )
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new().nest(BASE, scim)
}

/// A SCIM response: the JSON with GitLab's content type.
fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// A SCIM `Error` resource.
fn scim_error(status: StatusCode, detail: &str) -> Response {
    scim_json(
        status,
        &json!({"schemas": [ERROR_SCHEMA], "detail": detail, "status": status.as_u16()}),
    )
}

/// A refusal on its way out (boxed: a response is large, and it travels in every `Result`).
pub struct Refusal(Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

fn refuse(status: StatusCode, detail: &str) -> Refusal {
    scim_error(status, detail).into()
}

fn error_response(error: ScimError) -> Refusal {
    Refusal::from(match error {
        ScimError::NotFound(detail) => scim_error(StatusCode::NOT_FOUND, &detail),
        ScimError::Conflict(detail) => scim_error(StatusCode::CONFLICT, &detail),
        ScimError::Invalid(detail) => scim_error(StatusCode::PRECONDITION_FAILED, &detail),
        ScimError::Store(error) => crate::error::ApiError::from(error).into_response(),
    })
}

type ScimReply = Result<Response, Refusal>;

/// A request the policy let in: the instance SCIM token, and a license with instance SCIM.
pub struct ScimCaller;

impl FromRequestParts<AppState> for ScimCaller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let token = crate::auth::request_token(parts);
        match scim::access(state, token.as_deref()).await {
            Ok(ScimAccess::Allowed) => Ok(Self),
            Ok(ScimAccess::Unauthorized) => {
                Err(crate::error::ApiError::Unauthorized.into_response().into())
            }
            Ok(ScimAccess::NotLicensed) => Err(crate::error::ApiError::Message(
                StatusCode::NOT_FOUND,
                "404 Not Found".into(),
            )
            .into_response()
            .into()),
            Err(error) => Err(error_response(error)),
        }
    }
}

/// The query string's parameters (the last value of each name wins).
fn query_params(query: Option<String>) -> HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.as_deref().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn page_of(params: &HashMap<String, String>) -> Result<Page, Refusal> {
    Page::from_params(
        params.get("startIndex").map(String::as_str),
        params.get("count").map(String::as_str),
    )
    .map_err(|name| refuse(StatusCode::BAD_REQUEST, &format!("{name} is invalid")))
}

/// GitLab's ListResponse: `itemsPerPage` is the page size asked for, `startIndex` echoes the
/// parameter as sent (a string, as Grape passes it on) or 1.
fn list_response(
    resources: Vec<Value>,
    total: i64,
    page: Page,
    params: &HashMap<String, String>,
) -> Response {
    let start_index = params
        .get("startIndex")
        .filter(|text| !text.is_empty())
        .map_or_else(|| json!(1), |text| json!(text));
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "itemsPerPage": page.count,
            "startIndex": start_index,
            "Resources": resources,
        }),
    )
}

/// The body of a write as a JSON value: `application/scim+json` or `application/json` (or no
/// content type); anything else is a 415, a body that is not JSON a 400.
async fn json_body(headers: &HeaderMap, body: Body) -> Result<Value, Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !(essence.is_empty() || essence == CONTENT_TYPE || essence == "application/json") {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("The provided content-type '{essence}' is not supported."),
        ));
    }
    let bytes = crate::body::read_body(body)
        .await
        .map_err(|error| Refusal::from(error.into_response()))?;
    serde_json::from_slice::<Value>(&bytes).map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON",
        )
    })
}

async fn object_body(headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, Refusal> {
    match json_body(headers, body).await? {
        Value::Object(map) => Ok(map),
        _ => Err(refuse(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON object",
        )),
    }
}

/// GitLab's `first_name` / `last_name`: the name's first word and the rest.
fn name_parts(name: &str) -> (String, String) {
    let mut words = name.split_whitespace();
    let first = words.next().unwrap_or_default().to_string();
    (first, words.collect::<Vec<_>>().join(" "))
}

/// GitLab's SCIM `User` entity, fields in its order.
fn user_entity(user: &ScimUser) -> Value {
    let (given, family) = name_parts(&user.name);
    json!({
        "schemas": [USER_SCHEMA],
        "id": user.extern_uid,
        "active": user.active,
        "emails": [{"type": "work", "value": user.email, "primary": true}],
        "name": {"formatted": user.name, "givenName": given, "familyName": family},
        "meta": {"resourceType": "User"},
        "userName": user.username,
    })
}

/// A SCIM `Group` (GitLab 18's entity): members as `{value, display, type}` unless excluded.
fn group_entity(group: &ScimGroup, members: Option<&[ScimMember]>) -> Value {
    let mut entity = json!({
        "schemas": [GROUP_SCHEMA],
        "id": group.scim_id,
        "displayName": group.display_name,
    });
    if let Some(members) = members {
        entity["members"] = members
            .iter()
            .filter_map(|member| {
                member
                    .extern_uid
                    .as_ref()
                    .map(|uid| json!({"value": uid, "display": member.name, "type": "User"}))
            })
            .collect();
    }
    entity["meta"] = json!({"resourceType": "Group"});
    entity
}

fn excludes_members(params: &HashMap<String, String>) -> bool {
    params.get("excludedAttributes").is_some_and(|excluded| {
        excluded
            .split(',')
            .any(|attribute| attribute.trim().eq_ignore_ascii_case("members"))
    })
}

async fn list_users(
    _: ScimCaller,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ScimReply {
    let params = query_params(query);
    let page = page_of(&params)?;
    let (users, total) = scim::list_users(&state, params.get("filter").map(String::as_str), page)
        .await
        .map_err(error_response)?;
    Ok(list_response(
        users.iter().map(user_entity).collect(),
        total,
        page,
        &params,
    ))
}

async fn show_user(
    _: ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ScimReply {
    let user = scim::find_user(&state, &id).await.map_err(error_response)?;
    Ok(scim_json(StatusCode::OK, &user_entity(&user)))
}

async fn create_user(
    _: ScimCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ScimReply {
    let body = object_body(&headers, body).await?;
    let user = scim::provision(&state, &body)
        .await
        .map_err(error_response)?;
    Ok(scim_json(StatusCode::CREATED, &user_entity(&user)))
}

async fn patch_user(
    _: ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ScimReply {
    let body = json_body(&headers, body).await?;
    scim::patch_user(&state, &id, &body)
        .await
        .map_err(error_response)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_user(
    _: ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ScimReply {
    scim::deprovision(&state, &id)
        .await
        .map_err(error_response)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_groups(
    _: ScimCaller,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ScimReply {
    let params = query_params(query);
    let page = page_of(&params)?;
    let (groups, total) = scim::list_groups(&state, params.get("filter").map(String::as_str), page)
        .await
        .map_err(error_response)?;
    let with_members = !excludes_members(&params);
    let mut resources = Vec::with_capacity(groups.len());
    for group in &groups {
        let members = if with_members {
            Some(
                scim::group_members(&state, group)
                    .await
                    .map_err(error_response)?,
            )
        } else {
            None
        };
        resources.push(group_entity(group, members.as_deref()));
    }
    Ok(list_response(resources, total, page, &params))
}

async fn show_group(
    _: ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ScimReply {
    let params = query_params(query);
    let group = scim::find_group(&state, &id)
        .await
        .map_err(error_response)?;
    let members = if excludes_members(&params) {
        None
    } else {
        Some(
            scim::group_members(&state, &group)
                .await
                .map_err(error_response)?,
        )
    };
    Ok(scim_json(
        StatusCode::OK,
        &group_entity(&group, members.as_deref()),
    ))
}

async fn create_group(
    _: ScimCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ScimReply {
    let body = object_body(&headers, body).await?;
    let group = scim::create_group(&state, &body)
        .await
        .map_err(error_response)?;
    let members = scim::group_members(&state, &group)
        .await
        .map_err(error_response)?;
    Ok(scim_json(
        StatusCode::CREATED,
        &group_entity(&group, Some(&members)),
    ))
}

async fn patch_group(
    _: ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ScimReply {
    let body = json_body(&headers, body).await?;
    scim::patch_group(&state, &id, &body)
        .await
        .map_err(error_response)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GitLab answers a PUT with the group, its members left out.
async fn replace_group(
    _: ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ScimReply {
    let body = object_body(&headers, body).await?;
    let group = scim::replace_group(&state, &id, &body)
        .await
        .map_err(error_response)?;
    Ok(scim_json(StatusCode::OK, &group_entity(&group, None)))
}

async fn delete_group(
    _: ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ScimReply {
    scim::delete_group(&state, &id)
        .await
        .map_err(error_response)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn not_found(_: ScimCaller, uri: axum::http::Uri) -> Response {
    scim_error(
        StatusCode::NOT_FOUND,
        &format!(
            "Resource {} not found",
            uri.path().rsplit('/').next().unwrap_or_default()
        ),
    )
}

async fn method_not_allowed(_: ScimCaller) -> Response {
    scim_error(StatusCode::METHOD_NOT_ALLOWED, "405 Not Allowed")
}

// ---------------------------------------------------------------------------------------
// Discovery (RFC 7643 §5–7): exactly what this API supports.

fn meta(resource_type: &str, location: &str) -> Value {
    json!({"resourceType": resource_type, "location": format!("{BASE}/{location}")})
}

async fn service_provider_config(_: ScimCaller) -> Response {
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://docs.gitlab.com/administration/settings/scim_setup/",
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": rules::MAX_COUNT},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "The instance SCIM token (glsoat-…), sent as Authorization: Bearer",
                "primary": true
            }],
            "meta": meta("ServiceProviderConfig", "ServiceProviderConfig"),
        }),
    )
}

/// A `ResourceType` (RFC 7643 §6).
fn resource_type_of(id: &str, description: &str, schema: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": id,
        "name": id,
        "endpoint": format!("/{id}s"),
        "description": description,
        "schema": schema,
        "schemaExtensions": [],
        "meta": meta("ResourceType", &format!("ResourceTypes/{id}")),
    })
}

fn user_resource_type() -> Value {
    resource_type_of(
        "User",
        "GitLab users provisioned by the identity provider",
        USER_SCHEMA,
    )
}

fn group_resource_type() -> Value {
    resource_type_of(
        "Group",
        "Groups of the identity provider; a group may hold GitLab Duo seats for its members",
        GROUP_SCHEMA,
    )
}

fn discovery_list(resources: Vec<Value>) -> Response {
    let total = resources.len();
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "itemsPerPage": total,
            "startIndex": 1,
            "Resources": resources,
        }),
    )
}

async fn resource_types(_: ScimCaller) -> Response {
    discovery_list(vec![user_resource_type(), group_resource_type()])
}

async fn resource_type(_: ScimCaller, Path(id): Path<String>) -> Response {
    match id.as_str() {
        "User" => scim_json(StatusCode::OK, &user_resource_type()),
        "Group" => scim_json(StatusCode::OK, &group_resource_type()),
        _ => scim_error(StatusCode::NOT_FOUND, &format!("Resource {id} not found")),
    }
}

/// A string attribute of a schema.
fn attribute(name: &str, required: bool, mutability: &str, uniqueness: &str) -> Value {
    json!({
        "name": name, "type": "string", "multiValued": false, "required": required,
        "caseExact": false, "mutability": mutability, "returned": "default",
        "uniqueness": uniqueness,
    })
}

fn never_returned(mut attribute: Value) -> Value {
    attribute["returned"] = json!("never");
    attribute
}

fn user_schema() -> Value {
    let mut name = attribute("name", false, "readWrite", "none");
    name["type"] = json!("complex");
    name["subAttributes"] = json!([
        attribute("formatted", false, "readWrite", "none"),
        attribute("givenName", false, "readWrite", "none"),
        attribute("familyName", false, "readWrite", "none"),
    ]);
    let mut emails = attribute("emails", true, "readWrite", "none");
    emails["type"] = json!("complex");
    emails["multiValued"] = json!(true);
    let mut primary = attribute("primary", false, "readWrite", "none");
    primary["type"] = json!("boolean");
    emails["subAttributes"] = json!([
        attribute("value", true, "readWrite", "none"),
        attribute("type", false, "readWrite", "none"),
        primary,
    ]);
    let mut active = attribute("active", false, "readWrite", "none");
    active["type"] = json!("boolean");
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A GitLab user (GitLab acts on active and externalId only; other attributes are accepted and kept as first provisioned)",
        "attributes": [
            attribute("userName", true, "readWrite", "server"),
            // Sent on create and PATCH; GitLab's entity answers it as `id`, never as itself.
            never_returned(attribute("externalId", true, "readWrite", "server")),
            name,
            emails,
            active,
        ],
        "meta": meta("Schema", &format!("Schemas/{USER_SCHEMA}")),
    })
}

fn group_schema() -> Value {
    let mut members = attribute("members", false, "readWrite", "none");
    members["type"] = json!("complex");
    members["multiValued"] = json!(true);
    let mut value = attribute("value", false, "immutable", "none");
    value["caseExact"] = json!(false);
    members["subAttributes"] = json!([
        value,
        attribute("display", false, "readOnly", "none"),
        attribute("type", false, "readOnly", "none"),
    ]);
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A group of the identity provider",
        "attributes": [
            attribute("displayName", true, "readWrite", "server"),
            never_returned(attribute("externalId", false, "readWrite", "none")),
            members,
        ],
        "meta": meta("Schema", &format!("Schemas/{GROUP_SCHEMA}")),
    })
}

async fn schemas(_: ScimCaller) -> Response {
    discovery_list(vec![user_schema(), group_schema()])
}

async fn schema(_: ScimCaller, Path(id): Path<String>) -> Response {
    match id.as_str() {
        USER_SCHEMA => scim_json(StatusCode::OK, &user_schema()),
        GROUP_SCHEMA => scim_json(StatusCode::OK, &group_schema()),
        _ => scim_error(StatusCode::NOT_FOUND, &format!("Resource {id} not found")),
    }
}
