//! The page's handlers: read the form, call the same services as the API, answer with HTML
//! (or a redirect after a change, so that reloading does not repeat it).

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use maud::Markup;

use super::session::{
    self, cookie, csrf_matches, set_cookie, WebAdmin, CSRF_FIELD, PAGE_PATH, SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
};
use super::views::{self, Flash, PageContext};
use chrono::NaiveDate;

use crate::domain::add_ons::{
    add_on, PurchaseTerms, BULK_ASSIGN_LIMIT_MESSAGE, BULK_UNASSIGN_LIMIT_MESSAGE, MAX_BULK_USERS,
};
use crate::error::ApiError;
use crate::services::add_ons::{self as seats, Caller, SeatError};
use crate::services::licenses::{self, UploadError};
use crate::services::{subscription, web_sessions};
use crate::state::AppState;
use crate::store::{SaveMode, StoreError};

/// Security headers for every page: no scripts at all, nothing framed, no caching of
/// pages that show licensing data.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    html(status, views::error(message))
}

/// A refused or failed step, shown on the page it came from.
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "web page request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side. Please try again.",
        )
    }

    /// The database cannot be reached: nothing is wrong with the request, try again soon.
    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database cannot be reached right now. Please try again in a moment.",
        )
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_unavailable() {
            Self::unavailable()
        } else {
            Self::internal(error)
        }
    }
}

/// What a refused token means to someone signing in.
fn sign_in_refusal(error: ApiError) -> Failure {
    match error {
        ApiError::Unauthorized => Failure::new(
            StatusCode::UNAUTHORIZED,
            "That personal access token is not valid.",
        ),
        ApiError::TokenExpired => Failure::new(StatusCode::UNAUTHORIZED, "That token has expired."),
        ApiError::TokenRevoked => {
            Failure::new(StatusCode::UNAUTHORIZED, "That token has been revoked.")
        }
        ApiError::InsufficientScope(_) => Failure::new(
            StatusCode::FORBIDDEN,
            "That token needs the api or read_api scope.",
        ),
        ApiError::ForbiddenBecause(reason) => Failure::new(StatusCode::FORBIDDEN, reason),
        ApiError::Forbidden => Failure::new(
            StatusCode::FORBIDDEN,
            "Only administrators can sign in here (with the admin_mode scope when Admin Mode is on).",
        ),
        ApiError::ServiceUnavailable => Failure::unavailable(),
        other => Failure::internal(format!("{other:?}")),
    }
}

/// A form's fields, repeated names kept.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &Bytes) -> Self {
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn invalid_authenticity_token() -> Failure {
    // Rails answers a missing or wrong CSRF token with 422.
    Failure::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid authenticity token: reload the page and try again.",
    )
}

// ---------------------------------------------------------------------------------------
// Signing in and out

/// A query string read leniently: anything malformed counts as absent (it only picks a
/// message to show).
fn lenient_query<T: serde::de::DeserializeOwned + Default>(query: Option<&str>) -> T {
    serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default()
}

#[derive(serde::Deserialize, Default)]
pub struct SignInQuery {
    session: Option<String>,
    signed_out: Option<String>,
}

pub async fn sign_in_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = lenient_query::<SignInQuery>(query.as_deref());
    if let Some(value) = cookie(&headers, SESSION_COOKIE) {
        if matches!(web_sessions::resume(&state, &value).await, Ok(Some(_))) {
            return Redirect::to(PAGE_PATH).into_response();
        }
    }
    let message = match (query.session.as_deref(), query.signed_out.is_some()) {
        (Some("refused"), _) => Some(Flash::Alert(
            "Your session ended: its token or account no longer has administrator access.".into(),
        )),
        (Some(_), _) => Some(Flash::Notice(
            "Your session has ended. Sign in again.".into(),
        )),
        (None, true) => Some(Flash::Notice("Signed out.".into())),
        (None, false) => None,
    };
    sign_in_page(&state, &headers, StatusCode::OK, message.as_ref())
}

