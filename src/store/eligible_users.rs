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

    /// One keyset page of the users who may hold seats of a namespace's (or the
    /// instance's) purchases, and whether more follow in the direction read. `page.after`
    /// and `page.before` bound it (exclusive); `page.backward` reads from the end, as
    /// GraphQL's `last` does (the rows still come in the list's order). A search orders by
    /// GitLab's relevance (exact username, exact name, then by name and id) whatever `order`
    /// says. Nothing is counted: every order is an index's, so a page costs the same at any
    /// depth.
    pub async fn eligible_users(
        &self,
        query: &EligibleQuery<'_>,
    ) -> StoreResult<(Vec<EligibleUser>, bool)> {
        let (sql, binds) = self.eligible_statement(query);
        let mut rows = with_pool!(self, pool => {
            bind_eligible!(sqlx::query_as::<_, EligibleUser>(&sql), binds)
                .fetch_all(pool)
                .await?
        });
        let limit = query.page.limit;
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        if query.page.backward {
            rows.reverse();
        }
        Ok((rows, more))
    }

    /// The statement of [`Store::eligible_users`] and what it binds.
    fn eligible_statement<'a>(&self, query: &EligibleQuery<'a>) -> (String, EligibleBinds<'a>) {
        let (sql, keys) = self.eligible_users_sql(query.filter, query.order, query.page);
        let binds = EligibleBinds::new(self, query, keys);
        (sql, binds)
    }

    /// The query plan of [`Store::eligible_users`]' statement for these arguments (the
    /// tests hold every order and filter to an index with it).
    pub async fn eligible_users_plan(&self, query: &EligibleQuery<'_>) -> StoreResult<String> {
        let (sql, binds) = self.eligible_statement(query);
        let lines: Vec<String> = match &self.db {
            Db::Sqlite(pool) => {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
                let rows = bind_eligible!(query, binds).fetch_all(pool).await?;
                rows.into_iter().map(|(_, _, _, detail)| detail).collect()
            }
            Db::Postgres(pool) => {
                let explain = format!("EXPLAIN {sql}");
                let query = sqlx::query_scalar::<_, String>(&explain);
                bind_eligible!(query, binds).fetch_all(pool).await?
            }
        };
        Ok(lines.join("\n"))
    }

    /// On SQLite, the index a list in `order` is read through. Its planner would otherwise
    /// pick the (state, user type) index, which nearly every user matches, and sort them all
    /// for each page; read in the order's own index, a page stops after its rows. A search or
    /// the seat holders are few and found through their own indexes: no hint.
    fn sqlite_order_hint(&self, filter: &EligibleUserFilter, order: EligibleOrder) -> &'static str {
        let few = filter.search.is_some() || matches!(filter.seat_holders, Some((_, true)));
        if self.dialect() != Dialect::Sqlite || few {
            return "";
        }
        match order {
            EligibleOrder::IdAsc | EligibleOrder::IdDesc => " NOT INDEXED",
            EligibleOrder::NameAsc | EligibleOrder::NameDesc => " INDEXED BY users_name_id",
            EligibleOrder::LastActivityAsc | EligibleOrder::LastActivityDesc => {
                " INDEXED BY users_last_activity_id"
            }
        }
    }

    /// On SQLite, the trigram table's phrase for a partial search (PostgreSQL's trigram
    /// indexes serve the LIKE itself).
    fn search_phrase(&self, filter: &EligibleUserFilter) -> Option<String> {
        let search = filter.search.as_ref()?;
        (self.dialect() == Dialect::Sqlite && search.0.chars().count() >= MIN_PARTIAL_SEARCH_CHARS)
            .then(|| trigram_phrase(&search.0))
    }

    /// The statement of [`Store::eligible_users`] and the cursor values it binds after the
    /// fixed parameters: $1 namespace, $2 search text, $3 search pattern, $4 today, the
    /// purchase ids, the SQLite search phrase, the cursors' values, then the limit.
    pub fn eligible_users_sql(
        &self,
        filter: &EligibleUserFilter,
        order: EligibleOrder,
        page: &EligiblePage,
    ) -> (String, Vec<KeyValue>) {
        let purchases = filter.purchase_ids();
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
        let phrase = self.search_phrase(filter);
        let mut next = 5 + purchases.len();
        let search_clause = match &filter.search {
            None => String::new(),
            Some(search) if search.0.chars().count() < MIN_PARTIAL_SEARCH_CHARS => {
                " AND (lower(u.username) = $2 OR lower(u.name) = $2)".into()
            }
            Some(_) => {
                // On SQLite a partial search first narrows to the trigram table's candidates.
                let candidates = match phrase {
                    Some(_) => {
                        next += 1;
                        format!(
                            " AND u.id IN (SELECT rowid FROM users_search WHERE users_search MATCH ${})",
                            next - 1
                        )
                    }
                    None => String::new(),
                };
                format!(
                    "{candidates} AND (lower(u.username) LIKE $3 ESCAPE '\\' OR lower(u.name) LIKE $3 ESCAPE '\\')"
                )
            }
        };
        let columns = sort_columns(order, filter.search.is_some());
        let reversed: Vec<SortColumn> = columns.iter().map(SortColumn::reversed).collect();
        let read_order = if page.backward { &reversed } else { &columns };
        let mut keys = Vec::new();
        let mut bounds = String::new();
        // After a key in the list's order; before it is after it in the reversed order.
        for (key, sorted) in [(&page.after, &columns), (&page.before, &reversed)] {
            if let Some(key) = key {
                let clause = keyset_clause(sorted, key, &mut next, &mut keys);
                bounds.push_str(&format!(" AND ({clause})"));
            }
        }
        let order_sql = read_order
            .iter()
            .map(SortColumn::order_sql)
            .collect::<Vec<_>>()
            .join(", ");
        let hint = self.sqlite_order_hint(filter, order);
        let sql = format!(
            "SELECT {U_USER_COLUMNS}, {RANK} AS search_rank FROM users u{hint}
             WHERE {population}{search_clause}{bounds}
             ORDER BY {order_sql} LIMIT ${next}",
            RANK = if filter.search.is_some() {
                SEARCH_RANK
            } else {
                "CAST(0 AS BIGINT)"
            }
        );
        (sql, keys)
    }

    /// The first `limit` users, by username (case-insensitively), who may hold a seat of an
    /// instance purchase (the page's suggestions: no total, no filters). Read through the
    /// username index, so the page costs the same at any directory size.
    pub async fn instance_eligible_users(&self, limit: i64) -> StoreResult<Vec<User>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, User>(&self.instance_eligible_users_sql())
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The statement of [`Store::instance_eligible_users`] (its one bind: the limit).
    pub fn instance_eligible_users_sql(&self) -> String {
        // SQLite would otherwise read the (state, user type) index and sort every match.
        let hint = match self.dialect() {
            Dialect::Sqlite => " INDEXED BY users_username_unique",
            Dialect::Postgres => "",
        };
        format!(
            "SELECT {U_USER_COLUMNS} FROM users u{hint} WHERE {} ORDER BY lower(u.username) LIMIT $1",
            eligible_where("NULL")
        )
    }
}

