-- sla keeps due times durably and measures which tier resolved each work order.

CREATE TABLE deadlines (
    work_order_id   text        PRIMARY KEY,
    assignment_seq  integer     NOT NULL,
    tier            text        NOT NULL,
    unit_id         text        NOT NULL,
    due_at          timestamptz NOT NULL,
    fired_at        timestamptz
);
CREATE INDEX deadlines_pending ON deadlines (due_at) WHERE fired_at IS NULL;

CREATE TABLE resolutions (
    work_order_id       text        PRIMARY KEY,
    tier                text        NOT NULL,
    category            text        NOT NULL,
    street_id           text,
    district_id         text,
    opened_at           timestamptz NOT NULL,
    resolved_at         timestamptz NOT NULL,
    resolution_seconds  double precision NOT NULL
);
CREATE INDEX resolutions_by_time ON resolutions (resolved_at);

-- Counters kept in the transaction of the event that moves them, so they count each
-- event exactly once and survive restarts. `labels` is canonical JSON.
CREATE TABLE counters (
    metric  text             NOT NULL,
    labels  text             NOT NULL,
    value   double precision NOT NULL,
    PRIMARY KEY (metric, labels)
);
