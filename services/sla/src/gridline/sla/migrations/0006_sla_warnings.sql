-- Warnings before a breach (issue 10): an assignment shows yellow at the catalogue's
-- warnings.yellow share of its time limit and red at warnings.red, each fired once as a
-- DeadlineWarning. One row per work order and level, for the order's current assignment
-- only: a newer assignment replaces the rows, a resolution, cancellation or closure
-- deletes them. `ref` keeps the WorkOrderRef fields of the event that made the
-- assignment, so that the warning needs no look-up when it fires.
CREATE TABLE warnings (
    work_order_id   text        NOT NULL,
    level           text        NOT NULL CHECK (level IN ('yellow', 'red')),
    assignment_seq  integer     NOT NULL,
    warn_at         timestamptz NOT NULL,
    tier            text        NOT NULL,
    unit_id         text        NOT NULL,
    unit_name       text        NOT NULL,
    supervisor_id   text,
    due_at          timestamptz NOT NULL,
    ref             jsonb       NOT NULL,
    fired_at        timestamptz,
    PRIMARY KEY (work_order_id, level)
);
-- The scheduler's claim walks this index from its oldest entry: only pending warnings
-- are in it, so fired ones cost nothing however many there are.
CREATE INDEX warnings_pending ON warnings (warn_at) WHERE fired_at IS NULL;
