package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Issue 19.6: --now makes a preview reproducible: the age of a child born
// 2012-06-25 is 12 the day before its birthday and 13 on it, whatever the
// real clock says; sync records its run as started then.
func TestNowFlag(t *testing.T) {
	env, state, base, file := cambodiaOneClient(t, 2, "2012-06-25")
	for now, want := range map[string]float64{"2025-06-24T23:59:59Z": 12, "2025-06-25": 13, "2025-06-25 00:00:00": 13} {
		out, errOut, code := runCLI(t, env, append([]string{"dry-run", "f2_clients_to_primero", "--from", file, "--format", "json", "--now", now}, base...)...)
		if code != 0 {
			t.Fatalf("--now %s: exit %d: %s", now, code, errOut)
		}
		var js struct {
			Decisions []struct {
				Request struct {
					Body struct {
						Data map[string]any `json:"data"`
					} `json:"body"`
				} `json:"request"`
			} `json:"decisions"`
		}
		if err := json.Unmarshal([]byte(out), &js); err != nil || len(js.Decisions) != 1 {
			t.Fatalf("--now %s: %v\n%s", now, err, out)
		}
		if got := js.Decisions[0].Request.Body.Data["age"]; got != want {
			t.Errorf("--now %s: age %v, want %v", now, got, want)
		}
	}
	if _, errOut, code := runCLI(t, env, append([]string{"dry-run", "f2_clients_to_primero", "--from", file, "--now", "yesterday"}, base...)...); code != 2 || !strings.Contains(errOut, "--now") {
		t.Errorf("a bad --now: exit %d: %s", code, errOut)
	}

	if _, errOut, code := runCLI(t, env, append([]string{"sync", "f0_oscar_ids_to_primero", "--now", "2025-06-25T08:00:00Z"}, base...)...); code != 0 {
		t.Fatalf("sync: exit %d: %s", code, errOut)
	}
	out, errOut, code := runCLI(t, env, "runs", "--state", state, "--format", "json")
	if code != 0 {
		t.Fatalf("runs: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "2025-06-25T08:00:00") {
		t.Errorf("the run did not start at --now:\n%s", out)
	}
}
