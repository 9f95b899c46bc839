package state

import (
	"testing"
	"time"

	"casesync/engine"

	"github.com/google/go-cmp/cmp"
)

// The bulk commit writes exactly what the outcome-by-outcome commit writes:
// each case commits the same pages into two stores, one forced through
// apply, and compares every table.
func TestStore_CommitPageBulkEqualsOneByOne(t *testing.T) {
	t1 := t0.Add(time.Hour)
	link := func(ida, idb string) *engine.Link {
		return &engine.Link{SystemA: "primero", IDA: ida, SystemB: "ona", IDB: idb}
	}
	// before: a record k5, a queued failure of k2 and of the fanned-out
	// source record c7, a create intent of k3, and a link of k4.
	before := []engine.PageCommit{{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{
		created("k5", "h5", "T5"),
		failed("k2", "http_503"),
		failed("c7", "enrich_failed"),
		{RecordKey: "k4", Action: engine.ActionCreated, PayloadHash: "h4", TargetID: "T4", Link: link("case-4", "g-old")},
	}}}
	tests := []struct {
		name string
		page engine.PageCommit
	}{{
		name: "first load: created, linked, versioned",
		page: engine.PageCommit{Pipeline: "p", Now: t1, Cursor: ptr("c9"), Outcomes: []engine.Outcome{
			{RecordKey: "k1", Action: engine.ActionCreated, PayloadHash: "h1", TargetID: "T1", SourceKey: "k1", SourceVersion: "v1", Link: link("case-1", "T1")},
			{RecordKey: "k8", Action: engine.ActionCreated, PayloadHash: "h8", TargetID: "T8", SourceKey: "k8", SourceVersion: "v8", Link: link("case-8", "T8"), At: t1.Add(time.Second)},
		}},
	}, {
		name: "every kind of outcome the bulk commit takes",
		page: engine.PageCommit{Pipeline: "p", Now: t1, Cursor: ptr("c9"), Outcomes: []engine.Outcome{
			{RecordKey: "k2", Action: engine.ActionUpdated, PayloadHash: "h2", TargetID: "T2", SourceKey: "k2", SourceVersion: "v2"},
			{RecordKey: "k3", Action: engine.ActionCreated, PayloadHash: "h3", TargetID: "T3"},
			{RecordKey: "k4", Action: engine.ActionUpdated, PayloadHash: "h4b", TargetID: "g-new", Link: link("case-4", "g-new")},
			{RecordKey: "k5", Action: engine.ActionUnchanged},
			{RecordKey: "k6", Action: engine.ActionSkipped, Reason: "disabled", SourceKey: "k6", SourceVersion: "v6"},
			{RecordKey: "c7#s1", Action: engine.ActionCreated, PayloadHash: "hs1", TargetID: "s1", SourceKey: "c7", SourceVersion: "v7", At: t1.Add(time.Minute)},
			{RecordKey: "c7#s2", Action: engine.ActionCreated, PayloadHash: "hs2", TargetID: "s2", SourceKey: "c7", SourceVersion: "v7"},
		}},
	}, {
		name: "a page of 300 rows (statements of 64, 16, 4 and 1 rows)",
		page: func() engine.PageCommit {
			c := engine.PageCommit{Pipeline: "p", Now: t1}
			for i := range 300 {
				k := "r" + string(rune('a'+i%26)) + time.Duration(i).String()
				c.Outcomes = append(c.Outcomes, engine.Outcome{RecordKey: k, Action: engine.ActionCreated, PayloadHash: "h", TargetID: k,
					SourceKey: k, SourceVersion: "v", Link: link(k, k)})
			}
			return c
		}(),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var dumps [2]map[string][]string
			for i, bulk := range []bool{true, false} {
				s := openTest(t)
				run := startRun(t, s, "p")
				for _, c := range before {
					c.RunID = run
					commit(t, s, c)
				}
				if err := s.BeginCreate(t.Context(), "p", "k3", "h3", run, t0); err != nil {
					t.Fatal(err)
				}
				c := tc.page
				c.RunID = run
				if got := s.bulkable(&c); !got {
					t.Fatalf("bulkable = false for a page the bulk commit should take")
				}
				if !bulk {
					// A test hook between outcomes forces apply.
					s.testAfterOutcome = func(int) {}
				}
				commit(t, s, c)
				s.testAfterOutcome = nil
				dumps[i] = dump(t, s)
			}
			if diff := cmp.Diff(dumps[1], dumps[0]); diff != "" {
				t.Errorf("bulk commit differs from the outcome-by-outcome one (-one by one +bulk):\n%s", diff)
			}
		})
	}
}

func TestStore_Bulkable(t *testing.T) {
	ok := engine.Outcome{RecordKey: "a", Action: engine.ActionCreated}
	tests := []struct {
		name string
		outs []engine.Outcome
		want bool
	}{
		{"distinct keys", []engine.Outcome{ok, {RecordKey: "b", Action: engine.ActionSkipped}}, true},
		{"a failure", []engine.Outcome{ok, failed("b", "http_503")}, false},
		{"a key twice", []engine.Outcome{ok, ok}, false},
		{"a link twice", []engine.Outcome{
			{RecordKey: "a", Action: engine.ActionCreated, Link: &engine.Link{SystemA: "x", IDA: "1", SystemB: "y", IDB: "A"}},
			{RecordKey: "b", Action: engine.ActionCreated, Link: &engine.Link{SystemA: "x", IDA: "1", SystemB: "y", IDB: "B"}},
		}, false},
		{"one outcome", []engine.Outcome{ok}, false},
	}
	s := &Store{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.bulkable(&engine.PageCommit{Outcomes: tc.outs}); got != tc.want {
				t.Errorf("bulkable = %v, want %v", got, tc.want)
			}
		})
	}
}
