//! The fleet: registering GitLab instances, syncing their users and licenses through GitLab's
//! own REST API (a durable job, exactly once across replicas), importing air-gapped
//! instances from files, and the answers — unique billable people across instances, the
//! largest instance, whether the others are subsets of it (docs/fleet.md).

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::Stream;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::config::Secret;
use crate::domain::fleet::{
    self, BillabilitySource, Identity, ImportDocument, UpstreamLicense, UpstreamUser,
};
use crate::domain::jobs::JobKind;
use crate::domain::licenses::timestamp_text;
use crate::outbound::{Call, CallError};
use crate::policy::AdminPrincipal;
use crate::services::audit;
use crate::state::AppState;
use crate::store::{
    FleetAccount, FleetInstance, FleetInstanceChanges, JobRow, NewAudit, PeopleFilter,
    PersonPresence, SnapshotFacts, StagedUser, StoreError, StoreResult, Write,
    FLEET_SYNC_FAILED_EVENT,
};

/// A page of users is at most this large (100 admin user entities are ~100 KiB).
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;
/// The most pages one sync follows (10,000,000 users): a peer whose `next` links never end
/// cannot keep a sync running forever.
const MAX_PAGES: u32 = 100_000;
/// A sync renews its job's lease this far ahead …
const LEASE: TimeDelta = TimeDelta::minutes(5);
/// … this often (a page never takes longer than the outgoing calls' budget, minutes at most
/// with every retry, so the lease outlives the gap between renewals).
const LEASE_RENEWAL: std::time::Duration = std::time::Duration::from_secs(30);
/// The longest a sync may take, however slowly (but within every per-request budget) an
/// instance answers: 10 million users at 100 a page read at a few pages a second fit.
const MAX_SYNC_DURATION: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
/// Users staged per write transaction (a sync's pages, an import's users).
const STAGE_BATCH: usize = 500;
/// People per CSV batch.
const CSV_BATCH: i64 = 500;

/// Why a fleet request was refused.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("not found")]
    NotFound,
    #[error("{0} {1}")]
    Invalid(&'static str, String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Secrets(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::secrets::SecretsError> for FleetError {
    fn from(error: crate::secrets::SecretsError) -> Self {
        Self::Secrets(error.to_string())
    }
}

fn conflict_or_store(error: StoreError) -> FleetError {
    match error {
        StoreError::Conflict(message) => FleetError::Conflict(message),
        other => FleetError::Store(other),
    }
}

/// How an instance's last sync ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LastSync {
    /// `never`, `queued`, `running`, `success` or `failed`.
    pub status: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why the last sync failed (the instance's own message where it gave one).
    pub error: Option<String>,
}

/// The license an instance reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstanceLicense {
    pub plan: Option<String>,
    /// Seats (`user_limit`); `null` without a limit.
    pub seats: Option<i64>,
    pub starts_at: Option<String>,
    pub expires_at: Option<String>,
    /// The instance's own billable count (`active_users` of its `GET /license`).
    pub billable_users: Option<i64>,
}

/// An instance as the API shows it. The token is never shown: `token_set` says whether one
/// is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstanceEntity {
    pub id: i64,
    pub name: String,
    /// The base URL; `null` for an offline instance (imported from files).
    pub url: Option<String>,
    pub offline: bool,
    pub token_set: bool,
    pub gitlab_version: Option<String>,
    pub license: Option<InstanceLicense>,
    /// Users in the last complete snapshot.
    pub users: Option<i64>,
    /// Billable users in the last complete snapshot.
    pub billable_users: Option<i64>,
    /// Where billability came from: `instance` (GitLab's `using_license_seat`), `computed`
    /// (this server's rule, for instances that do not send it) or `mixed`.
    pub billability_source: Option<String>,
    pub last_sync: LastSync,
    pub last_success_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn time(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(timestamp_text)
}

pub fn entity(instance: &FleetInstance) -> InstanceEntity {
    let license =
        (instance.license_plan.is_some() || instance.license_seats.is_some()).then(|| {
            InstanceLicense {
                plan: instance.license_plan.clone(),
                seats: instance.license_seats,
                starts_at: instance.license_starts_on.map(|day| day.to_string()),
                expires_at: instance.license_expires_on.map(|day| day.to_string()),
                billable_users: instance.license_billable_users,
            }
        });
    InstanceEntity {
        id: instance.id,
        name: instance.name.clone(),
        url: instance.url.clone(),
        offline: instance.url.is_none(),
        token_set: instance.token_ciphertext.is_some(),
        gitlab_version: instance.gitlab_version.clone(),
        license,
        users: instance.users_count,
        billable_users: instance.billable_users,
        billability_source: instance.billability_source.clone(),
        last_sync: LastSync {
            status: instance.sync_status.clone(),
            started_at: time(instance.sync_started_at),
            finished_at: time(instance.sync_finished_at),
            error: instance.sync_error.clone(),
        },
        last_success_at: time(instance.last_success_at),
        created_at: timestamp_text(instance.created_at),
        updated_at: timestamp_text(instance.updated_at),
    }
}

