-- Alert channels: webhooks a workspace's events are posted to. The URL and the signing secret
-- are sealed (a webhook URL often carries a token in its path); `url_shown` is the redacted form.
CREATE TABLE alert_channels (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    url_shown    TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    -- JSON list of events: "failed", "paused", "recovered"
    events       TEXT NOT NULL,
    -- only this sync's events, when set
    sync_id      TEXT REFERENCES syncs (id),
    created_at   TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- One event to deliver to one channel (an outbox): written when the event happens, sent by
-- the serving processes with retries, never in a run's way.
CREATE TABLE alert_deliveries (
    id              INTEGER PRIMARY KEY,
    channel_id      TEXT NOT NULL REFERENCES alert_channels (id),
    event           TEXT NOT NULL,
    run_id          TEXT,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- when the next attempt may start; a process sending it holds it by moving this ahead
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    finished_at     TEXT
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_by_channel ON alert_deliveries (channel_id, id);
