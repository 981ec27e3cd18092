-- Every insert, claim and record of a delivery writes an entry into each of its indexes
-- (the claim moves next_attempt_at, so no update is HOT). Two of them did no work:
-- - (event_id, subscription) is unique because notification_id, the primary key, is
--   derived from exactly that pair: inserts now conflict on the primary key instead;
-- - deliveries_due (next_attempt_at) is covered by deliveries_due_per_subscription
--   (subscription, next_attempt_at): the claim always names its subscriptions.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_subscription_key;
DROP INDEX deliveries_due;
