package e2e

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/sandbox"
	"casesync/internal/state"
	"casesync/internal/testenv"
	"casesync/internal/wire"
)

// runnerPipeline is the example deployment's one pipeline.
const runnerPipeline = "cases_to_oscar"

// runnerSpecOptions vary the example deployment for a test.
type runnerSpecOptions struct {
	// Per, when set, replaces Primero's page size, so a small seed still
	// spans several pages.
	Per int
	// Extra files added to the example package (name → CUE text).
	Extra map[string]string
	// UpsertMode, when set, replaces the example's upsert mode.
	UpsertMode string
}

// runnerSpecs copies specs/cue.mod, specs/lib and specs/example into a
// temporary tree, applies opts, and returns the example's folder.
func runnerSpecs(tb testing.TB, opts runnerSpecOptions) string {
	tb.Helper()
	src := filepath.Join(testenv.RepoRoot(tb), "specs")
	dst := filepath.Join(tb.TempDir(), "specs")
	for _, sub := range []string{"cue.mod", "lib", "example"} {
		err := filepath.WalkDir(filepath.Join(src, sub), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, path)
			out := filepath.Join(dst, rel)
			if d.IsDir() {
				return os.MkdirAll(out, 0o755)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if opts.Per > 0 && rel == filepath.Join("lib", "primero", "primero.cue") {
				const was = "pagination: page: {per: 500,"
				if !strings.Contains(string(b), was) {
					tb.Fatalf("%s no longer says %q; update runnerSpecs", rel, was)
				}
				b = []byte(strings.Replace(string(b), was, "pagination: page: {per: "+strconv.Itoa(opts.Per)+",", 1))
			}
			if opts.UpsertMode != "" && rel == filepath.Join("example", "referrals.cue") {
				const was = `mode: "create_only"`
				if !strings.Contains(string(b), was) {
					tb.Fatalf("%s no longer says %q; update runnerSpecs", rel, was)
				}
				b = []byte(strings.Replace(string(b), was, `mode: "`+opts.UpsertMode+`"`, 1))
			}
			return os.WriteFile(out, b, 0o644)
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	dir := filepath.Join(dst, "example")
	for name, text := range opts.Extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// runnerEnv is one deployment wired to a sandbox: the real loader, the real
// REST pool, a real state file and the real runner.
type runnerEnv struct {
	sb        *sandbox.Sandbox
	plan      *engine.Plan
	statePath string
	store     *state.Store
	pool      *rest.Pool
	runner    *engine.Runner
}

// runnerSandbox starts the fakes and stops them when the test ends.
func runnerSandbox(tb testing.TB, opts sandbox.Options) *sandbox.Sandbox {
	tb.Helper()
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	sb, err := sandbox.Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sb.Close)
	return sb
}

// runnerSecrets lets a test replace one of the sandbox's secrets.
type runnerSecrets struct {
	sb       *sandbox.Sandbox
	override map[string]string
}

func (s runnerSecrets) Secret(name string) (string, bool) {
	if v, ok := s.override[name]; ok {
		return v, true
	}
	return s.sb.Secret(name)
}

// runnerLoadPlan loads a deployment and points its connectors at sb.
func runnerLoadPlan(tb testing.TB, sb *sandbox.Sandbox, dir string) *engine.Plan {
	tb.Helper()
	plan, err := spec.Load(dir, spec.Options{})
	if err != nil {
		tb.Fatalf("load %s: %v", dir, err)
	}
	urls := map[string]string{}
	for name := range plan.Connectors {
		urls[name] = sb.URLs[name]
	}
	return plan.WithBaseURLs(urls)
}

// runnerOpen wires a runner for the deployment in dir to sb, with a state
// file at statePath ("" for a new one in a temporary folder).
func runnerOpen(tb testing.TB, sb *sandbox.Sandbox, dir, statePath string, secrets engine.Secrets) *runnerEnv {
	tb.Helper()
	if statePath == "" {
		statePath = filepath.Join(tb.TempDir(), "state.db")
	}
	if secrets == nil {
		secrets = sb
	}
	env := &runnerEnv{sb: sb, plan: runnerLoadPlan(tb, sb, dir), statePath: statePath}
	var err error
	env.store, err = state.Open(statePath)
	if err != nil {
		tb.Fatal(err)
	}
	dep, err := wire.Open(env.plan, wire.Options{State: env.store, Secrets: secrets})
	if err != nil {
		env.store.Close()
		tb.Fatal(err)
	}
	env.pool, env.runner = dep.Conns, dep.Runner
	tb.Cleanup(env.close)
	return env
}

func (e *runnerEnv) close() {
	e.pool.Close()
	e.store.Close()
}

// sync runs the pipeline once and fails the test if the run fails.
func (e *runnerEnv) sync(tb testing.TB) *engine.RunResult {
	tb.Helper()
	res, err := e.runner.Sync(context.Background(), runnerPipeline, engine.SyncOptions{Trigger: "test"})
	if err != nil {
		tb.Fatalf("sync: %v", err)
	}
	return res
}

// resetCounters zeroes every fake's counters.
func runnerResetCounters(sb *sandbox.Sandbox) {
	sb.Primero.Counters().Reset()
	sb.Oscar.Counters().Reset()
	sb.Ping.Counters().Reset()
}

// runnerListings counts the source listing requests the fake served.
func runnerListings(sb *sandbox.Sandbox) int64 {
	return sb.Primero.Counters().Requests()["GET /api/v2/cases"]
}

// runnerTarget is fake OSCaR's referrals without the fields a re-run may
// legitimately change (server ids and times), keyed and sorted by
// external_id: the ground truth the crash test compares.
func runnerTarget(sb *sandbox.Sandbox) []map[string]any {
	var out []map[string]any
	for _, r := range sb.Oscar.Referrals() {
		m := map[string]any{}
		for k, v := range r {
			switch k {
			case "id", "created_at", "global_id":
				continue
			}
			m[k] = v
		}
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, _ := out[i]["external_id"].(string)
		b, _ := out[j]["external_id"].(string)
		return a < b
	})
	return out
}
