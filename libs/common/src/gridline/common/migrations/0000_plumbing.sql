-- Delivery plumbing every service schema has: the transactional outbox and the inbox.

-- Events written in the same transaction as the state change they describe; the relay
-- publishes them and deletes a row only after the broker acknowledged it.
CREATE TABLE IF NOT EXISTS outbox (
    id          bigserial PRIMARY KEY,
    event_id    text        NOT NULL UNIQUE,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Ids of the events this service has processed, recorded in the transaction of their
-- effect, so a redelivered event is recognised and skipped.
CREATE TABLE IF NOT EXISTS inbox (
    event_id      text        PRIMARY KEY,
    topic         text        NOT NULL,
    kafka_partition integer   NOT NULL,
    kafka_offset  bigint      NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now()
);
