//! The people a bulk GitLab Duo assignment considers (a group's members, or users named by
//! username or e-mail), with whether each may hold the purchase's seat and holds one, and the
//! inactive holders a reclaim takes seats from.

use chrono::NaiveDate;

use super::eligible_users::eligible_where;
use super::{placeholders, Db, Store, StoreResult, User, U_USER_COLUMNS};
use crate::domain::seats::SeatCandidate;

/// The columns of a [`SeatCandidate`] over `users u`, for the purchase `$1` whose namespace
/// is `$2`.
fn candidate_columns() -> String {
    format!(
        "u.id AS user_id, u.username, u.email, ({}) AS eligible,
         EXISTS (SELECT 1 FROM user_add_on_assignments a
                 WHERE a.add_on_purchase_id = $1 AND a.user_id = u.id) AS seated",
        eligible_where("$2")
    )
}

/// How many names one look-up statement binds (SQLite allows 32,766 parameters).
const NAMES_PER_STATEMENT: usize = 500;

impl Store {
    /// The members of `group_id` from `min_level` up, in id order, as candidates for seats of
    /// the purchase `purchase_id` (namespace `namespace_id`): whether each may hold one and
    /// whether they do. Reached through the group's member index.
    /// At most `limit` of them.
    pub async fn group_seat_candidates(
        &self,
        (purchase_id, namespace_id): (i64, Option<i64>),
        (group_id, min_level): (i64, i32),
        limit: i64,
    ) -> StoreResult<Vec<SeatCandidate>> {
        let sql = format!(
            "SELECT {} FROM members m JOIN users u ON u.id = m.user_id
             WHERE m.source_type = 'Namespace' AND m.source_id = $3 AND m.access_level >= $4
             ORDER BY m.user_id LIMIT $5",
            candidate_columns()
        );
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, SeatCandidate>(&sql)
                .bind(purchase_id)
                .bind(namespace_id)
                .bind(group_id)
                .bind(min_level)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The users named (by username or e-mail, ignoring case) among `names`, as candidates
    /// for seats of the purchase; names nobody has are simply absent.
    pub async fn named_seat_candidates(
        &self,
        (purchase_id, namespace_id): (i64, Option<i64>),
        names: &[String],
    ) -> StoreResult<Vec<SeatCandidate>> {
        let mut found = Vec::new();
        for chunk in names.chunks(NAMES_PER_STATEMENT) {
            let list = placeholders(3, chunk.len());
            let sql = format!(
                "SELECT {} FROM users u WHERE lower(u.username) IN ({list})
                 UNION SELECT {} FROM users u WHERE lower(u.email) IN ({list})",
                candidate_columns(),
                candidate_columns()
            );
            let rows = with_pool!(self, pool => {
                let mut query = sqlx::query_as::<_, SeatCandidate>(&sql)
                    .bind(purchase_id)
                    .bind(namespace_id);
                for name in chunk {
                    query = query.bind(name.to_lowercase());
                }
                query.fetch_all(pool).await?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// The seat holders of a purchase not active since before `inactive_before` (or never),
    /// oldest assignment first.
    pub async fn inactive_seat_holders(
        &self,
        purchase_id: i64,
        inactive_before: NaiveDate,
    ) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {U_USER_COLUMNS} FROM user_add_on_assignments a JOIN users u ON u.id = a.user_id
             WHERE a.add_on_purchase_id = $1
               AND (u.last_activity_on IS NULL OR u.last_activity_on < $2)
             ORDER BY a.created_at, a.id"
        );
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, User>(&sql)
                .bind(purchase_id)
                .bind(inactive_before)
                .fetch_all(pool)
                .await?
        }))
    }
}
