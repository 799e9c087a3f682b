//! GitLab's instance SCIM API rules (`ee/lib/gitlab/scim/*`, `ee/app/finders/scim_finder.rb`):
//! filters, paging, what a POST must carry, what a PATCH changes, how a username from the
//! identity provider is made valid — and this server's SCIM groups (an extension). Pure: the
//! JSON a client sent in, typed decisions out.

use serde_json::{Map, Value};

/// Where GitLab serves the instance SCIM API (identity providers' base URL, after the
/// instance's external URL).
pub const API_PATH: &str = "/api/scim/v2/application";

/// GitLab's prefix of the instance SCIM token (`ScimOauthAccessToken::TOKEN_PREFIX`).
pub const TOKEN_PREFIX: &str = "glsoat-";

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Kaminari's `default_per_page` and `max_per_page`, which GitLab's SCIM paging uses.
pub const DEFAULT_COUNT: i64 = 20;
pub const MAX_COUNT: i64 = 100;
/// The most members one group request may name (a PUT's list, or all of a PATCH's
/// operations together): an identity provider's largest groups, pushed in one request.
pub const MAX_GROUP_MEMBERS_PER_REQUEST: usize = 10_000;
/// The longest `extern_uid`, `userName` or group name accepted (GitLab's string columns).
pub const MAX_VALUE_CHARS: usize = 255;

/// GitLab's detail for a filter it does not support (412).
pub const UNSUPPORTED_FILTER: &str = "Unsupported Filter";

/// A supported `filter` (`<attribute> eq "<value>"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `id` or `externalId` (both are the identity's `extern_uid`).
    ExternUid(String),
    /// `userName`: the `extern_uid`, then the username, then (for an e-mail) the user with that
    /// address or the username of its local part — GitLab's `ScimFinder#by_username`.
    UserName(String),
    /// Groups: `displayName`.
    DisplayName(String),
}

/// Which resource a filter is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

/// Parses `filter` as GitLab's `FilterParser` does — attribute, operator, value separated by
/// spaces, quotes stripped, only `eq` — except that a quoted value may hold spaces (GitLab's
/// `split(' ')` cuts it at the first, which only ever failed to find anything). `Err` is
/// GitLab's 412 "Unsupported Filter"; an empty filter is no filter.
pub fn parse_filter(text: &str, resource: Resource) -> Result<Option<Filter>, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let mut parts = text.splitn(3, ' ');
    let (Some(attribute), Some(operator), Some(value)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(UNSUPPORTED_FILTER);
    };
    if !operator.eq_ignore_ascii_case("eq") {
        return Err(UNSUPPORTED_FILTER);
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
        .to_string();
    if value.is_empty() || value.chars().count() > MAX_VALUE_CHARS {
        return Err(UNSUPPORTED_FILTER);
    }
    let attribute = attribute.to_ascii_lowercase();
    match (resource, attribute.as_str()) {
        (Resource::User, "id" | "externalid") => Ok(Some(Filter::ExternUid(value))),
        (Resource::User, "username") => Ok(Some(Filter::UserName(value))),
        (Resource::Group, "displayname") => Ok(Some(Filter::DisplayName(value))),
        (Resource::Group, "id") => Ok(Some(Filter::ExternUid(value))),
        (Resource::Group, "externalid") => Ok(Some(Filter::ExternUid(value))),
        _ => Err(UNSUPPORTED_FILTER),
    }
}

/// One page of a SCIM list: `startIndex` is 1-based (below 1 reads as 1), `count` defaults
/// to 20 and is at most 100 (0 or less reads as 20), as GitLab's `ScimPagination` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub start_index: i64,
    pub count: i64,
}

