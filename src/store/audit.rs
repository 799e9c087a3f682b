//! Audit events (written by every audited change through `insert_audit!`; read here).

use chrono::{DateTime, Utc};

use super::{capped_count, AuditRow, Db, Listed, NewAudit, Store, StoreResult};

impl Store {
    /// Records an audit event (and its hook event) on its own: for what was refused, which
    /// wrote nothing else.
    pub async fn record_audit(&self, audit: &NewAudit, at: DateTime<Utc>) -> StoreResult<()> {
        in_write_tx!(self, tx => {
            insert_audit!(tx, Some(audit), at);
        });
        Ok(())
    }

    /// Audit events, newest first, optionally for one entity and within a time window.
    pub async fn audit_events(
        &self,
        entity: Option<(&str, Option<i64>)>,
        created_after: Option<DateTime<Utc>>,
        created_before: Option<DateTime<Utc>>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Listed<AuditRow>> {
        const WHERE: &str = "WHERE (CAST($1 AS TEXT) IS NULL OR entity_type = $1)
               AND ($2 = 0 OR entity_id = $2)
               AND (NOT $3 OR created_at >= $4) AND (NOT $5 OR created_at <= $6)";
        let (entity_type, entity_id) = match entity {
            Some((entity_type, id)) => (Some(entity_type.to_string()), id.unwrap_or(0)),
            None => (None, 0),
        };
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let page_sql = format!(
            "SELECT id, author_id, entity_type, entity_id, event_name, details, created_at
             FROM audit_events {WHERE} ORDER BY id DESC LIMIT $7 OFFSET $8"
        );
        let count_sql = capped_count(&format!("FROM audit_events {WHERE}"));
        Ok(Listed::capped(with_pool!(self, pool => {
            page_and_total!(pool, AuditRow, &page_sql, &count_sql, limit, offset, |query| {
                query
                    .bind(&entity_type)
                    .bind(entity_id)
                    .bind(created_after.is_some())
                    .bind(created_after.unwrap_or(epoch))
                    .bind(created_before.is_some())
                    .bind(created_before.unwrap_or(epoch))
            })
        })))
    }

    pub async fn find_audit_event(&self, id: i64) -> StoreResult<Option<AuditRow>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, AuditRow>(
                "SELECT id, author_id, entity_type, entity_id, event_name, details, created_at
                 FROM audit_events WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }
}
