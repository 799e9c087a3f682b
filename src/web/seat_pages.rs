//! The Seats page's handlers: the same services as the seat-intelligence API.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use axum::extract::Request;

use axum::extract::Path;
use axum::response::IntoResponse;

use super::pages::{lenient_query, may_change, multipart_fields};
use super::response::Fields;
use super::response::{error_page, error_page_for, html, Failure};
use super::seat_views::{self, HolderFilters, HolderTable};
use super::seat_views::{BulkForm, BulkResult, SeatsExtras};
use super::session::WebAdmin;
use super::views::{Flash, PageContext};
use crate::domain::seats::list_entries;
use crate::services::add_ons::Caller;
use crate::services::duo_bulk::{self, BulkError, Recipients};
use crate::services::groups::{self, GroupError};
use crate::services::seat_alerts;
use crate::services::seat_holders::{self, SeatHolderError, SeatHolderQuery, SeatHolders};
use crate::state::AppState;

/// Seat holders shown per page.
const HOLDERS_PER_PAGE: i64 = 50;

/// The filters as the list service takes them; text that is not a number is refused as the
/// API refuses it.
fn holder_query(filters: &HolderFilters) -> Result<SeatHolderQuery, Failure> {
    let number = |name: &'static str, text: &Option<String>| match text
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
    {
        None => Ok(None),
        Some(text) => text
            .parse::<i64>()
            .map(Some)
            .map_err(|_| Failure::new(StatusCode::BAD_REQUEST, format!("{name} is invalid"))),
    };
    Ok(SeatHolderQuery {
        group: filters
            .group
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_string),
        access_level: number("access_level", &filters.access_level)?,
        inactive_for_days: number("inactive_for_days", &filters.inactive_for_days)?,
    })
}

fn holder_failure(error: SeatHolderError) -> Failure {
    match error {
        SeatHolderError::GroupNotFound => {
            Failure::new(StatusCode::NOT_FOUND, "404 Group Not Found")
        }
        SeatHolderError::Invalid(name) => {
            Failure::new(StatusCode::BAD_REQUEST, format!("{name} is invalid"))
        }
        SeatHolderError::Store(error) => Failure::internal(error),
    }
}

async fn prepared(state: &AppState, filters: &HolderFilters) -> Result<SeatHolders, Failure> {
    let query = holder_query(filters)?;
    seat_holders::prepare(state, &query)
        .await
        .map_err(holder_failure)
}

async fn holder_table(state: &AppState, filters: &HolderFilters) -> Result<HolderTable, Failure> {
    let holders = prepared(state, filters).await?;
    let after = filters
        .after
        .as_deref()
        .and_then(|text| text.parse::<i64>().ok())
        .unwrap_or(0);
    let page = holders
        .page(state, after, HOLDERS_PER_PAGE)
        .await
        .map_err(Failure::internal)?;
    let total = holders.count(state).await.map_err(Failure::internal)?;
    Ok(HolderTable {
        entries: page.entries,
        total,
        next_after: page.next_after,
    })
}

pub async fn show(
    State(state): State<AppState>,
    admin: WebAdmin,
    RawQuery(query): RawQuery,
) -> Response {
    let filters = lenient_query::<HolderFilters>(query.as_deref());
    let notice = match filters.notice.as_deref() {
        Some("member_removed") => Some(BulkResult::Notice(
            "The member was removed from the group.".into(),
        )),
        _ => None,
    };
    render(&state, &admin, &filters, Ok(notice), BulkForm::default()).await
}

