//! Groups and their members (what the Ultimate billable rule and group Duo seats read).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::domain::members::{lowest_billable_level, AccessLevel, BillableMemberSort};
use crate::domain::users::valid_path;
use crate::policy::AdminPrincipal;
use crate::services::{audit, licenses};
use crate::state::AppState;
use crate::store::{
    BillableMember, Group, HookEvent, Listed, Member, NewAudit, NewGroup, SaveMode, StoreError,
    User, Write,
};

#[derive(Debug)]
pub enum GroupError {
    GroupNotFound,
    UserNotFound,
    MemberNotFound,
    /// 400 `{"message": "Failed to save group {…}"}` (GitLab prints the Ruby errors hash).
    Invalid(String),
    /// 400 `{"message": {"access_level": ["is not included in the list"]}}`.
    BadAccessLevel,
    Conflict(String),
    /// The user exists but is not one of the group's billable members.
    NotBillable,
    /// `DELETE …/billable_members/:user_id` for someone who is not a member.
    NoMemberForUser,
    /// The member is the group's last owner and cannot be removed.
    LastOwner,
    /// Block seat overages: the membership would make someone billable beyond the license.
    NoSeats,
    Store(StoreError),
}

impl From<StoreError> for GroupError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

fn failed_to_save(field: &str, message: &str) -> GroupError {
    GroupError::Invalid(format!(
        "Failed to save group {{:{field}=>[\"{message}\"]}}"
    ))
}

pub async fn create(
    state: &AppState,
    admin: &AdminPrincipal,
    new: NewGroup,
) -> Result<Group, GroupError> {
    let author = admin.user();
    if new.name.trim().is_empty() {
        return Err(failed_to_save("name", "can't be blank"));
    }
    if !valid_path(&new.path) {
        return Err(failed_to_save(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'.",
        ));
    }
    let now = state.clock.now();
    let mut event = audit::event(
        author,
        "Group",
        0,
        "group_created",
        format!("Created group {}", new.path),
        ("Group", 0, &new.path),
    );
    event.hook = Some(group_hook("group_create", &new.name, &new.path, now));
    let created = state
        .store
        .create_group(&new, Write::audited(now, &event))
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => failed_to_save("path", "has already been taken"),
            other => GroupError::Store(other),
        });
    state.hooks_wake.notify_one();
    created
}

/// A group system-hook event at `at`: GitLab's payloads open with `created_at` and
/// `updated_at` (both the change's time), then the event's own `fields`.
fn group_event(event_name: &'static str, at: DateTime<Utc>, fields: Value) -> HookEvent {
    let time = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut payload = serde_json::Map::new();
    payload.insert("created_at".into(), json!(time));
    payload.insert("updated_at".into(), json!(time));
    if let Value::Object(fields) = fields {
        payload.extend(fields);
    }
    HookEvent {
        event_name,
        payload: Value::Object(payload),
        id_field: None,
    }
}

/// GitLab's `group_create` / `group_destroy` system-hook payload (`group_id` is filled in
/// when the change is recorded).
fn group_hook(event_name: &'static str, name: &str, path: &str, at: DateTime<Utc>) -> HookEvent {
    let fields = json!({
        "event_name": event_name,
        "name": name,
        "path": path,
        "full_path": path,
        "group_id": Value::Null,
    });
    HookEvent {
        id_field: Some("group_id"),
        ..group_event(event_name, at, fields)
    }
}

/// GitLab's membership hook payloads (`user_add_to_group`, `user_update_for_group`,
/// `user_remove_from_group`), recorded in the membership change's transaction.
fn member_hook(
    event_name: &'static str,
    group: &Group,
    user: &User,
    access_level: AccessLevel,
    at: DateTime<Utc>,
) -> HookEvent {
    let fields = json!({
        "group_name": group.name,
        "group_path": group.path,
        "group_id": group.id,
        "user_username": user.username,
        "user_name": user.name,
        "user_email": user.email,
        "user_id": user.id,
        "group_access": access_level.name(),
        "group_plan": Value::Null,
        "expires_at": Value::Null,
        "event_name": event_name,
    });
    group_event(event_name, at, fields)
}

