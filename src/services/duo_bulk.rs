//! GitLab Duo seats at scale: assign seats to a group's members (from a minimum role) or to a
//! list of usernames and e-mail addresses, and reclaim the seats of inactive holders — each
//! previewed first (a dry run that writes nothing), then applied through the same service as
//! the GraphQL mutations (their limits, their per-purchase lock, so no replica oversells).

use chrono::TimeDelta;
use serde::Serialize;

use crate::domain::add_ons::{self, MAX_BULK_USERS};
use crate::domain::members::AccessLevel;
use crate::domain::seats::{plan_seats, SeatCandidate, SeatOutcome, MAX_BULK_ENTRIES};
use crate::services::add_ons::{
    administrable_purchase, change_bulk, reclaim_bulk, BulkChange, Caller, SeatError,
};
use crate::services::groups;
use crate::state::AppState;
use crate::store::{AddOnPurchase, StoreError};

/// Whom to give seats to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// Every member of the group (id or path) with at least this access level.
    Group {
        group: String,
        min_access_level: i64,
    },
    /// Usernames or e-mail addresses, as listed.
    Listed(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// No such purchase, or not one the caller administers (one answer for both).
    #[error("404 Add-on purchase Not Found")]
    PurchaseNotFound,
    #[error("404 Group Not Found")]
    GroupNotFound,
    /// A parameter without a valid value (its name).
    #[error("{0} is invalid")]
    Invalid(&'static str),
    /// The purchase cannot take assignments (expired, not started, not a GitLab Duo add-on).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The purchase a bulk change is about, as it stood when the answer was made.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PurchaseFigures {
    pub id: i64,
    /// GraphQL's name (`CODE_SUGGESTIONS`).
    pub add_on: String,
    pub product: String,
    pub purchased_quantity: i64,
    pub assigned_quantity: i64,
}

impl From<&AddOnPurchase> for PurchaseFigures {
    fn from(purchase: &AddOnPurchase) -> Self {
        Self {
            id: purchase.id,
            add_on: add_ons::display_name(&purchase.add_on_name),
            product: add_ons::product_name(&purchase.add_on_name),
            purchased_quantity: purchase.quantity,
            assigned_quantity: purchase.assigned_quantity,
        }
    }
}

/// One person and what the assignment does (or would do) for them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeatLine {
    /// As listed (for a group: the username).
    pub entry: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub outcome: SeatOutcome,
}

/// How many people ended up in each outcome.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct OutcomeCounts {
    pub assign: usize,
    pub not_found: usize,
    pub not_eligible: usize,
    pub already_seated: usize,
    pub not_enough_seats: usize,
}

/// The answer of a bulk assignment: the plan (dry run) or what was done.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssignReport {
    pub dry_run: bool,
    pub purchase: PurchaseFigures,
    pub counts: OutcomeCounts,
    pub users: Vec<SeatLine>,
}

/// The answer of a reclaim: the inactive holders, and whether their seats were taken back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReclaimReport {
    pub dry_run: bool,
    pub inactive_for_days: i64,
    pub purchase: PurchaseFigures,
    /// Seats taken back (0 in a dry run).
    pub reclaimed: u64,
    pub users: Vec<ReclaimLine>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReclaimLine {
    pub user_id: i64,
    pub username: String,
    pub last_activity_on: Option<String>,
}

/// Batches a real run may try (each assigns up to [`MAX_BULK_USERS`]).
const MAX_ROUNDS: usize = 1_000;

/// The longest inactivity a reclaim may name (a century).
const MAX_INACTIVE_DAYS: i64 = 36_500;

/// The purchase, if the caller may administer it and it takes GitLab Duo seats now.
async fn seat_purchase(
    state: &AppState,
    caller: &Caller,
    purchase_id: i64,
) -> Result<AddOnPurchase, BulkError> {
    let purchase = administrable_purchase(state, caller, purchase_id)
        .await?
        .ok_or(BulkError::PurchaseNotFound)?;
    if !add_ons::add_on(&purchase.add_on_name).is_some_and(|add_on| add_on.duo) {
        return Err(BulkError::Refused(format!(
            "{} is not a GitLab Duo add-on: its seats are not assigned to users",
            add_ons::display_name(&purchase.add_on_name)
        )));
    }
    if !add_ons::is_active(
        purchase.started_on,
        purchase.expires_on,
        state.clock.today(),
    ) {
        return Err(BulkError::Refused(
            "The add-on purchase is not active: seats can be assigned from its start until its expiry."
                .into(),
        ));
    }
    Ok(purchase)
}

