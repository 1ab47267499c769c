-- Workspaces own every object; a request for another workspace's object is a "not found".
CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
INSERT INTO workspaces (id, created_at) VALUES ('default', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

CREATE TABLE destinations (
    id                       TEXT PRIMARY KEY,
    workspace_id             TEXT NOT NULL REFERENCES workspaces (id),
    name                     TEXT NOT NULL,
    kind                     TEXT NOT NULL CHECK (kind IN ('s3')),
    bucket                   TEXT NOT NULL,
    region                   TEXT NOT NULL,
    prefix                   TEXT NOT NULL,
    endpoint                 TEXT,
    auth_type                TEXT NOT NULL CHECK (auth_type IN ('access-key', 'role')),
    -- access-key auth: a fingerprint for display; key id and secret together, encrypted.
    access_key_fingerprint   TEXT,
    credentials_ciphertext   BLOB,
    -- role auth
    role_arn                 TEXT,
    external_id              TEXT UNIQUE,
    session_duration_seconds INTEGER,
    -- JSON of wharf_domain::DeliveryOptions
    delivery                 TEXT NOT NULL,
    -- set when a connection test passes; cleared when the External ID rotates
    verified_at              TEXT,
    last_test_at             TEXT,
    last_test_ok             INTEGER,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    UNIQUE (workspace_id, name),
    CHECK ((auth_type = 'access-key') = (credentials_ciphertext IS NOT NULL AND access_key_fingerprint IS NOT NULL)),
    CHECK ((auth_type = 'role') = (role_arn IS NOT NULL AND external_id IS NOT NULL AND session_duration_seconds IS NOT NULL))
);
