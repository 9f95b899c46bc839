package main

import (
	"strings"
	"testing"
)

func TestRuns(t *testing.T) {
	fx := newStateFixture(t)
	// A second run, so there is an order to check (the fixture's bad
	// record fails again: exit 1).
	if _, errOut, code := fx.cli(t, "sync", "cases_to_oscar", "--trigger", "cron"); code != 1 {
		t.Fatalf("sync: exit %d\n%s", code, errOut)
	}

	out, errOut, code := fx.cli(t, "runs")
	if code != 0 {
		t.Fatalf("runs: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], "2 ") || !strings.HasPrefix(lines[2], "1 ") {
		t.Fatalf("runs: want a header and runs 2 then 1:\n%s", out)
	}
	if !strings.Contains(lines[1], "cron") || !strings.Contains(lines[1], "succeeded") || !strings.Contains(lines[2], "manual") {
		t.Errorf("runs rows lack trigger or status:\n%s", out)
	}

	var got []runJSON
	fx.jsonOut(t, &got, "runs", "--pipeline", "cases_to_oscar", "--limit", "1")
	if len(got) != 1 || got[0].ID != 2 || got[0].Trigger != "cron" || got[0].Status != "succeeded" || got[0].Started == nil || got[0].Finished == nil || got[0].SpecHash == "" {
		t.Errorf("runs json = %+v, want run 2 only", got)
	}
	if _, _, code := fx.cli(t, "runs", "--limit", "-1"); code != 2 {
		t.Errorf("--limit -1: exit %d, want 2", code)
	}
}