/// Each recipient with what the store knows of them, in order: a group's members by id, a
/// list as given (names nobody has as `None`).
async fn candidates(
    state: &AppState,
    purchase: &AddOnPurchase,
    recipients: &Recipients,
) -> Result<Vec<(String, Option<SeatCandidate>)>, BulkError> {
    let key = (purchase.id, purchase.namespace_id);
    match recipients {
        Recipients::Group {
            group,
            min_access_level,
        } => {
            let level = AccessLevel::from_number(*min_access_level)
                .ok_or(BulkError::Invalid("min_access_level"))?;
            let group = groups::find(state, group)
                .await
                .map_err(|error| match error {
                    groups::GroupError::Store(error) => BulkError::Store(error),
                    _ => BulkError::GroupNotFound,
                })?;
            // One past the bound tells a group that is too large from one that fits.
            let bound = i64::try_from(MAX_BULK_ENTRIES).unwrap_or(i64::MAX);
            let found = state
                .store
                .group_seat_candidates(key, (group.id, level.number()), bound + 1)
                .await?;
            if found.len() > MAX_BULK_ENTRIES {
                return Err(BulkError::Refused(format!(
                    "{} has more than {MAX_BULK_ENTRIES} members from that role: assign by a higher role, or by lists of up to {MAX_BULK_ENTRIES} users",
                    group.path
                )));
            }
            Ok(found
                .into_iter()
                .map(|candidate| (candidate.username.clone(), Some(candidate)))
                .collect())
        }
        Recipients::Listed(names) => {
            let found = state.store.named_seat_candidates(key, names).await?;
            Ok(names
                .iter()
                .map(|name| {
                    let wanted = name.to_lowercase();
                    let candidate = found.iter().find(|candidate| {
                        candidate.username.to_lowercase() == wanted
                            || candidate.email.to_lowercase() == wanted
                    });
                    (name.clone(), candidate.cloned())
                })
                .collect())
        }
    }
}

fn counts(lines: &[SeatLine]) -> OutcomeCounts {
    let mut counts = OutcomeCounts::default();
    for line in lines {
        match line.outcome {
            SeatOutcome::Assign => counts.assign += 1,
            SeatOutcome::NotFound => counts.not_found += 1,
            SeatOutcome::NotEligible => counts.not_eligible += 1,
            SeatOutcome::AlreadySeated => counts.already_seated += 1,
            SeatOutcome::NotEnoughSeats => counts.not_enough_seats += 1,
        }
    }
    counts
}

/// The plan for `recipients` against the purchase as it is now.
async fn plan(
    state: &AppState,
    purchase: &AddOnPurchase,
    recipients: &Recipients,
) -> Result<Vec<SeatLine>, BulkError> {
    let candidates = candidates(state, purchase, recipients).await?;
    let found: Vec<Option<&SeatCandidate>> =
        candidates.iter().map(|(_, found)| found.as_ref()).collect();
    let outcomes = plan_seats(&found, purchase.quantity - purchase.assigned_quantity);
    Ok(candidates
        .iter()
        .zip(outcomes)
        .map(|((entry, found), outcome)| SeatLine {
            entry: entry.clone(),
            user_id: found.as_ref().map(|candidate| candidate.user_id),
            username: found.as_ref().map(|candidate| candidate.username.clone()),
            outcome,
        })
        .collect())
}