/// Every instance as the API shows it (the list of the API, the page and the CLI).
pub async fn instances(state: &AppState) -> StoreResult<Vec<InstanceEntity>> {
    Ok(state
        .store
        .fleet_instances()
        .await?
        .iter()
        .map(entity)
        .collect())
}

/// The instances synced through their API (what `fleet sync` without a name syncs).
pub async fn online_instances(state: &AppState) -> StoreResult<Vec<FleetInstance>> {
    Ok(state
        .store
        .fleet_instances()
        .await?
        .into_iter()
        .filter(|instance| instance.url.is_some())
        .collect())
}

/// An instance by numeric id or by name.
pub async fn find(state: &AppState, id_or_name: &str) -> Result<FleetInstance, FleetError> {
    let found = match id_or_name.parse::<i64>() {
        Ok(id) => state.store.fleet_instance(id).await?,
        Err(_) => state.store.fleet_instance_named(id_or_name).await?,
    };
    found.ok_or(FleetError::NotFound)
}

fn instance_audit(
    author: &crate::store::User,
    event: &'static str,
    message: String,
    id: i64,
) -> NewAudit {
    audit::event(
        author,
        audit::INSTANCE_SCOPE,
        1,
        event,
        message,
        ("FleetInstance", id, "Fleet instance"),
    )
}

/// The token, checked and sealed.
fn seal_token(state: &AppState, token: &str) -> Result<String, FleetError> {
    let token = token.trim();
    if token.is_empty() || token.len() > 1024 || token.chars().any(char::is_control) {
        return Err(FleetError::Invalid(
            "token",
            "must be a personal access token (read_api is enough)".into(),
        ));
    }
    Ok(state.secrets.seal(token, fleet::TOKEN_PURPOSE)?)
}

fn checked_name(name: &str) -> Result<String, FleetError> {
    let name = name.trim();
    fleet::check_name(name).map_err(|message| FleetError::Invalid("name", message.into()))?;
    Ok(name.to_string())
}

fn checked_url(url: &str) -> Result<String, FleetError> {
    fleet::normalize_base_url(url).map_err(|message| FleetError::Invalid("url", message.into()))
}

/// Registers an online instance (audited).
pub async fn create(
    state: &AppState,
    admin: &AdminPrincipal,
    name: &str,
    url: &str,
    token: &Secret,
) -> Result<FleetInstance, FleetError> {
    let name = checked_name(name)?;
    let url = checked_url(url)?;
    let sealed = seal_token(state, token.expose())?;
    let audit = instance_audit(
        admin.user(),
        "fleet_instance_created",
        format!("Added fleet instance {name} ({url})"),
        0,
    );
    let instance = state
        .store
        .create_fleet_instance(
            &name,
            Some(&url),
            Some(&sealed),
            Write::audited(state.clock.now(), &audit),
        )
        .await
        .map_err(conflict_or_store)?;
    tracing::info!(instance = %instance.name, "fleet instance added");
    Ok(instance)
}

/// A change to an instance's registration.
#[derive(Debug, Default)]
pub struct InstanceUpdate {
    pub name: Option<String>,
    pub url: Option<String>,
    pub token: Option<Secret>,
}

/// Changes an instance (audited; which fields changed is said, never the token).
pub async fn update(
    state: &AppState,
    admin: &AdminPrincipal,
    instance: &FleetInstance,
    update: &InstanceUpdate,
) -> Result<FleetInstance, FleetError> {
    // An offline instance goes online with both a URL and a token.
    if instance.url.is_none() {
        if update.url.is_some() && update.token.is_none() && instance.token_ciphertext.is_none() {
            return Err(FleetError::Invalid(
                "token",
                "is needed to sync the instance through its API".into(),
            ));
        }
        if update.url.is_none() && update.token.is_some() {
            return Err(FleetError::Invalid(
                "url",
                "is needed to sync the instance through its API".into(),
            ));
        }
    }
    let changes = FleetInstanceChanges {
        name: update.name.as_deref().map(checked_name).transpose()?,
        url: update.url.as_deref().map(checked_url).transpose()?,
        token_ciphertext: update
            .token
            .as_ref()
            .map(|token| seal_token(state, token.expose()))
            .transpose()?,
    };
    let mut changed: Vec<&str> = Vec::new();
    for (field, set) in [
        ("name", changes.name.is_some()),
        ("url", changes.url.is_some()),
        ("token", changes.token_ciphertext.is_some()),
    ] {
        if set {
            changed.push(field);
        }
    }
    let audit = instance_audit(
        admin.user(),
        "fleet_instance_updated",
        format!(
            "Changed fleet instance {} ({})",
            instance.name,
            changed.join(", ")
        ),
        instance.id,
    );
    state
        .store
        .update_fleet_instance(
            instance.id,
            &changes,
            Write::audited(state.clock.now(), &audit),
        )
        .await
        .map_err(conflict_or_store)?
        .ok_or(FleetError::NotFound)
}

