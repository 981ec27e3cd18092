-- intake stores every accepted report and a view of its work order kept from events.

CREATE TABLE policy (
    kind          text        PRIMARY KEY CHECK (kind IN ('jurisdiction', 'catalogue')),
    version       text        NOT NULL,
    document      jsonb       NOT NULL,
    activated_at  timestamptz NOT NULL
);

CREATE TABLE requests (
    service_request_id  text        PRIMARY KEY,
    work_order_id       text        NOT NULL UNIQUE,
    token               text        NOT NULL UNIQUE,
    service_code        text        NOT NULL,
    description         text        NOT NULL DEFAULT '',
    lat                 double precision NOT NULL,
    lon                 double precision NOT NULL,
    address_string      text,
    media_url           text,
    source              text        NOT NULL,
    reporter            jsonb       NOT NULL DEFAULT '{}',
    requested_datetime  timestamptz NOT NULL,
    updated_datetime    timestamptz NOT NULL,
    status              text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    status_notes        text,
    agency_responsible  text,
    expected_datetime   timestamptz,
    event_version       integer     NOT NULL DEFAULT 0
);
CREATE INDEX requests_by_time ON requests (requested_datetime);
CREATE INDEX requests_by_code ON requests (service_code, requested_datetime);
