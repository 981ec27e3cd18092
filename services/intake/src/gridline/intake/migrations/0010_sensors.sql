-- Sensors' threshold breaches: one row per sensor and metric, naming the report its last
-- breach filed. While that report's work order is open (requests.status, kept current from
-- work-order events), a further breach opens nothing and is only counted here. A row is
-- written in the same transaction as the report, under a per-sensor advisory lock, so two
-- breaches at once open one order.
CREATE TABLE sensor_orders (
    sensor_id         text        NOT NULL,
    metric            text        NOT NULL,
    report_id         text        NOT NULL REFERENCES requests (service_request_id),
    work_order_id     text        NOT NULL,
    opened_at         timestamptz NOT NULL,
    -- Breaches while the order is open, the first included.
    readings          integer     NOT NULL DEFAULT 1,
    last_value        double precision NOT NULL,
    last_observed_at  timestamptz NOT NULL,
    PRIMARY KEY (sensor_id, metric)
);
