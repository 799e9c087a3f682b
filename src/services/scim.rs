//! Users and groups from the identity provider: GitLab's instance SCIM API (provision,
//! deprovision — GitLab's `ldap_blocked` — reprovision, relink), the instance SCIM token, and
//! SCIM groups whose members hold GitLab Duo seats while seats last (an extension). Every
//! change is one transaction with its audit event, whose author is the SCIM token.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::scim::{
    self, Filter, GroupChange, Page, Provision, Resource, UserPatch, TOKEN_PREFIX,
};
use crate::domain::seats::SeatOutcome;
use crate::domain::users::{validate_identity, UserState, UserType};
use crate::policy::AdminPrincipal;
use crate::services::add_ons::{change_bulk, BulkChange, Caller, SeatError};
use crate::services::duo_bulk::{self, Recipients};
use crate::services::{audit, licenses};
use crate::state::AppState;
use crate::store::{
    GroupUpdate, MembershipChange, NewAudit, NewUser, ScimGroup, ScimMember, ScimUser, StoreError,
    User, Write,
};

/// Why a SCIM request failed, as GitLab's SCIM API answers (an `Error` resource).
#[derive(Debug)]
pub enum ScimError {
    /// 404 `Resource <id> not found` / `Group <id> not found`.
    NotFound(String),
    /// 409: a validation that says "has already been taken".
    Conflict(String),
    /// 412: every other refusal.
    Invalid(String),
    Store(StoreError),
}

impl From<StoreError> for ScimError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => Self::Conflict(message),
            StoreError::LastAdministrator => Self::Invalid(
                crate::domain::moderation::LAST_ADMIN_REFUSAL
                    .trim_start_matches("403 Forbidden - ")
                    .to_string(),
            ),
            other => Self::Store(other),
        }
    }
}

pub type ScimResult<T> = Result<T, ScimError>;

/// Who audit events name for changes made through the SCIM API: the instance SCIM token.
pub static SCIM_ACTOR: LazyLock<Arc<User>> = LazyLock::new(|| {
    Arc::new(User {
        id: audit::SCIM_TOKEN_AUTHOR_ID,
        username: "scim-token".into(),
        name: "SCIM token".into(),
        email: String::new(),
        state: UserState::Active,
        user_type: UserType::Human,
        admin: false,
        created_at: DateTime::UNIX_EPOCH,
        last_activity_on: None,
    })
});

/// An audit event of a SCIM change to a user.
fn user_audit(user_id: i64, username: &str, event_name: &'static str, message: String) -> NewAudit {
    audit::event(
        &SCIM_ACTOR,
        "User",
        user_id,
        event_name,
        message,
        ("User", user_id, username),
    )
}

/// An audit event of a change to a SCIM group.
fn group_audit(
    author: &User,
    group: (i64, &str),
    event_name: &'static str,
    message: String,
) -> NewAudit {
    let (id, name) = group;
    audit::event(
        author,
        audit::INSTANCE_SCOPE,
        0,
        event_name,
        message,
        ("ScimGroup", id, name),
    )
}

// ---------------------------------------------------------------------------------------
// The token and who may call.

/// When the instance SCIM token was made (`None`: there is none yet).
pub async fn token_created_at(state: &AppState) -> ScimResult<Option<DateTime<Utc>>> {
    Ok(state.store.scim_token_created_at().await?)
}

/// Makes the instance SCIM token — the first one (`reset` false; `None` when one exists, as
/// GitLab then only offers a reset) or a new one that replaces it. Shown once: only its
/// digest is kept.
pub async fn generate_token(
    state: &AppState,
    admin: &AdminPrincipal,
    reset: bool,
) -> ScimResult<Option<String>> {
    let token = crate::auth::generate_prefixed_token(TOKEN_PREFIX);
    let (event_name, message) = if reset {
        ("scim_token_reset", "Reset the instance SCIM token")
    } else {
        ("scim_token_generated", "Generated the instance SCIM token")
    };
    let event = audit::event(
        admin.user(),
        audit::INSTANCE_SCOPE,
        0,
        event_name,
        message.into(),
        ("ScimOauthAccessToken", 1, "instance SCIM token"),
    );
    let saved = state
        .store
        .save_scim_token(
            &crate::auth::token_digest(&token),
            reset,
            Write::audited(state.clock.now(), &event),
        )
        .await?;
    if saved {
        tracing::info!(reset, "instance SCIM token generated");
    }
    Ok(saved.then_some(token))
}

