//go:build unix

package e2e

import (
	"bytes"
	"casesync/internal/testenv"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
	"casesync/internal/sandbox"
)

var (
	runnerCrashRounds = flag.Int("runner.crash-rounds", 0,
		"extra rounds of random SIGKILL points in TestRunner_CrashSafety (the long variant)")
	runnerCrashSeedFlag = flag.Uint64("runner.crash-seed", 0,
		"seed of the random kill points (0: from the clock; the test logs it)")
)

// runnerCrashSeed sizes the crash test: 120 cases over 12 pages of 10, of
// which about a third are referred to OSCaR and written.
var runnerCrashSeed = sandbox.Options{Cases: 120, Clients: 10, OSCaRAutoAccept: true}

// runnerCrashRoundsFixed are the kill points, one engine process per
// point, replayed in order on one state file; each round then runs to
// completion. Points reached late in a round (commit 12 is the last page's,
// which moves the cursor) come last, since a process that gets past them
// leaves less for the next one to do.
var runnerCrashRoundsFixed = [][]string{
	{"mid-page:7", "after-write:2", "before-commit:2", "after-commit:3", "mid-page:45", "after-write:5",
		"after-commit:6", "before-commit:8", "after-write:1", "mid-page:96", "after-write:4", "before-commit:12"},
	{"after-write:3", "mid-page:15", "after-write:7", "before-commit:1", "after-commit:1", "mid-page:64",
		"after-write:2", "before-commit:5", "after-commit:9", "after-write:6", "mid-page:110", "after-commit:12"},
}

// TestRunner_CrashSafety kills the engine process with SIGKILL at fixed
// points spread across pages and across the write/commit boundary (the
// CASESYNC_CRASH_AT hook), restarts it on the same state file until a run
// completes, and compares fake OSCaR with a clean run's: the same clients
// and referrals, no duplicate, nothing lost (issue 6, crash safety).
func TestRunner_CrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the engine binary and runs it about thirty times")
	}
	bin := runnerBuildEngine(t)
	dir := runnerSpecs(t, runnerSpecOptions{Per: 10, Extra: map[string]string{"upsert.cue": runnerFindCUE}})

	// The ground truth: a clean run on its own sandbox with the same seed.
	ref := runnerSandbox(t, runnerCrashSeed)
	clean := runnerOpen(t, ref, dir, "", nil).sync(t)
	want := runnerTargetState(t, ref)
	if clean.Counts.Created < 20 || clean.Counts.Failed != 0 {
		t.Fatalf("clean run: %+v; want at least 20 created and none failed", clean.Counts)
	}

	// A round is a list of points, or (the long variant) random points
	// drawn until one is not reached because the run completed.
	type round struct {
		points []string
		random bool
	}
	var rounds []round
	for _, p := range runnerCrashRoundsFixed {
		rounds = append(rounds, round{points: p})
	}
	seed := *runnerCrashSeedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 6))
	for range *runnerCrashRounds {
		rounds = append(rounds, round{random: true})
	}
	if *runnerCrashRounds > 0 {
		t.Logf("random kill points from -runner.crash-seed=%d", seed)
	}
	kills := 0
	reached := map[string]int{}
	for i, r := range rounds {
		t.Run(fmt.Sprintf("round %d", i+1), func(t *testing.T) {
			sb := runnerSandbox(t, runnerCrashSeed)
			c := runnerChild(t, bin, dir, sb)
			for n := 0; ; n++ {
				var p string
				switch {
				case !r.random && n < len(r.points):
					p = r.points[n]
				case r.random && n < 40:
					p = runnerRandomPoint(rng)
				}
				if p == "" {
					break
				}
				if c.run(p) {
					kills++
					reached[strings.SplitN(p, ":", 2)[0]]++
					continue
				}
				t.Logf("%s: not reached, the run completed", p)
				if r.random {
					break
				}
			}
			if c.run("") {
				t.Fatal("killed without a crash point")
			}
			if got := runnerTargetState(t, sb); !cmp.Equal(want, got) {
				t.Errorf("OSCaR after the crashes differs from a clean run's (-clean +crashed):\n%s", cmp.Diff(want, got))
			}
			if d := sb.Oscar.Counters().Duplicates.Load(); d != 0 {
				t.Errorf("OSCaR counted %d duplicate referrals", d)
			}
			// Recovered means quiet: one more run writes nothing.
			runnerResetCounters(sb)
			if c.run("") {
				t.Fatal("killed without a crash point")
			}
			if w := sb.Oscar.Counters().TotalWrites(); w != 0 {
				t.Errorf("a run after recovery wrote %d times", w)
			}
		})
	}
	t.Logf("%d kills: %v", kills, reached)
	if kills < 20 {
		t.Errorf("only %d of the crash points were reached, want at least 20", kills)
	}
	for _, p := range []string{engine.CrashMidPage, engine.CrashAfterWrite, engine.CrashBeforeCommit, engine.CrashAfterCommit} {
		if reached[p] == 0 {
			t.Errorf("no kill at %s", p)
		}
	}
}