/// The values [`Store::eligible_users`]' statement binds, in its parameters' order.
struct EligibleBinds<'a> {
    namespace_id: Option<i64>,
    text: Option<String>,
    pattern: Option<String>,
    today: NaiveDate,
    purchases: &'a [i64],
    phrase: Option<String>,
    keys: Vec<KeyValue>,
    limit: i64,
}

impl<'a> EligibleBinds<'a> {
    fn new(store: &Store, query: &EligibleQuery<'a>, keys: Vec<KeyValue>) -> Self {
        let filter = query.filter;
        let text = filter.search.as_ref().map(|search| search.0.clone());
        Self {
            namespace_id: query.namespace_id,
            pattern: text.as_deref().map(contains_pattern),
            text,
            today: query.today,
            purchases: filter.purchase_ids(),
            phrase: store.search_phrase(filter),
            keys,
            // One row past the page says whether another follows.
            limit: query.page.limit.saturating_add(1),
        }
    }
}

/// Binds [`EligibleBinds`] to a query of any kind (rows or a plan).
macro_rules! bind_eligible {
    ($query:expr, $binds:expr) => {{
        let binds = &$binds;
        let mut query = $query
            .bind(binds.namespace_id)
            .bind(binds.text.clone())
            .bind(binds.pattern.clone())
            .bind(binds.today);
        for purchase in binds.purchases {
            query = query.bind(*purchase);
        }
        if let Some(phrase) = &binds.phrase {
            query = query.bind(phrase.clone());
        }
        for key in &binds.keys {
            query = match key {
                KeyValue::Int(value) => query.bind(*value),
                KeyValue::Text(value) => query.bind(value.clone()),
                KeyValue::Date(value) => query.bind(*value),
            };
        }
        query.bind(binds.limit)
    }};
}
use bind_eligible;

