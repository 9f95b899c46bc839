package specs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/connectors/rest"
	"casesync/internal/fakes/primero"
	"casesync/internal/inboxrun"
	"casesync/internal/sandbox"
)

var updateThai = flag.Bool("update-thailand", false, "rewrite the Thailand goldens under testdata/thailand")

const thaiInbox = "/inbox/thailand/sync"

// thai is the Thailand deployment served by an in-process daemon, with
// the fake Primero's webhooks (one per event, the event in the query)
// pointing at its inbox, as specs/thailand/README.md sets them up.
type thai struct {
	t   *testing.T
	sb  *sandbox.Sandbox
	in  *inboxrun.Runner
	key string
}

func startThai(t *testing.T) *thai {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Cases: 5, Seed: 1, Thailand: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	plan := load(t, "specs/thailand").WithBaseURLs(map[string]string{"primero": sb.URLs["primero"], "his": sb.URLs["his"]})
	noSleep := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	in, err := inboxrun.Start(inboxrun.Options{Plan: plan, Secrets: sb, StatePath: filepath.Join(t.TempDir(), "state.db"),
		REST: rest.Options{Sleep: noSleep}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	key, _ := sb.Secret("PRIMERO_WEBHOOK_KEY")
	for _, ev := range []string{primero.EventCaseCreate, primero.EventCasePost, primero.EventCaseUpdate} {
		sb.Primero.AddWebhook(primero.Webhook{URL: in.URL + thaiInbox + "?event=" + ev, Events: []string{ev},
			AuthType: primero.WebhookAPIKey, Secret: key, Role: "role-integration"})
	}
	return &thai{t: t, sb: sb, in: in, key: key}
}

// post delivers a webhook body as Primero would for event.
func (h *thai) post(body []byte, event string) {
	h.t.Helper()
	st, err := h.in.Post(ctx(h.t), thaiInbox+"?event="+event, http.Header{"X-Api-Key": {h.key}}, body)
	if err != nil || st != http.StatusAccepted {
		h.t.Fatalf("post delivery: %d %v", st, err)
	}
}

// press is a user pressing Sync on a case in Primero.
func (h *thai) press(id string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.sb.URLs["primero"]+"/api/v2/cases/"+id+"/sync", nil)
	user, _ := h.sb.Secret("PRIMERO_USER")
	pass, _ := h.sb.Secret("PRIMERO_PASSWORD")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		h.t.Fatalf("press sync on %s: %v %v", id, resp, err)
	}
	resp.Body.Close()
}

// settle waits until every delivery Primero sent (its webhooks fire in the
// background, after each PATCH too) and the test posted is processed.
func (h *thai) settle() {
	h.t.Helper()
	if err := h.in.Settle(ctx(h.t), "sync_patient", h.sb.Primero.WaitDeliveries, 30*time.Second); err != nil {
		h.t.Fatal(err)
	}
}

// caseOf is the case as Primero stores it, minus what changes run to run.
func (h *thai) caseOf(id string) map[string]any {
	h.t.Helper()
	c, ok := h.sb.Primero.Case(id)
	if !ok {
		h.t.Fatalf("no case %s", id)
	}
	for _, k := range []string{"last_updated_at", "synced_at", "associated_user_names", "owned_by_groups", "owned_by_agency_id",
		"owned_by_location", "owned_by_full_name", "associated_user_agencies", "associated_user_groups", "unique_identifier", "age"} {
		delete(c, k)
	}
	return normal(h.t, c).(map[string]any)
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "thailand", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func golden(t *testing.T, name string, got any) {
	t.Helper()
	path := filepath.Join("testdata", "thailand", name)
	b, _ := json.MarshalIndent(got, "", "  ")
	b = append(b, '\n')
	if *updateThai {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-thailand to create it)", err)
	}
	if !bytes.Equal(want, b) {
		var w any
		json.Unmarshal(want, &w)
		t.Errorf("%s (-want +got):\n%s", name, cmp.Diff(w, normal(t, got)))
	}
}

