//! The SCIM page's handlers: the same services as the SCIM administrator API
//! (`api/scim_admin.rs`), each change a form checked by [`may_change`]. A new token is shown
//! in the answer to the form that made it — never in a redirect or a cookie, so that it is on
//! no URL, in no history and on no later page; a group's link ends in a redirect with a fixed
//! notice.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{lenient_query, may_change};
use super::response::{error_page_for, html, Failure, Fields};
use super::scim_views::{self, ScimPage, SCIM_API_PATH, SCIM_PATH};
use super::session::WebAdmin;
use super::views::{Flash, PageContext};
use crate::services::duo_bulk;
use crate::services::scim::{self, LinkError, ScimError};
use crate::state::AppState;

/// The page's query: a fixed notice after a change (the query string cannot put words on the
/// page).
#[derive(Debug, Default, serde::Deserialize)]
pub struct ScimQuery {
    notice: Option<String>,
    without_seat: Option<u32>,
}

impl ScimQuery {
    fn flash(&self) -> Option<Flash> {
        let text = match self.notice.as_deref()? {
            "group_linked" => match self.without_seat.unwrap_or_default() {
                0 => "The group is linked: every member who may hold a seat has one.".to_string(),
                short => format!(
                    "The group is linked, but the seats ran out: {short} {} got none.",
                    if short == 1 { "member" } else { "members" }
                ),
            },
            "group_unlinked" => {
                "The group is unlinked: the seats it gave are free again.".to_string()
            }
            _ => return None,
        };
        Some(Flash::Notice(text))
    }
}

/// A SCIM refusal as the page shows it, with the API's status.
fn scim_failure(error: ScimError) -> Failure {
    match error {
        ScimError::NotFound(_) => Failure::new(StatusCode::NOT_FOUND, "404 SCIM group Not Found"),
        ScimError::Conflict(message) => Failure::new(StatusCode::CONFLICT, message),
        ScimError::Invalid(message) => Failure::new(StatusCode::BAD_REQUEST, message),
        ScimError::Store(error) => error.into(),
    }
}

fn link_failure(error: LinkError) -> Failure {
    match error {
        LinkError::PurchaseNotFound => {
            Failure::new(StatusCode::NOT_FOUND, "404 Add-on purchase Not Found")
        }
        LinkError::NotDuo => Failure::new(
            StatusCode::BAD_REQUEST,
            "The add-on purchase is not a GitLab Duo add-on: its seats are not assigned to users.",
        ),
        LinkError::Scim(error) => scim_failure(error),
    }
}

pub async fn show(
    State(state): State<AppState>,
    admin: WebAdmin,
    RawQuery(query): RawQuery,
) -> Response {
    let flash = lenient_query::<ScimQuery>(query.as_deref()).flash();
    render(&state, &admin, Ok(flash), None).await
}

/// The page; `outcome` is a notice, or a refusal shown with its status; `new_token` a token
/// this request made.
async fn render(
    state: &AppState,
    admin: &WebAdmin,
    outcome: Result<Option<Flash>, Failure>,
    new_token: Option<&str>,
) -> Response {
    let (status, flash) = match outcome {
        Ok(flash) => (StatusCode::OK, flash),
        Err(failure) if failure.status.is_server_error() => return error_page_for(failure),
        Err(failure) => (failure.status, Some(Flash::Alert(failure.message))),
    };
    let read = async {
        let token_created_at = scim::token_created_at(state).await.map_err(scim_failure)?;
        let groups = scim::all_group_seats(state).await.map_err(scim_failure)?;
        let purchases = duo_bulk::seat_purchases(state).await?;
        Ok::<_, Failure>((token_created_at, groups, purchases))
    }
    .await;
    let (token_created_at, groups, purchases) = match read {
        Ok(read) => read,
        Err(failure) => return error_page_for(failure),
    };
    let endpoint = format!("{}{SCIM_API_PATH}", state.config.external_url);
    let context = PageContext {
        user: admin.actor.user(),
        csrf_token: &admin.csrf_token,
        can_write: admin.can_write(),
        flash,
    };
    let page = ScimPage {
        endpoint: &endpoint,
        token_created_at,
        new_token,
        groups: &groups,
        purchases: &purchases,
    };
    html(status, scim_views::scim_page(&page, &context))
}

