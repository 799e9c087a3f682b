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
}