impl Page {
    /// From the raw parameters; `Err` names the one that is not an integer.
    pub fn from_params(
        start_index: Option<&str>,
        count: Option<&str>,
    ) -> Result<Self, &'static str> {
        let integer =
            |text: Option<&str>, name: &'static str| -> Result<Option<i64>, &'static str> {
                match text.map(str::trim) {
                    None | Some("") => Ok(None),
                    // A huge number is still a number: it is clamped below, not refused.
                    Some(text) => match text.parse::<i64>() {
                        Ok(value) => Ok(Some(value)),
                        Err(_)
                            if text
                                .trim_start_matches('-')
                                .bytes()
                                .all(|b| b.is_ascii_digit()) =>
                        {
                            Ok(Some(if text.starts_with('-') {
                                i64::MIN
                            } else {
                                i64::MAX
                            }))
                        }
                        Err(_) => Err(name),
                    },
                }
            };
        let start_index = integer(start_index, "startIndex")?.unwrap_or(1).max(1);
        let count = match integer(count, "count")? {
            None => DEFAULT_COUNT,
            Some(value) if value <= 0 => DEFAULT_COUNT,
            Some(value) => value.min(MAX_COUNT),
        };
        Ok(Self { start_index, count })
    }

    pub fn offset(self) -> i64 {
        self.start_index - 1
    }
}

/// GitLab's `ValueParser`: booleans, and the strings `"true"` / `"false"` in any case (Entra
/// sends `"False"`).
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// What a POST /Users provisions, after GitLab's attribute mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    pub extern_uid: String,
    pub username: String,
    pub email: String,
    pub name: String,
}

/// The text of a string value, trimmed; `None` when absent, empty or not a string.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
        // Identity providers send numbers for ids now and then.
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A POST /Users body as GitLab's `ParamsParser#post_params` reads it: `externalId` (or
/// `id`), `userName`, the first work or primary e-mail, and `name.formatted` (else given and
/// family names, else `displayName`, else the username). `Err` lists what is missing in
/// GitLab's words (`Missing params: [:email]`) or says what is too long.
pub fn provision_params(body: &Map<String, Value>) -> Result<Provision, String> {
    let extern_uid = text(body.get("externalId")).or_else(|| text(body.get("id")));
    let username = text(body.get("userName"));
    let email = body
        .get("emails")
        .and_then(Value::as_array)
        .and_then(|emails| {
            emails.iter().find(|entry| {
                entry.get("type").and_then(Value::as_str) == Some("work")
                    || entry.get("primary").and_then(boolean) == Some(true)
            })
        })
        .and_then(|entry| text(entry.get("value")));
    let mut missing = Vec::new();
    for (name, value) in [
        ("extern_uid", &extern_uid),
        ("email", &email),
        ("username", &username),
    ] {
        if value.is_none() {
            missing.push(format!(":{name}"));
        }
    }
    let (Some(extern_uid), Some(username), Some(email)) = (extern_uid, username, email) else {
        return Err(format!("Missing params: [{}]", missing.join(", ")));
    };
    let name_object = body.get("name");
    let formatted = text(name_object.and_then(|name| name.get("formatted")))
        .or_else(|| text(body.get("name.formatted")));
    let joined = [
        text(name_object.and_then(|name| name.get("givenName"))),
        text(name_object.and_then(|name| name.get("familyName"))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let name = formatted
        .or_else(|| (!joined.is_empty()).then_some(joined))
        .or_else(|| text(body.get("displayName")))
        .unwrap_or_else(|| username.clone());
    for (field, value) in [
        ("externalId", &extern_uid),
        ("userName", &username),
        ("email", &email),
        ("name", &name),
    ] {
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(format!(
                "{field} is too long (maximum is {MAX_VALUE_CHARS} characters)"
            ));
        }
    }
    Ok(Provision {
        extern_uid,
        username,
        email,
        name,
    })
}

/// What a PATCH /Users/:id changes: GitLab acts on `active` and on `id`/`externalId` only
/// ("With 15.0, we no longer allow modifying user attributes"); the rest is accepted and
/// ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub active: Option<bool>,
    pub extern_uid: Option<String>,
}

/// The `Operations` of a PATCH body, or why the body is not a PATCH at all.
fn operations(body: &Value) -> Result<&Vec<Value>, String> {
    let operations = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .ok_or_else(|| "Operations is missing".to_string())?;
    let operations = operations
        .as_array()
        .ok_or_else(|| "Operations must be an array".to_string())?;
    if operations.iter().any(|operation| !operation.is_object()) {
        return Err("each of the Operations must be an object".into());
    }
    Ok(operations)
}

