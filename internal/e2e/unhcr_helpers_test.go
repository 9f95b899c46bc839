package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/fakes/ping"
	"casesync/internal/sandbox"
	"casesync/internal/state"
	"casesync/internal/testenv"
	"casesync/internal/wire"
)

// Helpers of the UNHCR (proGres ⇄ Primero through PING) end-to-end tests:
// specs/unhcr, loaded by the real loader, run by the real runner and REST
// pool against the sandbox's Primero and a PING fake (the sandbox's, or one
// with the test's switches), with a test clock that also drives the PING
// fake's asynchronous transactions.

// The pipelines of specs/unhcr.
const (
	unhcr11 = "progres_referrals_to_primero"
	unhcr12 = "primero_decisions_to_progres"
	unhcr21 = "primero_referrals_to_progres"
	unhcr22 = "progres_decisions_to_primero"
)

// unhcrClock is the runner's clock: it moves only when the runner sleeps
// (between polls) or a test advances it, so poll timeouts and retry
// backoffs take no wall time.
type unhcrClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *unhcrClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *unhcrClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// unhcrCall is one request the engine sent to PING.
type unhcrCall struct {
	Path string
	Body map[string]any
}

// unhcrRecorder sits in front of a PING fake and keeps every request body,
// so tests compare what went on the wire with the fixtures.
type unhcrRecorder struct {
	h     http.Handler
	mu    sync.Mutex
	calls []unhcrCall
}

func (r *unhcrRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(b))
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	r.mu.Lock()
	r.calls = append(r.calls, unhcrCall{Path: req.URL.Path, Body: body})
	r.mu.Unlock()
	r.h.ServeHTTP(w, req)
}

// bodies returns the bodies sent to path for a shipping process ("" for
// any), oldest first.
func (r *unhcrRecorder) bodies(path, shp string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, c := range r.calls {
		if c.Path != path || c.Body == nil {
			continue
		}
		if shp != "" && c.Body["ShippingProcessId"] != shp {
			continue
		}
		out = append(out, c.Body)
	}
	return out
}

func (r *unhcrRecorder) count(path, shp string) int { return len(r.bodies(path, shp)) }

// Paths of the PING API as the deployment's vars configure them.
const (
	unhcrRetrieve = ping.RetrievePath
	unhcrStatus   = ping.CheckStatusPath
	unhcrSync     = ping.IngestionPathPrefix + ping.DefaultPartnerID + "/data"
	unhcrAsync    = ping.IngestionPathPrefix + ping.DefaultPartnerID + "/asyncdata"
)

// unhcrOptions size the fakes of one test.
type unhcrOptions struct {
	Cases, Interventions, Decisions int
	// Ping, when set, replaces the sandbox's PING with one built from these
	// options (seeded like the sandbox's), for the fake's switches.
	Ping *ping.Options
	// Extra files added to the deployment (name → CUE text).
	Extra map[string]string
}

// unhcrEnv is specs/unhcr wired to the fakes.
type unhcrEnv struct {
	sb     *sandbox.Sandbox
	ping   *ping.Server
	rec    *unhcrRecorder
	dir    string
	plan   *engine.Plan
	store  *state.Store
	pool   *rest.Pool
	runner *engine.Runner
	clock  *unhcrClock
}

