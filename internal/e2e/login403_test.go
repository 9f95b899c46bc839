package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"casesync/engine"
	"casesync/internal/sandbox"
	"casesync/internal/state"
	"casesync/internal/testenv"
	"casesync/internal/wire"
)

// TestRunner_LoginRefusedWith403StopsTheRun: a 403 to the target's login
// (as a WAF or an IP allow-list in front of OSCaR answers) stops the run
// like a 401 does: no record is charged a retry attempt and the run is
// failed; before, every record failed with http_403 and the run
// "succeeded" (issue 16 item 3). The records it left are counted as not
// processed, not failed, and the next run takes them.
func TestRunner_LoginRefusedWith403StopsTheRun(t *testing.T) {
	sb := runnerSandbox(t, sandbox.Options{Cases: 60, Clients: 5})
	waf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/admin_auth/sign_in" {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte("<html><body>403 Forbidden: your address is not allowed</body></html>"))
			return
		}
		sb.Oscar.ServeHTTP(w, r)
	}))
	t.Cleanup(waf.Close)
	plan := runnerLoadPlan(t, sb, runnerSpecs(t, runnerSpecOptions{Per: 20})).WithBaseURLs(map[string]string{"oscar": waf.URL})
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dep, err := wire.Open(plan, wire.Options{State: store, Secrets: sb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dep.Close() })

	res, err := dep.Runner.Sync(context.Background(), runnerPipeline, engine.SyncOptions{Trigger: "test"})
	var stopped *engine.RunStoppedError
	if !errors.As(err, &stopped) || stopped.Class != engine.ClassAuth {
		t.Fatalf("sync = %v (counts %+v), want a RunStoppedError of class auth", err, res.Counts)
	}
	if res.Counts.Created != 0 {
		t.Errorf("counts %+v, want nothing created", res.Counts)
	}
	fails, err := store.Failures(t.Context(), runnerPipeline)
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) != 0 {
		t.Errorf("%d record(s) charged a failed attempt, want none: the login was refused, not the records", len(fails))
	}
	referred := testenv.ReferredCases(sb)
	if len(referred) == 0 {
		t.Fatal("the seed refers no case: the test proves nothing")
	}
	checkStoppedRun(t, store, res, stopped)
	dep.Close()

	// The WAF lets the engine in again: the next run takes every record the
	// stopped one left, and nothing is lost.
	plan = runnerLoadPlan(t, sb, runnerSpecs(t, runnerSpecOptions{Per: 20}))
	dep, err = wire.Open(plan, wire.Options{State: store, Secrets: sb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dep.Close() })
	res, err = dep.Runner.Sync(context.Background(), runnerPipeline, engine.SyncOptions{Trigger: "test"})
	if err != nil || res.Counts.Created != len(referred) || res.Counts.Failed != 0 || res.Counts.NotProcessed != 0 {
		t.Errorf("after the WAF lets it in: %v, counts %+v, want %d created", err, res.Counts, len(referred))
	}
}

// checkStoppedRun checks what a run stopped by refused credentials
// reports: the records it left are "not processed", never "failed" (no
// failed reason, no failed outcome in the state), the same count in its
// result, its error and its run row, and the cursor did not move past
// them.
func checkStoppedRun(t *testing.T, store *state.Store, res *engine.RunResult, stopped *engine.RunStoppedError) {
	t.Helper()
	c := res.Counts
	if c.Failed != 0 || c.NotProcessed == 0 {
		t.Errorf("counts %+v (reasons %v): want 0 failed and the records the run left as not processed", c, res.Reasons)
	}
	skippedByReason := 0
	for _, n := range res.Reasons {
		skippedByReason += n
	}
	if skippedByReason != c.Skipped {
		t.Errorf("reasons %v count %d records, want only the %d the filters skipped", res.Reasons, skippedByReason, c.Skipped)
	}
	if stopped.NotProcessed != c.NotProcessed || stopped.Connector != "oscar" {
		t.Errorf("stop error: %d not processed, connector %q; want %d, oscar", stopped.NotProcessed, stopped.Connector, c.NotProcessed)
	}
	want := fmt.Sprintf("credentials refused by oscar; %d record(s) not processed", c.NotProcessed)
	if !strings.Contains(stopped.Error(), want) {
		t.Errorf("stop error %q lacks %q", stopped.Error(), want)
	}
	last, _, err := store.LastRun(t.Context(), runnerPipeline)
	if err != nil || last.Status != "failed" || last.ID != res.RunID || last.Counts.Failed != 0 || last.Counts.NotProcessed != c.NotProcessed ||
		!strings.Contains(last.Error, want) {
		t.Errorf("last run = %+v, %v; want run %d failed with %q and counts %+v", last, err, res.RunID, want, c)
	}
	outs, err := store.Outcomes(t.Context(), res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Action != engine.ActionSkipped {
			t.Errorf("outcome %s %s (%s) committed; want only the filters' skips", o.RecordKey, o.Action, o.Reason)
		}
	}
	if len(outs) != c.Skipped {
		t.Errorf("%d outcomes committed, want the %d skipped", len(outs), c.Skipped)
	}
	if _, ok, _ := store.Cursor(t.Context(), runnerPipeline); ok {
		t.Error("the cursor moved although the run stopped")
	}
}
