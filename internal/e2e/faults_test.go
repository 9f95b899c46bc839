package e2e

// The fault suite of issue 11: the shipped deployments run against fakes
// that fail 10% of requests with a 500, 5% with a 429 and Retry-After, and
// drop 1% of connections, all at once. Ground truth is what the fakes hold
// and count, never the engine's own counters. The engine's retry backoff
// between runs is minutes, so the suite requeues due records with
// state.RequeueNow instead of waiting; it never sleeps.
//
// go test ./internal/e2e -run Fault                 the CI-sized suite
// go test ./internal/e2e -run Fault -fault.long     more cases, real 1 s Retry-After and backoff
//
// OSCaR accepts every referral as it is next listed (AutoAccept), as NGO
// users would, so the Cambodia flows meet accepted clients between rounds.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/fakes/faults"
	"casesync/internal/fakes/oscar"
	"casesync/internal/redact"
	"casesync/internal/sandbox"
	"casesync/internal/state"
	"casesync/internal/testenv"
	"casesync/internal/wire"
)

var faultLong = flag.Bool("fault.long", false, "run the fault suite's long variants: more cases, a real one-second Retry-After and the connectors' own backoff")

// faultCanary is planted as a connector secret: it must never be printed.
const faultCanary = "canary-7f3c9e1a2b4d6f80-do-not-print"

// faultSwitches are the fault rates. Retry-After "0" keeps the
// default run fast while the client still honours the header; the long
// run sends the real one second.
func faultSwitches(seed uint64) faults.Config {
	cfg := faults.Config{Rate500: 0.10, Rate429: 0.05, RateDrop: 0.01, RetryAfterHeader: "0", Seed: seed}
	if *faultLong {
		cfg.RetryAfterHeader, cfg.RetryAfter = "", 1
	}
	return cfg
}

// faultCases sizes the seed: modest by default so the file stays within
// CI's budget on two shared cores.
func faultCases() int {
	if *faultLong {
		return 5000
	}
	return 600
}

// faultDeployment is one shipped deployment copied into a temporary tree.
type faultDeployment struct {
	name string // folder under specs/
	dir  string
}

