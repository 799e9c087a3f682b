//! Users as GitLab models them: types, states and the moderation actions' rules and messages.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

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

/// GitLab's "dormant" period: only users inactive this long may be deactivated.
pub const DEACTIVATION_INACTIVE_DAYS: i64 = 90;

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

/// The state-changing actions of `POST /users/:id/<action>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Block,
    Unblock,
    Deactivate,
    Activate,
    Ban,
    Unban,
    Approve,
}

impl Action {
    pub fn from_path(text: &str) -> Option<Self> {
        Some(match text {
            "block" => Self::Block,
            "unblock" => Self::Unblock,
            "deactivate" => Self::Deactivate,
            "activate" => Self::Activate,
            "ban" => Self::Ban,
            "unban" => Self::Unban,
            "approve" => Self::Approve,
            _ => return None,
        })
    }

    /// The audit event name for the change.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Block => "user_blocked",
            Self::Unblock => "user_unblocked",
            Self::Deactivate => "user_deactivated",
            Self::Activate => "user_activated",
            Self::Ban => "user_banned",
            Self::Unban => "user_unbanned",
            Self::Approve => "user_approved",
        }
    }
}

/// GitLab's 201 body for a moderation action: `true`, `false`, `null` (where GitLab's service
/// answers nothing), or approve's `{"message": "Success"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Answer {
    Flag(Option<bool>),
    Message { message: &'static str },
}

impl Answer {
    pub const SUCCESS: Answer = Answer::Message { message: "Success" };
}

/// What an action does to a user.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Move to this state and answer 201 with this body.
    To(UserState, Answer),
    /// Nothing changes; answer 201 with this body.
    Unchanged(Answer),
    /// Refused: status and GitLab's `message`.
    Refused(u16, String),
}

/// GitLab's refusal to block the API's own caller, in the same words for the other ways an
/// administrator could lock themselves out (`verb`: "banned", "deleted", …).
pub fn self_refusal(verb: &str) -> String {
    format!("403 Forbidden - The API initiating user cannot be {verb} by the API")
}

/// Removing one's own administrator access through the API.
pub const SELF_DEMOTION_REFUSAL: &str =
    "403 Forbidden - The API initiating user cannot remove their own administrator access";

/// A change that would leave the instance without an active administrator (made by another
/// administrator at the same moment, or through a path that is not one's own account).
pub const LAST_ADMIN_REFUSAL: &str =
    "403 Forbidden - The last active administrator cannot be blocked, banned, deactivated, demoted or deleted";

