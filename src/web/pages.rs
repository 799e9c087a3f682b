//! The page's handlers: read the form, call the same services as the API, answer with HTML
//! (or a redirect after a change, so that reloading does not repeat it).

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};

use super::response::{
    error_page, error_page_for, html, invalid_authenticity_token, Failure, Fields,
};
use super::session::{
    self, cookie, csrf_matches, set_cookie, WebAdmin, PAGE_PATH, SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
};
use super::true_up_pages;
use super::views::{self, Flash, PageContext, CSRF_FIELD};

use crate::error::ApiError;
use crate::services::license_changes::{self, UploadError};
use crate::services::license_check::{self, LicenseCheck};
use crate::services::licenses;
use crate::services::{subscription, web_sessions};
use crate::state::AppState;

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

// ---------------------------------------------------------------------------------------
// Signing in and out

/// A query string read leniently: anything malformed counts as absent (it only picks a
/// message to show).
pub(super) fn lenient_query<T: serde::de::DeserializeOwned + Default>(query: Option<&str>) -> T {
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
    render_with(
        &state,
        &admin,
        StatusCode::OK,
        flash,
        None,
        query.as_deref(),
    )
    .await
}

async fn render(
    state: &AppState,
    admin: &WebAdmin,
    status: StatusCode,
    flash: Option<Flash>,
) -> Response {
    render_with(state, admin, status, flash, None, None).await
}

/// The page, with a license check's result when there is one; `query` may carry the
/// what-if form (a preview).
async fn render_with(
    state: &AppState,
    admin: &WebAdmin,
    status: StatusCode,
    flash: Option<Flash>,
    license_check: Option<LicenseCheck>,
    query: Option<&str>,
) -> Response {
    match subscription::overview(state).await {
        Ok(overview) => {
            let true_up = match overview.current {
                Some(_) => true_up_pages::section(state, query).await,
                None => maud::html! {},
            };
            let first_count_at = crate::jobs::next_history_snapshot(state.clock.now());
            let context = PageContext {
                user: admin.actor.user(),
                csrf_token: &admin.csrf_token,
                can_write: admin.can_write(),
                flash,
            };
            html(
                status,
                views::subscription(
                    &overview,
                    &context,
                    license_check.as_ref(),
                    first_count_at,
                    true_up,
                ),
            )
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

/// A change posted by a form: the checks every change makes ([`may_change`]), then `change`,
/// then the page again ([`page_with`]).
pub(super) async fn form_change(
    state: &AppState,
    admin: &WebAdmin,
    body: &Bytes,
    change: impl AsyncFnOnce(&Fields) -> Result<String, Failure>,
) -> Response {
    let fields = Fields::parse(body);
    let outcome = match may_change(admin, &fields) {
        Ok(()) => change(&fields).await,
        Err(refusal) => Err(refusal),
    };
    page_with(state, admin, outcome).await
}

/// The checks every change makes: the form's CSRF token, no NUL character, and a token that
/// may write.
pub(super) fn may_change(admin: &WebAdmin, fields: &Fields) -> Result<(), Failure> {
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

/// The fields of a multipart form (text fields and files alike, as text), once the form has
/// passed the checks every change makes.
pub(super) async fn multipart_fields(
    state: &AppState,
    admin: &WebAdmin,
    request: Request,
) -> Result<Fields, Failure> {
    let mut multipart = Multipart::from_request(request, state)
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
    may_change(admin, &fields)?;
    Ok(fields)
}

/// The license key a multipart form carries (a chosen file wins over the text box, as in
/// GitLab's form).
async fn license_key_from_form(
    state: &AppState,
    admin: &WebAdmin,
    request: Request,
) -> Result<String, Failure> {
    let fields = multipart_fields(state, admin, request).await?;
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
    Ok(key)
}

pub async fn upload_license(
    State(state): State<AppState>,
    admin: WebAdmin,
    request: Request,
) -> Response {
    let outcome = async {
        let key = license_key_from_form(&state, &admin, request).await?;
        match license_changes::upload(&state, &admin.actor, &key).await {
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

/// "Check first" on the upload form: the page again, with what the upload would do and
/// nothing written.
pub async fn check_license(
    State(state): State<AppState>,
    admin: WebAdmin,
    request: Request,
) -> Response {
    let checked = async {
        let key = license_key_from_form(&state, &admin, request).await?;
        license_check::check(&state, &key)
            .await
            .map_err(Failure::internal)
    }
    .await;
    match checked {
        Ok(check) => render_with(&state, &admin, StatusCode::OK, None, Some(check), None).await,
        Err(failure) if failure.status.is_server_error() => error_page_for(failure),
        Err(failure) => {
            render(
                &state,
                &admin,
                failure.status,
                Some(Flash::Alert(failure.message)),
            )
            .await
        }
    }
}

pub async fn delete_license(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    form_change(&state, &admin, &body, async |_: &Fields| {
        let not_found = || Failure::new(StatusCode::NOT_FOUND, "404 Not found");
        let id = id.parse::<i64>().map_err(|_| not_found())?;
        if license_changes::delete(&state, &admin.actor, id).await? {
            Ok("notice=license_deleted".to_string())
        } else {
            Err(not_found())
        }
    })
    .await
}

pub async fn refresh_billable_users(
    State(state): State<AppState>,
    admin: WebAdmin,
    body: Bytes,
) -> Response {
    form_change(&state, &admin, &body, async |_: &Fields| {
        let Some((row, _)) = licenses::current(&state, state.clock.today()).await? else {
            return Err(Failure::new(StatusCode::NOT_FOUND, "404 License Not Found"));
        };
        match licenses::refresh_billable_users(&state, row.id).await? {
            Some(()) => Ok("notice=recount_queued".to_string()),
            None => Err(Failure::new(StatusCode::NOT_FOUND, "404 Not Found")),
        }
    })
    .await
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