pub async fn find(state: &AppState, id_or_path: &str) -> Result<Group, GroupError> {
    state
        .store
        .find_group(id_or_path)
        .await?
        .ok_or(GroupError::GroupNotFound)
}

/// The group's member `user_id`, or `MemberNotFound`.
async fn find_member(state: &AppState, group: &Group, user_id: i64) -> Result<Member, GroupError> {
    let member = state.store.group_member(group.id, user_id).await?;
    member.ok_or(GroupError::MemberNotFound)
}

pub async fn delete(
    state: &AppState,
    admin: &AdminPrincipal,
    id_or_path: &str,
) -> Result<(), GroupError> {
    let author = admin.user();
    let group = find(state, id_or_path).await?;
    let now = state.clock.now();
    let mut event = audit::event(
        author,
        "Group",
        group.id,
        "group_destroyed",
        format!("Removed group {}", group.path),
        ("Group", group.id, &group.path),
    );
    event.hook = Some(group_hook("group_destroy", &group.name, &group.path, now));
    state
        .store
        .delete_group(group.id, Write::audited(now, &event))
        .await?;
    state.hooks_wake.notify_one();
    Ok(())
}

/// The audit event of a membership change, on the group (as GitLab records member events).
fn member_audit(
    author: &User,
    group: &Group,
    member: &User,
    event_name: &'static str,
    verb: &str,
) -> NewAudit {
    audit::event(
        author,
        "Group",
        group.id,
        event_name,
        format!("{verb} {} in group {}", member.username, group.path),
        ("User", member.id, &member.username),
    )
}

fn check_level(access_level: i64) -> Result<AccessLevel, GroupError> {
    AccessLevel::from_number(access_level).ok_or(GroupError::BadAccessLevel)
}

/// One kind of membership change: its audit event and its system hook, GitLab's names, and
/// GitLab's answer when the user it names does not exist.
struct MemberChange {
    audit: &'static str,
    verb: &'static str,
    hook: &'static str,
    missing_user: fn() -> GroupError,
}

const MEMBER_ADDED: MemberChange = MemberChange {
    audit: "member_created",
    verb: "Added",
    hook: "user_add_to_group",
    missing_user: || GroupError::UserNotFound,
};
const MEMBER_UPDATED: MemberChange = MemberChange {
    audit: "member_updated",
    verb: "Changed the role of",
    hook: "user_update_for_group",
    missing_user: || GroupError::MemberNotFound,
};
const MEMBER_REMOVED: MemberChange = MemberChange {
    audit: "member_destroyed",
    verb: "Removed",
    hook: "user_remove_from_group",
    missing_user: || GroupError::MemberNotFound,
};

/// The audit event of `change`, carrying its system-hook event.
fn member_event(
    author: &User,
    group: &Group,
    user: &User,
    access_level: AccessLevel,
    change: &MemberChange,
    now: DateTime<Utc>,
) -> NewAudit {
    let mut event = member_audit(author, group, user, change.audit, change.verb);
    event.hook = Some(member_hook(change.hook, group, user, access_level, now));
    event
}

/// An add or update, checked and ready to write.
struct MemberWrite {
    group: Group,
    access_level: AccessLevel,
    event: NewAudit,
    now: DateTime<Utc>,
}

/// Checks what an add or update names (group, level, user) and makes its event.
async fn member_write(
    state: &AppState,
    admin: &AdminPrincipal,
    id_or_path: &str,
    (user_id, access_level): (i64, i64),
    change: &MemberChange,
) -> Result<MemberWrite, GroupError> {
    let group = find(state, id_or_path).await?;
    let access_level = check_level(access_level)?;
    let user = state
        .store
        .find_user(user_id)
        .await?
        .ok_or_else(change.missing_user)?;
    let now = state.clock.now();
    let event = member_event(admin.user(), &group, &user, access_level, change, now);
    Ok(MemberWrite {
        group,
        access_level,
        event,
        now,
    })
}

