//! Who may hold an add-on seat: the eligible-user lists (searched, filtered, ordered and
//! counted in SQL) and the user look-ups the seat forms and mutations need.

use chrono::NaiveDate;

use super::{
    contains_pattern, placeholders, trigram_phrase, Db, Dialect, Store, StoreResult, User,
    GUEST_ACCESS_LEVEL, MIN_PARTIAL_SEARCH_CHARS, USER_COLUMNS, U_USER_COLUMNS,
};

/// Who may hold a seat of a purchase whose namespace is `{ns}` (a placeholder; NULL for an
/// instance purchase): active humans and service users — GitLab's "active, non-internal, not
/// a bot, not the ghost" — and for a group's purchase only the group's members from Guest up.
const ELIGIBLE: &str = concat!(
    active_seat_user!(),
    " AND (CAST({ns} AS BIGINT) IS NULL OR EXISTS (
        SELECT 1 FROM members m
        WHERE m.user_id = u.id AND m.source_type = 'Namespace'
          AND m.source_id = CAST({ns} AS BIGINT) AND m.access_level >= {guest}))"
);

pub(super) fn eligible_where(namespace_placeholder: &str) -> String {
    ELIGIBLE
        .replace("{ns}", namespace_placeholder)
        .replace("{guest}", &GUEST_ACCESS_LEVEL.to_string())
}

impl Store {
    /// The users among `ids` that exist, newest id first (the order of GitLab's keyset
    /// connection over `User.id_in(ids)` in the assignment payloads).
    pub async fn users_by_ids(&self, ids: &[i64]) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id IN ({}) ORDER BY id DESC",
            placeholders(1, ids.len())
        );
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, User>(&sql);
            for id in ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        }))
    }

    /// The users with these usernames (matched case-insensitively, as GitLab does), by id.
    pub async fn users_by_usernames(&self, usernames: &[String]) -> StoreResult<Vec<User>> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE lower(username) IN ({}) ORDER BY id",
            placeholders(1, usernames.len())
        );
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, User>(&sql);
            for username in usernames {
                query = query.bind(username.to_lowercase());
            }
            query.fetch_all(pool).await?
        }))
    }

    /// One page of the users who may hold seats of a namespace's (or the instance's)
    /// purchases, and how many there are. A search orders by GitLab's relevance (exact
    /// username, exact name, then by name and id) whatever `order` says.
    pub async fn eligible_users(
        &self,
        namespace_id: Option<i64>,
        filter: &EligibleUserFilter,
        order: EligibleOrder,
        today: NaiveDate,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        // $1 namespace, $2 search text, $3 search pattern, $4 today; purchase ids from $5.
        let purchases = filter
            .seat_holders
            .as_ref()
            .map(|(ids, _)| ids.as_slice())
            .unwrap_or_default();
        let assigned_on_active = format!(
            "SELECT a.user_id FROM user_add_on_assignments a
             JOIN add_on_purchases p ON p.id = a.add_on_purchase_id
             WHERE a.add_on_purchase_id IN ({}) AND p.started_on <= $4 AND $4 < p.expires_on",
            placeholders(5, purchases.len())
        );
        let population = match &filter.seat_holders {
            Some((_, true)) => format!("u.id IN ({assigned_on_active})"),
            Some((_, false)) => format!(
                "{} AND u.id NOT IN ({assigned_on_active})",
                eligible_where("$1")
            ),
            None => eligible_where("$1"),
        };
        // On SQLite a partial search first narrows to the trigram table's candidates (the
        // parameter after the purchase ids); PostgreSQL's trigram indexes serve the LIKE.
        let phrase_param = 5 + purchases.len();
        let mut phrase = None;
        let search_clause = match &filter.search {
            None => String::new(),
            Some(search) if search.0.chars().count() < MIN_PARTIAL_SEARCH_CHARS => {
                " AND (lower(u.username) = $2 OR lower(u.name) = $2)".into()
            }
            Some(search) => {
                let candidates = if self.dialect() == Dialect::Sqlite {
                    phrase = Some(trigram_phrase(&search.0));
                    format!(
                        " AND u.id IN (SELECT rowid FROM users_search WHERE users_search MATCH ${phrase_param})"
                    )
                } else {
                    String::new()
                };
                format!(
                    "{candidates} AND (lower(u.username) LIKE $3 ESCAPE '\\' OR lower(u.name) LIKE $3 ESCAPE '\\')"
                )
            }
        };
        let where_clause = format!("WHERE {population}{search_clause}");
        let order_sql = match filter.search {
            Some(_) => {
                "CASE WHEN lower(u.username) = $2 THEN 1 WHEN lower(u.name) = $2 THEN 2 ELSE 3 END,
                        u.name ASC, u.id ASC"
            }
            None => order.sql(),
        };
        let next = phrase_param + usize::from(phrase.is_some());
        let page_sql = format!(
            "SELECT {U_USER_COLUMNS} FROM users u {where_clause}
             ORDER BY {order_sql} LIMIT ${next} OFFSET ${}",
            next + 1
        );
        let count_sql = format!("SELECT COUNT(*) FROM users u {where_clause}");
        let text = filter.search.as_ref().map(|search| search.0.clone());
        let pattern = text.as_deref().map(contains_pattern);
        let (users, _, total) = with_pool!(self, pool => {
            page_and_total!(pool, User, &page_sql, &count_sql, limit, offset, |query| {
                let mut query = query.bind(namespace_id).bind(&text).bind(&pattern).bind(today);
                for purchase in purchases {
                    query = query.bind(*purchase);
                }
                match &phrase {
                    Some(phrase) => query.bind(phrase),
                    None => query,
                }
            })
        });
        Ok((users, total))
    }

    /// The first `limit` users, by username, who may hold a seat of an instance purchase
    /// (the page's suggestions: no total, no filters).
    pub async fn instance_eligible_users(&self, limit: i64) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {U_USER_COLUMNS} FROM users u WHERE {} ORDER BY u.username, u.id LIMIT $1",
            eligible_where("NULL")
        );
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, User>(&sql).bind(limit).fetch_all(pool).await?
        }))
    }
}

