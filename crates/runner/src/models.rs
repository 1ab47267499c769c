//! Sources and models: checked against the warehouse before they are stored.

use crate::{RunnerError, RunnerSettings};
use wharf_domain::{Name, PostgresSource, SourceConfig};
use wharf_engine::{Preview, TableInfo, Warehouse};
use wharf_store::{ModelRecord, NewModel, SourceRecord, Store};

/// Opens a source's warehouse (for PostgreSQL: connects).
pub async fn open(
    config: &SourceConfig,
    settings: &RunnerSettings,
) -> Result<Warehouse, RunnerError> {
    Ok(Warehouse::open(config, &settings.engine()).await?)
}

/// Adds a local source after finding its tables; returns them.
pub async fn add_local_source(
    store: &Store,
    workspace: &str,
    name: &Name,
    path: &std::path::Path,
    settings: &RunnerSettings,
) -> Result<(SourceRecord, Vec<TableInfo>), RunnerError> {
    let path = std::fs::canonicalize(path)
        .map_err(|e| RunnerError::Invalid(format!("path {:?}: {e}", path.display().to_string())))?;
    let config = SourceConfig::Local { path };
    let warehouse = open(&config, settings).await?;
    let tables = warehouse.tables().to_vec();
    let record = store.create_source(workspace, name, &config).await?;
    Ok((record, tables))
}

/// Adds a PostgreSQL source after connecting to it; returns the server's version.
pub async fn add_postgres_source(
    store: &Store,
    workspace: &str,
    name: &Name,
    source: PostgresSource,
    settings: &RunnerSettings,
) -> Result<(SourceRecord, String), RunnerError> {
    let config = SourceConfig::Postgres(source);
    let version = match open(&config, settings).await? {
        Warehouse::Postgres(w) => w.version().await?,
        Warehouse::Local(_) => String::new(),
    };
    let record = store.create_source(workspace, name, &config).await?;
    Ok((record, version))
}

/// Plans a model's SQL on its source (nothing runs), checks the primary key, stores the model
/// with its schema.
pub async fn add_model(
    store: &Store,
    workspace: &str,
    name: &Name,
    source: &str,
    sql: &str,
    primary_key: &str,
    settings: &RunnerSettings,
) -> Result<ModelRecord, RunnerError> {
    let source_record = store.source(workspace, source).await?;
    let warehouse = open(&source_record.config, settings).await?;
    let schema = warehouse.validate_model(sql, primary_key).await?;
    let columns = wharf_engine::columns(&schema);
    Ok(store
        .create_model(
            workspace,
            &NewModel {
                name,
                source,
                sql,
                primary_key,
                columns: &columns,
            },
        )
        .await?)
}

/// The first rows of a model.
pub async fn preview_model(
    store: &Store,
    workspace: &str,
    model: &str,
    limit: usize,
    settings: &RunnerSettings,
) -> Result<Preview, RunnerError> {
    let record = store.model(workspace, model).await?;
    let warehouse = open(&record.source.config, settings).await?;
    Ok(warehouse.preview(&record.sql, &[], limit).await?)
}

/// The first rows of `sql` on `source`, checked as a model's SQL is (for an editor's preview,
/// before the model is saved).
pub async fn preview_sql(
    store: &Store,
    workspace: &str,
    source: &str,
    sql: &str,
    limit: usize,
    settings: &RunnerSettings,
) -> Result<Preview, RunnerError> {
    let source_record = store.source(workspace, source).await?;
    let warehouse = open(&source_record.config, settings).await?;
    warehouse.check_model(sql)?;
    Ok(warehouse.preview(sql, &[], limit).await?)
}