/// The membership as it is after a change (whose hook event was recorded with it).
async fn changed_member(
    state: &AppState,
    group: &Group,
    user_id: i64,
) -> Result<Member, GroupError> {
    state.hooks_wake.notify_one();
    find_member(state, group, user_id).await
}

/// Adds a member (`SaveMode::Create`; GitLab's 409 when they already are one) or changes a
/// member's access level (`SaveMode::Update`; 404 when they are not one).
pub async fn save_member(
    state: &AppState,
    admin: &AdminPrincipal,
    id_or_path: &str,
    (user_id, access_level): (i64, i64),
    mode: SaveMode,
) -> Result<Member, GroupError> {
    let change = match mode {
        SaveMode::Create => &MEMBER_ADDED,
        SaveMode::Update => &MEMBER_UPDATED,
    };
    let write = member_write(state, admin, id_or_path, (user_id, access_level), change).await?;
    let (group_id, level) = (write.group.id, write.access_level.number());
    if !seat_available_for(state, user_id, level).await? {
        let mut refused = write.event.clone();
        refused.event_name = MEMBER_REFUSED_EVENT;
        refused.details["event_name"] = json!(MEMBER_REFUSED_EVENT);
        refused.details["custom_message"] = json!(format!(
            "{NO_SEATS_MESSAGE} ({})",
            refused.details["custom_message"]
                .as_str()
                .unwrap_or_default()
        ));
        if let Some(hook) = refused.hook.as_mut() {
            hook.event_name = MEMBER_REFUSED_EVENT;
            hook.payload["event_name"] = json!(MEMBER_REFUSED_EVENT);
        }
        state.store.record_audit(&refused, write.now).await?;
        state.hooks_wake.notify_one();
        return Err(GroupError::NoSeats);
    }
    let event = Write::audited(write.now, &write.event);
    match mode {
        SaveMode::Create => state
            .store
            .add_membership(user_id, "Namespace", group_id, level, event)
            .await
            .map_err(|error| match error {
                StoreError::Conflict(message) => GroupError::Conflict(message),
                other => GroupError::Store(other),
            })?,
        SaveMode::Update => {
            if !state
                .store
                .set_member_access(group_id, user_id, level, event)
                .await?
            {
                return Err(GroupError::MemberNotFound);
            }
        }
    }
    changed_member(state, &write.group, user_id).await
}

/// The audit and system-hook event of a membership refused for want of a seat.
pub const MEMBER_REFUSED_EVENT: &str = "member_change_refused";
/// GitLab's `AddMember` refusal (an administrator owns every group, so its second sentence,
/// for non-owners, is never added).
pub const NO_SEATS_MESSAGE: &str =
    "There are not enough available seats to invite this many users.";

/// GitLab's `BlockSeatOverages.seats_available_for?` for one user at `access_level`: always,
/// unless overages are blocked (Premium or Ultimate); a level that takes no seat (Minimal
/// Access; Guest on Ultimate) or a user already billable needs none; otherwise the license's
/// seats must exceed today's billable users.
async fn seat_available_for(
    state: &AppState,
    user_id: i64,
    access_level: i32,
) -> Result<bool, StoreError> {
    let settings = crate::services::settings::current(state).await?;
    if settings.seat_control != crate::domain::settings::SeatControl::BlockOverages {
        return Ok(true);
    }
    let Some((_, license)) = licenses::current(state, state.clock.today()).await? else {
        return Ok(true);
    };
    if !settings.blocks_overages(crate::domain::settings::seat_controls_licensed(
        license.plan(),
    )) {
        return Ok(true);
    }
    let ultimate = license.plan() == "ultimate";
    let takes_no_seat = access_level == AccessLevel::MINIMAL_ACCESS.number()
        || (ultimate && access_level <= AccessLevel::GUEST.number());
    if takes_no_seat
        || !state
            .store
            .billable_among(&[user_id], ultimate)
            .await?
            .is_empty()
    {
        return Ok(true);
    }
    let seats = license
        .restrictions
        .active_user_count
        .and_then(|seats| i64::try_from(seats).ok())
        .unwrap_or(0);
    Ok(!state.store.billable_at_least(seats, ultimate).await?)
}

