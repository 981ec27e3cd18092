-- Partners (delivery platforms and the like): registered by an operator, each with keys
-- stored as SHA-256 digests (shown once), a signing secret derived from the stack's
-- partner secret key and a version (never stored), a rate limit and a callback URL.

CREATE TABLE partners (
    partner_id       text        PRIMARY KEY,
    name             text        NOT NULL UNIQUE,
    active           boolean     NOT NULL DEFAULT true,
    -- Newest first; two while a rotated secret's overlap lasts.
    secret_versions  integer[]   NOT NULL DEFAULT '{1}',
    secret_overlap_until timestamptz,
    rate_per_s       double precision NOT NULL,
    burst            integer     NOT NULL,
    callback_url     text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE partner_keys (
    key_digest   bytea       PRIMARY KEY,
    partner_id   text        NOT NULL REFERENCES partners (partner_id),
    created_at   timestamptz NOT NULL,
    -- Set when the key was rotated out (valid until then) or revoked (now).
    expires_at   timestamptz
);
CREATE INDEX partner_keys_by_partner ON partner_keys (partner_id);

-- A partner's tip: which partner sent the report, and the rider's opaque id.
ALTER TABLE requests ADD COLUMN partner_id text;
ALTER TABLE requests ADD COLUMN rider_id text;
CREATE INDEX requests_by_partner ON requests (partner_id, work_order_id) WHERE partner_id IS NOT NULL;
