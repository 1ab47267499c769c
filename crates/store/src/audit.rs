//! The audit log: one row per change a caller made (or tried), with who, what, which object,
//! when and how it ended. It holds names and error codes, never values or secrets.

use crate::{Store, StoreError};
use sqlx::Row as _;

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increasing: the order entries were written in.
    pub id: i64,
    pub at: String,
    pub workspace: String,
    /// `cli`, or `token:NAME`.
    pub actor: String,
    /// `create`, `remove`, `rotate_external_id`, `test`, `run`, `revoke`...
    pub action: String,
    /// `destination`, `sync`, `token`...
    pub object_kind: String,
    pub object_name: String,
    /// `None`: it succeeded; otherwise the error's code.
    pub error_code: Option<String>,
}

/// A change to record; the store adds the time.
#[derive(Debug, Clone, Copy)]
pub struct NewAudit<'a> {
    pub workspace: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub object_kind: &'a str,
    pub object_name: &'a str,
    pub error_code: Option<&'a str>,
}

impl Store {
    pub async fn append_audit(&self, entry: &NewAudit<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, workspace_id, actor, action, object_kind, object_name, outcome, error_code)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(crate::now())
        .bind(entry.workspace)
        .bind(entry.actor)
        .bind(entry.action)
        .bind(entry.object_kind)
        .bind(entry.object_name)
        .bind(if entry.error_code.is_some() { "error" } else { "ok" })
        .bind(entry.error_code)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The workspace's latest `limit` entries, newest first.
    /// The workspace's entries, newest first; `before`: only entries older than that one
    /// (its `id`), for the next page.
    pub async fn audit(
        &self,
        workspace: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit WHERE workspace_id = ? AND (? IS NULL OR id < ?)
             ORDER BY id DESC LIMIT ?",
        )
        .bind(workspace)
        .bind(before)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    workspace: row.try_get("workspace_id")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    object_kind: row.try_get("object_kind")?,
                    object_name: row.try_get("object_name")?,
                    error_code: row.try_get("error_code")?,
                })
            })
            .collect()
    }
}
