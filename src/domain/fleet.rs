//! The fleet: GitLab instances this server reads users and licenses from, and the unique
//! people across them. Pure rules: what an instance's name and URL may be, how GitLab's admin
//! user entity is read, who counts as billable when an instance does not say, and how
//! accounts on several instances are matched to one person (docs/fleet.md).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The longest instance name.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest base URL.
pub const MAX_URL_CHARS: usize = 2048;
/// What the sealed token is bound to (see `secrets.rs`).
pub const TOKEN_PURPOSE: &str = "fleet_instance_token";
/// Users per page asked of an instance (GitLab's maximum).
pub const USERS_PER_PAGE: u32 = 100;

/// Checks an instance's name: 1–100 characters, letters, digits, `.`, `_` and `-`, starting
/// with a letter or digit (it is typed on command lines and used as a metric label).
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err("must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    }
}

/// An instance's base URL as stored: `http` or `https`, a host, no credentials, query or
/// fragment, no trailing slash, and without the `/api/v4` an administrator may have pasted.
pub fn normalize_base_url(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.len() > MAX_URL_CHARS {
        return Err("is too long (at most 2048 characters)");
    }
    let url = url::Url::parse(text).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold credentials (give the token separately)");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or a fragment");
    }
    let mut base = url.as_str().trim_end_matches('/').to_string();
    for suffix in ["/api/v4", "/api"] {
        if let Some(stripped) = base.strip_suffix(suffix) {
            base = stripped.to_string();
        }
    }
    Ok(base)
}

/// Resolves an instance's `Link: <…>; rel="next"` target against the instance's own base
/// URL: only its path and query are taken, so the next page is always asked of the host the
/// administrator registered (a GitLab whose `external_url` differs from how this server reaches
/// it, or a proxy in between, still works) and the token never goes anywhere else.
pub fn next_page_url(base_url: &str, link_header: &str) -> Option<String> {
    let target = link_header.split(',').find_map(|part| {
        let (url_part, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|param| {
            let param = param.trim().replace(' ', "");
            param == "rel=\"next\"" || param == "rel=next"
        });
        is_next.then(|| {
            url_part
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })?;
    let base = url::Url::parse(base_url).ok()?;
    let next = base.join(&target).ok()?;
    let mut resolved = base.clone();
    resolved.set_path(next.path());
    resolved.set_query(next.query());
    Some(resolved.to_string())
}

/// One identity of a user (GitLab's `identities` entries).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Identity {
    pub provider: String,
    pub extern_uid: String,
}

/// GitLab's admin user entity (`GET /api/v4/users` as an administrator), the fields read.
/// Everything but `id` and `username` may be missing (older versions, other editions).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UpstreamUser {
    pub id: i64,
    pub username: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub bot: Option<bool>,
    #[serde(default)]
    pub is_admin: Option<bool>,
    #[serde(default)]
    pub identities: Option<Vec<Identity>>,
    #[serde(default)]
    pub last_activity_on: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// GitLab EE's own answer to "does this user occupy a seat".
    #[serde(default)]
    pub using_license_seat: Option<bool>,
}

/// Where an account's billability came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillabilitySource {
    /// The instance said so (`using_license_seat`, GitLab EE).
    Instance,
    /// This server's rule: an active account that is not a bot.
    Computed,
}

impl BillabilitySource {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Computed => "computed",
        }
    }
}

impl UpstreamUser {
    /// Whether the account occupies a seat upstream: GitLab's own answer when it gives one;
    /// otherwise the rule this server's directory applies to what the entity shows — active
    /// and not a bot (GitLab's admin entity has no roles, so the Ultimate rule that guests
    /// do not count cannot be applied; such an instance over-counts its guests, and the
    /// result says the figure was computed).
    pub fn billable(&self) -> (bool, BillabilitySource) {
        match self.using_license_seat {
            Some(seat) => (seat, BillabilitySource::Instance),
            None => (
                self.state.as_deref().unwrap_or("active") == "active" && !self.bot.unwrap_or(false),
                BillabilitySource::Computed,
            ),
        }
    }

