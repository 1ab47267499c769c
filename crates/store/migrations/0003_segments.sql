-- Runs outside a transaction (see migrations.rs) so foreign keys can be switched off while
-- `sources` is rebuilt: SQLite cannot change a CHECK constraint in place.
PRAGMA foreign_keys = OFF;
BEGIN;

-- Sources gain PostgreSQL. `secret` holds the sealed connection URL (it may carry a password);
-- `config` keeps only what may be shown.
CREATE TABLE sources_new (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('local', 'postgres')),
    config       TEXT NOT NULL,
    secret       BLOB,
    created_at   TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);
INSERT INTO sources_new (id, workspace_id, name, kind, config, created_at)
    SELECT id, workspace_id, name, kind, config, created_at FROM sources;
DROP TABLE sources;
ALTER TABLE sources_new RENAME TO sources;

-- A named filter over a model. `filter` is the JSON tree as the user gave it.
CREATE TABLE segments (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    model_id     TEXT NOT NULL REFERENCES models (id),
    filter       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- A sync exports its model, or one segment of it.
ALTER TABLE syncs ADD COLUMN segment_id TEXT REFERENCES segments (id);

COMMIT;
PRAGMA foreign_keys = ON;
