-- The measurement kept incrementally (domain/measures.py): one row per scope, category
-- and local day, moved in the transaction of each resolution. Resolutions now keep where
-- they were (grid, community), their due time and their local day, so that a later
-- resolution of a reopened order can take the earlier one's contribution back out.

ALTER TABLE resolutions
    ADD COLUMN grid_id      text,
    ADD COLUMN community_id text,
    ADD COLUMN due_at       timestamptz,
    ADD COLUMN day          date;

-- The catalogue's time zone, whose days the tallies and the API's windows are counted in.
ALTER TABLE targets ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

CREATE TABLE tallies (
    scope          text             NOT NULL,  -- city | district:<id> | street:<id> | ...
    category       text             NOT NULL,  -- a category code, or * for all of them
    day            date             NOT NULL,  -- of resolution, in the catalogue's time zone
    at_grid        integer          NOT NULL,
    at_community   integer          NOT NULL,
    at_street      integer          NOT NULL,
    at_department  integer          NOT NULL,
    timed          integer          NOT NULL,  -- resolutions whose due time is known
    on_time        integer          NOT NULL,
    seconds        double precision NOT NULL,  -- summed time to resolve
    PRIMARY KEY (scope, category, day)
);

-- What was resolved before this migration, counted on its UTC day; its due time was not
-- kept, so it counts in no on-time rate.
UPDATE resolutions SET day = (resolved_at AT TIME ZONE 'UTC')::date;
INSERT INTO tallies
SELECT s.scope, c.category, r.day,
       count(*) FILTER (WHERE r.tier = 'grid'),
       count(*) FILTER (WHERE r.tier = 'community'),
       count(*) FILTER (WHERE r.tier = 'street'),
       count(*) FILTER (WHERE r.tier = 'department'),
       0, 0, sum(r.resolution_seconds)
FROM resolutions r
CROSS JOIN LATERAL (VALUES ('city'), ('district:' || r.district_id), ('street:' || r.street_id))
    AS s(scope)
CROSS JOIN LATERAL (VALUES (r.category), ('*')) AS c(category)
WHERE s.scope IS NOT NULL
GROUP BY 1, 2, 3;
