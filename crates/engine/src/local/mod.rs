//! The local warehouse: a folder of files, queried with DataFusion.

mod discovery;
mod views;

pub use discovery::{TableInfo, discover};

use crate::Text;
use crate::error::EngineError;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{
    CsvReadOptions, DataFrame, JsonReadOptions, ParquetReadOptions, SQLOptions, SessionConfig,
    SessionContext,
};
use datafusion::sql::parser::Statement;
use discovery::table_files;
use futures::{Stream, StreamExt as _};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// How much the engine may use.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Memory for sorts, joins and aggregations; beyond it they spill to `spill_dir`.
    pub memory_limit: usize,
    /// Where spill files go (created if missing).
    pub spill_dir: PathBuf,
    /// Parallel partitions of a query (0: one per core).
    pub target_partitions: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// On a shared server: the folders tables must resolve into (`None`: anywhere).
    pub confine_to: Option<Vec<PathBuf>>,
}

impl EngineSettings {
    pub fn new(spill_dir: PathBuf) -> Self {
        Self {
            memory_limit: 512 * 1024 * 1024,
            spill_dir,
            target_partitions: 0,
            batch_size: 8192,
            confine_to: None,
        }
    }
}

/// A folder of Parquet, CSV and NDJSON files; each file (or folder of files of one format) is a
/// table named after it: `customers.parquet` and `orders/part-*.csv` give `customers` and
/// `orders`.
///
/// A table is read (registered with DataFusion, its schema inferred) only when a query uses it,
/// so one malformed, unreadable or special file fails the models that use it, naming the file,
/// and no other.
pub struct LocalWarehouse {
    ctx: SessionContext,
    tables: Vec<TableInfo>,
}

/// Only queries: `CREATE`, `COPY`, `INSERT`, `SET` would run while planning, which a model's
/// validation must never do.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Rows read to infer a CSV table's column types.
const CSV_INFER_ROWS: usize = 10_000;

/// A CSV table's schema, from its first rows (of its first file, for a folder), read with a
/// full CSV parser. (DataFusion's own inference cuts files into chunks at line ends and loses
/// track of quotes when a quoted value holds both `""` and a line break.)
fn infer_csv_schema(path: &Path) -> Result<arrow::datatypes::Schema, EngineError> {
    let file = if path.is_dir() {
        table_files(path)
            .map_err(|message| EngineError::Source {
                path: path.to_path_buf(),
                message,
            })?
            .into_iter()
            .next()
            .map_or_else(|| path.to_path_buf(), |(file, _)| file)
    } else {
        path.to_path_buf()
    };
    let unreadable = |message: String| EngineError::Source {
        path: file.clone(),
        message,
    };
    let reader = std::fs::File::open(&file).map_err(|e| unreadable(e.to_string()))?;
    let (schema, _) = arrow::csv::reader::Format::default()
        .with_header(true)
        .infer_schema(std::io::BufReader::new(reader), Some(CSV_INFER_ROWS))
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(schema)
}

