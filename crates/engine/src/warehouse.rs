//! One face for every kind of source: what the runner calls, whatever runs the SQL.

use crate::postgres::PostgresWarehouse;
use crate::segment::{Dialect, ScalarValue};
use crate::{EngineError, EngineSettings, LocalWarehouse, Preview, QueryStream, TableInfo};
use arrow::datatypes::SchemaRef;
use wharf_domain::SourceConfig;

/// How a query's text columns leave a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    /// Plain strings (`Utf8`): the types plans, previews and stored schemas show.
    Plain,
    /// As the source reads them: string views (`Utf8View`) from the local source's Parquet
    /// files, plain strings elsewhere. For a consumer that reads views (the text formats'
    /// encoders), which saves a copy of every value.
    AsRead,
}

/// An opened source.
pub enum Warehouse {
    Local(LocalWarehouse),
    Postgres(PostgresWarehouse),
}

impl Warehouse {
    /// Opens a local folder, or connects to PostgreSQL.
    pub async fn open(
        config: &SourceConfig,
        settings: &EngineSettings,
    ) -> Result<Self, EngineError> {
        Ok(match config {
            SourceConfig::Local { path } => {
                Self::Local(LocalWarehouse::open(path, settings).await?)
            }
            SourceConfig::Postgres(source) => {
                Self::Postgres(PostgresWarehouse::connect(source, settings.batch_size).await?)
            }
        })
    }

    /// The SQL dialect segments compile to for this source.
    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Local(_) => Dialect::DataFusion,
            Self::Postgres(w) => w.dialect(),
        }
    }

    /// The tables a local source found (PostgreSQL lists none: its catalog is the database's).
    pub fn tables(&self) -> &[TableInfo] {
        match self {
            Self::Local(w) => w.tables(),
            Self::Postgres(_) => &[],
        }
    }

    /// Plans `sql` (nothing runs) and returns its result's schema.
    pub async fn plan(&self, sql: &str) -> Result<SchemaRef, EngineError> {
        self.plan_with(sql, &[]).await
    }

    pub async fn plan_with(
        &self,
        sql: &str,
        params: &[ScalarValue],
    ) -> Result<SchemaRef, EngineError> {
        match self {
            Self::Local(w) => w.plan_with(sql, params).await,
            Self::Postgres(w) => w.plan_with(sql, params).await,
        }
    }

    /// Checks that `sql` is one query a model may be (no statement that writes, not too deep),
    /// without planning it.
    pub fn check_model(&self, sql: &str) -> Result<(), EngineError> {
        match self {
            Self::Local(w) => w.check_model_sql(sql),
            Self::Postgres(_) => crate::sql_check::check_postgres_model(sql),
        }
    }

    /// Plans `sql` and checks that `primary_key` is one of its columns.
    pub async fn validate_model(
        &self,
        sql: &str,
        primary_key: &str,
    ) -> Result<SchemaRef, EngineError> {
        self.check_model(sql)?;
        let schema = self.plan(sql).await?;
        if schema.field_with_name(primary_key).is_err() {
            let available: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(EngineError::MissingKey {
                column: primary_key.to_string(),
                available: available.join(", "),
            });
        }
        Ok(schema)
    }

    /// Runs `sql` with `params` bound, streaming its result with its text as `text` says.
    pub async fn query_with(
        &self,
        sql: &str,
        params: &[ScalarValue],
        text: Text,
    ) -> Result<QueryStream, EngineError> {
        match self {
            Self::Local(w) => w.stream(sql, params, text).await,
            Self::Postgres(w) => w.query_with(sql, params).await,
        }
    }

    pub async fn count(&self, sql: &str, params: &[ScalarValue]) -> Result<u64, EngineError> {
        match self {
            Self::Local(w) => w.count(sql, params).await,
            Self::Postgres(w) => w.count(sql, params).await,
        }
    }

    pub async fn preview(
        &self,
        sql: &str,
        params: &[ScalarValue],
        limit: usize,
    ) -> Result<Preview, EngineError> {
        match self {
            Self::Local(w) => w.preview(sql, params, limit).await,
            Self::Postgres(w) => w.preview(sql, params, limit).await,
        }
    }
}
