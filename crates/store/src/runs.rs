//! Runs, the files they completed, and the multipart uploads they started.

use crate::Store;
use crate::error::StoreError;
use crate::scheduler::Trigger;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// The status a run is shown with: a failed run whose error is `cancelled` or
    /// `interrupted` says so. [`Store::list_runs`] filters by the same rule, in SQL.
    pub fn shown(self, error_code: Option<&str>) -> &'static str {
        match (self, error_code) {
            (Self::Failed, Some("cancelled")) => "cancelled",
            (Self::Failed, Some("interrupted")) => "interrupted",
            (status, _) => status.as_str(),
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt {
                record: "run".into(),
                detail: format!("unknown status {other:?}"),
            }),
        }
    }
}

/// A file a run completed. `part` is the file's number in the run; the manifest has `-1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRunFile {
    pub part: i64,
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub checksum: String,
    pub request_id: Option<String>,
    /// The earlier attempt of the same logical run that wrote the file, when this attempt
    /// kept it rather than wrote it again.
    pub carried_from: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: String,
    pub sync_name: String,
    pub status: RunStatus,
    pub trigger: Trigger,
    /// Who triggered it (manual, api and ui runs).
    pub actor: Option<String>,
    /// The run this one retries.
    pub retry_of: Option<String>,
    pub attempt: u32,
    /// The logical run the attempt belongs to: its first attempt's id (its own for a first
    /// attempt), which its keys and manifest carry.
    pub logical_run: String,
    /// The sync's epoch its lease took (none while queued).
    pub epoch: Option<i64>,
    /// The process that ran it (`host:pid`).
    pub owner: Option<String>,
    pub due_at: String,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub rows: u64,
    pub bytes: u64,
    pub error: Option<(String, String)>,
    /// This run's failure paused its sync: the reason.
    pub paused_sync: Option<String>,
    /// The sync's mode when the run ended (`all` until then).
    pub mode: wharf_domain::SyncMode,
    /// How the result compared with the last snapshot (not for `all`).
    pub changes: Option<wharf_domain::ChangeCounts>,
    /// The sync and model as they were when the run started (JSON; none while queued).
    pub definition: Option<String>,
    pub files: Vec<NewRunFile>,
}

/// A multipart upload wharf started and never completed or aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleUpload {
    pub id: i64,
    pub upload_id: Option<String>,
    pub key: String,
    pub run_id: String,
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn db_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

const RUN_SELECT: &str =
    "SELECT r.*, y.name AS sync_name FROM runs r JOIN syncs y ON y.id = r.sync_id";

