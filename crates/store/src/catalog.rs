//! Sources, models and syncs: the objects a user defines before anything runs.

use crate::Store;
use crate::crypto::Cipher;
use crate::error::StoreError;
use sqlx::AssertSqlSafe;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use wharf_domain::{
    ColumnInfo, Name, PostgresUrl, RunPolicy, Schedule, SourceConfig, SyncSettings,
};

#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub id: String,
    pub name: String,
    pub config: SourceConfig,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct ModelRecord {
    pub id: String,
    pub name: String,
    pub source: SourceRecord,
    pub sql: String,
    pub primary_key: String,
    pub columns: Vec<ColumnInfo>,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct SyncRecord {
    pub id: String,
    pub name: String,
    pub model_id: String,
    pub model_name: String,
    /// Set when the sync exports a segment of its model rather than the whole model.
    pub segment_id: Option<String>,
    pub segment_name: Option<String>,
    pub destination_id: String,
    pub destination_name: String,
    pub settings: SyncSettings,
    pub schedule: Schedule,
    pub policy: RunPolicy,
    pub state: crate::ScheduleState,
    /// The run whose snapshot the next run compares against (insert, diff and delta syncs);
    /// none: the next run sends every row.
    pub snapshot_run: Option<String>,
    pub created_at: String,
}

/// When a sync runs by itself and how its runs are retried, and the time a new schedule's
/// next due time is counted from.
#[derive(Debug, Clone, Copy)]
pub struct SyncTiming<'a> {
    pub schedule: &'a Schedule,
    pub policy: &'a RunPolicy,
    pub now: time::OffsetDateTime,
}

/// What a sync exports: a whole model, or a segment of one.
#[derive(Debug, Clone, Copy)]
pub enum Exports<'a> {
    Model(&'a str),
    Segment(&'a str),
}

/// A new model, planned by the engine before it is stored.
#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    pub name: &'a Name,
    pub source: &'a str,
    pub sql: &'a str,
    pub primary_key: &'a str,
    pub columns: &'a [ColumnInfo],
}

pub(crate) fn json<T: serde::Serialize>(value: &T, record: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        record: record.to_string(),
        detail: e.to_string(),
    })
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    record: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        record: record.to_string(),
        detail: e.to_string(),
    })
}

