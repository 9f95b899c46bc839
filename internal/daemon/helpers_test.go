package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/daemon"
	"casesync/internal/sandbox"
	"casesync/internal/state"
	"casesync/internal/wire"
)

// deployment is the test's spec: Primero cases referred to OSCaR (the
// example deployment's mapping), against the sandbox's fakes.
type deployment struct {
	extraFilter string // one more filter, as CUE
	cursor      bool   // read incrementally
	cron        string
	inbox       string // trigger.inbox block, as CUE
	per         int    // page size
	chained     bool   // add pipeline "again", run after cases_to_oscar
	// branched adds pipeline "both", run after cases_to_oscar, whose
	// branches both_one and both_two read its one listing and skip every
	// record (reason not_this_branch).
	branched bool
}

func (dp deployment) text() string {
	per := dp.per
	if per == 0 {
		per = 20
	}
	var trigger []string
	if dp.cron != "" {
		trigger = append(trigger, fmt.Sprintf("cron: %q", dp.cron))
	}
	if dp.inbox != "" {
		trigger = append(trigger, "inbox: "+dp.inbox)
	}
	source := `{connector: "primero", path: "/api/v2/cases", records: ".data", key: ".id",
		get: {path: "/api/v2/cases/{$key}", records: "[.data]"}}`
	if dp.cursor {
		source = `{connector: "primero", path: "/api/v2/cases", records: ".data", key: ".id",
		query: last_updated_at: "{$cursor}.."
		cursor: {field: ".last_updated_at", initial: "2020-01-01T00:00:00Z"}
		get: {path: "/api/v2/cases/{$key}", records: "[.data]"}}`
	}
	again := ""
	if dp.chained {
		// create_only: the link ledger says every record exists, so the
		// chained copy writes nothing (a second upsert would be a second
		// OSCaR referral).
		again = `pipelines: again: _body & {trigger: after: ["cases_to_oscar"], upsert: mode: "create_only"}`
	}
	if dp.branched {
		again += `
pipelines: both: {
	trigger: after: ["cases_to_oscar"]
	source: _body.source
	branches: {
		both_one: _skipAll
		both_two: _skipAll
	}
}
_skipAll: {
	filter: [{expr: "false", reason: "not_this_branch"}]
	map:    _body.map
	upsert: _body.upsert
}`
	}
	return `package daemontest

secrets: ["PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD", "INBOX_SECRET"]

connectors: primero: {
	base_url: "http://127.0.0.1:1"
	auth: token_login: {
		path: "/api/v2/tokens"
		body: user: {user_name: {secret: "PRIMERO_USER"}, password: {secret: "PRIMERO_PASSWORD"}}
		token: ".token"
		ttl:   "50m"
	}
	pagination: page: {per: ` + fmt.Sprint(per) + `, total: ".metadata.total"}
}
connectors: oscar: {
	base_url: "http://127.0.0.1:1"
	auth: token_login: {
		path: "/api/v1/admin_auth/sign_in"
		body: {email: {secret: "OSCAR_EMAIL"}, password: {secret: "OSCAR_PASSWORD"}}
		send_back_headers: ["access-token", "client", "uid"]
		ttl: "24h"
	}
	concurrency: 8
	normalize: null_as_empty_string: true
}

lookups: {
	agency: rule: forward: "agency-{org}"
	oscar_service: {file: "oscar_service_names.json", on_miss: "default", default: "Not Specified"}
	risk: {values: {high: "high", medium: "medium", low: "low", no_action: "no action"}, on_miss: "null"}
}

pipelines: cases_to_oscar: _body & {
	trigger: {` + strings.Join(trigger, "\n\t\t") + `}
}
` + again + `
_body: {
	source: ` + source + `
	filter: [
		{expr: "record.consent_for_services == true", reason: "no_consent"},
		{expr: #"any(record.services_section ?? [], .service_response_type == "referral_to_oscar")"#, reason: "not_referred"},
		` + dp.extraFilter + `
	]
	map: {
		external_id: jq:         ".case_id"
		external_id_display: jq: ".case_id_display"
		given_name: jq:          ".name_first"
		family_name: jq:         ".name_last"
		gender: jq:              ".sex"
		date_of_birth: jq:       ".date_of_birth | ymd"
		level_of_risk: {jq: ".risk_level | lookup(\"risk\")", default: "no action"}
		organization_name: jq: "[.services_section[] | select(.service_response_type == \"referral_to_oscar\")][0].service_implementing_agency | rlookup(\"agency\")"
		external_case_worker_name: jq: ".owned_by"
		external_case_worker_mobile: {jq: ".owned_by_phone", default: "000000000"}
		is_referred: const: true
		services: {
			each: "[.services_section[] | select(.service_response_type == \"referral_to_oscar\")]"
			map: {
				uuid: jq: ".unique_id"
				name: jq: #"(.service_subtype // [])[0] | lookup("oscar_service")"#
			}
		}
	}
	upsert: {
		connector:  "oscar"
		key:        ".external_id"
		idempotent: true
		create: {method: "POST", path: "/api/v1/organizations/clients/upsert", body: jq: "{organization: .}"}
		link: system: "oscar"
	}
}
`
}

