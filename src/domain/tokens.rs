//! Personal access token scopes, as GitLab names them: the ones a token may be created with
//! here, and a token's granted set, parsed once from its stored list.

use chrono::{Days, NaiveDate};

/// A scope this server lets a token have. Only `api`, `read_api`, `read_user` and
/// `admin_mode` grant anything here; the others are accepted because GitLab tokens carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Api,
    ReadApi,
    ReadUser,
    AdminMode,
    Sudo,
    CreateRunner,
    ManageRunner,
    AiFeatures,
    K8sProxy,
    ReadRepository,
    WriteRepository,
    ReadRegistry,
    WriteRegistry,
    SelfRotate,
}

impl Scope {
    /// Every scope, in the order error messages list them.
    pub const ALL: [Self; 14] = [
        Self::Api,
        Self::ReadApi,
        Self::ReadUser,
        Self::AdminMode,
        Self::Sudo,
        Self::CreateRunner,
        Self::ManageRunner,
        Self::AiFeatures,
        Self::K8sProxy,
        Self::ReadRepository,
        Self::WriteRepository,
        Self::ReadRegistry,
        Self::WriteRegistry,
        Self::SelfRotate,
    ];

    /// GitLab's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::ReadApi => "read_api",
            Self::ReadUser => "read_user",
            Self::AdminMode => "admin_mode",
            Self::Sudo => "sudo",
            Self::CreateRunner => "create_runner",
            Self::ManageRunner => "manage_runner",
            Self::AiFeatures => "ai_features",
            Self::K8sProxy => "k8s_proxy",
            Self::ReadRepository => "read_repository",
            Self::WriteRepository => "write_repository",
            Self::ReadRegistry => "read_registry",
            Self::WriteRegistry => "write_registry",
            Self::SelfRotate => "self_rotate",
        }
    }

    /// The scope GitLab calls `name`, if a token may have it here.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    /// Every scope's name, comma-separated (for messages).
    pub fn all_names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A token's scopes: the stored space-separated list, read once into a set for the checks
/// and kept as written for display (a name this build does not know grants nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes {
    granted: u16,
    names: Vec<String>,
}

impl Scopes {
    pub fn contains(&self, scope: Scope) -> bool {
        self.granted & scope.bit() != 0
    }

    /// The names as stored, in their order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl From<String> for Scopes {
    fn from(stored: String) -> Self {
        let names: Vec<String> = stored.split_whitespace().map(str::to_string).collect();
        let granted = names
            .iter()
            .filter_map(|name| Scope::from_name(name))
            .fold(0, |bits, scope| bits | scope.bit());
        Self { granted, names }
    }
}

/// What the instance's settings say about new personal access tokens (GitLab's
/// `PersonalAccessToken` model with its create and rotate services).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    /// Put before a new token's random part (`personal_access_token_prefix`; may be empty).
    pub prefix: String,
    /// `require_personal_access_token_expiry`: a token without an expiry date gets one, and
    /// no date may lie beyond the longest lifetime.
    pub expiry_required: bool,
    /// The longest lifetime in days: 365, or `max_personal_access_token_lifetime` on Ultimate.
    pub max_lifetime_days: i64,
}

/// How long a rotated token lives when no date is given and expiry is required
/// (`RotateService::EXPIRATION_PERIOD`).
pub const ROTATED_LIFETIME_DAYS: u64 = 7;

impl TokenRules {
    /// The last expiry date a new token may have.
    pub fn max_expiry(&self, today: NaiveDate) -> Option<NaiveDate> {
        u64::try_from(self.max_lifetime_days)
            .ok()
            .and_then(|days| today.checked_add_days(Days::new(days)))
    }

    /// A created token's expiry: the date given, else the longest lifetime when expiry is
    /// required, else none (`CreateService#pat_expiration`), then GitLab's check.
    pub fn expiry_for_new(
        &self,
        given: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Option<NaiveDate>, String> {
        let date = given.or_else(|| {
            self.expiry_required
                .then(|| self.max_expiry(today))
                .flatten()
        });
        self.checked(date, today)
    }

    /// A rotated token's expiry: the date given, else a week from today when expiry is
    /// required, else none (`RotateService#expires_at`), then GitLab's check.
    pub fn expiry_for_rotation(
        &self,
        given: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Option<NaiveDate>, String> {
        let date = given.or_else(|| {
            self.expiry_required
                .then(|| today.checked_add_days(Days::new(ROTATED_LIFETIME_DAYS)))
                .flatten()
        });
        self.checked(date, today)
    }

    /// `expires_at_before_instance_max_expiry_date`: only while expiry is required.
    fn checked(
        &self,
        date: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Option<NaiveDate>, String> {
        match (date, self.max_expiry(today)) {
            (Some(date), Some(max)) if self.expiry_required && date > max => Err(format!(
                "Expires at must be before {}",
                max.format("%Y-%m-%d")
            )),
            _ => Ok(date),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{NaiveDate, Scope, Scopes, TokenRules};

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn expiry_follows_the_settings_as_gitlab_does() {
        let today = day("2026-06-15");
        let required = TokenRules {
            prefix: "glpat-".into(),
            expiry_required: true,
            max_lifetime_days: 365,
        };
        assert_eq!(
            required.expiry_for_new(None, today),
            Ok(Some(day("2027-06-15")))
        );
        assert_eq!(
            required.expiry_for_new(Some(day("2027-06-16")), today),
            Err("Expires at must be before 2027-06-15".into())
        );
        assert_eq!(
            required.expiry_for_rotation(None, today),
            Ok(Some(day("2026-06-22")))
        );
        let optional = TokenRules {
            expiry_required: false,
            ..required
        };
        assert_eq!(optional.expiry_for_new(None, today), Ok(None));
        assert_eq!(optional.expiry_for_rotation(None, today), Ok(None));
        assert_eq!(
            optional.expiry_for_new(Some(day("2030-01-01")), today),
            Ok(Some(day("2030-01-01")))
        );
    }

    #[test]
    fn every_scope_reads_back_from_its_name() {
        for scope in Scope::ALL {
            assert_eq!(Scope::from_name(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::from_name("API"), None);
    }

    #[test]
    fn a_stored_list_grants_exactly_its_known_scopes() {
        let scopes = Scopes::from("read_api  admin_mode unknown".to_string());
        assert!(scopes.contains(Scope::ReadApi));
        assert!(scopes.contains(Scope::AdminMode));
        assert!(!scopes.contains(Scope::Api));
        assert_eq!(scopes.names(), ["read_api", "admin_mode", "unknown"]);
        assert!(!Scopes::default().contains(Scope::Api));
    }
}
