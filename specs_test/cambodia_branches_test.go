package specs_test

import (
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/internal/sandbox"
	"casesync/internal/state"
	"casesync/internal/wire"
)

// primeroListings counts the pages of Primero's case listing the fake
// served (GET /api/v2/cases with a page, not an enrich's case_id query).
func primeroListings(t *testing.T, sb *sandbox.Sandbox) int {
	t.Helper()
	n := 0
	for _, r := range sb.Primero.Requests() {
		q, err := url.ParseQuery(r.Query)
		if err != nil {
			t.Fatal(err)
		}
		if r.Method == "GET" && r.Path == "/api/v2/cases" && q.Get("page") == "1" && q.Get("case_id") == "" {
			n++
		}
	}
	return n
}

// unitPass runs the deployment as the daemon does: each pipeline with
// branches once (SyncUnit), in the demo's order.
func (d *deployment) unitPass() map[string]*engine.RunResult {
	d.t.Helper()
	results := map[string]*engine.RunResult{}
	ran := map[string]bool{}
	for _, name := range d.plan.RunOrder() {
		unit := d.plan.Unit(name)
		if ran[unit] {
			continue
		}
		ran[unit] = true
		rs, err := d.runner.SyncUnit(ctx(d.t), unit, engine.SyncOptions{Trigger: "test"})
		if err != nil {
			d.t.Fatalf("sync %s: %v", unit, err)
		}
		for _, r := range rs {
			results[r.Pipeline] = r
		}
	}
	return results
}

type branchCounts struct{ Read, Created, Updated, Unchanged, Skipped, Failed int }

func countsOf(rs map[string]*engine.RunResult) map[string]branchCounts {
	out := map[string]branchCounts{}
	for n, r := range rs {
		c := r.Counts
		out[n] = branchCounts{c.Read, c.Created, c.Updated, c.Unchanged, c.Skipped, c.Failed}
	}
	return out
}

// Cambodia's branches run over one listing each and do exactly what the
// pipelines they were did when each read the source itself: the same
// counts per branch and the same writes at the fakes, on three passes (the
// second and third write nothing), with Primero listed once per pipeline
// with branches instead of once per branch.
func TestCambodia_BranchesShareOneListing(t *testing.T) {
	if got := slices.Sorted(maps.Keys(load(t, khDir).Groups)); !slices.Equal(got, []string{"f1_primero_to_oscar", "f2_oscar_to_primero", "f2_primero_after_clients"}) {
		t.Fatalf("groups %v", got)
	}
	apart := start(t, khDir, sandbox.Options{Cases: 60, Clients: 10, Seed: 1})
	shared := start(t, khDir, sandbox.Options{Cases: 60, Clients: 10, Seed: 1})
	for pass := 1; pass <= 3; pass++ {
		apart.sb.Primero.ResetRequests()
		shared.sb.Primero.ResetRequests()
		ra, _ := apart.pass()
		rs := shared.unitPass()
		if diff := cmp.Diff(countsOf(ra), countsOf(rs)); diff != "" {
			t.Errorf("pass %d: counts per branch (-apart +shared):\n%s", pass, diff)
		}
		for _, sys := range []string{"primero", "oscar"} {
			if a, s := apart.counterKinds(sys), shared.counterKinds(sys); !maps.Equal(a, s) {
				t.Errorf("pass %d: %s writes apart %v, shared %v", pass, sys, a, s)
			}
		}
		// Apart: f1_referrals, f1_decisions, f1_links, f2_pending each list
		// Primero; shared: f1_primero_to_oscar and f2_primero_after_clients.
		if a, s := primeroListings(t, apart.sb), primeroListings(t, shared.sb); a != 4 || s != 2 {
			t.Errorf("pass %d: Primero listings apart %d (want 4), shared %d (want 2)", pass, a, s)
		}
	}
}

// oscarRefused is the sandbox's secrets with OSCaR's password wrong.
type oscarRefused struct{ sb *sandbox.Sandbox }

func (s oscarRefused) Secret(name string) (string, bool) {
	if name == "OSCAR_PASSWORD" {
		return "not-the-password", true
	}
	return s.sb.Secret(name)
}

// A branch whose run fails (OSCaR refuses the login: a failure of the run,
// not of a record) stops and keeps its cursor; its sibling on the same
// listing goes on, writes, and moves its own. Once OSCaR lets the engine
// in, the next run of the pipeline reads from the failed branch's cursor,
// the branch does its work and the sibling, which handled those records
// already, writes nothing again.
func TestCambodia_BranchFailureKeepsItsCursor(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Cases: 60, Clients: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	plan := load(t, khDir)
	urls := map[string]string{}
	for name := range plan.Connectors {
		urls[name] = sb.URLs[name]
	}
	plan = plan.WithBaseURLs(urls)
	statePath := filepath.Join(t.TempDir(), "state.db")
	open := func(secrets engine.Secrets) (*engine.Runner, *state.Store) {
		st, err := state.Open(statePath)
		if err != nil {
			t.Fatal(err)
		}
		dep, err := wire.Open(plan, wire.Options{State: st, Secrets: secrets, REST: rest.Options{}})
		if err != nil {
			t.Fatal(err)
		}
		return dep.Runner, st
	}
	const group = "f2_primero_after_clients"
	runner, st := open(oscarRefused{sb})
	results, err := runner.SyncGroup(ctx(t), group, engine.SyncOptions{Trigger: "test"})
	if err == nil || len(results) != 2 {
		t.Fatalf("want the links branch to fail the run: %v, %d result(s)", err, len(results))
	}
	byName := map[string]*engine.RunResult{}
	for _, r := range results {
		byName[r.Pipeline] = r
	}
	links, pending := byName["f1_links_to_oscar"], byName["f2_pending_referrals"]
	if links.Err == nil || pending.Err != nil {
		t.Fatalf("links err %v, pending err %v", links.Err, pending.Err)
	}
	if pending.Counts.Updated == 0 {
		t.Fatalf("pending wrote nothing: %+v", pending.Counts)
	}
	if _, ok, _ := st.Cursor(ctx(t), "f1_links_to_oscar"); ok {
		t.Error("the failed branch moved its cursor")
	}
	if _, ok, _ := st.Cursor(ctx(t), "f2_pending_referrals"); !ok {
		t.Error("the branch that went through kept no cursor")
	}
	st.Close()

	runner, st = open(sb)
	defer st.Close()
	results, err = runner.SyncGroup(ctx(t), group, engine.SyncOptions{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		switch r.Pipeline {
		case "f1_links_to_oscar":
			if r.Counts.Read == 0 || r.Counts.Failed != 0 {
				t.Errorf("links after the login works: %+v %v", r.Counts, r.Reasons)
			}
		case "f2_pending_referrals":
			if r.Counts.Created+r.Counts.Updated != 0 {
				t.Errorf("pending wrote again: %+v", r.Counts)
			}
		}
	}
	if _, ok, _ := st.Cursor(ctx(t), "f1_links_to_oscar"); !ok {
		t.Error("the links branch did not move its cursor once it went through")
	}
}
