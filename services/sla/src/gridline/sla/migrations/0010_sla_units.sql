-- The units a ranking lists even when nothing was counted for them in its days: every
-- grid, community and street of the jurisdiction in effect (from its `places`, with the
-- street and district each lies in) and every department of the catalogue in effect.
-- Replaced whole when a new jurisdiction or catalogue is put into effect.
CREATE TABLE units (
    level     text NOT NULL,  -- grid | community | street | department
    id        text NOT NULL,
    street    text,           -- the street a grid or community lies in
    district  text,           -- the district a street lies in
    PRIMARY KEY (level, id)
);
CREATE INDEX units_by_street ON units (level, street);
CREATE INDEX units_by_district ON units (level, district);
