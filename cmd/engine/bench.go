package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/fakes/faults"
	"casesync/internal/sandbox"
	"casesync/internal/wire"
)

const benchLong = `Bench measures casesync against the in-process fakes and prints a table plus
one summary line per scenario, with the machine and the exact command. Every
request and write count comes from the fakes' own counters (ground truth),
never from the engine.

Scenarios:
  mapping      the runner's select stage (filters, fan-out) and map stage on
               N synthetic cases,
               no HTTP in the timed part: records/s on one core, allocations
               per record (records are enriched over HTTP first, untimed)
  e2e          N cases through fake source → engine (a child process running
               engine sync) → fake target with a fixed per-request latency on
               every fake: wall time, records/s, and the ratio to the lower
               bound (requests on the busiest connector × latency ÷ that
               connector's concurrency), and the engine process's CPU time
               (user + system) per write the fakes counted
  memory       peak RSS and peak Go heap of the engine process at each N
               (latency 0)
  incremental  a rerun with nothing changed: listing requests and writes
               counted at the fakes, and its wall time
  sql          specs/cambodia-ona from N fake Primero cases into a database
               (--postgres DSN, default $CASESYNC_TEST_POSTGRES_DSN, else
               SQLite): rows written (counted by the database) per second of
               the engine process's wall time, and its peak memory
  inbox        durable webhook acceptance (see BenchmarkInbox in internal/daemon)

The engine runs as a child process (this same binary) so its memory is not
mixed with the fakes'.

--cases-from FILE measures your own cases instead of synthetic ones: a JSON
array of Primero case records (each may carry its "referrals"). The fake
OSCaR is given every organisation (agency-<org> of an OSCaR service) and
every client (oscar_number) the cases refer to, so the run measures writes,
not OSCaR refusing unknown tenants. records/s is per record the source
listing actually sent, counted by the fake; the e2e line also gives the
records engine sync reported failed.

Exit codes: 0 measured; 1 a deployment has spec problems or a scenario
failed; 2 usage or I/O error.`

type benchFlags struct {
	scenario    string
	cases       string
	latency     time.Duration
	concurrency int
	specs       string
	pipeline    string
	casesFrom   string
	cpuProfile  string
	memProfile  string
	postgres    string
	clients     int
}

func (a *app) benchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure mapping speed, end-to-end time, memory and incremental runs against the fakes",
		Long:  benchLong,
		Example: `  engine bench --scenario mapping --cases 2000
  engine bench --scenario e2e --cases 300 --latency 5ms
  engine bench --scenario incremental --cases 300

  # The ONA dashboard deployment into a database: PostgreSQL from --postgres
  # or $CASESYNC_TEST_POSTGRES_DSN (.ci/postgres.sh starts one), else SQLite
  engine bench --scenario sql --cases 2000

  # Your own (invented or exported) cases instead of synthetic ones
  engine bench --cases-from docs/examples/primero-cases.json --scenario mapping`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.bench(cmd.Context(), f, cmd)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.scenario, "scenario", "all", "mapping, e2e, memory, incremental, sql or all")
	fl.StringVar(&f.postgres, "postgres", os.Getenv("CASESYNC_TEST_POSTGRES_DSN"), "sql scenario: PostgreSQL DSN to write into (a schema of its own, dropped after); empty measures SQLite")
	fl.StringVar(&f.cases, "cases", "1000,10000", "comma-separated case counts")
	fl.DurationVar(&f.latency, "latency", 20*time.Millisecond, "per-request latency of every fake in e2e")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the engine process (the child running engine sync) to this file; read it with go tool pprof")
	fl.StringVar(&f.memProfile, "memprofile", "", "write the engine process's allocation profile to this file at its exit; read it with go tool pprof -sample_index alloc_space")
	fl.IntVar(&f.clients, "clients", 10, "synthetic clients the fake OSCaR holds in every tenant's listing (a production OSCaR lists thousands, and a Cambodia run reads them all once)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "override the connectors' declared concurrency (0 = as declared)")
	fl.StringVar(&f.specs, "specs", "", "deployment folder (default specs/cambodia, else specs/example)")
	fl.StringVar(&f.pipeline, "pipeline", "", "pipeline to measure (default: the first whose source is primero)")
	fl.StringVar(&f.casesFrom, "cases-from", "", "seed fake Primero from a JSON array of Primero case records (each may carry referrals), and fake OSCaR with every organisation and client they refer to; replaces --cases")
	return cmd
}