// runnerRandomPoint draws a kill point for the long variant.
func runnerRandomPoint(rng *rand.Rand) string {
	kinds := []struct {
		name string
		max  int
	}{{engine.CrashMidPage, 120}, {engine.CrashAfterWrite, 8}, {engine.CrashBeforeCommit, 12}, {engine.CrashAfterCommit, 12}}
	k := kinds[rng.IntN(len(kinds))]
	return fmt.Sprintf("%s:%d", k.name, 1+rng.IntN(k.max))
}

// runnerTargetState is fake OSCaR's referrals and clients without what a
// re-run may legitimately change: server ids, ULIDs, slugs and times.
// The fake's AutoAccept accepts queued referrals at the next GET clients,
// so one is made first: how many listings a run made must not show.
func runnerTargetState(tb testing.TB, sb *sandbox.Sandbox) map[string][]map[string]any {
	tb.Helper()
	runnerListOSCaRClients(tb, sb)
	var clients []map[string]any
	for _, c := range sb.Oscar.Clients() {
		m := map[string]any{}
		for k, v := range c {
			switch k {
			case "global_id", "slug", "created_at", "updated_at", "synced_date", "services":
				continue
			}
			m[k] = v
		}
		clients = append(clients, m)
	}
	sort.SliceStable(clients, func(i, j int) bool {
		return fmt.Sprint(clients[i]["external_id"], clients[i]["given_name"], clients[i]["family_name"]) <
			fmt.Sprint(clients[j]["external_id"], clients[j]["given_name"], clients[j]["family_name"])
	})
	return map[string][]map[string]any{"referrals": runnerTarget(sb), "clients": clients}
}

// crashChild runs `engine sync` as a child process against the sandbox,
// with CASESYNC_CRASH_AT set when a crash point is given.
type crashChild struct {
	t        *testing.T
	bin      string
	dir      string
	state    string
	sb       *sandbox.Sandbox
	pipeline string
	secrets  []string // the sandbox's secrets the deployment reads
	extra    string   // further lines of the secrets file (a DSN)
	args     []string // further engine sync flags
	timeout  time.Duration
	// failedRecords: an exit 1 for failed records (lookup misses), not
	// for a failed run, is a completed run.
	failedRecords bool
}

// runnerChild is the child of the Cambodia referral pipeline's crash test.
func runnerChild(t *testing.T, bin, dir string, sb *sandbox.Sandbox) *crashChild {
	return &crashChild{t: t, bin: bin, dir: dir, state: filepath.Join(t.TempDir(), "state.db"), sb: sb,
		pipeline: runnerPipeline, secrets: []string{"PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD"},
		args:    []string{"--no-chain", "--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]},
		timeout: 60 * time.Second}
}

// run runs one sync with CASESYNC_CRASH_AT=point ("" for none) and reports
// whether the process was killed by SIGKILL. Any other failure fails the
// test.
func (c *crashChild) run(point string) bool {
	t := c.t
	t.Helper()
	secrets := filepath.Join(filepath.Dir(c.state), "secrets.env")
	var b strings.Builder
	for _, n := range c.secrets {
		v, _ := c.sb.Secret(n)
		fmt.Fprintf(&b, "%s=%s\n", n, v)
	}
	b.WriteString(c.extra)
	if err := os.WriteFile(secrets, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// Each process logs in afresh, and Primero throttles logins per user
	// per minute: move the fake's clock on to the next minute.
	c.sb.Primero.Advance(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	args := append([]string{"sync", c.pipeline, "--log-level", "error", "--specs", c.dir, "--state", c.state, "--secrets-file", secrets}, c.args...)
	cmd := exec.CommandContext(ctx, c.bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CASESYNC_") {
			env = append(env, kv)
		}
	}
	if point != "" {
		env = append(env, engine.CrashEnv+"="+point)
	}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	completed := err == nil || (c.failedRecords && errors.As(err, &ee) && ee.ExitCode() == 1 && !strings.Contains(out.String(), "run failed"))
	if !completed {
		t.Fatalf("engine sync (crash at %q): %v\n%s", point, err, out.String())
	}
	if point != "" {
		t.Logf("%s not reached:\n%s", point, out.String())
	}
	return false
}

// runnerBuildEngine builds cmd/engine into a temporary folder.
func runnerBuildEngine(tb testing.TB) string {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(tb.TempDir(), "engine")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/engine")
	cmd.Dir = testenv.RepoRoot(tb)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/engine: %v\n%s", err, out)
	}
	return bin
}

// runnerListOSCaRClients signs in to fake OSCaR and lists its clients, as
// an integration would.
func runnerListOSCaRClients(tb testing.TB, sb *sandbox.Sandbox) {
	tb.Helper()
	email, _ := sb.Secret("OSCAR_EMAIL")
	pass, _ := sb.Secret("OSCAR_PASSWORD")
	body, _ := json.Marshal(map[string]string{"email": email, "password": pass})
	resp, err := http.Post(sb.URLs["oscar"]+"/api/v1/admin_auth/sign_in", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("OSCaR sign-in: status %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", sb.URLs["oscar"]+"/api/v1/organizations/clients", nil)
	for _, h := range []string{"access-token", "client", "uid"} {
		req.Header.Set(h, resp.Header.Get(h))
	}
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	got.Body.Close()
	if got.StatusCode != http.StatusOK {
		tb.Fatalf("OSCaR GET clients: status %d", got.StatusCode)
	}
}