/// The sign-in form with its CSRF token (kept in a cookie until there is a session).
fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&Flash>,
) -> Response {
    let csrf_token =
        cookie(headers, SIGN_IN_CSRF_COOKIE).unwrap_or_else(web_sessions::random_secret);
    let mut response = html(status, views::sign_in(&csrf_token, message));
    let (name, value) = set_cookie(state, SIGN_IN_CSRF_COOKIE, &csrf_token, 3600);
    response.headers_mut().append(name, value);
    response
}

pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = Fields::parse(&body);
    let refuse = |failure: Failure| {
        sign_in_page(
            &state,
            &headers,
            failure.status,
            Some(&Flash::Alert(failure.message)),
        )
    };
    let expected = cookie(&headers, SIGN_IN_CSRF_COOKIE).unwrap_or_default();
    if !csrf_matches(&expected, fields.get(CSRF_FIELD)) {
        return refuse(invalid_authenticity_token());
    }
    let token = fields.get("token").unwrap_or_default().trim();
    if token.is_empty() {
        return refuse(Failure::new(
            StatusCode::BAD_REQUEST,
            "Enter a personal access token.",
        ));
    }
    match web_sessions::sign_in(&state, token).await {
        Ok(opened) => (
            // Appended, not inserted: both cookies must be set.
            AppendHeaders([
                set_cookie(
                    &state,
                    SESSION_COOKIE,
                    &opened.cookie_value,
                    web_sessions::SESSION_LIFETIME.num_seconds(),
                ),
                set_cookie(&state, SIGN_IN_CSRF_COOKIE, "", 0),
            ]),
            Redirect::to(PAGE_PATH),
        )
            .into_response(),
        Err(error) => refuse(sign_in_refusal(error)),
    }
}

pub async fn sign_out(State(state): State<AppState>, admin: WebAdmin, body: Bytes) -> Response {
    let fields = Fields::parse(&body);
    if !csrf_matches(&admin.csrf_token, fields.get(CSRF_FIELD)) {
        return page_with(&state, &admin, Err(invalid_authenticity_token())).await;
    }
    if let Err(error) =
        web_sessions::sign_out(&state, admin.actor.user(), &admin.cookie_value).await
    {
        return error_page_for(Failure::internal(error));
    }
    (
        [set_cookie(&state, SESSION_COOKIE, "", 0)],
        Redirect::to(&format!("{}?signed_out=1", session::SIGN_IN_PATH)),
    )
        .into_response()
}

fn error_page_for(failure: Failure) -> Response {
    error_page(failure.status, &failure.message)
}

// ---------------------------------------------------------------------------------------
// The page

/// What a redirect after a change tells the page to say (fixed texts: the query string
/// cannot put words on the page).
#[derive(serde::Deserialize, Default)]
pub struct NoticeQuery {
    notice: Option<String>,
    count: Option<u32>,
    skipped: Option<u32>,
}

impl NoticeQuery {
    fn flash(&self) -> Option<Flash> {
        let count = i64::from(self.count.unwrap_or_default());
        let skipped = i64::from(self.skipped.unwrap_or_default());
        let seats = |count: i64| if count == 1 { "seat" } else { "seats" };
        let text = match self.notice.as_deref()? {
            "license_added" => "The license was added.".to_string(),
            "license_deleted" => "The license was deleted.".to_string(),
            "recount_queued" => {
                "Billable users are being recounted; the figures update in a moment.".to_string()
            }
            "seats_assigned" if skipped > 0 => format!(
                "{count} {} assigned; {skipped} {} could not take one (not eligible).",
                seats(count),
                if skipped == 1 { "user" } else { "users" }
            ),
            "seats_assigned" => format!("{count} {} assigned.", seats(count)),
            "seats_removed" => format!("{count} {} removed.", seats(count)),
            "purchase_saved" => "The add-on purchase was saved.".to_string(),
            _ => return None,
        };
        Some(Flash::Notice(text))
    }
}