// unhcrSpecs copies specs/cue.mod, specs/lib and specs/unhcr into a
// temporary tree, adds extra files, and returns the deployment's folder.
func unhcrSpecs(tb testing.TB, extra map[string]string) string {
	tb.Helper()
	src := filepath.Join(testenv.RepoRoot(tb), "specs")
	dst := filepath.Join(tb.TempDir(), "specs")
	for _, sub := range []string{"cue.mod", "lib", "unhcr"} {
		unhcrCopyTree(tb, filepath.Join(src, sub), filepath.Join(dst, sub))
	}
	dir := filepath.Join(dst, "unhcr")
	for name, text := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func unhcrCopyTree(tb testing.TB, from, to string) {
	tb.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		out := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
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

// unhcrOpen starts the fakes and wires specs/unhcr to them.
func unhcrOpen(tb testing.TB, opts unhcrOptions) *unhcrEnv {
	tb.Helper()
	sb := runnerSandbox(tb, sandbox.Options{Cases: opts.Cases, Interventions: opts.Interventions, Decisions: opts.Decisions, Seed: 1})
	e := &unhcrEnv{sb: sb, ping: sb.Ping, clock: &unhcrClock{now: time.Now().UTC().Truncate(time.Second)}}
	if opts.Ping != nil {
		po := *opts.Ping
		po.Interventions, po.Decisions, po.Seed = opts.Interventions, opts.Decisions, 1
		e.ping = ping.New(po)
	}
	e.rec = &unhcrRecorder{h: e.ping}
	srv := httptest.NewServer(e.rec)
	tb.Cleanup(srv.Close)

	e.dir = unhcrSpecs(tb, opts.Extra)
	plan, err := spec.Load(e.dir, spec.Options{})
	if err != nil {
		tb.Fatalf("load specs/unhcr: %v", err)
	}
	e.plan = plan.WithBaseURLs(map[string]string{"primero": sb.URLs["primero"], "ping": srv.URL})
	if e.store, err = state.Open(filepath.Join(tb.TempDir(), "state.db")); err != nil {
		tb.Fatal(err)
	}
	dep, err := wire.Open(e.plan, wire.Options{State: e.store, Secrets: sb, Clock: e.clock})
	if err != nil {
		e.store.Close()
		tb.Fatal(err)
	}
	e.pool, e.runner = dep.Conns, dep.Runner
	// A poll's sleep moves the test clock and PING's transactions one
	// step (Queued → Processing → Succeeded | Failed); NeverFinish stops
	// them at Processing.
	e.runner.Sleep = func(ctx context.Context, d time.Duration) error {
		e.clock.Advance(d)
		e.ping.Advance()
		return ctx.Err()
	}
	tb.Cleanup(func() {
		e.pool.Close()
		e.store.Close()
	})
	return e
}

// sync runs one pipeline and fails the test if the run itself fails.
func (e *unhcrEnv) sync(tb testing.TB, pipeline string) *engine.RunResult {
	tb.Helper()
	res, err := e.runner.Sync(context.Background(), pipeline, engine.SyncOptions{Trigger: "test"})
	if err != nil {
		tb.Fatalf("sync %s: %v", pipeline, err)
	}
	return res
}

// later moves the clock past every retry backoff, so failed records are due.
func (e *unhcrEnv) later() { e.clock.Advance(7 * time.Hour) }

// dryRun previews a pipeline and returns its decisions by record key.
func (e *unhcrEnv) dryRun(tb testing.TB, pipeline string) map[string]engine.Decision {
	tb.Helper()
	var mu sync.Mutex
	out := map[string]engine.Decision{}
	_, err := e.runner.Sync(context.Background(), pipeline, engine.SyncOptions{Trigger: "test", DryRun: func(d engine.Decision) {
		mu.Lock()
		out[d.RecordKey] = d
		mu.Unlock()
	}})
	if err != nil {
		tb.Fatalf("dry-run %s: %v", pipeline, err)
	}
	return out
}

// writes is every write the fakes counted, by kind.
func (e *unhcrEnv) writes() map[string]int64 {
	out := map[string]int64{}
	for k, v := range e.sb.Primero.Counters().Writes() {
		out["primero "+k] += v
	}
	for k, v := range e.ping.Counters().Writes() {
		out["ping "+k] += v
	}
	return out
}

func (e *unhcrEnv) duplicates() int64 {
	return e.sb.Primero.Counters().Duplicates.Load() + e.ping.Counters().Duplicates.Load()
}

// casesByUNHCRNo maps unhcr_individual_no to the Primero cases holding it.
func (e *unhcrEnv) casesByUNHCRNo() map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, c := range e.sb.Primero.Cases() {
		if n, ok := c["unhcr_individual_no"].(string); ok {
			out[n] = append(out[n], c)
		}
	}
	return out
}

// unhcrFields flattens an ingestion item's Fields into name → value.
func unhcrFields(item map[string]any) map[string]any {
	out := map[string]any{}
	fs, _ := item["Fields"].([]any)
	for _, f := range fs {
		m, _ := f.(map[string]any)
		out[m["Name"].(string)] = m["Value"]
	}
	return out
}

// unhcrServices returns a case's services_section rows.
func unhcrServices(c map[string]any) []map[string]any {
	var out []map[string]any
	rows, _ := c["services_section"].([]any)
	for _, r := range rows {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// unhcrFixture reads one example body of a PING fixture file in
// testdata/ping (origins in its README).
func unhcrFixture(tb testing.TB, file, name string) map[string]any {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ping", file))
	if err != nil {
		tb.Fatal(err)
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		tb.Fatal(err)
	}
	ex, ok := all[name].(map[string]any)
	if !ok {
		tb.Fatalf("%s has no example %s", file, name)
	}
	out := map[string]any{}
	for k, v := range ex {
		if !strings.HasPrefix(k, "_") {
			out[k] = v
		}
	}
	return out
}

// unhcrFill replaces the fixture's "<…>" placeholders: a value whose text
// is a key of values becomes that value.
func unhcrFill(v any, values map[string]any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = unhcrFill(e, values)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unhcrFill(e, values)
		}
		return out
	case string:
		if r, ok := values[x]; ok {
			return r
		}
	}
	return v
}

// unhcrJSON renders v canonically for comparisons and messages.
func unhcrJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// unhcrSameJSON compares two JSON-shaped values.
func unhcrSameJSON(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	var x, y any
	_ = json.Unmarshal(ab, &x)
	_ = json.Unmarshal(bb, &y)
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// unhcrUNHCRReferred lists the Primero cases 2.1 must send: a service
// implemented by UNHCR that an active referral targets, as (case id,
// service id) keys "case#service", sorted.
func unhcrUNHCRReferred(sb *sandbox.Sandbox) []string {
	var out []string
	for _, c := range sb.Primero.Cases() {
		refs := sb.Primero.Referrals(c["id"].(string))
		for _, s := range unhcrServices(c) {
			if !strings.EqualFold(unhcrStr(s["service_implementing_agency"]), "UNHCR") {
				continue
			}
			for _, r := range refs {
				if r["service_record_id"] == s["unique_id"] && r["status"] != "revoked" {
					out = append(out, c["id"].(string)+"#"+s["unique_id"].(string))
					break
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func unhcrStr(v any) string {
	s, _ := v.(string)
	return s
}

// pingCall sends one request straight to the PING fake (not through the
// recorder), with a fresh B2C token, as a proGres-side actor would.
func (e *unhcrEnv) pingCall(tb testing.TB, path string, body any) map[string]any {
	tb.Helper()
	do := func(req *http.Request) map[string]any {
		rr := httptest.NewRecorder()
		e.ping.ServeHTTP(rr, req)
		var out map[string]any
		if err := json.Unmarshal(rr.Body.Bytes(), &out); err != nil || rr.Code != http.StatusOK {
			tb.Fatalf("%s: status %d: %s", req.URL.Path, rr.Code, rr.Body.String())
		}
		return out
	}
	form := url.Values{"grant_type": {"password"}, "client_id": {ping.DefaultClientID}, "username": {ping.DefaultUsername},
		"password": {ping.DefaultPassword}, "scope": {ping.DefaultScope}, "response_type": {"token"}}
	req := httptest.NewRequest(http.MethodPost, ping.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tok := do(req)["access_token"].(string)
	b, _ := json.Marshal(body)
	req = httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Ocp-Apim-Subscription-Key", ping.DefaultSubscriptionKey)
	return do(req)
}

// setPrimeroID writes progres_primeroid on an intervention, as proGres
// holds it after an earlier transfer.
func (e *unhcrEnv) setPrimeroID(tb testing.TB, lpid, caseID string) {
	tb.Helper()
	out := e.pingCall(tb, unhcrSync, map[string]any{
		"ShippingProcessId": ping.SHPTransferStatus, "InteropId": ping.DefaultInteropID,
		"Data": []any{map[string]any{"ExternalId": lpid, "Fields": []any{
			map[string]any{"Name": "progres_lpinterventionid", "Value": lpid},
			map[string]any{"Name": "progres_businessunit", "Value": ping.DefaultBusinessUnitID},
			map[string]any{"Name": "progres_primeroid", "Value": caseID},
		}}},
	})
	if st := out["Data"].([]any)[0].(map[string]any)["Status"]; st != ping.StateSucceeded {
		tb.Fatalf("set progres_primeroid: %v", out)
	}
}

// primeroUser reads a user from the Primero fake's API, as the
// integration user sees it.
func (e *unhcrEnv) primeroUser(tb testing.TB, name string) map[string]any {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.sb.URLs["primero"]+"/api/v2/users?user_name="+url.QueryEscape(name), nil)
	user, _ := e.sb.Secret("PRIMERO_USER")
	pass, _ := e.sb.Secret("PRIMERO_PASSWORD")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Data []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Data) != 1 {
		tb.Fatalf("user %s: %v (%d found)", name, err, len(out.Data))
	}
	return out.Data[0]
}
