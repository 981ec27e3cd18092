-- A report's timeline, kept from events, and the reporters' feedback on resolutions.

-- One row per thing that happened to a report or its work order. `entry_id` is the id of
-- the event it comes from (with a suffix where one event gives two rows), so a redelivered
-- event adds nothing. `rank` orders entries by cause, whatever the clocks say: received
-- -2, tagged -1, a work-order event 2 x its version, feedback 2 x the resolved version + 1.
-- `report_id` is set on a report's own entries (received, tagged, feedback) and NULL on
-- its work order's, which every report of the order shares.
CREATE TABLE timeline (
    entry_id       text        PRIMARY KEY,
    work_order_id  text        NOT NULL,
    report_id      text,
    kind           text        NOT NULL CHECK (kind IN ('received', 'tagged', 'assigned',
                                   'escalated', 'resolved', 'reopened', 'feedback')),
    rank           integer     NOT NULL,
    at             timestamptz NOT NULL,
    detail         jsonb       NOT NULL
);
CREATE INDEX timeline_by_order ON timeline (work_order_id, rank);

-- Feedback on a resolution: at most one per report and resolution (the resolved version).
-- The comment stays here: events carry the outcome and score only.
CREATE TABLE feedback (
    feedback_id        text        PRIMARY KEY,
    service_request_id text        NOT NULL REFERENCES requests (service_request_id),
    work_order_id      text        NOT NULL,
    resolved_version   integer     NOT NULL,
    outcome            text        NOT NULL CHECK (outcome IN ('confirm', 'reject')),
    satisfaction       integer     NOT NULL CHECK (satisfaction BETWEEN 1 AND 5),
    comment            text        NOT NULL DEFAULT '',
    reopens            boolean     NOT NULL,
    given_at           timestamptz NOT NULL,
    UNIQUE (service_request_id, resolved_version)
);
