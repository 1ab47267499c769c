//! Users who sign in to the web UI: an email, an argon2id password hash (hashing is the
//! service's; the store never sees a password) and a role in each workspace they belong to.

use crate::{Store, StoreError};
use sqlx::Row as _;

/// A user's membership of one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub email: String,
    pub workspace: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
    /// When the user joined this workspace.
    pub created_at: String,
}

/// A user and the stored hash of their password, to verify one against.
#[derive(Debug, Clone)]
pub struct UserWithHash {
    pub email: String,
    pub password_hash: String,
}

impl Store {
    /// The user with this email, if there is one.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserWithHash>, StoreError> {
        let row = sqlx::query("SELECT email, password_hash FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(UserWithHash {
                email: row.try_get("email")?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// Adds `email` to `workspace` with `role`, creating the user with `password_hash` when
    /// there is none (an existing user keeps their password).
    pub async fn add_user(
        &self,
        workspace: &str,
        email: &str,
        role: &str,
        password_hash: &str,
    ) -> Result<UserRecord, StoreError> {
        self.require_workspace(workspace).await?;
        let mut tx = self.pool.begin().await?;
        let now = crate::now();
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(email)
        .bind(password_hash)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let result = sqlx::query(
            "INSERT INTO user_workspaces (user_id, workspace_id, role, created_at)
             SELECT id, ?, ?, ? FROM users WHERE email = ?",
        )
        .bind(workspace)
        .bind(role)
        .bind(&now)
        .bind(email)
        .execute(&mut *tx)
        .await;
        crate::catalog::inserted(result, "user", email)?;
        tx.commit().await?;
        self.user(workspace, email).await
    }

    pub async fn user(&self, workspace: &str, email: &str) -> Result<UserRecord, StoreError> {
        let row = sqlx::query(
            "SELECT u.email, m.workspace_id, m.role, m.created_at
             FROM user_workspaces m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = ? AND u.email = ?",
        )
        .bind(workspace)
        .bind(email)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "user",
            name: email.to_string(),
        })?;
        user_record(&row)
    }

    pub async fn has_users(&self) -> Result<bool, StoreError> {
        let found = sqlx::query("SELECT 1 FROM users LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// The workspace's users, by email.
    pub async fn list_users(&self, workspace: &str) -> Result<Vec<UserRecord>, StoreError> {
        sqlx::query(
            "SELECT u.email, m.workspace_id, m.role, m.created_at
             FROM user_workspaces m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = ? ORDER BY u.email",
        )
        .bind(workspace)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(user_record)
        .collect()
    }

    /// Removes `email` from `workspace`; a user left in no workspace is deleted.
    pub async fn remove_user(&self, workspace: &str, email: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "DELETE FROM user_workspaces WHERE workspace_id = ?
               AND user_id = (SELECT id FROM users WHERE email = ?)",
        )
        .bind(workspace)
        .bind(email)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "user",
                name: email.to_string(),
            });
        }
        // Signed out of this workspace at once (a session in another one stays).
        sqlx::query(
            "DELETE FROM sessions WHERE workspace_id = ?
               AND user_id = (SELECT id FROM users WHERE email = ?)",
        )
        .bind(workspace)
        .bind(email)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM users WHERE email = ?
               AND NOT EXISTS (SELECT 1 FROM user_workspaces m WHERE m.user_id = users.id)",
        )
        .bind(email)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn user_record(row: &sqlx::sqlite::SqliteRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        email: row.try_get("email")?,
        workspace: row.try_get("workspace_id")?,
        role: row.try_get("role")?,
        created_at: row.try_get("created_at")?,
    })
}