    /// The identities as stored: `provider<TAB>extern_uid` per line, providers lower-cased,
    /// sorted, without empty or control-character values.
    pub fn identities_text(&self) -> String {
        let mut lines: Vec<String> = self
            .identities
            .iter()
            .flatten()
            .filter(|identity| {
                !identity.provider.trim().is_empty() && !identity.extern_uid.trim().is_empty()
            })
            .map(|identity| {
                format!(
                    "{}\t{}",
                    clean(&identity.provider.trim().to_lowercase()),
                    clean(identity.extern_uid.trim())
                )
            })
            .collect();
        lines.sort();
        lines.dedup();
        lines.join("\n")
    }

    /// The date of `last_activity_on` (`YYYY-MM-DD`), if readable.
    pub fn last_activity_day(&self) -> Option<chrono::NaiveDate> {
        self.last_activity_on
            .as_deref()
            .and_then(|text| chrono::NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok())
    }

    /// `created_at`, if readable.
    pub fn created_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.created_at
            .as_deref()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.with_timezone(&chrono::Utc))
    }
}

/// Tabs and line breaks would break the stored identity lines; other control characters
/// have no place in a name either.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// Parses stored identity lines back.
pub fn parse_identities(text: &str) -> Vec<Identity> {
    text.lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(provider, extern_uid)| Identity {
            provider: provider.to_string(),
            extern_uid: extern_uid.to_string(),
        })
        .collect()
}

/// GitLab's license entity (`GET /api/v4/license`), the fields read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct UpstreamLicense {
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub user_limit: Option<serde_json::Value>,
    #[serde(default)]
    pub active_users: Option<i64>,
}

impl UpstreamLicense {
    /// The seats (`user_limit`; GitLab sends a number, or 0 / null for no limit).
    pub fn seats(&self) -> Option<i64> {
        match self.user_limit.as_ref()? {
            serde_json::Value::Number(number) => number.as_i64().filter(|seats| *seats > 0),
            serde_json::Value::String(text) => text.parse().ok().filter(|seats| *seats > 0),
            _ => None,
        }
    }

    pub fn day(text: Option<&str>) -> Option<chrono::NaiveDate> {
        chrono::NaiveDate::parse_from_str(text?.get(..10)?, "%Y-%m-%d").ok()
    }
}

/// One document of an offline import file: the users array of `GET /api/v4/users`, the
/// object of `GET /api/v4/license` (or `GET /api/v4/version`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ImportDocument {
    Users(Vec<UpstreamUser>),
    Version { version: String },
    License(UpstreamLicense),
}

/// One account of the fleet as matching sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub row_id: i64,
    pub instance_id: i64,
    pub upstream_id: i64,
    /// Lower-cased; empty when the instance did not show one.
    pub email: String,
    /// Stored identity lines (see [`UpstreamUser::identities_text`]).
    pub identities: String,
    pub billable: bool,
    /// What is stored for the account now: [`key_hash`] of its person key, and the person's
    /// two flags (billable anywhere, outside the largest), so that only changes are written.
    pub stored: (u64, bool, bool),
}

/// A person key's fingerprint, to tell whether a stored key changed without holding every
/// stored key in memory.
pub fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// What matching concludes for one account: its person and that person's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonFacts {
    pub row_id: i64,
    pub person_key: String,
    /// The person is billable on at least one instance.
    pub person_billable: bool,
    /// The person is billable somewhere but not on the largest instance.
    pub person_outside_largest: bool,
}

/// Billable people both instances share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlap {
    pub a: i64,
    pub b: i64,
    pub shared_billable_people: i64,
}

/// The fleet's figures (stored as JSON when a snapshot changes; instance ids, named when
/// read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetFigures {
    pub unique_billable_users: i64,
    pub people: i64,
    pub billable_accounts: i64,
    pub largest_instance_id: Option<i64>,
    pub subset_holds: bool,
    pub people_outside_largest: i64,
    pub overlaps: Vec<Overlap>,
}

/// Union-find over account indexes.
struct Components {
    parent: Vec<u32>,
}

impl Components {
    fn new(size: usize) -> Self {
        Self {
            parent: (0..size)
                .map(|index| u32::try_from(index).unwrap_or(u32::MAX))
                .collect(),
        }
    }

    fn root(&mut self, index: u32) -> u32 {
        let mut root = index;
        while self.parent[root as usize] != root {
            root = self.parent[root as usize];
        }
        let mut walk = index;
        while self.parent[walk as usize] != root {
            let next = self.parent[walk as usize];
            self.parent[walk as usize] = root;
            walk = next;
        }
        root
    }

