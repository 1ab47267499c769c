-- Why a destination that passed its connection test is unverified again: its External ID was
-- rotated (`external_id_rotated`) or its settings or secret were replaced (`settings_changed`).
-- NULL while verified, untested or failing. The status and the connection test's diagnosis say
-- what actually happened instead of guessing.
ALTER TABLE destinations ADD COLUMN unverified_because TEXT;
