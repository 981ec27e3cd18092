-- notify turns work-order events into deliveries, each sent until acknowledged.

CREATE TABLE deliveries (
    notification_id  text        PRIMARY KEY,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    work_order_id    text        NOT NULL,
    subscription     text        NOT NULL,
    url              text        NOT NULL,
    body             bytea       NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    dead_at          timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, subscription)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