/// Removes an instance and its snapshot (audited); the fleet's figures follow at once.
pub async fn remove(
    state: &AppState,
    admin: &AdminPrincipal,
    instance: &FleetInstance,
) -> Result<(), FleetError> {
    let audit = instance_audit(
        admin.user(),
        "fleet_instance_removed",
        format!("Removed fleet instance {}", instance.name),
        instance.id,
    );
    if state
        .store
        .delete_fleet_instance(instance.id, Write::audited(state.clock.now(), &audit))
        .await?
    {
        tracing::info!(instance = %instance.name, "fleet instance removed");
        Ok(())
    } else {
        Err(FleetError::NotFound)
    }
}

/// Queues a sync of `instance` now (audited); an offline instance cannot be synced.
pub async fn request_sync(
    state: &AppState,
    admin: &AdminPrincipal,
    instance: &FleetInstance,
) -> Result<FleetInstance, FleetError> {
    if instance.url.is_none() {
        return Err(FleetError::Invalid(
            "instance",
            "is offline: import its data with `fleet import` or the page".into(),
        ));
    }
    let now = state.clock.now();
    let audit = instance_audit(
        admin.user(),
        "fleet_sync_requested",
        format!("Requested a sync of fleet instance {}", instance.name),
        instance.id,
    );
    if state
        .store
        .queue_fleet_sync(
            instance.id,
            JobKind::FleetSync.as_str(),
            Write::audited(now, &audit),
        )
        .await?
    {
        state.fleet_wake.notify_one();
    }
    find(state, &instance.id.to_string()).await
}

/// Everything a sync gathers before the swap.
struct Gathered {
    facts: SnapshotFacts,
    staged: i64,
}

/// Why a sync stopped.
enum SyncStop {
    /// The instance or the network failed it: recorded on the instance.
    Failed(String),
    /// This worker's claim on the job was lost: another worker owns it now.
    LeaseLost,
    Store(StoreError),
}

impl From<StoreError> for SyncStop {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

fn call_failure(what: &str, error: CallError) -> SyncStop {
    SyncStop::Failed(match error {
        CallError::Refused { status, reason } => format!(
            "{what}: the instance refused the token (HTTP {status}: {reason}); give the instance an administrator's token with read_api"
        ),
        other => format!("{what}: {other}"),
    })
}

/// Tracks where billability came from across a snapshot.
#[derive(Default)]
struct Sources {
    instance: bool,
    computed: bool,
}

impl Sources {
    fn note(&mut self, source: BillabilitySource) {
        match source {
            BillabilitySource::Instance => self.instance = true,
            BillabilitySource::Computed => self.computed = true,
        }
    }

