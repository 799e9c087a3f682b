//! The identity provider's rows: SCIM identities (one per user, found by `extern_uid`
//! case-insensitively), the one instance SCIM token (a digest), and SCIM groups with their
//! members. Every change is one transaction with its audit event (and hook event).

use chrono::{DateTime, Utc};

use crate::domain::users::UserState;

use super::{
    placeholders, unique_violation, Db, NewAudit, NewUser, Store, StoreError, StoreResult, User,
    Write, USER_COLUMNS,
};

/// Values bound per statement when a list of ids or uids is looked up or inserted.
const PER_STATEMENT: usize = 500;

/// Adds members (ids not yet in the group); the ids added.
macro_rules! insert_members {
    ($tx:expr, $group_id:expr, $chunk:expr, $at:expr) => {{
        let values = (0..$chunk.len())
            .map(|index| format!("($1, ${}, $2)", index + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO scim_group_members (scim_group_id, user_id, created_at) VALUES {values}
             ON CONFLICT (scim_group_id, user_id) DO NOTHING RETURNING user_id"
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql).bind($group_id).bind($at);
        for id in $chunk {
            query = query.bind(*id);
        }
        query.fetch_all(&mut *$tx).await?
    }};
}

/// Removes members; the ids removed.
macro_rules! delete_members {
    ($tx:expr, $group_id:expr, $chunk:expr) => {{
        let sql = format!(
            "DELETE FROM scim_group_members WHERE scim_group_id = $1 AND user_id IN ({}) RETURNING user_id",
            placeholders(2, $chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql).bind($group_id);
        for id in $chunk {
            query = query.bind(*id);
        }
        query.fetch_all(&mut *$tx).await?
    }};
}

/// A SCIM identity with what the SCIM `User` entity shows of its user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ScimUser {
    pub extern_uid: String,
    pub active: bool,
    pub user_id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub state: UserState,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
}

const SCIM_USER_SELECT: &str = "SELECT i.extern_uid, i.active, u.id AS user_id, u.username, u.name, u.email, u.state, u.admin, u.created_at
     FROM scim_identities i JOIN users u ON u.id = i.user_id";

/// [`SCIM_USER_SELECT`] for a page of every identity: `+i.user_id` keeps the planner from
/// walking users and sorting; identities are read in id order and stop at the page.
const SCIM_USER_PAGE: &str = "SELECT i.extern_uid, i.active, u.id AS user_id, u.username, u.name, u.email, u.state, u.admin, u.created_at
     FROM scim_identities i JOIN users u ON u.id = +i.user_id";

/// A SCIM group.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ScimGroup {
    pub id: i64,
    pub scim_id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub add_on_purchase_id: Option<i64>,
    pub members_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SCIM_GROUP_SELECT: &str = "SELECT g.id, g.scim_id, g.display_name, g.external_id, g.add_on_purchase_id,
            (SELECT COUNT(*) FROM scim_group_members m WHERE m.scim_group_id = g.id) AS members_count,
            g.created_at, g.updated_at
     FROM scim_groups g";

/// A member of a SCIM group, as the group entity lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ScimMember {
    pub user_id: i64,
    pub extern_uid: Option<String>,
    pub username: String,
    pub name: String,
}

/// What a group change did: the users who joined and who left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChange {
    pub added: Vec<i64>,
    pub removed: Vec<i64>,
}

/// A group change, applied in one transaction.
#[derive(Debug, Clone, Default)]
pub struct GroupUpdate<'a> {
    pub display_name: Option<&'a str>,
    /// `Some(None)` clears it.
    pub external_id: Option<Option<&'a str>>,
    /// Exactly these members (PUT, or PATCH `replace`), before `add` and `remove`.
    pub replace: Option<&'a [i64]>,
    pub add: &'a [i64],
    pub remove: &'a [i64],
}

