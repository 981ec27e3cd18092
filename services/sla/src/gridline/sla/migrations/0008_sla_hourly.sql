-- /metrics' attainment gauges kept incrementally (domain/measures.py hourly_changes): one
-- row per UTC hour and scope down to the street (the contract's bounded label set), moved
-- in the transaction of each resolution like the tallies. The gauges' rolling windows sum
-- at most 720 hours of rows per scope; sla drops hours older than the longest window.
-- Resolutions are no longer rescanned, so their time index goes.

CREATE TABLE hourly (
    hour           timestamptz NOT NULL,  -- the UTC hour of resolution
    scope          text        NOT NULL,  -- city | district:<id> | street:<id>
    at_grid        integer     NOT NULL,
    at_community   integer     NOT NULL,
    at_street      integer     NOT NULL,
    at_department  integer     NOT NULL,
    PRIMARY KEY (hour, scope)
);

INSERT INTO hourly
SELECT date_trunc('hour', r.resolved_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', s.scope,
       count(*) FILTER (WHERE r.tier = 'grid'),
       count(*) FILTER (WHERE r.tier = 'community'),
       count(*) FILTER (WHERE r.tier = 'street'),
       count(*) FILTER (WHERE r.tier = 'department')
FROM resolutions r
CROSS JOIN LATERAL (VALUES ('city'), ('district:' || r.district_id), ('street:' || r.street_id))
    AS s(scope)
WHERE s.scope IS NOT NULL
GROUP BY 1, 2;

DROP INDEX resolutions_by_time;
