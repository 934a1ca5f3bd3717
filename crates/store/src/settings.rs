use async_trait::async_trait;
use sqlx::Row;

use crate::{SettingsStore, SqlStore, StoreError, StoreResult};

#[async_trait]
impl SettingsStore for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn setting_get_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        {
            let _guard = self.write_guard().await;
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        }
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get::<String, _>("value")?)
    }
}
