package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"casesync/engine"
	"casesync/internal/sandbox"
	"casesync/internal/testenv"
)

// The example pipeline with an enrich step: each referred case is fetched
// again by id before it is mapped. It makes the idempotence test honest
// about requests other than writes.
const runnerEnrichCUE = `package example

pipelines: cases_to_oscar: enrich: [{
	name:      "detail"
	connector: "primero"
	request: {path: "/api/v2/cases/{.id}", records: "[.data]"}
}]
`

// runnerFindCUE gives the example's upsert a find and an update. OSCaR
// cannot update a referral before an NGO accepts it: a second upsert of a
// pending referral adds another referral (the fake counts a duplicate), and
// once accepted an upsert without the client's global_id is refused with
// "Record was found.". So a deployment that re-sends changed records, or
// that must survive a crash between a write and its commit, finds the
// accepted client by external_id and updates it by global_id, without
// is_referred so no referral is added. The sandbox runs with
// OSCaRAutoAccept, as an NGO user accepting every referral at once.
const runnerFindCUE = `package example

pipelines: cases_to_oscar: upsert: {
	find: {
		path:    "/api/v1/organizations/clients"
		records: "[.data[] | select(.external_id == $key)]"
		id:      ".global_id"
	}
	update: {
		method: "POST"
		path:   "/api/v1/organizations/clients/upsert"
		body: jq: "{organization: (. + {global_id: $target_id} | del(.is_referred))}"
	}
}
`

// TestRunner_SecondRunWritesNothing: a second run with nothing changed
// makes one listing request per source and no write (issue 6, idempotence),
// with or without enrich steps; a changed source record makes exactly one
// update.
func TestRunner_SecondRunWritesNothing(t *testing.T) {
	tests := []struct {
		name   string
		extra  map[string]string
		enrich bool
		// change: touch one case and expect exactly one update. The
		// shipped example has no update (see runnerFindCUE), so a change
		// there is re-sent as a new referral.
		change bool
		mode   string // upsert mode replacing the example's create_only
	}{
		{name: "shipped example"},
		{name: "with find and update", extra: map[string]string{"upsert.cue": runnerFindCUE}, mode: "upsert", change: true},
		{name: "with an enrich step", extra: map[string]string{"upsert.cue": runnerFindCUE, "enrich.cue": runnerEnrichCUE}, mode: "upsert", enrich: true, change: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := runnerSandbox(t, sandbox.Options{Cases: 200, Clients: 20, OSCaRAutoAccept: true})
			env := runnerOpen(t, sb, runnerSpecs(t, runnerSpecOptions{Per: 50, Extra: tc.extra, UpsertMode: tc.mode}), "", nil)
			referred := testenv.ReferredCases(sb)
			if len(referred) < 10 {
				t.Fatalf("seed refers only %d cases", len(referred))
			}

			// The newest case is a referred one, so the second run re-reads
			// a record that passes the filters inside the cursor's overlap.
			sb.Primero.Touch(referred[0], map[string]any{"owned_by_phone": "012345678"})
			first := env.sync(t)
			if first.Counts.Created != len(referred) || first.Counts.Failed != 0 {
				t.Fatalf("first run: %+v (reasons %v), want %d created and none failed", first.Counts, first.Reasons, len(referred))
			}
			if got := sb.Oscar.Counters().TotalWrites(); got != int64(len(referred)) {
				t.Fatalf("first run: OSCaR counted %d writes, want %d", got, len(referred))
			}
			if tc.enrich && runnerShows(sb) == 0 {
				t.Fatal("the enrich step made no request: the test would prove nothing")
			}

			runnerResetCounters(sb)
			second := env.sync(t)
			if got := runnerListings(sb); got != 1 {
				t.Errorf("second run: %d listing requests to Primero, want 1", got)
			}
			if got := runnerShows(sb); got != 0 {
				t.Errorf("second run: %d enrich (show) requests to Primero, want 0", got)
			}
			if got := sb.Oscar.Counters().Requests(); len(got) != 0 {
				t.Errorf("second run: requests to OSCaR %v, want none", got)
			}
			if got := sb.Oscar.Counters().TotalWrites() + sb.Primero.Counters().TotalWrites(); got != 0 {
				t.Errorf("second run: %d writes, want 0", got)
			}
			if c := second.Counts; c.Created+c.Updated+c.Failed != 0 || c.Unchanged == 0 {
				t.Errorf("second run counts %+v, want the overlap's record unchanged and nothing created, updated or failed", c)
			}
			if d := sb.Oscar.Counters().Duplicates.Load(); d != 0 {
				t.Errorf("OSCaR counted %d duplicates", d)
			}
			if !tc.change {
				return
			}

			// A third run, with one referred case changed at the source in
			// a field the OSCaR client keeps.
			id := referred[len(referred)/2]
			c, _ := sb.Primero.Case(id)
			sex := "male"
			if c["sex"] == "male" {
				sex = "female"
			}
			sb.Primero.Touch(id, map[string]any{"sex": sex})
			runnerResetCounters(sb)
			third := env.sync(t)
			if got := sb.Oscar.Counters().Writes(); len(got) != 1 || got["client.update"] != 1 {
				t.Errorf("after one change: OSCaR counted writes %v, want one client.update", got)
			}
			if third.Counts.Updated != 1 || third.Counts.Created != 0 || third.Counts.Failed != 0 {
				t.Errorf("after one change: counts %+v (reasons %v), want exactly one update", third.Counts, third.Reasons)
			}
			if got := runnerListings(sb); got != 1 {
				t.Errorf("after one change: %d listing requests, want 1", got)
			}
			if tc.enrich {
				if got := runnerShows(sb); got != 1 {
					t.Errorf("after one change: %d enrich requests, want 1 (the changed case only)", got)
				}
			}
			if d := sb.Oscar.Counters().Duplicates.Load(); d != 0 {
				t.Errorf("OSCaR counted %d duplicates", d)
			}
		})
	}
}

