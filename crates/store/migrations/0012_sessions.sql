-- Web UI sessions. The browser holds a random 256-bit token in an HttpOnly cookie; the store
-- keeps only its SHA-256, who signed in, the workspace they are looking at, and when the session
-- started and was last used (the service checks idle and absolute expiry against these). The
-- role is not copied here: it is read from user_workspaces on every request, so removing a user
-- from a workspace ends their sessions there at once.
CREATE TABLE sessions (
    token_sha256  BLOB PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
