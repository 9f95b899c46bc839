package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
	"casesync/internal/sandbox"
)

var update = flag.Bool("update", false, "rewrite golden files")

// runCLI drives the real CLI in-process.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb, func(k string) string { return env[k] })
	code := a.run(context.Background(), args)
	return out.String(), errb.String(), code
}

func sandboxEnv(t *testing.T, sb *sandbox.Sandbox) map[string]string {
	env := map[string]string{}
	for _, n := range []string{"PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD"} {
		v, _ := sb.Secret(n)
		env[n] = v
	}
	return env
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "dryrun", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestDryRun_Golden previews the example deployment in every format, and
// proves dry-run writes nothing: the fakes' write counters do not move and
// the state file is byte-identical before and after.
func TestDryRun_Golden(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Cases: 40, Clients: 5, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	env := sandboxEnv(t, sb)
	statePath := filepath.Join(t.TempDir(), "state.db")
	base := []string{"--specs", "../../specs/example", "--state", statePath,
		"--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]}

	// A real sync of a few records first, so the state file exists and
	// some targets are already written (dry-run then shows unchanged).
	if _, errOut, code := runCLI(t, env, append([]string{"sync", "cases_to_oscar", "--limit", "10"}, base...)...); code != 0 {
		t.Fatalf("sync: exit %d: %s", code, errOut)
	}
	writesBefore := sb.Oscar.Counters().TotalWrites() + sb.Primero.Counters().TotalWrites()
	stateBefore := fileHash(t, statePath)

	for _, format := range []string{"table", "json", "diff"} {
		t.Run(format, func(t *testing.T) {
			out, errOut, code := runCLI(t, env, append([]string{"dry-run", "cases_to_oscar", "--format", format, "--since", "2020-01-01T00:00:00Z"}, base...)...)
			if code != 0 {
				t.Fatalf("dry-run: exit %d: %s", code, errOut)
			}
			golden(t, "example."+format, out)
			if format == "table" {
				for i, line := range strings.Split(out, "\n") {
					if n := len([]rune(line)); n > 100 {
						t.Errorf("line %d is %d columns wide, want ≤ 100: %q", i+1, n, line)
					}
				}
			}
		})
	}
	t.Run("redact-pii", func(t *testing.T) {
		out, _, code := runCLI(t, env, append([]string{"dry-run", "cases_to_oscar", "--redact-pii", "--since", "2020-01-01T00:00:00Z"}, base...)...)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		for _, c := range sb.Primero.Cases() {
			for _, f := range []string{"name_first", "name_last"} {
				if name, _ := c[f].(string); name != "" && strings.Contains(out, `"`+name+`"`) {
					t.Errorf("--redact-pii output shows %s %q", f, name)
				}
			}
		}
	})

	if got := sb.Oscar.Counters().TotalWrites() + sb.Primero.Counters().TotalWrites(); got != writesBefore {
		t.Errorf("dry-run wrote to the fakes: %d writes before, %d after", writesBefore, got)
	}
	if fileHash(t, statePath) != stateBefore {
		t.Error("dry-run changed the state file")
	}
}

// TestDryRun_FromFile reads source records from a file instead of the API.
func TestDryRun_FromFile(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Cases: 1, Clients: 1, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	recs := `[{"id": "rec-1", "case_id": "c-1", "case_id_display": "c1", "consent_for_services": true, "name_first": "Ana", "name_last": "Bel",
	  "sex": "female", "date_of_birth": "2014/02/03", "risk_level": "no_action", "owned_by": "mgrpnh",
	  "services_section": [{"unique_id": "s-1", "service_response_type": "referral_to_oscar", "service_implementing_agency": "agency-fco", "service_subtype": ["family_based_care_kinship"]}]},
	 {"id": "rec-2", "case_id": "c-2", "consent_for_services": false}]`
	file := filepath.Join(t.TempDir(), "cases.json")
	if err := os.WriteFile(file, []byte(recs), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, sandboxEnv(t, sb), "dry-run", "cases_to_oscar", "--specs", "../../specs/example", "--from", file, "--format", "json",
		"--state", filepath.Join(t.TempDir(), "s.db"), "--base-url", "primero="+sb.URLs["primero"], "--base-url", "oscar="+sb.URLs["oscar"])
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "from_file.json", out)
}

// TestPreviewer_MasksNameValuePairs: bodies that carry field names as data
// ({"Name": "progres_pocphonenumber", "Value": "…"}) are masked by name.
func TestPreviewer_MasksNameValuePairs(t *testing.T) {
	p := &previewer{redactPII: true}
	body := map[string]any{"Fields": []any{
		map[string]any{"Name": "progres_pocphonenumber", "Value": "+999 555 0101"},
		map[string]any{"Name": "progres_pocdateofbirth", "Value": "2011-02-03"},
		map[string]any{"Name": "progres_requestedservice", "Value": "guid-1"},
	}, "given_name": "Ana", "case_id": "c-1"}
	got := p.maskTree("", body).(map[string]any)
	fields := got["Fields"].([]any)
	if v := fields[0].(map[string]any)["Value"]; v != "•••" {
		t.Errorf("phone value shown: %v", v)
	}
	if v := fields[1].(map[string]any)["Value"]; v != "•••" {
		t.Errorf("date of birth shown: %v", v)
	}
	if v := fields[2].(map[string]any)["Value"]; v != "guid-1" {
		t.Errorf("a code was masked: %v", v)
	}
	if got["given_name"] != "•••" || got["case_id"] != "c-1" {
		t.Errorf("got %v", got)
	}
}

// TestPreviewer_MasksByClass: --redact-pii masks what the deployment
// classifies (health data included, which no name pattern used to catch),
// shows what it declares "none", and falls back to the usual personal
// names for fields it does not mention.
func TestPreviewer_MasksByClass(t *testing.T) {
	plan := &engine.Plan{Spec: engine.DeploymentSpec{Sensitivity: map[string]string{
		"diagnosis": "health", "hb_result": "health", "concern_code": "protection", "given_name": "none",
	}}}
	p := &previewer{redactPII: true, plan: plan}
	tests := []struct {
		field string
		value any
		want  any
	}{
		{"diagnosis", "malaria", "•••"},
		{"hb_result", "9.1 g/dL", "•••"},
		{"concern_code", "gbv", "•••"},
		{"given_name", "Ana", "Ana"},
		{"lab_results", "positive", "•••"},
		{"name_first", "Ana", "•••"},
		{"case_id", "c-1", "c-1"},
	}
	for _, tc := range tests {
		if got := p.mask(tc.field, tc.value); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.field, got, tc.want)
		}
	}
}

// A dry-run before the state file exists previews against an empty
// throwaway state, and leaves neither the real file nor the throwaway
// (its database, lock and intent journal) behind.
func TestDryRun_NoStateFileLeavesNothing(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Cases: 5, Clients: 2, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	statePath := filepath.Join(t.TempDir(), "state.db")
	_, errOut, code := runCLI(t, sandboxEnv(t, sb), "dry-run", "cases_to_oscar", "--specs", "../../specs/example", "--state", statePath,
		"--base-url", "primero="+sb.URLs["primero"], "--base-url", "oscar="+sb.URLs["oscar"])
	if code != 0 {
		t.Fatalf("dry-run: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dry-run created the state file (stat: %v)", err)
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind in the temporary folder: %s", e.Name())
	}
}
