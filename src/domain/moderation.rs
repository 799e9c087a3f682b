//! GitLab's user moderation: the actions of `POST /users/:id/<action>`, which states each may
//! leave and enter, and the answers and refusals GitLab gives.

use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;

use super::users::{User, UserState};

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
/// `dormant_days`: the instance's `deactivate_dormant_users_period` — only users inactive this
/// long may be deactivated (GitLab's `User#no_recent_activity?`).
pub fn transition(
    action: Action,
    user: &User,
    actor_id: i64,
    today: NaiveDate,
    dormant_days: i64,
) -> Transition {
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
            let recently_active = user.last_activity_on.is_some_and(|day| {
                TimeDelta::try_days(dormant_days)
                    .and_then(|period| today.checked_sub_signed(period))
                    .is_none_or(|cutoff| day > cutoff)
            });
            if state.is_blocked() {
                forbidden("Error occurred. A blocked user cannot be deactivated")
            } else if state == Deactivated {
                Transition::Unchanged(Answer::Flag(None))
            } else if user.user_type.is_internal() {
                forbidden("Internal users cannot be deactivated")
            } else if recently_active {
                forbidden(&format!(
                    "The user you are trying to deactivate has been active in the past {dormant_days} days and cannot be deactivated"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::users::UserType;

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
                transition(action, &me, me.id, today(), 90),
                Transition::Refused(403, self_refusal(verb)),
            );
        }
        for (action, state, user_type, expected) in cases {
            assert_eq!(
                transition(action, &user(state, user_type), 1, today(), 90),
                expected,
                "{action:?} {state}"
            );
        }
        assert!(
            matches!(
                transition(Block, &user("active", "human"), 5, today(), 90),
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
            matches!(transition(Action::Deactivate, &recent, 1, today(), 90), Transition::Refused(403, message) if message.contains("90 days"))
        );
        // Never seen active (even if created yesterday): inactive, as GitLab counts it.
        let never = user("active", "human");
        assert_eq!(
            transition(Action::Deactivate, &never, 1, today(), 90),
            Transition::To(UserState::Deactivated, Answer::Flag(Some(true)))
        );
        let mut long_ago = user("active", "human");
        long_ago.last_activity_on = Some(today() - TimeDelta::days(91));
        assert_eq!(
            transition(Action::Deactivate, &long_ago, 1, today(), 90),
            Transition::To(UserState::Deactivated, Answer::Flag(Some(true)))
        );
        // The instance's period decides (GitLab reads `deactivate_dormant_users_period`).
        assert!(matches!(
            transition(Action::Deactivate, &long_ago, 1, today(), 180),
            Transition::Refused(403, message) if message.contains("past 180 days")
        ));
    }
}