/// Maps a unique violation to "already exists", other errors through.
pub(crate) fn inserted(
    result: Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>,
    kind: &'static str,
    name: &str,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::AlreadyExists {
                kind,
                name: name.to_string(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The associated data that binds a source's sealed URL to its record.
fn source_aad(id: &str) -> Vec<u8> {
    format!("wharf/source/{id}/url").into_bytes()
}

fn source_from_row(
    row: &SqliteRow,
    column_prefix: &str,
    cipher: &Cipher,
) -> Result<SourceRecord, StoreError> {
    let col = |c: &str| format!("{column_prefix}{c}");
    let id: String = row.try_get(col("id").as_str())?;
    let name: String = row.try_get(col("name").as_str())?;
    let config: String = row.try_get(col("config").as_str())?;
    let record = format!("source {name:?}");
    let mut config: SourceConfig = from_json(&config, &record)?;
    if let SourceConfig::Postgres(pg) = &mut config {
        let sealed: Option<Vec<u8>> = row.try_get(col("secret").as_str())?;
        let sealed = sealed.ok_or_else(|| StoreError::Corrupt {
            record: record.clone(),
            detail: "a PostgreSQL source without its sealed URL".into(),
        })?;
        let plaintext =
            cipher
                .open(&sealed, &source_aad(&id))
                .map_err(|_| StoreError::Decrypt {
                    record: record.clone(),
                    key_origin: cipher.key_origin().to_string(),
                })?;
        let url = String::from_utf8(plaintext).map_err(|_| StoreError::Corrupt {
            record,
            detail: "the sealed URL is not text".into(),
        })?;
        pg.url = PostgresUrl::from_stored(url);
    }
    Ok(SourceRecord {
        id,
        config,
        name,
        created_at: row.try_get(col("created_at").as_str())?,
    })
}

const MODEL_SELECT: &str = "SELECT m.id, m.name, m.sql, m.primary_key, m.columns, m.created_at,
        s.id AS s_id, s.name AS s_name, s.config AS s_config, s.secret AS s_secret,
        s.created_at AS s_created_at
    FROM models m JOIN sources s ON s.id = m.source_id";

fn model_from_row(row: &SqliteRow, cipher: &Cipher) -> Result<ModelRecord, StoreError> {
    let name: String = row.try_get("name")?;
    let columns: String = row.try_get("columns")?;
    Ok(ModelRecord {
        id: row.try_get("id")?,
        source: source_from_row(row, "s_", cipher)?,
        sql: row.try_get("sql")?,
        primary_key: row.try_get("primary_key")?,
        columns: from_json(&columns, &format!("model {name:?}"))?,
        created_at: row.try_get("created_at")?,
        name,
    })
}

const SYNC_SELECT: &str = "SELECT y.id, y.name, y.settings, y.created_at, y.model_id,
        y.schedule, y.policy, y.next_run_at, y.paused_at, y.pause_reason, y.failures_in_row,
        y.snapshot_run, m.name AS model_name, y.segment_id, g.name AS segment_name, y.destination_id,
        d.name AS destination_name
    FROM syncs y JOIN models m ON m.id = y.model_id JOIN destinations d ON d.id = y.destination_id
        LEFT JOIN segments g ON g.id = y.segment_id";

fn sync_from_row(row: &SqliteRow) -> Result<SyncRecord, StoreError> {
    let name: String = row.try_get("name")?;
    let settings: String = row.try_get("settings")?;
    let record = format!("sync {name:?}");
    let settings: SyncSettings = from_json(&settings, &record)?;
    let (settings, _) = settings.validate().map_err(|e| StoreError::Corrupt {
        record: record.clone(),
        detail: e.to_string(),
    })?;
    let schedule =
        crate::scheduler::schedule_from_json(&row.try_get::<String, _>("schedule")?, &record)?;
    let policy: RunPolicy = from_json(&row.try_get::<String, _>("policy")?, &record)?;
    let policy = policy.validate().map_err(|e| StoreError::Corrupt {
        record: record.clone(),
        detail: e.to_string(),
    })?;
    Ok(SyncRecord {
        id: row.try_get("id")?,
        schedule,
        policy,
        state: crate::ScheduleState {
            next_run_at: row.try_get("next_run_at")?,
            paused_at: row.try_get("paused_at")?,
            pause_reason: row.try_get("pause_reason")?,
            failures_in_row: u32::try_from(row.try_get::<i64, _>("failures_in_row")?).unwrap_or(0),
        },
        model_id: row.try_get("model_id")?,
        model_name: row.try_get("model_name")?,
        segment_id: row.try_get("segment_id")?,
        segment_name: row.try_get("segment_name")?,
        destination_id: row.try_get("destination_id")?,
        destination_name: row.try_get("destination_name")?,
        settings,
        snapshot_run: row.try_get("snapshot_run")?,
        created_at: row.try_get("created_at")?,
        name,
    })
}

impl Store {
    pub async fn create_source(
        &self,
        workspace: &str,
        name: &Name,
        config: &SourceConfig,
    ) -> Result<SourceRecord, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let secret = match config {
            SourceConfig::Postgres(pg) => Some(
                self.cipher
                    .seal(pg.url.expose().as_bytes(), &source_aad(&id)),
            ),
            SourceConfig::Local { .. } => None,
        };
        let result = sqlx::query(
            "INSERT INTO sources (id, workspace_id, name, kind, config, secret, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(workspace)
        .bind(name.as_str())
        .bind(config.kind())
        .bind(json(config, "source")?)
        .bind(secret)
        .bind(crate::now())
        .execute(&self.pool)
        .await;
        inserted(result, "source", name.as_str())?;
        self.source(workspace, name.as_str()).await
    }

    pub async fn source(&self, workspace: &str, name: &str) -> Result<SourceRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM sources WHERE workspace_id = ? AND name = ?")
            .bind(workspace)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "source",
                name: name.to_string(),
            })?;
        source_from_row(&row, "", &self.cipher)
    }

    pub async fn list_sources(&self, workspace: &str) -> Result<Vec<SourceRecord>, StoreError> {
        sqlx::query("SELECT * FROM sources WHERE workspace_id = ? ORDER BY name")
            .bind(workspace)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| source_from_row(row, "", &self.cipher))
            .collect()
    }

    pub async fn create_model(
        &self,
        workspace: &str,
        model: &NewModel<'_>,
    ) -> Result<ModelRecord, StoreError> {
        let source = self.source(workspace, model.source).await?;
        let now = crate::now();
        let result = sqlx::query(
            "INSERT INTO models (id, workspace_id, name, source_id, sql, primary_key, columns,
                created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(workspace)
        .bind(model.name.as_str())
        .bind(&source.id)
        .bind(model.sql)
        .bind(model.primary_key)
        .bind(json(&model.columns, "model")?)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await;
        inserted(result, "model", model.name.as_str())?;
        self.model(workspace, model.name.as_str()).await
    }

    pub async fn model(&self, workspace: &str, name: &str) -> Result<ModelRecord, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{MODEL_SELECT} WHERE m.workspace_id = ? AND m.name = ?"
        )))
        .bind(workspace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "model",
            name: name.to_string(),
        })?;
        model_from_row(&row, &self.cipher)
    }

    pub(crate) async fn model_by_id(&self, id: &str) -> Result<ModelRecord, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("{MODEL_SELECT} WHERE m.id = ?")))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        model_from_row(&row, &self.cipher)
    }

    pub async fn list_models(&self, workspace: &str) -> Result<Vec<ModelRecord>, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "{MODEL_SELECT} WHERE m.workspace_id = ? ORDER BY m.name"
        )))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| model_from_row(row, &self.cipher))
        .collect()
    }

    pub async fn create_sync(
        &self,
        workspace: &str,
        name: &Name,
        exports: Exports<'_>,
        destination: &str,
        settings: &SyncSettings,
        timing: SyncTiming<'_>,
    ) -> Result<SyncRecord, StoreError> {
        let (model_id, segment_id) = self.exported_ids(workspace, exports).await?;
        let destination = self.destination(workspace, destination).await?;
        let now = crate::now();
        let result = sqlx::query(
            "INSERT INTO syncs (id, workspace_id, name, model_id, segment_id, destination_id,
                settings, schedule, policy, next_run_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(workspace)
        .bind(name.as_str())
        .bind(&model_id)
        .bind(&segment_id)
        .bind(&destination.id)
        .bind(json(settings, "sync")?)
        .bind(json(timing.schedule, "sync")?)
        .bind(json(timing.policy, "sync")?)
        .bind(timing.schedule.next_after(timing.now).map(crate::stamp))
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await;
        inserted(result, "sync", name.as_str())?;
        self.sync(workspace, name.as_str()).await
    }

    /// The model id and segment id (if any) a sync that exports `exports` refers to.
    async fn exported_ids(
        &self,
        workspace: &str,
        exports: Exports<'_>,
    ) -> Result<(String, Option<String>), StoreError> {
        Ok(match exports {
            Exports::Model(model) => (self.model(workspace, model).await?.id, None),
            Exports::Segment(segment) => {
                let segment = self.segment(workspace, segment).await?;
                (segment.model_id, Some(segment.id))
            }
        })
    }

    pub async fn sync(&self, workspace: &str, name: &str) -> Result<SyncRecord, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{SYNC_SELECT} WHERE y.workspace_id = ? AND y.name = ?"
        )))
        .bind(workspace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "sync",
            name: name.to_string(),
        })?;
        sync_from_row(&row)
    }

    pub async fn list_syncs(&self, workspace: &str) -> Result<Vec<SyncRecord>, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "{SYNC_SELECT} WHERE y.workspace_id = ? ORDER BY y.name"
        )))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(sync_from_row)
        .collect()
    }

    /// Replaces a sync's model or segment, destination, settings, schedule and run policy,
    /// keeping its id and its run history. A new schedule counts its next due time from
    /// `timing.now`; an unchanged one keeps its due time.
    pub async fn update_sync(
        &self,
        workspace: &str,
        name: &str,
        exports: Exports<'_>,
        destination: &str,
        settings: &SyncSettings,
        timing: SyncTiming<'_>,
    ) -> Result<SyncRecord, StoreError> {
        let current = self.sync(workspace, name).await?;
        let (model_id, segment_id) = self.exported_ids(workspace, exports).await?;
        let destination = self.destination(workspace, destination).await?;
        let next_run_at = if current.schedule == *timing.schedule {
            current.state.next_run_at.clone()
        } else {
            timing.schedule.next_after(timing.now).map(crate::stamp)
        };
        sqlx::query(
            "UPDATE syncs SET model_id = ?, segment_id = ?, destination_id = ?, settings = ?,
                schedule = ?, policy = ?, next_run_at = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(&model_id)
        .bind(&segment_id)
        .bind(&destination.id)
        .bind(json(settings, "sync")?)
        .bind(json(timing.schedule, "sync")?)
        .bind(json(timing.policy, "sync")?)
        .bind(next_run_at)
        .bind(crate::now())
        .bind(&current.id)
        .execute(&self.pool)
        .await?;
        self.sync(workspace, name).await
    }

    /// Deletes a sync and its run history, unless a run of it is in progress or an upload of
    /// one is still open (its record is what lets wharf abort it later).
    pub async fn remove_sync(&self, workspace: &str, name: &str) -> Result<(), StoreError> {
        let sync = self.sync(workspace, name).await?;
        let mut tx = self.pool.begin().await?;
        let running: Option<String> =
            sqlx::query_scalar("SELECT id FROM runs WHERE sync_id = ? AND status = 'running'")
                .bind(&sync.id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(run_id) = running {
            return Err(StoreError::InUse {
                kind: "sync",
                name: name.to_string(),
                reason: format!("has a run in progress ({run_id}); wait for it to end"),
            });
        }
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM uploads u JOIN runs r ON r.id = u.run_id
             WHERE r.sync_id = ? AND u.state IN ('creating', 'open')",
        )
        .bind(&sync.id)
        .fetch_one(&mut *tx)
        .await?;
        if open > 0 {
            return Err(StoreError::InUse {
                kind: "sync",
                name: name.to_string(),
                reason: format!(
                    "has {open} multipart upload(s) of interrupted runs still open on its destination, which could not be aborted now; try again once the destination is reachable"
                ),
            });
        }
        for statement in [
            "DELETE FROM run_files WHERE run_id IN (SELECT id FROM runs WHERE sync_id = ?)",
            "DELETE FROM uploads WHERE run_id IN (SELECT id FROM runs WHERE sync_id = ?)",
            "DELETE FROM runs WHERE sync_id = ?",
            "DELETE FROM syncs WHERE id = ?",
        ] {
            sqlx::query(statement)
                .bind(&sync.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a source no model reads.
    pub async fn remove_source(&self, workspace: &str, name: &str) -> Result<(), StoreError> {
        self.remove_unused(workspace, name, Removable::Source).await
    }

    /// Deletes a model no segment or sync uses.
    pub async fn remove_model(&self, workspace: &str, name: &str) -> Result<(), StoreError> {
        self.remove_unused(workspace, name, Removable::Model).await
    }

    /// The model a sync reads, by the sync's record.
    pub async fn model_of(&self, sync: &SyncRecord) -> Result<ModelRecord, StoreError> {
        self.model_by_id(&sync.model_id).await
    }

    /// The segment a sync exports, if it exports one.
    pub async fn segment_of(
        &self,
        sync: &SyncRecord,
    ) -> Result<Option<crate::SegmentRecord>, StoreError> {
        match &sync.segment_id {
            Some(id) => Ok(Some(self.segment_by_id(id).await?)),
            None => Ok(None),
        }
    }
}

/// Objects others refer to, removable only while nothing does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Removable {
    Source,
    Model,
    Destination,
    Segment,
}

/// An object that refers to a removable one: its kind, table, the column holding the
/// reference, and how it uses the object (for the message).
struct Referrer {
    kind: &'static str,
    table: &'static str,
    column: &'static str,
    verb: &'static str,
}

const fn by(
    kind: &'static str,
    table: &'static str,
    column: &'static str,
    verb: &'static str,
) -> Referrer {
    Referrer {
        kind,
        table,
        column,
        verb,
    }
}

const READ_BY_MODELS: &[Referrer] = &[by("model", "models", "source_id", "read")];
const USED_BY_SEGMENTS_AND_SYNCS: &[Referrer] = &[
    by("segment", "segments", "model_id", "filtered"),
    by("sync", "syncs", "model_id", "exported"),
];
const USED_BY_SYNCS: &[Referrer] = &[by("sync", "syncs", "destination_id", "used")];
const EXPORTED_BY_SYNCS: &[Referrer] = &[by("sync", "syncs", "segment_id", "exported")];

impl Removable {
    /// Kind (for messages), table, and who may refer to it.
    fn parts(self) -> (&'static str, &'static str, &'static [Referrer]) {
        match self {
            Self::Source => ("source", "sources", READ_BY_MODELS),
            Self::Model => ("model", "models", USED_BY_SEGMENTS_AND_SYNCS),
            Self::Destination => ("destination", "destinations", USED_BY_SYNCS),
            Self::Segment => ("segment", "segments", EXPORTED_BY_SYNCS),
        }
    }
}

impl Store {
    /// Deletes the named object unless another refers to it (the error names them).
    pub(crate) async fn remove_unused(
        &self,
        workspace: &str,
        name: &str,
        what: Removable,
    ) -> Result<(), StoreError> {
        let (kind, table, referrers) = what.parts();
        for Referrer {
            kind: user_kind,
            table: user_table,
            column,
            verb,
        } in referrers
        {
            // Table and column names are the constants above, never input.
            let users: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT y.name FROM {user_table} y JOIN {table} o ON o.id = y.{column}
                 WHERE o.workspace_id = ? AND o.name = ? ORDER BY y.name"
            )))
            .bind(workspace)
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
            if !users.is_empty() {
                return Err(StoreError::InUse {
                    kind,
                    name: name.to_string(),
                    reason: format!(
                        "is {verb} by {user_kind} {}; remove the {user_kind} first",
                        users.join(", ")
                    ),
                });
            }
        }
        let done = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE workspace_id = ? AND name = ?"
        )))
        .bind(workspace)
        .bind(name)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind,
                name: name.to_string(),
            });
        }
        Ok(())
    }
}
