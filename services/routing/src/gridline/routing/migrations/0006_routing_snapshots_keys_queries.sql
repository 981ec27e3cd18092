-- Policy snapshots, handler-key revocation and expiry, and the indexes of the order queries.

-- An order's snapshot is found by the version labels in its policy_version
-- ("j:<jurisdiction>+c:<catalogue>"): both are content hashes, so a label names exactly one
-- document; a rollback stores the same document again under a new id.
CREATE INDEX policy_versions_by_label ON policy_versions (kind, version, id DESC);

-- Keys can be revoked (by the admin, or because a reload removed their unit) and expire.
-- A revoked key stays revoked: binding its digest again is refused, so a unit id that a
-- later jurisdiction reuses never inherits the old unit's key.
ALTER TABLE handler_keys
    ADD COLUMN expires_at     timestamptz,
    ADD COLUMN revoked_at     timestamptz,
    ADD COLUMN revoked_reason text;
CREATE INDEX handler_keys_by_unit ON handler_keys (unit_id) WHERE revoked_at IS NULL;

-- The queries: by unit, state, category and due time, in due order (a unit's work queue);
-- orders without a due time (held for triage) sort last.
CREATE INDEX work_orders_by_unit_due
    ON work_orders (unit_id, (COALESCE(due_at, 'infinity'::timestamptz)), id);
CREATE INDEX work_orders_by_state_due
    ON work_orders (state, (COALESCE(due_at, 'infinity'::timestamptz)), id);
CREATE INDEX work_orders_by_category_due
    ON work_orders (category, (COALESCE(due_at, 'infinity'::timestamptz)), id);
CREATE INDEX work_orders_by_due ON work_orders ((COALESCE(due_at, 'infinity'::timestamptz)), id);
