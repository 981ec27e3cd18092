-- Routing owns work-order state, the policy versions in effect and the handler keys.

CREATE TABLE policy_versions (
    id            bigserial   PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('jurisdiction', 'catalogue')),
    version       text        NOT NULL,
    document      jsonb       NOT NULL,
    activated_at  timestamptz NOT NULL
);
CREATE INDEX policy_versions_latest ON policy_versions (kind, id DESC);

CREATE TABLE work_orders (
    id              text        PRIMARY KEY,
    report_id       text        NOT NULL UNIQUE,
    category        text        NOT NULL,
    department_id   text        NOT NULL,
    source          text        NOT NULL,
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    grid_id         text,
    community_id    text,
    street_id       text,
    district_id     text,
    state           text        NOT NULL CHECK (state IN ('open', 'triage', 'resolved')),
    tier            text,
    unit_id         text        NOT NULL,
    assignment_seq  integer     NOT NULL,
    assigned_at     timestamptz NOT NULL,
    due_at          timestamptz,
    opened_at       timestamptz NOT NULL,
    resolved_at     timestamptz,
    version         integer     NOT NULL,
    policy_version  text        NOT NULL,
    description     text        NOT NULL DEFAULT ''
);
CREATE INDEX work_orders_open_by_unit ON work_orders (unit_id) WHERE state <> 'resolved';

-- Every transition, for "every decision explained".
CREATE TABLE work_order_history (
    work_order_id  text        NOT NULL REFERENCES work_orders (id),
    version        integer     NOT NULL,
    event_type     text        NOT NULL,
    at             timestamptz NOT NULL,
    detail         jsonb       NOT NULL,
    PRIMARY KEY (work_order_id, version)
);

-- Handler keys are stored as SHA-256 digests, each bound to one unit.
CREATE TABLE handler_keys (
    key_sha256  text        PRIMARY KEY,
    unit_id     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
