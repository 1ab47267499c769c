//! Workspaces and API tokens. A token is stored as the SHA-256 of its text: the store can say
//! which token a hash belongs to, never what a token is.

use crate::catalog::inserted;
use crate::{Store, StoreError};
use sqlx::Row as _;
use wharf_domain::Name;

/// A workspace: the owner of every object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRecord {
    pub name: String,
    pub created_at: String,
}

/// An API token, without the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: String,
    pub workspace: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
    pub created_at: String,
    /// RFC 3339; `None`: never.
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// What a new token is: the SHA-256 of its text, never the text.
pub struct NewToken<'a> {
    pub name: &'a Name,
    pub role: &'a str,
    pub sha256: &'a [u8; 32],
    pub expires_at: Option<&'a str>,
}

fn token_record(row: &sqlx::sqlite::SqliteRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        name: row.try_get("name")?,
        workspace: row.try_get("workspace_id")?,
        role: row.try_get("role")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    pub async fn create_workspace(&self, name: &Name) -> Result<WorkspaceRecord, StoreError> {
        let created_at = crate::now();
        let result = sqlx::query("INSERT INTO workspaces (id, created_at) VALUES (?, ?)")
            .bind(name.as_str())
            .bind(&created_at)
            .execute(&self.pool)
            .await;
        inserted(result, "workspace", name.as_str())?;
        Ok(WorkspaceRecord {
            name: name.to_string(),
            created_at,
        })
    }

    pub async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, created_at FROM workspaces ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(WorkspaceRecord {
                    name: row.try_get("id")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Fails with not-found when `name` is not a workspace.
    pub async fn require_workspace(&self, name: &str) -> Result<(), StoreError> {
        let found = sqlx::query("SELECT 1 FROM workspaces WHERE id = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound {
                kind: "workspace",
                name: name.to_string(),
            }),
        }
    }

    pub async fn create_token(
        &self,
        workspace: &str,
        token: &NewToken<'_>,
    ) -> Result<TokenRecord, StoreError> {
        self.require_workspace(workspace).await?;
        let result = sqlx::query(
            "INSERT INTO tokens (id, workspace_id, name, role, token_sha256, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(workspace)
        .bind(token.name.as_str())
        .bind(token.role)
        .bind(&token.sha256[..])
        .bind(crate::now())
        .bind(token.expires_at)
        .execute(&self.pool)
        .await;
        inserted(result, "token", token.name.as_str())?;
        self.token(workspace, token.name.as_str()).await
    }

    pub async fn token(&self, workspace: &str, name: &str) -> Result<TokenRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE workspace_id = ? AND name = ?")
            .bind(workspace)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => token_record(&row),
            None => Err(StoreError::NotFound {
                kind: "token",
                name: name.to_string(),
            }),
        }
    }

    pub async fn list_tokens(&self, workspace: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tokens WHERE workspace_id = ? ORDER BY name")
            .bind(workspace)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_record).collect()
    }

    /// Marks a token revoked (kept, so the audit log can still name it).
    pub async fn revoke_token(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<TokenRecord, StoreError> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE workspace_id = ? AND name = ?",
        )
        .bind(crate::now())
        .bind(workspace)
        .bind(name)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "token",
                name: name.to_string(),
            });
        }
        self.token(workspace, name).await
    }

    /// The token whose text hashes to `sha256`, with the stored hash to compare.
    pub async fn token_by_hash(
        &self,
        sha256: &[u8; 32],
    ) -> Result<Option<(TokenRecord, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE token_sha256 = ?")
            .bind(&sha256[..])
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some((token_record(&row)?, row.try_get("token_sha256")?))),
            None => Ok(None),
        }
    }

    /// Whether some token is neither revoked nor expired.
    pub async fn has_live_token(&self) -> Result<bool, StoreError> {
        let found = sqlx::query(
            "SELECT 1 FROM tokens WHERE revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > ?) LIMIT 1",
        )
        .bind(crate::now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }
}