    fn join(&mut self, a: u32, b: u32) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            let (low, high) = if a < b { (a, b) } else { (b, a) };
            self.parent[high as usize] = low;
        }
    }
}

/// Matches accounts to people and computes the fleet's figures.
///
/// The rule (docs/fleet.md): two accounts are the same person when they share an identity
/// (`provider` + `extern_uid`, as SAML, LDAP or SCIM link them), or else an e-mail address
/// (case-insensitively); the relation is transitive. A person's key is the smallest e-mail
/// address among their accounts, else their smallest identity, else the account itself.
/// The largest instance is the one with the most billable accounts (the lowest id on a
/// tie) among `instances` (those with a snapshot). Returns the facts of the accounts whose
/// stored facts differ, and the figures.
pub fn match_people(instances: &[i64], accounts: &[Account]) -> (Vec<PersonFacts>, FleetFigures) {
    let mut components = Components::new(accounts.len());
    let mut first_by_key: HashMap<&str, u32> = HashMap::new();
    for (index, account) in accounts.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let keys = account
            .identities
            .lines()
            .chain((!account.email.is_empty()).then_some(account.email.as_str()));
        for key in keys {
            match first_by_key.get(key) {
                Some(&first) => components.join(first, index),
                None => {
                    first_by_key.insert(key, index);
                }
            }
        }
    }
    drop(first_by_key);

    let mut billable_by_instance: HashMap<i64, i64> = instances.iter().map(|id| (*id, 0)).collect();
    for account in accounts.iter().filter(|account| account.billable) {
        *billable_by_instance.entry(account.instance_id).or_default() += 1;
    }
    let mut counts: Vec<(i64, i64)> = billable_by_instance.into_iter().collect();
    counts.sort_unstable();
    let largest = counts
        .iter()
        .filter(|(id, _)| instances.contains(id))
        .max_by(|(id_a, a), (id_b, b)| a.cmp(b).then(id_b.cmp(id_a)))
        .map(|(id, _)| *id);

    // Per component: its key, whether billable anywhere and on the largest instance, and the
    // instances it is billable on.
    #[derive(Default)]
    struct Person<'a> {
        email: Option<&'a str>,
        identity: Option<&'a str>,
        first_account: Option<(i64, i64)>,
        billable: bool,
        billable_on_largest: bool,
        billable_on: Vec<i64>,
    }
    let mut people: HashMap<u32, Person> = HashMap::new();
    let roots: Vec<u32> = (0..accounts.len())
        .map(|index| components.root(u32::try_from(index).unwrap_or(u32::MAX)))
        .collect();
    for (account, root) in accounts.iter().zip(&roots) {
        let person = people.entry(*root).or_default();
        if !account.email.is_empty()
            && person
                .email
                .is_none_or(|email| account.email.as_str() < email)
        {
            person.email = Some(&account.email);
        }
        if let Some(identity) = account.identities.lines().min() {
            if person.identity.is_none_or(|current| identity < current) {
                person.identity = Some(identity);
            }
        }
        let this = (account.instance_id, account.upstream_id);
        if person.first_account.is_none_or(|first| this < first) {
            person.first_account = Some(this);
        }
        if account.billable {
            person.billable = true;
            person.billable_on_largest |= Some(account.instance_id) == largest;
            if !person.billable_on.contains(&account.instance_id) {
                person.billable_on.push(account.instance_id);
            }
        }
    }

    let mut figures = FleetFigures {
        people: i64::try_from(people.len()).unwrap_or(i64::MAX),
        billable_accounts: counts.iter().map(|(_, count)| count).sum(),
        largest_instance_id: largest,
        ..FleetFigures::default()
    };
    let mut overlaps: HashMap<(i64, i64), i64> = HashMap::new();
    let mut keys: HashMap<u32, String> = HashMap::with_capacity(people.len());
    for (root, person) in &mut people {
        if person.billable {
            figures.unique_billable_users += 1;
            if !person.billable_on_largest {
                figures.people_outside_largest += 1;
            }
            person.billable_on.sort_unstable();
            for (position, a) in person.billable_on.iter().enumerate() {
                for b in &person.billable_on[position + 1..] {
                    *overlaps.entry((*a, *b)).or_default() += 1;
                }
            }
        }
        let key = match (person.email, person.identity, person.first_account) {
            (Some(email), _, _) => email.to_string(),
            (None, Some(identity), _) => format!("identity:{}", identity.replace('\t', ":")),
            (None, None, Some((instance, upstream))) => format!("account:{instance}:{upstream}"),
            (None, None, None) => String::new(),
        };
        keys.insert(*root, key);
    }
    figures.subset_holds = figures.people_outside_largest == 0;
    let mut overlaps: Vec<Overlap> = overlaps
        .into_iter()
        .map(|((a, b), shared)| Overlap {
            a,
            b,
            shared_billable_people: shared,
        })
        .collect();
    overlaps.sort_by_key(|overlap| (overlap.a, overlap.b));
    figures.overlaps = overlaps;

    let key_hashes: HashMap<u32, u64> = keys
        .iter()
        .map(|(root, key)| (*root, key_hash(key)))
        .collect();
    let facts = accounts
        .iter()
        .zip(&roots)
        .filter_map(|(account, root)| {
            let person = &people[root];
            let outside = person.billable && !person.billable_on_largest;
            let unchanged = account.stored
                == (
                    key_hashes.get(root).copied().unwrap_or_default(),
                    person.billable,
                    outside,
                );
            (!unchanged).then(|| PersonFacts {
                row_id: account.row_id,
                person_key: keys.get(root).cloned().unwrap_or_default(),
                person_billable: person.billable,
                person_outside_largest: outside,
            })
        })
        .collect();
    (facts, figures)
}