// The Sync button flow end to end: the two webhook fixtures, then Sync
// presses on the other cases, against the fake HIS and the fake Primero.
func TestThailand_SyncFlow(t *testing.T) {
	h := startThai(t)
	h.post(readFixture(t, "primero_sync_webhook_minimal.json"), primero.EventCasePost)
	h.post(readFixture(t, "primero_sync_webhook_full.json"), primero.EventCasePost)
	h.settle()
	for _, id := range []string{sandbox.ThaiCaseNotFound, sandbox.ThaiCaseNoID, sandbox.ThaiCaseNoDates} {
		h.press(id)
	}
	h.settle()

	// Field values, per-visit lab results, the visit time from UTC+7, risk
	// fields left out when missing, the nationality miss left out: the
	// cases as Primero keeps them.
	golden(t, "case_found.json", h.caseOf(sandbox.ThaiCaseMinimal))
	golden(t, "case_partial.json", h.caseOf(sandbox.ThaiCaseFull))
	golden(t, "case_no_dates.json", h.caseOf(sandbox.ThaiCaseNoDates))
	status := map[string]any{}
	for _, id := range []string{sandbox.ThaiCaseMinimal, sandbox.ThaiCaseFull, sandbox.ThaiCaseNotFound, sandbox.ThaiCaseNoID, sandbox.ThaiCaseNoDates} {
		c, _ := h.sb.Primero.Case(id)
		status[id] = c["sync_status"]
	}
	want := map[string]any{sandbox.ThaiCaseMinimal: "synced", sandbox.ThaiCaseFull: "synced", sandbox.ThaiCaseNotFound: "not_found",
		sandbox.ThaiCaseNoID: "failed", sandbox.ThaiCaseNoDates: "synced"}
	if diff := cmp.Diff(want, status); diff != "" {
		t.Errorf("sync_status (-want +got):\n%s", diff)
	}

	// One PATCH per Sync press: the echo of each PATCH reached the inbox
	// (Primero's webhook fires after every update) and was dropped.
	if got := h.sb.Primero.Counters().Writes()["update"]; got != 5 {
		t.Errorf("PATCHes = %d, want 5 (one per press)", got)
	}
	echoes := 0
	for _, d := range h.sb.Primero.Deliveries() {
		if d.Event == primero.EventCaseUpdate && d.Status == "sent" {
			echoes++
		}
	}
	if echoes != 5 {
		t.Errorf("echo deliveries = %d, want 5", echoes)
	}

	// The engine's counts equal the fakes' own.
	engineWrites, misses, reasons := 0, map[string]int{}, map[string]int{}
	for _, r := range h.in.Results() {
		engineWrites += r.Writes["primero"]
		for k, n := range r.Misses {
			misses[k] += n
		}
		for k, n := range r.Reasons {
			reasons[k] += n
		}
	}
	if fake := int(h.sb.Primero.Counters().TotalWrites()); engineWrites != fake {
		t.Errorf("engine counted %d Primero writes, the fake %d", engineWrites, fake)
	}
	hisWrites := h.sb.HIS.Counters().Writes()
	if got := hisWrites["findOne found"] + hisWrites["findOne not_found"]; got != 4 {
		t.Errorf("HIS findOne calls = %d, want 4 (the case without a national id asks nothing)", got)
	}
	byPolicy := map[string]int{}
	for _, r := range h.in.Results() {
		for k, n := range r.Counts.LookupMisses {
			byPolicy[k] += n
		}
	}
	// Counted whatever the policy (here null: the field is left out), as
	// the run keeps them (engine runs, /status) and /metrics shows them.
	if byPolicy["nationality:null"] != 1 {
		t.Errorf("lookup misses by policy = %v, want nationality:null 1", byPolicy)
	}
	runs, err := h.in.Store.Runs(ctx(t), "sync_patient", 0)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, r := range runs {
		stored += r.Counts.LookupMisses["nationality:null"]
	}
	if stored != 1 {
		t.Errorf("the state's runs hold %d nationality:null misses, want 1", stored)
	}
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/metrics", nil)
	resp := h.in.Admin(req)
	metrics, _ := io.ReadAll(resp.Body)
	if want := `casesync_lookup_misses_total{pipeline="sync_patient",lookup="nationality",policy="null"} 1`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s (status %d):\n%s", want, resp.StatusCode, metrics)
	}
	if misses["nationality"] != 1 {
		t.Errorf("nationality misses = %v, want 1 (the partial patient's code 998)", misses)
	}
	if diff := cmp.Diff(map[string]int{"not_a_sync_event": 5, "not_found": 1, "national_id_missing": 1}, reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}

	// A receiver subscribed with one URL for every event gets deliveries
	// with no event: the one that comes right after the engine's own
	// PATCH of the case is its echo, dropped from the engine's record of
	// its writes, and nothing is written.
	before := h.sb.Primero.Counters().Writes()["update"]
	st, err := h.in.Post(ctx(t), thaiInbox, http.Header{"X-Api-Key": {h.key}}, readFixture(t, "primero_sync_webhook_minimal.json"))
	if err != nil || st != http.StatusAccepted {
		t.Fatalf("post without event: %d %v", st, err)
	}
	h.settle()
	if got := h.sb.Primero.Counters().Writes()["update"] - before; got != 0 {
		t.Errorf("an event-less delivery right after the engine's PATCH wrote %d times, want 0 (own echo)", got)
	}
	if res := h.in.Results(); res[len(res)-1].Reasons["own_echo"] != 1 {
		t.Errorf("last run's reasons %v, want own_echo 1", res[len(res)-1].Reasons)
	}

	// The very same webhook body again (a person pressing Sync twice,
	// Primero sending identical bytes): a new request, processed and
	// answered with one more PATCH.
	before = h.sb.Primero.Counters().Writes()["update"]
	h.post(readFixture(t, "primero_sync_webhook_minimal.json"), primero.EventCasePost)
	h.settle()
	if got := h.sb.Primero.Counters().Writes()["update"] - before; got != 1 {
		t.Errorf("identical body again: %d PATCHes, want 1", got)
	}

	// A second press through Primero is processed and answered again, and
	// a Primero update that fails is answered failed.
	before = h.sb.Primero.Counters().Writes()["update"]
	h.press(sandbox.ThaiCaseMinimal)
	h.settle()
	if got := h.sb.Primero.Counters().Writes()["update"] - before; got != 1 {
		t.Errorf("second press: %d PATCHes, want 1", got)
	}
	h.sb.Primero.InjectFault(primero.Fault{Method: http.MethodPatch, Path: "/api/v2/cases/" + sandbox.ThaiCaseMinimal, Kind: primero.Fault500, Times: 5})
	h.press(sandbox.ThaiCaseMinimal)
	h.settle()
	if c, _ := h.sb.Primero.Case(sandbox.ThaiCaseMinimal); c["sync_status"] != "failed" {
		t.Errorf("after a failed update, sync_status = %v, want failed", c["sync_status"])
	}
	if calls := h.in.Calls()["his"]; int64(calls) != h.sb.HIS.Counters().Requests()["GET /people/findOne"] {
		t.Errorf("engine made %d HIS calls, the fake HIS counted %v", calls, h.sb.HIS.Counters().Requests())
	}
}
