package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"casesync/internal/sandbox"
)

// An inbox-only pipeline: dry-run --from takes the file as webhook
// deliveries (the inbox's key program finds the record in each body, and
// --query gives them their event), previews the exact PATCH, normalized as
// it would be sent, and writes nothing; sync refuses to walk a listing.
func TestDryRun_InboxDeliveries(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Cases: 3, Seed: 1, Thailand: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	env := map[string]string{}
	for _, n := range []string{"PRIMERO_USER", "PRIMERO_PASSWORD", "HIS_EMAIL", "HIS_PASSWORD", "PRIMERO_WEBHOOK_KEY"} {
		env[n], _ = sb.Secret(n)
	}
	base := []string{"--specs", "../../specs/thailand", "--state", filepath.Join(t.TempDir(), "state.db"),
		"--base-url", "primero=" + sb.URLs["primero"], "--base-url", "his=" + sb.URLs["his"]}
	fixture := "../../specs_test/testdata/thailand/primero_sync_webhook_minimal.json"
	tests := []struct {
		name   string
		query  []string
		action string
		reason string
	}{
		{"a Sync press", []string{"--query", "event=case.post"}, "update", "payload_changed"},
		{"the echo of an update", []string{"--query", "event=case.update"}, "skip", "not_a_sync_event"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"dry-run", "sync_patient", "--from", fixture, "--format", "json"}, base...)
			out, errOut, code := runCLI(t, env, append(args, tc.query...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			var got struct {
				Records []struct {
					Record  string `json:"record"`
					Action  string `json:"action"`
					Reason  string `json:"reason"`
					Request *struct {
						Method string         `json:"method"`
						Path   string         `json:"path"`
						Body   map[string]any `json:"body"`
					} `json:"request"`
				} `json:"decisions"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if len(got.Records) != 1 {
				t.Fatalf("records: %s", out)
			}
			r := got.Records[0]
			if r.Record != sandbox.ThaiCaseMinimal || r.Action != tc.action || r.Reason != tc.reason {
				t.Fatalf("got %s %s %s, want %s %s %s", r.Record, r.Action, r.Reason, sandbox.ThaiCaseMinimal, tc.action, tc.reason)
			}
			if tc.action == "update" {
				data, _ := r.Request.Body["data"].(map[string]any)
				if r.Request.Method != "PATCH" || r.Request.Path != "/api/v2/cases/"+sandbox.ThaiCaseMinimal ||
					data["mark_synced_status"] != "synced" || data["date_and_time_of_visit_to_the_hospital"] != "2024-03-10T17:20:00Z" {
					t.Errorf("request %+v", r.Request)
				}
			}
		})
	}
	if w := sb.Primero.Counters().TotalWrites(); w != 0 {
		t.Errorf("dry-run wrote %d times to Primero", w)
	}
	_, errOut, code := runCLI(t, env, append([]string{"sync", "sync_patient"}, base...)...)
	if code == 0 || !strings.Contains(errOut, "inbox") {
		t.Errorf("sync of an inbox-only pipeline: exit %d, %s", code, errOut)
	}
}
