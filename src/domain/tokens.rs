//! Personal access token scopes, as GitLab names them: the ones a token may be created with
//! here, and a token's granted set, parsed once from its stored list.

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

#[cfg(test)]
mod tests {
    use super::{Scope, Scopes};

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
