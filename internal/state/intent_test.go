package state

import (
	"testing"

	"casesync/engine"
)

func TestStore_CreateIntents(t *testing.T) {
	tests := []struct {
		name    string
		outcome *engine.Outcome // committed after BeginCreate; nil for a crash
		want    bool
	}{
		{name: "a crash before the commit leaves the intent", want: true},
		{name: "the created outcome clears it", outcome: &engine.Outcome{RecordKey: "k", Action: engine.ActionCreated, PayloadHash: "h1", TargetID: "T"}},
		{name: "a refused create clears it", outcome: ptr(failed("k", "http_422"))},
		{name: "an unconfirmed create keeps it", outcome: &engine.Outcome{RecordKey: "k", Action: engine.ActionFailed, Reason: "write_unconfirmed", Class: engine.ClassRetryable, Unconfirmed: true}, want: true},
		{name: "a skip clears it", outcome: &engine.Outcome{RecordKey: "k", Action: engine.ActionSkipped, Reason: "no_consent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			run := startRun(t, s, "p")
			if err := s.BeginCreate(t.Context(), "p", "k", "h1", run, t0); err != nil {
				t.Fatal(err)
			}
			if tc.outcome != nil {
				commit(t, s, page("p", run, *tc.outcome))
			}
			h, ok, err := s.CreateIntent(t.Context(), "p", "k")
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.want || (ok && h != "h1") {
				t.Errorf("CreateIntent = %q, %v; want present %v with h1", h, ok, tc.want)
			}
			if _, ok, _ := s.CreateIntent(t.Context(), "other", "k"); ok {
				t.Error("an intent leaked to another pipeline")
			}
		})
	}
}

func TestStore_AbandonCreate(t *testing.T) {
	s := openTest(t)
	run := startRun(t, s, "p")
	if err := s.BeginCreate(t.Context(), "p", "k", "h1", run, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.AbandonCreate(t.Context(), "p", "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.CreateIntent(t.Context(), "p", "k"); ok {
		t.Error("an abandoned create is still recorded")
	}
	if err := s.AbandonCreate(t.Context(), "p", "never"); err != nil {
		t.Errorf("abandoning an unknown intent: %v", err)
	}
}
