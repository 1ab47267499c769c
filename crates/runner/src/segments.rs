//! Segments: filters over a model, checked against the warehouse when added and compiled afresh
//! (against the models' current schemas) whenever they run.

use crate::{RunnerError, RunnerSettings, models};
use serde::Serialize;
use wharf_domain::Name;
use wharf_domain::segment::{self, Filter};
use wharf_engine::segment::{CompiledSegment, ModelQuery, SegmentInput};
use wharf_engine::{Preview, Warehouse};
use wharf_store::{ModelRecord, SegmentRecord, Store, StoreError};

/// Parses a filter given as JSON text.
pub fn parse_filter(text: &str) -> Result<Filter, RunnerError> {
    segment::parse_text(text).map_err(|e| RunnerError::Invalid(e.to_string()))
}

/// Compiles `filter` over `model` for its warehouse's dialect. Related models are looked up by name
/// and must be on the same source; their schemas come from planning their SQL now.
pub(crate) async fn compile(
    store: &Store,
    workspace: &str,
    warehouse: &Warehouse,
    model: &ModelRecord,
    filter: &Filter,
    as_of_micros: i64,
) -> Result<CompiledSegment, RunnerError> {
    let mut related = Vec::new();
    for name in filter.related_models() {
        let other = match store.model(workspace, &name).await {
            Ok(m) => m,
            // The compiler names the node that refers to it.
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if other.source.id != model.source.id {
            return Err(RunnerError::Invalid(format!(
                "model {:?} is on source {:?}, but relations join models of one source ({:?} is on {:?})",
                other.name, other.source.name, model.name, model.source.name
            )));
        }
        let schema = warehouse.plan(&other.sql).await?;
        related.push((other, schema));
    }
    let schema = warehouse.plan(&model.sql).await?;
    let queries: Vec<ModelQuery<'_>> = related
        .iter()
        .map(|(m, schema)| ModelQuery {
            name: &m.name,
            sql: &m.sql,
            schema,
        })
        .collect();
    let input = SegmentInput {
        model: ModelQuery {
            name: &model.name,
            sql: &model.sql,
            schema: &schema,
        },
        related: &queries,
        as_of_micros,
    };
    let compiled = wharf_engine::segment::compile(filter, &input, warehouse.dialect())?;
    // Plan it too: a filter that compiles but does not plan is a bug worth reporting now.
    warehouse.plan_with(&compiled.sql, &compiled.params).await?;
    // And the statement an export runs, where it differs (values written in for PostgreSQL).
    let (sql, params) = compiled.clone().into_export();
    if sql != compiled.sql {
        warehouse.plan_with(&sql, &params).await?;
    }
    Ok(compiled)
}

/// Checks a filter against its model (and related models) and stores the segment.
pub async fn add_segment(
    store: &Store,
    workspace: &str,
    name: &Name,
    model: &str,
    filter_json: &str,
    settings: &RunnerSettings,
) -> Result<SegmentRecord, RunnerError> {
    let filter = parse_filter(filter_json)?;
    let model = store.model(workspace, model).await?;
    let warehouse = models::open(&model.source.config, settings).await?;
    compile(store, workspace, &warehouse, &model, &filter, now_micros()).await?;
    Ok(store
        .create_segment(workspace, name, &model.name, filter_json.trim())
        .await?)
}

/// A segment's count and first rows.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentPreview {
    pub count: u64,
    #[serde(skip)]
    pub preview: Preview,
}

/// A segment loaded with its model and compiled against `as_of`.
async fn load(
    store: &Store,
    workspace: &str,
    name: &str,
    as_of_micros: i64,
    settings: &RunnerSettings,
) -> Result<(Warehouse, CompiledSegment), RunnerError> {
    let record = store.segment(workspace, name).await?;
    let model = store.model(workspace, &record.model_name).await?;
    let filter = parse_filter(&record.filter)?;
    let warehouse = models::open(&model.source.config, settings).await?;
    let compiled = compile(store, workspace, &warehouse, &model, &filter, as_of_micros).await?;
    Ok((warehouse, compiled))
}

