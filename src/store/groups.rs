//! Groups and their members.

use super::{
    capped_count, contains_pattern, unique_violation, Db, Dialect, Group, Listed, Member, NewGroup,
    Store, StoreResult, Write, MEMBER_SELECT,
};

impl Store {
    /// Gives a user access to a group or project at `access_level`.
    pub async fn add_membership(
        &self,
        user_id: i64,
        source_type: &str,
        source_id: i64,
        access_level: i32,
        write: Write<'_>,
    ) -> StoreResult<()> {
        in_write_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO members (user_id, source_type, source_id, access_level, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(source_type)
            .bind(source_id)
            .bind(access_level)
            .bind(write.at)
            .execute(&mut *tx)
            .await
            .map_err(|error| unique_violation(error, &[("members_source_type_source_id_user_id_key", "Member already exists")]))?;
            insert_audit!(tx, write.audit, write.at);
        });
        Ok(())
    }

    pub async fn create_group(&self, group: &NewGroup, write: Write<'_>) -> StoreResult<Group> {
        Ok(in_write_tx!(self, tx => {
            let created = sqlx::query_as::<_, Group>(
                "INSERT INTO groups (name, path, description, visibility, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 RETURNING id, name, path, description, visibility, created_at",
            )
            .bind(&group.name)
            .bind(&group.path)
            .bind(&group.description)
            .bind(group.visibility.as_str())
            .bind(write.at)
            .fetch_one(&mut *tx)
            .await
            .map_err(|error| unique_violation(error, &[("groups_path_unique", "path")]))?;
            insert_audit!(tx, write.audit_of(created.id), write.at);
            created
        }))
    }

    pub async fn list_groups(
        &self,
        search: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Listed<Group>> {
        const WHERE: &str =
            "WHERE (CAST($1 AS TEXT) IS NULL OR lower(name) LIKE $1 ESCAPE '\\' OR lower(path) LIKE $1 ESCAPE '\\')";
        let pattern = search.map(contains_pattern);
        let page_sql = format!(
            "SELECT id, name, path, description, visibility, created_at FROM groups {WHERE}
             ORDER BY name ASC, id ASC LIMIT $2 OFFSET $3"
        );
        let count_sql = capped_count(&format!("FROM groups {WHERE}"));
        Ok(Listed::capped(with_pool!(self, pool => {
            page_and_total!(pool, Group, &page_sql, &count_sql, limit, offset, |query| {
                query.bind(&pattern)
            })
        })))
    }

    /// A group by numeric id or by (case-insensitive) path.
    pub async fn find_group(&self, id_or_path: &str) -> StoreResult<Option<Group>> {
        let id: i64 = id_or_path.parse().unwrap_or(0);
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, Group>(
                "SELECT id, name, path, description, visibility, created_at FROM groups
                 WHERE id = $1 OR lower(path) = lower($2) ORDER BY id LIMIT 1",
            )
            .bind(id)
            .bind(id_or_path)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Deletes a group and its memberships.
    pub async fn delete_group(&self, id: i64, write: Write<'_>) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            sqlx::query("DELETE FROM members WHERE source_type = 'Namespace' AND source_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let statement = sqlx::query("DELETE FROM groups WHERE id = $1").bind(id);
            execute_audited!(tx, statement, write)
        }))
    }

    pub async fn group_members(
        &self,
        group_id: i64,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Listed<Member>> {
        let page_sql = format!("{MEMBER_SELECT} ORDER BY m.id LIMIT $2 OFFSET $3");
        let count_sql =
            capped_count("FROM members WHERE source_type = 'Namespace' AND source_id = $1");
        Ok(Listed::capped(with_pool!(self, pool => {
            page_and_total!(pool, Member, &page_sql, &count_sql, limit, offset, |query| {
                query.bind(group_id)
            })
        })))
    }

    pub async fn group_member(&self, group_id: i64, user_id: i64) -> StoreResult<Option<Member>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, Member>(&format!("{MEMBER_SELECT} AND m.user_id = $2"))
            .bind(group_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Changes a group member's access level; false when they are not a member.
    pub async fn set_member_access(
        &self,
        group_id: i64,
        user_id: i64,
        access_level: i32,
        write: Write<'_>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let statement = sqlx::query(
                "UPDATE members SET access_level = $3
                 WHERE source_type = 'Namespace' AND source_id = $1 AND user_id = $2",
            )
            .bind(group_id)
            .bind(user_id)
            .bind(access_level);
            execute_audited!(tx, statement, write)
        }))
    }

    /// Removes a group member (recording `hook` with it); false when they were not one.
    pub async fn remove_member(
        &self,
        group_id: i64,
        user_id: i64,
        write: Write<'_>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let statement = sqlx::query(
                "DELETE FROM members WHERE source_type = 'Namespace' AND source_id = $1 AND user_id = $2",
            )
            .bind(group_id)
            .bind(user_id);
            execute_audited!(tx, statement, write)
        }))
    }

    /// Removes a member unless they are the group's last owner (owners that are bots do not
    /// count): `Ok(Some(true))` removed (recording `write` with it), `Ok(Some(false))` refused
    /// as the last owner, `Ok(None)` not a member. The group row is locked first on
    /// PostgreSQL so that two owners removed at once are checked one after the other (SQLite
    /// write transactions already are).
    pub async fn remove_member_unless_last_owner(
        &self,
        group_id: i64,
        user_id: i64,
        write: Write<'_>,
    ) -> StoreResult<Option<bool>> {
        let lock = match self.dialect() {
            Dialect::Postgres => Some("SELECT id FROM groups WHERE id = $1 FOR UPDATE"),
            Dialect::Sqlite => None,
        };
        Ok(in_write_tx!(self, tx => {
            if let Some(lock) = lock {
                sqlx::query(lock).bind(group_id).execute(&mut *tx).await?;
            }
            let last_owner = sqlx::query_scalar::<_, bool>(
                "SELECT m.access_level = 50 AND NOT EXISTS (
                     SELECT 1 FROM members o JOIN users ou ON ou.id = o.user_id
                     WHERE o.source_type = 'Namespace' AND o.source_id = m.source_id
                       AND o.access_level = 50 AND o.user_id <> m.user_id
                       AND ou.user_type NOT IN ('project_bot', 'service_account'))
                 FROM members m
                 WHERE m.source_type = 'Namespace' AND m.source_id = $1 AND m.user_id = $2",
            )
            .bind(group_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            match last_owner {
                None => None,
                Some(true) => Some(false),
                Some(false) => {
                    let statement = sqlx::query(
                        "DELETE FROM members
                         WHERE source_type = 'Namespace' AND source_id = $1 AND user_id = $2",
                    )
                    .bind(group_id)
                    .bind(user_id);
                    Some(execute_audited!(tx, statement, write))
                }
            }
        }))
    }

    /// Groups whose only owner (access 50) is this user.
    pub async fn groups_solely_owned_by(&self, user_id: i64) -> StoreResult<i64> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM members m
                 WHERE m.source_type = 'Namespace' AND m.user_id = $1 AND m.access_level = 50
                   AND NOT EXISTS (SELECT 1 FROM members o
                        WHERE o.source_type = 'Namespace' AND o.source_id = m.source_id
                          AND o.access_level = 50 AND o.user_id <> m.user_id)",
            )
            .bind(user_id)
            .fetch_one(pool)
            .await?
        }))
    }
}
