-- Partners' status callbacks: what notify knows of each partner (from intake's
-- PartnerUpdated), read when a tip's status changes and again when its callback is sent.
-- No secret is stored: signing secrets derive from GRIDLINE_PARTNER_SECRET_KEY and
-- secret_versions (gridline.common.partners).
--
-- A row with updated_at NULL is a partner seen only through its tips so far (the topics
-- gridline.tips and gridline.partners are consumed independently): its callbacks are
-- parked (next_attempt_at 'infinity') until its PartnerUpdated says where to send them.
-- updated_at orders PartnerUpdated events: an older one never overwrites a newer one.
CREATE TABLE partners (
    partner_id       text        PRIMARY KEY,
    active           boolean     NOT NULL DEFAULT false,
    callback_url     text,
    secret_versions  integer[]   NOT NULL DEFAULT '{}',
    updated_at       timestamptz
);