// faultSpecs copies specs/cue.mod, specs/lib and the deployments the
// suite runs (example always; cambodia when it exists and loads) into a
// temporary tree, with Primero's page size set to per when it is not 0,
// adding extra files (name → CUE text, with "{pkg}"
// replaced by the deployment's package name) to each deployment.
func faultSpecs(tb testing.TB, extra map[string]string, per int) []faultDeployment {
	tb.Helper()
	root := filepath.Join(testenv.RepoRoot(tb), "specs")
	names := []string{"example"}
	if _, err := os.Stat(filepath.Join(root, "cambodia")); err == nil {
		if _, err := spec.Load(filepath.Join(root, "cambodia"), spec.Options{}); err == nil {
			names = append(names, "cambodia")
		} else {
			tb.Logf("specs/cambodia does not load, so the fault suite leaves it out: %v", err)
		}
	}
	dst := filepath.Join(tb.TempDir(), "specs")
	faultCopy(tb, filepath.Join(root, "cue.mod"), filepath.Join(dst, "cue.mod"))
	faultCopy(tb, filepath.Join(root, "lib"), filepath.Join(dst, "lib"))
	if per > 0 {
		lib := filepath.Join(dst, "lib", "primero", "primero.cue")
		b, err := os.ReadFile(lib)
		if err != nil {
			tb.Fatal(err)
		}
		const was = "pagination: page: {per: 500,"
		if !bytes.Contains(b, []byte(was)) {
			tb.Fatalf("lib/primero no longer says %q; update faultSpecs", was)
		}
		b = bytes.Replace(b, []byte(was), []byte(fmt.Sprintf("pagination: page: {per: %d,", per)), 1)
		if err := os.WriteFile(lib, b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	var out []faultDeployment
	for _, n := range names {
		dir := filepath.Join(dst, n)
		faultCopy(tb, filepath.Join(root, n), dir)
		for file, text := range extra {
			text = strings.ReplaceAll(text, "{pkg}", faultPackage(tb, dir))
			if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
		out = append(out, faultDeployment{name: n, dir: dir})
	}
	return out
}

func faultCopy(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if strings.HasSuffix(path, ".db") || strings.Contains(path, ".db-") {
			return nil // a state file someone left in the tree
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

var faultPackageRE = regexp.MustCompile(`(?m)^package\s+(\w+)`)

// faultPackage is the CUE package name of the deployment in dir.
func faultPackage(tb testing.TB, dir string) string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.cue"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if m := faultPackageRE.FindSubmatch(b); m != nil {
			return string(m[1])
		}
	}
	tb.Fatalf("no package clause in %s", dir)
	return ""
}

// faultEnv is one deployment wired to a sandbox with the real loader,
// pool, state and runner.
type faultEnv struct {
	plan      *engine.Plan
	order     []string
	statePath string
	store     *state.Store
	pool      *rest.Pool
	runner    *engine.Runner
	// unconfirmed counts write_unconfirmed records confirmAbsent resolved.
	unconfirmed int
}

func faultOpen(tb testing.TB, sb *sandbox.Sandbox, dir string, log *slog.Logger) *faultEnv {
	tb.Helper()
	plan := faultLoadPlan(tb, sb, dir)
	e := &faultEnv{plan: plan, order: plan.RunOrder(), statePath: filepath.Join(tb.TempDir(), "state.db")}
	var err error
	if e.store, err = state.Open(e.statePath); err != nil {
		tb.Fatal(err)
	}
	var vals []string
	for _, n := range plan.Secrets {
		if v, ok := sb.Secret(n); ok {
			vals = append(vals, v)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dep, err := wire.Open(plan, wire.Options{State: e.store, Secrets: sb, Log: log, REST: rest.Options{Redactor: redact.New(vals...)}})
	if err != nil {
		e.store.Close()
		tb.Fatal(err)
	}
	e.pool, e.runner = dep.Conns, dep.Runner
	tb.Cleanup(e.close)
	return e
}

func (e *faultEnv) close() {
	e.pool.Close()
	e.store.Close()
}

// confirmAbsent plays the person a write_unconfirmed record asks for: a
// create that may have reached a target with no find and no idempotent
// create (OSCaR's upsert) is never resent blindly. The fakes decide a fault
// before the handler runs, so an injected 500 or drop never wrote anything:
// the person finds nothing at the target and lets the engine send it again
// (AbandonCreate, then the requeue). Were that wrong, the resend would be a
// duplicate, which the fakes count and the target comparison shows.
func (e *faultEnv) confirmAbsent(tb testing.TB, pipeline, key string) {
	tb.Helper()
	if err := e.store.AbandonCreate(context.Background(), pipeline, key); err != nil {
		tb.Fatal(err)
	}
	e.unconfirmed++
}

// converge syncs every pipeline, round after round, until a round has no
// failed run and nothing retryable in the retry queue, requeueing queued
// records between rounds instead of waiting out the backoff. It returns
// the rounds taken and what stays queued: records the spec refuses
// (permanent, data, config), as "pipeline record class reason" lines.
func (e *faultEnv) converge(tb testing.TB, maxRounds int) (int, []string) {
	tb.Helper()
	ctx := context.Background()
	var last []string
	for round := 1; round <= maxRounds; round++ {
		clean := true
		last = nil
		for _, name := range e.order {
			if _, err := e.runner.Sync(ctx, name, engine.SyncOptions{Trigger: "test"}); err != nil {
				tb.Logf("round %d: %s: run failed (retried next round): %v", round, name, err)
				clean = false
			}
			fails, err := e.store.Failures(ctx, name)
			if err != nil {
				tb.Fatal(err)
			}
			for _, f := range fails {
				if f.Reason == "write_unconfirmed" {
					e.confirmAbsent(tb, name, f.RecordKey)
					clean = false
					continue
				}
				if f.Class == engine.ClassRetryable || f.Class == "" {
					clean = false
				}
				last = append(last, fmt.Sprintf("%s %s %s %s", name, f.RecordKey, f.Class, f.Reason))
			}
			if len(fails) > 0 {
				// An hour back, so no rounding of stored times can leave
				// a record not yet due when the next run starts.
				if _, err := e.store.RequeueNow(ctx, name, "", "fault-test", time.Now().Add(-time.Hour)); err != nil {
					tb.Fatal(err)
				}
			}
		}
		if clean {
			sort.Strings(last)
			return round, last
		}
	}
	tb.Fatalf("still failing after %d rounds; queued: %v", maxRounds, last)
	return 0, nil
}

// faultVolatile are keys the target makes up itself (ids, slugs, times)
// or numbers in arrival order, which differ between any two runs.
var faultVolatile = map[string]bool{
	"id": true, "global_id": true, "client_global_id": true, "slug": true, "referral_id": true,
	"created_at": true, "updated_at": true, "synced_date": true, "last_updated_at": true,
}

// faultNormal drops volatile keys at any depth.
func faultNormal(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			if !faultVolatile[k] {
				m[k] = faultNormal(val)
			}
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = faultNormal(val)
		}
		return out
	}
	return v
}

// faultSorted normalises records and sorts them by their JSON text, so
// arrival order does not matter.
func faultSorted(tb testing.TB, recs []map[string]any) []string {
	tb.Helper()
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		b, err := json.Marshal(faultNormal(r))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}

// faultTarget is what the targets hold, normalised: OSCaR's referrals and
// clients, and Primero's cases (written back to by some deployments).
func faultTarget(tb testing.TB, sb *sandbox.Sandbox) map[string][]string {
	tb.Helper()
	clients, referrals := sb.Oscar.Clients(), sb.Oscar.Referrals()
	return map[string][]string{
		"oscar referrals": faultSorted(tb, referrals),
		"oscar clients":   faultSorted(tb, faultReasonRestored(clients, referrals)),
		"primero cases":   faultSorted(tb, faultRelabelled(sb.Primero.Cases(), clients, referrals)),
	}
}

// faultRelabelled replaces, in Primero's cases, the ids OSCaR made up for
// the clients and referrals the run created (oscar_number, oscar_short_id,
// and the OSCaR referral id on a referral_to_oscar row) with what they
// name: the NGO and case_id of the client, and the services of the
// referral. OSCaR numbers them in arrival order, so two runs give one
// client different ids; that the case points at the right client is what
// must be equal. Ids of seeded clients (no external_id) stay as they are.
func faultRelabelled(cases, clients, referrals []map[string]any) []map[string]any {
	label := map[string]string{}
	for _, c := range clients {
		if ext, _ := c["external_id"].(string); ext != "" {
			label[fmt.Sprint(c["global_id"])] = fmt.Sprintf("client %s/%s", c["tenant"], ext)
			label[fmt.Sprint(c["slug"])] = fmt.Sprintf("slug of client %s/%s", c["tenant"], ext)
		}
	}
	refs := map[string]string{}
	for _, r := range referrals {
		if ext, _ := r["external_id"].(string); ext != "" {
			refs[fmt.Sprintf("%s/%v", r["tenant"], r["id"])] = fmt.Sprintf("referral %s/%s %v", r["tenant"], ext, r["services"])
		}
	}
	out := make([]map[string]any, 0, len(cases))
	for _, c := range cases {
		m := make(map[string]any, len(c))
		for k, v := range c {
			m[k] = v
		}
		for _, k := range []string{"oscar_number", "oscar_short_id"} {
			if l, ok := label[fmt.Sprint(m[k])]; ok {
				m[k] = l
			}
		}
		if rows, ok := m["services_section"].([]any); ok {
			relabelled := make([]any, 0, len(rows))
			for _, row := range rows {
				r, ok := row.(map[string]any)
				if ok && r["service_response_type"] == "referral_to_oscar" && r["oscar_referral_id_a4ac8a5"] != nil {
					org := strings.TrimPrefix(fmt.Sprint(r["service_implementing_agency"]), "agency-")
					if l, found := refs[fmt.Sprintf("%s/%v", org, r["oscar_referral_id_a4ac8a5"])]; found {
						r = maps.Clone(r)
						r["oscar_referral_id_a4ac8a5"] = l
					}
				}
				relabelled = append(relabelled, r)
			}
			// Primero appends a row it has not seen (rows merge by
			// unique_id), so their order is arrival order too.
			sort.SliceStable(relabelled, func(i, j int) bool {
				a, _ := relabelled[i].(map[string]any)
				b, _ := relabelled[j].(map[string]any)
				return fmt.Sprint(a["unique_id"]) < fmt.Sprint(b["unique_id"])
			})
			m["services_section"] = relabelled
		}
		out = append(out, m)
	}
	return out
}

// faultReasonRestored undoes, in OSCaR's clients, the one change OSCaR
// makes that records when an NGO accepted rather than what was sent. A
// client gets reason_for_referral from the referral it was accepted from;
// an upsert that adds a referral to a client the NGO already has blanks it
// (oscar.md §4, branch 2: "the reason for referral [is] blanked on every
// such update"). With the faults, a case's later referral can be resent
// after the NGO accepted its first one, and blanks the reason a
// fault-free run leaves set. Only there, on a client whose reason is
// blank and that has a referral from MoSVY newer than itself, is the
// reason put back as acceptance copied it, from its oldest referral from
// MoSVY; a reason lost or changed any other way still differs.
func faultReasonRestored(clients, referrals []map[string]any) []map[string]any {
	type ref struct {
		created, reason string
	}
	byID := map[string]ref{}
	for _, r := range referrals {
		if r["referred_from"] == oscar.ExternalSystem {
			byID[fmt.Sprintf("%s/%v", r["tenant"], r["id"])] = ref{fmt.Sprint(r["created_at"]), fmt.Sprint(r["referral_reason"])}
		}
	}
	out := make([]map[string]any, 0, len(clients))
	for _, c := range clients {
		svcs, _ := c["services"].([]any)
		var oldest *ref
		newer := false
		for _, sv := range svcs {
			s, _ := sv.(map[string]any)
			r, ok := byID[fmt.Sprintf("%s/%v", c["tenant"], s["referral_id"])]
			if s["referral_id"] == nil || !ok {
				continue
			}
			if oldest == nil || faultTime(r.created).Before(faultTime(oldest.created)) {
				oldest = &r
			}
			newer = newer || faultTime(r.created).After(faultTime(fmt.Sprint(c["created_at"])))
		}
		if c["reason_for_referral"] == nil && newer && oldest != nil {
			c = maps.Clone(c)
			c["reason_for_referral"] = oldest.reason
		}
		out = append(out, c)
	}
	return out
}

func faultTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// faultDuplicates sums every fake's duplicate counter.
func faultDuplicates(sb *sandbox.Sandbox) int64 {
	return sb.Primero.Counters().Duplicates.Load() + sb.Oscar.Counters().Duplicates.Load() + sb.Ping.Counters().Duplicates.Load()
}

// faultStart starts a sandbox; cfg is the fault switches for every fake.
// OSCaR accepts every new referral when clients are next listed.
func faultStart(tb testing.TB, cfg faults.Config, secrets map[string]string) *sandbox.Sandbox {
	tb.Helper()
	return faultStartN(tb, faultCases(), cfg, secrets)
}

// faultStartN is faultStart with cases seeded Primero cases.
func faultStartN(tb testing.TB, cases int, cfg faults.Config, secrets map[string]string) *sandbox.Sandbox {
	tb.Helper()
	clients := 30
	if cases < 600 {
		clients = 12 // the eleven clients OSCaR places on purpose, and one more
	}
	return faultSandbox(tb, sandbox.Options{Cases: cases, Clients: clients, Interventions: 20, Decisions: 10, Seed: 11,
		OSCaRAutoAccept: true, PingStatusDelay: time.Millisecond, Faults: cfg, Secrets: secrets})
}

// TestFault_EveryRecordOnceUnderFaults: with 500s, 429s and dropped
// connections on every fake, repeated runs deliver every record exactly
// once, and the targets end equal to a fault-free run's.
func TestFault_EveryRecordOnceUnderFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		extra map[string]string
		per   int
	}{
		// The shipped specs: most faults are absorbed by the connector's
		// own retries.
		{name: "shipped"},
		// One attempt per write and small source pages: every fault on a
		// write becomes a failed record, so the runner's retry queue and
		// re-fetch do the work, and listings fail part way through.
		{name: "one-attempt-writes-small-pages", per: 25,
			extra: map[string]string{"zz_fault.cue": "package {pkg}\n\nconnectors: oscar: retry: max_attempts: 1\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := maps.Clone(tc.extra)
			if !*faultLong {
				// A retry waits a millisecond, as Retry-After says "0": the
				// suite is about what arrives, not when, and the connectors'
				// half-second backoff over hundreds of injected faults made
				// the package outlast go test's ten minutes at -count 4.
				if extra == nil {
					extra = map[string]string{}
				}
				extra["zz_fast_retry.cue"] = "package {pkg}\n\nconnectors: [string]: retry: {backoff: \"1ms\", max_backoff: \"10ms\"}\n"
			}
			for _, d := range faultSpecs(t, extra, tc.per) {
				t.Run(d.name, func(t *testing.T) {
					t.Parallel()
					faultRunAgainstClean(t, d, tc.per > 0)
				})
			}
		})
	}
}