/// What a SCIM request may do, decided by the policy from the token and the license.
pub async fn access(
    state: &AppState,
    token: Option<&str>,
) -> ScimResult<crate::policy::ScimAccess> {
    let token_matches = match token {
        Some(token) if token.starts_with(TOKEN_PREFIX) => {
            state
                .store
                .scim_token_matches(&crate::auth::token_digest(token))
                .await?
        }
        _ => false,
    };
    let plan = licenses::current(state, state.clock.today())
        .await?
        .map(|(_, license)| license.plan().to_string());
    Ok(crate::policy::scim_access(token_matches, plan.as_deref()))
}

// ---------------------------------------------------------------------------------------
// Users.

/// GitLab's `ScimFinder`: identities matching `filter`, one page of them, and how many match.
pub async fn list_users(
    state: &AppState,
    filter: Option<&str>,
    page: Page,
) -> ScimResult<(Vec<ScimUser>, i64)> {
    let filter = scim::parse_filter(filter.unwrap_or(""), Resource::User)
        .map_err(|detail| ScimError::Invalid(detail.into()))?;
    let found = match filter {
        None => {
            return Ok(state
                .store
                .scim_users_page(page.offset(), page.count)
                .await?)
        }
        Some(Filter::ExternUid(uid)) => state.store.scim_user_by_extern_uid(&uid).await?,
        Some(Filter::UserName(name)) => by_user_name(state, &name).await?,
        Some(Filter::DisplayName(_)) => None,
    };
    let total = i64::from(found.is_some());
    let rows = found
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .collect();
    Ok((rows, total))
}

/// `userName eq X`: the identity with extern_uid X, else the identity of the user named X,
/// else — for an e-mail — of the user with that address or named after its local part.
async fn by_user_name(state: &AppState, name: &str) -> ScimResult<Option<ScimUser>> {
    if let Some(found) = state.store.scim_user_by_extern_uid(name).await? {
        return Ok(Some(found));
    }
    let mut user = state.store.find_user_by_username(name).await?;
    if user.is_none() && name.contains('@') {
        user = state.store.find_user_by_email(name).await?;
        if user.is_none() {
            let local = name.split('@').next().unwrap_or_default();
            if !local.is_empty() {
                user = state.store.find_user_by_username(local).await?;
            }
        }
    }
    match user {
        Some(user) => Ok(state.store.scim_user_of(user.id).await?),
        None => Ok(None),
    }
}

fn resource_not_found(id: &str) -> ScimError {
    ScimError::NotFound(format!("Resource {id} not found"))
}

pub async fn find_user(state: &AppState, extern_uid: &str) -> ScimResult<ScimUser> {
    state
        .store
        .scim_user_by_extern_uid(extern_uid)
        .await?
        .ok_or_else(|| resource_not_found(extern_uid))
}

/// Ruby's `Hash#inspect` of the request's parameters, secrets filtered as Rails'
/// `filter_parameters` do — what GitLab's "Error saving user with {…}" shows.
pub fn inspect_params(body: &Map<String, Value>) -> String {
    const FILTERED_SUFFIXES: [&str; 2] = ["token", "key"];
    const FILTERED_PARTS: [&str; 4] = ["password", "secret", "certificate", "sharedsecret"];
    fn inspect(value: &Value) -> String {
        match value {
            Value::Null => "nil".into(),
            Value::String(text) => format!("{text:?}"),
            Value::Array(items) => {
                format!(
                    "[{}]",
                    items.iter().map(inspect).collect::<Vec<_>>().join(", ")
                )
            }
            Value::Object(map) => inspect_map(map),
            other => other.to_string(),
        }
    }
    fn inspect_map(map: &Map<String, Value>) -> String {
        let pairs: Vec<String> = map
            .iter()
            .map(|(key, value)| {
                let lower = key.to_ascii_lowercase();
                let secret = FILTERED_SUFFIXES.iter().any(|end| lower.ends_with(end))
                    || FILTERED_PARTS.iter().any(|part| lower.contains(part));
                let shown = if secret {
                    "\"[FILTERED]\"".to_string()
                } else {
                    inspect(value)
                };
                format!("{key:?}=>{shown}")
            })
            .collect();
        format!("{{{}}}", pairs.join(", "))
    }
    let text = inspect_map(body);
    // An error detail stays readable: a huge body is cut.
    if text.chars().count() > 2_000 {
        format!("{}…}}", text.chars().take(2_000).collect::<String>())
    } else {
        text
    }
}

