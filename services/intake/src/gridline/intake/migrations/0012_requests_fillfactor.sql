-- Each request is updated as its work order moves (assigned, escalated, resolved), and no
-- index holds the columns those updates change: with room left on each page they are
-- heap-only (HOT) updates, one new row version and no index entries. Full pages made
-- each one a new entry in every index (eight; about 7.5 WAL records per update).
-- New pages keep 30 % free; pages written before this keep their rows as they are.
ALTER TABLE requests SET (fillfactor = 70);
