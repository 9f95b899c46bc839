package e2e

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"casesync/engine"
	"casesync/internal/fakes/faults"
	"casesync/internal/sandbox"
	"casesync/internal/testenv"
)

// TestRunner_PushedRecordRetriesFromTheQueue: a record a webhook pushed
// that fails keeps its body in the retry queue, and the retry runs it from
// there, without re-reading the source; once it is written the body is
// gone from the state file (issue 16 item 13).
func TestRunner_PushedRecordRetriesFromTheQueue(t *testing.T) {
	sb := runnerSandbox(t, sandbox.Options{Cases: 30, Clients: 5})
	extra := "package example\n\nconnectors: oscar: retry: max_attempts: 1\n"
	env := runnerOpen(t, sb, runnerSpecs(t, runnerSpecOptions{Per: 1000, Extra: map[string]string{"retry.cue": extra}}), "", nil)
	id := testenv.ReferredCases(sb)[0]
	rec, ok := sb.Primero.Case(id)
	if !ok {
		t.Fatal("no case", id)
	}
	name, _ := rec["name_first"].(string)
	if name == "" {
		t.Fatal("the case has no first name: the grep below proves nothing")
	}

	// OSCaR is down: the pushed record fails and is queued with its body.
	sb.Oscar.Faults().Set(faults.Config{Rate500: 1})
	res, err := env.runner.Sync(context.Background(), runnerPipeline, engine.SyncOptions{Trigger: "inbox", Records: []any{rec}, Pushed: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.Failed != 1 {
		t.Fatalf("counts %+v, want the pushed record failed", res.Counts)
	}
	fails, err := env.store.Failures(t.Context(), runnerPipeline)
	if err != nil || len(fails) != 1 || fails[0].RecordKey != id || len(fails[0].Body) == 0 {
		t.Fatalf("failures = %+v, %v; want %s queued with its body", fails, err, id)
	}

	// OSCaR is back; the retry is due.
	sb.Oscar.Faults().Set(faults.Config{})
	if _, err := env.store.RequeueNow(t.Context(), runnerPipeline, id, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	before := sb.Primero.Counters().Requests()["GET /api/v2/cases/"+id]
	res, err = env.runner.Sync(context.Background(), runnerPipeline, engine.SyncOptions{Trigger: "retry"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.Failed != 0 {
		t.Fatalf("retry counts %+v %v, want nothing failed", res.Counts, res.Reasons)
	}
	if got := sb.Primero.Counters().Requests()["GET /api/v2/cases/"+id] - before; got != 0 {
		t.Errorf("the retry fetched the pushed record from the source %d time(s), want it run from the queue", got)
	}
	found := false
	for _, r := range sb.Oscar.Referrals() {
		if r["external_id"] == rec["case_id"] {
			found = true
		}
	}
	if !found {
		t.Errorf("OSCaR has no referral for %s after the retry", id)
	}
	if fails, _ := env.store.Failures(t.Context(), runnerPipeline); len(fails) != 0 {
		t.Errorf("failures after the retry = %+v, want none", fails)
	}
	env.close()
	var all []byte
	for _, p := range []string{env.statePath, env.statePath + "-wal"} {
		b, _ := os.ReadFile(p)
		all = append(all, b...)
	}
	if bytes.Contains(all, []byte(name)) && strings.TrimSpace(name) != "" {
		t.Errorf("the written record's name %q is still in the state file", name)
	}
}
