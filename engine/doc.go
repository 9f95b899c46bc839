// Package engine is the core of casesync: the Plan (a loaded, compiled
// deployment), the interfaces the rest implements (Connector, State,
// Secrets, Clock), and the runner that moves records through filter,
// enrich, map, lookups, upsert and after-steps.
//
// It knows no CUE, no HTTP client and no SQL: those live in engine/spec,
// connectors/rest and internal/state, which import this package.
package engine
