//! Segments: named filters over a model. The filter is kept as the JSON the user gave; the
//! runner parses and compiles it against the model's schema before it is stored and at each run.

use crate::Store;
use crate::catalog::inserted;
use crate::error::StoreError;
use sqlx::AssertSqlSafe;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use wharf_domain::Name;

#[derive(Debug, Clone)]
pub struct SegmentRecord {
    pub id: String,
    pub name: String,
    pub model_id: String,
    pub model_name: String,
    /// The filter tree, as JSON text.
    pub filter: String,
    pub created_at: String,
}

const SEGMENT_SELECT: &str = "SELECT g.id, g.name, g.model_id, m.name AS model_name, g.filter,
        g.created_at
    FROM segments g JOIN models m ON m.id = g.model_id";

fn segment_from_row(row: &SqliteRow) -> Result<SegmentRecord, StoreError> {
    Ok(SegmentRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        model_id: row.try_get("model_id")?,
        model_name: row.try_get("model_name")?,
        filter: row.try_get("filter")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Stores a segment of `model`. The filter must already be checked against the model.
    pub async fn create_segment(
        &self,
        workspace: &str,
        name: &Name,
        model: &str,
        filter: &str,
    ) -> Result<SegmentRecord, StoreError> {
        let model = self.model(workspace, model).await?;
        let now = crate::now();
        let result = sqlx::query(
            "INSERT INTO segments (id, workspace_id, name, model_id, filter, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(workspace)
        .bind(name.as_str())
        .bind(&model.id)
        .bind(filter)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await;
        inserted(result, "segment", name.as_str())?;
        self.segment(workspace, name.as_str()).await
    }

    pub async fn segment(&self, workspace: &str, name: &str) -> Result<SegmentRecord, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{SEGMENT_SELECT} WHERE g.workspace_id = ? AND g.name = ?"
        )))
        .bind(workspace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "segment",
            name: name.to_string(),
        })?;
        segment_from_row(&row)
    }

    pub(crate) async fn segment_by_id(&self, id: &str) -> Result<SegmentRecord, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("{SEGMENT_SELECT} WHERE g.id = ?")))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        segment_from_row(&row)
    }

    pub async fn list_segments(&self, workspace: &str) -> Result<Vec<SegmentRecord>, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "{SEGMENT_SELECT} WHERE g.workspace_id = ? ORDER BY g.name"
        )))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(segment_from_row)
        .collect()
    }

    /// Removes a segment no sync exports.
    pub async fn remove_segment(&self, workspace: &str, name: &str) -> Result<(), StoreError> {
        self.remove_unused(workspace, name, crate::catalog::Removable::Segment)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn segments_belong_to_a_model_and_are_kept_while_a_sync_exports_them() {
        let home = tempfile::tempdir().expect("tempdir");
        let store = Store::open(home.path()).await.expect("open");
        let ws = crate::DEFAULT_WORKSPACE;
        let name = |s: &str| Name::parse("name", s).expect("name");
        store
            .create_source(
                ws,
                &name("files"),
                &wharf_domain::SourceConfig::Local {
                    path: "/tmp".into(),
                },
            )
            .await
            .expect("source");
        store
            .create_model(
                ws,
                &crate::NewModel {
                    name: &name("people"),
                    source: "files",
                    sql: "SELECT 1 AS id",
                    primary_key: "id",
                    columns: &[],
                },
            )
            .await
            .expect("model");
        let filter = r#"{"column": "id", "op": "=", "value": 1}"#;
        let seg = store
            .create_segment(ws, &name("ones"), "people", filter)
            .await
            .expect("segment");
        assert_eq!(
            (seg.model_name.as_str(), seg.filter.as_str()),
            ("people", filter)
        );
        let again = store
            .create_segment(ws, &name("ones"), "people", filter)
            .await;
        assert!(matches!(
            again,
            Err(StoreError::AlreadyExists {
                kind: "segment",
                ..
            })
        ));
        let missing = store.create_segment(ws, &name("x"), "nope", filter).await;
        assert!(matches!(
            missing,
            Err(StoreError::NotFound { kind: "model", .. })
        ));
        assert_eq!(store.list_segments(ws).await.expect("list").len(), 1);
        store.remove_segment(ws, "ones").await.expect("removed");
        assert!(matches!(
            store.segment(ws, "ones").await,
            Err(StoreError::NotFound {
                kind: "segment",
                ..
            })
        ));
    }
}
