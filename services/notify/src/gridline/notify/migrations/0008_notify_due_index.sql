-- The claim checks each candidate for an earlier pending delivery of its order. Planned
-- from statistics taken while few deliveries were pending (a stack's first minutes, or
-- any quiet moment), every scan of a pending-only index looks free, and the planner chose
-- deliveries_due_per_subscription for that check too: every pending delivery of the
-- subscription read for each candidate, quadratic in a backlog (docs/performance.md).
-- The due index now also leaves out parked deliveries (next_attempt_at 'infinity', never
-- claimed), a condition the check does not state: it cannot serve the check, which probes
-- deliveries_pending_per_order by the candidate's order. Parked ones get their own index,
-- for the partner update that releases them.
DROP INDEX deliveries_due_per_subscription;
CREATE INDEX deliveries_due_per_subscription ON deliveries (subscription, next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at < 'infinity';
CREATE INDEX deliveries_parked ON deliveries (subscription)
    WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at = 'infinity';
