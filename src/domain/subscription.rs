//! What the subscription page says about licenses: each license's standing, and when to warn.

use chrono::NaiveDate;

use crate::license_key::License;

/// GitLab's Admin → Subscription page warns this many days before a license expires.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Where a license stands today, as the licenses table labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseStanding {
    /// The license the instance runs on.
    Current,
    /// Not started yet.
    Future,
    /// Past its expiry date.
    Expired,
    /// Started and unexpired, but superseded by a newer license.
    Inactive,
}

impl LicenseStanding {
    pub fn of(license: &License, is_current: bool, today: NaiveDate) -> Self {
        if is_current {
            Self::Current
        } else if !license.started(today) {
            Self::Future
        } else if license.expired(today) == Some(true) {
            Self::Expired
        } else {
            Self::Inactive
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Current => "Current",
            Self::Future => "Future",
            Self::Expired => "Expired",
            Self::Inactive => "Inactive",
        }
    }
}

/// Days from `today` until the license expires (negative once it has); `None` for a license
/// that never expires.
pub fn days_left(license: &License, today: NaiveDate) -> Option<i64> {
    license
        .expires_at
        .map(|expires_at| (expires_at - today).num_days())
}

/// The expiry banner: shown from [`EXPIRY_WARNING_DAYS`] before the end, and once expired.
pub fn expiry_warning(days_left: Option<i64>) -> Option<ExpiryWarning> {
    match days_left {
        Some(days) if days <= 0 => Some(ExpiryWarning::Expired),
        Some(days) if days <= EXPIRY_WARNING_DAYS => Some(ExpiryWarning::ExpiresSoon(days)),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryWarning {
    ExpiresSoon(i64),
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_banner_starts_thirty_days_before_the_end() {
        assert_eq!(expiry_warning(None), None);
        assert_eq!(expiry_warning(Some(31)), None);
        assert_eq!(
            expiry_warning(Some(30)),
            Some(ExpiryWarning::ExpiresSoon(30))
        );
        assert_eq!(expiry_warning(Some(1)), Some(ExpiryWarning::ExpiresSoon(1)));
        // GitLab counts a license as expired on its expiry date.
        assert_eq!(expiry_warning(Some(0)), Some(ExpiryWarning::Expired));
        assert_eq!(expiry_warning(Some(-5)), Some(ExpiryWarning::Expired));
    }
}
