// Package spec loads a deployment folder of CUE spec files, unifies it with
// the embedded schema, and builds a compiled engine.Plan. Every command that
// needs a plan (check, dry-run, sync, the daemon's reload) goes through Load,
// so check can never disagree with run.
//
// Problems carry file:line:col inside the user's files, a stable code and a
// one-line hint; Load reports all of them in one pass.
package spec