type benchEnv struct {
	a        *app
	f        benchFlags
	dir      string
	pipeline string
	ns       []int
	seed     []map[string]any
	exe      string
	w        io.Writer
	lines    []string
}

func (a *app) bench(ctx context.Context, f benchFlags, cmd *cobra.Command) error {
	e := &benchEnv{a: a, f: f, w: a.stdout}
	for _, s := range strings.Split(f.cases, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return usageError("--cases wants positive numbers separated by commas, not %q", f.cases)
		}
		e.ns = append(e.ns, n)
	}
	e.dir = f.specs
	if e.dir == "" {
		e.dir = "specs/cambodia"
		if _, err := os.Stat(e.dir); err != nil {
			e.dir = "specs/example"
		}
	}
	plan, err := spec.Load(e.dir, spec.Options{})
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("load %s: %w", e.dir, err)}
	}
	e.pipeline = f.pipeline
	if e.pipeline == "" {
		// The referral flow from Primero: the first pipeline reading
		// Primero whose name speaks of referrals, else the first reading it.
		for _, name := range plan.Order {
			if plan.Pipelines[name].Source.Connector == "primero" && strings.Contains(name, "referral") && e.pipeline == "" {
				e.pipeline = name
			}
		}
		for _, name := range plan.Order {
			if plan.Pipelines[name].Source.Connector == "primero" && e.pipeline == "" {
				e.pipeline = name
			}
		}
	}
	if _, ok := plan.Pipelines[e.pipeline]; !ok {
		return usageError("no pipeline %q in %s (have: %s)", e.pipeline, e.dir, strings.Join(plan.Order, ", "))
	}
	if f.casesFrom != "" {
		b, err := os.ReadFile(f.casesFrom)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if err := json.Unmarshal(b, &e.seed); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("%s: want a JSON array of case records: %w", f.casesFrom, err)}
		}
		if len(e.seed) == 0 {
			return usageError("%s holds no case records", f.casesFrom)
		}
		if cmd.Flags().Changed("cases") {
			return usageError("--cases and --cases-from exclude each other: the file's %d cases are the size", len(e.seed))
		}
		e.ns = []int{len(e.seed)}
	}
	if e.exe, err = os.Executable(); err != nil {
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintf(e.w, "casesync bench — %s, %d cores, %s/%s; deployment %s, pipeline %s\n", runtime.Version(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, e.dir, e.pipeline)
	fmt.Fprintf(e.w, "command: engine %s\n", strings.Join(os.Args[1:], " "))
	if e.seed != nil {
		refs := sandbox.ReferencesOf(e.seed)
		fmt.Fprintf(e.w, "cases from %s: %d cases; fake OSCaR holds the %d organisations and %d clients they refer to\n",
			f.casesFrom, len(e.seed), len(refs.Orgs), len(refs.Clients))
	}
	fmt.Fprintln(e.w)
	run := func(name string, fn func(context.Context, *engine.Plan) error) error {
		if f.scenario != "all" && f.scenario != name {
			return nil
		}
		if err := fn(ctx, plan); err != nil {
			return &exitError{code: 1, err: fmt.Errorf("%s: %w", name, err)}
		}
		return nil
	}
	switch f.scenario {
	case "all", "mapping", "e2e", "memory", "incremental", "sql":
	case "inbox":
		fmt.Fprintln(e.w, "inbox: run  go test -run '^$' -bench Inbox ./internal/daemon  (durable acceptance is measured there)")
		return nil
	default:
		return usageError("unknown --scenario %q", f.scenario)
	}
	for _, s := range []struct {
		name string
		fn   func(context.Context, *engine.Plan) error
	}{{"mapping", e.mapping}, {"e2e", e.e2e}, {"memory", e.memory}, {"incremental", e.incremental}, {"sql", e.sqlTarget}} {
		if err := run(s.name, s.fn); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.w, "\nsummary:")
	for _, l := range e.lines {
		fmt.Fprintln(e.w, "  "+l)
	}
	return nil
}

func (e *benchEnv) start(n int, latency time.Duration) (*sandbox.Sandbox, error) {
	return e.startWith(n, latency, false)
}

// startWith: mosvy seeds the Primero of Cambodia's MoSVY (Cambodian cases
// only), the instance the sql scenario's deployment reads.
func (e *benchEnv) startWith(n int, latency time.Duration, mosvy bool) (*sandbox.Sandbox, error) {
	opts := sandbox.Options{Cases: n, Clients: e.f.clients, Seed: 11, OSCaRAutoAccept: true, Faults: faults.Config{Latency: latency}, MoSVY: mosvy}
	if e.seed != nil {
		opts.CasesFrom = e.seed
		opts.Cases = 0
		opts.OSCaRFromCases = true
	}
	return sandbox.Start(opts)
}

// mapping times the runner's select stage (filters, fan-out) and map
// stage on one goroutine.
func (e *benchEnv) mapping(ctx context.Context, plan *engine.Plan) error {
	n := e.ns[len(e.ns)-1]
	sb, err := e.start(n, 0)
	if err != nil {
		return err
	}
	defer sb.Close()
	// The sandbox runs every fake; point only the deployment's own
	// connectors at them (Adjust refuses a name the plan lacks).
	urls := map[string]string{}
	for name := range plan.Connectors {
		if u, ok := sb.URLs[name]; ok {
			urls[name] = u
		}
	}
	p, err := wire.Adjust(plan, wire.LoadOptions{BaseURLs: urls})
	if err != nil {
		return err
	}
	statePath := filepath.Join(os.TempDir(), fmt.Sprintf("casesync-bench-%d.db", os.Getpid()))
	dep, err := wire.Open(p, wire.Options{StatePath: statePath, Secrets: sb})
	if err != nil {
		return err
	}
	defer func() {
		dep.Close()
		os.Remove(statePath)
		os.Remove(statePath + ".lock")
		os.Remove(statePath + "-intents")
	}()
	r := dep.Runner
	var recs []any
	for _, c := range sb.Primero.Cases() {
		recs = append(recs, any(c))
	}
	// The runner's own select and map stages, with the enrich stage run
	// first (over HTTP, untimed).
	m, err := r.Preparer(ctx, e.pipeline)
	if err != nil {
		return err
	}
	recs, err = m.Enrich(ctx, recs)
	if err != nil {
		return err
	}
	// Warm up, then time several passes on one goroutine.
	for _, rec := range recs[:min(len(recs), 100)] {
		m.Map(ctx, rec)
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	// The mapping runs on one goroutine locked to its thread, so the
	// thread's CPU time is the mapping's (the collector's background
	// workers run on other threads, as they do beside a sync).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	cpu0 := threadCPU()
	done, payloads, failed := 0, 0, 0
	for time.Since(start) < 3*time.Second || done < len(recs) {
		for _, rec := range recs {
			k, err := m.Map(ctx, rec)
			if err != nil {
				failed++
			}
			payloads += k
			done++
		}
	}
	el := time.Since(start)
	cpu := threadCPU() - cpu0
	runtime.ReadMemStats(&ms1)
	rate := float64(done) / el.Seconds()
	// Per core: records per second of the mapping thread's CPU time,
	// which a busy machine does not distort the way it does the wall
	// clock.
	perCore := rate // where the thread's CPU time is unknown (not Linux)
	if cpu > 0 {
		perCore = float64(done) / cpu.Seconds()
	}
	allocs := float64(ms1.Mallocs-ms0.Mallocs) / float64(done)
	bytes := float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(done)
	fmt.Fprintf(e.w, "mapping (%d synthetic cases, %d mapped passes, one goroutine)\n", len(recs), done/len(recs))
	fmt.Fprintf(e.w, "  %-12s %-14s %-14s %-16s %-14s %s\n", "records", "records/s/core", "records/s wall", "allocs/record", "bytes/record", "payloads (failed)")
	fmt.Fprintf(e.w, "  %-12d %-14.0f %-14.0f %-16.1f %-14.0f %d (%d)\n\n", done, perCore, rate, allocs, bytes, payloads, failed)
	e.lines = append(e.lines, fmt.Sprintf("mapping: %.0f records/s per core (the mapping thread's CPU time; %.0f by the wall clock), %.1f allocs/record (target ≥ 30000 records/s: %s)", perCore, rate, allocs, verdict(perCore >= 30000)))
	return nil
}

type childResult struct {
	wall      time.Duration
	mem       memReport
	requests  map[string]int64 // "primero GET /api/v2/cases" → n
	served    map[string]int64 // "primero GET /api/v2/cases" → records listed
	writes    map[string]int64 // fake → writes
	stdout    string
	statePath string
	// cpu is the engine process's user + system time.
	cpu time.Duration
}

// child runs `engine sync` of the benched pipeline in a child process
// against sb.
func (e *benchEnv) child(ctx context.Context, sb *sandbox.Sandbox, plan *engine.Plan, statePath string) (*childResult, error) {
	return e.childWith(ctx, sb, plan, statePath, childOpts{dir: e.dir, pipeline: e.pipeline})
}

// childOpts say which deployment and pipeline a child runs: chain also
// runs the pipelines chained after it; env adds variables (a secret the
// sandbox does not have).
type childOpts struct {
	dir, pipeline string
	chain         bool
	env           []string
}

func (e *benchEnv) childWith(ctx context.Context, sb *sandbox.Sandbox, plan *engine.Plan, statePath string, o childOpts) (*childResult, error) {
	memPath := statePath + ".mem.json"
	args := []string{"sync", o.pipeline, "--specs", o.dir, "--state", statePath, "--log-level", "error"}
	if !o.chain {
		args = append(args, "--no-chain")
	}
	for name := range plan.Connectors {
		if u, ok := sb.URLs[name]; ok {
			args = append(args, "--base-url", name+"="+u)
		}
	}
	cmd := exec.CommandContext(ctx, e.exe, args...)
	env := append(os.Environ(), "CASESYNC_MEMSTATS="+memPath)
	if e.f.concurrency > 0 {
		env = append(env, "CASESYNC_CONCURRENCY="+strconv.Itoa(e.f.concurrency))
	}
	if e.f.cpuProfile != "" {
		env = append(env, "CASESYNC_CPUPROFILE="+e.f.cpuProfile)
	}
	if e.f.memProfile != "" {
		env = append(env, "CASESYNC_MEMPROFILE="+e.f.memProfile)
	}
	for _, n := range plan.Secrets {
		if v, ok := sb.Secret(n); ok {
			env = append(env, n+"="+v)
		}
	}
	cmd.Env = append(env, o.env...)
	before := fakeRequests(sb)
	servedBefore := fakeServed(sb)
	wb := fakeWrites(sb)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	res := &childResult{wall: time.Since(start), stdout: string(out), statePath: statePath}
	if ps := cmd.ProcessState; ps != nil {
		res.cpu = ps.UserTime() + ps.SystemTime()
	}
	// Exit 1 with failed records is a run that went through: the bench
	// reports the failed count beside its timings.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1 && strings.Contains(string(out), failedRecordsMsg)) {
		return res, fmt.Errorf("engine sync: %v\n%s", err, out)
	}
	after := fakeRequests(sb)
	res.requests = map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			res.requests[k] = d
		}
	}
	res.served = map[string]int64{}
	for k, v := range fakeServed(sb) {
		if d := v - servedBefore[k]; d > 0 {
			res.served[k] = d
		}
	}
	wa := fakeWrites(sb)
	res.writes = map[string]int64{}
	for k := range wa {
		res.writes[k] = int64(wa[k] - wb[k])
	}
	if b, err := os.ReadFile(memPath); err == nil {
		_ = json.Unmarshal(b, &res.mem)
	}
	return res, nil
}

