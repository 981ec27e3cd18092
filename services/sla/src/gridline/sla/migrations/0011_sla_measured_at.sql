-- When each (work order, version) was first counted, so that the guard forgets it with the
-- inbox's retention (gridline.common.inbox): a copy of the event can no longer come then.
-- Rows counted before this migration take its time (now() is evaluated once: no rewrite).
ALTER TABLE measured ADD COLUMN IF NOT EXISTS measured_at timestamptz NOT NULL DEFAULT now();