// runnerShows counts GET /api/v2/cases/{id} requests (the enrich step's).
func runnerShows(sb *sandbox.Sandbox) int64 {
	var n int64
	for k, v := range sb.Primero.Counters().Requests() {
		if strings.HasPrefix(k, "GET /api/v2/cases/") {
			n += v
		}
	}
	return n
}

// TestRunner_OneBadRecordDoesNotStopThePage: a malformed record is recorded
// with its reason and every other record is written; fixing the source
// clears it (issue 6, isolation).
func TestRunner_OneBadRecordDoesNotStopThePage(t *testing.T) {
	sb := runnerSandbox(t, sandbox.Options{Cases: 120, Clients: 10})
	env := runnerOpen(t, sb, runnerSpecs(t, runnerSpecOptions{Per: 1000}), "", nil)
	referred := testenv.ReferredCases(sb)
	bad := referred[len(referred)/3]
	// ymd refuses a month 13: the mapping of date_of_birth fails.
	sb.Primero.Touch(bad, map[string]any{"date_of_birth": "2015-13-45"})
	seeded := len(sb.Oscar.Referrals())

	res := env.sync(t)
	if res.Counts.Created != len(referred)-1 || res.Counts.Failed != 1 {
		t.Fatalf("counts %+v (reasons %v), want %d created and 1 failed", res.Counts, res.Reasons, len(referred)-1)
	}
	if got := len(sb.Oscar.Referrals()) - seeded; got != len(referred)-1 {
		t.Errorf("OSCaR holds %d new referrals, want %d", got, len(referred)-1)
	}
	fails, err := env.store.Failures(t.Context(), runnerPipeline)
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) != 1 || fails[0].RecordKey != bad || fails[0].Reason != "map_error" || fails[0].Class != engine.ClassData {
		t.Fatalf("failures = %+v, want %s with map_error (data)", fails, bad)
	}
	if !strings.Contains(fails[0].LastError, "date_of_birth") || strings.Contains(fails[0].LastError, "2015-13-45") {
		t.Errorf("last error %q: want the field named and the value left out", fails[0].LastError)
	}

	sb.Primero.Touch(bad, map[string]any{"date_of_birth": "2015-01-02"})
	res = env.sync(t)
	if res.Counts.Created != 1 || res.Counts.Failed != 0 {
		t.Errorf("after the fix: counts %+v, want the one record created", res.Counts)
	}
	fails, err = env.store.Failures(t.Context(), runnerPipeline)
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) != 0 {
		t.Errorf("after the fix: failures = %+v, want none", fails)
	}
	if got := len(sb.Oscar.Referrals()) - seeded; got != len(referred) {
		t.Errorf("after the fix: OSCaR holds %d new referrals, want %d", got, len(referred))
	}
}

