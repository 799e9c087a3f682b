//! The Seats page's handlers: the same services as the seat-intelligence API.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::pages::lenient_query;
use super::response::{error_page, error_page_for, html, Failure};
use super::seat_views::{self, HolderFilters, HolderTable};
use super::session::WebAdmin;
use super::views::{Flash, PageContext};
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
    let (status, table, flash) = match holder_table(&state, &filters).await {
        Ok(table) => (StatusCode::OK, Some(table), None),
        Err(failure) if failure.status.is_server_error() => return error_page_for(failure),
        Err(failure) => (failure.status, None, Some(Flash::Alert(failure.message))),
    };
    let seat_usage = match seat_alerts::status(&state).await {
        Ok(usage) => usage,
        Err(error) => return error_page_for(Failure::internal(error)),
    };
    let context = PageContext {
        user: admin.actor.user(),
        csrf_token: &admin.csrf_token,
        can_write: admin.can_write(),
        flash,
    };
    html(
        status,
        seat_views::seats_page(&filters, table.as_ref(), &seat_usage, &context),
    )
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
