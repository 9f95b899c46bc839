package state_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
	"casesync/internal/state"
)

// TestKnown reads, in one call, what a page's records left in the state:
// the records and links of a source key and of its fan-out items (and of
// no other key that merely shares a prefix), links written either way
// round, handled versions and unconfirmed create intents.
func TestKnown(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	run, err := st.StartRun(ctx, "p", "h", "test", now)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(key, target, hash string, link *engine.Link, version string) engine.Outcome {
		src, _, _ := strings.Cut(key, "#")
		return engine.Outcome{RecordKey: key, Action: engine.ActionCreated, TargetID: target, PayloadHash: hash, Link: link,
			SourceKey: src, SourceVersion: version, At: now}
	}
	outs := []engine.Outcome{
		ok("a", "t-a", "ha", &engine.Link{SystemA: "src", IDA: "a", SystemB: "dst", IDB: "t-a", Pipeline: "p"}, "va"),
		ok("b#1", "t-b1", "hb1", &engine.Link{SystemA: "src", IDA: "b#1", SystemB: "dst", IDB: "t-b1", Pipeline: "p"}, "vb"),
		ok("b#2", "t-b2", "hb2", nil, "vb"),
		ok("bb", "t-bb", "hbb", &engine.Link{SystemA: "src", IDA: "bb", SystemB: "dst", IDB: "t-bb", Pipeline: "p"}, "vbb"),
		// Written the other way round by a pipeline in the other direction.
		{RecordKey: "x", Action: engine.ActionCreated, TargetID: "c", PayloadHash: "hx", At: now,
			Link: &engine.Link{SystemA: "dst", IDA: "t-c", SystemB: "src", IDB: "c", Pipeline: "q"}},
	}
	if err := st.CommitPage(ctx, engine.PageCommit{RunID: run, Pipeline: "p", Outcomes: outs, Now: now,
		Retry: engine.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if err := st.BeginCreates(ctx, run, now, []engine.Intent{{Pipeline: "p", RecordKey: "c#9", PayloadHash: "hc9"}, {Pipeline: "other", RecordKey: "c", PayloadHash: "no"}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Known(ctx, engine.KnownQuery{Pipeline: "p", SourceKeys: []string{"a", "b", "c", "missing"}, LinkFrom: "src", LinkTo: "dst"})
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Known{
		Records: map[string]engine.RecordState{
			"a":   {PayloadHash: "ha", TargetID: "t-a", Action: engine.ActionCreated, UpdatedAt: now},
			"b#1": {PayloadHash: "hb1", TargetID: "t-b1", Action: engine.ActionCreated, UpdatedAt: now},
			"b#2": {PayloadHash: "hb2", TargetID: "t-b2", Action: engine.ActionCreated, UpdatedAt: now},
		},
		Links:    map[string]string{"a": "t-a", "b#1": "t-b1", "c": "t-c"},
		Versions: map[string]string{"a": "va", "b": "vb"},
		Intents:  map[string]string{"c#9": "hc9"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Known (-want +got):\n%s", diff)
	}
}