pub async fn show(
    State(state): State<AppState>,
    admin: WebAdmin,
    RawQuery(query): RawQuery,
) -> Response {
    let flash = lenient_query::<NoticeQuery>(query.as_deref()).flash();
    render(&state, &admin, StatusCode::OK, flash).await
}

async fn render(
    state: &AppState,
    admin: &WebAdmin,
    status: StatusCode,
    flash: Option<Flash>,
) -> Response {
    match subscription::overview(state).await {
        Ok(overview) => {
            let context = PageContext {
                user: admin.actor.user(),
                csrf_token: &admin.csrf_token,
                can_write: admin.can_write(),
                flash,
            };
            html(status, views::subscription(&overview, &context))
        }
        Err(error) => error_page_for(Failure::internal(error)),
    }
}

/// After a change: back to the page with a notice; after a refusal: the page again, with
/// the refusal's status and message and nothing changed.
async fn page_with(
    state: &AppState,
    admin: &WebAdmin,
    outcome: Result<String, Failure>,
) -> Response {
    match outcome {
        Ok(query) => Redirect::to(&format!("{PAGE_PATH}?{query}")).into_response(),
        Err(failure) => {
            render(
                state,
                admin,
                failure.status,
                Some(Flash::Alert(failure.message)),
            )
            .await
        }
    }
}

/// The checks every change makes: the form's CSRF token, no NUL character, and a token that
/// may write.
fn may_change(admin: &WebAdmin, fields: &Fields) -> Result<(), Failure> {
    if !csrf_matches(&admin.csrf_token, fields.get(CSRF_FIELD)) {
        return Err(invalid_authenticity_token());
    }
    // As in the API: nothing stored can contain a NUL character (PostgreSQL refuses one in
    // any text), so a field holding one is refused before anything is looked up.
    if fields.0.iter().any(|(_, value)| value.contains('\0')) {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "A field contains a null byte.",
        ));
    }
    if !admin.can_write() {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "Your token has read-only access (read_api): sign in with an api token to change anything.",
        ));
    }
    Ok(())
}

pub async fn upload_license(
    State(state): State<AppState>,
    admin: WebAdmin,
    request: Request,
) -> Response {
    let outcome = async {
        let mut multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|rejection| Failure::new(rejection.status(), rejection.body_text()))?;
        let mut fields = Fields(Vec::new());
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|error| Failure::new(error.status(), error.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_string();
            let value = field
                .bytes()
                .await
                .map_err(|error| Failure::new(error.status(), error.body_text()))?;
            fields
                .0
                .push((name, String::from_utf8_lossy(&value).into_owned()));
        }
        may_change(&admin, &fields)?;
        // A chosen file wins over the text box, as in GitLab's form.
        let file = fields.get("license_file").unwrap_or_default();
        let key = if file.trim().is_empty() {
            fields.get("license").unwrap_or_default()
        } else {
            file
        }
        .to_string();
        if key.trim().is_empty() {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "Paste a license key or choose a license file.",
            ));
        }
        match licenses::upload(&state, admin.actor.user(), &key).await {
            Ok(_) => Ok("notice=license_added".to_string()),
            // The API's own 400 message.
            Err(UploadError::Rejected(rejected)) => {
                Err(Failure::new(StatusCode::BAD_REQUEST, rejected.0))
            }
            Err(UploadError::Store(error)) => Err(Failure::internal(error)),
        }
    }
    .await;
    page_with(&state, &admin, outcome).await
}

pub async fn delete_license(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let outcome = async {
        may_change(&admin, &fields)?;
        let not_found = || Failure::new(StatusCode::NOT_FOUND, "404 Not found");
        let id = id.parse::<i64>().map_err(|_| not_found())?;
        if licenses::delete(&state, admin.actor.user(), id).await? {
            Ok("notice=license_deleted".to_string())
        } else {
            Err(not_found())
        }
    }
    .await;
    page_with(&state, &admin, outcome).await
}

