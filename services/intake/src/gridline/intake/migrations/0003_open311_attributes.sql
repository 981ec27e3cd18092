-- Open311 attributes: a report's answers to its category's questions, and the grid it
-- named instead of coordinates (address_string), when it did.
ALTER TABLE requests
    ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN grid_id    text;
