// Package spectest runs the spec tests a deployment keeps beside it
// (tests/*.txtar): source records, the remote systems' canned answers and
// the expected outcome per record. A test runs the engine's real stages —
// select, enrich, map, write, after — through in-process ports that answer
// from the test's declared remote behaviour (no network, no state file),
// and compares what the stages produced with what the test expects.
//
// A test file is a txtar archive. Its comment holds "pipeline: NAME"
// (required) and "now: TIME" (optional, the run's $now; default
// 2026-01-01T00:00:00Z); other comment lines describe the test. Sections:
//
//	-- source.json --                     the source records (an array or one object)
//	-- answer GET /api/v2/cases/{id} --   the remote's answer to a matching request
//	-- answer POST /clients/upsert 422 -- … with a status other than 200
//	-- target KEY --                      the target's current record for business key KEY
//	-- delivery KEY --                    the webhook delivery record KEY came in: {"event": …, "query": …}
//	-- table NAME --                      a lookup loaded whole (a SQL select): {key: value, …}
//	-- expect KEY --                      the expected outcome of source record KEY
//
// An answer matches a request by method and path template: a {…} hole
// matches any text up to the next "/", so the spec's own template
// ("/api/v2/cases/{$target_id}") matches as written; "?name=value&…"
// after the path requires those query values. The most specific pattern
// wins; several answers to one pattern are given in order, the last one
// repeating (a status poll). A read no answer matches is a test error; a
// find no target or answer matches finds nothing; a write no answer
// matches is accepted with an empty object. A target that writes rows
// itself (upsert.sql) shows each row as an UPSERT of its table, and a row
// removed because its record left the source set as a DELETE (or FLAG).
package spectest