/// `POST /Users`: GitLab's `ProvisioningService`. An identity with this `extern_uid` already
/// there is the answer as it is (idempotent); a user with the e-mail is linked; otherwise a
/// user is created with a sanitised, unique username and a password nobody knows (this
/// server keeps no passwords: its users sign in elsewhere).
pub async fn provision(state: &AppState, body: &Map<String, Value>) -> ScimResult<ScimUser> {
    let saving_error =
        |message: String| format!("Error saving user with {}: {message}", inspect_params(body));
    let params = scim::provision_params(body)
        .map_err(|message| ScimError::Invalid(saving_error(message)))?;
    if let Some(existing) = state
        .store
        .scim_user_by_extern_uid(&params.extern_uid)
        .await?
    {
        return Ok(existing);
    }
    validate_identity(None, Some(&params.email), None)
        .map_err(|(_, message)| ScimError::Invalid(saving_error(format!("Email {message}"))))?;
    let outcome = match state.store.find_user_by_email(&params.email).await? {
        Some(user) => link(state, &params, &user).await,
        None => create(state, &params).await,
    };
    match outcome {
        Ok(created) => Ok(created),
        // Another request provisioned the same identity at the same moment: that one's answer.
        Err(ScimError::Conflict(message)) => {
            match state
                .store
                .scim_user_by_extern_uid(&params.extern_uid)
                .await?
            {
                Some(existing) => Ok(existing),
                None => Err(ScimError::Conflict(saving_error(message))),
            }
        }
        Err(ScimError::Invalid(message)) => Err(ScimError::Invalid(saving_error(message))),
        Err(other) => Err(other),
    }
}

async fn link(state: &AppState, params: &Provision, user: &User) -> ScimResult<ScimUser> {
    let event = user_audit(
        user.id,
        &user.username,
        "user_provisioned_by_scim",
        format!(
            "Linked {} to the identity provider's user {}",
            user.username, params.extern_uid
        ),
    );
    let linked = state
        .store
        .provision_scim_user(
            &params.extern_uid,
            Ok(user.id),
            Write::audited(state.clock.now(), &event),
        )
        .await?;
    tracing::info!(
        user_id = user.id,
        "SCIM identity linked to an existing user"
    );
    Ok(linked)
}

/// A username not taken by a user or a group, from GitLab's sanitised one.
async fn free_username(state: &AppState, wanted: &str) -> ScimResult<String> {
    let base = scim::sanitize_username(wanted);
    for candidate in scim::username_candidates(&base).take(1_000) {
        let taken = state
            .store
            .find_user_by_username(&candidate)
            .await?
            .is_some()
            || state
                .store
                .find_group(&candidate)
                .await?
                .is_some_and(|group| group.path.eq_ignore_ascii_case(&candidate));
        if !taken && crate::domain::users::valid_path(&candidate) {
            return Ok(candidate);
        }
    }
    Err(ScimError::Conflict(
        "Username has already been taken".into(),
    ))
}