func fakeRequests(sb *sandbox.Sandbox) map[string]int64 {
	return perFake(sb, (*faults.Counters).Requests)
}

// fakeServed counts the records each fake's listings sent.
func fakeServed(sb *sandbox.Sandbox) map[string]int64 {
	return perFake(sb, (*faults.Counters).ServedRecords)
}

func perFake(sb *sandbox.Sandbox, count func(*faults.Counters) map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for name, c := range map[string]*faults.Counters{"primero": sb.Primero.Counters(), "oscar": sb.Oscar.Counters(), "ping": sb.Ping.Counters()} {
		for k, v := range count(c) {
			out[name+" "+k] = v
		}
	}
	return out
}

// sourceRead is how many records the pipeline's source listing sent (the
// fake's count, so records/s is per record read, whatever --cases said).
func (e *benchEnv) sourceRead(plan *engine.Plan, res *childResult) int64 {
	sys := plan.Pipelines[e.pipeline].Source.Connector
	if sys == "progres" {
		sys = "ping" // the sandbox serves both names from the fake PING
	}
	return perSystem(res.served)[sys]
}

func perSystem(reqs map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range reqs {
		sys, _, _ := strings.Cut(k, " ")
		out[sys] += v
	}
	return out
}

func (e *benchEnv) concurrencyOf(plan *engine.Plan, system string) int {
	if e.f.concurrency > 0 {
		return e.f.concurrency
	}
	if c, ok := plan.Connectors[system]; ok && c.Spec.Concurrency > 0 {
		return c.Spec.Concurrency
	}
	return 1
}