    fn label(&self) -> Option<String> {
        match (self.instance, self.computed) {
            (true, true) => Some("mixed".into()),
            (true, false) => Some(BillabilitySource::Instance.as_str().into()),
            (false, true) => Some(BillabilitySource::Computed.as_str().into()),
            (false, false) => None,
        }
    }
}

fn staged_user(user: &UpstreamUser, sources: &mut Sources) -> StagedUser {
    let (billable, source) = user.billable();
    sources.note(source);
    StagedUser {
        upstream_id: user.id,
        username: user.username.clone(),
        name: user.name.clone().unwrap_or_default(),
        email: user.email.clone().unwrap_or_default(),
        state: user.state.clone().unwrap_or_else(|| "active".into()),
        bot: user.bot.unwrap_or(false),
        is_admin: user.is_admin.unwrap_or(false),
        billable,
        identities: user.identities_text(),
        last_activity_on: user.last_activity_day(),
        created_at: user.created_time(),
    }
}

fn license_facts(facts: &mut SnapshotFacts, license: &UpstreamLicense) {
    facts.license_plan = license.plan.clone();
    facts.license_seats = license.seats();
    facts.license_starts_on = UpstreamLicense::day(license.starts_at.as_deref());
    facts.license_expires_on = UpstreamLicense::day(license.expires_at.as_deref());
    facts.license_billable_users = license.active_users;
}

/// GETs `url` from the instance with its token.
async fn get(
    state: &AppState,
    url: &str,
    token: &Secret,
) -> Result<crate::outbound::Answer, CallError> {
    state
        .outbound
        .call_ok(&Call {
            method: reqwest::Method::GET,
            url,
            headers: vec![
                ("PRIVATE-TOKEN", token.expose().to_string()),
                ("Accept", "application/json".into()),
            ],
            body: None,
            max_answer_bytes: MAX_PAGE_BYTES,
        })
        .await
}

/// Reads the instance page by page into the stage (memory holds one page at a time).
async fn gather(
    state: &AppState,
    job: &JobRow,
    instance: &FleetInstance,
    base: &str,
    stage: &str,
) -> Result<Gathered, SyncStop> {
    let sealed = instance
        .token_ciphertext
        .as_deref()
        .ok_or_else(|| SyncStop::Failed("no token is stored for this instance".into()))?;
    let token = state
        .secrets
        .open(sealed, fleet::TOKEN_PURPOSE)
        .map_err(|error| SyncStop::Failed(error.to_string()))?;
    let mut facts = SnapshotFacts::default();
    let version = get(state, &format!("{base}/api/v4/version"), &token)
        .await
        .map_err(|error| call_failure("GET /api/v4/version", error))?;
    facts.gitlab_version = serde_json::from_slice::<serde_json::Value>(&version.body)
        .ok()
        .and_then(|json| json.get("version")?.as_str().map(str::to_string));
    // An instance without a license answers 404 (or null): that is a fact, not a failure.
    match get(state, &format!("{base}/api/v4/license"), &token).await {
        Ok(answer) => {
            if let Ok(Some(license)) =
                serde_json::from_slice::<Option<UpstreamLicense>>(&answer.body)
            {
                license_facts(&mut facts, &license);
            }
        }
        Err(CallError::Rejected { status: 404, .. }) => {}
        Err(error) => return Err(call_failure("GET /api/v4/license", error)),
    }
    let first_url = format!(
        "{base}/api/v4/users?pagination=keyset&order_by=id&sort=asc&per_page={}",
        fleet::USERS_PER_PAGE
    );
    let mut sources = Sources::default();
    // A writer stages batches of pages while the next pages are read, so a sync waits on
    // its own writes only when a second batch is ready before the first is written: memory
    // holds two batches at most, whatever the instance's size.
    let (batches, mut received) = tokio::sync::mpsc::channel::<Vec<StagedUser>>(1);
    let mut writer = {
        let (state, stage, instance_id) = (state.clone(), stage.to_string(), instance.id);
        AbortOnDrop(tokio::spawn(async move {
            let mut staged: i64 = 0;
            while let Some(batch) = received.recv().await {
                state
                    .store
                    .stage_fleet_users(instance_id, &stage, &batch, state.clock.now())
                    .await?;
                staged += i64::try_from(batch.len()).unwrap_or(0);
            }
            Ok::<i64, StoreError>(staged)
        }))
    };
    let read = read_pages(state, job, base, &token, first_url, &mut sources, &batches).await;
    drop(batches);
    // The writer finishes (or fails) before anything else happens to the stage.
    let written = (&mut writer.0)
        .await
        .map_err(|error| SyncStop::Failed(format!("staging stopped: {error}")))?;
    read?;
    facts.billability_source = sources.label();
    Ok(Gathered {
        facts,
        staged: written?,
    })
}

/// A task that ends with its owner: a sync given up (its time ran out) leaves no writer
/// staging behind it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads every page of users, handing batches to the writer.
async fn read_pages(
    state: &AppState,
    job: &JobRow,
    base: &str,
    token: &Secret,
    first_url: String,
    sources: &mut Sources,
    batches: &tokio::sync::mpsc::Sender<Vec<StagedUser>>,
) -> Result<(), SyncStop> {
    let mut next_url = Some(first_url);
    let mut pending: Vec<StagedUser> = Vec::new();
    let mut pending_index: HashMap<i64, usize> = HashMap::new();
    let mut renewed = std::time::Instant::now();
    for page in 1.. {
        let Some(url) = next_url.take() else {
            // The writer gone means it failed: its error is what the sync reports.
            let _ = batches.send(pending).await;
            return Ok(());
        };
        if page > MAX_PAGES {
            break;
        }
        let answer = get(state, &url, token)
            .await
            .map_err(|error| call_failure(&format!("GET /api/v4/users (page {page})"), error))?;
        let users: Vec<UpstreamUser> = serde_json::from_slice(&answer.body).map_err(|error| {
            SyncStop::Failed(format!(
                "GET /api/v4/users (page {page}): not GitLab's list of users ({error})"
            ))
        })?;
        for user in &users {
            // A user listed twice (the instance's users shifted while it was read) keeps the
            // later copy: in the batch here, in the stage by its unique key.
            let row = staged_user(user, sources);
            match pending_index.get(&user.id) {
                Some(&at) => pending[at] = row,
                None => {
                    pending_index.insert(user.id, pending.len());
                    pending.push(row);
                }
            }
        }
        if pending.len() >= STAGE_BATCH {
            pending_index.clear();
            if batches.send(std::mem::take(&mut pending)).await.is_err() {
                return Ok(());
            }
        }
        // The lease is renewed well before it runs out, not after every page (a write each).
        if renewed.elapsed() >= LEASE_RENEWAL {
            if !state
                .store
                .extend_job_lease(job, state.clock.now() + LEASE)
                .await?
            {
                return Err(SyncStop::LeaseLost);
            }
            renewed = std::time::Instant::now();
        }
        let next = answer
            .headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|link| fleet::next_page_url(base, link));
        // A next link back to the same page would never end.
        next_url = next.filter(|next| *next != url);
    }
    Err(SyncStop::Failed(format!(
        "GET /api/v4/users: more than {MAX_PAGES} pages; stopped"
    )))
}

