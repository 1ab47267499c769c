-- People who sign in to the web UI: an email and an argon2id password hash (never the
-- password), and the workspaces they belong to, each with a role.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE TABLE user_workspaces (
    user_id      TEXT NOT NULL REFERENCES users (id),
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    role         TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, workspace_id)
);