async fn create(state: &AppState, params: &Provision) -> ScimResult<ScimUser> {
    // A username another request takes meanwhile: the next free one.
    for _ in 0..3 {
        let username = free_username(state, &params.username).await?;
        let new = NewUser {
            username: username.clone(),
            name: params.name.clone(),
            email: params.email.clone(),
            state: UserState::Active,
            user_type: UserType::Human,
            admin: false,
        };
        let now = state.clock.now();
        let mut event = user_audit(
            0,
            &username,
            "user_provisioned_by_scim",
            format!(
                "Created {username} for the identity provider's user {}",
                params.extern_uid
            ),
        );
        event.hook = Some(crate::services::users::user_hook(
            "user_create",
            &new.username,
            &new.name,
            &new.email,
            now,
            now,
        ));
        match state
            .store
            .provision_scim_user(&params.extern_uid, Err(&new), Write::audited(now, &event))
            .await
        {
            Ok(created) => {
                tracing::info!(user_id = created.user_id, "user provisioned through SCIM");
                state.hooks_wake.notify_one();
                return Ok(created);
            }
            Err(StoreError::Conflict(message)) if message.starts_with("Username") => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ScimError::Conflict(
        "Username has already been taken".into(),
    ))
}

/// `PATCH /Users/:id`: GitLab's `update_scim_user`.
pub async fn patch_user(state: &AppState, extern_uid: &str, body: &Value) -> ScimResult<()> {
    let identity = find_user(state, extern_uid).await?;
    let patch: UserPatch = scim::user_patch(body).map_err(|message| {
        ScimError::Invalid(format!(
            "Error updating {} with {}: {message}",
            identity.name, body
        ))
    })?;
    if patch.active == Some(false) {
        return deprovision_identity(state, &identity).await;
    }
    // GitLab: an inactive identity is reprovisioned by any PATCH that does not deactivate it.
    if !identity.active {
        reprovision(state, &identity).await?;
    }
    if let Some(new_uid) = patch.extern_uid {
        if new_uid != identity.extern_uid {
            let event = user_audit(
                identity.user_id,
                &identity.username,
                "scim_identity_relinked",
                format!(
                    "Changed the identity provider's id of {} from {} to {new_uid}",
                    identity.username, identity.extern_uid
                ),
            );
            state
                .store
                .relink_scim_user(
                    identity.user_id,
                    &new_uid,
                    Write::audited(state.clock.now(), &event),
                )
                .await
                .map_err(|error| match error {
                    StoreError::Conflict(message) => ScimError::Conflict(format!(
                        "Error updating {} with {body}: {message}",
                        identity.name
                    )),
                    other => other.into(),
                })?;
        }
    }
    Ok(())
}

/// `DELETE /Users/:id`: deprovisions (the user stays, `ldap_blocked`).
pub async fn deprovision(state: &AppState, extern_uid: &str) -> ScimResult<()> {
    let identity = find_user(state, extern_uid).await?;
    deprovision_identity(state, &identity).await
}

/// GitLab's `DeprovisioningService`: the identity inactive and `user.system_block` (active or
/// deactivated → `ldap_blocked`; other states stay). The user's seats from SCIM groups are
/// freed at once; other seats follow the usual clean-up of users who may no longer hold one.
async fn deprovision_identity(state: &AppState, identity: &ScimUser) -> ScimResult<()> {
    let new_state = matches!(identity.state, UserState::Active | UserState::Deactivated)
        .then_some(UserState::LdapBlocked);
    if !identity.active && new_state.is_none() {
        return Ok(());
    }
    let event = user_audit(
        identity.user_id,
        &identity.username,
        "user_deprovisioned_by_scim",
        match new_state {
            Some(to) => format!(
                "Deprovisioned {}: changed state from {} to {to}",
                identity.username, identity.state
            ),
            None => format!(
                "Deprovisioned {} (state {} kept)",
                identity.username, identity.state
            ),
        },
    );
    state
        .store
        .set_scim_active(
            identity.user_id,
            false,
            new_state,
            &[event],
            state.clock.now(),
        )
        .await?;
    tracing::info!(
        user_id = identity.user_id,
        "user deprovisioned through SCIM"
    );
    for (_, purchase_id) in state.store.linked_scim_groups_of(identity.user_id).await? {
        release_seats(state, purchase_id, &[identity.user_id], true).await?;
    }
    Ok(())
}

/// GitLab's `ReprovisioningService`: the identity active again and `user.activate` (from any
/// blocked or deactivated state); seats from the user's SCIM groups are given again.
async fn reprovision(state: &AppState, identity: &ScimUser) -> ScimResult<()> {
    let new_state = (identity.state != UserState::Active).then_some(UserState::Active);
    let event = user_audit(
        identity.user_id,
        &identity.username,
        "user_reprovisioned_by_scim",
        format!(
            "Reprovisioned {}: changed state from {} to active",
            identity.username, identity.state
        ),
    );
    state
        .store
        .set_scim_active(
            identity.user_id,
            true,
            new_state,
            &[event],
            state.clock.now(),
        )
        .await?;
    tracing::info!(
        user_id = identity.user_id,
        "user reprovisioned through SCIM"
    );
    for (group_id, _) in state.store.linked_scim_groups_of(identity.user_id).await? {
        if let Some(group) = group_by_id(state, group_id).await? {
            grant_seats(state, &group).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Groups (an extension: GitLab 18 maps SCIM groups onto SAML group links).

fn group_not_found(id: &str) -> ScimError {
    ScimError::NotFound(format!("Group {id} not found"))
}

pub async fn list_groups(
    state: &AppState,
    filter: Option<&str>,
    page: Page,
) -> ScimResult<(Vec<ScimGroup>, i64)> {
    let filter = scim::parse_filter(filter.unwrap_or(""), Resource::Group)
        .map_err(|detail| ScimError::Invalid(detail.into()))?;
    match filter {
        None => Ok(state
            .store
            .scim_groups_page(None, page.offset(), page.count)
            .await?),
        Some(Filter::DisplayName(name)) => Ok(state
            .store
            .scim_groups_page(Some(&name), page.offset(), page.count)
            .await?),
        Some(Filter::ExternUid(id)) => {
            let found = state.store.scim_group(&id).await?;
            let total = i64::from(found.is_some());
            Ok((
                found
                    .into_iter()
                    .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
                    .collect(),
                total,
            ))
        }
        Some(Filter::UserName(_)) => Err(ScimError::Invalid(scim::UNSUPPORTED_FILTER.into())),
    }
}

pub async fn find_group(state: &AppState, scim_id: &str) -> ScimResult<ScimGroup> {
    state
        .store
        .scim_group(scim_id)
        .await?
        .ok_or_else(|| group_not_found(scim_id))
}

async fn group_by_id(state: &AppState, group_id: i64) -> ScimResult<Option<ScimGroup>> {
    Ok(state.store.scim_group_by_id(group_id).await?)
}

pub async fn group_members(state: &AppState, group: &ScimGroup) -> ScimResult<Vec<ScimMember>> {
    Ok(state.store.scim_group_members(group.id).await?)
}

/// The user ids of SCIM user ids; members nobody provisioned are left out, as GitLab's group
/// sync drops them.
async fn member_ids(state: &AppState, extern_uids: &[String]) -> ScimResult<Vec<i64>> {
    let found: HashMap<String, i64> = state
        .store
        .scim_user_ids(extern_uids)
        .await?
        .into_iter()
        .collect();
    let mut ids: Vec<i64> = extern_uids
        .iter()
        .filter_map(|uid| found.get(&uid.to_lowercase()).copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Whether text is a UUID (8-4-4-4-12 hex digits), GitLab's rule for a group's `externalId`.
fn is_uuid(text: &str) -> bool {
    let lengths = [8, 4, 4, 4, 12];
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == lengths.len()
        && parts.iter().zip(lengths).all(|(part, length)| {
            part.len() == length && part.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// `POST /Groups`: the group's SCIM id is its `externalId` (a UUID, as GitLab requires) or a
/// new UUID.
pub async fn create_group(state: &AppState, body: &Map<String, Value>) -> ScimResult<ScimGroup> {
    let parsed = scim::group_body(body).map_err(ScimError::Invalid)?;
    let scim_id = match &parsed.external_id {
        Some(external) if is_uuid(external) => external.to_lowercase(),
        Some(_) => return Err(ScimError::Invalid("Invalid UUID for scim_group_uid".into())),
        None => {
            use rand_core::RngCore as _;
            let mut bytes = [0u8; 16];
            rand_core::OsRng.fill_bytes(&mut bytes);
            scim::uuid_v4(bytes)
        }
    };
    if state.store.scim_group(&scim_id).await?.is_some() {
        return Err(ScimError::Conflict(format!(
            "Group {scim_id} has already been taken"
        )));
    }
    let members = member_ids(state, parsed.members.as_deref().unwrap_or_default()).await?;
    let event = group_audit(
        &SCIM_ACTOR,
        (0, &parsed.display_name),
        "scim_group_created",
        format!(
            "Created SCIM group {} with {} members",
            parsed.display_name,
            members.len()
        ),
    );
    state
        .store
        .create_scim_group(
            &scim_id,
            &parsed.display_name,
            parsed.external_id.as_deref(),
            &members,
            Write::audited(state.clock.now(), &event),
        )
        .await
        .map_err(|error| match error {
            StoreError::Conflict(message) => ScimError::Conflict(message),
            other => other.into(),
        })?;
    find_group(state, &scim_id).await
}

/// `PATCH /Groups/:id`.
pub async fn patch_group(state: &AppState, scim_id: &str, body: &Value) -> ScimResult<()> {
    let group = find_group(state, scim_id).await?;
    let changes = scim::group_patch(body).map_err(ScimError::Invalid)?;
    let mut rename = None;
    let mut replace: Option<Vec<String>> = None;
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for change in changes {
        match change {
            GroupChange::Rename(name) => rename = Some(name),
            GroupChange::Replace(members) => {
                replace = Some(members);
                add.clear();
                remove.clear();
            }
            GroupChange::Add(members) => add.extend(members),
            GroupChange::Remove(members) => remove.extend(members),
        }
    }
    let replace_ids = match &replace {
        Some(members) => Some(member_ids(state, members).await?),
        None => None,
    };
    let add_ids = member_ids(state, &add).await?;
    let remove_ids = member_ids(state, &remove).await?;
    apply_group_change(
        state,
        &group,
        GroupUpdate {
            display_name: rename.as_deref(),
            external_id: None,
            replace: replace_ids.as_deref(),
            add: &add_ids,
            remove: &remove_ids,
        },
    )
    .await
}

/// `PUT /Groups/:id`: the name and exactly the members listed (none when `members` is absent,
/// as GitLab's default).
pub async fn replace_group(
    state: &AppState,
    scim_id: &str,
    body: &Map<String, Value>,
) -> ScimResult<ScimGroup> {
    let group = find_group(state, scim_id).await?;
    let parsed = scim::group_body(body).map_err(ScimError::Invalid)?;
    let members = member_ids(state, parsed.members.as_deref().unwrap_or_default()).await?;
    apply_group_change(
        state,
        &group,
        GroupUpdate {
            display_name: Some(&parsed.display_name),
            external_id: None,
            replace: Some(&members),
            add: &[],
            remove: &[],
        },
    )
    .await?;
    find_group(state, scim_id).await
}

async fn apply_group_change(
    state: &AppState,
    group: &ScimGroup,
    update: GroupUpdate<'_>,
) -> ScimResult<()> {
    let event = group_audit(
        &SCIM_ACTOR,
        (group.id, &group.display_name),
        "scim_group_updated",
        format!(
            "Updated SCIM group {}{}: {} members named to add, {} to remove{}",
            group.display_name,
            update
                .display_name
                .map(|name| format!(" (now {name})"))
                .unwrap_or_default(),
            update.add.len(),
            update.remove.len(),
            update
                .replace
                .map(|all| format!(", {} to keep", all.len()))
                .unwrap_or_default()
        ),
    );
    let change: MembershipChange = state
        .store
        .update_scim_group(group.id, &update, Write::audited(state.clock.now(), &event))
        .await
        .map_err(|error| match error {
            StoreError::Conflict(message) => ScimError::Conflict(message),
            other => other.into(),
        })?;
    if let Some(purchase_id) = group.add_on_purchase_id {
        release_seats(state, purchase_id, &change.removed, false).await?;
        if !change.added.is_empty() || !change.removed.is_empty() {
            grant_seats(state, group).await?;
        }
    }
    Ok(())
}

/// `DELETE /Groups/:id`: the group goes; the seats it gave are freed.
pub async fn delete_group(state: &AppState, scim_id: &str) -> ScimResult<()> {
    let group = find_group(state, scim_id).await?;
    let event = group_audit(
        &SCIM_ACTOR,
        (group.id, &group.display_name),
        "scim_group_deleted",
        format!("Deleted SCIM group {}", group.display_name),
    );
    let members = state
        .store
        .delete_scim_group(group.id, Write::audited(state.clock.now(), &event))
        .await?;
    if let Some(purchase_id) = group.add_on_purchase_id {
        release_seats(state, purchase_id, &members, false).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Duo seats from groups.

/// What a group's link to a purchase gives right now.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct GroupSeats {
    pub id: String,
    pub display_name: String,
    pub members: i64,
    pub add_on_purchase_id: Option<i64>,
    /// Members who may hold a seat and hold none (the seats ran out).
    pub without_seat: i64,
    /// The first of them (at most 100), by user id.
    pub without_seat_usernames: Vec<String>,
}

/// The most members named in a shortfall report or hook event.
const SHORTFALL_SHOWN: i64 = 100;

pub async fn group_seats(state: &AppState, group: &ScimGroup) -> ScimResult<GroupSeats> {
    let (without, count) = match group.add_on_purchase_id {
        Some(purchase_id) => {
            state
                .store
                .scim_group_shortfall(group.id, purchase_id, SHORTFALL_SHOWN)
                .await?
        }
        None => (Vec::new(), 0),
    };
    Ok(GroupSeats {
        id: group.scim_id.clone(),
        display_name: group.display_name.clone(),
        members: group.members_count,
        add_on_purchase_id: group.add_on_purchase_id,
        without_seat: count,
        without_seat_usernames: without.into_iter().map(|member| member.username).collect(),
    })
}

/// Every linked group with what it gives (the page and the API).
pub async fn all_group_seats(state: &AppState) -> ScimResult<Vec<GroupSeats>> {
    let mut all = Vec::new();
    for group in state.store.all_scim_groups().await? {
        all.push(group_seats(state, &group).await?);
    }
    Ok(all)
}

/// Links a group to a Duo purchase (`None` unlinks it) — administrators only. Linking gives
/// the members seats while seats last; unlinking frees the seats the group gave.
pub async fn link_group(
    state: &AppState,
    admin: &AdminPrincipal,
    scim_id: &str,
    purchase_id: Option<i64>,
) -> Result<GroupSeats, LinkError> {
    let group = find_group(state, scim_id).await.map_err(LinkError::Scim)?;
    if let Some(purchase_id) = purchase_id {
        let purchase = state
            .store
            .find_add_on_purchase(purchase_id)
            .await
            .map_err(|error| LinkError::Scim(error.into()))?
            .ok_or(LinkError::PurchaseNotFound)?;
        if !crate::domain::add_ons::add_on(&purchase.add_on_name).is_some_and(|add_on| add_on.duo) {
            return Err(LinkError::NotDuo);
        }
    }
    let event = group_audit(
        admin.user(),
        (group.id, &group.display_name),
        "scim_group_seat_link_changed",
        match purchase_id {
            Some(id) => format!(
                "SCIM group {} now holds seats of add-on purchase {id}",
                group.display_name
            ),
            None => format!(
                "SCIM group {} no longer holds add-on seats",
                group.display_name
            ),
        },
    );
    state
        .store
        .link_scim_group(
            group.id,
            purchase_id,
            Write::audited(state.clock.now(), &event),
        )
        .await
        .map_err(|error| LinkError::Scim(error.into()))?;
    if let Some(previous) = group
        .add_on_purchase_id
        .filter(|previous| Some(*previous) != purchase_id)
    {
        let members: Vec<i64> = group_members(state, &group)
            .await
            .map_err(LinkError::Scim)?
            .into_iter()
            .map(|member| member.user_id)
            .collect();
        release_seats(state, previous, &members, false)
            .await
            .map_err(LinkError::Scim)?;
    }
    let group = find_group(state, scim_id).await.map_err(LinkError::Scim)?;
    grant_seats(state, &group).await.map_err(LinkError::Scim)?;
    group_seats(state, &group).await.map_err(LinkError::Scim)
}

#[derive(Debug)]
pub enum LinkError {
    PurchaseNotFound,
    NotDuo,
    Scim(ScimError),
}

/// Gives the group's members without a seat one, while seats last, through the bulk seat
/// service (its batches and per-purchase lock: no replica oversells); reports who got none
/// as a `scim_group_seats_short` hook event.
async fn grant_seats(state: &AppState, group: &ScimGroup) -> ScimResult<()> {
    let Some(purchase_id) = group.add_on_purchase_id else {
        return Ok(());
    };
    let bound = i64::try_from(crate::domain::seats::MAX_BULK_ENTRIES).unwrap_or(i64::MAX);
    let (wanting, _) = state
        .store
        .scim_group_shortfall(group.id, purchase_id, bound)
        .await?;
    if wanting.is_empty() {
        return Ok(());
    }
    let usernames: Vec<String> = wanting
        .iter()
        .map(|member| member.username.clone())
        .collect();
    let caller = Caller::instance(Arc::clone(&SCIM_ACTOR));
    let report = match duo_bulk::assign(
        state,
        &caller,
        purchase_id,
        &Recipients::Listed(usernames),
        false,
    )
    .await
    {
        Ok(report) => report,
        Err(duo_bulk::BulkError::Store(error)) => return Err(error.into()),
        // The purchase expired or is not a Duo add-on: nothing to give, nothing to report.
        Err(error) => {
            tracing::info!(%error, group = %group.display_name, "SCIM group seats not given");
            return Ok(());
        }
    };
    let short: Vec<&str> = report
        .users
        .iter()
        .filter(|line| line.outcome == SeatOutcome::NotEnoughSeats)
        .filter_map(|line| line.username.as_deref())
        .collect();
    if !short.is_empty() {
        report_shortfall(state, group, purchase_id, &short).await;
    }
    Ok(())
}

async fn report_shortfall(state: &AppState, group: &ScimGroup, purchase_id: i64, short: &[&str]) {
    let shown = usize::try_from(SHORTFALL_SHOWN).unwrap_or(100);
    let payload = serde_json::json!({
        "event_name": SEATS_SHORT_EVENT,
        "scim_group_id": group.scim_id,
        "scim_group": group.display_name,
        "add_on_purchase_id": purchase_id,
        "members_without_seat": short.len(),
        "usernames": short.iter().take(shown).collect::<Vec<_>>(),
        "created_at": crate::domain::licenses::timestamp_text(state.clock.now()),
    });
    match state
        .store
        .record_hook_event(SEATS_SHORT_EVENT, &payload, None, state.clock.now())
        .await
    {
        Ok(true) => state.hooks_wake.notify_one(),
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "could not record a SCIM seat-shortfall hook event"),
    }
    tracing::info!(group = %group.display_name, without_seat = short.len(), "SCIM group members left without a GitLab Duo seat");
}

/// The system-hook event naming the members of a linked SCIM group who got no seat.
pub const SEATS_SHORT_EVENT: &str = "scim_group_seats_short";

/// Frees the seats of `user_ids` on a purchase — unless (with `even_if_linked` false) another
/// group linked to the purchase still holds them.
async fn release_seats(
    state: &AppState,
    purchase_id: i64,
    user_ids: &[i64],
    even_if_linked: bool,
) -> ScimResult<()> {
    if user_ids.is_empty() {
        return Ok(());
    }
    let kept: std::collections::HashSet<i64> = if even_if_linked {
        Default::default()
    } else {
        state
            .store
            .still_in_linked_group(purchase_id, user_ids)
            .await?
            .into_iter()
            .collect()
    };
    let leaving: Vec<i64> = user_ids
        .iter()
        .copied()
        .filter(|id| !kept.contains(id))
        .collect();
    let caller = Caller::instance(Arc::clone(&SCIM_ACTOR));
    for batch in leaving.chunks(crate::domain::add_ons::MAX_BULK_USERS) {
        match change_bulk(state, &caller, purchase_id, batch, BulkChange::Remove).await {
            Ok(_) | Err(SeatError::Refused(_) | SeatError::NotAvailable) => {}
            Err(SeatError::Store(error)) => return Err(error.into()),
            Err(SeatError::Limit(message)) => return Err(ScimError::Invalid(message.into())),
        }
    }
    Ok(())
}
