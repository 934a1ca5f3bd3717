use async_trait::async_trait;
use boxoffice_domain::{Role, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::db::{from_millis, to_millis};
use crate::{Page, PageRequest, SqlStore, StoreError, StoreResult, UserRecord, UserStore};

const USER_COLUMNS: &str = "id, email, name, phone, role, password_hash, created_at";

fn user_from_row(row: &AnyRow) -> StoreResult<UserRecord> {
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        id: UserId::from_trusted(row.try_get("id")?),
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        phone: row.try_get("phone")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Other(format!("unknown role {role}")))?,
        password_hash: row.try_get("password_hash")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO users (id, email, name, phone, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.id.as_str())
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.phone.as_deref())
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(to_millis(user.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(
        &self,
        email: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<UserRecord>> {
        let mut sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id > $1");
        if email.is_some() {
            sql.push_str(" AND email = $3");
        }
        sql.push_str(" ORDER BY id LIMIT $2");
        let mut query = sqlx::query(&sql)
            .bind(page.after.clone().unwrap_or_default())
            .bind(i64::from(page.limit) + 1);
        if let Some(email) = email {
            query = query.bind(email.to_lowercase());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let users = rows
            .iter()
            .map(user_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(crate::catalog::paginate(users, page.limit, |user| {
            user.id.to_string()
        }))
    }

    async fn update_user_role(&self, id: &UserId, role: Role) -> StoreResult<Option<UserRecord>> {
        {
            let _guard = self.write_guard().await;
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(id.as_str())
                .execute(&self.pool)
                .await?;
        }
        self.user_by_id(id).await
    }
}
