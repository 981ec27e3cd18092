-- The look-up's index by cell (0013) found a cell's reports within the window, then read
-- each from the table to test it against the radius's box: in a busy cell most are
-- outside a small radius (make bench: 12 and 29 rows read and dropped per new report at
-- 1,000 reports/s). With the coordinates as the last keys, the box is tested on the index
-- entries and only the reports inside it are read. The cell expression is
-- adapters/store.py cell_sql(), character for character, as in 0013.
CREATE INDEX IF NOT EXISTS requests_roots_near ON requests (service_code,
    (((floor(lat * 200) + 18000) * 100000 + floor(lon * 200) + 36000)::bigint),
    requested_datetime, lat, lon)
    WHERE duplicate_of IS NULL;
DROP INDEX IF EXISTS requests_roots_by_cell;
