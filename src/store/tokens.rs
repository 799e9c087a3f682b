//! Personal access tokens.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    capped_count, Db, Listed, NewToken, Store, StoreError, StoreResult, TokenFilter, TokenRow,
    TokenWithUser, Write, TOKEN_WITH_USER_COLUMNS,
};

impl Store {
    /// The token with this digest and its owner.
    pub async fn find_token(&self, digest: &str) -> StoreResult<Option<TokenWithUser>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, TokenWithUser>(&format!(
                "SELECT {TOKEN_WITH_USER_COLUMNS}
                 FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token_digest = $1",
            ))
            .bind(digest)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Records a token's use unless it was recorded within `interval`. Not announced as a
    /// change: nothing cached shows it, and the token API reads it from here.
    pub async fn touch_token(
        &self,
        token_id: i64,
        now: DateTime<Utc>,
        interval: chrono::TimeDelta,
    ) -> StoreResult<()> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE personal_access_tokens SET last_used_at = $2
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(token_id)
            .bind(now)
            .bind(now - interval)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn create_token(
        &self,
        user_id: i64,
        token: &NewToken,
        write: Write<'_>,
    ) -> StoreResult<i64> {
        Ok(in_write_tx!(self, tx => {
            let id = insert_token!(tx, user_id, token, write.at);
            insert_audit!(tx, write.audit_targeting(id), write.at);
            id
        }))
    }

    const TOKEN_COLUMNS: &'static str =
        "id, user_id, name, scopes, expires_at, revoked, created_at, last_used_at";

    pub async fn find_token_by_id(&self, id: i64) -> StoreResult<Option<TokenRow>> {
        let sql = format!(
            "SELECT {} FROM personal_access_tokens WHERE id = $1",
            Self::TOKEN_COLUMNS
        );
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, TokenRow>(&sql).bind(id).fetch_optional(pool).await?
        }))
    }

    pub async fn list_tokens(
        &self,
        filter: &TokenFilter,
        today: NaiveDate,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Listed<TokenRow>> {
        const WHERE: &str = "WHERE ($1 = 0 OR user_id = $1)
               AND (NOT $2 OR revoked = $3)
               AND (NOT $4 OR ((NOT revoked AND (expires_at IS NULL OR expires_at > $6)) = $5))";
        let page_sql = format!(
            "SELECT {} FROM personal_access_tokens {WHERE} ORDER BY id LIMIT $7 OFFSET $8",
            Self::TOKEN_COLUMNS
        );
        let count_sql = capped_count(&format!("FROM personal_access_tokens {WHERE}"));
        Ok(Listed::capped(with_pool!(self, pool => {
            page_and_total!(pool, TokenRow, &page_sql, &count_sql, limit, offset, |query| {
                query
                    .bind(filter.user_id.unwrap_or(0))
                    .bind(filter.revoked.is_some())
                    .bind(filter.revoked.unwrap_or(false))
                    .bind(filter.active.is_some())
                    .bind(filter.active.unwrap_or(false))
                    .bind(today)
            })
        })))
    }

    /// Revokes a token; false when there was none with this id.
    pub async fn revoke_token(&self, token_id: i64, write: Write<'_>) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let statement = sqlx::query(
                "UPDATE personal_access_tokens SET revoked = TRUE WHERE id = $1 AND NOT revoked",
            )
            .bind(token_id);
            execute_audited!(tx, statement, write)
        }))
    }

    /// Rotates a token in one transaction: revokes it (false when it was revoked already,
    /// nothing written) and stores its successor, which names it as its previous token.
    pub async fn rotate_token(
        &self,
        token_id: i64,
        user_id: i64,
        successor: &NewToken,
        write: Write<'_>,
    ) -> StoreResult<Option<i64>> {
        Ok(in_write_tx!(self, tx => {
            let revoked = sqlx::query(
                "UPDATE personal_access_tokens SET revoked = TRUE WHERE id = $1 AND NOT revoked",
            )
            .bind(token_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked == 0 {
                None
            } else {
                let id = insert_token!(tx, user_id, successor, write.at);
                insert_audit!(tx, write.audit_targeting(id), write.at);
                Some(id)
            }
        }))
    }

    /// GitLab's `RevokeTokenFamilyService`: revokes the active tokens rotated from this one,
    /// directly or down the chain; how many.
    pub async fn revoke_token_family(&self, token_id: i64, write: Write<'_>) -> StoreResult<u64> {
        Ok(in_write_tx!(self, tx => {
            let revoked = sqlx::query(
                "WITH RECURSIVE family (id) AS (
                     SELECT id FROM personal_access_tokens WHERE previous_token_id = $1
                     UNION ALL
                     SELECT t.id FROM personal_access_tokens t
                     JOIN family f ON t.previous_token_id = f.id
                 )
                 UPDATE personal_access_tokens SET revoked = TRUE
                 WHERE id IN (SELECT id FROM family) AND NOT revoked",
            )
            .bind(token_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked > 0 {
                insert_audit!(tx, write.audit.cloned(), write.at);
            }
            revoked
        }))
    }

    /// Revokes every active token that expires after `last_day` or never (GitLab's lifetime
    /// policy, when `max_personal_access_token_lifetime` is set); how many.
    pub async fn revoke_tokens_beyond(
        &self,
        last_day: NaiveDate,
        write: Write<'_>,
    ) -> StoreResult<u64> {
        Ok(in_write_tx!(self, tx => {
            let revoked = sqlx::query(
                "UPDATE personal_access_tokens SET revoked = TRUE
                 WHERE NOT revoked AND (expires_at IS NULL OR expires_at > $1)",
            )
            .bind(last_day)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked > 0 {
                insert_audit!(tx, write.audit.cloned(), write.at);
            }
            revoked
        }))
    }
}
