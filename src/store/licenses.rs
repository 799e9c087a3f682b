//! Uploaded licenses.

use chrono::NaiveDate;

use super::{Db, LicenseRow, Store, StoreResult, Write};

impl Store {
    /// Up to `limit` licenses, newest id first (GitLab considers the 100 most recent).
    pub async fn recent_licenses(&self, limit: i64) -> StoreResult<Vec<LicenseRow>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, LicenseRow>(
                "SELECT id, data, created_at FROM licenses ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn find_license(&self, id: i64) -> StoreResult<Option<LicenseRow>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, LicenseRow>("SELECT id, data, created_at FROM licenses WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Stores an uploaded license; a trial license also sets the instance's trial end date
    /// when none is set yet. One transaction.
    pub async fn create_license(
        &self,
        data: &str,
        trial_ends_on: Option<NaiveDate>,
        write: Write<'_>,
    ) -> StoreResult<LicenseRow> {
        Ok(in_write_tx!(self, tx => {
            let row = sqlx::query_as::<_, LicenseRow>(
                "INSERT INTO licenses (data, created_at, updated_at) VALUES ($1, $2, $2)
                 RETURNING id, data, created_at",
            )
            .bind(data)
            .bind(write.at)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(ends_on) = trial_ends_on {
                sqlx::query(
                    "INSERT INTO application_settings (name, value, updated_at)
                     VALUES ('license_trial_ends_on', $1, $2)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(ends_on.format("%Y-%m-%d").to_string())
                .bind(write.at)
                .execute(&mut *tx)
                .await?;
            }
            insert_audit!(tx, write.audit_of(row.id), write.at);
            row
        }))
    }

    /// Deletes a license; false when there was none with this id.
    pub async fn delete_license(&self, id: i64, write: Write<'_>) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let statement = sqlx::query("DELETE FROM licenses WHERE id = $1").bind(id);
            execute_audited!(tx, statement, write)
        }))
    }
}
