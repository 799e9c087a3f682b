//! Groups and their members (what the Ultimate billable rule and group Duo seats read).

use crate::domain::users::{valid_path, ACCESS_LEVELS};
use crate::services::audit;
use crate::state::AppState;
use crate::store::{Group, Member, NewGroup, StoreError, User};

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

pub async fn create(state: &AppState, author: &User, new: NewGroup) -> Result<Group, GroupError> {
    if new.name.trim().is_empty() {
        return Err(failed_to_save("name", "can't be blank"));
    }
    if !valid_path(&new.path) {
        return Err(failed_to_save(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'.",
        ));
    }
    let event = audit::event(
        author,
        "Group",
        0,
        "group_created",
        format!("Created group {}", new.path),
        ("Group", 0, &new.path),
    );
    state
        .store
        .create_group(&new, state.clock.now(), Some(&event))
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => failed_to_save("path", "has already been taken"),
            other => GroupError::Store(other),
        })
}

pub async fn find(state: &AppState, id_or_path: &str) -> Result<Group, GroupError> {
    state
        .store
        .find_group(id_or_path)
        .await?
        .ok_or(GroupError::GroupNotFound)
}

pub async fn delete(state: &AppState, author: &User, id_or_path: &str) -> Result<(), GroupError> {
    let group = find(state, id_or_path).await?;
    let event = audit::event(
        author,
        "Group",
        group.id,
        "group_destroyed",
        format!("Removed group {}", group.path),
        ("Group", group.id, &group.path),
    );
    state
        .store
        .delete_group(group.id, state.clock.now(), Some(&event))
        .await?;
    Ok(())
}

fn check_level(access_level: i64) -> Result<i32, GroupError> {
    i32::try_from(access_level)
        .ok()
        .filter(|level| ACCESS_LEVELS.contains(level))
        .ok_or(GroupError::BadAccessLevel)
}

pub async fn add_member(
    state: &AppState,
    id_or_path: &str,
    user_id: i64,
    access_level: i64,
) -> Result<Member, GroupError> {
    let group = find(state, id_or_path).await?;
    let access_level = check_level(access_level)?;
    state
        .store
        .find_user(user_id)
        .await?
        .ok_or(GroupError::UserNotFound)?;
    state
        .store
        .add_membership(
            user_id,
            "Namespace",
            group.id,
            access_level,
            state.clock.now(),
        )
        .await
        .map_err(|error| match error {
            StoreError::Conflict(message) => GroupError::Conflict(message),
            other => GroupError::Store(other),
        })?;
    state
        .store
        .group_member(group.id, user_id)
        .await?
        .ok_or(GroupError::MemberNotFound)
}

pub async fn update_member(
    state: &AppState,
    id_or_path: &str,
    user_id: i64,
    access_level: i64,
) -> Result<Member, GroupError> {
    let group = find(state, id_or_path).await?;
    let access_level = check_level(access_level)?;
    if !state
        .store
        .set_member_access(group.id, user_id, access_level)
        .await?
    {
        return Err(GroupError::MemberNotFound);
    }
    state
        .store
        .group_member(group.id, user_id)
        .await?
        .ok_or(GroupError::MemberNotFound)
}

pub async fn remove_member(
    state: &AppState,
    id_or_path: &str,
    user_id: i64,
) -> Result<(), GroupError> {
    let group = find(state, id_or_path).await?;
    if state.store.remove_member(group.id, user_id).await? {
        Ok(())
    } else {
        Err(GroupError::MemberNotFound)
    }
}