/// Narrows the eligible-user list.
#[derive(Debug, Clone, Default)]
pub struct EligibleUserFilter {
    /// GitLab's `User.search`: see [`UserSearch`].
    pub search: Option<UserSearch>,
    /// `(purchase ids, true)`: the holders of seats on those purchases that are active,
    /// eligible or not (GitLab's `User.id_in(assignments)`); `false`: eligible users holding
    /// none of them.
    pub seat_holders: Option<(Vec<i64>, bool)>,
}

/// A user search as GitLab's `User.search` does it: name and username partly (exactly below
/// three characters), e-mail only as an exact public e-mail — none are stored here, so an
/// e-mail finds nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSearch(String);

impl UserSearch {
    /// `None` for a blank search, which finds nobody.
    pub fn new(text: &str) -> Option<Self> {
        let text = text.trim();
        (!text.is_empty()).then(|| Self(text.to_lowercase()))
    }
}

/// The orders of an eligible-users list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EligibleOrder {
    IdAsc,
    IdDesc,
    NameAsc,
    NameDesc,
    /// GitLab's `order_oldest_last_activity`: no activity first, then the oldest; id descending
    /// among equals.
    LastActivityAsc,
    /// `order_recent_last_activity`: the most recent first, no activity last; id ascending
    /// among equals.
    LastActivityDesc,
}

impl EligibleOrder {
    fn sql(self) -> &'static str {
        match self {
            Self::IdAsc => "u.id ASC",
            Self::IdDesc => "u.id DESC",
            Self::NameAsc => "u.name ASC, u.id ASC",
            Self::NameDesc => "u.name DESC, u.id DESC",
            Self::LastActivityAsc => "u.last_activity_on ASC NULLS FIRST, u.id DESC",
            Self::LastActivityDesc => "u.last_activity_on DESC NULLS LAST, u.id ASC",
        }
    }
}