/// Assigns seats to `recipients` — or, with `dry_run`, says who would get one and who would
/// be skipped and why, writing nothing. The real run assigns in batches through
/// `userAddOnAssignmentBulkCreate`'s service; when another request took seats in between, a
/// batch that no longer fits is made smaller, and whoever is left when the seats run out is
/// reported as `not_enough_seats`.
pub async fn assign(
    state: &AppState,
    caller: &Caller,
    purchase_id: i64,
    recipients: &Recipients,
    dry_run: bool,
) -> Result<AssignReport, BulkError> {
    let purchase = seat_purchase(state, caller, purchase_id).await?;
    let mut lines = plan(state, &purchase, recipients).await?;
    if dry_run {
        return Ok(AssignReport {
            dry_run,
            purchase: PurchaseFigures::from(&purchase),
            counts: counts(&lines),
            users: lines,
        });
    }
    let wanted: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.outcome == SeatOutcome::Assign)
        .map(|(index, _)| index)
        .collect();
    let mut next = 0;
    let mut free = purchase.quantity - purchase.assigned_quantity;
    // Each round either assigns a batch or finds fewer free seats, unless other requests keep
    // freeing and taking seats at once; the bound keeps even that from running on.
    let mut rounds = 0;
    while next < wanted.len() && free > 0 && rounds < MAX_ROUNDS {
        rounds += 1;
        let size = MAX_BULK_USERS.min(usize::try_from(free).unwrap_or(usize::MAX));
        let batch: Vec<usize> = wanted[next..].iter().take(size).copied().collect();
        let user_ids: Vec<i64> = batch
            .iter()
            .filter_map(|index| lines[*index].user_id)
            .collect();
        match change_bulk(state, caller, purchase.id, &user_ids, BulkChange::Assign).await {
            Ok(_) => next += batch.len(),
            // Another request took seats meanwhile: look again and try a batch that fits.
            Err(SeatError::Refused("NOT_ENOUGH_SEATS")) => {}
            // The users stopped being eligible meanwhile: leave them out.
            Err(SeatError::Refused("INVALID_USER_ID_PRESENT")) => {
                for index in &batch {
                    lines[*index].outcome = SeatOutcome::NotEligible;
                }
                next += batch.len();
            }
            Err(SeatError::Store(error)) => return Err(BulkError::Store(error)),
            Err(other) => return Err(BulkError::Refused(other.to_string())),
        }
        let now = state
            .store
            .find_add_on_purchase(purchase.id)
            .await?
            .ok_or(BulkError::PurchaseNotFound)?;
        free = now.quantity - now.assigned_quantity;
    }
    for index in &wanted[next..] {
        lines[*index].outcome = SeatOutcome::NotEnoughSeats;
    }
    let after = state
        .store
        .find_add_on_purchase(purchase.id)
        .await?
        .ok_or(BulkError::PurchaseNotFound)?;
    Ok(AssignReport {
        dry_run,
        purchase: PurchaseFigures::from(&after),
        counts: counts(&lines),
        users: lines,
    })
}

/// Takes back the seats of holders not active for `inactive_for_days` (or never) — or, with
/// `dry_run`, lists them, writing nothing. Each seat taken back is audited and sent as an
/// `add_on_seat_reclaimed` system-hook event.
pub async fn reclaim(
    state: &AppState,
    caller: &Caller,
    purchase_id: i64,
    inactive_for_days: i64,
    dry_run: bool,
) -> Result<ReclaimReport, BulkError> {
    if !(1..=MAX_INACTIVE_DAYS).contains(&inactive_for_days) {
        return Err(BulkError::Invalid("inactive_for_days"));
    }
    let purchase = administrable_purchase(state, caller, purchase_id)
        .await?
        .ok_or(BulkError::PurchaseNotFound)?;
    let inactive_before = state.clock.today() - TimeDelta::days(inactive_for_days - 1);
    let holders = state
        .store
        .inactive_seat_holders(purchase.id, inactive_before)
        .await?;
    let mut reclaimed = 0;
    if !dry_run {
        let ids: Vec<i64> = holders.iter().map(|user| user.id).collect();
        for batch in ids.chunks(MAX_BULK_USERS) {
            reclaimed += reclaim_bulk(state, caller, purchase.id, batch, inactive_for_days)
                .await
                .map_err(|error| match error {
                    SeatError::Store(error) => BulkError::Store(error),
                    other => BulkError::Refused(other.to_string()),
                })?;
        }
    }
    let after = state
        .store
        .find_add_on_purchase(purchase.id)
        .await?
        .ok_or(BulkError::PurchaseNotFound)?;
    Ok(ReclaimReport {
        dry_run,
        inactive_for_days,
        purchase: PurchaseFigures::from(&after),
        reclaimed,
        users: holders
            .iter()
            .map(|user| ReclaimLine {
                user_id: user.id,
                username: user.username.clone(),
                last_activity_on: user.last_activity_on.map(|day| day.to_string()),
            })
            .collect(),
    })
}

/// The active GitLab Duo purchases (the ones whose seats are assigned to users), oldest
/// first: what the page offers.
pub async fn seat_purchases(state: &AppState) -> crate::store::StoreResult<Vec<AddOnPurchase>> {
    let today = state.clock.today();
    Ok(state
        .store
        .all_add_on_purchases()
        .await?
        .into_iter()
        .filter(|purchase| add_ons::add_on(&purchase.add_on_name).is_some_and(|add_on| add_on.duo))
        .filter(|purchase| add_ons::is_active(purchase.started_on, purchase.expires_on, today))
        .collect())
}
