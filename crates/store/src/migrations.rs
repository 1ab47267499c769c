//! Schema migrations, embedded in the binary and applied in order at open.

use crate::error::StoreError;
use sqlx::SqlitePool;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// Every migration, oldest first, and whether it manages its own transaction. Append only: a
/// released migration is never edited (sqlx checks a checksum of each applied one and refuses to
/// start if it changed).
const MIGRATIONS: &[(i64, &str, &str, bool)] = &[
    (
        1,
        "destinations",
        include_str!("../migrations/0001_destinations.sql"),
        false,
    ),
    (
        2,
        "pipeline",
        include_str!("../migrations/0002_pipeline.sql"),
        false,
    ),
    // Rebuilds `sources` with foreign keys off, which SQLite ignores inside a transaction.
    (
        3,
        "segments",
        include_str!("../migrations/0003_segments.sql"),
        true,
    ),
    (
        4,
        "access",
        include_str!("../migrations/0004_access.sql"),
        false,
    ),
    (
        5,
        "audit",
        include_str!("../migrations/0005_audit.sql"),
        false,
    ),
    (
        6,
        "users",
        include_str!("../migrations/0006_users.sql"),
        false,
    ),
    // Rebuilds `runs` (a `queued` status, triggers, leases) with foreign keys off.
    (
        7,
        "scheduler",
        include_str!("../migrations/0007_scheduler.sql"),
        true,
    ),
    (
        8,
        "alerts",
        include_str!("../migrations/0008_alerts.sql"),
        false,
    ),
    (
        9,
        "run paused sync",
        include_str!("../migrations/0009_run_paused.sql"),
        false,
    ),
    (
        10,
        "sync modes",
        include_str!("../migrations/0010_sync_modes.sql"),
        false,
    ),
    (
        11,
        "resumable runs",
        include_str!("../migrations/0011_resumable_runs.sql"),
        false,
    ),
    (
        12,
        "sessions",
        include_str!("../migrations/0012_sessions.sql"),
        false,
    ),
    (
        13,
        "unverified_because",
        include_str!("../migrations/0013_unverified_because.sql"),
        false,
    ),
];

/// How many migrations this build applies.
pub(crate) fn count() -> usize {
    MIGRATIONS.len()
}

pub(crate) async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql, no_tx)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(*sql).into_sql_str(),
                *no_tx,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
        .run(pool)
        .await
        .map_err(StoreError::Migrate)
}

use sqlx::SqlSafeStr as _;
