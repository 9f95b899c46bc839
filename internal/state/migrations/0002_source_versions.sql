-- 0002: the version of each source record the engine has fully handled, so
-- a record re-read in a cursor's overlap window with the same version is
-- skipped before any enrich request. version is an opaque hash of the
-- source's updated-at value and the spec hash, never the time itself.
CREATE TABLE source_versions (
	pipeline   TEXT NOT NULL CHECK (pipeline <> ''),
	record_key TEXT NOT NULL CHECK (record_key <> ''),
	version    TEXT NOT NULL CHECK (version <> ''),
	updated_at TEXT NOT NULL,
	PRIMARY KEY (pipeline, record_key)
) STRICT, WITHOUT ROWID;