/// Refreshes the fleet's planner statistics after a swap; a failure only costs plans.
async fn analyze_quietly(state: &AppState) {
    if let Err(error) = state.store.analyze_fleet().await {
        tracing::warn!(%error, "could not refresh the fleet's statistics");
    }
}

/// How a sync job ended, for the job metrics.
pub const SYNC_DONE: &str = "done";
pub const SYNC_FAILED: &str = "failed";
pub const SYNC_SKIPPED: &str = "skipped";
pub const SYNC_LOST: &str = "lost";

/// Runs a claimed sync job: gathers the instance's pages into a stage, then swaps the
/// snapshot in with the job's completion — or records the failure, leaving the previous
/// snapshot in use. Returns the outcome's name.
pub async fn run_sync_job(state: &AppState, job: &JobRow) -> StoreResult<&'static str> {
    let now = state.clock.now();
    let instance = match job.subject_id {
        Some(id) => state.store.fleet_instance(id).await?,
        None => None,
    };
    let Some((instance, base)) =
        instance.and_then(|instance| Some((instance.clone(), instance.url?)))
    else {
        // Removed, or made offline, since it was queued: nothing to do.
        state
            .store
            .finish_job(job, &crate::store::JobEffect::Nothing, now)
            .await?;
        return Ok(SYNC_SKIPPED);
    };
    let stage = format!("job-{}-{}", job.id, job.attempts);
    if !state
        .store
        .begin_fleet_sync(job, instance.id, &stage, now)
        .await?
    {
        state
            .store
            .finish_job(job, &crate::store::JobEffect::Nothing, now)
            .await?;
        return Ok(SYNC_SKIPPED);
    }
    let started = std::time::Instant::now();
    let gathered = tokio::time::timeout(
        MAX_SYNC_DURATION,
        gather(state, job, &instance, &base, &stage),
    )
    .await
    .unwrap_or_else(|_| {
        Err(SyncStop::Failed(format!(
            "the sync did not finish within {} hours; stopped",
            MAX_SYNC_DURATION.as_secs() / 3600
        )))
    });
    let stop = match gathered {
        Ok(gathered) => {
            let read_ms = started.elapsed().as_millis() as u64;
            match state
                .store
                .swap_fleet_snapshot(
                    Some(job),
                    instance.id,
                    &stage,
                    gathered.staged,
                    &gathered.facts,
                    Write::unaudited(state.clock.now()),
                )
                .await
            {
                Ok(Some(recomputed)) => {
                    analyze_quietly(state).await;
                    tracing::info!(
                        instance = %instance.name,
                        users = gathered.staged,
                        read_ms,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        unique_billable_users = recomputed.figures.unique_billable_users,
                        "fleet instance synced"
                    );
                    if recomputed.subset_violated {
                        state.hooks_wake.notify_one();
                    }
                    return Ok(SYNC_DONE);
                }
                Ok(None) => SyncStop::LeaseLost,
                Err(StoreError::Conflict(message)) => SyncStop::Failed(message),
                Err(error) => SyncStop::Store(error),
            }
        }
        Err(stop) => stop,
    };
    match stop {
        SyncStop::Failed(error) => {
            tracing::warn!(instance = %instance.name, %error, "fleet sync failed");
            let payload = json!({
                "event_name": FLEET_SYNC_FAILED_EVENT,
                "instance": instance.name,
                "url": base,
                "error": error,
                "created_at": timestamp_text(state.clock.now()),
            });
            state
                .store
                .fail_fleet_sync(
                    Some(job),
                    instance.id,
                    &stage,
                    &error,
                    &payload,
                    state.clock.now(),
                )
                .await?;
            state.hooks_wake.notify_one();
            Ok(SYNC_FAILED)
        }
        SyncStop::LeaseLost => {
            tracing::warn!(instance = %instance.name, "fleet sync lost its job's lease; another worker owns it");
            Ok(SYNC_LOST)
        }
        SyncStop::Store(error) => {
            // The database failed under the sync: its stage goes, the job is retried as any.
            let _ = state.store.drop_fleet_stage(instance.id, &stage).await;
            Err(error)
        }
    }
}

