-- Deliveries of one work order reach each subscription in the order of its events:
-- a delivery waits while an earlier one (lower version) for the same order is pending.

ALTER TABLE deliveries ADD COLUMN event_version integer NOT NULL DEFAULT 0;
CREATE INDEX deliveries_pending_per_order ON deliveries (work_order_id, subscription, event_version)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
