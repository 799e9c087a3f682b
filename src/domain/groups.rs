//! Groups as GitLab models them: their visibility levels.

/// A group's visibility (`namespaces.visibility_level`, by GitLab's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Private,
    Internal,
    Public,
}

impl Visibility {
    pub const ALL: [Self; 3] = [Self::Private, Self::Internal, Self::Public];

    /// GitLab's name (the stored value).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Internal => "internal",
            Self::Public => "public",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|visibility| visibility.as_str() == name)
    }
}

/// The stored value; a name this build does not know reads as private, which shows least.
impl From<String> for Visibility {
    fn from(stored: String) -> Self {
        Self::from_name(&stored).unwrap_or(Self::Private)
    }
}

impl serde::Serialize for Visibility {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_reads_as_private() {
        for visibility in Visibility::ALL {
            assert_eq!(Visibility::from_name(visibility.as_str()), Some(visibility));
        }
        assert_eq!(Visibility::from("secret".to_string()), Visibility::Private);
    }
}
