package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"casesync/internal/sandbox"
	"casesync/internal/testenv"
)

// TestLogs_JSONLevels: with --log-format json every line on stderr is one
// JSON object, and failures carry the levels an alert on warnings needs: a
// failed record and a run with failed records at WARN, a failed run at
// ERROR.
func TestLogs_JSONLevels(t *testing.T) {
	tests := []struct {
		name     string
		breakIt  func(t *testing.T, sb *sandbox.Sandbox, env map[string]string)
		wantCode int
		want     map[string]string // message → level
	}{
		{
			name: "a record fails",
			breakIt: func(t *testing.T, sb *sandbox.Sandbox, env map[string]string) {
				ids := testenv.ReferredCases(sb)
				sb.Primero.Touch(ids[0], map[string]any{"date_of_birth": "2015-13-45"})
			},
			// Exit 1: a scheduler must not read "all written" from it.
			wantCode: 1,
			want:     map[string]string{"record failed": "WARN", "run finished with failed records": "WARN", "1 record(s) failed and wait in the retry queue (engine failures)": "ERROR"},
		},
		{
			name: "the run fails",
			breakIt: func(t *testing.T, sb *sandbox.Sandbox, env map[string]string) {
				env["PRIMERO_PASSWORD"] = "wrong"
			},
			wantCode: 1,
			want:     map[string]string{"run failed": "ERROR"},
		},
		{
			name:    "a clean run",
			breakIt: func(t *testing.T, sb *sandbox.Sandbox, env map[string]string) {},
			want:    map[string]string{"run succeeded": "INFO"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, err := sandbox.Start(sandbox.Options{Cases: 30, Clients: 3, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sb.Close)
			env := sandboxEnv(t, sb)
			tt.breakIt(t, sb, env)
			_, errOut, code := runCLI(t, env, "sync", "cases_to_oscar", "--specs", "../../specs/example",
				"--state", filepath.Join(t.TempDir(), "s.db"), "--log-format", "json", "--log-level", "info",
				"--base-url", "primero="+sb.URLs["primero"], "--base-url", "oscar="+sb.URLs["oscar"])
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, tt.wantCode, errOut)
			}
			got := map[string]string{}
			for i, line := range strings.Split(strings.TrimSuffix(errOut, "\n"), "\n") {
				var rec struct {
					Level string `json:"level"`
					Msg   string `json:"msg"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("stderr line %d is not JSON (%v): %q", i+1, err, line)
				}
				got[rec.Msg] = rec.Level
			}
			for msg, level := range tt.want {
				if got[msg] != level {
					t.Errorf("%q logged at %q, want %s; messages: %v", msg, got[msg], level, got)
				}
			}
		})
	}
}

// TestLogs_JSONSpecProblems: a spec that does not load is reported in
// JSON too when JSON logs were asked for, problem by problem.
func TestLogs_JSONSpecProblems(t *testing.T) {
	specs := copyExampleSpecs(t)
	editSpec(t, specs, "referrals.cue", `reason: "no_consent"`, `reason: no_consent_typo`)
	_, errOut, code := runCLI(t, nil, "sync", "cases_to_oscar", "--specs", specs, "--log-format", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("stderr line %d is not JSON (%v): %q", i+1, err, line)
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "referrals.cue:") || !strings.Contains(lines[0], "undefined-reference") {
		t.Errorf("want the problem with its position, then the summary:\n%s", errOut)
	}
}