/// What an import found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportReport {
    pub instance: InstanceEntity,
    /// Users read from the file (duplicates counted once in the snapshot).
    pub users_read: i64,
    pub license_found: bool,
}

/// Imports an offline instance's data (the JSON of `GET /api/v4/users` and
/// `GET /api/v4/license`, concatenated or one per line), creating the instance when it does
/// not exist. All or nothing, like a sync; audited.
pub async fn import(
    state: &AppState,
    admin: &AdminPrincipal,
    name: &str,
    text: &str,
) -> Result<ImportReport, FleetError> {
    let name = checked_name(name)?;
    let mut users: Vec<UpstreamUser> = Vec::new();
    let mut facts = SnapshotFacts::default();
    let mut license_found = false;
    for (position, document) in serde_json::Deserializer::from_str(text)
        .into_iter::<ImportDocument>()
        .enumerate()
    {
        match document {
            Ok(ImportDocument::Users(page)) => users.extend(page),
            Ok(ImportDocument::License(license)) => {
                license_facts(&mut facts, &license);
                license_found = true;
            }
            Ok(ImportDocument::Version { version }) => facts.gitlab_version = Some(version),
            Err(error) => {
                return Err(FleetError::Invalid(
                    "file",
                    format!(
                        "document {} is not GitLab's users list, license or version ({error})",
                        position + 1
                    ),
                ))
            }
        }
    }
    if users.is_empty() {
        return Err(FleetError::Invalid(
            "file",
            "holds no users: save GET /api/v4/users (as an administrator) into it".into(),
        ));
    }
    let now = state.clock.now();
    let instance = match state.store.fleet_instance_named(&name).await? {
        Some(existing) if existing.url.is_some() => {
            return Err(FleetError::Conflict(format!(
                "{name} is synced through its API; imports are for offline instances"
            )))
        }
        Some(existing) => existing,
        None => {
            let audit = instance_audit(
                admin.user(),
                "fleet_instance_created",
                format!("Added offline fleet instance {name}"),
                0,
            );
            state
                .store
                .create_fleet_instance(&name, None, None, Write::audited(now, &audit))
                .await
                .map_err(conflict_or_store)?
        }
    };
    let mut sources = Sources::default();
    let stage = format!("import-{}", now.timestamp_micros());
    // A user the file lists twice keeps the later copy, as in a sync.
    let mut latest: HashMap<i64, usize> = HashMap::new();
    for (position, user) in users.iter().enumerate() {
        latest.insert(user.id, position);
    }
    let rows: Vec<StagedUser> = users
        .iter()
        .enumerate()
        .filter(|(position, user)| latest.get(&user.id) == Some(position))
        .map(|(_, user)| staged_user(user, &mut sources))
        .collect();
    drop(users);
    facts.billability_source = sources.label();
    for batch in rows.chunks(STAGE_BATCH) {
        if let Err(error) = state
            .store
            .stage_fleet_users(instance.id, &stage, batch, now)
            .await
        {
            let _ = state.store.drop_fleet_stage(instance.id, &stage).await;
            return Err(error.into());
        }
    }
    let audit = instance_audit(
        admin.user(),
        "fleet_instance_imported",
        format!("Imported {} users into fleet instance {name}", rows.len()),
        instance.id,
    );
    let swapped = state
        .store
        .swap_fleet_snapshot(
            None,
            instance.id,
            &stage,
            i64::try_from(rows.len()).unwrap_or(i64::MAX),
            &facts,
            Write::audited(state.clock.now(), &audit),
        )
        .await;
    match swapped {
        Ok(Some(recomputed)) => {
            analyze_quietly(state).await;
            if recomputed.subset_violated {
                state.hooks_wake.notify_one();
            }
        }
        Ok(None) => return Err(FleetError::NotFound),
        Err(error) => {
            let _ = state.store.drop_fleet_stage(instance.id, &stage).await;
            return Err(conflict_or_store(error));
        }
    }
    let instance = find(state, &instance.id.to_string()).await?;
    Ok(ImportReport {
        instance: entity(&instance),
        users_read: i64::try_from(rows.len()).unwrap_or(i64::MAX),
        license_found,
    })
}