/// "Generate a SCIM token": the first token only; once one exists, the page offers a reset.
pub async fn generate_token(
    State(state): State<AppState>,
    admin: WebAdmin,
    body: Bytes,
) -> Response {
    make_token(state, admin, body, false).await
}

/// "Reset the token": a new token replaces the old one at once.
pub async fn reset_token(State(state): State<AppState>, admin: WebAdmin, body: Bytes) -> Response {
    make_token(state, admin, body, true).await
}

async fn make_token(state: AppState, admin: WebAdmin, body: Bytes, reset: bool) -> Response {
    let fields = Fields::parse(&body);
    let outcome = async {
        may_change(&admin, &fields)?;
        scim::generate_token(&state, &admin.actor, reset)
            .await
            .map_err(scim_failure)?
            .ok_or_else(|| {
                Failure::new(
                    StatusCode::CONFLICT,
                    "The SCIM token exists already: reset it to get a new one.",
                )
            })
    }
    .await;
    match outcome {
        Ok(token) => {
            let notice = if reset {
                "The SCIM token was reset: the old one no longer works."
            } else {
                "The SCIM token was generated."
            };
            render(
                &state,
                &admin,
                Ok(Some(Flash::Notice(notice.to_string()))),
                Some(&token),
            )
            .await
        }
        Err(failure) => render(&state, &admin, Err(failure), None).await,
    }
}

/// What a group row's buttons do.
#[derive(Debug, Clone, Copy)]
enum GroupAction {
    /// "Link": the members hold seats of the chosen purchase while seats last.
    Link,
    /// "Unlink": the seats the group gave are freed.
    Unlink,
}

/// The purchase chosen in a group's row.
fn chosen_purchase(fields: &Fields) -> Result<i64, Failure> {
    let text = fields.get("add_on_purchase_id").unwrap_or_default().trim();
    if text.is_empty() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "Choose the GitLab Duo purchase to link the group to.",
        ));
    }
    text.parse::<i64>().map_err(|_| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "The add-on purchase is not a purchase ID.",
        )
    })
}

async fn on_group(
    state: AppState,
    admin: WebAdmin,
    scim_id: String,
    body: Bytes,
    action: GroupAction,
) -> Response {
    let fields = Fields::parse(&body);
    let outcome = async {
        may_change(&admin, &fields)?;
        let purchase_id = match action {
            GroupAction::Link => Some(chosen_purchase(&fields)?),
            GroupAction::Unlink => None,
        };
        let seats = scim::link_group(&state, &admin.actor, &scim_id, purchase_id)
            .await
            .map_err(link_failure)?;
        Ok(match action {
            GroupAction::Link => format!(
                "notice=group_linked&without_seat={}",
                u32::try_from(seats.without_seat).unwrap_or(u32::MAX)
            ),
            GroupAction::Unlink => "notice=group_unlinked".to_string(),
        })
    }
    .await;
    match outcome {
        Ok(query) => Redirect::to(&format!("{SCIM_PATH}?{query}#groups")).into_response(),
        Err(failure) => render(&state, &admin, Err(failure), None).await,
    }
}

/// "Link" in a group's row.
pub async fn link_group(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(scim_id): Path<String>,
    body: Bytes,
) -> Response {
    on_group(state, admin, scim_id, body, GroupAction::Link).await
}

/// "Unlink" in a group's row.
pub async fn unlink_group(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(scim_id): Path<String>,
    body: Bytes,
) -> Response {
    on_group(state, admin, scim_id, body, GroupAction::Unlink).await
}