pub async fn refresh_billable_users(
    State(state): State<AppState>,
    admin: WebAdmin,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let outcome = async {
        may_change(&admin, &fields)?;
        let Some((row, _)) = licenses::current(&state, state.clock.today()).await? else {
            return Err(Failure::new(StatusCode::NOT_FOUND, "404 License Not Found"));
        };
        match licenses::refresh_billable_users(&state, row.id).await? {
            Some(()) => Ok("notice=recount_queued".to_string()),
            None => Err(Failure::new(StatusCode::NOT_FOUND, "404 Not Found")),
        }
    }
    .await;
    page_with(&state, &admin, outcome).await
}

pub async fn usage_export(State(state): State<AppState>, _: WebAdmin) -> Response {
    match licenses::usage_csv(&state).await {
        Ok(Some(csv)) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"license_usage.csv\""),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            csv,
        )
            .into_response(),
        Ok(None) => error_page(
            StatusCode::NOT_FOUND,
            "There is no current license to export.",
        ),
        Err(error) => error_page_for(Failure::internal(error)),
    }
}

// ---------------------------------------------------------------------------------------
// Seats: the GraphQL mutations' service, called with the session's token.

/// A seat refusal in words, with GitLab's code first.
fn seat_failure(error: SeatError) -> Failure {
    match error {
        SeatError::NotAvailable => Failure::new(StatusCode::NOT_FOUND, error.to_string()),
        SeatError::Limit(message) => Failure::new(StatusCode::BAD_REQUEST, message),
        SeatError::Refused(code) => {
            let explanation = match code {
                "NOT_ENOUGH_SEATS" => "there are not enough free seats for all of them",
                "NO_SEATS_AVAILABLE" => "every seat is taken",
                "INVALID_USER_MEMBERSHIP" => {
                    "the user may not hold a seat (blocked, a bot, or not a member of the purchase's group)"
                }
                "INVALID_USER_ID_PRESENT" => "none of the users may hold a seat",
                "INCOMPATIBLE_ADD_ON" => "this add-on's seats are not assigned to users",
                "NO_ASSIGNMENTS_FOUND" => "none of them holds a seat",
                _ => "the change was refused",
            };
            Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{code}: {explanation}."),
            )
        }
        SeatError::Store(error) => Failure::internal(error),
    }
}

/// Usernames from the form (spaces or commas between them, an `@` in front allowed), each
/// resolved to a user id; unknown ones are named in the refusal.
async fn user_ids(
    state: &AppState,
    fields: &Fields,
    limit_message: &'static str,
) -> Result<Vec<i64>, Failure> {
    let names: Vec<String> = fields
        .get("usernames")
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|name| name.trim_start_matches('@'))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "Enter at least one username.",
        ));
    }
    if names.len() > MAX_BULK_USERS {
        // GitLab's limit and message, checked before the lookup so that a huge list costs
        // nothing (the service checks again).
        return Err(seat_failure(SeatError::Limit(limit_message)));
    }
    // Only names that could be usernames reach the database (GitLab's username characters);
    // anything else (a NUL byte, markup) is simply unknown.
    let plausible: Vec<String> = names
        .iter()
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        })
        .cloned()
        .collect();
    let users = state.store.users_by_usernames(&plausible).await?;
    let unknown: Vec<&str> = names
        .iter()
        .filter(|name| {
            !users
                .iter()
                .any(|user| user.username.eq_ignore_ascii_case(name))
        })
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("No user with the username {}.", unknown.join(", ")),
        ));
    }
    Ok(users.iter().map(|user| user.id).collect())
}

fn purchase_id(raw: &str) -> Result<i64, Failure> {
    raw.parse()
        .map_err(|_| seat_failure(SeatError::NotAvailable))
}

