package main

import (
	"path/filepath"
	"strings"
	"testing"

	"casesync/internal/sandbox"
)

// engine sync names a pipeline with branches: every branch runs, one
// result line each, over one listing of Primero; a branch named alone runs
// on its own; dry-run of the pipeline with branches says to preview a
// branch, and a name that is neither lists both kinds.
func TestSync_PipelineWithBranches(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Cases: 30, Clients: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	env := sandboxEnv(t, sb)
	base := []string{"--specs", "../../specs/cambodia", "--state", filepath.Join(t.TempDir(), "state.db"),
		"--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]}
	out, errOut, code := runCLI(t, env, append([]string{"sync", "f1_primero_to_oscar", "--no-chain"}, base...)...)
	if code != 0 && code != 1 {
		t.Fatalf("sync: exit %d: %s", code, errOut)
	}
	for _, branch := range []string{"f1_decisions_to_oscar: read 30,", "f1_referrals_to_oscar: read 30,"} {
		if !strings.Contains(out, branch) {
			t.Errorf("sync of the pipeline with branches lacks %q:\n%s", branch, out)
		}
	}
	if n := strings.Count(out, ": read "); n != 2 {
		t.Errorf("%d result lines, want one per branch:\n%s", n, out)
	}
	out, errOut, code = runCLI(t, env, append([]string{"sync", "f1_referrals_to_oscar", "--no-chain"}, base...)...)
	if (code != 0 && code != 1) || strings.Count(out, ": read ") != 1 || !strings.HasPrefix(out, "f1_referrals_to_oscar: read ") {
		t.Errorf("sync of one branch: exit %d:\n%s%s", code, out, errOut)
	}
	_, errOut, code = runCLI(t, env, append([]string{"dry-run", "f1_primero_to_oscar"}, base...)...)
	if code != 2 || !strings.Contains(errOut, "f1_primero_to_oscar has branches, each previewed on its own: engine dry-run f1_decisions_to_oscar | f1_referrals_to_oscar") {
		t.Errorf("dry-run of the pipeline with branches: exit %d: %s", code, errOut)
	}
	_, errOut, _ = runCLI(t, env, append([]string{"sync", "f1_primero"}, base...)...)
	if !strings.Contains(errOut, "; with branches: f1_primero_to_oscar, f2_oscar_to_primero, f2_primero_after_clients)") {
		t.Errorf("unknown name: %s", errOut)
	}
}