/// "Remove from group" on a holder of a group-filtered list: GitLab's removal of a billable
/// member (the last owner is refused), then the list again.
pub async fn remove_billable_member(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path((group, user_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let outcome = async {
        may_change(&admin, &fields)?;
        let user_id = user_id
            .parse::<i64>()
            .map_err(|_| Failure::new(StatusCode::NOT_FOUND, "404 Not found"))?;
        groups::remove_billable_member(&state, &admin.actor, &group, user_id)
            .await
            .map_err(|error| match error {
                GroupError::GroupNotFound => {
                    Failure::new(StatusCode::NOT_FOUND, "404 Group Not Found")
                }
                GroupError::NoMemberForUser => Failure::new(
                    StatusCode::BAD_REQUEST,
                    "No member found for the given user_id.",
                ),
                GroupError::LastOwner => Failure::new(
                    StatusCode::BAD_REQUEST,
                    "The group's last owner cannot be removed.",
                ),
                GroupError::Store(error) => Failure::internal(error),
                _ => Failure::new(StatusCode::BAD_REQUEST, "The member could not be removed."),
            })
    }
    .await;
    let filters = HolderFilters {
        group: Some(group.clone()),
        ..HolderFilters::default()
    };
    match outcome {
        Ok(()) => axum::response::Redirect::to(&format!(
            "/admin/seats?{}&notice=member_removed",
            filters.query()
        ))
        .into_response(),
        Err(failure) => render(&state, &admin, &filters, Err(failure), BulkForm::default()).await,
    }
}

/// The page: the holders `filters` ask for, the alerts, the bulk forms, and a bulk form's
/// answer (or its refusal, shown with its status).
async fn render(
    state: &AppState,
    admin: &WebAdmin,
    filters: &HolderFilters,
    bulk: Result<Option<BulkResult>, Failure>,
    bulk_form: BulkForm,
) -> Response {
    let (mut status, mut flash, bulk_result) = match bulk {
        Ok(result) => (StatusCode::OK, None, result),
        Err(failure) if failure.status.is_server_error() => return error_page_for(failure),
        Err(failure) => (failure.status, Some(Flash::Alert(failure.message)), None),
    };
    let table = match holder_table(state, filters).await {
        Ok(table) => Some(table),
        Err(failure) if failure.status.is_server_error() => return error_page_for(failure),
        Err(failure) => {
            status = failure.status;
            flash = Some(Flash::Alert(failure.message));
            None
        }
    };
    let (seat_usage, purchases) = match (
        seat_alerts::status(state).await,
        duo_bulk::seat_purchases(state).await,
    ) {
        (Ok(usage), Ok(purchases)) => (usage, purchases),
        (Err(error), _) | (_, Err(error)) => return error_page_for(Failure::internal(error)),
    };
    let context = PageContext {
        user: admin.actor.user(),
        csrf_token: &admin.csrf_token,
        can_write: admin.can_write(),
        flash,
    };
    let extras = SeatsExtras {
        seat_usage: &seat_usage,
        purchases: &purchases,
        bulk_form,
        bulk_result,
    };
    html(
        status,
        seat_views::seats_page(filters, table.as_ref(), &extras, &context),
    )
}

fn bulk_failure(error: BulkError) -> Failure {
    let status = match &error {
        BulkError::PurchaseNotFound | BulkError::GroupNotFound => StatusCode::NOT_FOUND,
        BulkError::Invalid(_) | BulkError::Refused(_) => StatusCode::BAD_REQUEST,
        BulkError::Store(_) => return Failure::internal(error),
    };
    Failure::new(status, error.to_string())
}

/// The bulk form's fields as the page shows them again.
fn bulk_form(fields: &Fields) -> BulkForm {
    let text = |name: &str| fields.get(name).unwrap_or_default().trim().to_string();
    let file = text("entries_file");
    BulkForm {
        purchase_id: text("purchase_id"),
        group: text("group"),
        min_access_level: text("min_access_level"),
        // A chosen file wins over the text box.
        entries: if file.is_empty() {
            text("entries")
        } else {
            file
        },
        inactive_for_days: text("inactive_for_days"),
    }
}

fn number(name: &'static str, text: &str) -> Result<i64, Failure> {
    text.parse::<i64>()
        .map_err(|_| Failure::new(StatusCode::BAD_REQUEST, format!("{name} is invalid")))
}

/// Previews (or, confirmed, applies) a bulk assignment from the page.
pub async fn assign_duo_seats(
    State(state): State<AppState>,
    admin: WebAdmin,
    request: Request,
) -> Response {
    let mut form = BulkForm::default();
    let outcome = async {
        let fields = multipart_fields(&state, &admin, request).await?;
        form = bulk_form(&fields);
        let purchase_id = number("purchase_id", &form.purchase_id)?;
        let recipients = match (form.group.is_empty(), form.entries.is_empty()) {
            (false, true) => Recipients::Group {
                group: form.group.clone(),
                min_access_level: number("min_access_level", &form.min_access_level)?,
            },
            (true, false) => Recipients::Listed(
                list_entries(&form.entries)
                    .map_err(|message| Failure::new(StatusCode::BAD_REQUEST, message))?,
            ),
            (false, false) => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "Give a group or a list of users, not both.",
                ))
            }
            (true, true) => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "Give a group, or list users (or choose a CSV file).",
                ))
            }
        };
        let apply = fields.get("apply") == Some("1");
        duo_bulk::assign(
            &state,
            &Caller::from_principal(&admin.actor),
            purchase_id,
            &recipients,
            !apply,
        )
        .await
        .map(|report| Some(BulkResult::Assign(report)))
        .map_err(bulk_failure)
    }
    .await;
    render(&state, &admin, &HolderFilters::default(), outcome, form).await
}

/// Previews (or, confirmed, applies) a reclaim from the page.
pub async fn reclaim_duo_seats(
    State(state): State<AppState>,
    admin: WebAdmin,
    request: Request,
) -> Response {
    let mut form = BulkForm::default();
    let outcome = async {
        let fields = multipart_fields(&state, &admin, request).await?;
        form = bulk_form(&fields);
        let purchase_id = number("purchase_id", &form.purchase_id)?;
        let days = number("inactive_for_days", &form.inactive_for_days)?;
        let apply = fields.get("apply") == Some("1");
        duo_bulk::reclaim(
            &state,
            &Caller::from_principal(&admin.actor),
            purchase_id,
            days,
            !apply,
        )
        .await
        .map(|report| Some(BulkResult::Reclaim(report)))
        .map_err(bulk_failure)
    }
    .await;
    render(&state, &admin, &HolderFilters::default(), outcome, form).await
}

pub async fn billable_users_csv(
    State(state): State<AppState>,
    _: WebAdmin,
    RawQuery(query): RawQuery,
) -> Response {
    let filters = lenient_query::<HolderFilters>(query.as_deref());
    match prepared(&state, &filters).await {
        Ok(holders) => crate::body::csv_download(
            "billable_users.csv",
            Body::from_stream(holders.csv(state.clone())),
        ),
        Err(failure) if failure.status.is_server_error() => error_page_for(failure),
        Err(failure) => error_page(failure.status, &failure.message),
    }
}
