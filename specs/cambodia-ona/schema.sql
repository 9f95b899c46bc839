-- The ONA dashboard tables the cambodia-ona deployment writes, and the
-- locations_lookup table it reads. Plain SQL that PostgreSQL and SQLite
-- both take: the tests and `engine demo` create a database from this file.
-- One row per case and one per service; the conflict keys are the
-- deployment's upsert keys, so they must stay unique.

CREATE TABLE IF NOT EXISTS cases (
	case_id                 TEXT PRIMARY KEY, -- Primero case_id (a UUID), never the 7-character display id
	case_id_display         TEXT,
	last_updated_date       TIMESTAMP,        -- the case's last_updated_at (UTC)
	registration_date       DATE,
	age                     INTEGER,
	sex                     TEXT,
	location_code           TEXT,
	case_source             TEXT NOT NULL,    -- oscar or primero
	disabled                TEXT,
	protection_concerns     TEXT,
	type_of_case            TEXT,
	placement_type          TEXT,
	consent_for_reporting   TEXT NOT NULL,
	province_current        TEXT,
	province_current_code   TEXT,
	district_current        TEXT,
	district_current_code   TEXT,
	province_caregiver      TEXT,
	province_caregiver_code TEXT,
	district_caregiver      TEXT,
	district_caregiver_code TEXT
);

CREATE TABLE IF NOT EXISTS services (
	unique_id    TEXT PRIMARY KEY, -- the service row's unique_id in Primero
	case_id      TEXT NOT NULL,    -- its case's case_id
	service_type TEXT,
	service_date TIMESTAMP         -- when it was implemented (null until it is)
);

CREATE INDEX IF NOT EXISTS services_case_id ON services (case_id);

-- One row per district: the dashboard's place names, read by the
-- deployment once per run (lookup locations_lookup).
CREATE TABLE IF NOT EXISTS locations_lookup (
	code          TEXT PRIMARY KEY,
	province      TEXT,
	province_code TEXT,
	district      TEXT,
	district_code TEXT
);