impl LocalWarehouse {
    /// Opens the folder: finds its tables and reads their schemas (CSV and NDJSON schemas are
    /// inferred from their first rows).
    pub async fn open(dir: &Path, settings: &EngineSettings) -> Result<Self, EngineError> {
        if !dir.is_dir() {
            return Err(EngineError::Source {
                path: dir.to_path_buf(),
                message: "is not a folder (a local source is a folder of .parquet, .csv, .ndjson or .jsonl files)".into(),
            });
        }
        std::fs::create_dir_all(&settings.spill_dir).map_err(|e| EngineError::Source {
            path: settings.spill_dir.clone(),
            message: e.to_string(),
        })?;
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(settings.memory_limit),
            NonZeroUsize::MIN.saturating_add(4),
        );
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(
                DiskManagerMode::Directories(vec![settings.spill_dir.clone()]),
            ))
            .build_arc()
            .map_err(EngineError::query)?;
        let mut config = SessionConfig::new()
            .with_target_partitions(settings.target_partitions)
            .with_batch_size(settings.batch_size.max(1))
            // The parser's default (50 nested calls) refused segments within their documented
            // depth: each level of a segment is a parenthesis, and a `related` one a subquery.
            // Queries run on deep stacks (`threads`), so the parser may go deeper too.
            .set_usize(
                "datafusion.sql_parser.recursion_limit",
                crate::sql_check::PARSER_RECURSION_LIMIT,
            );
        let options = config.options_mut();
        options.sql_parser.collect_spans = true;
        // A sort sets this much aside to merge its spill files; DataFusion's 10 MiB default
        // fails outright under small limits, so take a share of the limit instead.
        options.execution.sort_spill_reservation_bytes = (settings.memory_limit / 8).min(10 << 20);
        // Parquet text as string views, cast to plain strings at the end of each query
        // (`views`): a filter's dropped rows are never copied out of the pages.
        options.execution.parquet.schema_force_view_types = true;
        options.sql_parser.map_string_types_to_utf8view = false;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        crate::guard::install(&ctx);
        let mut tables = discover(dir)?;
        if let Some(roots) = &settings.confine_to {
            discovery::confine(&mut tables, roots);
        }
        Ok(Self { ctx, tables })
    }

    /// Registers `table` with DataFusion (reading its schema), unless it already is.
    async fn register(&self, table: &TableInfo) -> Result<(), EngineError> {
        let source_error = |message: String| EngineError::Source {
            path: table.path.clone(),
            message: format!("table {:?}: {message}", table.name),
        };
        if let Some(problem) = &table.problem {
            return Err(source_error(problem.clone()));
        }
        let reference = TableReference::bare(table.name.as_str());
        if self.ctx.table_exist(reference.clone()).unwrap_or(false) {
            return Ok(());
        }
        let path = table.path.to_string_lossy();
        let ctx = &self.ctx;
        let registered = match table.format {
            "parquet" => {
                ctx.register_parquet(reference, path.as_ref(), ParquetReadOptions::default())
                    .await
            }
            "csv" => {
                let schema = infer_csv_schema(&table.path)?;
                ctx.register_csv(
                    reference,
                    path.as_ref(),
                    CsvReadOptions::new()
                        .has_header(true)
                        .newlines_in_values(true)
                        .schema(&schema),
                )
                .await
            }
            ext => {
                let extension = if ext == "jsonl" { ".jsonl" } else { ".ndjson" };
                ctx.register_json(
                    reference,
                    path.as_ref(),
                    JsonReadOptions::default()
                        .file_extension(extension)
                        .schema_infer_max_records(10_000),
                )
                .await
            }
        };
        registered.map_err(|e| source_error(e.strip_backtrace()))
    }

    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }

    /// Parses `sql`: one statement, a query.
    fn parse(&self, sql: &str) -> Result<Statement, EngineError> {
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state
            .sql_to_statement(sql, &dialect)
            .map_err(|e| EngineError::sql(e).at_end_of(sql))?;
        match &statement {
            Statement::Statement(inner) => crate::sql_check::check_is_query(inner)?,
            other => {
                return Err(EngineError::NotAQuery {
                    found: format!(
                        "`{}`",
                        other.to_string().chars().take(40).collect::<String>()
                    ),
                });
            }
        }
        Ok(statement)
    }

    /// Checks that `sql` is a query within [`crate::MAX_EXPRESSION_DEPTH`]: what a model's
    /// SQL must be.
    pub fn check_model_sql(&self, sql: &str) -> Result<(), EngineError> {
        match self.parse(sql)? {
            Statement::Statement(inner) => crate::sql_check::check_depth(&inner),
            _ => Ok(()),
        }
    }

    async fn dataframe(&self, sql: &str, params: &[ScalarValue]) -> Result<DataFrame, EngineError> {
        let df = self.dataframe_as_read(sql, params).await?;
        views::without_views(df).map_err(EngineError::sql)
    }

    /// The query's plan with text as the Parquet reader gives it (string views).
    async fn dataframe_as_read(
        &self,
        sql: &str,
        params: &[ScalarValue],
    ) -> Result<DataFrame, EngineError> {
        let statement = self.parse(sql)?;
        let state = self.ctx.state();
        for reference in state
            .resolve_table_references(&statement)
            .map_err(EngineError::sql)?
        {
            // Names that are not tables of the folder are left to the planner to report.
            if let Some(table) = self.tables.iter().find(|t| t.name == reference.table()) {
                self.register(table).await?;
            }
        }
        let plan = self
            .ctx
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(EngineError::sql)?;
        read_only().verify_plan(&plan).map_err(EngineError::sql)?;
        crate::plan_check::check_expansion(&plan)?;
        let df = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(EngineError::sql)?;
        if params.is_empty() {
            Ok(df)
        } else {
            df.with_param_values(params.to_vec())
                .map_err(EngineError::sql)
        }
    }

    /// Plans `sql` without running it and returns its result's schema.
    pub async fn plan(&self, sql: &str) -> Result<SchemaRef, EngineError> {
        self.plan_with(sql, &[]).await
    }

    /// Plans `sql` with `params` bound to `$1`, `$2`...
    pub async fn plan_with(
        &self,
        sql: &str,
        params: &[ScalarValue],
    ) -> Result<SchemaRef, EngineError> {
        let df = self.dataframe(sql, params).await?;
        Ok(Arc::new(df.schema().as_arrow().clone()))
    }

    /// Runs `sql`, streaming its result.
    pub async fn query(&self, sql: &str) -> Result<QueryStream, EngineError> {
        self.query_with(sql, &[]).await
    }

    /// Runs `sql` with `params` bound to `$1`, `$2`..., streaming its result.
    pub async fn query_with(
        &self,
        sql: &str,
        params: &[ScalarValue],
    ) -> Result<QueryStream, EngineError> {
        self.stream(sql, params, Text::Plain).await
    }

    /// Runs `sql` with `params` bound, streaming its result with its text as `text` says.
    pub async fn stream(
        &self,
        sql: &str,
        params: &[ScalarValue],
        text: Text,
    ) -> Result<QueryStream, EngineError> {
        let df = match text {
            Text::Plain => self.dataframe(sql, params).await?,
            Text::AsRead => self.dataframe_as_read(sql, params).await?,
        };
        let inner = df.execute_stream().await.map_err(EngineError::query)?;
        let schema = inner.schema();
        Ok(QueryStream::new(
            schema,
            Box::pin(inner.map(|item| item.map_err(EngineError::query))),
        ))
    }

    /// The number of rows `sql` (with `params` bound) returns (the query runs, its rows are only counted).
    pub async fn count(&self, sql: &str, params: &[ScalarValue]) -> Result<u64, EngineError> {
        let df = self.dataframe(sql, params).await?;
        let n = df.count().await.map_err(EngineError::query)?;
        Ok(n as u64)
    }

    /// The schema and first `limit` rows of `sql` (with `params` bound).
    pub async fn preview(
        &self,
        sql: &str,
        params: &[ScalarValue],
        limit: usize,
    ) -> Result<crate::Preview, EngineError> {
        let df = self.dataframe(sql, params).await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df
            .limit(0, Some(limit))
            .map_err(EngineError::query)?
            .collect()
            .await
            .map_err(EngineError::query)?;
        crate::preview::build(&schema, &batches)
    }
}

