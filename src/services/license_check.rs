//! Checking a license before uploading it: what `POST /license` would answer and do — GitLab's
//! refusal, or the seats, overage and `user_limit` it would show, and the add-on purchases it
//! would create, change or end with the seat assignments that would go — without writing
//! anything.

use std::sync::Arc;

use serde::Serialize;

use crate::domain::add_ons::{
    self, InstancePurchase, PurchaseAction, PurchaseChange, PurchaseTerms,
};
use crate::domain::licenses::{current_license, LicenseEntity, StoredLicense};
use crate::services::license_changes::{vet, UploadError};
use crate::services::licenses::{self, daily_billable_users, entity};
use crate::state::AppState;
use crate::store::{LicenseRow, StoreResult};

/// Usernames listed per purchase whose seats would go (the count is always given).
pub const LISTED_SEAT_HOLDERS: i64 = 100;

/// The answer to a license check.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LicenseCheck {
    /// Whether `POST /license` would accept the key now.
    pub accepted: bool,
    /// GitLab's refusal, word for word, when it would not.
    pub message: Option<String>,
    /// Whether the license would become the current one (a license that has not started
    /// yet, or that an unexpired newer one outranks, would not).
    pub becomes_current: bool,
    /// The license as `GET /license` would show it once uploaded and current (without `id`
    /// and `created_at`, which the upload assigns).
    pub license: Option<CheckedLicense>,
    /// What the upload would do to the instance's add-on purchases.
    pub add_on_purchases: Vec<PurchaseChangeEntry>,
}

/// The figures of the checked license.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckedLicense {
    pub plan: String,
    pub starts_at: String,
    pub expires_at: Option<String>,
    #[schema(value_type = Object)]
    pub licensee: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = Option<i64>)]
    pub user_limit: serde_json::Value,
    pub active_users: Option<i64>,
    pub historical_max: i64,
    pub maximum_user_count: i64,
    pub overage: i64,
    pub expired: Option<bool>,
}

impl From<LicenseEntity> for CheckedLicense {
    fn from(entity: LicenseEntity) -> Self {
        Self {
            plan: entity.plan,
            starts_at: entity.starts_at,
            expires_at: entity.expires_at,
            licensee: entity.licensee,
            user_limit: entity.user_limit,
            active_users: entity.active_users,
            historical_max: entity.historical_max,
            maximum_user_count: entity.maximum_user_count,
            overage: entity.overage,
            expired: entity.expired,
        }
    }
}

/// One add-on purchase the upload would create, change or end.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PurchaseChangeEntry {
    pub action: PurchaseAction,
    /// The purchase changed or ended; null for a new one.
    pub purchase_id: Option<i64>,
    /// GraphQL's name (`CODE_SUGGESTIONS`).
    pub add_on: String,
    /// The product ("GitLab Duo Pro").
    pub product: String,
    pub quantity_before: Option<i64>,
    pub quantity_after: Option<i64>,
    pub expires_on_before: Option<String>,
    pub expires_on_after: Option<String>,
    /// Seats assigned now.
    pub assigned: i64,
    /// Seats that would be taken back.
    pub seats_lost: i64,
    /// Who would lose their seat (the newest assignments first go; at most 100 listed).
    pub users_losing_seats: Vec<String>,
}

fn entry(change: &PurchaseChange, users_losing_seats: Vec<String>) -> PurchaseChangeEntry {
    let quantity = |terms: &Option<PurchaseTerms>| terms.as_ref().map(|terms| terms.quantity);
    let expires =
        |terms: &Option<PurchaseTerms>| terms.as_ref().map(|terms| terms.expires_on.to_string());
    PurchaseChangeEntry {
        action: change.action.clone(),
        purchase_id: change.purchase_id,
        add_on: add_ons::display_name(&change.add_on_name),
        product: add_ons::product_name(&change.add_on_name),
        quantity_before: quantity(&change.before),
        quantity_after: quantity(&change.after),
        expires_on_before: expires(&change.before),
        expires_on_after: expires(&change.after),
        assigned: change.assigned,
        seats_lost: change.seats_lost,
        users_losing_seats,
    }
}

/// What uploading `data` would do now. Reads only.
pub async fn check(state: &AppState, data: &str) -> StoreResult<LicenseCheck> {
    let license = match vet(state, data).await {
        Ok(license) => license,
        Err(UploadError::Rejected(rejected)) => {
            return Ok(LicenseCheck {
                accepted: false,
                message: Some(rejected.0),
                becomes_current: false,
                license: None,
                add_on_purchases: Vec::new(),
            })
        }
        Err(UploadError::Store(error)) => return Err(error),
    };
    let now = state.clock.now();
    let today = now.date_naive();
    // The stored licenses with the new one as the newest, as the upload would leave them.
    let row = LicenseRow {
        id: i64::MAX,
        data: data.to_string(),
        created_at: now,
    };
    let mut stored: Vec<StoredLicense> =
        licenses::recent(state, crate::domain::licenses::CURRENT_LICENSE_WINDOW)
            .await?
            .into_iter()
            .map(|(_, stored)| stored)
            .collect();
    stored.insert(
        0,
        StoredLicense {
            id: row.id,
            created_at: now,
            decoded: Arc::new(Ok(license.clone())),
        },
    );
    let current = current_license(&stored, today);
    let becomes_current = current.is_some_and(|chosen| chosen.id == row.id);
    let daily = daily_billable_users(state, Some(&license)).await?;
    let shown = entity(state, &row, &license, daily, None, true).await?;
    let plan = add_ons::provisioned_from_license(current.and_then(StoredLicense::license));
    let existing: Vec<InstancePurchase> = state
        .store
        .all_add_on_purchases()
        .await?
        .into_iter()
        .filter(|purchase| purchase.namespace_id.is_none())
        .map(|purchase| InstancePurchase {
            id: purchase.id,
            add_on_name: purchase.add_on_name,
            terms: PurchaseTerms {
                quantity: purchase.quantity,
                started_on: purchase.started_on,
                expires_on: purchase.expires_on,
                purchase_xid: purchase.purchase_xid,
                trial: purchase.trial,
            },
            assigned: purchase.assigned_quantity,
        })
        .collect();
    let mut add_on_purchases = Vec::new();
    for change in add_ons::purchase_changes(&plan, &existing, today) {
        let losing = match (change.purchase_id, change.seats_lost) {
            (Some(id), lost) if lost > 0 => {
                // The oldest assignments keep their seats; the rest go.
                let kept = change.assigned - lost;
                state
                    .store
                    .purchase_assignees(id, kept, lost.min(LISTED_SEAT_HOLDERS))
                    .await?
            }
            _ => Vec::new(),
        };
        add_on_purchases.push(entry(&change, losing));
    }
    Ok(LicenseCheck {
        accepted: true,
        message: None,
        becomes_current,
        license: Some(shown.into()),
        add_on_purchases,
    })
}
