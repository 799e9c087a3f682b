//! Sessions of the subscription web page, and the page's one-query views of seat holders.

use chrono::{DateTime, Utc};

use super::{
    Db, NewAudit, Store, StoreResult, TokenWithUser, User, Write, TOKEN_WITH_USER_COLUMNS,
    U_USER_COLUMNS,
};

/// A live session with the token (and user) it acts as.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebSession {
    pub csrf_token: String,
    #[sqlx(flatten)]
    pub token: TokenWithUser,
}

/// One seat holder of a purchase.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SeatHolder {
    pub add_on_purchase_id: i64,
    #[sqlx(flatten)]
    pub user: User,
}

impl Store {
    /// Opens a session (and drops expired ones, so the table stays the size of its live
    /// sessions). Not announced as a change: nothing cached depends on sessions.
    pub async fn create_web_session(
        &self,
        session_digest: &str,
        token_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        audit: &NewAudit,
    ) -> StoreResult<()> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO web_sessions (session_digest, token_id, csrf_token, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(session_digest)
            .bind(token_id)
            .bind(csrf_token)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audit!(tx, Some(audit), now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The unexpired session with this cookie digest, joined with its token and user.
    pub async fn find_web_session(
        &self,
        session_digest: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<WebSession>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, WebSession>(&format!(
                "SELECT s.csrf_token, {TOKEN_WITH_USER_COLUMNS}
                 FROM web_sessions s
                 JOIN personal_access_tokens t ON t.id = s.token_id
                 JOIN users u ON u.id = t.user_id
                 WHERE s.session_digest = $1 AND s.expires_at > $2",
            ))
            .bind(session_digest)
            .bind(now)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Ends a session; false when there was none.
    /// Ends a session, with its audit event; false when there was none.
    pub async fn delete_web_session(
        &self,
        session_digest: &str,
        write: Write<'_>,
    ) -> StoreResult<bool> {
        Ok(with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let statement =
                sqlx::query("DELETE FROM web_sessions WHERE session_digest = $1").bind(session_digest);
            let deleted = execute_audited!(tx, statement, write);
            tx.commit().await?;
            deleted
        }))
    }

    /// The newest `per_purchase` seat holders of every purchase, listed by username: one
    /// statement however many purchases there are. Only the assignments are ranked; the
    /// users are looked up for the holders kept, so a purchase with thousands of seats costs
    /// `per_purchase` look-ups, not one per seat.
    pub async fn seat_holders(&self, per_purchase: i64) -> StoreResult<Vec<SeatHolder>> {
        let sql = format!(
            "SELECT r.add_on_purchase_id, {U_USER_COLUMNS} FROM (
                 SELECT add_on_purchase_id, user_id,
                        ROW_NUMBER() OVER (PARTITION BY add_on_purchase_id ORDER BY id DESC)
                            AS position
                 FROM user_add_on_assignments
             ) r JOIN users u ON u.id = r.user_id
             WHERE r.position <= $1
             ORDER BY r.add_on_purchase_id, u.username, u.id"
        );
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, SeatHolder>(&sql)
                .bind(per_purchase)
                .fetch_all(pool)
                .await?
        }))
    }
}
