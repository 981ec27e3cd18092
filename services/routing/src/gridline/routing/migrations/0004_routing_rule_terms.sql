-- What routing rules set on an order at open and it keeps for life: co-handling
-- departments and the time limits (hours per tier) that replace the catalogue's.
ALTER TABLE work_orders ADD COLUMN rule_terms jsonb NOT NULL DEFAULT '{}'::jsonb;
