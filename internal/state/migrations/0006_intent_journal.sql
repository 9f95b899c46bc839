-- 0006: how far the intent journal (journal.go: creates' intents appended
-- to "<state>-intents" before they are sent) is folded into write_intents.
-- Written in the transaction that folds, so a journal that a crash left
-- untruncated is not folded twice.
CREATE TABLE intent_journal (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	gen    TEXT NOT NULL,
	folded INTEGER NOT NULL
) STRICT;
