-- A partner's callback may be emitted under a newer state of the partner than notify has
-- followed yet (gridline.tips and gridline.partners are consumed independently: a callback
-- URL set just before the tip). Such a callback is parked with the partner's updated_at
-- it was emitted under, and only a PartnerUpdated at least that new releases it or marks
-- it dead (adapters/partners.py settle_pending). NULL for every other delivery.
ALTER TABLE deliveries ADD COLUMN partner_since timestamptz;
