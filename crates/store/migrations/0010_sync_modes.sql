-- Sync modes (insert, diff, delta): the run whose snapshot a sync compares against (none: its
-- next run sends every row), and each run's mode and change counts (JSON; none for `all`).
ALTER TABLE syncs ADD COLUMN snapshot_run TEXT;
ALTER TABLE runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'all';
ALTER TABLE runs ADD COLUMN changes TEXT;