/// The people CSV's columns.
pub const PEOPLE_CSV_HEADER: &str =
    "person,username,name,billable,outside_largest,billable_on,present_on\n";

/// One person as a CSV line (cells that a spreadsheet would run as formulas are quoted).
pub fn people_csv_line(
    person: &str,
    username: &str,
    name: &str,
    billable: bool,
    outside_largest: bool,
    billable_on: &[String],
    present_on: &[String],
) -> String {
    use super::usage_csv::table_cell;
    format!(
        "{},{},{},{billable},{outside_largest},{},{}\n",
        table_cell(person),
        table_cell(username),
        table_cell(name),
        table_cell(&billable_on.join(" ")),
        table_cell(&present_on.join(" "))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(
        row_id: i64,
        instance_id: i64,
        email: &str,
        identities: &str,
        billable: bool,
    ) -> Account {
        Account {
            row_id,
            instance_id,
            upstream_id: row_id,
            email: email.to_string(),
            identities: identities.to_string(),
            billable,
            stored: (0, false, false),
        }
    }

    #[test]
    fn names_and_urls_are_checked() {
        assert!(check_name("prod-1.eu_west").is_ok());
        for bad in ["", "-x", "a b", "ä", &"x".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalize_base_url("https://gitlab.example.com/api/v4/").as_deref(),
            Ok("https://gitlab.example.com")
        );
        assert_eq!(
            normalize_base_url("http://10.0.0.1:8080/gitlab").as_deref(),
            Ok("http://10.0.0.1:8080/gitlab")
        );
        for bad in [
            "ftp://x",
            "https://user:pw@x",
            "https://x/?a=1",
            "nonsense",
            "file:///etc/passwd",
        ] {
            assert!(normalize_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_links_stay_on_the_registered_host() {
        let link = r#"<http://gitlab.internal:80/api/v4/users?cursor=abc&per_page=100>; rel="next", <http://x/first>; rel="first""#;
        assert_eq!(
            next_page_url("https://proxy.example.com:8443/gitlab", link).as_deref(),
            Some("https://proxy.example.com:8443/api/v4/users?cursor=abc&per_page=100")
        );
        assert_eq!(
            next_page_url("https://x", r#"<https://x/a>; rel="prev""#),
            None
        );
        assert_eq!(
            next_page_url("https://x", "</api/v4/users?id_after=5>; rel=next").as_deref(),
            Some("https://x/api/v4/users?id_after=5")
        );
    }

    #[test]
    fn billability_is_the_instances_answer_or_the_rule() {
        let mut user: UpstreamUser =
            serde_json::from_str(r#"{"id": 1, "username": "a", "state": "active", "bot": false}"#)
                .expect("user");
        assert_eq!(user.billable(), (true, BillabilitySource::Computed));
        user.bot = Some(true);
        assert_eq!(user.billable(), (false, BillabilitySource::Computed));
        user.using_license_seat = Some(true);
        assert_eq!(user.billable(), (true, BillabilitySource::Instance));
        user.state = Some("blocked".into());
        user.using_license_seat = None;
        user.bot = None;
        assert_eq!(user.billable(), (false, BillabilitySource::Computed));
        let user: UpstreamUser = serde_json::from_str(
            r#"{"id": 2, "username": "b", "identities": [{"provider": "SAML", "extern_uid": "u-1\t"}, {"provider": "ldapmain", "extern_uid": "cn=b"}, {"provider": "", "extern_uid": "x"}]}"#,
        )
        .expect("user");
        assert_eq!(user.identities_text(), "ldapmain\tcn=b\nsaml\tu-1");
        assert_eq!(parse_identities(&user.identities_text()).len(), 2);
    }

    #[test]
    fn people_match_by_identity_then_email_transitively() {
        let accounts = vec![
            // Ada: same e-mail on 1 and 2.
            account(1, 1, "ada@x.org", "", true),
            account(2, 2, "ada@x.org", "", true),
            // Bob: an identity links 1 and 3 despite different e-mails; 3's e-mail links 2.
            account(3, 1, "bob@x.org", "saml\tbob", true),
            account(4, 3, "robert@y.org", "saml\tbob", true),
            account(5, 2, "robert@y.org", "", false),
            // Cy: only on 2, billable: outside the largest.
            account(6, 2, "cy@x.org", "", true),
            // Dee: on 1, not billable anywhere.
            account(7, 1, "dee@x.org", "", false),
            // No e-mail, no identity.
            account(8, 3, "", "", true),
        ];
        let (facts, figures) = match_people(&[1, 2, 3], &accounts);
        let key = |row: i64| {
            facts
                .iter()
                .find(|f| f.row_id == row)
                .map(|f| f.person_key.clone())
        };
        assert_eq!(key(1), key(2));
        assert_eq!(key(3), key(4));
        assert_eq!(key(4), key(5));
        assert_eq!(key(3).as_deref(), Some("bob@x.org"));
        assert_eq!(key(8).as_deref(), Some("account:3:8"));
        assert_eq!(figures.people, 5);
        assert_eq!(figures.unique_billable_users, 4);
        // Instance 1 has 2 billable accounts, 2 has 2, 3 has 2: the lowest id wins the tie.
        assert_eq!(figures.largest_instance_id, Some(1));
        // Cy (only on 2) and the account without an address (only on 3).
        assert_eq!(figures.people_outside_largest, 2);
        assert!(!figures.subset_holds);
        assert!(facts
            .iter()
            .find(|f| f.row_id == 6)
            .is_some_and(|f| f.person_outside_largest));
        assert!(facts
            .iter()
            .find(|f| f.row_id == 7)
            .is_some_and(|f| !f.person_billable));
        assert_eq!(
            figures.overlaps,
            vec![
                Overlap {
                    a: 1,
                    b: 2,
                    shared_billable_people: 1
                },
                Overlap {
                    a: 1,
                    b: 3,
                    shared_billable_people: 1
                },
            ]
        );
        assert_eq!(figures.billable_accounts, 6);
        // Stored as matched: nothing changes the second time.
        let stored: Vec<Account> = accounts
            .iter()
            .map(|account| {
                let fact = facts
                    .iter()
                    .find(|f| f.row_id == account.row_id)
                    .expect("fact");
                Account {
                    stored: (
                        key_hash(&fact.person_key),
                        fact.person_billable,
                        fact.person_outside_largest,
                    ),
                    ..account.clone()
                }
            })
            .collect();
        let (again, same) = match_people(&[1, 2, 3], &stored);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(same, figures);
    }

    #[test]
    fn import_documents_are_users_licenses_or_versions() {
        let text = r#"[{"id": 1, "username": "a"}]
{"plan": "ultimate", "user_limit": 10, "starts_at": "2026-01-01", "expires_at": "2027-01-01"}
{"version": "17.0.0-ee", "revision": "x"}"#;
        let documents: Vec<ImportDocument> = serde_json::Deserializer::from_str(text)
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("documents");
        assert!(matches!(&documents[0], ImportDocument::Users(users) if users.len() == 1));
        assert!(
            matches!(&documents[1], ImportDocument::License(license) if license.seats() == Some(10))
        );
        assert!(
            matches!(&documents[2], ImportDocument::Version { version } if version == "17.0.0-ee")
        );
    }
}
