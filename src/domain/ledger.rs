//! The seat ledger's rules: at each recount, who started and who stopped being billable since
//! the previous one, and why — in the words the seat-holder list uses. Pure: the store brings
//! each candidate's facts now and whether they counted at the previous recount.

use crate::domain::members::AccessLevel;
use crate::domain::users::{UserState, UserType};

/// Which way a ledger entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The set of billable users at the first recount after the upgrade (not a day on which
    /// everyone started).
    Baseline,
    Started,
    Stopped,
}

impl Direction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Started => "started",
            Self::Stopped => "stopped",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Baseline, Self::Started, Self::Stopped]
            .into_iter()
            .find(|direction| direction.as_str() == name)
    }
}

/// A user as the recount sees them now (`None` facts: the user was deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub state: UserState,
    pub user_type: UserType,
    /// The highest role anywhere; `None` without a membership.
    pub highest_access_level: Option<i32>,
}

/// The plan of the license a recount counted for, and the previous recount's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plans<'a> {
    pub now: &'a str,
    pub before: Option<&'a str>,
}

impl Plans<'_> {
    fn ultimate(&self) -> bool {
        self.now == "ultimate"
    }
}

/// GitLab's `User.billable`: an active human or service user, and on Ultimate only with a role
/// above Guest somewhere (the rule `store::BILLABLE` states in SQL).
pub fn is_billable(facts: &Facts, ultimate: bool) -> bool {
    facts.state == UserState::Active
        && matches!(facts.user_type, UserType::Human | UserType::ServiceUser)
        && (!ultimate
            || facts
                .highest_access_level
                .is_some_and(|level| level > AccessLevel::GUEST.number()))
}

fn kind(user_type: UserType) -> &'static str {
    match user_type {
        UserType::ServiceUser => "service user",
        _ => "human user",
    }
}

/// Why a billable user counts, as the seat-holder list says it.
pub fn started_because(facts: &Facts, ultimate: bool) -> String {
    let kind = kind(facts.user_type);
    match (ultimate, facts.highest_access_level.map(AccessLevel::from)) {
        (true, Some(level)) => format!(
            "Active {kind} with the {} role (above Guest, as Ultimate counts)",
            level.name()
        ),
        (_, Some(level)) => format!("Active {kind} with the {} role", level.name()),
        (_, None) => format!("Active {kind} (every active {kind} occupies a seat)"),
    }
}

/// Why a user who counted stopped counting.
pub fn stopped_because(facts: Option<&Facts>, plans: Plans<'_>) -> String {
    let Some(facts) = facts else {
        return "User deleted".into();
    };
    if facts.state != UserState::Active {
        return format!("State changed to {}", facts.state);
    }
    if !matches!(facts.user_type, UserType::Human | UserType::ServiceUser) {
        return format!("User type changed to {}", facts.user_type);
    }
    let role = facts.highest_access_level.map_or_else(
        || "no role".to_string(),
        |level| format!("the {} role", AccessLevel::from(level).name()),
    );
    match plans.before {
        Some(before) if before != plans.now && plans.ultimate() => format!(
            "License plan changed from {} to {}: Ultimate counts only roles above Guest, and the user has {role}",
            plan_name(before),
            plan_name(plans.now)
        ),
        _ => format!("No role above Guest any more (Ultimate counts only those; the user has {role})"),
    }
}

/// A plan as GitLab names it on the subscription page.
fn plan_name(plan: &str) -> String {
    let mut letters = plan.chars();
    letters
        .next()
        .map(|first| first.to_uppercase().chain(letters).collect())
        .unwrap_or_default()
}

/// One entry a recount writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub user_id: i64,
    pub username: String,
    pub direction: Direction,
    pub reason: String,
}

/// A candidate: the user's id, their username (now, or as last recorded), their facts now
/// (`None`: deleted) and whether they counted at the previous recount.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub user_id: i64,
    pub username: String,
    pub facts: Option<Facts>,
    pub counted_before: bool,
}

/// What a recount records for these candidates: who started and who stopped counting
/// (`baseline`: every billable user, the ledger's first entry).
pub fn changes(candidates: &[Candidate], plans: Plans<'_>, baseline: bool) -> Vec<Change> {
    let ultimate = plans.ultimate();
    candidates
        .iter()
        .filter_map(|candidate| {
            let billable = candidate
                .facts
                .as_ref()
                .is_some_and(|facts| is_billable(facts, ultimate));
            let (direction, reason) =
                match (billable, candidate.counted_before, candidate.facts.as_ref()) {
                    (true, false, Some(facts)) => (
                        if baseline {
                            Direction::Baseline
                        } else {
                            Direction::Started
                        },
                        started_because(facts, ultimate),
                    ),
                    (false, true, facts) => (Direction::Stopped, stopped_because(facts, plans)),
                    _ => return None,
                };
            Some(Change {
                user_id: candidate.user_id,
                username: candidate.username.clone(),
                direction,
                reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: UserState, user_type: UserType, level: Option<i32>) -> Facts {
        Facts {
            state,
            user_type,
            highest_access_level: level,
        }
    }

    fn candidate(id: i64, facts: Option<Facts>, counted_before: bool) -> Candidate {
        Candidate {
            user_id: id,
            username: format!("u{id}"),
            facts,
            counted_before,
        }
    }

    #[test]
    fn starts_and_stops_with_their_reasons() {
        let premium = Plans {
            now: "premium",
            before: Some("premium"),
        };
        let active = facts(UserState::Active, UserType::Human, Some(30));
        let candidates = [
            candidate(1, Some(active.clone()), false),
            candidate(2, Some(active.clone()), true),
            candidate(
                3,
                Some(facts(UserState::LdapBlocked, UserType::Human, Some(30))),
                true,
            ),
            candidate(4, None, true),
            candidate(
                5,
                Some(facts(UserState::Active, UserType::ProjectBot, None)),
                true,
            ),
            candidate(
                6,
                Some(facts(UserState::Blocked, UserType::Human, None)),
                false,
            ),
        ];
        let changes = changes(&candidates, premium, false);
        let summary: Vec<(i64, &str, &str)> = changes
            .iter()
            .map(|change| {
                (
                    change.user_id,
                    change.direction.as_str(),
                    change.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, "started", "Active human user with the Developer role"),
                (3, "stopped", "State changed to ldap_blocked"),
                (4, "stopped", "User deleted"),
                (5, "stopped", "User type changed to project_bot"),
            ]
        );
    }

    #[test]
    fn a_plan_change_to_ultimate_stops_guests() {
        let plans = Plans {
            now: "ultimate",
            before: Some("premium"),
        };
        let guest = candidate(
            7,
            Some(facts(UserState::Active, UserType::Human, Some(10))),
            true,
        );
        let developer = candidate(
            8,
            Some(facts(UserState::Active, UserType::Human, Some(30))),
            true,
        );
        let changes = changes(&[guest, developer], plans, false);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].reason,
            "License plan changed from Premium to Ultimate: Ultimate counts only roles above Guest, and the user has the Guest role"
        );
        let baseline = super::changes(
            &[candidate(
                9,
                Some(facts(UserState::Active, UserType::ServiceUser, None)),
                false,
            )],
            Plans {
                now: "premium",
                before: None,
            },
            true,
        );
        assert_eq!(baseline[0].direction, Direction::Baseline);
        assert_eq!(
            baseline[0].reason,
            "Active service user (every active service user occupies a seat)"
        );
    }
}
