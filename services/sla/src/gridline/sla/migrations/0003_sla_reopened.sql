-- A reopened work order can be resolved again: `resolutions` keeps one row per order, its
-- latest resolution (the version of its WorkOrderResolved); a newer resolution replaces
-- the row and is counted once more, a redelivered older one changes nothing. Rows stored
-- before this migration have version 0.
ALTER TABLE resolutions ADD COLUMN version integer NOT NULL DEFAULT 0;
