//! The instance's settings (GitLab's application settings this server acts on, and the seat
//! controls) as one JSON document in `application_settings` under `instance_settings`: every
//! replica reads the same row, backups carry it, and a change is one compare-and-set
//! transaction with its audit events.

use chrono::{DateTime, Utc};

use super::{Db, NewAudit, Store, StoreError, StoreResult};

/// The row that holds the document.
const NAME: &str = "instance_settings";

impl Store {
    /// The stored document, if any setting was ever changed.
    pub async fn instance_settings_document(&self) -> StoreResult<Option<String>> {
        self.setting(NAME).await
    }

    /// Replaces the document `previous` (as read; `None`: never stored) by `document`, with
    /// `audits`, in one transaction. [`StoreError::Conflict`] when another change came first:
    /// the caller reads again and reapplies its change, so two administrators changing
    /// different settings at once lose neither.
    pub async fn replace_instance_settings(
        &self,
        previous: Option<&str>,
        document: &str,
        audits: &[NewAudit],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        in_write_tx!(self, tx => {
            let replaced = match previous {
                Some(previous) => sqlx::query(
                    "UPDATE application_settings SET value = $1, updated_at = $2
                     WHERE name = $3 AND value = $4",
                )
                .bind(document)
                .bind(at)
                .bind(NAME)
                .bind(previous)
                .execute(&mut *tx)
                .await?,
                None => sqlx::query(
                    "INSERT INTO application_settings (name, value, updated_at) VALUES ($3, $1, $2)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(document)
                .bind(at)
                .bind(NAME)
                .execute(&mut *tx)
                .await?,
            }
            .rows_affected();
            if replaced != 1 {
                return Err(StoreError::Conflict(
                    "the settings changed meanwhile".into(),
                ));
            }
            for audit in audits {
                insert_audit!(tx, Some(audit), at);
            }
        });
        Ok(())
    }
}
