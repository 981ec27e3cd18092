-- Open311 attributes: a report's answers to its category's questions. (The grid a report
-- named, by address_string or /v1's grid_id, is requests.grid_id from 0004.)
ALTER TABLE requests ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}';