/// GitLab's search relevance: an exact username first, then an exact name, then the rest.
const SEARCH_RANK: &str =
    "CAST(CASE WHEN lower(u.username) = $2 THEN 1 WHEN lower(u.name) = $2 THEN 2 ELSE 3 END AS BIGINT)";

/// An eligible user and their search relevance (1–3; 0 without a search): what a cursor
/// needs besides the user's own columns.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EligibleUser {
    #[sqlx(flatten)]
    pub user: User,
    pub search_rank: i64,
}

impl EligibleUser {
    /// The sort values of this row, for the cursor that names it.
    pub fn key(&self) -> EligibleKey {
        EligibleKey {
            id: self.user.id,
            name: self.user.name.clone(),
            last_activity_on: self.user.last_activity_on,
            search_rank: self.search_rank,
        }
    }
}

/// The sort values of a row a keyset page starts or ends at (a cursor's content). Only the
/// order's own columns are read: `name` for name orders and searches, `last_activity_on`
/// for activity orders, `search_rank` for searches, `id` always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibleKey {
    pub id: i64,
    pub name: String,
    pub last_activity_on: Option<NaiveDate>,
    pub search_rank: i64,
}

/// An eligible-user list request: whose purchases (a namespace's, or the instance's when
/// `None`), narrowed how, in which order, which page, and the day that decides which
/// purchases are active.
#[derive(Debug, Clone, Copy)]
pub struct EligibleQuery<'a> {
    pub namespace_id: Option<i64>,
    pub filter: &'a EligibleUserFilter,
    pub order: EligibleOrder,
    pub today: NaiveDate,
    pub page: &'a EligiblePage,
}

/// Which keyset page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligiblePage {
    /// Only rows after this one, in the list's order.
    pub after: Option<EligibleKey>,
    /// Only rows before this one.
    pub before: Option<EligibleKey>,
    /// Read the last `limit` rows of the range instead of the first.
    pub backward: bool,
    pub limit: i64,
}

/// A value a keyset bound compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    Int(i64),
    Text(String),
    Date(NaiveDate),
}

/// What an order sorts by, in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    SearchRank,
    Name,
    LastActivity,
    Id,
}

/// One ORDER BY term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SortColumn {
    key: SortKey,
    descending: bool,
    /// Where NULLs sort (only `last_activity_on` holds any).
    nulls_first: bool,
}

impl SortColumn {
    const fn new(key: SortKey, descending: bool, nulls_first: bool) -> Self {
        Self {
            key,
            descending,
            nulls_first,
        }
    }

    fn expression(self) -> &'static str {
        match self.key {
            SortKey::SearchRank => SEARCH_RANK,
            SortKey::Name => "u.name",
            SortKey::LastActivity => "u.last_activity_on",
            SortKey::Id => "u.id",
        }
    }

    /// The same term read from the other end.
    fn reversed(&self) -> Self {
        Self::new(self.key, !self.descending, !self.nulls_first)
    }

    fn order_sql(&self) -> String {
        let direction = if self.descending { "DESC" } else { "ASC" };
        match self.key {
            SortKey::LastActivity => {
                let nulls = if self.nulls_first { "FIRST" } else { "LAST" };
                format!("{} {direction} NULLS {nulls}", self.expression())
            }
            _ => format!("{} {direction}", self.expression()),
        }
    }

    /// The key's value for this term (`None`: a NULL).
    fn value(self, key: &EligibleKey) -> Option<KeyValue> {
        match self.key {
            SortKey::SearchRank => Some(KeyValue::Int(key.search_rank)),
            SortKey::Name => Some(KeyValue::Text(key.name.clone())),
            SortKey::LastActivity => key.last_activity_on.map(KeyValue::Date),
            SortKey::Id => Some(KeyValue::Int(key.id)),
        }
    }
}