/// GitLab's rules for `action` on `user` by the administrator `actor_id`.
pub fn transition(action: Action, user: &User, actor_id: i64, today: NaiveDate) -> Transition {
    use UserState::{Active, Banned, Blocked, BlockedPendingApproval, Deactivated, LdapBlocked};
    let state = user.state;
    let forbidden = |message: &str| Transition::Refused(403, message.to_string());
    // An administrator acting on their own account could lock everyone out: refused before
    // any other rule, as GitLab refuses blocking oneself.
    if user.id == actor_id {
        match action {
            Action::Ban => return forbidden(&self_refusal("banned")),
            Action::Deactivate => return forbidden(&self_refusal("deactivated")),
            _ => {}
        }
    }
    match action {
        Action::Block => {
            if state == LdapBlocked {
                forbidden("403 Forbidden - LDAP blocked users cannot be modified by the API")
            } else if user.id == actor_id {
                forbidden(&self_refusal("blocked"))
            } else if user.user_type.is_internal() {
                forbidden("An internal user cannot be blocked")
            } else if state == Blocked {
                Transition::Unchanged(Answer::Flag(None))
            } else {
                Transition::To(Blocked, Answer::Flag(Some(true)))
            }
        }
        Action::Unblock => match state {
            LdapBlocked => {
                forbidden("403 Forbidden - LDAP blocked users cannot be unblocked by the API")
            }
            Deactivated => {
                forbidden("403 Forbidden - Deactivated users cannot be unblocked by the API")
            }
            Blocked | Banned | BlockedPendingApproval => {
                Transition::To(Active, Answer::Flag(Some(true)))
            }
            Active => Transition::Unchanged(Answer::Flag(Some(false))),
        },
        Action::Deactivate => {
            // GitLab's `last_active_at` is nil for a user never seen active, which counts as
            // inactive: only recorded activity within the period refuses.
            let recently_active = user
                .last_activity_on
                .is_some_and(|day| day > today - TimeDelta::days(DEACTIVATION_INACTIVE_DAYS));
            if state.is_blocked() {
                forbidden("Error occurred. A blocked user cannot be deactivated")
            } else if state == Deactivated {
                Transition::Unchanged(Answer::Flag(None))
            } else if user.user_type.is_internal() {
                forbidden("Internal users cannot be deactivated")
            } else if recently_active {
                forbidden(&format!(
                    "The user you are trying to deactivate has been active in the past {DEACTIVATION_INACTIVE_DAYS} days and cannot be deactivated"
                ))
            } else {
                Transition::To(Deactivated, Answer::Flag(Some(true)))
            }
        }
        Action::Activate => {
            if state.is_blocked() {
                forbidden("Error occurred. A blocked user must be unblocked to be activated")
            } else if state == Active {
                Transition::Unchanged(Answer::Flag(Some(true)))
            } else {
                Transition::To(Active, Answer::Flag(Some(true)))
            }
        }
        Action::Ban => {
            if state == Active {
                Transition::To(Banned, Answer::Flag(Some(true)))
            } else {
                forbidden(&format!("You cannot ban {state} users."))
            }
        }
        Action::Unban => {
            if state == Banned {
                Transition::To(Active, Answer::Flag(Some(true)))
            } else {
                forbidden(&format!("You cannot unban {state} users."))
            }
        }
        Action::Approve => {
            if state == BlockedPendingApproval {
                Transition::To(Active, Answer::SUCCESS)
            } else {
                Transition::Refused(
                    409,
                    "The user you are trying to approve is not pending approval".into(),
                )
            }
        }
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

    fn user(state: &str, user_type: &str) -> User {
        User {
            id: 5,
            username: "u".into(),
            name: "U".into(),
            email: "u@example.com".into(),
            state: UserState::from_name(state).expect("state"),
            user_type: UserType::from_name(user_type).expect("a user type"),
            admin: false,
            created_at: chrono::DateTime::UNIX_EPOCH,
            last_activity_on: None,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 15).expect("date")
    }

    #[test]
    fn every_state_reads_back_and_an_unknown_one_grants_nothing() {
        for state in UserState::ALL {
            assert_eq!(UserState::from(state.as_str().to_string()), state);
        }
        assert_eq!(UserState::from("suspended".to_string()), UserState::Blocked);
        assert!(UserState::Banned.is_blocked() && !UserState::Deactivated.is_blocked());
    }

    #[test]
    fn gitlab_moderation_rules() {
        use Action::*;
        let cases = [
            (
                Block,
                "active",
                "human",
                Transition::To(UserState::Blocked, Answer::Flag(Some(true))),
            ),
            (
                Block,
                "blocked",
                "human",
                Transition::Unchanged(Answer::Flag(None)),
            ),
            (
                Block,
                "active",
                "ghost",
                Transition::Refused(403, "An internal user cannot be blocked".into()),
            ),
            (
                Unblock,
                "active",
                "human",
                Transition::Unchanged(Answer::Flag(Some(false))),
            ),
            (
                Unblock,
                "deactivated",
                "human",
                Transition::Refused(
                    403,
                    "403 Forbidden - Deactivated users cannot be unblocked by the API".into(),
                ),
            ),
            (
                Deactivate,
                "blocked",
                "human",
                Transition::Refused(
                    403,
                    "Error occurred. A blocked user cannot be deactivated".into(),
                ),
            ),
            (
                Deactivate,
                "active",
                "human",
                Transition::To(UserState::Deactivated, Answer::Flag(Some(true))),
            ),
            (
                Activate,
                "deactivated",
                "human",
                Transition::To(UserState::Active, Answer::Flag(Some(true))),
            ),
            (
                Activate,
                "blocked",
                "human",
                Transition::Refused(
                    403,
                    "Error occurred. A blocked user must be unblocked to be activated".into(),
                ),
            ),
            (
                Ban,
                "blocked",
                "human",
                Transition::Refused(403, "You cannot ban blocked users.".into()),
            ),
            (
                Unban,
                "active",
                "human",
                Transition::Refused(403, "You cannot unban active users.".into()),
            ),
            (
                Approve,
                "active",
                "human",
                Transition::Refused(
                    409,
                    "The user you are trying to approve is not pending approval".into(),
                ),
            ),
            (
                Approve,
                "blocked_pending_approval",
                "human",
                Transition::To(UserState::Active, Answer::SUCCESS),
            ),
        ];
        // On one's own account: refused before any other rule.
        let me = user("active", "human");
        for (action, verb) in [
            (Block, "blocked"),
            (Ban, "banned"),
            (Deactivate, "deactivated"),
        ] {
            assert_eq!(
                transition(action, &me, me.id, today()),
                Transition::Refused(403, self_refusal(verb)),
            );
        }
        for (action, state, user_type, expected) in cases {
            assert_eq!(
                transition(action, &user(state, user_type), 1, today()),
                expected,
                "{action:?} {state}"
            );
        }
        assert!(
            matches!(
                transition(Block, &user("active", "human"), 5, today()),
                Transition::Refused(403, _)
            ),
            "not yourself"
        );
    }

    #[test]
    fn recently_active_users_cannot_be_deactivated() {
        let mut recent = user("active", "human");
        recent.last_activity_on = Some(today() - TimeDelta::days(10));
        assert!(
            matches!(transition(Action::Deactivate, &recent, 1, today()), Transition::Refused(403, message) if message.contains("90 days"))
        );
        // Never seen active (even if created yesterday): inactive, as GitLab counts it.
        let never = user("active", "human");
        assert_eq!(
            transition(Action::Deactivate, &never, 1, today()),
            Transition::To(UserState::Deactivated, Answer::Flag(Some(true)))
        );
        let mut long_ago = user("active", "human");
        long_ago.last_activity_on = Some(today() - TimeDelta::days(91));
        assert_eq!(
            transition(Action::Deactivate, &long_ago, 1, today()),
            Transition::To(UserState::Deactivated, Answer::Flag(Some(true)))
        );
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
