-- 0004: the delivery envelope an inbox keeps beside a pending body: the
-- event type, the query and the non-credential headers, which filters read
-- as delivery. Erased with the body once the delivery is processed.
ALTER TABLE inbox ADD COLUMN delivery BLOB;