// faultRunAgainstClean runs d to convergence under faults and compares the
// targets with a fault-free run's; sourceFaults says the listing is paged
// small enough that Primero must have seen faults too.
func faultRunAgainstClean(t *testing.T, d faultDeployment, sourceFaults bool) {
	clean := faultStart(t, faults.Config{}, nil)
	ce := faultOpen(t, clean, d.dir, nil)
	// A deployment may refuse some seeded records by design; those stay
	// queued in both runs, and must be the same records.
	if rounds, _ := ce.converge(t, 2); rounds != 1 {
		t.Fatalf("the fault-free run took %d rounds, want 1", rounds)
	}
	_, cleanRefused := ce.converge(t, 1)

	sb := faultStart(t, faultSwitches(5), nil)
	seeded := faultByExternalID(sb)
	fe := faultOpen(t, sb, d.dir, nil)
	rounds, refused := fe.converge(t, 30)
	if diff := cmp.Diff(cleanRefused, refused); diff != "" {
		t.Errorf("records refused after the faulty run differ from a fault-free run's (-clean +faulty):\n%s", diff)
	}
	injected := map[string][3]int64{}
	for name, c := range map[string]*faults.Counters{"primero": sb.Primero.Counters(), "oscar": sb.Oscar.Counters(), "ping": sb.Ping.Counters()} {
		injected[name] = [3]int64{c.Injected500.Load(), c.Injected429.Load(), c.Dropped.Load()}
	}
	t.Logf("converged in %d rounds, %d unconfirmed writes checked by hand; injected [500 429 drop] per fake: %v", rounds, fe.unconfirmed, injected)
	var targetFaults int64
	for name, in := range injected {
		if name != "primero" || d.name != "example" {
			targetFaults += in[0] + in[2]
		}
	}
	if int64(fe.unconfirmed) > targetFaults {
		t.Errorf("%d unconfirmed writes, more than the %d 500s and drops the targets injected", fe.unconfirmed, targetFaults)
	}
	if in := injected["primero"]; sourceFaults && (in[0] == 0 || in[1] == 0) {
		t.Errorf("primero injected %v: the run saw too few faults to prove anything", in)
	}
	if in := injected["oscar"]; in[0] == 0 || in[1] == 0 || in[2] == 0 {
		t.Errorf("oscar injected %v: the run saw too few faults to prove anything", in)
	}

	if n := faultDuplicates(sb); n != 0 {
		t.Errorf("the fakes counted %d duplicates, want 0", n)
	}
	// Key by key: every referred case is at OSCaR exactly once, beside
	// the referrals the fake was seeded with.
	if d.name == "example" {
		want := map[string]int{}
		for _, c := range faultReferredCases(sb) {
			want[c] = 1
		}
		got := faultByExternalID(sb)
		for id, n := range seeded {
			if got[id] -= n; got[id] == 0 {
				delete(got, id)
			}
		}
		if len(want) < 20 {
			t.Fatalf("only %d referred cases seeded; the comparison would prove little", len(want))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("referrals per case_id at OSCaR (-want +got):\n%s", diff)
		}
		if w, g := int64(len(want)), sb.Oscar.Counters().Writes()["referral.create"]; g != w {
			t.Errorf("OSCaR counted %d referral creates, want %d", g, w)
		}
	}
	if diff := cmp.Diff(faultTarget(t, clean), faultTarget(t, sb)); diff != "" {
		t.Errorf("targets after the faulty run differ from a fault-free run (-clean +faulty):\n%s", diff)
	}

	// With the faults gone, one more run has nothing left to write.
	for _, f := range []*faults.Injector{sb.Primero.Faults(), sb.Oscar.Faults(), sb.Ping.Faults()} {
		f.Set(faults.Config{})
	}
	before := sb.Oscar.Counters().TotalWrites() + sb.Primero.Counters().TotalWrites() + sb.Ping.Counters().TotalWrites()
	fe.converge(t, 1)
	if after := sb.Oscar.Counters().TotalWrites() + sb.Primero.Counters().TotalWrites() + sb.Ping.Counters().TotalWrites(); after != before {
		t.Errorf("a run after convergence wrote %d times, want 0", after-before)
	}
}

