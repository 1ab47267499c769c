-- Runs outside a transaction (see migrations.rs) so foreign keys can be switched off while
-- `runs` is rebuilt: SQLite cannot change a CHECK constraint in place.
PRAGMA foreign_keys = OFF;
BEGIN;

-- Syncs gain a schedule, a run policy and the scheduler's state.
-- `schedule` and `policy` are JSON of wharf_domain::ScheduleSpec and RunPolicy.
ALTER TABLE syncs ADD COLUMN schedule TEXT NOT NULL DEFAULT '{"kind":"manual"}';
ALTER TABLE syncs ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
-- The next due time (RFC 3339, UTC); NULL for a manual schedule.
ALTER TABLE syncs ADD COLUMN next_run_at TEXT;
-- Set while the sync is paused: the scheduler skips it (manual runs still work).
ALTER TABLE syncs ADD COLUMN paused_at TEXT;
ALTER TABLE syncs ADD COLUMN pause_reason TEXT;
-- Scheduled runs in a row that failed for good (after their retries); a success resets it.
ALTER TABLE syncs ADD COLUMN failures_in_row INTEGER NOT NULL DEFAULT 0;
-- The fencing counter: every claim of a run of this sync takes the next epoch, and a run
-- commits (its last file, its manifest, `succeeded`) only while its epoch is the sync's.
ALTER TABLE syncs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
CREATE INDEX syncs_due ON syncs (next_run_at) WHERE next_run_at IS NOT NULL;

-- Runs may wait in a queue, and carry their trigger, attempt and lease.
CREATE TABLE runs_new (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    sync_id          TEXT NOT NULL REFERENCES syncs (id),
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    -- what asked for it: the schedule, a person (manual = the CLI, api, ui), or a retry
    trigger          TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual', 'retry', 'api', 'ui')),
    -- who, for manual, api and ui triggers (a token's name, a user's email, `cli`)
    actor            TEXT,
    -- the failed run this one retries
    retry_of         TEXT,
    -- 1 for a first attempt, then 2, 3... for its retries
    attempt          INTEGER NOT NULL DEFAULT 1,
    -- when it was due: the scheduled time, the trigger's time, or the end of a retry's backoff
    due_at           TEXT NOT NULL,
    queued_at        TEXT NOT NULL,
    started_at       TEXT,
    -- the lease the running attempt holds: its id, the sync's epoch it took, until when it
    -- holds it (renewed with the heartbeat), and which process (host:pid) holds it
    lease_id         TEXT,
    epoch            INTEGER,
    lease_expires_at TEXT,
    owner            TEXT,
    heartbeat_at     TEXT,
    finished_at      TEXT,
    rows             INTEGER NOT NULL DEFAULT 0,
    bytes            INTEGER NOT NULL DEFAULT 0,
    error_code       TEXT,
    error_message    TEXT,
    -- the sync and model as the run saw them (set when it starts)
    definition       TEXT,
    CHECK ((status IN ('queued', 'running')) = (finished_at IS NULL)),
    CHECK (status = 'queued' OR started_at IS NOT NULL),
    CHECK (status <> 'running' OR lease_id IS NOT NULL)
);
INSERT INTO runs_new (id, workspace_id, sync_id, status, trigger, actor, attempt, due_at,
        queued_at, started_at, lease_id, epoch, lease_expires_at, heartbeat_at, finished_at,
        rows, bytes, error_code, error_message, definition)
    SELECT id, workspace_id, sync_id, status, 'manual', 'cli', 1, started_at, started_at,
        started_at, CASE WHEN status = 'running' THEN 'migrated' END, 0, heartbeat_at,
        heartbeat_at, finished_at, rows, bytes, error_code, error_message, definition
    FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;

-- One run per sync at a time, and at most one waiting.
CREATE UNIQUE INDEX runs_one_running_per_sync ON runs (sync_id) WHERE status = 'running';
CREATE UNIQUE INDEX runs_one_queued_per_sync ON runs (sync_id) WHERE status = 'queued';
CREATE INDEX runs_by_sync ON runs (sync_id, queued_at);
CREATE INDEX runs_by_workspace ON runs (workspace_id, queued_at);
CREATE INDEX runs_waiting ON runs (due_at) WHERE status = 'queued';

COMMIT;
PRAGMA foreign_keys = ON;
