-- The place look-up of duplicates and repeated complaints read every report that opened an
-- order in a band of latitude as wide as the radius's box, across the whole city and all
-- its history (the index began with the category and the latitude): its cost grew with
-- every report ever stored. It now reads, per category, the few cells (1/200 of a degree
-- on a side) that hold the box, each from the start of the window on: what lies near in
-- place and time. The expression is adapters/store.py cell_sql(), character for
-- character; a test checks that the look-up uses this index.
CREATE INDEX IF NOT EXISTS requests_roots_by_cell ON requests (service_code,
    (((floor(lat * 200) + 18000) * 100000 + floor(lon * 200) + 36000)::bigint),
    requested_datetime)
    WHERE duplicate_of IS NULL;
DROP INDEX IF EXISTS requests_roots_by_place;