/// Billable people two instances share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OverlapEntry {
    /// The two instances' names.
    pub instances: [String; 2],
    pub shared_billable_people: i64,
}

/// One instance in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SummaryInstance {
    pub id: i64,
    pub name: String,
    pub offline: bool,
    pub plan: Option<String>,
    pub seats: Option<i64>,
    pub expires_at: Option<String>,
    pub users: Option<i64>,
    pub billable_users: Option<i64>,
    pub billability_source: Option<String>,
    pub last_sync: LastSync,
    pub last_success_at: Option<String>,
}

/// The fleet's answer (`GET /api/v4/-/fleet/summary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FleetSummary {
    /// Billable people across every instance, each counted once.
    pub unique_billable_users: i64,
    /// The instance with the most billable users (GitLab bills a multi-instance license from
    /// it); `null` before any snapshot.
    pub largest_instance: Option<String>,
    /// Every billable person is billable on the largest instance: the other instances hold
    /// the same users or a subset, as GitLab's multi-instance licensing assumes.
    pub subset_holds: bool,
    /// Billable people who are absent from, or not billable on, the largest instance
    /// (`GET /api/v4/-/fleet/people?outside_largest=true` lists them).
    pub people_outside_largest: i64,
    /// Billable accounts summed over instances (what adding the instances' counts gives).
    pub billable_accounts: i64,
    /// People with an account anywhere.
    pub people: i64,
    pub instances: Vec<SummaryInstance>,
    /// Billable people each pair of instances shares (pairs sharing none are left out).
    pub overlaps: Vec<OverlapEntry>,
    /// When the figures were computed (the last snapshot change).
    pub computed_at: Option<String>,
}

/// The summary: stored figures (computed when a snapshot changed) and the instances now.
pub async fn summary(state: &AppState) -> StoreResult<FleetSummary> {
    let instances = state.store.fleet_instances().await?;
    let (figures, computed_at) = match state.store.fleet_figures().await? {
        Some((figures, at)) => (figures, Some(at)),
        None => (
            fleet::FleetFigures {
                subset_holds: true,
                ..Default::default()
            },
            None,
        ),
    };
    let names: HashMap<i64, &str> = instances.iter().map(|i| (i.id, i.name.as_str())).collect();
    let name_of = |id: i64| names.get(&id).map(|name| (*name).to_string());
    Ok(FleetSummary {
        unique_billable_users: figures.unique_billable_users,
        largest_instance: figures.largest_instance_id.and_then(name_of),
        subset_holds: figures.subset_holds,
        people_outside_largest: figures.people_outside_largest,
        billable_accounts: figures.billable_accounts,
        people: figures.people,
        overlaps: figures
            .overlaps
            .iter()
            .filter_map(|overlap| {
                Some(OverlapEntry {
                    instances: [name_of(overlap.a)?, name_of(overlap.b)?],
                    shared_billable_people: overlap.shared_billable_people,
                })
            })
            .collect(),
        instances: instances
            .iter()
            .map(|instance| {
                let shown = entity(instance);
                SummaryInstance {
                    id: instance.id,
                    name: instance.name.clone(),
                    offline: shown.offline,
                    plan: instance.license_plan.clone(),
                    seats: instance.license_seats,
                    expires_at: instance.license_expires_on.map(|day| day.to_string()),
                    users: instance.users_count,
                    billable_users: instance.billable_users,
                    billability_source: instance.billability_source.clone(),
                    last_sync: shown.last_sync,
                    last_success_at: shown.last_success_at,
                }
            })
            .collect(),
        computed_at: time(computed_at),
    })
}

/// One account of a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PersonAccount {
    pub instance: String,
    /// The user's id on that instance.
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    pub state: String,
    pub bot: bool,
    pub is_admin: bool,
    pub billable: bool,
    pub identities: Vec<Identity>,
    pub last_activity_on: Option<String>,
}

/// One person across the fleet (`GET /api/v4/-/fleet/people`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PersonEntry {
    /// The person's key: their e-mail address (lower-case), else `identity:provider:uid`,
    /// else `account:<instance id>:<user id>`.
    pub person: String,
    /// Billable on at least one instance.
    pub billable: bool,
    /// Billable somewhere but not on the largest instance.
    pub outside_largest: bool,
    /// The instances the person is billable on.
    pub billable_on: Vec<String>,
    /// The instances the person has an account on.
    pub present_on: Vec<String>,
    /// How many accounts the person has across the fleet.
    pub account_count: i64,
    /// The person's accounts, by instance: the first 50 (`account_count` says how many
    /// there are).
    pub accounts: Vec<PersonAccount>,
}

/// A page of people and the key the next page starts after.
pub struct PeoplePage {
    pub people: Vec<PersonEntry>,
    pub next_after: Option<String>,
}