/// The moment and the audit event (with its `user_remove_from_group` hook) of removing
/// `member` from `group`.
fn removal(
    state: &AppState,
    admin: &AdminPrincipal,
    group: &Group,
    member: &Member,
) -> (DateTime<Utc>, NewAudit) {
    let now = state.clock.now();
    let event = member_event(
        admin.user(),
        group,
        &member.user,
        member.access_level,
        &MEMBER_REMOVED,
        now,
    );
    (now, event)
}

pub async fn remove_member(
    state: &AppState,
    admin: &AdminPrincipal,
    id_or_path: &str,
    user_id: i64,
) -> Result<(), GroupError> {
    let group = find(state, id_or_path).await?;
    let member = find_member(state, &group, user_id).await?;
    let (now, event) = removal(state, admin, &group, &member);
    if !state
        .store
        .remove_member(group.id, user_id, Write::audited(now, &event))
        .await?
    {
        return Err(GroupError::MemberNotFound);
    }
    state.hooks_wake.notify_one();
    Ok(())
}

/// The lowest level that occupies a seat in a group under the current license.
async fn billable_level(state: &AppState) -> Result<i32, GroupError> {
    let ultimate = licenses::current_is_ultimate(state).await?;
    Ok(lowest_billable_level(ultimate).number())
}

/// `GET /groups/:id/billable_members`: the group and one page of its billable members.
pub async fn billable_members(
    state: &AppState,
    id_or_path: &str,
    (search, sort): (Option<&str>, BillableMemberSort),
    (offset, limit): (i64, i64),
) -> Result<Listed<BillableMember>, GroupError> {
    let group = find(state, id_or_path).await?;
    let level = billable_level(state).await?;
    Ok(state
        .store
        .billable_members(group.id, level, (search, sort), offset, limit)
        .await?)
}

/// `GET /groups/:id/billable_members/:user_id/memberships`: the user's memberships in the
/// group (groups have no subgroups or projects here, so at most one) — GitLab's 404s for an
/// unknown user and for one who is not billable in the group.
pub async fn billable_memberships(
    state: &AppState,
    id_or_path: &str,
    user_id: i64,
) -> Result<(Group, BillableMember), GroupError> {
    let group = find(state, id_or_path).await?;
    if state.store.find_user(user_id).await?.is_none() {
        return Err(GroupError::MemberNotFound);
    }
    let level = billable_level(state).await?;
    let member = state
        .store
        .billable_member(group.id, level, user_id)
        .await?
        .ok_or(GroupError::NotBillable)?;
    Ok((group, member))
}

/// `DELETE /groups/:id/billable_members/:user_id`: removes the user from the group (and so
/// from everything in it), audited and announced like any member removal; refused for the
/// group's last owner. Done at once, where GitLab now schedules it.
pub async fn remove_billable_member(
    state: &AppState,
    admin: &AdminPrincipal,
    id_or_path: &str,
    user_id: i64,
) -> Result<(), GroupError> {
    let group = find(state, id_or_path).await?;
    let member = state
        .store
        .group_member(group.id, user_id)
        .await?
        .ok_or(GroupError::NoMemberForUser)?;
    let (now, event) = removal(state, admin, &group, &member);
    match state
        .store
        .remove_member_unless_last_owner(group.id, user_id, Write::audited(now, &event))
        .await?
    {
        Some(true) => {
            state.hooks_wake.notify_one();
            Ok(())
        }
        Some(false) => Err(GroupError::LastOwner),
        None => Err(GroupError::NoMemberForUser),
    }
}