// TestRunner_RefusedCredentialsStopTheRun: when the target refuses the
// credentials, the run fails and no record is charged a retry attempt; with
// the right credentials the next run writes everything.
func TestRunner_RefusedCredentialsStopTheRun(t *testing.T) {
	sb := runnerSandbox(t, sandbox.Options{Cases: 60, Clients: 5})
	dir := runnerSpecs(t, runnerSpecOptions{Per: 20})
	wrong := runnerSecrets{sb: sb, override: map[string]string{"OSCAR_PASSWORD": "not-the-password"}}
	env := runnerOpen(t, sb, dir, "", wrong)

	res, err := env.runner.Sync(t.Context(), runnerPipeline, engine.SyncOptions{Trigger: "test"})
	var stopped *engine.RunStoppedError
	if !errors.As(err, &stopped) || stopped.Class != engine.ClassAuth {
		t.Fatalf("sync = %v, want a RunStoppedError of class auth", err)
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("error %q shows the secret", err)
	}
	if res.Counts.Created != 0 {
		t.Errorf("counts %+v, want nothing created", res.Counts)
	}
	fails, err := env.store.Failures(t.Context(), runnerPipeline)
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) != 0 {
		t.Errorf("failures = %+v, want none: refused credentials are not the records' fault", fails)
	}
	checkStoppedRun(t, env.store, res, stopped)
	env.close()

	env = runnerOpen(t, sb, dir, env.statePath, nil)
	res = env.sync(t)
	if want := len(testenv.ReferredCases(sb)); res.Counts.Created != want {
		t.Errorf("with the right password: counts %+v %v, want %d created", res.Counts, res.Reasons, want)
	}
}

// TestRunner_ProgressPerPage: the Progress callback fires once per page,
// after the page commits, with the run's counts so far.
func TestRunner_ProgressPerPage(t *testing.T) {
	sb := runnerSandbox(t, sandbox.Options{Cases: 95, Clients: 5})
	env := runnerOpen(t, sb, runnerSpecs(t, runnerSpecOptions{Per: 20}), "", nil)
	var events []engine.ProgressEvent
	env.runner.Progress = func(e engine.ProgressEvent) { events = append(events, e) }
	res := env.sync(t)

	var pages []int
	for _, e := range events {
		pages = append(pages, e.Page)
	}
	if want := []int{1, 2, 3, 4, 5}; !slices.Equal(pages, want) {
		t.Fatalf("progress pages %v, want %v", pages, want)
	}
	for i, e := range events {
		if e.Pipeline != runnerPipeline || e.Total != 95 {
			t.Errorf("event %d: pipeline %q total %d, want %s and 95", i, e.Pipeline, e.Total, runnerPipeline)
		}
		if want := min(20*(i+1), 95); e.Counts.Read != want {
			t.Errorf("event %d: read %d, want %d", i, e.Counts.Read, want)
		}
		if i > 0 && e.Counts.Created < events[i-1].Counts.Created {
			t.Errorf("event %d: created went down", i)
		}
	}
	if last := events[len(events)-1]; !reflect.DeepEqual(last.Counts, res.Counts) {
		t.Errorf("last event counts %+v, run counts %+v", last.Counts, res.Counts)
	}
}