func (e *benchEnv) e2e(ctx context.Context, plan *engine.Plan) error {
	fmt.Fprintf(e.w, "e2e (latency %s on every request of every fake; engine in a child process)\n", e.f.latency)
	fmt.Fprintf(e.w, "  %-8s %-8s %-9s %-8s %-10s %-10s %-12s %-8s %-10s %s\n", "cases", "read", "requests", "writes", "wall", "records/s", "lower bound", "ratio", "CPU/write", "busiest")
	for _, n := range e.ns {
		sb, err := e.start(n, e.f.latency)
		if err != nil {
			return err
		}
		tmp, _ := os.MkdirTemp("", "casesync-bench-")
		res, err := e.child(ctx, sb, plan, filepath.Join(tmp, "state.db"))
		sb.Close()
		os.RemoveAll(tmp)
		if err != nil {
			return err
		}
		per := perSystem(res.requests)
		var total, writes int64
		busiest, bound := "", time.Duration(0)
		for sys, k := range per {
			total += k
			lb := time.Duration(k) * e.f.latency / time.Duration(e.concurrencyOf(plan, sys))
			if c, ok := plan.Connectors[sys]; ok && c.Spec.RateLimit != nil && c.Spec.RateLimit.PerSecond > 0 {
				// A declared rate limit is part of the bound too.
				if rl := time.Duration(float64(k) / c.Spec.RateLimit.PerSecond * float64(time.Second)); rl > lb {
					lb = rl
				}
			}
			if lb > bound {
				busiest, bound = sys, lb
			}
		}
		for _, w := range res.writes {
			writes += w
		}
		ratio := res.wall.Seconds() / bound.Seconds()
		read := e.sourceRead(plan, res)
		rate := float64(read) / res.wall.Seconds()
		// The engine's own cost: its process's CPU time (user + system)
		// per write the fakes counted, whatever the latency.
		var perWrite time.Duration
		if writes > 0 {
			perWrite = res.cpu / time.Duration(writes)
		}
		fmt.Fprintf(e.w, "  %-8d %-8d %-9d %-8d %-10s %-10.0f %-12s %-8.2f %-10s %s ×%d\n", n, read, total, writes, res.wall.Round(time.Millisecond),
			rate, bound.Round(time.Millisecond), ratio, perWrite.Round(time.Microsecond), busiest, e.concurrencyOf(plan, busiest))
		e.lines = append(e.lines, fmt.Sprintf("e2e %d cases: %d read, %d writes (%d records failed, the engine's count), %s wall, %.0f records/s, ratio %.2f to the lower bound (target ≤ 1.15: %s)", n, read, writes, engineFailed(res.stdout), res.wall.Round(time.Millisecond), rate, ratio, verdict(ratio <= 1.15)))
		e.lines = append(e.lines, fmt.Sprintf("e2e %d cases: engine CPU %s (user + system) = %s per written record (target ≤ 200µs: %s)", n, res.cpu.Round(time.Millisecond), perWrite.Round(time.Microsecond), verdict(perWrite <= 200*time.Microsecond)))
		if m := res.mem; m.GCCycles > 0 && writes > 0 {
			e.lines = append(e.lines, fmt.Sprintf("e2e %d cases: of it the garbage collector ~%.2fs (runtime estimate) in %d cycles; %.1f MB allocated = %.0f kB per written record",
				n, m.GCCPUSeconds, m.GCCycles, float64(m.AllocatedBytes)/1e6, float64(m.AllocatedBytes)/1e3/float64(writes)))
		}
	}
	fmt.Fprintln(e.w)
	return nil
}

