//! GitLab Duo seats: who may see and manage which purchase, and the four assignment
//! operations. GraphQL (and any other surface) goes through these, so the rules exist once.

use crate::auth::Principal;
use crate::domain::add_ons::{
    self, decide_bulk, decide_single, PurchaseTerms, BULK_ASSIGN_LIMIT_MESSAGE,
    BULK_UNASSIGN_LIMIT_MESSAGE, MAX_BULK_USERS,
};
use crate::domain::members::AccessLevel;
use crate::policy::AdminPrincipal;
use crate::services::{audit, licenses};
use crate::state::AppState;
use crate::store::{AddOnPurchase, Locked, SaveMode, StoreError, StoreResult, User, Write};

/// Who is asking: anonymous (`Caller::default()`), the policy's principal, or the instance
/// itself acting on a rule an administrator set up (a SCIM group's seat link).
#[derive(Debug, Clone, Default)]
pub struct Caller(Who);

#[derive(Debug, Clone, Default)]
enum Who {
    #[default]
    Anonymous,
    Token(Principal),
    /// Acts with administrator rights; audit events name `actor`.
    Instance(std::sync::Arc<User>),
}

impl Caller {
    /// An authenticated caller.
    pub fn from_principal(principal: &Principal) -> Self {
        Self(Who::Token(principal.clone()))
    }

    /// The instance applying a rule an administrator configured, audited as `actor`.
    pub fn instance(actor: std::sync::Arc<User>) -> Self {
        Self(Who::Instance(actor))
    }

    pub fn user(&self) -> Option<&User> {
        match &self.0 {
            Who::Anonymous => None,
            Who::Token(principal) => Some(principal.user()),
            Who::Instance(actor) => Some(actor),
        }
    }

    /// Acts as an administrator (see [`Principal::admin`]).
    pub fn admin(&self) -> bool {
        match &self.0 {
            Who::Anonymous => false,
            Who::Token(principal) => principal.admin,
            Who::Instance(_) => true,
        }
    }

    /// May change things (see [`Principal::can_write`]).
    pub fn can_write(&self) -> bool {
        match &self.0 {
            Who::Anonymous => false,
            Who::Token(principal) => principal.can_write,
            Who::Instance(_) => true,
        }
    }
}

