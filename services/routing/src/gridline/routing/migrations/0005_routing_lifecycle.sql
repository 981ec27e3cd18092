-- The whole lifecycle (issue 9): accepted, closed and cancelled orders, the resolver's
-- tier, rework counted, and a department's call-in with its report-in.

ALTER TABLE work_orders DROP CONSTRAINT work_orders_state_check;
ALTER TABLE work_orders ADD CONSTRAINT work_orders_state_check
    CHECK (state IN ('open', 'accepted', 'triage', 'resolved', 'closed', 'cancelled'));

ALTER TABLE work_orders
    ADD COLUMN accepted_at         timestamptz,
    ADD COLUMN ended_at            timestamptz,
    ADD COLUMN end_reason          text,
    ADD COLUMN resolved_tier       text,
    ADD COLUMN reopen_count        integer NOT NULL DEFAULT 0,
    ADD COLUMN call_seq            integer,
    ADD COLUMN call_department_id  text,
    ADD COLUMN call_by             text,
    ADD COLUMN called_at           timestamptz,
    ADD COLUMN call_due_at         timestamptz,
    ADD COLUMN reported_in_at      timestamptz,
    ADD COLUMN call_escalated_at   timestamptz;

-- Orders resolved before this migration were resolved at their holder's tier.
UPDATE work_orders SET resolved_tier = tier WHERE state = 'resolved';

-- "Unresolved" is now open, accepted or held for triage: the queues' indexes follow.
DROP INDEX work_orders_open_by_unit;
CREATE INDEX work_orders_open_by_unit ON work_orders (unit_id)
    WHERE state IN ('open', 'accepted', 'triage');
DROP INDEX work_orders_open_by_due;
CREATE INDEX work_orders_open_by_due ON work_orders (due_at NULLS LAST, id)
    WHERE state IN ('open', 'accepted', 'triage');
-- The close sweep: resolved orders whose feedback window has passed.
CREATE INDEX work_orders_resolved_by_time ON work_orders (resolved_at) WHERE state = 'resolved';
