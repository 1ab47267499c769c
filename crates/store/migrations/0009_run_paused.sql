-- The pause a run's failure caused, on the run itself, so the run history says why a sync
-- stopped running (the sync's own pause reason is cleared when it resumes).
ALTER TABLE runs ADD COLUMN paused_sync TEXT;
