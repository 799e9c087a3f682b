//! Users as GitLab models them: types, states and the moderation actions' rules and messages.

use chrono::{DateTime, NaiveDate, Utc};

/// A user of the directory (the store reads it as a row).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub state: UserState,
    #[sqlx(try_from = "String")]
    pub user_type: UserType,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    pub last_activity_on: Option<NaiveDate>,
}

/// The prefix of GitLab personal access tokens.
pub const TOKEN_PREFIX: &str = "glpat-";

/// GitLab's user types (`users.user_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserType {
    Human,
    SupportBot,
    AlertBot,
    VisualReviewBot,
    ServiceUser,
    Ghost,
    ProjectBot,
    MigrationBot,
    SecurityBot,
    AutomationBot,
    SecurityPolicyBot,
    AdminBot,
    SuggestedReviewersBot,
    ServiceAccount,
    LlmBot,
    Placeholder,
    DuoCodeReviewBot,
    ImportUser,
}

impl UserType {
    pub const ALL: [Self; 18] = [
        Self::Human,
        Self::SupportBot,
        Self::AlertBot,
        Self::VisualReviewBot,
        Self::ServiceUser,
        Self::Ghost,
        Self::ProjectBot,
        Self::MigrationBot,
        Self::SecurityBot,
        Self::AutomationBot,
        Self::SecurityPolicyBot,
        Self::AdminBot,
        Self::SuggestedReviewersBot,
        Self::ServiceAccount,
        Self::LlmBot,
        Self::Placeholder,
        Self::DuoCodeReviewBot,
        Self::ImportUser,
    ];

    /// GitLab's name (the stored value).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::SupportBot => "support_bot",
            Self::AlertBot => "alert_bot",
            Self::VisualReviewBot => "visual_review_bot",
            Self::ServiceUser => "service_user",
            Self::Ghost => "ghost",
            Self::ProjectBot => "project_bot",
            Self::MigrationBot => "migration_bot",
            Self::SecurityBot => "security_bot",
            Self::AutomationBot => "automation_bot",
            Self::SecurityPolicyBot => "security_policy_bot",
            Self::AdminBot => "admin_bot",
            Self::SuggestedReviewersBot => "suggested_reviewers_bot",
            Self::ServiceAccount => "service_account",
            Self::LlmBot => "llm_bot",
            Self::Placeholder => "placeholder",
            Self::DuoCodeReviewBot => "duo_code_review_bot",
            Self::ImportUser => "import_user",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|user_type| user_type.as_str() == name)
    }

    /// GitLab's `bot?`: the entity's `bot` field.
    pub fn is_bot(self) -> bool {
        matches!(
            self,
            Self::AlertBot
                | Self::ProjectBot
                | Self::SupportBot
                | Self::VisualReviewBot
                | Self::MigrationBot
                | Self::SecurityBot
                | Self::AutomationBot
                | Self::SecurityPolicyBot
                | Self::AdminBot
                | Self::SuggestedReviewersBot
                | Self::ServiceAccount
                | Self::LlmBot
                | Self::DuoCodeReviewBot
        )
    }

    /// GitLab's `internal?`: neither a human nor an account someone acts through.
    pub fn is_internal(self) -> bool {
        !matches!(
            self,
            Self::Human | Self::ProjectBot | Self::ServiceUser | Self::ServiceAccount
        )
    }
}

/// The stored value; a name this build does not know reads as `ghost`, an internal type that
/// holds no seat and cannot be moderated.
impl From<String> for UserType {
    fn from(stored: String) -> Self {
        Self::from_name(&stored).unwrap_or(Self::Ghost)
    }
}

impl std::fmt::Display for UserType {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A user's state, as GitLab's state machine names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Active,
    Blocked,
    LdapBlocked,
    BlockedPendingApproval,
    Deactivated,
    Banned,
}

impl UserState {
    pub const ALL: [Self; 6] = [
        Self::Active,
        Self::Blocked,
        Self::LdapBlocked,
        Self::BlockedPendingApproval,
        Self::Deactivated,
        Self::Banned,
    ];

    /// GitLab's name (the stored value).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Blocked => "blocked",
            Self::LdapBlocked => "ldap_blocked",
            Self::BlockedPendingApproval => "blocked_pending_approval",
            Self::Deactivated => "deactivated",
            Self::Banned => "banned",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// GitLab's `blocked?`.
    pub fn is_blocked(self) -> bool {
        matches!(
            self,
            Self::Blocked | Self::LdapBlocked | Self::BlockedPendingApproval | Self::Banned
        )
    }
}

/// The stored value; a name this build does not know reads as blocked, the state that grants
/// nothing.
impl From<String> for UserState {
    fn from(stored: String) -> Self {
        Self::from_name(&stored).unwrap_or(Self::Blocked)
    }
}

impl std::fmt::Display for UserState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl serde::Serialize for UserState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A namespace path (username or group path) as GitLab allows it.
pub fn valid_path(path: &str) -> bool {
    let valid_chars = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let edges_ok = path
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && !path.ends_with('.')
        && !path.ends_with(".git")
        && !path.ends_with(".atom");
    !path.is_empty() && path.len() <= 255 && valid_chars && edges_ok
}

/// Checks a new or changed username and email the way GitLab's model does; the error is the
/// field and its message.
pub fn validate_identity(
    username: Option<&str>,
    email: Option<&str>,
    name: Option<&str>,
) -> Result<(), (&'static str, &'static str)> {
    if let Some(username) = username {
        if !valid_path(username) {
            return Err((
                "username",
                "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'.",
            ));
        }
    }
    if let Some(email) = email {
        let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }) && !email.contains(char::is_whitespace);
        if !well_formed {
            return Err(("email", "is invalid"));
        }
    }
    if let Some(name) = name {
        if name.trim().is_empty() {
            return Err(("name", "can't be blank"));
        }
        if name.chars().count() > 255 {
            return Err(("name", "is too long (maximum is 255 characters)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_and_an_unknown_one_grants_nothing() {
        for state in UserState::ALL {
            assert_eq!(UserState::from(state.as_str().to_string()), state);
        }
        assert_eq!(UserState::from("suspended".to_string()), UserState::Blocked);
        assert!(UserState::Banned.is_blocked() && !UserState::Deactivated.is_blocked());
    }

    #[test]
    fn identity_checks() {
        assert!(validate_identity(Some("ada.admin"), Some("ada@example.org"), Some("Ada")).is_ok());
        assert_eq!(
            validate_identity(Some("-ada"), None, None).map_err(|e| e.0),
            Err("username")
        );
        assert_eq!(
            validate_identity(Some("ada.git"), None, None).map_err(|e| e.0),
            Err("username")
        );
        assert_eq!(
            validate_identity(None, Some("not-an-email"), None),
            Err(("email", "is invalid"))
        );
        assert_eq!(
            validate_identity(None, None, Some("  ")),
            Err(("name", "can't be blank"))
        );
    }
}
