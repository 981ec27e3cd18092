-- A department called in (吹哨) must report in (报到) by its due time: one pending call per
-- work order, fired once as a ReportInBreached so routing escalates the call to the district.
CREATE TABLE report_in_deadlines (
    work_order_id  text        PRIMARY KEY,
    call_seq       integer     NOT NULL,
    department_id  text        NOT NULL,
    due_at         timestamptz NOT NULL,
    fired_at       timestamptz
);
CREATE INDEX report_in_deadlines_pending ON report_in_deadlines (due_at) WHERE fired_at IS NULL;