/// A query's result as it is produced.
pub struct QueryStream {
    schema: SchemaRef,
    inner: Pin<Box<dyn Stream<Item = Result<RecordBatch, EngineError>> + Send>>,
}

impl QueryStream {
    pub(crate) fn new(
        schema: SchemaRef,
        inner: Pin<Box<dyn Stream<Item = Result<RecordBatch, EngineError>> + Send>>,
    ) -> Self {
        Self { schema, inner }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch, EngineError>;

    /// Every batch, from any warehouse, passes [`crate::guard::check_batch`] before anyone
    /// encodes it.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx).map(|item| {
            item.map(|batch| batch.and_then(|b| crate::guard::check_batch(&b).map(|()| b)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn warehouse() -> (tempfile::TempDir, LocalWarehouse) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("people.csv"),
            "id,name,city\n1,Ada,\"Paris\nFrance\"\n2,Bob,\n",
        )
        .expect("write");
        std::fs::create_dir(dir.path().join("events")).expect("mkdir");
        std::fs::write(
            dir.path().join("events/a.ndjson"),
            "{\"id\":1,\"kind\":\"x\"}\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("events/b.ndjson"),
            "{\"id\":2,\"kind\":null}\n",
        )
        .expect("write");
        let settings = EngineSettings::new(dir.path().join(".spill"));
        let w = LocalWarehouse::open(dir.path(), &settings)
            .await
            .expect("opens");
        (dir, w)
    }

    #[tokio::test]
    async fn files_and_folders_are_tables() {
        let (_dir, w) = warehouse().await;
        let names: Vec<&str> = w.tables().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["events", "people"]);
        let mut stream = w
            .query("SELECT id, city FROM people ORDER BY id")
            .await
            .expect("query");
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            rows += batch.expect("batch").num_rows();
        }
        assert_eq!(rows, 2);
        assert_eq!(
            w.count("SELECT * FROM events", &[]).await.expect("count"),
            2
        );
    }

    #[tokio::test]
    async fn bad_sql_says_where() {
        let (_dir, w) = warehouse().await;
        let err = w
            .plan("SELECT id FROM people WHERE")
            .await
            .expect_err("bad");
        assert!(matches!(err, EngineError::Sql { .. }), "{err}");
        let err = w.plan("SELEC id FROM people").await.expect_err("bad");
        assert!(err.to_string().contains("line 1, column 1"), "{err}");
        let err = w
            .plan("SELECT id,\n  nope FROM people")
            .await
            .expect_err("bad");
        let text = err.to_string();
        assert!(
            text.contains("nope") && text.contains("line 2, column 3"),
            "{text}"
        );
        let err = w.plan("SELECT * FROM missing").await.expect_err("bad");
        assert!(err.to_string().contains("missing"), "{err}");
        let err = crate::Warehouse::Local(w)
            .validate_model("SELECT id AS key FROM people", "id")
            .await
            .expect_err("no key");
        assert!(err.to_string().contains("its columns are: key"), "{err}");
    }

    #[tokio::test]
    async fn a_sort_larger_than_the_memory_limit_spills_instead_of_failing() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(dir.path().join("wide.csv")).expect("create"),
        );
        writeln!(f, "id,text").expect("write");
        for i in 0..200_000u64 {
            writeln!(f, "{},{}", (i * 7919) % 200_000, "x".repeat(40)).expect("write");
        }
        drop(f);
        let mut settings = EngineSettings::new(dir.path().join(".spill"));
        settings.memory_limit = 4 * 1024 * 1024;
        settings.target_partitions = 1;
        let w = LocalWarehouse::open(dir.path(), &settings)
            .await
            .expect("opens");
        let mut stream = w
            .query("SELECT id, text FROM wide ORDER BY text, id")
            .await
            .expect("query");
        let (mut rows, mut last) = (0, -1i64);
        while let Some(batch) = stream.next().await {
            let batch = batch.expect("a spilling sort, not an out-of-memory error");
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .expect("ids");
            for id in ids.values() {
                assert!(*id > last, "sorted");
                last = *id;
            }
            rows += batch.num_rows();
        }
        assert_eq!(rows, 200_000);
    }

    #[tokio::test]
    async fn statements_that_write_are_refused() {
        let (dir, w) = warehouse().await;
        for sql in [
            "CREATE TABLE t AS SELECT 1",
            "COPY people TO '/tmp/x.csv'",
            "SET datafusion.execution.batch_size = 1",
        ] {
            assert!(w.plan(sql).await.is_err(), "{sql}");
        }
        assert!(!dir.path().join("t").exists());
    }
}
