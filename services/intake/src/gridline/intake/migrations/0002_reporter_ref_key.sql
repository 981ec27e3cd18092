-- The key of reporters' opaque references (HMAC): made once per deployment, never leaves
-- intake. Events carry the reference, never the reporter's contact details.
CREATE TABLE reporter_ref_key (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key       text    NOT NULL
);
INSERT INTO reporter_ref_key (key)
SELECT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
