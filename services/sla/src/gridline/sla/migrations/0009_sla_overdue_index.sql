-- The overdue gauge (store.overdue) every metrics refresh: deadlines past due are the
-- pending ones whose due time passed (deadlines_pending, 0001) and the fired ones (their
-- escalation in flight, or at the department, where nothing escalates). This index keeps
-- the fired ones, so that the count reads those two index ranges and never the million
-- deadlines still ahead.
CREATE INDEX deadlines_fired ON deadlines (tier) WHERE fired_at IS NOT NULL;
