//! Seat intelligence: this server's extensions to GitLab's API, under `/api/v4/-/` (a prefix
//! GitLab's API never uses, so a script pointed at real GitLab gets a 404, never something
//! else). Documented under their own OpenAPI tag and in docs/seat-intelligence.md.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{cursor_id, ListRequest};
use super::params::Params;
use crate::auth::Admin;
use crate::domain::seats::SeatHolderEntry;
use crate::error::{ApiError, ApiResult};
use crate::services::add_ons::Caller;
use crate::services::duo_bulk::{self, AssignReport, BulkError, Recipients, ReclaimReport};
use crate::services::ledger::{self, BillableOnEntry, LedgerEntry, LedgerError, LedgerQuery};
use crate::services::license_check::{self, LicenseCheck};
use crate::services::seat_alerts::{self, SeatUsage};
use crate::services::seat_holders::{self, SeatHolderError, SeatHolderQuery};
use crate::services::true_up::{self, PeakExplanation, TrueUpError, WhatIf, WhatIfUsers};
use crate::state::AppState;

/// The OpenAPI tag of every extension.
pub const TAG: &str = "seat-intelligence";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(billable_users))
        .routes(routes!(billable_users_csv))
        .routes(routes!(ledger))
        .routes(routes!(ledger_csv))
        .routes(routes!(billable_on))
        .routes(routes!(billable_on_csv))
        .routes(routes!(peak))
        .routes(routes!(peak_csv))
        .routes(routes!(forecast))
        .routes(routes!(what_if))
        .routes(routes!(alerts))
        .routes(routes!(check_license))
        .routes(routes!(assign_duo_seats))
        .routes(routes!(reclaim_duo_seats))
}

fn seat_holder_error(error: SeatHolderError) -> ApiError {
    match error {
        SeatHolderError::GroupNotFound => ApiError::NotFound("404 Group Not Found"),
        SeatHolderError::Invalid(name) => ApiError::invalid(name),
        SeatHolderError::Store(error) => error.into(),
    }
}

/// The filters both forms of the list take.
fn seat_holder_query(params: &Params) -> Result<SeatHolderQuery, ApiError> {
    Ok(SeatHolderQuery {
        group: params.optional_string("group")?,
        access_level: params.optional_integer("access_level")?,
        inactive_for_days: params.optional_integer("inactive_for_days")?,
    })
}

#[utoipa::path(get, operation_id = "seats_billable_users", path = "/api/v4/-/seats/billable_users", tag = TAG, summary = "Who holds a seat (extension)", description = "Every billable user instance-wide, with why each occupies a seat (highest role, user type, state, last activity), in id order. Keyset pages, as GitLab's: a `Link` header with rel=next carries the cursor; no totals (the page and the CSV give them).", params(("group" = Option<String>, Query, description = "A group's ID or path: its members only"), ("access_level" = Option<i64>, Query, description = "Only users whose highest role is this level (10 Guest … 50 Owner)"), ("inactive_for_days" = Option<i64>, Query, description = "Only users not active for at least this many days, or never"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("cursor" = Option<String>, Query, description = "The cursor from the previous page's next link")), responses((status = 200, description = "OK", body = [SeatHolderEntry]), crate::api::responses::ErrorResponses))]
async fn billable_users(
    _: Admin,
    State(state): State<AppState>,
    list: ListRequest,
) -> ApiResult<Response> {
    let query = seat_holder_query(&list.params)?;
    let after = match list.params.optional_string("cursor")? {
        None => 0,
        Some(cursor) => cursor_id(&cursor).ok_or_else(|| ApiError::invalid("cursor"))?,
    };
    let holders = seat_holders::prepare(&state, &query)
        .await
        .map_err(seat_holder_error)?;
    let page = holders.page(&state, after, list.per_page()).await?;
    // Keyset pages carry no totals, as GitLab's: counting up to 10,000 filtered rows would
    // cost more than the page.
    let headers = list.keyset_headers(page.next_after, &state.config.external_url);
    Ok((headers, Json(page.entries)).into_response())
}