/// Why a seat operation did not happen, in GitLab's three tiers.
#[derive(Debug, thiserror::Error)]
pub enum SeatError {
    /// The one "resource not available" error: missing, not allowed, inactive or empty,
    /// deliberately indistinguishable.
    #[error("The resource that you are attempting to access does not exist or you don't have permission to perform this action")]
    NotAvailable,
    /// A top-level error with its own message (the bulk limits).
    #[error("{0}")]
    Limit(&'static str),
    /// A business-rule refusal, reported as a code in the payload's `errors`.
    #[error("{0}")]
    Refused(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type SeatResult<T> = Result<T, SeatError>;

/// GitLab's `admin_add_on_purchase`: instance administrators, and Owners of the purchase's
/// group.
pub async fn can_administer(
    state: &AppState,
    caller: &Caller,
    purchase: &AddOnPurchase,
) -> StoreResult<bool> {
    match purchase.namespace_id {
        None => Ok(administers_instance(caller)),
        Some(group_id) => owns_group(state, caller, group_id).await,
    }
}

/// Instance purchases are administered by instance administrators only.
pub fn administers_instance(caller: &Caller) -> bool {
    caller.admin()
}

/// The caller owns the group (or is an administrator).
pub async fn owns_group(state: &AppState, caller: &Caller, group_id: i64) -> StoreResult<bool> {
    match caller.user() {
        None => Ok(false),
        Some(_) if caller.admin() => Ok(true),
        Some(user) => is_owner(state, group_id, user).await,
    }
}

async fn is_owner(state: &AppState, group_id: i64, user: &User) -> StoreResult<bool> {
    Ok(state
        .store
        .group_member(group_id, user.id)
        .await?
        .is_some_and(|member| member.access_level >= AccessLevel::OWNER))
}

/// `addOnPurchases`: the namespace's (or the instance's) active purchases the caller may
/// administer; the others are left out without an error.
pub async fn visible_purchases(
    state: &AppState,
    caller: &Caller,
    namespace_id: Option<i64>,
) -> StoreResult<Vec<AddOnPurchase>> {
    let mut visible = Vec::new();
    for purchase in active_purchases(state, namespace_id).await?.iter() {
        if can_administer(state, caller, purchase).await? {
            visible.push(purchase.clone());
        }
    }
    Ok(visible)
}

/// The active purchases of a namespace (`None`: the instance), through the cache; during a
/// database outage, as last read today.
async fn active_purchases(
    state: &AppState,
    namespace_id: Option<i64>,
) -> StoreResult<std::sync::Arc<Vec<AddOnPurchase>>> {
    let today = state.clock.today();
    if let Some(purchases) = state.cache.purchases(namespace_id, today, &state.store) {
        return Ok(purchases);
    }
    let ticket = crate::cache::Cache::ticket(&state.store);
    match state
        .store
        .unless_unreachable(state.store.active_add_on_purchases(namespace_id, today))
        .await
    {
        Ok(purchases) => {
            let purchases = std::sync::Arc::new(purchases);
            state.cache.put_purchases(
                namespace_id,
                today,
                ticket,
                std::sync::Arc::clone(&purchases),
            );
            Ok(purchases)
        }
        Err(error) if error.is_unavailable() => state
            .cache
            .last_known_purchases(namespace_id, today)
            .ok_or(error),
        Err(error) => Err(error),
    }
}

/// A purchase by id if the caller may administer it (active or not).
pub async fn administrable_purchase(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> StoreResult<Option<AddOnPurchase>> {
    match state.store.find_add_on_purchase(id).await? {
        Some(purchase) if can_administer(state, caller, &purchase).await? => Ok(Some(purchase)),
        _ => Ok(None),
    }
}

fn is_active(state: &AppState, purchase: &AddOnPurchase) -> bool {
    add_ons::is_active(
        purchase.started_on,
        purchase.expires_on,
        state.clock.today(),
    )
}

/// The user a seat change is made by (`ready` has made sure there is one).
fn writer(caller: &Caller) -> SeatResult<&User> {
    caller.user().ok_or(SeatError::NotAvailable)
}

/// How many users a seat change names: one, or a bulk list (with GitLab's message for a list
/// over the limit).
#[derive(Debug, Clone, Copy)]
enum Batch {
    One,
    Many(usize, &'static str),
}

/// The checks every assignment mutation makes first: a token that may write, a purchase the
/// caller administers; then the mutation's own (limit, active, non-empty).
async fn ready(
    state: &AppState,
    caller: &Caller,
    purchase_id: i64,
    batch: Batch,
) -> SeatResult<AddOnPurchase> {
    if !caller.can_write() {
        return Err(SeatError::NotAvailable);
    }
    let purchase = administrable_purchase(state, caller, purchase_id)
        .await?
        .ok_or(SeatError::NotAvailable)?;
    let user_count = match batch {
        Batch::One => 1,
        Batch::Many(count, message) if count > MAX_BULK_USERS => {
            return Err(SeatError::Limit(message))
        }
        Batch::Many(count, _) => count,
    };
    if !is_active(state, &purchase) || user_count == 0 {
        return Err(SeatError::NotAvailable);
    }
    Ok(purchase)
}

/// [`ready`] for a change of one user's seat: the purchase, the user and the change's author.
async fn ready_one<'a>(
    state: &AppState,
    caller: &'a Caller,
    purchase_id: i64,
    user_id: i64,
) -> SeatResult<(AddOnPurchase, User, &'a User)> {
    let purchase = ready(state, caller, purchase_id, Batch::One).await?;
    let user = state
        .store
        .find_user(user_id)
        .await?
        .ok_or(SeatError::NotAvailable)?;
    Ok((purchase, user, writer(caller)?))
}

/// A bulk seat change: `userAddOnAssignmentBulkCreate` or `userAddOnAssignmentBulkRemove`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkChange {
    Assign,
    Remove,
}

/// Assigns or removes the seats of several users at once. `user_ids` are as the request gave
/// them, duplicates included (they count toward the limit); the change itself sees each
/// user once, in id order.
pub async fn change_bulk(
    state: &AppState,
    caller: &Caller,
    purchase_id: i64,
    user_ids: &[i64],
    change: BulkChange,
) -> SeatResult<SeatChange> {
    let limit_message = match change {
        BulkChange::Assign => BULK_ASSIGN_LIMIT_MESSAGE,
        BulkChange::Remove => BULK_UNASSIGN_LIMIT_MESSAGE,
    };
    let batch = Batch::Many(user_ids.len(), limit_message);
    let purchase = ready(state, caller, purchase_id, batch).await?;
    let mut unique = user_ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    match change {
        BulkChange::Assign => assign_bulk(state, caller, purchase, &unique).await,
        BulkChange::Remove => remove_bulk(state, caller, purchase, &unique).await,
    }
}

/// The purchase as it is now (its assigned count after a change).
async fn reloaded(state: &AppState, purchase: &AddOnPurchase) -> SeatResult<AddOnPurchase> {
    state
        .store
        .find_add_on_purchase(purchase.id)
        .await?
        .ok_or(SeatError::NotAvailable)
}

/// Turns the store's view under the lock into the mutation's outcome.
fn settled<T>(locked: Locked<Result<T, add_ons::SeatRefusal>>) -> SeatResult<T> {
    match locked {
        Locked::Missing | Locked::Inactive => Err(SeatError::NotAvailable),
        Locked::Decided(Err(refusal)) => Err(SeatError::Refused(refusal.code())),
        Locked::Decided(Ok(value)) => Ok(value),
    }
}

/// A purchase and the users a mutation reports.
#[derive(Debug, Clone)]
pub struct SeatChange {
    pub purchase: AddOnPurchase,
    pub users: Vec<User>,
    /// How many seats a removal freed (0 for assignments).
    pub seats_removed: u64,
}

/// The audit event of one seat assigned (`assigned`) or removed by `author`.
fn seat_audit<'a>(
    author: &'a User,
    purchase: &'a AddOnPurchase,
    assigned: bool,
) -> impl Fn(i64, &str) -> crate::store::NewAudit + Send + Sync + 'a {
    move |user_id, username| {
        let add_on = add_ons::display_name(&purchase.add_on_name);
        let (event_name, message) = if assigned {
            (
                "user_add_on_assignment_created",
                format!("Assigned a {add_on} seat to {username}"),
            )
        } else {
            (
                "user_add_on_assignment_removed",
                format!("Removed the {add_on} seat of {username}"),
            )
        };
        audit::event(
            author,
            "User",
            user_id,
            event_name,
            message,
            ("User", user_id, username),
        )
    }
}

/// The answer to an assignment: the purchase as it is now and the users who hold a seat;
/// tells the hooks when no seat is left.
async fn seats_assigned(
    state: &AppState,
    purchase: &AddOnPurchase,
    users: Vec<User>,
) -> SeatResult<SeatChange> {
    let purchase = reloaded(state, purchase).await?;
    crate::services::hooks::check_seats_exhausted(state, &purchase).await;
    crate::services::seat_alerts::check_quietly(state).await;
    Ok(SeatChange {
        purchase,
        users,
        seats_removed: 0,
    })
}

/// `userAddOnAssignmentBulkCreate` (GitLab 18's partial-success rule), once the request
/// has passed [`ready`].
async fn assign_bulk(
    state: &AppState,
    caller: &Caller,
    purchase: AddOnPurchase,
    unique: &[i64],
) -> SeatResult<SeatChange> {
    if !add_ons::add_on(&purchase.add_on_name).is_some_and(|add_on| add_on.duo) {
        return Err(SeatError::Refused("INCOMPATIBLE_ADD_ON"));
    }
    let now = state.clock.now();
    let author = writer(caller)?;
    let eligible = settled(
        state
            .store
            .assign_add_on_seats(
                purchase.id,
                unique,
                state.clock.today(),
                now,
                decide_bulk,
                &seat_audit(author, &purchase, true),
            )
            .await?,
    )?;
    let users = state.store.users_by_ids(&eligible).await?;
    seats_assigned(state, &purchase, users).await
}

/// `userAddOnAssignmentCreate`.
pub async fn assign_one(
    state: &AppState,
    caller: &Caller,
    purchase_id: i64,
    user_id: i64,
) -> SeatResult<SeatChange> {
    let (purchase, user, author) = ready_one(state, caller, purchase_id, user_id).await?;
    settled(
        state
            .store
            .assign_add_on_seats(
                purchase.id,
                &[user.id],
                state.clock.today(),
                state.clock.now(),
                |facts| decide_single(facts, user.id).map(|insert| (insert, ())),
                &seat_audit(author, &purchase, true),
            )
            .await?,
    )?;
    seats_assigned(state, &purchase, vec![user]).await
}

/// `userAddOnAssignmentRemove`: `None` when the user held no seat (GitLab answers `null`
/// without an error).
pub async fn remove_one(
    state: &AppState,
    caller: &Caller,
    purchase_id: i64,
    user_id: i64,
) -> SeatResult<Option<SeatChange>> {
    let (purchase, user, author) = ready_one(state, caller, purchase_id, user_id).await?;
    if state
        .store
        .remove_add_on_seats(
            purchase.id,
            &[user.id],
            state.clock.now(),
            &seat_audit(author, &purchase, false),
        )
        .await?
        == 0
    {
        return Ok(None);
    }
    crate::services::seat_alerts::check_quietly(state).await;
    Ok(Some(SeatChange {
        purchase: reloaded(state, &purchase).await?,
        users: vec![user],
        seats_removed: 1,
    }))
}

/// `userAddOnAssignmentBulkRemove`, once the request has passed [`ready`]: the payload
/// lists every requested user that exists.
async fn remove_bulk(
    state: &AppState,
    caller: &Caller,
    purchase: AddOnPurchase,
    unique: &[i64],
) -> SeatResult<SeatChange> {
    let author = writer(caller)?;
    let removed = state
        .store
        .remove_add_on_seats(
            purchase.id,
            unique,
            state.clock.now(),
            &seat_audit(author, &purchase, false),
        )
        .await?;
    if removed == 0 {
        return Err(SeatError::Refused("NO_ASSIGNMENTS_FOUND"));
    }
    crate::services::seat_alerts::check_quietly(state).await;
    Ok(SeatChange {
        purchase: reloaded(state, &purchase).await?,
        users: state.store.users_by_ids(unique).await?,
        seats_removed: removed,
    })
}

/// Takes back the seats of inactive holders (at most [`MAX_BULK_USERS`] per call, the bulk
/// mutations' limit), through the same checks as `userAddOnAssignmentBulkRemove`, with an
/// audit event and an `add_on_seat_reclaimed` system-hook event per seat in the same
/// transaction. How many were freed.
pub async fn reclaim_bulk(
    state: &AppState,
    caller: &Caller,
    purchase_id: i64,
    user_ids: &[i64],
    inactive_for_days: i64,
) -> SeatResult<u64> {
    let batch = Batch::Many(user_ids.len(), BULK_UNASSIGN_LIMIT_MESSAGE);
    let purchase = ready(state, caller, purchase_id, batch).await?;
    let author = writer(caller)?;
    let audit_of = seat_audit(author, &purchase, false);
    let add_on = add_ons::display_name(&purchase.add_on_name);
    let at = crate::domain::licenses::timestamp_text(state.clock.now());
    let with_hook = |user_id: i64, username: &str| {
        let mut audit = audit_of(user_id, username);
        audit.hook = Some(crate::store::HookEvent {
            event_name: "add_on_seat_reclaimed",
            payload: serde_json::json!({
                "event_name": "add_on_seat_reclaimed",
                "add_on": add_on,
                "add_on_purchase_id": purchase.id,
                "namespace": purchase.namespace_path,
                "user_id": user_id,
                "user_username": username,
                "inactive_for_days": inactive_for_days,
                "created_at": at,
            }),
            id_field: None,
        });
        audit
    };
    let freed = state
        .store
        .remove_add_on_seats(purchase.id, user_ids, state.clock.now(), &with_hook)
        .await?;
    if freed > 0 {
        state.hooks_wake.notify_one();
        crate::services::seat_alerts::check_quietly(state).await;
    }
    Ok(freed)
}

/// Brings the instance's purchases in line with the current license's `add_on_products`
/// (after uploads and deletions, at start-up, and on the seat-refresh schedule). The licenses
/// are read inside the provisioning transaction, under its lock: a run that started before an
/// upload committed cannot end the purchases the upload's own run just made.
pub async fn provision_from_license(state: &AppState) -> StoreResult<bool> {
    let today = state.clock.today();
    state
        .store
        .provision_instance_add_ons(
            crate::domain::licenses::CURRENT_LICENSE_WINDOW,
            today,
            state.clock.now(),
            |rows| {
                let stored: Vec<_> = rows
                    .iter()
                    .map(|row| licenses::stored(state, row))
                    .collect();
                let current = crate::domain::licenses::current_license(&stored, today)
                    .and_then(|license| license.license());
                add_ons::provisioned_from_license(current)
            },
        )
        .await
}

/// The scheduled refresh: re-provision from the license, then free the seats of users who
/// may no longer hold them and any seats beyond a purchase's quantity.
pub async fn refresh_seats(state: &AppState) -> StoreResult<u64> {
    provision_from_license(state).await?;
    let freed = state.store.clean_up_add_on_seats(state.clock.now()).await?;
    if freed > 0 {
        tracing::info!(freed, "add-on seats of ineligible users or overage freed");
    }
    Ok(freed)
}

/// `POST`/`PUT /namespaces/:id/subscription_add_on_purchase/:add_on_name`.
pub async fn save_group_purchase(
    state: &AppState,
    admin: &AdminPrincipal,
    group_id: i64,
    add_on_name: &'static str,
    terms: &PurchaseTerms,
    mode: SaveMode,
) -> StoreResult<Option<AddOnPurchase>> {
    let author = admin.user();
    let event = audit::event(
        author,
        "Group",
        group_id,
        match mode {
            SaveMode::Create => "add_on_purchase_created",
            SaveMode::Update => "add_on_purchase_updated",
        },
        format!(
            "{} {add_on_name} add-on purchase: {} seats until {}",
            match mode {
                SaveMode::Create => "Created",
                SaveMode::Update => "Updated",
            },
            terms.quantity,
            terms.expires_on
        ),
        ("GitlabSubscriptions::AddOnPurchase", group_id, add_on_name),
    );
    let saved = state
        .store
        .save_add_on_purchase(
            Some(group_id),
            add_on_name,
            terms,
            mode,
            Write::audited(state.clock.now(), &event),
        )
        .await?;
    match saved {
        Some(id) => state.store.find_add_on_purchase(id).await,
        None => Ok(None),
    }
}
