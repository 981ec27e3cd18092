-- The native API (/v1): what Open311 cannot say, and idempotency keys.

ALTER TABLE requests
    ADD COLUMN grid_id      text,
    ADD COLUMN occurred_at  timestamptz,
    ADD COLUMN photos       jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN labels       jsonb NOT NULL DEFAULT '[]';

-- A client's Idempotency-Key (scope = a digest of its api key), what it was sent with and
-- the answer given. Written in the same statement as the reports it accepted, so a row
-- here always means stored reports. Expired rows are replaced on reuse and swept lazily.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,
    status       smallint    NOT NULL,
    answer       bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
