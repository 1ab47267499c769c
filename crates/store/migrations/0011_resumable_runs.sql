-- A retry continues the run it retries (the same logical run): the same keys and manifest,
-- and for a sync that sends changes the same change set. `logical_run` is the id of the
-- logical run's first attempt (a first attempt's own id).
ALTER TABLE runs ADD COLUMN logical_run TEXT;
UPDATE runs SET logical_run = id;
CREATE INDEX runs_by_logical_run ON runs (logical_run);
-- The attempt whose change set (snapshot folder) the run exports; set before its first file.
ALTER TABLE runs ADD COLUMN change_set TEXT;
-- A file an earlier attempt of the same logical run committed, which this attempt kept
-- rather than wrote again: that attempt's id.
ALTER TABLE run_files ADD COLUMN carried_from TEXT;