/// Counts a segment's rows and returns the first `limit`.
pub async fn preview_segment(
    store: &Store,
    workspace: &str,
    name: &str,
    limit: usize,
    as_of_micros: i64,
    settings: &RunnerSettings,
) -> Result<SegmentPreview, RunnerError> {
    let (warehouse, compiled) = load(store, workspace, name, as_of_micros, settings).await?;
    let count = warehouse.count(&compiled.sql, &compiled.params).await?;
    let preview = warehouse
        .preview(&compiled.sql, &compiled.params, limit)
        .await?;
    Ok(SegmentPreview { count, preview })
}

/// What a filter not yet saved selects on `model`: its count, first rows and SQL (for the
/// segment builder's live count).
pub async fn preview_filter(
    store: &Store,
    workspace: &str,
    model: &str,
    filter_json: &str,
    limit: usize,
    as_of_micros: i64,
    settings: &RunnerSettings,
) -> Result<(SegmentPreview, SegmentSql), RunnerError> {
    let filter = parse_filter(filter_json)?;
    let model = store.model(workspace, model).await?;
    let warehouse = models::open(&model.source.config, settings).await?;
    let compiled = compile(store, workspace, &warehouse, &model, &filter, as_of_micros).await?;
    let count = warehouse.count(&compiled.sql, &compiled.params).await?;
    let preview = warehouse
        .preview(&compiled.sql, &compiled.params, limit)
        .await?;
    Ok((SegmentPreview { count, preview }, sql_view(compiled)))
}

fn sql_view(compiled: CompiledSegment) -> SegmentSql {
    SegmentSql {
        params: compiled
            .params
            .iter()
            .map(|p| ParamView {
                data_type: p.data_type().to_string(),
                value: param_text(p),
            })
            .collect(),
        sql: compiled.sql,
    }
}

/// A column of a model as the segment builder offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterColumn {
    pub name: String,
    /// The column's type, as the model's schema names it.
    pub data_type: String,
    /// `integer`, `float`, `decimal`, `text`, `bool`, `date`, `timestamp`, `time` or `other`.
    pub kind: &'static str,
    /// The operators a condition on it may use.
    pub operators: Vec<&'static str>,
}

/// The columns of `model` with the operators each allows (from the schema stored with it).
pub async fn filter_columns(
    store: &Store,
    workspace: &str,
    model: &str,
) -> Result<Vec<FilterColumn>, RunnerError> {
    let model = store.model(workspace, model).await?;
    Ok(model
        .columns
        .iter()
        .map(|c| {
            // A type this build cannot read back takes the null checks only, as it would
            // when compiled.
            let data_type = c
                .data_type
                .parse::<arrow::datatypes::DataType>()
                .unwrap_or(arrow::datatypes::DataType::Null);
            let (kind, ops) = wharf_engine::segment::column_filtering(&data_type);
            FilterColumn {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
                kind,
                operators: ops.into_iter().map(|op| op.as_str()).collect(),
            }
        })
        .collect())
}

/// A segment's SQL for people: the query and its parameters, `$1` first.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentSql {
    pub sql: String,
    pub params: Vec<ParamView>,
}

/// A bound parameter: its type (Arrow's name for it) and its value as text.
#[derive(Debug, Clone, Serialize)]
pub struct ParamView {
    #[serde(rename = "type")]
    pub data_type: String,
    pub value: String,
}

/// The SQL a segment compiles to now, with its parameters.
pub async fn segment_sql(
    store: &Store,
    workspace: &str,
    name: &str,
    as_of_micros: i64,
    settings: &RunnerSettings,
) -> Result<SegmentSql, RunnerError> {
    let (_, compiled) = load(store, workspace, name, as_of_micros, settings).await?;
    Ok(sql_view(compiled))
}

/// A parameter as people write it: ISO-8601 for dates, times and timestamps.
fn param_text(value: &wharf_engine::segment::ScalarValue) -> String {
    value
        .to_array()
        .ok()
        .and_then(|a| arrow::util::display::array_value_to_string(&a, 0).ok())
        .unwrap_or_else(|| value.to_string())
}

/// The current time in microseconds since the epoch.
pub fn now_micros() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// Parses `--as-of`: an ISO-8601 timestamp (UTC unless it has an offset) or a date.
pub fn parse_as_of(text: &str) -> Result<i64, RunnerError> {
    wharf_engine::segment::timestamp_micros(text.trim()).ok_or_else(|| {
        RunnerError::Invalid(format!(
            "{text:?} is not a timestamp; give ISO-8601 such as 2026-03-31T12:00:00Z or 2026-03-31"
        ))
    })
}
