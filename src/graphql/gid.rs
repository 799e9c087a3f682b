//! GitLab's global IDs (`gid://gitlab/User/1`) and the typed ID scalars that accept them,
//! coerced as GitLab does: a URI with scheme `gid`, app `gitlab`, and a model that is the
//! expected class or a subclass of it. The id part is not checked to be numeric.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// A parsed global ID: the model class and the raw id text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalId {
    pub model: String,
    pub id: String,
}

impl GlobalId {
    /// The id as Ruby's `String#to_i` reads it: leading digits (`"12abc"` is 12, `"abc"` 0).
    /// Such an id simply matches nothing, which is GitLab's outcome too.
    pub fn lenient_number(&self) -> i64 {
        let text = self.id.trim_start();
        let (sign, digits) = match text.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, text.strip_prefix('+').unwrap_or(text)),
        };
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end]
            .parse::<i64>()
            .map_or(0, |number| sign * number)
    }
}

/// Ruby's `String#inspect`, near enough for the error messages: quoted, with escapes.
fn inspect(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

/// Parses `value` as a GitLab global ID of `expected` (the Ruby class) or one of
/// `accepted` (its subclasses), with GitLab's three messages.
pub fn coerce(value: &str, expected: &str, accepted: &[&str]) -> Result<GlobalId, String> {
    let invalid = || format!("{} is not a valid Global ID", inspect(value));
    let rest = value.strip_prefix("gid://").ok_or_else(invalid)?;
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (app, path) = rest.split_once('/').ok_or_else(invalid)?;
    let (model, id) = path.split_once('/').ok_or_else(invalid)?;
    let valid_app = !app.is_empty()
        && app
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !valid_app || model.is_empty() || id.is_empty() {
        return Err(invalid());
    }
    if app != "gitlab" {
        return Err(format!("{} is not a Gitlab Global ID", inspect(value)));
    }
    if model != expected && !accepted.contains(&model) {
        return Err(format!(
            "{} does not represent an instance of {expected}",
            inspect(value)
        ));
    }
    Ok(GlobalId {
        model: model.to_string(),
        id: id.to_string(),
    })
}

/// Declares a typed global-ID scalar: its GraphQL name, the Ruby class it stands for, and
/// the subclasses it also accepts.
macro_rules! global_id_scalar {
    ($rust:ident, $graphql:literal, $class:literal, [$($subclass:literal),*], $description:literal) => {
        #[doc = $description]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $rust(pub GlobalId);

        impl $rust {
            pub fn number(&self) -> i64 {
                self.0.lenient_number()
            }

            /// The id of a `$class` record as GitLab prints it.
            pub fn of(id: i64) -> Self {
                Self(GlobalId { model: $class.to_string(), id: id.to_string() })
            }
        }

        #[Scalar(name = $graphql)]
        impl ScalarType for $rust {
            fn parse(value: Value) -> InputValueResult<Self> {
                match value {
                    Value::String(text) => coerce(&text, $class, &[$($subclass),*])
                        .map(Self)
                        .map_err(InputValueError::custom),
                    other => Err(InputValueError::expected_type(other)),
                }
            }

            fn is_valid(value: &Value) -> bool {
                matches!(value, Value::String(_))
            }

            fn to_value(&self) -> Value {
                Value::String(format!("gid://gitlab/{}/{}", self.0.model, self.0.id))
            }
        }
    };
}

global_id_scalar!(
    UserId,
    "UserID",
    "User",
    [],
    "A `UserID` is a global ID. It is encoded as a string, e.g. `\"gid://gitlab/User/1\"`."
);
global_id_scalar!(
    AddOnPurchaseId,
    "GitlabSubscriptionsAddOnPurchaseID",
    "GitlabSubscriptions::AddOnPurchase",
    [],
    "A `GitlabSubscriptionsAddOnPurchaseID` is a global ID, e.g. `\"gid://gitlab/GitlabSubscriptions::AddOnPurchase/1\"`."
);
global_id_scalar!(
    NamespaceId,
    "NamespaceID",
    "Namespace",
    [
        "Group",
        "Namespaces::UserNamespace",
        "Namespaces::ProjectNamespace"
    ],
    "A `NamespaceID` is a global ID, e.g. `\"gid://gitlab/Namespace/1\"`; group IDs are accepted."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_ids_of_the_expected_class_or_a_subclass() {
        let user = coerce("gid://gitlab/User/42", "User", &[]).expect("user");
        assert_eq!(user.lenient_number(), 42);
        let group = coerce("gid://gitlab/Group/9970", "Namespace", &["Group"]).expect("group");
        assert_eq!(
            (group.model.as_str(), group.lenient_number()),
            ("Group", 9970)
        );
    }

    #[test]
    fn the_three_coercion_messages() {
        assert_eq!(
            coerce("42", "User", &[]),
            Err("\"42\" is not a valid Global ID".into())
        );
        assert_eq!(
            coerce("gid://gitlab/User", "User", &[]),
            Err("\"gid://gitlab/User\" is not a valid Global ID".into())
        );
        assert_eq!(
            coerce("gid://other/User/1", "User", &[]),
            Err("\"gid://other/User/1\" is not a Gitlab Global ID".into())
        );
        assert_eq!(
            coerce("gid://gitlab/Project/1", "User", &[]),
            Err("\"gid://gitlab/Project/1\" does not represent an instance of User".into())
        );
    }

    #[test]
    fn ids_are_read_leniently() {
        let id = |text: &str| GlobalId {
            model: "User".into(),
            id: text.into(),
        };
        assert_eq!(id("abc").lenient_number(), 0);
        assert_eq!(id("12abc").lenient_number(), 12);
        assert_eq!(id("99999999999999999999999").lenient_number(), 0);
        assert_eq!(UserId::of(7).number(), 7);
    }
}
