-- 0001: the first schema. Every column holds an id, a hash, a code, a time
-- or a count; the one exception is inbox.body, kept only while a webhook
-- delivery that cannot be re-fetched waits to be processed.
-- Times are RFC 3339 UTC text with nine fractional digits, so text order is
-- time order.

CREATE TABLE cursors (
	pipeline   TEXT NOT NULL PRIMARY KEY CHECK (pipeline <> ''),
	value      TEXT NOT NULL,
	updated_at TEXT NOT NULL
) STRICT;

-- links is the cross-system identity ledger: one id_b per (system_a, id_a,
-- system_b). FindLink reads it in both orientations, hence links_reverse.
CREATE TABLE links (
	system_a   TEXT NOT NULL CHECK (system_a <> ''),
	id_a       TEXT NOT NULL CHECK (id_a <> ''),
	system_b   TEXT NOT NULL CHECK (system_b <> ''),
	id_b       TEXT NOT NULL CHECK (id_b <> ''),
	pipeline   TEXT NOT NULL,
	created_at TEXT NOT NULL,
	PRIMARY KEY (system_a, id_a, system_b)
) STRICT;
CREATE INDEX links_reverse ON links (system_b, id_b, system_a);

CREATE TABLE runs (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	pipeline  TEXT NOT NULL CHECK (pipeline <> ''),
	spec_hash TEXT NOT NULL,
	"trigger" TEXT NOT NULL,
	started   TEXT NOT NULL,
	finished  TEXT,
	status    TEXT NOT NULL CHECK (status <> ''),
	counts    TEXT NOT NULL DEFAULT '{}',
	error     TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX runs_pipeline ON runs (pipeline, id);
CREATE INDEX runs_running ON runs (pipeline) WHERE status = 'running';

CREATE TABLE outcomes (
	id             INTEGER PRIMARY KEY,
	run_id         INTEGER NOT NULL REFERENCES runs (id),
	record_key     TEXT NOT NULL CHECK (record_key <> ''),
	action         TEXT NOT NULL CHECK (action IN ('created', 'updated', 'unchanged', 'skipped', 'failed')),
	reason         TEXT NOT NULL DEFAULT '',
	error          TEXT NOT NULL DEFAULT '',
	class          TEXT NOT NULL DEFAULT '',
	target_id      TEXT NOT NULL DEFAULT '',
	transaction_id TEXT NOT NULL DEFAULT '',
	payload_hash   TEXT NOT NULL DEFAULT '',
	at             TEXT NOT NULL
) STRICT;
CREATE INDEX outcomes_run ON outcomes (run_id, id);
CREATE INDEX outcomes_record ON outcomes (record_key, id);

-- records is the last successful write per key, for "unchanged" detection.
CREATE TABLE records (
	pipeline     TEXT NOT NULL CHECK (pipeline <> ''),
	record_key   TEXT NOT NULL CHECK (record_key <> ''),
	payload_hash TEXT NOT NULL,
	target_id    TEXT NOT NULL,
	action       TEXT NOT NULL CHECK (action IN ('created', 'updated', 'unchanged')),
	updated_at   TEXT NOT NULL,
	PRIMARY KEY (pipeline, record_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE retry_queue (
	pipeline     TEXT NOT NULL CHECK (pipeline <> ''),
	record_key   TEXT NOT NULL CHECK (record_key <> ''),
	attempts     INTEGER NOT NULL CHECK (attempts >= 1),
	next_at      TEXT NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	reason       TEXT NOT NULL DEFAULT '',
	class        TEXT NOT NULL DEFAULT '',
	cursor_value TEXT NOT NULL DEFAULT '',
	parked       INTEGER NOT NULL DEFAULT 0 CHECK (parked IN (0, 1)),
	updated_at   TEXT NOT NULL,
	PRIMARY KEY (pipeline, record_key)
) STRICT, WITHOUT ROWID;
CREATE INDEX retry_due ON retry_queue (pipeline, parked, next_at);

CREATE TABLE audit (
	id         INTEGER PRIMARY KEY,
	at         TEXT NOT NULL,
	actor      TEXT NOT NULL CHECK (actor <> ''),
	action     TEXT NOT NULL CHECK (action <> ''),
	pipeline   TEXT NOT NULL DEFAULT '',
	record_key TEXT NOT NULL DEFAULT '',
	detail     TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_pipeline ON audit (pipeline, id);

CREATE TABLE inbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	inbox        TEXT NOT NULL CHECK (inbox <> ''),
	delivery_id  TEXT NOT NULL CHECK (delivery_id <> ''),
	record_key   TEXT NOT NULL DEFAULT '',
	body         BLOB,
	received     TEXT NOT NULL,
	processed_at TEXT,
	attempts     INTEGER NOT NULL DEFAULT 0,
	UNIQUE (inbox, delivery_id)
) STRICT;
CREATE INDEX inbox_pending ON inbox (inbox, received, id) WHERE processed_at IS NULL;
