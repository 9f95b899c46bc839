package state

import (
	"testing"

	"casesync/engine"
)

func TestStore_SourceVersions(t *testing.T) {
	ok := func(key, item string, a engine.Action, ver string) engine.Outcome {
		return engine.Outcome{RecordKey: item, Action: a, PayloadHash: "h-" + item, TargetID: "T-" + item, SourceKey: key, SourceVersion: ver}
	}
	bad := func(key, item string) engine.Outcome {
		o := failed(item, "http_503")
		o.SourceKey = key
		return o
	}
	tests := []struct {
		name  string
		pages [][]engine.Outcome
		want  string // "" means none
	}{
		{"a success records the version", [][]engine.Outcome{{ok("k", "k", engine.ActionCreated, "v1")}}, "v1"},
		{"a later success replaces it", [][]engine.Outcome{{ok("k", "k", engine.ActionCreated, "v1")}, {ok("k", "k", engine.ActionUpdated, "v2")}}, "v2"},
		{"a success without a version records none", [][]engine.Outcome{{ok("k", "k", engine.ActionCreated, "")}}, ""},
		{"a failure forgets it", [][]engine.Outcome{{ok("k", "k", engine.ActionCreated, "v1")}, {bad("k", "k")}}, ""},
		{"a failed fan-out item forgets the record's version", [][]engine.Outcome{
			{ok("k", "k#1", engine.ActionCreated, "v1"), ok("k", "k#2", engine.ActionCreated, "v1")},
			{ok("k", "k#1", engine.ActionUnchanged, ""), bad("k", "k#2")},
		}, ""},
		{"a skipped-as-handled record keeps it", [][]engine.Outcome{
			{ok("k", "k", engine.ActionCreated, "v1")},
			{{RecordKey: "k", Action: engine.ActionUnchanged, Reason: "same_source_version", SourceKey: "k", SourceVersion: "v1"}},
		}, "v1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			run := startRun(t, s, "p")
			for _, outs := range tc.pages {
				commit(t, s, page("p", run, outs...))
			}
			got, found, err := s.SourceVersion(t.Context(), "p", "k")
			if err != nil {
				t.Fatal(err)
			}
			if (tc.want != "") != found || got != tc.want {
				t.Errorf("SourceVersion = %q, %v; want %q", got, found, tc.want)
			}
		})
	}
}

// An unchanged outcome naming no hash and no target (a fanned-out record
// skipped as already handled) must not create a records row for its key.
func TestStore_UnchangedWithoutWriteAddsNoRecord(t *testing.T) {
	s := openTest(t)
	run := startRun(t, s, "p")
	commit(t, s, page("p", run, engine.Outcome{RecordKey: "k", Action: engine.ActionUnchanged, SourceKey: "k", SourceVersion: "v"}))
	if _, found, err := s.Record(t.Context(), "p", "k"); err != nil || found {
		t.Errorf("Record = found %v, %v; want no row", found, err)
	}
}
