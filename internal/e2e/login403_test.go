package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
// "succeeded" (issue 16 item 3).
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
	if last, _, err := store.LastRun(t.Context(), runnerPipeline); err != nil || last.Status != "failed" {
		t.Errorf("last run = %+v, %v; want failed", last, err)
	}
	if len(testenv.ReferredCases(sb)) == 0 {
		t.Fatal("the seed refers no case: the test proves nothing")
	}
}