/// The (attribute, value) pairs one operation sets: with `path`, the path and the value
/// (Entra); without, only the first key of `value` (Okta), as GitLab's parser reads them.
fn operation_pairs(operation: &Value) -> Vec<(String, Value)> {
    let value = operation.get("value").cloned().unwrap_or(Value::Null);
    match operation.get("path").and_then(Value::as_str) {
        Some(path) => vec![(path.to_string(), value)],
        None => match value {
            Value::Object(map) => map.into_iter().take(1).collect(),
            _ => Vec::new(),
        },
    }
}

/// Reads a PATCH /Users/:id body as GitLab's `ParamsParser#update_params` does: only `replace`
/// and `add` operations (any case) count; later operations win.
pub fn user_patch(body: &Value) -> Result<UserPatch, String> {
    let mut patch = UserPatch::default();
    for operation in operations(body)? {
        let op = operation.get("op").and_then(Value::as_str).unwrap_or("");
        if !(op.eq_ignore_ascii_case("replace") || op.eq_ignore_ascii_case("add")) {
            continue;
        }
        for (attribute, value) in operation_pairs(operation) {
            match attribute.to_ascii_lowercase().as_str() {
                "active" => {
                    if let Some(flag) = boolean(&value) {
                        patch.active = Some(flag);
                    }
                }
                "id" | "externalid" => {
                    if let Some(uid) = text(Some(&value)) {
                        if uid.chars().count() > MAX_VALUE_CHARS {
                            return Err(format!(
                                "externalId is too long (maximum is {MAX_VALUE_CHARS} characters)"
                            ));
                        }
                        patch.extern_uid = Some(uid);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(patch)
}

/// GitLab's `ExternalUsernameSanitizer` (`lib/gitlab/auth/external_username_sanitizer.rb`
/// over `Gitlab::Slug::Path`): an e-mail's domain dropped, characters a path may not hold
/// deleted, `.git`/`.atom`/`.` endings and leading `-` stripped, then no `_ . -` at either end
/// and runs of them cut to their first. Case is kept. The caller makes it unique with 1, 2, …
/// as GitLab's `Uniquify` does. Nothing usable gives `blank`, as `Slug::Path` does.
pub fn sanitize_username(raw: &str) -> String {
    let local = raw.split('@').next().unwrap_or(raw);
    let mut slug: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    loop {
        let before = slug.len();
        for ending in [".git", ".atom", "."] {
            if let Some(stripped) = slug.strip_suffix(ending) {
                slug = stripped.to_string();
            }
        }
        if slug.len() == before {
            break;
        }
    }
    let is_special = |c: char| matches!(c, '_' | '-' | '.');
    let trimmed = slug.trim_start_matches('-');
    let trimmed = if trimmed.is_empty() { "blank" } else { trimmed };
    let trimmed = trimmed
        .trim_start_matches(is_special)
        .trim_end_matches(is_special);
    let mut collapsed = String::with_capacity(trimmed.len());
    let mut previous_special = false;
    for c in trimmed.chars() {
        let special = is_special(c);
        if !(special && previous_special) {
            collapsed.push(c);
        }
        previous_special = special;
    }
    collapsed.truncate(200);
    if collapsed.is_empty() {
        "blank".to_string()
    } else {
        collapsed
    }
}

/// The candidates for a unique username: the name, then `name1`, `name2`, … as GitLab's
/// `Uniquify` tries them.
pub fn username_candidates(base: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(base.to_string()).chain((1..).map(move |n| format!("{base}{n}")))
}

/// A random (version 4) UUID in its text form, from 16 random bytes: a SCIM group's `id`.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A group as a POST or PUT describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBody {
    pub display_name: String,
    pub external_id: Option<String>,
    /// The members' SCIM user ids (`extern_uid`s), when the body lists them.
    pub members: Option<Vec<String>>,
}

/// The `value`s of a `members` list (`[{"value": "<user id>"}, …]`).
fn member_values(value: &Value) -> Result<Vec<String>, String> {
    let entries = match value {
        Value::Array(entries) => entries.as_slice(),
        Value::Null => &[],
        _ => return Err("members must be an array".into()),
    };
    if entries.len() > MAX_GROUP_MEMBERS_PER_REQUEST {
        return Err(too_many_members());
    }
    entries
        .iter()
        .map(|entry| {
            text(entry.get("value"))
                .filter(|value| value.chars().count() <= MAX_VALUE_CHARS)
                .ok_or_else(|| "each member needs a value: the user's SCIM id".to_string())
        })
        .collect()
}

fn too_many_members() -> String {
    format!(
        "A request may name at most {MAX_GROUP_MEMBERS_PER_REQUEST} members: send larger groups in several PATCH requests"
    )
}

/// A POST /Groups or PUT /Groups/:id body.
pub fn group_body(body: &Map<String, Value>) -> Result<GroupBody, String> {
    let display_name = text(body.get("displayName"))
        .ok_or_else(|| "Missing params: [:displayName]".to_string())?;
    if display_name.chars().count() > MAX_VALUE_CHARS {
        return Err(format!(
            "displayName is too long (maximum is {MAX_VALUE_CHARS} characters)"
        ));
    }
    let external_id = text(body.get("externalId"));
    if external_id
        .as_ref()
        .is_some_and(|id| id.chars().count() > MAX_VALUE_CHARS)
    {
        return Err(format!(
            "externalId is too long (maximum is {MAX_VALUE_CHARS} characters)"
        ));
    }
    let members = match body.get("members") {
        None => None,
        Some(value) => Some(member_values(value)?),
    };
    Ok(GroupBody {
        display_name,
        external_id,
        members,
    })
}

/// What a PATCH /Groups/:id does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    Rename(String),
    Add(Vec<String>),
    Remove(Vec<String>),
    /// `replace` of `members`: exactly these.
    Replace(Vec<String>),
}

/// Reads a PATCH /Groups/:id body: `add` and `remove` of `members` (GitLab 18's group sync;
/// `remove` also as Okta writes it, `members[value eq "id"]`), and `replace` of
/// `displayName` or `members`. Other attributes are ignored, as for users.
pub fn group_patch(body: &Value) -> Result<Vec<GroupChange>, String> {
    let mut changes = Vec::new();
    let mut named = 0usize;
    for operation in operations(body)? {
        let op = operation
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let path = operation.get("path").and_then(Value::as_str).map(str::trim);
        let value = operation.get("value").cloned().unwrap_or(Value::Null);
        let change = match (op.as_str(), path) {
            ("add", Some(path)) if path.eq_ignore_ascii_case("members") => {
                Some(GroupChange::Add(member_values(&value)?))
            }
            ("remove", Some(path)) if path.eq_ignore_ascii_case("members") => {
                Some(GroupChange::Remove(member_values(&value)?))
            }
            ("remove", Some(path)) => member_filter(path).map(|uid| GroupChange::Remove(vec![uid])),
            ("replace", Some(path)) if path.eq_ignore_ascii_case("members") => {
                Some(GroupChange::Replace(member_values(&value)?))
            }
            ("replace", Some(path)) if path.eq_ignore_ascii_case("displayName") => {
                text(Some(&value)).map(GroupChange::Rename)
            }
            ("add" | "replace", None) => {
                let Value::Object(map) = &value else {
                    continue;
                };
                for (key, inner) in map {
                    if key.eq_ignore_ascii_case("displayName") {
                        if let Some(name) = text(Some(inner)) {
                            changes.push(GroupChange::Rename(name));
                        }
                    } else if key.eq_ignore_ascii_case("members") {
                        let members = member_values(inner)?;
                        named += members.len();
                        changes.push(if op == "add" {
                            GroupChange::Add(members)
                        } else {
                            GroupChange::Replace(members)
                        });
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(change) = change {
            if let GroupChange::Add(members)
            | GroupChange::Remove(members)
            | GroupChange::Replace(members) = &change
            {
                named += members.len();
            }
            changes.push(change);
        }
        if named > MAX_GROUP_MEMBERS_PER_REQUEST {
            return Err(too_many_members());
        }
    }
    for change in &changes {
        if let GroupChange::Rename(name) = change {
            if name.chars().count() > MAX_VALUE_CHARS {
                return Err(format!(
                    "displayName is too long (maximum is {MAX_VALUE_CHARS} characters)"
                ));
            }
        }
    }
    Ok(changes)
}

/// The user id of Okta's `members[value eq "id"]`.
fn member_filter(path: &str) -> Option<String> {
    let inner = path
        .get(..8)
        .filter(|prefix| prefix.eq_ignore_ascii_case("members["))
        .and_then(|_| path[8..].strip_suffix(']'))?;
    let mut parts = inner.trim().splitn(3, ' ');
    let (attribute, operator, value) = (parts.next()?, parts.next()?, parts.next()?);
    if !attribute.eq_ignore_ascii_case("value") || !operator.eq_ignore_ascii_case("eq") {
        return None;
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value);
    (!value.is_empty() && value.chars().count() <= MAX_VALUE_CHARS).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_as_gitlab_parses_them() {
        assert_eq!(
            parse_filter("userName eq \"ada\"", Resource::User),
            Ok(Some(Filter::UserName("ada".into())))
        );
        assert_eq!(
            parse_filter("externalId eq abc", Resource::User),
            Ok(Some(Filter::ExternUid("abc".into())))
        );
        assert_eq!(
            parse_filter("id EQ \"abc\"", Resource::User),
            Ok(Some(Filter::ExternUid("abc".into())))
        );
        assert_eq!(parse_filter("", Resource::User), Ok(None));
        for unsupported in [
            "id ne \"abc\"",
            "name.formatted eq \"x\"",
            "userName co \"a\"",
            "userName",
            "userName eq \"\"",
            "displayName eq \"x\"",
        ] {
            assert_eq!(
                parse_filter(unsupported, Resource::User),
                Err(UNSUPPORTED_FILTER),
                "{unsupported}"
            );
        }
        assert_eq!(
            parse_filter("displayName eq \"Duo Users\"", Resource::Group),
            Ok(Some(Filter::DisplayName("Duo Users".into())))
        );
    }

    #[test]
    fn paging_as_kaminari_clamps_it() {
        let page = |start: Option<&str>, count: Option<&str>| Page::from_params(start, count);
        assert_eq!(
            page(None, None),
            Ok(Page {
                start_index: 1,
                count: 20
            })
        );
        assert_eq!(
            page(Some("0"), Some("0")),
            Ok(Page {
                start_index: 1,
                count: 20
            })
        );
        assert_eq!(
            page(Some("-5"), Some("-1")),
            Ok(Page {
                start_index: 1,
                count: 20
            })
        );
        assert_eq!(
            page(Some("3"), Some("1000000")),
            Ok(Page {
                start_index: 3,
                count: 100
            })
        );
        assert_eq!(
            page(Some("1"), Some("99999999999999999999999")),
            Ok(Page {
                start_index: 1,
                count: 100
            })
        );
        assert_eq!(page(Some("x"), None), Err("startIndex"));
        assert_eq!(page(None, Some("2.5")), Err("count"));
        assert_eq!(page(Some("11"), None).map(Page::offset), Ok(10));
    }

    #[test]
    fn booleans_as_entra_and_okta_send_them() {
        assert_eq!(boolean(&json!(false)), Some(false));
        assert_eq!(boolean(&json!("False")), Some(false));
        assert_eq!(boolean(&json!("TRUE")), Some(true));
        assert_eq!(boolean(&json!("no")), None);
        assert_eq!(boolean(&json!(0)), None);
    }

    #[test]
    fn provisioning_params() {
        let body = json!({
            "externalId": "00u1",
            "userName": "ada@example.com",
            "emails": [{"type": "home", "value": "home@example.com"}, {"primary": true, "value": "ada@example.com"}],
            "name": {"givenName": "Ada", "familyName": "Lovelace"}
        });
        let params = provision_params(body.as_object().expect("object")).expect("valid");
        assert_eq!(params.extern_uid, "00u1");
        assert_eq!(params.email, "ada@example.com");
        assert_eq!(params.name, "Ada Lovelace");
        let missing = json!({"userName": "x"});
        assert_eq!(
            provision_params(missing.as_object().expect("object")),
            Err("Missing params: [:extern_uid, :email]".into())
        );
        let formatted = json!({"id": "9", "userName": "u", "emails": [{"type": "work", "value": "u@x.org"}], "name": {"formatted": "U Name"}});
        let params = provision_params(formatted.as_object().expect("object")).expect("valid");
        assert_eq!(
            (params.extern_uid.as_str(), params.name.as_str()),
            ("9", "U Name")
        );
    }

    #[test]
    fn patches_as_okta_and_entra_send_them() {
        // Okta: no path, the first key of value.
        let okta = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": false, "externalId": "ignored"}}]});
        assert_eq!(
            user_patch(&okta),
            Ok(UserPatch {
                active: Some(false),
                extern_uid: None
            })
        );
        // Entra: path, capitalised op and "False".
        let entra = json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}, {"op": "Add", "path": "externalId", "value": "new-uid"}]});
        assert_eq!(
            user_patch(&entra),
            Ok(UserPatch {
                active: Some(false),
                extern_uid: Some("new-uid".into())
            })
        );
        // remove is ignored, other attributes too.
        let ignored = json!({"Operations": [{"op": "remove", "path": "active"}, {"op": "replace", "path": "name.formatted", "value": "X"}]});
        assert_eq!(user_patch(&ignored), Ok(UserPatch::default()));
        assert!(user_patch(&json!({"Operations": "x"})).is_err());
        assert!(user_patch(&json!({"Operations": [1]})).is_err());
        assert!(user_patch(&json!({})).is_err());
    }

    #[test]
    fn usernames_made_valid() {
        assert_eq!(
            sanitize_username("ada.lovelace@example.com"),
            "ada.lovelace"
        );
        assert_eq!(sanitize_username("José Smith"), "JosSmith");
        assert_eq!(sanitize_username("..a__b--c.."), "a_b-c");
        assert_eq!(sanitize_username("a._-b"), "a.b");
        assert_eq!(sanitize_username("-x.git.git"), "x");
        assert_eq!(sanitize_username("repo.git"), "repo");
        assert_eq!(sanitize_username("@@@"), "blank");
        let candidates: Vec<String> = username_candidates("ada").take(3).collect();
        assert_eq!(candidates, ["ada", "ada1", "ada2"]);
    }

    #[test]
    fn group_patches() {
        let add = json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]}]});
        assert_eq!(
            group_patch(&add),
            Ok(vec![GroupChange::Add(vec!["a".into(), "b".into()])])
        );
        let okta_remove =
            json!({"Operations": [{"op": "remove", "path": "members[value eq \"a\"]"}]});
        assert_eq!(
            group_patch(&okta_remove),
            Ok(vec![GroupChange::Remove(vec!["a".into()])])
        );
        let rename =
            json!({"Operations": [{"op": "replace", "value": {"id": "x", "displayName": "New"}}]});
        assert_eq!(
            group_patch(&rename),
            Ok(vec![GroupChange::Rename("New".into())])
        );
        let too_many: Vec<Value> = (0..=MAX_GROUP_MEMBERS_PER_REQUEST)
            .map(|n| json!({"value": n.to_string()}))
            .collect();
        assert!(group_patch(
            &json!({"Operations": [{"op": "add", "path": "members", "value": too_many}]})
        )
        .is_err());
        assert!(group_patch(
            &json!({"Operations": [{"op": "add", "path": "members", "value": [{"x": 1}]}]})
        )
        .is_err());
    }

    #[test]
    fn uuids() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
