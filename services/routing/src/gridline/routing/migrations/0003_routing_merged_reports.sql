-- Duplicates (并单): reports intake merged into an open work order. The order's own report
-- is work_orders.report_id; each further one is a row here, so an order counts
-- 1 + its merged reports, and a re-delivered report is recorded once.
CREATE TABLE merged_reports (
    report_id      text        PRIMARY KEY,
    work_order_id  text        NOT NULL REFERENCES work_orders (id),
    source         text        NOT NULL,
    at             timestamptz NOT NULL
);
CREATE INDEX merged_reports_by_order ON merged_reports (work_order_id);
