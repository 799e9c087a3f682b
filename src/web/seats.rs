//! The page's seat forms: the GraphQL mutations' service, called with the session's token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;

use super::pages::form_change;
use super::response::{Failure, Fields};
use super::session::WebAdmin;
use crate::domain::add_ons::{
    add_on, PurchaseTerms, BULK_ASSIGN_LIMIT_MESSAGE, BULK_UNASSIGN_LIMIT_MESSAGE, MAX_BULK_USERS,
};
use crate::services::add_ons::{self as seats, BulkChange, Caller, SeatError};
use crate::state::AppState;
use crate::store::{SaveMode, StoreError};

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

/// A change to one purchase's seats from the page: the form checks, then `change` with the
/// purchase the path names and the caller the session holds.
async fn seat_change(
    state: &AppState,
    admin: &WebAdmin,
    id: &str,
    body: &Bytes,
    change: impl AsyncFnOnce(i64, &Caller, &Fields) -> Result<String, Failure>,
) -> Response {
    form_change(state, admin, body, async |fields: &Fields| {
        let purchase_id = purchase_id(id)?;
        let caller = Caller::from_principal(&admin.actor);
        change(purchase_id, &caller, fields).await
    })
    .await
}

pub async fn assign_seats(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let assign = async |purchase_id: i64, caller: &Caller, fields: &Fields| {
        let ids = user_ids(&state, fields, BULK_ASSIGN_LIMIT_MESSAGE).await?;
        let change = seats::change_bulk(&state, caller, purchase_id, &ids, BulkChange::Assign)
            .await
            .map_err(seat_failure)?;
        let assigned = change.users.len();
        Ok(format!(
            "notice=seats_assigned&count={assigned}&skipped={}",
            ids.len().saturating_sub(assigned)
        ))
    };
    seat_change(&state, &admin, &id, &body, assign).await
}

pub async fn unassign_seats(
    State(state): State<AppState>,
    admin: WebAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let unassign = async |purchase_id: i64, caller: &Caller, fields: &Fields| {
        // A holder's own "Unassign" button sends their id; the usernames box sends names.
        if let Some(user_id) = fields.get("user_id") {
            let user_id = user_id
                .parse()
                .map_err(|_| seat_failure(SeatError::NotAvailable))?;
            return match seats::remove_one(&state, caller, purchase_id, user_id).await {
                Ok(Some(_)) => Ok("notice=seats_removed&count=1".to_string()),
                Ok(None) => Err(seat_failure(SeatError::Refused("NO_ASSIGNMENTS_FOUND"))),
                Err(error) => Err(seat_failure(error)),
            };
        }
        let ids = user_ids(&state, fields, BULK_UNASSIGN_LIMIT_MESSAGE).await?;
        let change = seats::change_bulk(&state, caller, purchase_id, &ids, BulkChange::Remove)
            .await
            .map_err(seat_failure)?;
        Ok(format!(
            "notice=seats_removed&count={}",
            change.seats_removed
        ))
    };
    seat_change(&state, &admin, &id, &body, unassign).await
}

/// A group's add-on purchase, created or changed (the REST provisioning endpoint's service and
/// validations; the form always sends every field, so it saves whole terms).
pub async fn save_group_purchase(
    State(state): State<AppState>,
    admin: WebAdmin,
    body: Bytes,
) -> Response {
    form_change(&state, &admin, &body, async |fields: &Fields| {
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
        match seats::save_group_purchase(&state, &admin.actor, group.id, add_on.name, &terms, mode)
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
    })
    .await
}
