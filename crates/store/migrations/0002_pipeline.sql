-- Warehouses. `config` is JSON: {"path": "..."} for local sources.
CREATE TABLE sources (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('local')),
    config       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- A named query on a source. `columns` is the JSON schema found when the model was planned.
CREATE TABLE models (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    source_id    TEXT NOT NULL REFERENCES sources (id),
    sql          TEXT NOT NULL,
    primary_key  TEXT NOT NULL,
    columns      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Model -> destination. `settings` is JSON of wharf_domain::SyncSettings.
CREATE TABLE syncs (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    name           TEXT NOT NULL,
    model_id       TEXT NOT NULL REFERENCES models (id),
    destination_id TEXT NOT NULL REFERENCES destinations (id),
    settings       TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- One execution of a sync. `definition` keeps the sync and model as they were when it ran.
CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    sync_id       TEXT NOT NULL REFERENCES syncs (id),
    status        TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at    TEXT NOT NULL,
    -- refreshed while the run makes progress; a running run whose heartbeat stops was
    -- interrupted (wharf killed, machine lost) and is closed as failed by the next run
    heartbeat_at  TEXT NOT NULL,
    finished_at   TEXT,
    rows          INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    definition    TEXT NOT NULL,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
-- One run per sync at a time: a second trigger fails to insert.
CREATE UNIQUE INDEX runs_one_running_per_sync ON runs (sync_id) WHERE status = 'running';
CREATE INDEX runs_by_sync ON runs (sync_id, started_at);

-- Files a run completed, in order. The manifest is a file with part = -1.
CREATE TABLE run_files (
    run_id     TEXT NOT NULL REFERENCES runs (id),
    part       INTEGER NOT NULL,
    key        TEXT NOT NULL,
    rows       INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    checksum   TEXT NOT NULL,
    request_id TEXT,
    PRIMARY KEY (run_id, part)
);

-- Every multipart upload wharf starts. The row is written before CreateMultipartUpload
-- ('creating': the key is known, the upload id not yet) and gets its id before the first part
-- ('open'), so the uploads of a crashed run can always be found and aborted: by id, or by key
-- through ListMultipartUploads when wharf died between the two.
CREATE TABLE uploads (
    id             INTEGER PRIMARY KEY,
    upload_id      TEXT,
    run_id         TEXT NOT NULL REFERENCES runs (id),
    destination_id TEXT NOT NULL REFERENCES destinations (id),
    key            TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('creating', 'open', 'completed', 'aborted')),
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    CHECK (state <> 'creating' OR upload_id IS NULL),
    CHECK (state <> 'open' OR upload_id IS NOT NULL)
);
CREATE INDEX uploads_unfinished ON uploads (destination_id) WHERE state IN ('creating', 'open');
