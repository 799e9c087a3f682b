//! Who holds a seat: a group's billable members (GitLab's `billable_members` API) and the
//! instance-wide list of billable users with why each one is.

use chrono::NaiveDate;

use super::{
    capped_count, models::search_condition, Db, Listed, Member, Store, StoreResult,
    GUEST_ACCESS_LEVEL,
};
use crate::domain::members::BillableMemberSort;
pub use crate::domain::seats::BillableUser;

/// A group's billable member: the membership, its id, and whether the user is the group's
/// last owner (owners that are bots do not count, as in GitLab).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BillableMember {
    pub membership_id: i64,
    pub is_last_owner: bool,
    #[sqlx(flatten)]
    pub member: Member,
}

/// Which billable users to list (`None` / `false`: not filtered on it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillableUserFilter {
    /// The license is Ultimate (guests do not occupy a seat).
    pub ultimate: bool,
    /// Members of this group only.
    pub group_id: Option<i64>,
    /// Only users whose highest role is exactly this level.
    pub highest_access_level: Option<i32>,
    /// Only users not active since before this day (or never).
    pub inactive_before: Option<NaiveDate>,
}

/// A value bound to a statement whose conditions are built from what is asked.
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
    Level(i32),
    Flag(bool),
    Day(NaiveDate),
}

/// Binds `args` in order (`$1`, `$2`, …).
macro_rules! bind_args {
    ($query:expr, $args:expr) => {
        $args.iter().fold($query, |query, arg| match arg {
            Arg::Text(text) => query.bind(text.clone()),
            Arg::Int(number) => query.bind(*number),
            Arg::Level(level) => query.bind(*level),
            Arg::Flag(flag) => query.bind(*flag),
            Arg::Day(day) => query.bind(*day),
        })
    };
}

/// The columns of a [`BillableMember`] over `members m JOIN users u`.
const BILLABLE_MEMBER_COLUMNS: &str = concat!(
    "m.id AS membership_id, m.access_level, m.created_at AS member_created_at, ",
    u_user_columns!(),
    // CASE, not AND: only an owner's row looks for another owner (SQLite evaluated the
    // subquery for every row, reading a 500,000-member group once per row of the page).
    ", CASE WHEN m.access_level = 50 THEN NOT EXISTS (
        SELECT 1 FROM members o JOIN users ou ON ou.id = o.user_id
        WHERE o.source_type = 'Namespace' AND o.source_id = m.source_id AND o.access_level = 50
          AND o.user_id <> m.user_id
          AND ou.user_type NOT IN ('project_bot', 'service_account')) ELSE FALSE END AS is_last_owner"
);

impl Store {
    /// `FROM … WHERE …` of a group's billable members and its arguments: active humans and
    /// service users holding at least `lowest_level` in the group, optionally matching GitLab's
    /// user search (served by the search indexes, then the membership index).
    fn billable_members_source(
        &self,
        group_id: i64,
        lowest_level: i32,
        search: Option<&str>,
    ) -> (String, Vec<Arg>) {
        let mut texts = Vec::new();
        let search = search
            .map(|term| {
                let condition = search_condition(term, self.dialect(), &mut texts);
                format!(" AND m.user_id IN (SELECT id FROM users WHERE {condition})")
            })
            .unwrap_or_default();
        let mut args: Vec<Arg> = texts.into_iter().map(Arg::Text).collect();
        args.push(Arg::Int(group_id));
        let group = args.len();
        args.push(Arg::Level(lowest_level));
        let level = args.len();
        let source = format!(
            "FROM members m JOIN users u ON u.id = m.user_id
             WHERE m.source_type = 'Namespace' AND m.source_id = ${group}
               AND m.access_level >= ${level}
               AND u.state = 'active' AND u.user_type IN ('human', 'service_user'){search}"
        );
        (source, args)
    }

    /// `GET /groups/:id/billable_members`: one page in GitLab's `sort`.
    pub async fn billable_members(
        &self,
        group_id: i64,
        lowest_level: i32,
        (search, sort): (Option<&str>, BillableMemberSort),
        offset: i64,
        limit: i64,
    ) -> StoreResult<Listed<BillableMember>> {
        let (page_sql, count_sql, args) =
            self.billable_members_sql(group_id, lowest_level, (search, sort));
        Ok(Listed::capped(with_pool!(self, pool => {
            page_and_total!(pool, BillableMember, &page_sql, &count_sql, limit, offset, |query| {
                bind_args!(query, args)
            })
        })))
    }

    /// The page statement of [`Store::billable_members`] without a search (its binds: the
    /// group, the lowest level, the limit, the offset) — what the query-plan tests explain.
    pub fn billable_members_page_sql(&self, sort: BillableMemberSort) -> String {
        self.billable_members_sql(0, 0, (None, sort)).0
    }

