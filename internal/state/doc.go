// Package state is casesync's memory: one SQLite file, opened through
// modernc.org/sqlite, implementing engine.RunState, and beside it the
// intent journal "<state>-intents" (journal.go), where a create is recorded
// before it is sent and which every page commit folds into the file.
//
// It owns every SQL statement in casesync, the numbered migrations in
// migrations/ (embedded, each applied in its own transaction and recorded in
// PRAGMA user_version), and the single writer: one connection with
// _txlock=immediate, so concurrent writers queue instead of failing with
// SQLITE_BUSY, beside a bounded pool of query_only readers. CommitPage is
// where the no-loss, no-duplicate guarantee lives: a page's outcomes, links,
// retry-queue changes and cursor advance commit in one transaction or not at
// all. (A native target, an upsert by key, writes no links: its records row
// holds the row's id. See docs/architecture.md.)
//
// It must not know what a record looks like, which systems exist, or how a
// spec is written: it stores ids, hashes, reason codes, sanitized error
// messages, times and counts, never names, dates of birth or free text from a
// case. The one exception is an inbox body, kept only while a webhook
// delivery waits and zeroed on disk (secure_delete) once it is processed.
// It imports engine for the types it stores and nothing else of ours; the
// engine never imports it.
package state