impl Store {
    /// When the instance SCIM token was made, if there is one.
    pub async fn scim_token_created_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, DateTime<Utc>>("SELECT created_at FROM scim_tokens WHERE id = 1")
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Whether `digest` is the instance SCIM token's.
    pub async fn scim_token_matches(&self, digest: &str) -> StoreResult<bool> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM scim_tokens WHERE token_digest = $1")
                .bind(digest)
                .fetch_one(pool)
                .await?
                > 0
        }))
    }

    /// Stores the instance SCIM token's digest: a first token only when there is none
    /// (`replace` false; false when one exists), or a new one in place of the old.
    pub async fn save_scim_token(
        &self,
        digest: &str,
        replace: bool,
        write: Write<'_>,
    ) -> StoreResult<bool> {
        let sql = if replace {
            "INSERT INTO scim_tokens (id, token_digest, created_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET token_digest = excluded.token_digest, created_at = excluded.created_at"
        } else {
            "INSERT INTO scim_tokens (id, token_digest, created_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING"
        };
        Ok(in_write_tx!(self, tx => {
            execute_audited!(tx, sqlx::query(sql).bind(digest).bind(write.at), write)
        }))
    }

    /// The identity with this `extern_uid` (any case).
    pub async fn scim_user_by_extern_uid(&self, extern_uid: &str) -> StoreResult<Option<ScimUser>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, ScimUser>(&format!(
                "{SCIM_USER_SELECT} WHERE lower(i.extern_uid) = lower($1)"
            ))
            .bind(extern_uid)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// The identity of a user, if they have one.
    pub async fn scim_user_of(&self, user_id: i64) -> StoreResult<Option<ScimUser>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, ScimUser>(&format!("{SCIM_USER_SELECT} WHERE i.user_id = $1"))
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A page of every identity (in the order they were made) and how many there are.
    pub async fn scim_users_page(
        &self,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<ScimUser>, i64)> {
        Ok(with_pool!(self, pool => {
            let rows = sqlx::query_as::<_, ScimUser>(&format!(
                "{SCIM_USER_PAGE} ORDER BY i.id LIMIT $1 OFFSET $2"
            ))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM scim_identities")
                .fetch_one(pool)
                .await?;
            (rows, total)
        }))
    }

    /// The user with this e-mail address (any case).
    pub async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, User>(&format!(
                "SELECT {} FROM users WHERE lower(email) = lower($1)",
                super::USER_COLUMNS
            ))
            .bind(email)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Links `extern_uid` to a user: the existing `user_id`, or `new` created in the same
    /// transaction. A taken `extern_uid`, a user who has an identity already, or a taken
    /// username or e-mail is a [`super::StoreError::Conflict`] in GitLab's words.
    pub async fn provision_scim_user(
        &self,
        extern_uid: &str,
        user: Result<i64, &NewUser>,
        write: Write<'_>,
    ) -> StoreResult<ScimUser> {
        let identity_conflicts = [
            (
                "scim_identities_extern_uid",
                "Extern uid has already been taken",
            ),
            ("scim_identities.user_id", "User has already been taken"),
            ("scim_identities_user_id", "User has already been taken"),
        ];
        Ok(in_write_tx!(self, tx => {
            let user_id = match user {
                Ok(user_id) => user_id,
                Err(new) => {
                    let user_id = insert_user!(tx, new, write.at).id;
                    insert_audit!(tx, write.audit_of(user_id), write.at);
                    user_id
                }
            };
            sqlx::query(
                "INSERT INTO scim_identities (user_id, extern_uid, active, created_at, updated_at)
                 VALUES ($1, $2, TRUE, $3, $3)",
            )
            .bind(user_id)
            .bind(extern_uid)
            .bind(write.at)
            .execute(&mut *tx)
            .await
            .map_err(|error| unique_violation(error, &identity_conflicts))?;
            sqlx::query_as::<_, ScimUser>(&format!("{SCIM_USER_SELECT} WHERE i.user_id = $1"))
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?
        }))
    }

    /// Sets an identity active or not and, when `state` is given, its user's state, with the
    /// audit event(s). Refuses (last administrator) leaving the instance without an active
    /// administrator. False when the user no longer exists.
    pub async fn set_scim_active(
        &self,
        user_id: i64,
        active: bool,
        state: Option<UserState>,
        audits: &[NewAudit],
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let changed = sqlx::query("UPDATE scim_identities SET active = $2, updated_at = $3 WHERE user_id = $1")
                .bind(user_id)
                .bind(active)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if changed {
                if let Some(state) = state {
                    let admin: Option<bool> = sqlx::query_scalar(
                        "UPDATE users SET state = $2, updated_at = $3 WHERE id = $1 RETURNING admin",
                    )
                    .bind(user_id)
                    .bind(state.as_str())
                    .bind(at)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if admin == Some(true) && state != UserState::Active {
                        keep_an_active_admin!(tx, at);
                    }
                }
                for audit in audits {
                    insert_audit!(tx, Some(audit), at);
                }
            }
            changed
        }))
    }

    /// Gives an identity a new `extern_uid` (a taken one is a conflict).
    pub async fn relink_scim_user(
        &self,
        user_id: i64,
        extern_uid: &str,
        write: Write<'_>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let statement = sqlx::query(
                "UPDATE scim_identities SET extern_uid = $2, updated_at = $3 WHERE user_id = $1",
            )
            .bind(user_id)
            .bind(extern_uid)
            .bind(write.at);
            let changed = statement
                .execute(&mut *tx)
                .await
                .map_err(|error| unique_violation(error, &[("scim_identities_extern_uid", "Extern uid has already been taken")]))?
                .rows_affected()
                > 0;
            if changed {
                insert_audit!(tx, write.audit, write.at);
            }
            changed
        }))
    }

    /// The user ids of these `extern_uid`s (any case), keyed by the lower-case uid.
    pub async fn scim_user_ids(&self, extern_uids: &[String]) -> StoreResult<Vec<(String, i64)>> {
        let mut found = Vec::with_capacity(extern_uids.len());
        for chunk in extern_uids.chunks(PER_STATEMENT) {
            let sql = format!(
                "SELECT lower(extern_uid), user_id FROM scim_identities WHERE lower(extern_uid) IN ({})",
                placeholders(1, chunk.len())
            );
            let rows = with_pool!(self, pool => {
                let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
                for uid in chunk {
                    query = query.bind(uid.to_lowercase());
                }
                query.fetch_all(pool).await?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// A page of SCIM groups (by display name, any case, when given) and how many match.
    pub async fn scim_groups_page(
        &self,
        display_name: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<ScimGroup>, i64)> {
        // A name matches one group at most (unique index): no order to keep.
        let (condition, order) = if display_name.is_some() {
            ("WHERE lower(g.display_name) = lower($3)", "")
        } else {
            ("WHERE $3 IS NULL", "ORDER BY g.id")
        };
        Ok(with_pool!(self, pool => {
            let rows = sqlx::query_as::<_, ScimGroup>(&format!(
                "{SCIM_GROUP_SELECT} {condition} {order} LIMIT $1 OFFSET $2"
            ))
            .bind(limit)
            .bind(offset)
            .bind(display_name)
            .fetch_all(pool)
            .await?;
            let total = sqlx::query_scalar::<_, i64>(&format!(
                "SELECT COUNT(*) FROM scim_groups g {}",
                condition.replace("$3", "$1")
            ))
            .bind(display_name)
            .fetch_one(pool)
            .await?;
            (rows, total)
        }))
    }

    /// The group with this SCIM id.
    pub async fn scim_group(&self, scim_id: &str) -> StoreResult<Option<ScimGroup>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, ScimGroup>(&format!("{SCIM_GROUP_SELECT} WHERE g.scim_id = $1"))
                .bind(scim_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn scim_group_by_id(&self, id: i64) -> StoreResult<Option<ScimGroup>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, ScimGroup>(&format!("{SCIM_GROUP_SELECT} WHERE g.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The groups linked to a purchase or not, newest first (the page lists them all).
    pub async fn all_scim_groups(&self) -> StoreResult<Vec<ScimGroup>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, ScimGroup>(&format!("{SCIM_GROUP_SELECT} ORDER BY g.id DESC LIMIT 500"))
                .fetch_all(pool)
                .await?
        }))
    }

    /// A group's members, in id order.
    pub async fn scim_group_members(&self, group_id: i64) -> StoreResult<Vec<ScimMember>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, ScimMember>(
                "SELECT u.id AS user_id, i.extern_uid, u.username, u.name
                 FROM scim_group_members m JOIN users u ON u.id = m.user_id
                 LEFT JOIN scim_identities i ON i.user_id = u.id
                 WHERE m.scim_group_id = $1 ORDER BY m.user_id",
            )
            .bind(group_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The groups a user belongs to that are linked to a purchase: (group id, purchase id).
    pub async fn linked_scim_groups_of(&self, user_id: i64) -> StoreResult<Vec<(i64, i64)>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT g.id, g.add_on_purchase_id FROM scim_group_members m
                 JOIN scim_groups g ON g.id = m.scim_group_id
                 WHERE m.user_id = $1 AND g.add_on_purchase_id IS NOT NULL",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Of `user_ids`, those still in some group linked to `purchase_id`.
    pub async fn still_in_linked_group(
        &self,
        purchase_id: i64,
        user_ids: &[i64],
    ) -> StoreResult<Vec<i64>> {
        let mut found = Vec::new();
        for chunk in user_ids.chunks(PER_STATEMENT) {
            let sql = format!(
                "SELECT DISTINCT m.user_id FROM scim_group_members m
                 JOIN scim_groups g ON g.id = m.scim_group_id
                 WHERE g.add_on_purchase_id = $1 AND m.user_id IN ({})",
                placeholders(2, chunk.len())
            );
            let rows = with_pool!(self, pool => {
                let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(purchase_id);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(pool).await?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// Members of a linked group who may hold a seat of its purchase and hold none: the
    /// shortfall (at most `limit` of them, in id order) and how many there are.
    pub async fn scim_group_shortfall(
        &self,
        group_id: i64,
        purchase_id: i64,
        limit: i64,
    ) -> StoreResult<(Vec<ScimMember>, i64)> {
        let source = format!(
            "FROM scim_group_members m JOIN users u ON u.id = m.user_id
             LEFT JOIN scim_identities i ON i.user_id = u.id
             WHERE m.scim_group_id = $1
               AND NOT EXISTS (SELECT 1 FROM user_add_on_assignments a
                               WHERE a.add_on_purchase_id = $2 AND a.user_id = u.id)
               AND {}",
            super::eligible_users::eligible_where(
                "(SELECT p.namespace_id FROM add_on_purchases p WHERE p.id = $2)"
            )
        );
        Ok(with_pool!(self, pool => {
            let rows = sqlx::query_as::<_, ScimMember>(&format!(
                "SELECT u.id AS user_id, i.extern_uid, u.username, u.name {source} ORDER BY m.user_id LIMIT $3"
            ))
            .bind(group_id)
            .bind(purchase_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let total = sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) {source}"))
                .bind(group_id)
                .bind(purchase_id)
                .fetch_one(pool)
                .await?;
            (rows, total)
        }))
    }

    /// Creates a group with its members (a taken display name is a conflict).
    pub async fn create_scim_group(
        &self,
        scim_id: &str,
        display_name: &str,
        external_id: Option<&str>,
        members: &[i64],
        write: Write<'_>,
    ) -> StoreResult<i64> {
        Ok(in_write_tx!(self, tx => {
            let group_id = sqlx::query_scalar::<_, i64>(
                "INSERT INTO scim_groups (scim_id, display_name, external_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
            )
            .bind(scim_id)
            .bind(display_name)
            .bind(external_id)
            .bind(write.at)
            .fetch_one(&mut *tx)
            .await
            .map_err(|error| unique_violation(error, &[("scim_groups_display_name", "Display name has already been taken")]))?;
            for chunk in members.chunks(PER_STATEMENT) {
                insert_members!(tx, group_id, chunk, write.at);
            }
            insert_audit!(tx, write.audit_of(group_id), write.at);
            group_id
        }))
    }

    /// Changes a group in one transaction; who joined and who left.
    pub async fn update_scim_group(
        &self,
        group_id: i64,
        update: &GroupUpdate<'_>,
        write: Write<'_>,
    ) -> StoreResult<MembershipChange> {
        Ok(in_write_tx!(self, tx => {
            if let Some(name) = update.display_name {
                sqlx::query("UPDATE scim_groups SET display_name = $2 WHERE id = $1")
                    .bind(group_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(|error| unique_violation(error, &[("scim_groups_display_name", "Display name has already been taken")]))?;
            }
            if let Some(external_id) = update.external_id {
                sqlx::query("UPDATE scim_groups SET external_id = $2 WHERE id = $1")
                    .bind(group_id)
                    .bind(external_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut change = MembershipChange::default();
            if let Some(wanted) = update.replace {
                let current: Vec<i64> = sqlx::query_scalar(
                    "SELECT user_id FROM scim_group_members WHERE scim_group_id = $1",
                )
                .bind(group_id)
                .fetch_all(&mut *tx)
                .await?;
                let wanted_set: std::collections::HashSet<i64> = wanted.iter().copied().collect();
                let leaving: Vec<i64> =
                    current.into_iter().filter(|id| !wanted_set.contains(id)).collect();
                for chunk in leaving.chunks(PER_STATEMENT) {
                    change.removed.extend(delete_members!(tx, group_id, chunk));
                }
                for chunk in wanted.chunks(PER_STATEMENT) {
                    change.added.extend(insert_members!(tx, group_id, chunk, write.at));
                }
            }
            for chunk in update.add.chunks(PER_STATEMENT) {
                change.added.extend(insert_members!(tx, group_id, chunk, write.at));
            }
            for chunk in update.remove.chunks(PER_STATEMENT) {
                change.removed.extend(delete_members!(tx, group_id, chunk));
            }
            sqlx::query("UPDATE scim_groups SET updated_at = $2 WHERE id = $1")
                .bind(group_id)
                .bind(write.at)
                .execute(&mut *tx)
                .await?;
            insert_audit!(tx, write.audit, write.at);
            change
        }))
    }

    /// Links a group to a purchase (or unlinks it).
    pub async fn link_scim_group(
        &self,
        group_id: i64,
        purchase_id: Option<i64>,
        write: Write<'_>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            execute_audited!(
                tx,
                sqlx::query("UPDATE scim_groups SET add_on_purchase_id = $2, updated_at = $3 WHERE id = $1")
                    .bind(group_id)
                    .bind(purchase_id)
                    .bind(write.at),
                write
            )
        }))
    }

    /// The plans of the SCIM API's lookups (`tests/it/scale.rs` checks each uses its index):
    /// an identity by `extern_uid`, by user, a page of identities, a group by name and by id.
    pub async fn scim_plans(&self) -> StoreResult<Vec<(&'static str, String)>> {
        let text = |value: &str| vec![value.to_string()];
        Ok(vec![
            (
                "by extern_uid",
                self.query_plan(
                    &format!("{SCIM_USER_SELECT} WHERE lower(i.extern_uid) = lower($1)"),
                    &text("uid-1"),
                    &[],
                )
                .await?,
            ),
            (
                "by user",
                self.query_plan(
                    &format!("{SCIM_USER_SELECT} WHERE i.user_id = $1"),
                    &[],
                    &[1],
                )
                .await?,
            ),
            (
                "a page",
                self.query_plan(
                    &format!("{SCIM_USER_PAGE} ORDER BY i.id LIMIT $1 OFFSET $2"),
                    &[],
                    &[20, 100],
                )
                .await?,
            ),
            (
                "a group by name",
                self.query_plan(
                    &format!(
                        "{SCIM_GROUP_SELECT} WHERE lower(g.display_name) = lower($1) LIMIT 20"
                    ),
                    &text("Engineering"),
                    &[],
                )
                .await?,
            ),
            (
                "a group by id",
                self.query_plan(
                    &format!("{SCIM_GROUP_SELECT} WHERE g.scim_id = $1"),
                    &text("x"),
                    &[],
                )
                .await?,
            ),
        ])
    }

    /// Deletes a group; its members' ids.
    pub async fn delete_scim_group(
        &self,
        group_id: i64,
        write: Write<'_>,
    ) -> StoreResult<Vec<i64>> {
        Ok(in_write_tx!(self, tx => {
            let members: Vec<i64> = sqlx::query_scalar(
                "SELECT user_id FROM scim_group_members WHERE scim_group_id = $1",
            )
            .bind(group_id)
            .fetch_all(&mut *tx)
            .await?;
            execute_audited!(tx, sqlx::query("DELETE FROM scim_groups WHERE id = $1").bind(group_id), write);
            members
        }))
    }
}
