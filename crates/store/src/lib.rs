//! The metadata store: what wharf remembers between runs (destinations, sources, models, syncs,
//! segments, runs with their files and uploads; snapshots later), and the encryption of the secrets
//! among it.
//!
//! This crate owns the SQLite database under `$WHARF_HOME`, its migrations (embedded in the
//! binary), the master key, and AES-256-GCM sealing of secrets bound to their record. PostgreSQL
//! joins later behind the same `Store` API for deployments where several wharf processes share
//! work.
//!
//! It must not know about S3, Arrow or HTTP: it stores validated `wharf_domain` values and hands
//! them back validated (every row is re-checked on load, so a hand-edited database cannot smuggle
//! an invalid bucket or endpoint past the domain rules).
//!
//! Rejected alternative: compile-time checked `sqlx::query!` macros. They need a live database
//! or an offline cache at build time and a proc-macro build of the SQLite driver; the queries here
//! are few and covered by tests.

mod access;
mod alerts;
mod attempts;
mod audit;
mod catalog;
mod crypto;
mod destinations;
mod error;
mod master_key;
mod migrations;
mod runs;
mod scheduler;
mod segments;
mod sessions;
mod users;

pub use access::{NewToken, TokenRecord, WorkspaceRecord};
pub use alerts::{AlertChannelRecord, ChannelSecrets, DeliveryRecord, PendingAlert, TakenDelivery};
pub use attempts::{CommittedFile, LogicalRun};
pub use audit::{AuditEntry, NewAudit};
pub use catalog::{Exports, ModelRecord, NewModel, SourceRecord, SyncRecord, SyncTiming};
pub use crypto::Cipher;
pub use destinations::{DestinationRecord, TestOutcome, Unverified};
pub use error::{StoreError, list_command};
pub use master_key::{MASTER_KEY_ENV, MASTER_KEY_FILE, MasterKey};
pub use runs::{NewRunFile, RunFilter, RunRecord, RunStatus, StaleUpload};
pub use scheduler::{
    Enqueued, Expired, Finish, Finished, Lease, LeaseTerms, NewRun, RunningRun, ScheduleState,
    SkippedDue, Tick, Trigger, Unreadable, stamp,
};
pub use segments::SegmentRecord;
pub use sessions::SessionRecord;
pub use users::{UserRecord, UserWithHash};

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The workspace every object belongs to until multi-workspace deployments arrive.
pub const DEFAULT_WORKSPACE: &str = "default";

/// File name of the SQLite database inside `$WHARF_HOME`.
pub const DATABASE_FILE: &str = "wharf.db";

/// An open metadata store.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    cipher: Cipher,
    home: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store in `home`: the folder (mode 0700), the database
    /// (mode 0600, migrated to the latest schema) and the master key.
    ///
    /// Only a missing `wharf.db` makes a new store. An existing file that is empty, not SQLite
    /// or another program's database is an error (SQLite would take a 0-byte file as a new,
    /// empty database, and every destination and secret would be gone without a word), and so
    /// is an existing store whose key file is missing.
    pub async fn open(home: &Path) -> Result<Self, StoreError> {
        create_private_dir(home)?;
        let db_path = home.join(DATABASE_FILE);
        let existing = check_existing_database(&db_path)?;
        let options = SqliteConnectOptions::new()
            .filename(&db_path)
            .create_if_missing(!existing)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: db_path.clone(),
                source,
            })?;
        restrict_file(&db_path)?;
        if existing {
            check_wharf_schema(&pool, &db_path).await?;
        }
        let master_key = MasterKey::load(home, !existing)?;
        migrations::run(&pool).await?;
        Ok(Self {
            pool,
            cipher: Cipher::new(&master_key),
            home: home.to_path_buf(),
        })
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Fails unless a query goes through and every migration this build knows is applied.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.pool)
                .await?;
        if usize::try_from(applied).ok() != Some(migrations::count()) {
            return Err(StoreError::Corrupt {
                record: "schema".into(),
                detail: format!(
                    "{applied} migrations applied, this build has {}",
                    migrations::count()
                ),
            });
        }
        Ok(())
    }

    /// Closes the pool, checkpointing the write-ahead log.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Now, as stored: RFC 3339 in UTC.
/// Now, as the store records times (fixed width, so that text order is time order).
pub(crate) fn now() -> String {
    scheduler::stamp(time::OffsetDateTime::now_utc())
}

/// The first bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether `path` holds a database to open (`true`) or nothing yet (`false`); anything else
/// there is an error that says what was found.
fn check_existing_database(path: &Path) -> Result<bool, StoreError> {
    use std::io::Read as _;
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_a_store = |found: &str| StoreError::NotAStore {
        path: path.to_path_buf(),
        found: found.to_string(),
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink is not "missing": a new store would be written elsewhere.
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(not_a_store("a symbolic link to a file that does not exist"));
            }
            return Ok(false);
        }
        Err(e) => return Err(io(e)),
    };
    if !meta.is_file() {
        return Err(not_a_store("not a regular file"));
    }
    if meta.len() == 0 {
        return Err(not_a_store("an empty file (0 bytes)"));
    }
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let read = file.read(&mut header).map_err(io)?;
    if read < header.len() || &header != SQLITE_HEADER {
        return Err(not_a_store(&format!(
            "a {}-byte file that is not a SQLite database",
            meta.len()
        )));
    }
    Ok(true)
}

/// An existing database must carry wharf's migration table; another program's SQLite file
/// would otherwise be migrated into a wharf store.
async fn check_wharf_schema(pool: &SqlitePool, path: &Path) -> Result<(), StoreError> {
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await?;
    if tables == 0 {
        return Err(StoreError::NotAStore {
            path: path.to_path_buf(),
            found: "a SQLite database without wharf's tables".into(),
        });
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |source| StoreError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    Ok(())
}

fn restrict_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}
