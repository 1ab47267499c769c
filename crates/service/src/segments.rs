//! Segments: no-code filters over a model. Add (the filter parsed strictly and compiled against
//! the model's schema), list, show, remove, preview (count and first rows), and the SQL.

use crate::{Caller, Role, Service, ServiceError};
use serde::Serialize;
use serde_json::Value;
use wharf_domain::{ColumnInfo, Name};
use wharf_runner::segments;
use wharf_store::SegmentRecord;

pub use wharf_runner::segments::{FilterColumn, SegmentSql};

/// What a filter not yet saved selects: the builder's live count, sample rows and SQL.
#[derive(Debug, Clone, Serialize)]
pub struct FilterPreview {
    pub count: u64,
    pub columns: Vec<ColumnInfo>,
    /// The first rows as display text.
    pub text: Vec<Vec<String>>,
    pub sql: SegmentSql,
}

/// A segment as every interface shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SegmentView {
    pub name: String,
    pub model: String,
    /// The filter tree, as JSON.
    #[schema(value_type = Object)]
    pub filter: Value,
    pub created_at: String,
}

impl From<&SegmentRecord> for SegmentView {
    fn from(g: &SegmentRecord) -> Self {
        Self {
            name: g.name.clone(),
            model: g.model_name.clone(),
            filter: serde_json::from_str(&g.filter).unwrap_or_default(),
            created_at: g.created_at.clone(),
        }
    }
}

/// How many rows a segment selects, and the first of them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SegmentPreview {
    pub count: u64,
    /// One JSON object per row.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, Value>>,
    #[serde(skip)]
    pub columns: Vec<ColumnInfo>,
    /// The same rows as display text.
    #[serde(skip)]
    pub text: Vec<Vec<String>>,
}

/// `within_last` is counted back from `as_of` (RFC 3339 or a date), or from now.
fn as_of_micros(as_of: Option<&str>) -> Result<i64, ServiceError> {
    match as_of {
        Some(text) => segments::parse_as_of(text).map_err(|e| ServiceError {
            field: Some("as_of".into()),
            ..ServiceError::from(e)
        }),
        None => Ok(segments::now_micros()),
    }
}

impl Service {
    /// Adds a segment whose filter (JSON text) compiles against its model.
    pub async fn add_segment(
        &self,
        caller: &Caller,
        name: &str,
        model: &str,
        filter: &str,
    ) -> Result<SegmentView, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "create", "segment", &object, async {
            caller.require(Role::Editor)?;
            let name = Name::parse("name", name)?;
            let record = segments::add_segment(
                &self.store,
                &caller.workspace,
                &name,
                model,
                filter,
                &self.settings.runner(),
            )
            .await
            .map_err(|e| {
                let mut e = ServiceError::from(e);
                if e.field.is_none() && e.code == "segment.invalid" {
                    e.field = Some("filter".into());
                }
                e
            })?;
            Ok(SegmentView::from(&record))
        })
        .await
    }

    pub async fn segments(&self, caller: &Caller) -> Result<Vec<SegmentView>, ServiceError> {
        let list = self.store.list_segments(&caller.workspace).await?;
        Ok(list.iter().map(SegmentView::from).collect())
    }

    pub async fn segment(&self, caller: &Caller, name: &str) -> Result<SegmentView, ServiceError> {
        Ok(SegmentView::from(
            &self.store.segment(&caller.workspace, name).await?,
        ))
    }

    /// Removes a segment no sync uses.
    pub async fn remove_segment(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        let object = name.to_string();
        self.audited(caller, "remove", "segment", &object, async {
            caller.require(Role::Editor)?;
            Ok(self.store.remove_segment(&caller.workspace, name).await?)
        })
        .await
    }

    pub async fn preview_segment(
        &self,
        caller: &Caller,
        name: &str,
        limit: usize,
        as_of: Option<&str>,
    ) -> Result<SegmentPreview, ServiceError> {
        let as_of = as_of_micros(as_of)?;
        let result = segments::preview_segment(
            &self.store,
            &caller.workspace,
            name,
            limit,
            as_of,
            &self.settings.runner(),
        )
        .await?;
        Ok(SegmentPreview {
            count: result.count,
            rows: result.preview.rows,
            columns: result.preview.columns,
            text: result.preview.text,
        })
    }

    /// What `filter` (JSON text) would select on `model`, now: for the segment builder, before
    /// the segment is saved.
    pub async fn preview_filter(
        &self,
        caller: &Caller,
        model: &str,
        filter: &str,
        limit: usize,
    ) -> Result<FilterPreview, ServiceError> {
        let (preview, sql) = segments::preview_filter(
            &self.store,
            &caller.workspace,
            model,
            filter,
            limit,
            segments::now_micros(),
            &self.settings.runner(),
        )
        .await
        .map_err(|e| {
            let mut e = ServiceError::from(e);
            if e.field.is_none() && e.code == "segment.invalid" {
                e.field = Some("filter".into());
            }
            e
        })?;
        Ok(FilterPreview {
            count: preview.count,
            columns: preview.preview.columns,
            text: preview.preview.text,
            sql,
        })
    }

    /// The columns of `model` a segment may filter on, with the operators each allows.
    pub async fn filter_columns(
        &self,
        caller: &Caller,
        model: &str,
    ) -> Result<Vec<FilterColumn>, ServiceError> {
        Ok(segments::filter_columns(&self.store, &caller.workspace, model).await?)
    }

    /// The SQL the segment compiles to (for `as_of`, or now), parameters apart.
    pub async fn segment_sql(
        &self,
        caller: &Caller,
        name: &str,
        as_of: Option<&str>,
    ) -> Result<SegmentSql, ServiceError> {
        let as_of = as_of_micros(as_of)?;
        Ok(segments::segment_sql(
            &self.store,
            &caller.workspace,
            name,
            as_of,
            &self.settings.runner(),
        )
        .await?)
    }
}