func (e *benchEnv) memory(ctx context.Context, plan *engine.Plan) error {
	fmt.Fprintln(e.w, "memory (latency 0; engine process only)")
	fmt.Fprintf(e.w, "  %-8s %-14s %-14s %-14s %s\n", "cases", "peak RSS", "peak heap", "Go runtime", "wall")
	var first float64
	for i, n := range e.ns {
		sb, err := e.start(n, 0)
		if err != nil {
			return err
		}
		tmp, _ := os.MkdirTemp("", "casesync-bench-")
		res, err := e.child(ctx, sb, plan, filepath.Join(tmp, "state.db"))
		sb.Close()
		os.RemoveAll(tmp)
		if err != nil {
			return err
		}
		rss := float64(res.mem.PeakRSSBytes) / (1 << 20)
		heap := float64(res.mem.PeakHeapBytes) / (1 << 20)
		if i == 0 {
			first = rss
		}
		gosys := float64(res.mem.GoSysBytes) / (1 << 20)
		fmt.Fprintf(e.w, "  %-8d %-14s %-14s %-14s %s\n", n, fmt.Sprintf("%.1f MB", rss), fmt.Sprintf("%.1f MB", heap), fmt.Sprintf("%.1f MB", gosys), res.wall.Round(time.Millisecond))
		e.lines = append(e.lines, fmt.Sprintf("memory %d cases: peak RSS %.1f MB (%.2f× the first), peak heap %.1f MB (target < 60 MB, ≤ 1.25×: %s)", n, rss, rss/first, heap, verdict(rss < 60 && rss/first <= 1.25)))
	}
	fmt.Fprintln(e.w)
	return nil
}

