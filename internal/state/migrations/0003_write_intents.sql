-- 0003: creates about to be sent. A row is written (and committed) before a
-- create leaves and deleted by the commit of the record's outcome, so a row
-- that outlives its run marks a create whose fate a crash hid: the next
-- attempt looks for the target before creating again.
CREATE TABLE write_intents (
	pipeline     TEXT NOT NULL CHECK (pipeline <> ''),
	record_key   TEXT NOT NULL CHECK (record_key <> ''),
	payload_hash TEXT NOT NULL CHECK (payload_hash <> ''),
	run_id       INTEGER NOT NULL,
	at           TEXT NOT NULL,
	PRIMARY KEY (pipeline, record_key)
) STRICT, WITHOUT ROWID;
