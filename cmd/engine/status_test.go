package main

import (
	"path/filepath"
	"strings"
	"testing"

	"casesync/internal/daemon"
)

func TestStatus(t *testing.T) {
	fx := newStateFixture(t)

	out, errOut, code := fx.cli(t, "status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"cases_to_oscar — NEEDS ATTENTION: failed or parked records\n",
		"map_error",
		"  cursor     20",
		"  next read  from ",
		"  last run   #1 succeeded, trigger manual, started ",
		"failed 1",
		"  queue      1 waiting to retry, 0 parked (engine failures --pipeline cases_to_oscar)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	var got []daemon.PipelineStatus
	fx.jsonOut(t, &got, "status", "--pipeline", "cases_to_oscar")
	if len(got) != 1 {
		t.Fatalf("status json: %d pipelines, want 1", len(got))
	}
	s := got[0]
	if s.Name != "cases_to_oscar" || s.Cursor == "" || s.LastRun == nil || s.LastRun.Status != "succeeded" ||
		s.LastRun.Counts.Failed != 1 || s.LastRun.Counts.Created == 0 || s.RetryQueued != 1 || s.RetryParked != 0 || s.ReadsFrom == "" ||
		s.Health != daemon.HealthAttention || s.LastSuccess == nil || s.RetryByReason["map_error"] != 1 {
		t.Errorf("status json = %+v (last run %+v)", s, s.LastRun)
	}

	if _, errOut, code := fx.cli(t, "status", "--pipeline", "nope"); code != 2 || !strings.Contains(errOut, `no pipeline "nope"`) {
		t.Errorf("unknown pipeline: exit %d, %q; want 2", code, errOut)
	}
	if _, _, code := fx.cli(t, "status", "--format", "yaml"); code != 2 {
		t.Errorf("--format yaml: exit %d, want 2", code)
	}
}

// TestStatus_NeverRun: with the specs and no state file yet, every
// pipeline shows as never run, and no file is created.
func TestStatus_NeverRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	out, errOut, code := runCLI(t, nil, "status", "--specs", "../../specs/example", "--state", path)
	if code != 0 || !strings.Contains(out, "cases_to_oscar") || !strings.Contains(out, "never run") || !strings.Contains(out, "queue      empty") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
}
