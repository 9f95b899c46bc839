package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/internal/sandbox"
)

// Issue 19.6: --now makes a preview reproducible: the age of a child born
// 2012-06-25 is 12 the day before its birthday and 13 on it, whatever the
// real clock says; sync records its run as started then.
func TestNowFlag(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Clients: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	env := sandboxEnv(t, sb)
	state := filepath.Join(t.TempDir(), "state.db")
	base := []string{"--specs", "../../specs/cambodia", "--state", state,
		"--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]}
	file := filepath.Join(t.TempDir(), "clients.json")
	client := `[{"slug": "abcd-1", "global_id": "01AAAAAAAAAAAAAAAAAAAAAAAA", "external_id": "", "given_name": "Dara", "family_name": "Sok",
	  "gender": "male", "date_of_birth": "2012-06-25", "location_current_village_code": "12010101", "organization_id": 46,
	  "organization_name": "cif", "status": "Active", "level_of_risk": "low", "services": []}]`
	if err := os.WriteFile(file, []byte(client), 0o644); err != nil {
		t.Fatal(err)
	}
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