// writeSpec writes the deployment into dir with an editor's save: a
// temporary file renamed over the original.
func writeSpec(tb testing.TB, dir string, dp deployment) {
	tb.Helper()
	tmp := filepath.Join(dir, ".sync.cue.tmp")
	if err := os.WriteFile(tmp, []byte(dp.text()), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "sync.cue")); err != nil {
		tb.Fatal(err)
	}
}

// env is a running test deployment: fakes, spec folder, state, daemon.
type env struct {
	tb      testing.TB
	sb      *sandbox.Sandbox
	dir     string
	store   *state.Store
	urls    map[string]string
	d       *daemon.Daemon
	srv     *httptest.Server
	events  chan daemon.Event
	gate    *gate
	runErr  chan error
	cancel  context.CancelFunc
	stopped bool
}

type envOptions struct {
	cases     int
	dep       deployment
	statePath string
	sb        *sandbox.Sandbox
	clock     engine.Clock
	noRun     bool // build the daemon but do not Run it (no workers, no schedule)
	log       *slog.Logger
	// oscar, when set, stands in front of the OSCaR fake (a WAF that
	// refuses the login).
	oscar func(http.Handler) http.Handler
}

// newEnv starts fakes (unless given), writes the spec, and starts a daemon.
func newEnv(tb testing.TB, o envOptions) *env {
	tb.Helper()
	e := &env{tb: tb, dir: tb.TempDir(), events: make(chan daemon.Event, 10000), gate: newGate()}
	e.sb = o.sb
	if e.sb == nil {
		if o.cases == 0 {
			o.cases = 200
		}
		sb, err := sandbox.Start(sandbox.Options{Cases: o.cases, Clients: 10, Seed: 1})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(sb.Close)
		e.sb = sb
	}
	// Primero behind a gate, so a test can hold a listing page.
	primero := httptest.NewServer(e.gate.wrap(e.sb.Primero))
	tb.Cleanup(primero.Close)
	e.urls = map[string]string{"primero": primero.URL, "oscar": e.sb.URLs["oscar"]}
	if o.oscar != nil {
		oscar := httptest.NewServer(o.oscar(e.sb.Oscar))
		tb.Cleanup(oscar.Close)
		e.urls["oscar"] = oscar.URL
	}
	table, err := os.ReadFile(filepath.Join("..", "..", "specs", "example", "oscar_service_names.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "oscar_service_names.json"), table, 0o644); err != nil {
		tb.Fatal(err)
	}
	writeSpec(tb, e.dir, o.dep)
	if o.statePath == "" {
		o.statePath = filepath.Join(tb.TempDir(), "state.db")
	}
	e.store, err = state.Open(o.statePath)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.store.Close() })
	plan, err := e.load()
	if err != nil {
		tb.Fatal(err)
	}
	e.d, err = daemon.New(daemon.Config{
		Plan: plan,
		Load: e.load,
		Open: func(p *engine.Plan, observe func(string, string, time.Duration)) (*wire.Deployment, error) {
			return wire.Open(p, wire.Options{State: e.store, Secrets: e.sb, Clock: o.clock, REST: rest.Options{Observe: observe}})
		},
		Secrets: e.sb,
		State:   e.store,
		Clock:   o.clock,
		Log:     o.log,
		OnEvent: func(ev daemon.Event) {
			select {
			case e.events <- ev:
			default:
				panic("test event buffer full")
			}
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	e.srv = httptest.NewServer(e.d.Handler(daemon.AdminOptions{}))
	tb.Cleanup(e.srv.Close)
	if !o.noRun {
		e.run()
	}
	tb.Cleanup(e.stop)
	return e
}

func (e *env) load() (*engine.Plan, error) {
	p, err := spec.Load(e.dir, spec.Options{Cwd: e.dir})
	if err != nil {
		return nil, err
	}
	return p.WithBaseURLs(e.urls), nil
}

// run starts Daemon.Run.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.runErr = make(chan error, 1)
	go func() { e.runErr <- e.d.Run(ctx) }()
}

// stop cancels Run (as SIGTERM does) and waits for it to drain.
func (e *env) stop() {
	if e.stopped || e.cancel == nil {
		return
	}
	e.stopped = true
	e.gate.openAll()
	e.cancel()
	select {
	case err := <-e.runErr:
		if err != nil {
			e.tb.Errorf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		e.tb.Fatal("Run did not return within 60s of cancel")
	}
}

// waitFor returns the first event ok accepts, failing after 30 s.
func (e *env) waitFor(what string, ok func(daemon.Event) bool) daemon.Event {
	e.tb.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-e.events:
			if ok(ev) {
				return ev
			}
		case <-deadline:
			e.tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (e *env) waitKind(k daemon.EventKind) daemon.Event {
	e.tb.Helper()
	return e.waitFor(string(k), func(ev daemon.Event) bool { return ev.Kind == k })
}

func (e *env) post(path string, body string, hdr map[string]string) *http.Response {
	e.tb.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// oscarWrites is what the OSCaR fake itself counted.
func (e *env) oscarWrites() int64 { return e.sb.Oscar.Counters().TotalWrites() }

// gate holds Primero listing requests for one page number until opened.
type gate struct {
	mu      sync.Mutex
	page    string // "" = nothing held
	hit     chan struct{}
	open    chan struct{}
	release func()
	hitted  bool
}

func newGate() *gate { return &gate{release: func() {}} }

// hold makes listing requests for page wait; hit is closed when the first
// arrives, and release lets it (and every later one) through.
func (g *gate) hold(page int) (hit <-chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.page = fmt.Sprint(page)
	g.hit = make(chan struct{})
	open := make(chan struct{})
	g.open = open
	g.hitted = false
	g.release = sync.OnceFunc(func() { close(open) })
	return g.hit, g.release
}

func (g *gate) openAll() {
	g.mu.Lock()
	rel := g.release
	g.page = ""
	g.mu.Unlock()
	rel()
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		held := g.page != "" && r.Method == "GET" && r.URL.Path == "/api/v2/cases" && r.URL.Query().Get("page") == g.page
		var open chan struct{}
		if held {
			open = g.open
			if !g.hitted {
				g.hitted = true
				close(g.hit)
			}
		}
		g.mu.Unlock()
		if held {
			select {
			case <-open:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// externalIDs lists the OSCaR fake's referrals by external id, sorted.
func externalIDs(e *env) []string {
	var out []string
	for _, r := range e.sb.Oscar.Referrals() {
		if id, ok := r["external_id"].(string); ok && id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func slicesDiff(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("want %d ids, got %d (first want %v, first got %v)", len(want), len(got), head(want), head(got))
}

func head(s []string) []string { return s[:min(3, len(s))] }

func containsLine(text, prefix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
