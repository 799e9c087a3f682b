//! Audit events: who did what to which entity, recorded with the change itself.

use serde_json::{json, Value};

use crate::store::{NewAudit, User};

/// The entity type GitLab gives instance-wide events (licenses are instance-wide).
pub const INSTANCE_SCOPE: &str = "Gitlab::Audit::InstanceScope";
/// The entity types `GET /audit_events` can filter on.
pub const ENTITY_TYPES: &[&str] = &["User", "Group", "Project", INSTANCE_SCOPE];

/// GitLab's audit `details` for an administrator's action on a target.
pub fn event(
    author: &User,
    entity_type: &'static str,
    entity_id: i64,
    event_name: &'static str,
    message: String,
    target: (&str, i64, &str),
) -> NewAudit {
    let (target_type, target_id, target_details) = target;
    NewAudit {
        author_id: author.id,
        entity_type,
        entity_id,
        event_name,
        details: json!({
            "custom_message": message,
            "event_name": event_name,
            "author_name": author.name,
            "author_class": author_class(author),
            "target_id": target_id,
            "target_type": target_type,
            "target_details": target_details,
        }),
        hook: None,
    }
}

/// The id audit events give the instance SCIM token as their author (no user has it).
pub const SCIM_TOKEN_AUTHOR_ID: i64 = -1;

/// GitLab's `author_class`: a user, or the SCIM token for changes an identity provider made.
fn author_class(author: &User) -> &'static str {
    if author.id == SCIM_TOKEN_AUTHOR_ID {
        "ScimOauthAccessToken"
    } else {
        "User"
    }
}

/// The `details` text stored for an event, parsed back for display.
pub fn details(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}