impl Store {
    /// Closes a `running` run as interrupted: the caller knows its process is gone. Its
    /// uploads stay `open` for the janitor.
    pub async fn close_dead_run(&self, run_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'failed', finished_at = ?, error_code = 'interrupted',
                error_message = 'the wharf process running it stopped (killed, or the machine lost); its uploads were aborted by the next run'
             WHERE id = ? AND status = 'running'",
        )
        .bind(crate::now())
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The id of the sync's run in progress, if any.
    pub async fn running_run(&self, sync_id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM runs WHERE sync_id = ? AND status = 'running'")
                .bind(sync_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records the definition a run executes, when it starts.
    pub async fn set_run_definition(
        &self,
        run_id: &str,
        definition: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET definition = ? WHERE id = ?")
            .bind(definition)
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a file the run completed, while the run is in progress: a run closed
    /// underneath (its lease expired and another attempt took over) gets
    /// [`StoreError::Fenced`].
    pub async fn add_run_file(&self, run_id: &str, file: &NewRunFile) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO run_files (run_id, part, key, rows, bytes, checksum, request_id,
                 carried_from)
             SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS
                 (SELECT 1 FROM runs WHERE id = ? AND status = 'running')",
        )
        .bind(run_id)
        .bind(file.part)
        .bind(&file.key)
        .bind(db_count(file.rows))
        .bind(db_count(file.bytes))
        .bind(&file.checksum)
        .bind(&file.request_id)
        .bind(&file.carried_from)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Fenced {
                run_id: run_id.to_string(),
            });
        }
        Ok(())
    }

    /// Records that a multipart upload of `key` is about to be created; returns the record's id.
    pub async fn upload_intent(
        &self,
        run_id: &str,
        destination_id: &str,
        key: &str,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO uploads (run_id, destination_id, key, state, started_at)
             VALUES (?, ?, ?, 'creating', ?) RETURNING id",
        )
        .bind(run_id)
        .bind(destination_id)
        .bind(key)
        .bind(crate::now())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Records the upload id S3 gave, before the first part is sent.
    pub async fn upload_created(&self, id: i64, upload_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET upload_id = ?, state = 'open' WHERE id = ?")
            .bind(upload_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that an upload was completed (`completed = true`) or aborted (or never created).
    pub async fn upload_finished(&self, id: i64, completed: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET state = ?, finished_at = ? WHERE id = ?")
            .bind(if completed { "completed" } else { "aborted" })
            .bind(crate::now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Uploads to `destination_id` not finished although their run is over: what the janitor
    /// aborts. `upload_id` is `None` when wharf stopped between recording the intent and
    /// receiving the id.
    pub async fn stale_uploads(
        &self,
        destination_id: &str,
    ) -> Result<Vec<StaleUpload>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.upload_id, u.key, u.run_id FROM uploads u JOIN runs r ON r.id = u.run_id
             WHERE u.destination_id = ? AND u.state IN ('creating', 'open') AND r.status <> 'running'
             ORDER BY u.id",
        )
        .bind(destination_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StaleUpload {
                    id: row.try_get("id")?,
                    upload_id: row.try_get("upload_id")?,
                    key: row.try_get("key")?,
                    run_id: row.try_get("run_id")?,
                })
            })
            .collect()
    }

    pub async fn run(&self, workspace: &str, run_id: &str) -> Result<RunRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RUN_SELECT} WHERE r.workspace_id = ? AND r.id = ?"
        )))
        .bind(workspace)
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "run",
            name: run_id.to_string(),
        })?;
        let mut run = run_from_row(&row)?;
        run.files = self.run_files(run_id).await?;
        Ok(run)
    }

    async fn run_files(&self, run_id: &str) -> Result<Vec<NewRunFile>, StoreError> {
        let rows = sqlx::query("SELECT * FROM run_files WHERE run_id = ? ORDER BY part = -1, part")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// Runs, newest first, that pass `filter`.
    pub async fn list_runs(
        &self,
        workspace: &str,
        filter: &RunFilter<'_>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        if let Some(sync) = filter.sync {
            // Say "no sync named ..." rather than show an empty list for a typo.
            self.sync(workspace, sync).await?;
        }
        // A run's shown status, as `RunStatus::shown` derives it.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RUN_SELECT} WHERE r.workspace_id = ? AND (? IS NULL OR y.name = ?)
               AND (? IS NULL OR (CASE WHEN r.status = 'failed'
                   AND r.error_code IN ('cancelled', 'interrupted') THEN r.error_code
                   ELSE r.status END) = ?)
               AND (? IS NULL OR (r.queued_at, r.id) <
                   (SELECT c.queued_at, c.id FROM runs c WHERE c.id = ?))
             ORDER BY r.queued_at DESC, r.id DESC LIMIT ?"
        )))
        .bind(workspace)
        .bind(filter.sync)
        .bind(filter.sync)
        .bind(filter.status)
        .bind(filter.status)
        .bind(filter.before)
        .bind(filter.before)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        let mut runs: Vec<RunRecord> = rows.iter().map(run_from_row).collect::<Result<_, _>>()?;
        for run in &mut runs {
            run.files = self.run_files(&run.id).await?;
        }
        Ok(runs)
    }
}

pub(crate) fn file_from_row(row: &SqliteRow) -> Result<NewRunFile, StoreError> {
    Ok(NewRunFile {
        part: row.try_get("part")?,
        key: row.try_get("key")?,
        rows: count(row.try_get("rows")?),
        bytes: count(row.try_get("bytes")?),
        checksum: row.try_get("checksum")?,
        request_id: row.try_get("request_id")?,
        carried_from: row.try_get("carried_from")?,
    })
}

/// Which runs [`Store::list_runs`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFilter<'a> {
    /// Only this sync's.
    pub sync: Option<&'a str>,
    /// Only runs shown with this status (`running`, `succeeded`, `failed`, `cancelled`,
    /// `interrupted`).
    pub status: Option<&'a str>,
    /// Only runs listed after this one (its id), for the next page.
    pub before: Option<&'a str>,
    pub limit: u32,
}

fn run_from_row(row: &SqliteRow) -> Result<RunRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let code: Option<String> = row.try_get("error_code")?;
    let message: Option<String> = row.try_get("error_message")?;
    Ok(RunRecord {
        id: row.try_get("id")?,
        sync_name: row.try_get("sync_name")?,
        status: RunStatus::parse(&status)?,
        trigger: Trigger::parse(&row.try_get::<String, _>("trigger")?)?,
        actor: row.try_get("actor")?,
        retry_of: row.try_get("retry_of")?,
        attempt: u32::try_from(row.try_get::<i64, _>("attempt")?).unwrap_or(1),
        logical_run: row
            .try_get::<Option<String>, _>("logical_run")?
            .map_or_else(|| row.try_get("id"), Ok)?,
        epoch: row.try_get("epoch")?,
        owner: row.try_get("owner")?,
        due_at: row.try_get("due_at")?,
        queued_at: row.try_get("queued_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        rows: count(row.try_get("rows")?),
        bytes: count(row.try_get("bytes")?),
        error: code.map(|c| (c, message.unwrap_or_default())),
        paused_sync: row.try_get("paused_sync")?,
        mode: wharf_domain::SyncMode::parse(&row.try_get::<String, _>("mode")?).map_err(|e| {
            StoreError::Corrupt {
                record: "run".into(),
                detail: e.to_string(),
            }
        })?,
        changes: row
            .try_get::<Option<String>, _>("changes")?
            .map(|text| crate::catalog::from_json(&text, "run changes"))
            .transpose()?,
        definition: row.try_get("definition")?,
        files: Vec::new(),
    })
}
