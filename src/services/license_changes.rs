//! License changes — uploads and deletions — and what follows each once it is committed:
//! the add-on purchases provisioned from the new current license, its alerts, a recount.
//! Above `licenses` (which only reads), `add_ons` and `hooks`, so none of them needs another.

use crate::domain::licenses::LicenseEntity;
use crate::domain::upload::{self, invalid_key_message, Measured};
use crate::license_key;
use crate::policy::AdminPrincipal;
use crate::services::licenses::{self, daily_billable_users, enqueue_recount, entity};
use crate::services::{add_ons, audit, hooks};
use crate::state::AppState;
use crate::store::{HookEvent, StoreResult, Write};

/// Why an upload was refused: GitLab's first validation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

#[derive(Debug)]
pub enum UploadError {
    Rejected(Rejected),
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for UploadError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::Store(error)
    }
}

/// Decodes `data` and runs GitLab's upload validations in order, against what is stored now:
/// the license, or GitLab's refusal. Shared by the upload and the check before it.
pub(crate) async fn vet(state: &AppState, data: &str) -> Result<license_key::License, UploadError> {
    let invalid = || {
        UploadError::Rejected(Rejected(invalid_key_message(
            &state.config.license_issuer_name,
        )))
    };
    let license = license_key::decode(data, &state.license_keys.current()).map_err(|error| {
        tracing::info!(stage = error.stage(), "license upload refused: {error}");
        invalid()
    })?;
    let today = state.clock.today();
    let current = licenses::current(state, today).await?;
    let current_license = current.as_ref().map(|(_, license)| license);
    let needed = upload::history_needed(&license, current_license);
    let measured = Measured {
        prior_historical_max: state
            .store
            .historical_max(needed.prior.0, needed.prior.1)
            .await?,
        trueup_historical_max: match needed.trueup {
            Some((from, to)) => Some(state.store.historical_max(from, to).await?),
            None => None,
        },
        daily_billable_users: daily_billable_users(state, current_license).await?,
    };
    upload::validate(&license, &measured, today)
        .map_err(|message| UploadError::Rejected(Rejected(message)))?;
    Ok(license)
}

/// `POST /license`: decode, run GitLab's validations in order, store.
pub async fn upload(
    state: &AppState,
    admin: &AdminPrincipal,
    data: &str,
) -> Result<LicenseEntity, UploadError> {
    let author = admin.user();
    let license = vet(state, data).await?;
    let now = state.clock.now();
    let today = now.date_naive();
    let trial_ends_on = if license.restrictions.trial {
        license.expires_at
    } else {
        None
    };
    let mut event = audit::event(
        author,
        audit::INSTANCE_SCOPE,
        1,
        "license_added",
        format!(
            "Added {} license for {}",
            license.plan(),
            license.licensee_field("Name")
        ),
        ("License", 0, license.plan()),
    );
    event.hook = Some(HookEvent {
        event_name: "license_added",
        payload: serde_json::json!({
            "event_name": "license_added",
            "plan": license.plan(),
            "licensee": license.licensee,
            "starts_at": license.starts_at.to_string(),
            "expires_at": license.expires_at.map(|day| day.to_string()),
            "user_limit": license.restrictions.user_limit(),
            "license_id": serde_json::Value::Null,
        }),
        id_field: Some("license_id"),
    });
    let row = state
        .store
        .create_license(data, trial_ends_on, Write::audited(now, &event))
        .await?;
    tracing::info!(license_id = row.id, plan = license.plan(), "license added");
    if license.started(today) {
        // GitLab recounts billable users after a started license is added.
        enqueue_recount(state).await?;
    }
    let daily = settle(state).await?;
    Ok(entity(state, &row, &license, daily, None, true).await?)
}

/// After a committed license change: the current license's add-on products become the
/// instance's add-on purchases, then the current license is worked out **once** and its alerts
/// checked against it; returns its daily billable-user count for the response. Provisioning
/// and alerts are logged rather than reported when they fail — the change is committed, and
/// the scheduled seat refresh repeats both.
async fn settle(state: &AppState) -> StoreResult<i64> {
    licenses::warn_about_unverifiable(state).await;
    if let Err(error) = add_ons::provision_from_license(state).await {
        tracing::warn!(%error, "could not provision add-on purchases from the license");
    }
    let current = licenses::current(state, state.clock.today()).await?;
    let current_license = current.as_ref().map(|(_, license)| license);
    let daily = daily_billable_users(state, current_license).await?;
    // A new current license may already be close to expiry or over its seats; the license
    // event itself was recorded with the change.
    if let Some((row, license)) = &current {
        let alerts = match entity(state, row, license, daily, None, true).await {
            Ok(snapshot) => hooks::record_license_alerts(state, &snapshot).await,
            Err(error) => Err(error),
        };
        if let Err(error) = alerts {
            tracing::warn!(%error, "could not check the license alerts");
        }
    }
    // A license's seats (and the purchases it provisions) are new subjects for seat alerts.
    crate::services::seat_alerts::check_quietly(state).await;
    crate::services::true_up::check_forecast_quietly(state).await;
    state.hooks_wake.notify_one();
    Ok(daily)
}

/// `DELETE /license/:id`: false when there was no such license.
pub async fn delete(state: &AppState, admin: &AdminPrincipal, id: i64) -> StoreResult<bool> {
    let author = admin.user();
    let mut event = audit::event(
        author,
        audit::INSTANCE_SCOPE,
        1,
        "license_removed",
        format!("Removed license {id}"),
        ("License", id, ""),
    );
    event.hook = Some(HookEvent {
        event_name: "license_removed",
        payload: serde_json::json!({"event_name": "license_removed", "license_id": id}),
        id_field: None,
    });
    let deleted = state
        .store
        .delete_license(id, Write::audited(state.clock.now(), &event))
        .await?;
    if deleted {
        tracing::info!(license_id = id, "license removed");
        // The deletion is committed: what follows it is logged, never reported as its failure.
        if let Err(error) = settle(state).await {
            tracing::warn!(%error, "could not settle the license change");
        }
    }
    Ok(deleted)
}
