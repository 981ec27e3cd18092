-- The lifecycle's further moves (accept, return, cancel, close, department call-in, report-in
-- and the call's escalation) are timeline entries too.
ALTER TABLE timeline DROP CONSTRAINT timeline_kind_check;
ALTER TABLE timeline ADD CONSTRAINT timeline_kind_check CHECK (kind IN (
    'received', 'tagged', 'assigned', 'escalated', 'resolved', 'reopened', 'feedback',
    'accepted', 'returned', 'cancelled', 'closed', 'called_in', 'reported_in',
    'call_escalated'));