pub async fn assign_seats(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let outcome = async {
        may_change(&admin, &fields)?;
        let purchase_id = purchase_id(&id)?;
        let ids = user_ids(&state, &fields, BULK_ASSIGN_LIMIT_MESSAGE).await?;
        let caller = Caller::from_actor(&admin.actor);
        let change = seats::assign_bulk(&state, &caller, purchase_id, &ids)
            .await
            .map_err(seat_failure)?;
        let assigned = change.users.len();
        Ok(format!(
            "notice=seats_assigned&count={assigned}&skipped={}",
            ids.len().saturating_sub(assigned)
        ))
    }
    .await;
    page_with(&state, &admin, outcome).await
}

pub async fn unassign_seats(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let outcome = async {
        may_change(&admin, &fields)?;
        let purchase_id = purchase_id(&id)?;
        let caller = Caller::from_actor(&admin.actor);
        // A holder's own "Unassign" button sends their id; the usernames box sends names.
        if let Some(user_id) = fields.get("user_id") {
            let user_id = user_id
                .parse()
                .map_err(|_| seat_failure(SeatError::NotAvailable))?;
            return match seats::remove_one(&state, &caller, purchase_id, user_id).await {
                Ok(Some(_)) => Ok("notice=seats_removed&count=1".to_string()),
                Ok(None) => Err(seat_failure(SeatError::Refused("NO_ASSIGNMENTS_FOUND"))),
                Err(error) => Err(seat_failure(error)),
            };
        }
        let ids = user_ids(&state, &fields, BULK_UNASSIGN_LIMIT_MESSAGE).await?;
        let change = seats::remove_bulk(&state, &caller, purchase_id, &ids)
            .await
            .map_err(seat_failure)?;
        Ok(format!(
            "notice=seats_removed&count={}",
            change.seats_removed
        ))
    }
    .await;
    page_with(&state, &admin, outcome).await
}

/// A group's add-on purchase, created or changed (the REST provisioning endpoint's service and
/// validations; the form always sends every field, so it saves whole terms).
pub async fn save_group_purchase(
    State(state): State<AppState>,
    admin: WebAdmin,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let outcome = async {
        may_change(&admin, &fields)?;
        let field = |name: &str| fields.get(name).unwrap_or_default().trim();
        let group = match field("group") {
            "" => None,
            id_or_path => state.store.find_group(id_or_path).await?,
        }
        .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, "404 Namespace Not Found"))?;
        let add_on = add_on(field("add_on"))
            .filter(|add_on| add_on.name == field("add_on"))
            .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, "404 Add-on Not Found"))?;
        let invalid =
            |name: &str| Failure::new(StatusCode::BAD_REQUEST, format!("{name} is invalid"));
        let date = |name: &'static str| {
            NaiveDate::parse_from_str(field(name), "%Y-%m-%d").map_err(|_| invalid(name))
        };
        let terms = PurchaseTerms {
            quantity: field("quantity").parse().map_err(|_| invalid("quantity"))?,
            started_on: date("started_on")?,
            expires_on: date("expires_on")?,
            purchase_xid: Some(field("purchase_xid"))
                .filter(|xid| !xid.is_empty())
                .map(str::to_string),
            trial: fields.get("trial").is_some(),
        };
        if let Some((name, message)) = terms.problem() {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                format!("{name} {message}"),
            ));
        }
        let mode = match state
            .store
            .find_add_on_purchase_by_name(Some(group.id), add_on.name)
            .await?
        {
            Some(_) => SaveMode::Update,
            None => SaveMode::Create,
        };
        match seats::save_group_purchase(
            &state,
            admin.actor.user(),
            group.id,
            add_on.name,
            &terms,
            mode,
        )
        .await
        {
            Ok(Some(_)) => Ok("notice=purchase_saved".to_string()),
            Ok(None) => Err(Failure::new(
                StatusCode::NOT_FOUND,
                "404 Subscription Add-on Purchase Not Found",
            )),
            Err(StoreError::Conflict(message)) => {
                Err(Failure::new(StatusCode::BAD_REQUEST, message))
            }
            Err(error) => Err(Failure::internal(error)),
        }
    }
    .await;
    page_with(&state, &admin, outcome).await
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        views::STYLESHEET,
    )
        .into_response()
}
