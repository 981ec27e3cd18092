-- Wake the dispatcher when deliveries are stored, at commit, instead of polling: one
-- notification per inserting statement, on the channel "<schema>_deliveries".
CREATE OR REPLACE FUNCTION deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_deliveries', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_notify();

-- The dispatcher claims per subscription (a slow receiver must not take a fast one's
-- turn), so it looks up the due rows of one subscription at a time.
CREATE INDEX deliveries_due_per_subscription ON deliveries (subscription, next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