// TestRunner_StateHoldsNoNames: after a demo-sized run the state file, its
// WAL included, holds none of the seeded names (issue 6, privacy).
func TestRunner_StateHoldsNoNames(t *testing.T) {
	sb := runnerSandbox(t, sandbox.Options{Cases: 200, Clients: 60, OSCaRAutoAccept: true})
	env := runnerOpen(t, sb, runnerSpecs(t, runnerSpecOptions{}), "", nil)
	// One failure too, so the retry queue and an error message are in the
	// file.
	referred := testenv.ReferredCases(sb)
	sb.Primero.Touch(referred[0], map[string]any{"date_of_birth": "2015-13-45"})
	res := env.sync(t)
	if res.Counts.Created == 0 || res.Counts.Failed != 1 {
		t.Fatalf("counts %+v: want writes and one failure", res.Counts)
	}

	names := map[string]bool{}
	for _, c := range sb.Primero.Cases() {
		for _, f := range []string{"name", "name_first", "name_last", "name_middle", "name_nickname", "name_other"} {
			for _, part := range strings.Fields(runnerString(c[f])) {
				if len(part) >= 3 {
					names[part] = true
				}
			}
			if s := runnerString(c[f]); len(s) >= 3 {
				names[s] = true
			}
		}
	}
	if len(names) < 50 {
		t.Fatalf("only %d names collected; the grep would prove little", len(names))
	}
	check := func(when string) {
		raw := runnerStateBytes(t, env.statePath)
		if !bytes.Contains(raw, []byte(referred[1])) {
			t.Fatalf("%s: the file does not hold a written record's id; the grep is not reading it", when)
		}
		var found []string
		for n := range names {
			if bytes.Contains(raw, []byte(n)) {
				found = append(found, n)
			}
		}
		slices.Sort(found)
		if len(found) > 0 {
			t.Errorf("%s: the state holds %d seeded names, e.g. %q", when, len(found), found[:min(5, len(found))])
		}
	}
	check("with the WAL open")
	env.close()
	check("after close")
}

func runnerString(v any) string {
	s, _ := v.(string)
	return s
}

// runnerStateBytes reads the state file and its -wal, -shm and -intents.
func runnerStateBytes(tb testing.TB, path string) []byte {
	tb.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-intents"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			tb.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestRunner_CasesCreatedDuringPaging: Primero lists newest first, so
// cases created while the engine pages push the older ones onto later
// pages, and some are listed twice in one run. None is lost, none is
// written twice, and a repeat on the next page (the usual case) gets no
// second outcome. A shift of more than two pages is handled again, which
// the state makes harmless: still one write per case.
func TestRunner_CasesCreatedDuringPaging(t *testing.T) {
	for _, tc := range []struct {
		name    string
		created int // cases created after page 1
		once    bool
	}{
		{name: "a few", created: 7, once: true},
		{name: "more than two pages", created: 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := runnerSandbox(t, sandbox.Options{Cases: 200, Clients: 20, OSCaRAutoAccept: true})
			env := runnerOpen(t, sb, runnerSpecs(t, runnerSpecOptions{Per: 50}), "", nil)
			listed := map[string]bool{}
			for _, c := range sb.Primero.Cases() {
				listed[c["id"].(string)] = true
			}
			referred := testenv.ReferredCases(sb)
			env.runner.Progress = func(e engine.ProgressEvent) {
				if e.Page == 1 {
					for range tc.created {
						primeroCreateCase(t, sb)
					}
				}
			}
			res := env.sync(t)
			// The pages shifted: the listing followed the growing total
			// and read 200 + created records, the shifted ones twice.
			if want := 200 + tc.created; res.Counts.Read != want {
				t.Errorf("read %d, want %d", res.Counts.Read, want)
			}

			outs, err := env.store.Outcomes(t.Context(), res.RunID)
			if err != nil {
				t.Fatal(err)
			}
			per := map[string]int{}
			for _, o := range outs {
				per[o.RecordKey]++
			}
			for id := range listed {
				if per[id] == 0 {
					t.Errorf("case %s, listed before the run, has no outcome", id)
				}
				if tc.once && per[id] > 1 {
					t.Errorf("case %s has %d outcomes, want 1", id, per[id])
				}
			}
			if n := sb.Oscar.Counters().Duplicates.Load(); n != 0 {
				t.Errorf("OSCaR counted %d duplicates", n)
			}
			if got, want := sb.Oscar.Counters().Writes()["referral.create"], int64(len(referred)); got != want {
				t.Errorf("%d referrals created, want one per referred case (%d)", got, want)
			}
			// The cases created during the run are newer than its cursor:
			// the next run reads them.
			res = env.sync(t)
			if want := tc.created; res.Counts.Read < want {
				t.Errorf("next run read %d, want at least the %d created", res.Counts.Read, want)
			}
		})
	}
}

// primeroCreateCase creates an empty case through the API, as a Primero
// user would.
func primeroCreateCase(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	user, _ := sb.Secret("PRIMERO_USER")
	pass, _ := sb.Secret("PRIMERO_PASSWORD")
	req, err := http.NewRequest(http.MethodPost, sb.URLs["primero"]+"/api/v2/cases", strings.NewReader(`{"data": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create case: %s", resp.Status)
	}
}
