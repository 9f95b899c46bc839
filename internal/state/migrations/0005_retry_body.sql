-- 0005: the record a webhook pushed (an inbox without fetch), kept with its
-- queued failure so the retry runs it again: there is no source to re-read
-- it from. Erased when the record succeeds or is parked.
ALTER TABLE retry_queue ADD COLUMN body BLOB;