#[utoipa::path(get, operation_id = "seats_billable_users_csv", path = "/api/v4/-/seats/billable_users.csv", tag = TAG, summary = "Who holds a seat, as CSV (extension)", description = "The whole list with the same filters, as CSV (written as it is read).", params(("group" = Option<String>, Query, description = "A group's ID or path"), ("access_level" = Option<i64>, Query, description = "Highest role"), ("inactive_for_days" = Option<i64>, Query, description = "Inactive for at least this many days")), responses((status = 200, description = "OK", content_type = "text/csv", body = String), crate::api::responses::ErrorResponses))]
async fn billable_users_csv(
    _: Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let query = seat_holder_query(&params)?;
    let holders = seat_holders::prepare(&state, &query)
        .await
        .map_err(seat_holder_error)?;
    Ok(crate::body::csv_download(
        "billable_users.csv",
        Body::from_stream(holders.csv(state.clone())),
    ))
}

fn ledger_error(error: LedgerError) -> ApiError {
    match error {
        LedgerError::UserNotFound => ApiError::NotFound("404 User Not Found"),
        LedgerError::Invalid(name) => ApiError::invalid(name),
        LedgerError::Store(error) => error.into(),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// The cursor a keyset list was given (0: the first page).
fn cursor_after(list: &ListRequest) -> Result<i64, ApiError> {
    match list.params.optional_string("cursor")? {
        None => Ok(0),
        Some(cursor) => cursor_id(&cursor).ok_or_else(|| ApiError::invalid("cursor")),
    }
}

/// The filters both forms of the ledger take.
fn ledger_query(params: &Params) -> Result<LedgerQuery, ApiError> {
    Ok(LedgerQuery {
        user: params.optional_string("user")?,
        from: params.optional_string("from")?,
        to: params.optional_string("to")?,
        direction: params.optional_string("direction")?,
    })
}

#[utoipa::path(get, operation_id = "seats_ledger", path = "/api/v4/-/seats/ledger", tag = TAG, summary = "The seat ledger: who started and stopped being billable, and why (extension)", description = "Every recount (the daily one, `refresh_billable_users`, the recounts after changes) records who started and who stopped being billable since the previous one, with the reason; the first recount after the upgrade records the users who counted then as `baseline`. Append-only, in the order written. Keyset pages: a `Link` header with rel=next carries the cursor.", params(("user" = Option<String>, Query, description = "A user's ID or username"), ("from" = Option<String>, Query, description = "YYYY-MM-DD: entries recorded on or after this day (UTC)"), ("to" = Option<String>, Query, description = "YYYY-MM-DD: entries recorded on or before this day"), ("direction" = Option<String>, Query, description = "started (with the baseline) or stopped"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("cursor" = Option<String>, Query, description = "The cursor from the previous page's next link")), responses((status = 200, description = "OK", body = [LedgerEntry]), crate::api::responses::ErrorResponses))]
async fn ledger(_: Admin, State(state): State<AppState>, list: ListRequest) -> ApiResult<Response> {
    let query = ledger_query(&list.params)?;
    let per_page = list.per_page();
    let mut entries = ledger::entries(&state, &query, cursor_after(&list)?, per_page + 1)
        .await
        .map_err(ledger_error)?;
    let next = (entries.len() as i64 > per_page).then(|| {
        entries.truncate(usize::try_from(per_page).unwrap_or(0));
        entries.last().map_or(0, |entry| entry.id)
    });
    Ok((
        list.keyset_headers(next, &state.config.external_url),
        Json(entries),
    )
        .into_response())
}

#[utoipa::path(get, operation_id = "seats_ledger_csv", path = "/api/v4/-/seats/ledger.csv", tag = TAG, summary = "The seat ledger, as CSV (extension)", description = "Every entry the filters match, in the order written, as CSV (`id,recorded_at,user_id,username,direction,reason,plan`), written a thousand rows at a time as it is read. The filters are checked before the first line: a bad one is the JSON list's 400 or 404.", params(("user" = Option<String>, Query, description = "A user's ID or username"), ("from" = Option<String>, Query, description = "YYYY-MM-DD: entries recorded on or after this day (UTC)"), ("to" = Option<String>, Query, description = "YYYY-MM-DD: entries recorded on or before this day"), ("direction" = Option<String>, Query, description = "started (with the baseline) or stopped")), responses((status = 200, description = "OK", content_type = "text/csv", body = String), crate::api::responses::ErrorResponses))]
async fn ledger_csv(
    _: Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let ledger = ledger::prepare(&state, &ledger_query(&params)?)
        .await
        .map_err(ledger_error)?;
    Ok(crate::body::csv_download(
        "seat_ledger.csv",
        Body::from_stream(ledger.csv(state.clone())),
    ))
}

#[utoipa::path(get, operation_id = "seats_billable_on", path = "/api/v4/-/seats/billable_on", tag = TAG, summary = "Who was billable on a day (extension)", description = "The users billable at the end of `date` (UTC) as the recounts up to then found them, each with the recount from which they counted and why — any day since the seat ledger began (400 before). In user-id order; keyset pages: a `Link` header with rel=next carries the cursor.", params(("date" = String, Query, description = "YYYY-MM-DD"), ("per_page" = Option<i64>, Query, description = "Items per page (at most 100)"), ("cursor" = Option<String>, Query, description = "The cursor from the previous page's next link")), responses((status = 200, description = "OK", body = [BillableOnEntry]), crate::api::responses::ErrorResponses))]
async fn billable_on(
    _: Admin,
    State(state): State<AppState>,
    list: ListRequest,
) -> ApiResult<Response> {
    list.params.require(&["date"])?;
    let date = list.params.required_string("date")?;
    let per_page = list.per_page();
    let mut users = ledger::billable_on(&state, &date, cursor_after(&list)?, per_page + 1)
        .await
        .map_err(ledger_error)?;
    let next = (users.len() as i64 > per_page).then(|| {
        users.truncate(usize::try_from(per_page).unwrap_or(0));
        users.last().map_or(0, |user| user.user_id)
    });
    Ok((
        list.keyset_headers(next, &state.config.external_url),
        Json(users),
    )
        .into_response())
}

#[utoipa::path(get, operation_id = "seats_billable_on_csv", path = "/api/v4/-/seats/billable_on.csv", tag = TAG, summary = "Who was billable on a day, as CSV (extension)", description = "Everyone billable at the end of `date` (UTC), in user-id order, as CSV (`user_id,username,since,counted_before_the_ledger_began,reason`), written a thousand rows at a time as it is read. The date is checked before the first line: missing, invalid or before the seat ledger began is the JSON list's 400.", params(("date" = String, Query, description = "YYYY-MM-DD")), responses((status = 200, description = "OK", content_type = "text/csv", body = String), crate::api::responses::ErrorResponses))]
async fn billable_on_csv(
    _: Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    params.require(&["date"])?;
    let date = params.required_string("date")?;
    let day = ledger::prepare_billable_on(&state, &date)
        .await
        .map_err(ledger_error)?;
    Ok(crate::body::csv_download(
        &format!("billable_on_{}.csv", day.day()),
        Body::from_stream(day.csv(state.clone())),
    ))
}

fn true_up_error(error: TrueUpError) -> ApiError {
    match error {
        TrueUpError::NoLicense => ApiError::NotFound("404 License Not Found"),
        TrueUpError::Invalid(name) => ApiError::invalid(name),
        TrueUpError::Missing(message) => ApiError::InvalidParameter(message.into()),
        TrueUpError::NoTrueUp(message) => {
            ApiError::Message(axum::http::StatusCode::UNPROCESSABLE_ENTITY, message.into())
        }
        TrueUpError::Store(error) => error.into(),
    }
}

#[utoipa::path(get, operation_id = "seats_peak", path = "/api/v4/-/seats/peak", tag = TAG, summary = "The peak of the license term, explained (extension)", description = "The day of the term's highest daily billable count (GitLab's historical maximum, which the true-up charges above the seats), the people billable that day with why (from the seat ledger, when it covers that day), and who of them has stopped counting since, with when and why — the peak does not fall with them. People in user-id order; keyset pages: a `Link` header with rel=next carries the cursor.", params(("per_page" = Option<i64>, Query, description = "People per page (at most 100)"), ("cursor" = Option<String>, Query, description = "The cursor from the previous page's next link")), responses((status = 200, description = "OK", body = PeakExplanation), crate::api::responses::ErrorResponses))]
async fn peak(_: Admin, State(state): State<AppState>, list: ListRequest) -> ApiResult<Response> {
    let (explanation, next) = true_up::peak(&state, cursor_after(&list)?, list.per_page())
        .await
        .map_err(true_up_error)?;
    Ok((
        list.keyset_headers(next, &state.config.external_url),
        Json(explanation),
    )
        .into_response())
}

#[utoipa::path(get, operation_id = "seats_peak_csv", path = "/api/v4/-/seats/peak.csv", tag = TAG, summary = "The peak day's people, as CSV (extension)", description = "Everyone billable on the day of the term's highest daily count, in user-id order, with why, whether they still count, and when and why they stopped since (`user_id,username,reason,still_billable,stopped_at,stopped_because`), written a thousand rows at a time as it is read; only the header when the seat ledger does not cover the peak day. Without a license, or one without seats or an end, the JSON answer's error.", responses((status = 200, description = "OK", content_type = "text/csv", body = String), crate::api::responses::ErrorResponses))]
async fn peak_csv(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let people = true_up::peak_people(&state).await.map_err(true_up_error)?;
    Ok(crate::body::csv_download(
        "peak.csv",
        Body::from_stream(people.csv(state.clone())),
    ))
}

#[utoipa::path(get, operation_id = "seats_forecast", path = "/api/v4/-/seats/forecast", tag = TAG, summary = "The true-up forecast (extension)", description = "Users over license so far this term (`overage_so_far`: the peak above the seats, what the renewal charges — `GET /license`'s `overage` is today's count above the seats while the license runs; `explanation` says why they differ), the projection to the term's end at today's count (`projected_overage`, the headline) and at the trend of the last 30 and 90 days, and GitLab's quarterly reconciliation (each quarter's new overage, prorated). With `price_per_seat` (and `currency`, default USD) every figure has its amount. Nothing is written. docs/true-up.md has the rules and a worked example.", params(("price_per_seat" = Option<String>, Query, description = "The annual price of one seat, e.g. 290 or 290.50"), ("currency" = Option<String>, Query, description = "Three letters, e.g. EUR (default USD)")), responses((status = 200, description = "OK", body = crate::domain::true_up::Forecast), crate::api::responses::ErrorResponses))]
async fn forecast(_: Admin, State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let price = params.optional_string("price_per_seat")?;
    let currency = params.optional_string("currency")?;
    let forecast = true_up::forecast(&state, price.as_deref(), currency.as_deref())
        .await
        .map_err(true_up_error)?;
    Ok(Json(forecast).into_response())
}

#[utoipa::path(post, operation_id = "seats_what_if", path = "/api/v4/-/seats/what_if", tag = TAG, summary = "What removing users would change (extension)", description = "A preview, nothing written: given `usernames` (a list, or text separated by commas, spaces or lines; at most 10,000) or `inactive_for_days` (the billable users not active for that long, or never), how many of them count now, and today's count, the projected overage at renewal and its amount (`price_per_seat`, `currency`) before and after — while the peak already reached (`historical_max`, `overage_so_far`) stays.", request_body(content = String, description = "JSON, a form or the query string: usernames or inactive_for_days, price_per_seat, currency", content_type = "application/json"), responses((status = 200, description = "OK", body = WhatIf), crate::api::responses::ErrorResponses))]
async fn what_if(_: Admin, State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let users =
        match (
            params.optional_list("usernames")?,
            params.optional_integer("inactive_for_days")?,
        ) {
            (Some(names), None) => WhatIfUsers::Usernames(
                names
                    .iter()
                    .flat_map(|entry| entry.split([',', ' ', '\n', '\r', '\t']))
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            (None, Some(days)) => WhatIfUsers::InactiveForDays(days),
            (Some(_), Some(_)) => {
                return Err(ApiError::InvalidParameter(
                    "usernames, inactive_for_days are mutually exclusive".into(),
                ))
            }
            (None, None) => return Err(ApiError::InvalidParameter(
                "usernames, inactive_for_days are missing, exactly one parameter must be provided"
                    .into(),
            )),
        };
    let price = params.optional_string("price_per_seat")?;
    let currency = params.optional_string("currency")?;
    let answer = true_up::what_if(&state, users, price.as_deref(), currency.as_deref())
        .await
        .map_err(true_up_error)?;
    Ok(Json(answer).into_response())
}

/// The seat-alert settings and where each set of seats stands.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
struct SeatAlerts {
    /// The configured thresholds (`SEAT_ALERT_THRESHOLDS`), percentages.
    thresholds: Vec<u32>,
    seats: Vec<SeatUsage>,
}

#[utoipa::path(get, operation_id = "seats_alerts", path = "/api/v4/-/seats/alerts", tag = TAG, summary = "Seat alerts (extension)", description = "The current license's seats and each active add-on purchase's: in use, there, the thresholds reached, and those that have fired a `seat_usage_threshold_reached` system-hook event (each fires once per crossing; a count back below re-arms it).", responses((status = 200, description = "OK", body = SeatAlerts), crate::api::responses::ErrorResponses))]
async fn alerts(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(SeatAlerts {
        thresholds: state.config.seat_alert_thresholds.clone(),
        seats: seat_alerts::status(&state).await?,
    })
    .into_response())
}

#[utoipa::path(post, operation_id = "seats_license_check", path = "/api/v4/-/license/check", tag = TAG, summary = "Check a license before uploading it (extension)", description = "What `POST /api/v4/license` would answer and do with this key, without writing anything: accepted, or refused with GitLab's exact message; the seats, overage and `user_limit` it would show; the add-on purchases it would create, change or end, and the seat holders who would lose their seat. 200 either way: a refusal is an answer, not an error.", request_body(content = crate::api::bodies::LicenseUpload, description = "The key, as for the upload: JSON, a form or the query string", content_type = "application/json"), responses((status = 200, description = "OK", body = LicenseCheck), crate::api::responses::ErrorResponses))]
async fn check_license(
    _: Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let data = params.required_string("license")?;
    Ok(Json(license_check::check(&state, &data).await?).into_response())
}

fn bulk_error(error: BulkError) -> ApiError {
    match error {
        BulkError::PurchaseNotFound => ApiError::NotFound("404 Add-on purchase Not Found"),
        BulkError::GroupNotFound => ApiError::NotFound("404 Group Not Found"),
        BulkError::Invalid(name) => ApiError::invalid(name),
        BulkError::Refused(message) => ApiError::BadRequest(message),
        BulkError::Store(error) => error.into(),
    }
}

/// The GID prefix of an add-on purchase, as GraphQL's `addOnPurchases` gives its ids.
const PURCHASE_GID: &str = "gid://gitlab/GitlabSubscriptions::AddOnPurchase/";

/// `add_on_purchase_id`: a number, or the purchase's global ID from GraphQL.
fn purchase_id(params: &Params) -> Result<i64, ApiError> {
    params.require(&["add_on_purchase_id"])?;
    let text = params.required_string("add_on_purchase_id").or_else(|_| {
        params
            .required_integer("add_on_purchase_id")
            .map(|id| id.to_string())
    })?;
    text.trim()
        .strip_prefix(PURCHASE_GID)
        .unwrap_or(text.trim())
        .parse::<i64>()
        .map_err(|_| ApiError::invalid("add_on_purchase_id"))
}

/// `dry_run`: true unless it is given as false (a preview is the safe default).
fn dry_run(params: &Params) -> Result<bool, ApiError> {
    Ok(params.optional_bool("dry_run")?.unwrap_or(true))
}

#[utoipa::path(post, operation_id = "seats_duo_assign", path = "/api/v4/-/duo_seats/assign", tag = TAG, summary = "Assign GitLab Duo seats in bulk, with a preview (extension)", description = "Gives seats of a GitLab Duo purchase to every member of a group from a minimum role (`group`, `min_access_level`, default 10), or to usernames / e-mail addresses (`usernames`: a list, or text separated by commas, spaces or lines; `csv`: a CSV file's text, first column; at most 10,000). Exactly one of `group`, `usernames`, `csv`. With `dry_run` (the default) nothing is written: the answer lists who would get a seat and who would be skipped and why (`not_found`, `not_eligible`, `already_seated`, `not_enough_seats`). With `dry_run=false` the seats are assigned in batches through the same service as `userAddOnAssignmentBulkCreate` (its limits; no replica oversells).", request_body(content = String, description = "JSON, a form or the query string: add_on_purchase_id (a number or GraphQL global ID), group, min_access_level, usernames, csv, dry_run", content_type = "application/json"), responses((status = 200, description = "OK", body = AssignReport), crate::api::responses::ErrorResponses))]
async fn assign_duo_seats(
    Admin(actor): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let purchase_id = purchase_id(&params)?;
    let given: Vec<&str> = ["group", "usernames", "csv"]
        .into_iter()
        .filter(|name| params.0.get(*name).is_some_and(|value| !value.is_null()))
        .collect();
    let recipients = match given.as_slice() {
        ["group"] => {
            Recipients::Group {
                group: params.required_string("group")?,
                min_access_level: params.optional_integer("min_access_level")?.unwrap_or(
                    i64::from(crate::domain::members::AccessLevel::GUEST.number()),
                ),
            }
        }
        ["usernames"] => Recipients::Listed(params.optional_list("usernames")?.unwrap_or_default()),
        ["csv"] => Recipients::Listed(
            crate::domain::seats::list_entries(&params.required_string("csv")?)
                .map_err(ApiError::BadRequest)?,
        ),
        [] => {
            return Err(ApiError::InvalidParameter(
                "group, usernames, csv are missing, exactly one parameter must be provided".into(),
            ))
        }
        several => {
            return Err(ApiError::InvalidParameter(format!(
                "{} are mutually exclusive",
                several.join(", ")
            )))
        }
    };
    if let Recipients::Listed(names) = &recipients {
        if names.len() > crate::domain::seats::MAX_BULK_ENTRIES {
            return Err(ApiError::BadRequest(format!(
                "the list has more than {} users; split it",
                crate::domain::seats::MAX_BULK_ENTRIES
            )));
        }
    }
    let report = duo_bulk::assign(
        &state,
        &Caller::from_principal(&actor),
        purchase_id,
        &recipients,
        dry_run(&params)?,
    )
    .await
    .map_err(bulk_error)?;
    Ok(Json(report).into_response())
}

#[utoipa::path(post, operation_id = "seats_duo_reclaim", path = "/api/v4/-/duo_seats/reclaim", tag = TAG, summary = "Reclaim GitLab Duo seats from inactive holders, with a preview (extension)", description = "Lists the seat holders of a purchase not active for `inactive_for_days` (or never); with `dry_run=false` takes their seats back (in batches of 100, each seat audited and sent as an `add_on_seat_reclaimed` system-hook event). `dry_run` defaults to true.", request_body(content = String, description = "JSON, a form or the query string: add_on_purchase_id, inactive_for_days, dry_run", content_type = "application/json"), responses((status = 200, description = "OK", body = ReclaimReport), crate::api::responses::ErrorResponses))]
async fn reclaim_duo_seats(
    Admin(actor): Admin,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let purchase_id = purchase_id(&params)?;
    params.require(&["inactive_for_days"])?;
    let days = params.required_integer("inactive_for_days")?;
    let report = duo_bulk::reclaim(
        &state,
        &Caller::from_principal(&actor),
        purchase_id,
        days,
        dry_run(&params)?,
    )
    .await
    .map_err(bulk_error)?;
    Ok(Json(report).into_response())
}
