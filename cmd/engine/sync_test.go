package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"casesync/internal/sandbox"
	"casesync/internal/testenv"
)

// TestSync_UnknownPipeline: a mistyped name is a usage error that names
// the pipelines there are, and leaves no state file behind.
func TestSync_UnknownPipeline(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "kh.db")
	_, errOut, code := runCLI(t, nil, "sync", "cases_to_oskar", "--specs", "../../specs/example", "--state", statePath)
	if code != 2 || !strings.Contains(errOut, `no pipeline "cases_to_oskar" in example (have: cases_to_oscar)`) || !strings.Contains(errOut, "engine sync --help") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(statePath); !os.IsNotExist(err) {
		t.Errorf("state file: %v, want none created", err)
	}
}

// TestSync_RefusedCredentialsReportNotProcessed: a run stopped by a
// refused login says so; the records it left are "not processed", not
// "failed", in its result line, engine runs and engine status; the exit
// is 1, nothing waits in the retry queue, and with the right password the
// next run writes every referred case.
func TestSync_RefusedCredentialsReportNotProcessed(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Cases: 30, Clients: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	referred := len(testenv.ReferredCases(sb))
	if referred == 0 {
		t.Fatal("the seed refers no case: the test proves nothing")
	}
	env := sandboxEnv(t, sb)
	env["OSCAR_PASSWORD"] = "not-the-password"
	statePath := filepath.Join(t.TempDir(), "s.db")
	flags := []string{"--specs", "../../specs/example", "--state", statePath,
		"--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]}
	out, errOut, code := runCLI(t, env, append([]string{"sync", "cases_to_oscar"}, flags...)...)
	if code != 1 {
		t.Fatalf("sync: exit %d, want 1\n%s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`skipped \d+, failed 0, not processed (\d+) \(`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("result line does not count the records left as not processed (and none failed):\n%s", out)
	}
	n := m[1]
	if want := "  stopped: credentials refused by oscar; " + n + " record(s) not processed"; !strings.Contains(out, want) {
		t.Errorf("result lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "http_401") || strings.Contains(errOut, "record failed") || strings.Contains(errOut, "not-the-password") {
		t.Errorf("a record reported failed for the refused login, or the secret shown:\n%s%s", out, errOut)
	}

	flags = flags[:4] // runs and status read the state only
	out, errOut, code = runCLI(t, env, append([]string{"runs"}, flags...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("runs: exit %d\n%s%s", code, out, errOut)
	}
	// The columns from STATUS on are one word each in a row (STARTED is
	// not), and NOT PROCESSED follows FAILED.
	head, row := strings.Fields(lines[0]), strings.Fields(lines[1])
	h, r := slices.Index(head, "STATUS"), slices.Index(row, "failed")
	if h < 0 || r < 0 || len(head) < h+8 || len(row) < r+8 || head[h+6] != "FAILED" || head[h+7] != "NOT" || row[r+6] != "0" || row[r+7] != n {
		t.Errorf("runs: want the run failed with 0 FAILED and %s NOT PROCESSED:\n%s", n, out)
	}
	out, errOut, code = runCLI(t, env, append([]string{"status"}, flags...)...)
	if code != 0 || !strings.Contains(out, "failed 0, not processed "+n) || !strings.Contains(out, "queue      empty") {
		t.Errorf("status: exit %d, want the counts with %s not processed and an empty queue:\n%s%s", code, n, out, errOut)
	}

	env["OSCAR_PASSWORD"], _ = sb.Secret("OSCAR_PASSWORD")
	out, errOut, code = runCLI(t, env, append([]string{"sync", "cases_to_oscar", "--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]}, flags...)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("created %d,", referred)) || strings.Contains(out, "not processed") {
		t.Errorf("sync with the right password: exit %d, want %d created\n%s%s", code, referred, out, errOut)
	}
}
