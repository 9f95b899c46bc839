// Package specs_test runs the shipped deployments (specs/*) with the real
// engine against the sandbox fakes: spec.Load → WithBaseURLs → rest.NewPool
// → state.Open → engine.NewRunner → Sync, and checks what the fakes saw.
package specs_test

import (
	"casesync/internal/testenv"
	"casesync/internal/wire"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/sandbox"
	"casesync/internal/state"
)

// deployment is one loaded deployment wired to a running sandbox.
type deployment struct {
	t      *testing.T
	sb     *sandbox.Sandbox
	plan   *engine.Plan
	runner *engine.Runner
	store  *state.Store
	clock  *offsetClock
}

// offsetClock is the wall clock moved on by Advance, so a test can make a
// retry due without waiting for its backoff.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// load loads the deployment in dir (relative to the repository root).
func load(t testing.TB, dir string) *engine.Plan {
	t.Helper()
	plan, err := spec.Load(filepath.Join(testenv.RepoRoot(t), dir), spec.Options{Cwd: testenv.RepoRoot(t)})
	if err != nil {
		var ps spec.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				t.Error(p.String())
			}
		}
		t.Fatalf("load %s: %v", dir, err)
	}
	return plan
}

// start runs a sandbox with opts and points the deployment in dir at it,
// with its state in a temporary folder.
func start(t *testing.T, dir string, opts sandbox.Options) *deployment {
	t.Helper()
	sb, err := sandbox.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	plan := load(t, dir)
	urls := map[string]string{}
	for name := range plan.Connectors {
		urls[name] = sb.URLs[name]
	}
	plan = plan.WithBaseURLs(urls)
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &offsetClock{}
	// Retries do not wait: a test with failing fakes stays fast.
	noSleep := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	dep, err := wire.Open(plan, wire.Options{State: st, Secrets: sb, Clock: clock, REST: rest.Options{Clock: clock, Sleep: noSleep}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dep.Close() })
	return &deployment{t: t, sb: sb, plan: plan, store: st, clock: clock, runner: dep.Runner}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// sync runs one pipeline; a failed run (not a failed record) fails the test.
func (d *deployment) sync(name string) *engine.RunResult {
	d.t.Helper()
	res, err := d.runner.Sync(ctx(d.t), name, engine.SyncOptions{Trigger: "test"})
	if err != nil {
		d.t.Fatalf("sync %s: %v", name, err)
	}
	return res
}

// sync2 runs one pipeline with opts; a failed run fails the test.
func (d *deployment) sync2(name string, opts engine.SyncOptions) *engine.RunResult {
	d.t.Helper()
	if opts.Trigger == "" {
		opts.Trigger = "test"
	}
	res, err := d.runner.Sync(ctx(d.t), name, opts)
	if err != nil {
		d.t.Fatalf("sync %s: %v", name, err)
	}
	return res
}

// order is the demo's order: pipelines that start on their own, by name,
// each followed by the pipelines chained after it.
func (d *deployment) order() []string {
	var out []string
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
		for _, m := range d.plan.Order {
			for _, after := range d.plan.Pipelines[m].Spec.Trigger.After {
				if after == n {
					visit(m)
				}
			}
		}
	}
	for _, n := range d.plan.Order {
		if len(d.plan.Pipelines[n].Spec.Trigger.After) == 0 {
			visit(n)
		}
	}
	return out
}

// pass runs every pipeline once in order and returns the results by name
// and the engine's writes (created + updated) by target connector.
func (d *deployment) pass() (map[string]*engine.RunResult, map[string]int) {
	d.t.Helper()
	results := map[string]*engine.RunResult{}
	writes := map[string]int{}
	for _, name := range d.order() {
		res := d.sync(name)
		results[name] = res
		writes[d.plan.Pipelines[name].Upsert.Connector] += res.Counts.Created + res.Counts.Updated
	}
	return results, writes
}

// fakeWrites is what the fakes themselves counted, by connector name.
func (d *deployment) fakeWrites() map[string]int {
	return map[string]int{
		"primero": int(d.sb.Primero.Counters().TotalWrites()),
		"oscar":   int(d.sb.Oscar.Counters().TotalWrites()),
	}
}

// outcomes are the per-record outcomes of a run.
func (d *deployment) outcomes(res *engine.RunResult) []engine.Outcome {
	d.t.Helper()
	outs, err := d.store.Outcomes(ctx(d.t), res.RunID)
	if err != nil {
		d.t.Fatal(err)
	}
	return outs
}

// dryRun previews a pipeline: every decision, nothing written.
func (d *deployment) dryRun(name string, opts engine.SyncOptions) []engine.Decision {
	d.t.Helper()
	var out []engine.Decision
	var mu sync.Mutex // records of a page are handled concurrently
	opts.DryRun = func(dec engine.Decision) {
		mu.Lock()
		out = append(out, dec)
		mu.Unlock()
	}
	if _, err := d.runner.Sync(ctx(d.t), name, opts); err != nil {
		d.t.Fatalf("dry-run %s: %v", name, err)
	}
	return out
}

// readJSON reads a fixture under testdata/.
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// normal round-trips v through JSON so numbers and maps compare alike.
func normal(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
