package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"casesync/internal/sandbox"
	"casesync/internal/state"
)

// Issue 19.9: engine sync --baseline sends nothing, says how many writes
// it recorded as delivered, and leaves an audit row; the pipelines chained
// after it do not run.
func TestSyncBaseline(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Cases: 40, Clients: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	env := sandboxEnv(t, sb)
	path := filepath.Join(t.TempDir(), "state.db")
	base := []string{"--specs", "../../specs/cambodia", "--state", path,
		"--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]}
	out, errOut, code := runCLI(t, env, append([]string{"sync", "f1_referrals_to_oscar", "--baseline"}, base...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if w := sb.Oscar.Counters().TotalWrites() + sb.Primero.Counters().TotalWrites(); w != 0 {
		t.Errorf("a baseline wrote %d times", w)
	}
	if !strings.Contains(out, "recorded as delivered by the previous integration, not sent") || strings.Contains(out, "f2_clients_to_primero") {
		t.Errorf("output:\n%s", out)
	}
	st, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	audit, err := st.AuditLog(context.Background(), "f1_referrals_to_oscar", 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit {
		if e.Action == "baseline" && strings.Contains(e.Detail, "baselined=") && !strings.Contains(e.Detail, "baselined=0") {
			found = true
		}
	}
	if !found {
		t.Errorf("no baseline audit row: %+v", audit)
	}
	runs, err := st.Runs(context.Background(), "f1_referrals_to_oscar", 1)
	if err != nil || len(runs) != 1 || runs[0].Counts.Baselined == 0 || runs[0].Trigger != "baseline" {
		t.Errorf("run: %+v %v", runs, err)
	}
}