    /// The page and count statements of a group's billable members, and their arguments.
    fn billable_members_sql(
        &self,
        group_id: i64,
        lowest_level: i32,
        (search, sort): (Option<&str>, BillableMemberSort),
    ) -> (String, String, Vec<Arg>) {
        let (source, args) = self.billable_members_source(group_id, lowest_level, search);
        // `m.user_id` (equal to `u.id`) so that the id order is the members' unique index on
        // (source_type, source_id, user_id): a page of a large group is read, not sorted.
        let order = match sort {
            BillableMemberSort::IdAsc | BillableMemberSort::Unordered => "m.user_id ASC",
            BillableMemberSort::NameAsc => "lower(u.name) ASC, m.user_id ASC",
            BillableMemberSort::NameDesc => "lower(u.name) DESC, m.user_id ASC",
            BillableMemberSort::LastActivityOnAsc => {
                "u.last_activity_on ASC NULLS FIRST, m.user_id DESC"
            }
            BillableMemberSort::LastActivityOnDesc => {
                "u.last_activity_on DESC NULLS LAST, m.user_id ASC"
            }
        };
        let page_sql = format!(
            "SELECT {BILLABLE_MEMBER_COLUMNS} {source} ORDER BY {order} LIMIT ${} OFFSET ${}",
            args.len() + 1,
            args.len() + 2
        );
        let count_sql = capped_count(&source);
        (page_sql, count_sql, args)
    }

    /// One billable member of a group, if the user is one.
    pub async fn billable_member(
        &self,
        group_id: i64,
        lowest_level: i32,
        user_id: i64,
    ) -> StoreResult<Option<BillableMember>> {
        let (source, mut args) = self.billable_members_source(group_id, lowest_level, None);
        args.push(Arg::Int(user_id));
        let sql = format!(
            "SELECT {BILLABLE_MEMBER_COLUMNS} {source} AND m.user_id = ${}",
            args.len()
        );
        Ok(with_pool!(self, pool => {
            bind_args!(sqlx::query_as::<_, BillableMember>(&sql), args)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// `FROM … WHERE …` of the billable users `filter` asks for, and its arguments. The same
    /// rule as the billable count (GitLab's `User.billable`).
    fn billable_users_source(&self, filter: &BillableUserFilter) -> (String, Vec<Arg>) {
        let mut args = vec![Arg::Flag(filter.ultimate), Arg::Level(GUEST_ACCESS_LEVEL)];
        let mut conditions = vec![super::BILLABLE.to_string()];
        if let Some(group_id) = filter.group_id {
            args.push(Arg::Int(group_id));
            conditions.push(format!(
                "u.id IN (SELECT g.user_id FROM members g
                          WHERE g.source_type = 'Namespace' AND g.source_id = ${})",
                args.len()
            ));
        }
        if let Some(level) = filter.highest_access_level {
            args.push(Arg::Level(level));
            conditions.push(format!(
                "(SELECT MAX(h.access_level) FROM members h WHERE h.user_id = u.id) = ${}",
                args.len()
            ));
        }
        if let Some(day) = filter.inactive_before {
            args.push(Arg::Day(day));
            conditions.push(format!(
                "(u.last_activity_on IS NULL OR u.last_activity_on < ${})",
                args.len()
            ));
        }
        (
            format!("FROM users u WHERE {}", conditions.join(" AND ")),
            args,
        )
    }

    /// The statement of one page of seat holders in id order after `after_id` (its last
    /// binds: the cursor, the limit), and its arguments.
    fn billable_users_page_sql(
        &self,
        filter: &BillableUserFilter,
        after_id: i64,
    ) -> (String, Vec<Arg>) {
        let (source, mut args) = self.billable_users_source(filter);
        args.push(Arg::Int(after_id));
        let sql = format!(
            "SELECT {BILLABLE_USER_COLUMNS} {source} AND u.id > ${} ORDER BY u.id LIMIT ${}",
            args.len(),
            args.len() + 1
        );
        (sql, args)
    }

    /// The seat holders after the user `after_id` in id order (the primary key serves any
    /// depth), at most `limit` of them, and whether more follow.
    pub async fn billable_users_after(
        &self,
        filter: &BillableUserFilter,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<(Vec<BillableUser>, bool)> {
        let (sql, args) = self.billable_users_page_sql(filter, after_id);
        let mut rows = with_pool!(self, pool => {
            bind_args!(sqlx::query_as::<_, BillableUser>(&sql), args)
                .bind(limit.saturating_add(1))
                .fetch_all(pool)
                .await?
        });
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok((rows, more))
    }

    /// How many seat holders `filter` matches, up to the count cap (`None` above it).
    pub async fn count_billable_users_matching(
        &self,
        filter: &BillableUserFilter,
    ) -> StoreResult<Option<i64>> {
        let (source, args) = self.billable_users_source(filter);
        let sql = capped_count(&source);
        let counted = with_pool!(self, pool => {
            bind_args!(sqlx::query_scalar::<_, i64>(&sql), args)
                .fetch_one(pool)
                .await?
        });
        Ok((counted <= super::COUNT_CAP).then_some(counted))
    }
}

/// The columns of a [`BillableUser`] over `users u`.
const BILLABLE_USER_COLUMNS: &str = concat!(
    u_user_columns!(),
    ", (SELECT MAX(h.access_level) FROM members h WHERE h.user_id = u.id) AS highest_access_level",
    ", (SELECT COUNT(*) FROM members c WHERE c.user_id = u.id AND c.source_type = 'Namespace') AS groups"
);
