-- The published tier targets follow the catalogue in effect (its `targets`), so they change
-- with a catalogue load and every sla instance serves the same figures.

CREATE TABLE targets (
    tier               text             PRIMARY KEY,
    ratio              double precision NOT NULL,
    catalogue_version  text             NOT NULL
);
