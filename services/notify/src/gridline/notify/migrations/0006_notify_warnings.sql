-- Deadline warnings (gridline.sla.deadline_warning.v1) are delivered like work-order
-- events, but they are no move of the order: a warning carries the version of the event
-- that made the assignment it warns about. `warning` places it in the order's delivery
-- sequence: 0 for the order's own events, 1 yellow, 2 red. A warning waits for the events
-- up to its version (and for earlier warnings); no order event ever waits for a warning
-- (adapters/store.py claim_due).

ALTER TABLE deliveries ADD COLUMN warning smallint NOT NULL DEFAULT 0;
-- The pending-per-order lookup reads `warning` too: keep it in the index.
DROP INDEX deliveries_pending_per_order;
CREATE INDEX deliveries_pending_per_order
    ON deliveries (work_order_id, subscription, event_version, warning)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