/// The people list's filters as given (an instance by id or name).
#[derive(Debug, Clone, Default)]
pub struct PeopleQuery {
    pub instance: Option<String>,
    pub billable: Option<bool>,
    pub outside_largest: Option<bool>,
}

/// The filters resolved, with the instances' names.
pub struct PreparedPeople {
    filter: PeopleFilter,
    names: HashMap<i64, String>,
}

pub async fn prepare_people(
    state: &AppState,
    query: &PeopleQuery,
) -> Result<PreparedPeople, FleetError> {
    let instance_id = match &query.instance {
        Some(instance) => Some(find(state, instance).await?.id),
        None => None,
    };
    let names = state
        .store
        .fleet_instances()
        .await?
        .into_iter()
        .map(|instance| (instance.id, instance.name))
        .collect();
    Ok(PreparedPeople {
        filter: PeopleFilter {
            instance_id,
            billable: query.billable,
            outside_largest: query.outside_largest,
        },
        names,
    })
}

impl PreparedPeople {
    fn person(
        &self,
        key: String,
        accounts: Vec<FleetAccount>,
        presence: &[PersonPresence],
    ) -> PersonEntry {
        let name = |id: i64| {
            self.names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| id.to_string())
        };
        PersonEntry {
            person: key,
            billable: accounts.first().is_some_and(|a| a.person_billable),
            outside_largest: accounts.first().is_some_and(|a| a.person_outside_largest),
            billable_on: presence
                .iter()
                .filter(|place| place.billable > 0)
                .map(|place| name(place.instance_id))
                .collect(),
            present_on: presence
                .iter()
                .map(|place| name(place.instance_id))
                .collect(),
            account_count: presence.iter().map(|place| place.accounts).sum(),
            accounts: accounts
                .into_iter()
                .map(|account| PersonAccount {
                    instance: name(account.instance_id),
                    id: account.upstream_id,
                    username: account.username,
                    name: account.name,
                    email: account.email,
                    state: account.state,
                    bot: account.bot,
                    is_admin: account.is_admin,
                    billable: account.billable,
                    identities: fleet::parse_identities(&account.identities),
                    last_activity_on: account.last_activity_on.map(|day| day.to_string()),
                })
                .collect(),
        }
    }

    /// The people after `after` (a person key; empty for the first page), `limit` of them.
    pub async fn page(&self, state: &AppState, after: &str, limit: i64) -> StoreResult<PeoplePage> {
        let mut keys = state
            .store
            .fleet_people_keys(self.filter, after, limit.saturating_add(1))
            .await?;
        let more = i64::try_from(keys.len()).unwrap_or(i64::MAX) > limit;
        keys.truncate(usize::try_from(limit).unwrap_or(0));
        let mut by_person: HashMap<String, Vec<FleetAccount>> = HashMap::new();
        for account in state.store.fleet_accounts_of(&keys).await? {
            by_person
                .entry(account.person_key.clone())
                .or_default()
                .push(account);
        }
        let mut presence_of: HashMap<String, Vec<PersonPresence>> = HashMap::new();
        for place in state.store.fleet_presence_of(&keys).await? {
            presence_of
                .entry(place.person_key.clone())
                .or_default()
                .push(place);
        }
        let next_after = more.then(|| keys.last().cloned()).flatten();
        let people = keys
            .into_iter()
            .map(|key| {
                let accounts = by_person.remove(&key).unwrap_or_default();
                let presence = presence_of.remove(&key).unwrap_or_default();
                self.person(key, accounts, &presence)
            })
            .collect();
        Ok(PeoplePage { people, next_after })
    }

    /// The whole list as CSV, read a batch at a time.
    pub fn csv(self, state: AppState) -> impl Stream<Item = Result<Bytes, StoreError>> {
        let start = (self, state, Some(String::new()), true);
        futures_util::stream::try_unfold(start, |(people, state, after, first)| async move {
            let Some(after_key) = after else {
                return Ok(None);
            };
            let page = people.page(&state, &after_key, CSV_BATCH).await?;
            let mut chunk = String::new();
            if first {
                chunk.push_str(crate::domain::fleet::PEOPLE_CSV_HEADER);
            }
            for person in &page.people {
                let account = person.accounts.first();
                chunk.push_str(&crate::domain::fleet::people_csv_line(
                    &person.person,
                    account.map_or("", |a| a.username.as_str()),
                    account.map_or("", |a| a.name.as_str()),
                    person.billable,
                    person.outside_largest,
                    &person.billable_on,
                    &person.present_on,
                ));
            }
            let next = page.next_after;
            Ok(Some((Bytes::from(chunk), (people, state, next, false))))
        })
    }
}
