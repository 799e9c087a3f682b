//! Dormant users (GitLab's `User.dormant` and `User.with_no_activity` scopes) and the
//! exclusions the job never touches.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Db, NewAudit, Store, StoreResult, User, BILLABLE, COUNT_CAP, GUEST_ACCESS_LEVEL, USER_COLUMNS,
};

/// Active humans and service users last active on or before `$1`, or never active and created
/// on or before `$2`, and not excluded (themselves, or as a member of an excluded group).
const DORMANT: &str = "u.state = 'active' AND u.user_type IN ('human', 'service_user')
     AND ((u.last_activity_on IS NOT NULL AND u.last_activity_on <= $1)
          OR (u.last_activity_on IS NULL AND u.created_at <= $2))
     AND NOT EXISTS (SELECT 1 FROM dormant_exclusions x WHERE x.kind = 'user' AND x.subject_id = u.id)
     AND NOT EXISTS (SELECT 1 FROM members m JOIN dormant_exclusions g
                     ON g.kind = 'group' AND g.subject_id = m.source_id AND m.source_type = 'Namespace'
                     WHERE m.user_id = u.id)";

/// One exclusion: a user or a group (its members), by id.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DormantExclusion {
    pub kind: String,
    pub subject_id: i64,
}

impl Store {
    /// A page of the dormant users in id order after `after` (what the next run takes first).
    pub async fn dormant_users(
        &self,
        active_by: NaiveDate,
        created_by: DateTime<Utc>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<User>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, User>(&format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE {DORMANT} AND u.id > $3 ORDER BY u.id LIMIT $4"
            ))
            .bind(active_by)
            .bind(created_by)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// How many users are dormant, and how many of them hold a seat (counted up to
    /// [`COUNT_CAP`] + 1 each).
    pub async fn count_dormant(
        &self,
        active_by: NaiveDate,
        created_by: DateTime<Utc>,
        ultimate: bool,
    ) -> StoreResult<(i64, i64)> {
        // The billable rule binds its own $1/$2; renumbered past the dormancy bounds.
        let billable = BILLABLE.replace("$1", "$3").replace("$2", "$4");
        Ok(with_pool!(self, pool => {
            let all: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM users u WHERE {DORMANT} LIMIT {}) AS capped",
                COUNT_CAP + 1
            ))
            .bind(active_by)
            .bind(created_by)
            .fetch_one(pool)
            .await?;
            let seats: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM users u WHERE {DORMANT} AND {billable} LIMIT {}) AS capped",
                COUNT_CAP + 1
            ))
            .bind(active_by)
            .bind(created_by)
            .bind(ultimate)
            .bind(GUEST_ACCESS_LEVEL)
            .fetch_one(pool)
            .await?;
            (all, seats)
        }))
    }

    /// Deactivates these users, each still active, with its audit (and hook) event, in one
    /// transaction; the last active administrator is left active. Returns who was.
    pub async fn deactivate_dormant(
        &self,
        users: &[(i64, NewAudit)],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        Ok(in_write_tx!(self, tx => {
            let mut done = Vec::new();
            for (id, audit) in users {
                let admin: Option<bool> = sqlx::query_scalar(
                    "UPDATE users SET state = 'deactivated', updated_at = $2
                     WHERE id = $1 AND state = 'active' RETURNING admin",
                )
                .bind(id)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
                match admin {
                    None => continue,
                    Some(true) => {
                        // Never the last one: put them back rather than fail the batch.
                        let others: Option<i64> = sqlx::query_scalar(
                            "SELECT id FROM users WHERE admin AND state = 'active' LIMIT 1",
                        )
                        .fetch_optional(&mut *tx)
                        .await?;
                        if others.is_none() {
                            sqlx::query("UPDATE users SET state = 'active' WHERE id = $1")
                                .bind(id)
                                .execute(&mut *tx)
                                .await?;
                            continue;
                        }
                    }
                    Some(false) => {}
                }
                insert_audit!(tx, Some(audit), at);
                done.push(*id);
            }
            done
        }))
    }

    /// The exclusions, users first.
    pub async fn dormant_exclusions(&self) -> StoreResult<Vec<DormantExclusion>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, DormantExclusion>(
                "SELECT kind, subject_id FROM dormant_exclusions ORDER BY kind DESC, subject_id",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Replaces the exclusions with `users` and `groups`, audited, in one transaction.
    pub async fn replace_dormant_exclusions(
        &self,
        users: &[i64],
        groups: &[i64],
        audit: &NewAudit,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        in_write_tx!(self, tx => {
            sqlx::query("DELETE FROM dormant_exclusions")
                .execute(&mut *tx)
                .await?;
            for (kind, ids) in [("user", users), ("group", groups)] {
                for id in ids {
                    sqlx::query(
                        "INSERT INTO dormant_exclusions (kind, subject_id, created_at) VALUES ($1, $2, $3)
                         ON CONFLICT (kind, subject_id) DO NOTHING",
                    )
                    .bind(kind)
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            insert_audit!(tx, Some(audit), at);
        });
        Ok(())
    }
}