func (e *benchEnv) incremental(ctx context.Context, plan *engine.Plan) error {
	n := e.ns[0]
	sb, err := e.start(n, 0)
	if err != nil {
		return err
	}
	defer sb.Close()
	tmp, _ := os.MkdirTemp("", "casesync-bench-")
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "state.db")
	if _, err := e.child(ctx, sb, plan, path); err != nil {
		return err
	}
	res, err := e.child(ctx, sb, plan, path)
	if err != nil {
		return err
	}
	var writes int64
	for _, w := range res.writes {
		writes += w
	}
	keys := make([]string, 0, len(res.requests))
	for k := range res.requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(e.w, "incremental (%d cases; second run with nothing changed)\n", n)
	for _, k := range keys {
		fmt.Fprintf(e.w, "  %-60s %d\n", k, res.requests[k])
	}
	fmt.Fprintf(e.w, "  writes at the fakes: %d; wall %s\n\n", writes, res.wall.Round(time.Millisecond))
	var reqs, listings int64
	src := plan.Pipelines[e.pipeline].Source.Connector + " GET "
	for k, v := range res.requests {
		reqs += v
		if strings.HasPrefix(k, src) {
			listings += v
		}
	}
	e.lines = append(e.lines, fmt.Sprintf("incremental: %d requests, %d writes, %s (target: one listing per source, zero writes: %s)", reqs, writes, res.wall.Round(time.Millisecond), verdict(listings == 1 && writes == 0)))
	return nil
}

// syncFailed finds the failed count in engine sync's summary line.
var syncFailed = regexp.MustCompile(`: read \d+, .*failed (\d+) \(`)

// engineFailed is the records engine sync reported failed: a run that
// mostly measures error handling shows here, where no fake can see it.
func engineFailed(stdout string) int {
	n := 0
	for _, m := range syncFailed.FindAllStringSubmatch(stdout, -1) {
		k, _ := strconv.Atoi(m[1])
		n += k
	}
	return n
}

// verdict words a target's outcome for the summary lines.
func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}
