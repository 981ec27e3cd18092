-- Duplicates (并单): several reports share one work order, so work_order_id is no longer
-- unique; the reports of an order are found by it (status updates, the merged count).
ALTER TABLE requests DROP CONSTRAINT requests_work_order_id_key;
CREATE INDEX requests_by_work_order ON requests (work_order_id);
-- The order a report was merged into (None: it opened its own).
ALTER TABLE requests ADD COLUMN duplicate_of text;
-- The place look-up of duplicates and repeated complaints: a category, a latitude band,
-- then the longitude range (a bounding box; the distance is checked on the few rows left).
-- Only the reports that opened an order are looked up: a storm of reports at one place
-- leaves one row here, not thousands to scan for every new report.
CREATE INDEX requests_roots_by_place ON requests (service_code, lat, lon, requested_datetime)
    WHERE duplicate_of IS NULL;