/// The terms of `order` (a search's relevance order when `searching`); the id last makes
/// every order total, so a keyset bound never skips or repeats a row.
fn sort_columns(order: EligibleOrder, searching: bool) -> Vec<SortColumn> {
    use SortKey::{Id, LastActivity, Name, SearchRank};
    let column = SortColumn::new;
    if searching {
        return vec![
            column(SearchRank, false, false),
            column(Name, false, false),
            column(Id, false, false),
        ];
    }
    match order {
        EligibleOrder::IdAsc => vec![column(Id, false, false)],
        EligibleOrder::IdDesc => vec![column(Id, true, false)],
        EligibleOrder::NameAsc => vec![column(Name, false, false), column(Id, false, false)],
        EligibleOrder::NameDesc => vec![column(Name, true, false), column(Id, true, false)],
        // GitLab's `order_oldest_last_activity`: no activity first, then the oldest; id
        // descending among equals. `order_recent_last_activity` is its exact reverse.
        EligibleOrder::LastActivityAsc => {
            vec![column(LastActivity, false, true), column(Id, true, false)]
        }
        EligibleOrder::LastActivityDesc => {
            vec![column(LastActivity, true, false), column(Id, false, false)]
        }
    }
}

/// The rows after `key` in the order `columns`: for some term, equal on every term before
/// it and beyond on it. Placeholders are numbered from `next`, their values pushed to
/// `values`.
fn keyset_clause(
    columns: &[SortColumn],
    key: &EligibleKey,
    next: &mut usize,
    values: &mut Vec<KeyValue>,
) -> String {
    let mut placeholder = |value: KeyValue| {
        values.push(value);
        *next += 1;
        format!("${}", *next - 1)
    };
    // When every term runs one way and none holds a NULL, one row comparison says it, and
    // both planners read it as where to start in the order's index (an OR of terms they
    // would filter row by row from the index's beginning).
    let uniform = columns.iter().all(|column| {
        column.descending == columns[0].descending && column.key != SortKey::LastActivity
    });
    if uniform {
        let (mut terms, mut bounds) = (Vec::new(), Vec::new());
        for column in columns {
            if let Some(value) = column.value(key) {
                terms.push(column.expression());
                bounds.push(placeholder(value));
            }
        }
        let comparison = if columns[0].descending { "<" } else { ">" };
        return format!(
            "({}) {comparison} ({})",
            terms.join(", "),
            bounds.join(", ")
        );
    }
    let mut equal_before = Vec::new();
    let mut alternatives = Vec::new();
    // A start in the leading term's index, where one exists: ascending past a date (NULLs,
    // first, are all behind it).
    let mut start = None;
    for (index, column) in columns.iter().enumerate() {
        let expression = column.expression();
        let (beyond, equal) = match column.value(key) {
            None => (
                // Past a NULL only when NULLs come first: then every value follows.
                column
                    .nulls_first
                    .then(|| format!("{expression} IS NOT NULL")),
                format!("{expression} IS NULL"),
            ),
            Some(value) => {
                let bound = placeholder(value);
                if index == 0 && !column.descending && column.nulls_first {
                    start = Some(format!("{expression} >= {bound} AND "));
                }
                let comparison = if column.descending { "<" } else { ">" };
                let past = format!("{expression} {comparison} {bound}");
                let beyond = if column.key == SortKey::LastActivity && !column.nulls_first {
                    format!("({past} OR {expression} IS NULL)")
                } else {
                    past
                };
                (Some(beyond), format!("{expression} = {bound}"))
            }
        };
        if let Some(beyond) = beyond {
            let mut terms = equal_before.clone();
            terms.push(beyond);
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        equal_before.push(equal);
    }
    if alternatives.is_empty() {
        "1 = 0".into()
    } else {
        format!(
            "{}({})",
            start.unwrap_or_default(),
            alternatives.join(" OR ")
        )
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

impl EligibleUserFilter {
    fn purchase_ids(&self) -> &[i64] {
        self.seat_holders
            .as_ref()
            .map(|(ids, _)| ids.as_slice())
            .unwrap_or_default()
    }
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
