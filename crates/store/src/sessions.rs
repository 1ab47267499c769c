//! Web UI sessions: the SHA-256 of each session's token, the user, the workspace they are
//! looking at, and when the session started and was last used. Expiry rules are the service's;
//! the store only keeps the times.

use crate::{Store, StoreError};
use sqlx::Row as _;

/// A live session as a request sees it: the role is the user's current one in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub email: String,
    pub workspace: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
    pub created_at: String,
    pub last_seen_at: String,
}

impl Store {
    /// Starts a session for `email` in `workspace` (where the user must be a member).
    pub async fn create_session(
        &self,
        token_sha256: &[u8; 32],
        email: &str,
        workspace: &str,
    ) -> Result<(), StoreError> {
        let now = crate::now();
        let done = sqlx::query(
            "INSERT INTO sessions (token_sha256, user_id, workspace_id, created_at, last_seen_at)
             SELECT ?, u.id, m.workspace_id, ?, ?
             FROM users u JOIN user_workspaces m ON m.user_id = u.id
             WHERE u.email = ? AND m.workspace_id = ?",
        )
        .bind(&token_sha256[..])
        .bind(&now)
        .bind(&now)
        .bind(email)
        .bind(workspace)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "workspace",
                name: workspace.to_string(),
            });
        }
        Ok(())
    }

    /// The session with this token hash, while its user is still a member of its workspace.
    pub async fn session(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT u.email, s.workspace_id, m.role, s.created_at, s.last_seen_at
             FROM sessions s
             JOIN users u ON u.id = s.user_id
             JOIN user_workspaces m ON m.user_id = s.user_id AND m.workspace_id = s.workspace_id
             WHERE s.token_sha256 = ?",
        )
        .bind(&token_sha256[..])
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRecord {
                email: row.try_get("email")?,
                workspace: row.try_get("workspace_id")?,
                role: row.try_get("role")?,
                created_at: row.try_get("created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
            })
        })
        .transpose()
    }

    /// Records that the session was used at `at` (the store's time format).
    pub async fn touch_session(&self, token_sha256: &[u8; 32], at: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE token_sha256 = ?")
            .bind(at)
            .bind(&token_sha256[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Points the session at another workspace of its user's.
    pub async fn switch_session_workspace(
        &self,
        token_sha256: &[u8; 32],
        workspace: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET workspace_id = ?
             WHERE token_sha256 = ?
               AND EXISTS (SELECT 1 FROM user_workspaces m
                           WHERE m.user_id = sessions.user_id AND m.workspace_id = ?)",
        )
        .bind(workspace)
        .bind(&token_sha256[..])
        .bind(workspace)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "workspace",
                name: workspace.to_string(),
            });
        }
        Ok(())
    }

    pub async fn delete_session(&self, token_sha256: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = ?")
            .bind(&token_sha256[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes sessions created before `created_before` or idle since before `idle_before`
    /// (both in the store's time format).
    pub async fn delete_expired_sessions(
        &self,
        created_before: &str,
        idle_before: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE created_at < ? OR last_seen_at < ?")
            .bind(created_before)
            .bind(idle_before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The workspaces `email` belongs to, with the role in each, by name.
    pub async fn workspaces_of_user(
        &self,
        email: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query(
            "SELECT m.workspace_id, m.role FROM user_workspaces m JOIN users u ON u.id = m.user_id
             WHERE u.email = ? ORDER BY m.workspace_id",
        )
        .bind(email)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("workspace_id")?, row.try_get("role")?)))
        .collect()
    }
}
