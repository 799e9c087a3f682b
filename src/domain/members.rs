//! Group membership: GitLab's access levels.

/// A member's role in a group, by GitLab's number for it. Only the seven levels GitLab
/// defines can be given ([`AccessLevel::from_number`]); a stored number is kept as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct AccessLevel(i32);

impl AccessLevel {
    pub const MINIMAL_ACCESS: Self = Self(5);
    /// From Guest up, members may hold a group's add-on seat; on Ultimate only roles above it
    /// (Planner and up) occupy a license seat.
    pub const GUEST: Self = Self(10);
    pub const PLANNER: Self = Self(15);
    pub const REPORTER: Self = Self(20);
    pub const DEVELOPER: Self = Self(30);
    pub const MAINTAINER: Self = Self(40);
    pub const OWNER: Self = Self(50);

    /// Every level a member can be given, lowest first.
    pub const ALL: [Self; 7] = [
        Self::MINIMAL_ACCESS,
        Self::GUEST,
        Self::PLANNER,
        Self::REPORTER,
        Self::DEVELOPER,
        Self::MAINTAINER,
        Self::OWNER,
    ];

    /// The level with GitLab's number `number`, if it is one.
    pub fn from_number(number: i64) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|level| i64::from(level.0) == number)
    }

    /// GitLab's number (what the API shows and the database stores).
    pub const fn number(self) -> i32 {
        self.0
    }

    /// GitLab's name, as system hooks report it (`group_access`).
    pub fn name(self) -> &'static str {
        match self.0 {
            5 => "Minimal Access",
            10 => "Guest",
            15 => "Planner",
            20 => "Reporter",
            30 => "Developer",
            40 => "Maintainer",
            50 => "Owner",
            _ => "Unknown",
        }
    }
}

/// The orders `GET /groups/:id/billable_members` accepts (GitLab's `sort`). GitLab accepts
/// the access-level and joined orders too but does not apply them (its `Sortable` falls back
/// to the id order), and this server does the same so a script sees the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BillableMemberSort {
    #[default]
    IdAsc,
    NameAsc,
    NameDesc,
    LastActivityOnAsc,
    LastActivityOnDesc,
    /// `recent_sign_in`, `oldest_sign_in`, `access_level_*`, `*_joined`: sign-ins are not
    /// tracked here, and GitLab ignores the others; all answer in id order.
    Unordered,
}

impl BillableMemberSort {
    /// GitLab's accepted values, in its documented order.
    pub const NAMES: [&'static str; 10] = [
        "access_level_asc",
        "access_level_desc",
        "last_joined",
        "name_asc",
        "name_desc",
        "oldest_joined",
        "oldest_sign_in",
        "recent_sign_in",
        "last_activity_on_asc",
        "last_activity_on_desc",
    ];

    /// The order named `name` (`id_asc` is the default GitLab documents), if accepted.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "id_asc" => Self::IdAsc,
            "name_asc" => Self::NameAsc,
            "name_desc" => Self::NameDesc,
            "last_activity_on_asc" => Self::LastActivityOnAsc,
            "last_activity_on_desc" => Self::LastActivityOnDesc,
            other if Self::NAMES.contains(&other) => Self::Unordered,
            _ => return None,
        })
    }
}

/// The lowest access level that occupies a seat in a group: Guest and up, or on Ultimate only
/// roles above Guest (GitLab's `billed_group_users(exclude_guests:)`). Minimal Access never
/// does.
pub fn lowest_billable_level(ultimate: bool) -> AccessLevel {
    if ultimate {
        AccessLevel::PLANNER
    } else {
        AccessLevel::GUEST
    }
}

/// A stored number, as it is.
impl From<i32> for AccessLevel {
    fn from(stored: i32) -> Self {
        Self(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::AccessLevel;

    #[test]
    fn only_gitlab_levels_can_be_given() {
        assert_eq!(AccessLevel::from_number(30), Some(AccessLevel::DEVELOPER));
        assert_eq!(AccessLevel::from_number(35), None);
        assert_eq!(AccessLevel::from_number(i64::from(i32::MAX) + 1), None);
        assert_eq!(AccessLevel::OWNER.name(), "Owner");
        assert!(AccessLevel::PLANNER > AccessLevel::GUEST);
    }

    #[test]
    fn billable_member_sorts_are_gitlabs() {
        use super::BillableMemberSort as Sort;
        assert_eq!(Sort::from_name("id_asc"), Some(Sort::IdAsc));
        assert_eq!(Sort::from_name("name_desc"), Some(Sort::NameDesc));
        assert_eq!(Sort::from_name("access_level_desc"), Some(Sort::Unordered));
        assert_eq!(Sort::from_name("id_desc"), None);
        assert_eq!(super::lowest_billable_level(true), AccessLevel::PLANNER);
        assert_eq!(super::lowest_billable_level(false), AccessLevel::GUEST);
    }
}
