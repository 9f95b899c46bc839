// Package engine is the core of casesync: the Plan (a loaded, compiled
// deployment), the ports it owns (Source, Target, Caller and RunState in
// ports.go, shaped by what the runner needs and by no protocol), and the
// runner that moves records through select, enrich, map, write and
// after-steps.
//
// It knows no CUE, no HTTP and no SQL: engine/spec builds plans,
// connectors/rest and internal/state implement the ports, and
// internal/wire puts them together.
package engine