// faultByExternalID counts OSCaR's referrals by external_id.
func faultByExternalID(sb *sandbox.Sandbox) map[string]int {
	got := map[string]int{}
	for _, r := range sb.Oscar.Referrals() {
		if id, _ := r["external_id"].(string); id != "" {
			got[id]++
		}
	}
	return got
}

// faultReferredCases lists the case_id of every case the example
// pipeline refers to OSCaR (its external_id there).
func faultReferredCases(sb *sandbox.Sandbox) []string {
	ids := map[string]bool{}
	for _, id := range testenv.ReferredCases(sb) {
		ids[id] = true
	}
	var out []string
	for _, c := range sb.Primero.Cases() {
		if id, _ := c["id"].(string); ids[id] {
			out = append(out, fmt.Sprint(c["case_id"]))
		}
	}
	return out
}

// faultNames collects every seeded person's given and family name (and
// the whole name) from the fakes, at least three letters long so a
// syllable does not match inside an unrelated word.
func faultNames(sb *sandbox.Sandbox) []string {
	set := map[string]bool{}
	add := func(v any) {
		s, _ := v.(string)
		if len([]rune(s)) >= 3 {
			set[s] = true
		}
	}
	for _, c := range sb.Primero.Cases() {
		for _, f := range []string{"name", "name_first", "name_last", "name_middle", "name_nickname", "name_other"} {
			add(c[f])
		}
	}
	for _, c := range sb.Oscar.Clients() {
		for _, f := range []string{"given_name", "family_name", "local_given_name", "local_family_name"} {
			add(c[f])
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// faultLeaks reports what of secrets and names out shows. A name counts
// only as a whole word, so "Ana" does not match inside "Banana".
func faultLeaks(out []byte, secrets, names []string) []string {
	var found []string
	for _, s := range secrets {
		if bytes.Contains(out, []byte(s)) {
			found = append(found, "secret "+s)
		}
	}
	for _, n := range names {
		for i := 0; ; {
			j := bytes.Index(out[i:], []byte(n))
			if j < 0 {
				break
			}
			at := i + j
			if !faultWordByte(out, at-1) && !faultWordByte(out, at+len(n)) {
				found = append(found, fmt.Sprintf("name %q in %q", n, faultAround(out, at, len(n))))
				break
			}
			i = at + 1
		}
	}
	return found
}

func faultWordByte(b []byte, i int) bool {
	if i < 0 || i >= len(b) {
		return false
	}
	c := b[i]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

func faultAround(b []byte, at, n int) string {
	lo, hi := max(at-40, 0), min(at+n+40, len(b))
	return string(b[lo:hi])
}

// faultSecrets are the sandbox credentials with canaries planted, one per
// connector kind the shipped specs use.
func faultSecrets() map[string]string {
	return map[string]string{
		"PRIMERO_PASSWORD": faultCanary + "-primero",
		"OSCAR_PASSWORD":   faultCanary + "-oscar",
		"PING_PASSWORD":    faultCanary + "-ping",
	}
}

// TestFault_NoSecretOrNameLeaks: a canary secret and every seeded name are
// absent from the debug log, the real CLI's output (sync, dry-run
// --redact-pii, status, failures), and the state files with their WAL, on
// a run with faults, a token expiry and a record that fails.
func TestFault_NoSecretOrNameLeaks(t *testing.T) {
	t.Parallel()
	secrets := faultSecrets()
	var canaries []string
	for _, v := range secrets {
		canaries = append(canaries, v)
	}
	sort.Strings(canaries)
	deps := faultSpecs(t, nil, 0)

	t.Run("in-process", func(t *testing.T) {
		t.Parallel()
		sb := faultStartN(t, 120, faultSwitches(9), secrets)
		names := faultNames(sb)
		if len(names) < 100 {
			t.Fatalf("only %d names collected; the grep would prove little", len(names))
		}
		// A record that fails with the target's validation message, so an
		// error path is in the log and the state file.
		if ref := testenv.ReferredCases(sb); len(ref) > 0 {
			sb.Primero.Touch(ref[0], map[string]any{"date_of_birth": "2015-13-45"})
		}
		var logs bytes.Buffer
		var vals []string
		for _, n := range []string{"PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD", "PING_PASSWORD"} {
			v, _ := sb.Secret(n)
			vals = append(vals, v)
		}
		log := slog.New(redact.Handler(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}), redact.New(vals...)))
		for _, d := range deps {
			e := faultOpen(t, sb, d.dir, log)
			written := 0
			for _, name := range e.order {
				res, err := e.runner.Sync(t.Context(), name, engine.SyncOptions{Trigger: "test"})
				if err != nil {
					t.Logf("%s: %v", name, err)
				}
				if res != nil {
					written += res.Counts.Created + res.Counts.Updated
				}
			}
			if written == 0 {
				t.Fatalf("%s wrote nothing with the canary credentials; the test would prove little", d.name)
			}
			sb.Primero.ExpireTokens()
			sb.Oscar.ExpireTokens()
			sb.Ping.ExpireTokens()
			faultTouchReferred(sb)
			faultLoginWindow(sb)
			for _, name := range e.order {
				if _, err := e.store.RequeueNow(t.Context(), name, "", "fault-test", time.Now().Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
				if _, err := e.runner.Sync(t.Context(), name, engine.SyncOptions{Trigger: "test"}); err != nil {
					t.Logf("%s: %v", name, err)
				}
			}
			for _, what := range []string{"state file (open)", "state file (closed)"} {
				if what == "state file (closed)" {
					e.close()
				}
				for _, suffix := range []string{"", "-wal", "-intents"} {
					b, err := os.ReadFile(e.statePath + suffix)
					if os.IsNotExist(err) {
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					for _, l := range faultLeaks(b, canaries, names) {
						t.Errorf("%s: %s%s shows %s", d.name, what, suffix, l)
					}
				}
			}
		}
		if !bytes.Contains(logs.Bytes(), []byte("level=DEBUG")) || !bytes.Contains(logs.Bytes(), []byte("retrying request")) {
			t.Fatalf("the debug log has no request or retry lines; the grep would prove little:\n%.2000s", logs.String())
		}
		for _, l := range faultLeaks(logs.Bytes(), canaries, names) {
			t.Errorf("debug log shows %s", l)
		}
	})

	t.Run("cli", func(t *testing.T) {
		t.Parallel()
		bin := faultBuildCLI(t)
		sb := faultStartN(t, 120, faultSwitches(13), secrets)
		names := faultNames(sb)
		env := os.Environ()
		for _, n := range []string{"PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD",
			"PING_CLIENT_ID", "PING_USERNAME", "PING_PASSWORD", "PING_SUBSCRIPTION_KEY", "INBOX_SECRET"} {
			v, _ := sb.Secret(n)
			env = append(env, n+"="+v)
		}
		have := faultCLICommands(t, bin)
		// A record the target refuses, so failures has a row to show.
		if ref := testenv.ReferredCases(sb); len(ref) > 0 {
			sb.Primero.Touch(ref[0], map[string]any{"date_of_birth": "2015-13-45"})
		}
		for _, d := range deps {
			plan := faultLoadPlan(t, sb, d.dir)
			statePath := filepath.Join(t.TempDir(), "state.db")
			common := []string{"--specs", d.dir, "--state", statePath, "--log-level", "debug"}
			for name := range plan.Connectors {
				common = append(common, "--base-url", name+"="+sb.URLs[name])
			}
			var outputs [][]string
			cli := func(args ...string) string {
				faultLoginWindow(sb)
				cmd := exec.Command(bin, append(args, common...)...)
				cmd.Env = env
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				err := cmd.Run()
				t.Logf("engine %s: %v (%d bytes out, %d bytes err)", strings.Join(args, " "), err, out.Len(), errb.Len())
				return out.String() + errb.String()
			}
			run := func(args ...string) {
				outputs = append(outputs, []string{strings.Join(args, " "), cli(args...)})
			}
			// sync runs the pipelines chained after the one named, so
			// only those that start on their own are named.
			var roots []string
			for _, p := range plan.RunOrder() {
				if len(plan.Pipelines[p].Spec.Trigger.After) == 0 {
					roots = append(roots, p)
				}
			}
			// Dry-run first, while every record is still to be created,
			// so the previews carry whole payloads.
			if d.name == "example" {
				// The control: without --redact-pii the preview shows
				// names, so the grep below can see them when they leak.
				if len(faultLeaks([]byte(cli("dry-run", roots[0], "--format", "json")), nil, names)) == 0 {
					t.Errorf("dry-run without --redact-pii shows no seeded name; the name grep is blind")
				}
			}
			for _, p := range plan.RunOrder() {
				run("dry-run", p, "--redact-pii", "--format", "json")
			}
			for _, p := range roots {
				run("sync", p)
			}
			sb.Oscar.ExpireTokens()
			sb.Primero.ExpireTokens()
			faultTouchReferred(sb)
			for _, p := range roots {
				run("sync", p)
			}
			run("dry-run", roots[0], "--redact-pii", "--format", "diff", "--since", "2020-01-01T00:00:00Z")
			for _, c := range []string{"status", "failures"} {
				if have[c] {
					run(c)
					run(c, "--format", "json")
				}
			}
			var all int
			for _, o := range outputs {
				all += len(o[1])
				for _, l := range faultLeaks([]byte(o[1]), canaries, names) {
					t.Errorf("%s: engine %s shows %s", d.name, o[0], l)
				}
			}
			if all == 0 {
				t.Errorf("%s: the CLI printed nothing at debug level; the grep would prove little", d.name)
			}
			for _, suffix := range []string{"", "-wal", "-intents"} {
				b, err := os.ReadFile(statePath + suffix)
				if os.IsNotExist(err) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range faultLeaks(b, canaries, names) {
					t.Errorf("%s: CLI state file%s shows %s", d.name, suffix, l)
				}
			}
		}
		for _, c := range []string{"status", "failures"} {
			if !have[c] {
				t.Logf("engine has no %q command yet; its output was not checked", c)
			}
		}
	})
}

// faultTouchReferred changes a few referred cases, so the second run has
// writes (and their log lines) after the token expiry.
func faultTouchReferred(sb *sandbox.Sandbox) {
	for i, id := range testenv.ReferredCases(sb) {
		if i >= 5 {
			break
		}
		sb.Primero.Touch(id, map[string]any{"owned_by_phone": fmt.Sprintf("0%08d", i)})
	}
}

// faultLoginWindow moves fake Primero's clock on a minute: every CLI
// process logs in anew, and the fake throttles six logins a minute per
// user as Primero's rack-attack does, so a new window beats waiting.
func faultLoginWindow(sb *sandbox.Sandbox) { sb.Primero.Advance(time.Minute) }

// faultBuildCLI builds cmd/engine into a temporary folder.
func faultBuildCLI(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "engine")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/engine")
	cmd.Dir = testenv.RepoRoot(tb)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/engine: %v\n%s", err, out)
	}
	return bin
}

// faultCLICommands lists the subcommands the built CLI has.
func faultCLICommands(tb testing.TB, bin string) map[string]bool {
	tb.Helper()
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	have := map[string]bool{}
	inList := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Available Commands:") {
			inList = true
			continue
		}
		if inList {
			f := strings.Fields(line)
			if len(f) == 0 {
				break
			}
			have[f[0]] = true
		}
	}
	return have
}

// The helpers below keep this file standalone in package e2e.

// faultSandbox starts the fakes and stops them when the test ends.
func faultSandbox(tb testing.TB, opts sandbox.Options) *sandbox.Sandbox {
	tb.Helper()
	sb, err := sandbox.Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sb.Close)
	return sb
}

// faultLoadPlan loads a deployment and points its connectors at sb.
func faultLoadPlan(tb testing.TB, sb *sandbox.Sandbox, dir string) *engine.Plan {
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
