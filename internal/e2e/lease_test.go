//go:build unix

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"casesync/internal/fakes/faults"
	"casesync/internal/sandbox"
)

// TestSync_TwoProcessesOneStateFile starts two `engine sync` of one
// pipeline on one state file at the same moment, against fakes answering
// after 100 ms: one runs, the other is refused with exit 2 naming the
// holder, and OSCaR counts no duplicate. Without the writer lease both
// found nothing and both created (issue 16 saw 38 to 41 duplicates).
func TestSync_TwoProcessesOneStateFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the engine binary")
	}
	bin := runnerBuildEngine(t)
	dir := runnerSpecs(t, runnerSpecOptions{Per: 10, Extra: map[string]string{"upsert.cue": runnerFindCUE}})
	sb := runnerSandbox(t, sandbox.Options{Cases: 120, Clients: 10, OSCaRAutoAccept: true,
		Faults: faults.Config{Latency: 100 * time.Millisecond}})
	tmp := t.TempDir()
	statePath := filepath.Join(tmp, "state.db")
	secrets := filepath.Join(tmp, "secrets.env")
	var b strings.Builder
	for _, n := range []string{"PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD"} {
		v, _ := sb.Secret(n)
		fmt.Fprintf(&b, "%s=%s\n", n, v)
	}
	if err := os.WriteFile(secrets, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CASESYNC_") {
			env = append(env, kv)
		}
	}

	type result struct {
		code int
		out  string
		pid  int
	}
	results := make([]result, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "sync", runnerPipeline, "--no-chain", "--log-level", "error",
				"--specs", dir, "--state", statePath, "--secrets-file", secrets,
				"--base-url", "primero="+sb.URLs["primero"], "--base-url", "oscar="+sb.URLs["oscar"])
			cmd.Env = env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			<-start
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				code = -1
			}
			results[i] = result{code: code, out: out.String(), pid: cmd.Process.Pid}
		})
	}
	close(start)
	wg.Wait()

	var ran, refused []result
	for _, r := range results {
		switch r.code {
		case 0:
			ran = append(ran, r)
		case 2:
			refused = append(refused, r)
		default:
			t.Errorf("engine sync exited %d:\n%s", r.code, r.out)
		}
	}
	if len(ran) != 1 || len(refused) != 1 {
		t.Fatalf("%d ran and %d were refused, want one of each:\n%s\n---\n%s", len(ran), len(refused), results[0].out, results[1].out)
	}
	want := fmt.Sprintf("is held by engine sync, pid %d, since ", ran[0].pid)
	if !strings.Contains(refused[0].out, want) || !strings.Contains(refused[0].out, "trigger the pipeline through the daemon or stop it") {
		t.Errorf("refusal does not say who holds the state and what to do (want %q):\n%s", want, refused[0].out)
	}
	if d := sb.Oscar.Counters().Duplicates.Load(); d != 0 {
		t.Errorf("OSCaR counted %d duplicate referrals", d)
	}
	if n := len(runnerTarget(sb)); n == 0 {
		t.Error("nothing reached OSCaR: the run that held the lease did nothing")
	}
}
