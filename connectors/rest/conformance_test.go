package rest_test

// The conformance suite (style §5): the connector, built from the shipped
// lib connector definitions by the real loader, against each faithful fake
// over real HTTP. It asserts on what the fakes counted, not on what the
// client believes.

import (
	"casesync/internal/testenv"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/fakes/faults"
	"casesync/internal/fakes/oscar"
	"casesync/internal/fakes/ping"
	"casesync/internal/fakes/primero"
)

// confPer is Primero's page size in the conformance plan, so a small seed
// spans several pages.
const confPer = 7

// confSecrets are the credentials the fakes accept by default.
var confSecrets = map[string]string{
	"PRIMERO_USER":          "openfn_cp_user",
	"PRIMERO_PASSWORD":      "primero-pass",
	"OSCAR_EMAIL":           oscar.DefaultEmail,
	"OSCAR_PASSWORD":        oscar.DefaultPassword,
	"PING_CLIENT_ID":        ping.DefaultClientID,
	"PING_USERNAME":         ping.DefaultUsername,
	"PING_PASSWORD":         ping.DefaultPassword,
	"PING_SUBSCRIPTION_KEY": ping.DefaultSubscriptionKey,
}

type confSecretMap map[string]string

func (s confSecretMap) Secret(name string) (string, bool) { v, ok := s[name]; return v, ok }

// confPlan loads a tiny deployment that takes its connectors from
// specs/lib (primero, oscar and ping), with Primero's page size cut to
// confPer.
func confPlan(tb testing.TB) *engine.Plan {
	tb.Helper()
	src := filepath.Join(testenv.RepoRoot(tb), "specs")
	dst := filepath.Join(tb.TempDir(), "specs")
	for _, sub := range []string{"cue.mod", "lib"} {
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
			if rel == filepath.Join("lib", "primero", "primero.cue") {
				const was = "pagination: page: {per: 500,"
				if !strings.Contains(string(b), was) {
					tb.Fatalf("%s no longer says %q; update confPlan", rel, was)
				}
				b = []byte(strings.Replace(string(b), was, fmt.Sprintf("pagination: page: {per: %d,", confPer), 1))
			}
			return os.WriteFile(out, b, 0o644)
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	imports := "\tprim \"casesync.example/lib/primero\"\n\tosc \"casesync.example/lib/oscar\"\n\tpng \"casesync.example/lib/ping\"\n"
	secrets := "prim.Secrets, osc.Secrets, png.Secrets"
	conns := "\tprimero: prim.Connector & {base_url: \"http://127.0.0.1:1\"}\n\toscar:   osc.Connector & {base_url: \"http://127.0.0.1:1\"}\n" +
		fmt.Sprintf("\tping: png.Connector & {base_url: \"http://127.0.0.1:1\", auth: token_login: path: %q}\n", ping.TokenPath)
	text := "package conformance\n\nimport (\n\t\"list\"\n\n" + imports + ")\n\n" +
		"name: \"conformance\"\n\nsecrets: list.Concat([" + secrets + "])\n\n" +
		"connectors: {\n" + conns + "}\n\n" +
		`pipelines: cases: {
	source: prim.Cases
	map: external_id: jq: ".case_id"
	upsert: osc.Upsert & {key: ".external_id"}
}
`
	dir := filepath.Join(dst, "conformance")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conformance.cue"), []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	plan, err := spec.Load(dir, spec.Options{})
	if err != nil {
		tb.Fatalf("load the conformance deployment:\n%s\n%v", text, err)
	}
	return plan
}

// confFake is one fake served over HTTP with its counters.
type confFake struct {
	name     string
	url      string
	counters *faults.Counters
	expire   func()
	login    string // the login endpoint as the counters name it
}

// confClient builds the named connector of plan against f, with secrets.
func confClient(tb testing.TB, plan *engine.Plan, f confFake, secrets map[string]string) *rest.Client {
	tb.Helper()
	plan = plan.WithBaseURLs(map[string]string{f.name: f.url})
	c, err := rest.New(plan.Connectors[f.name], confSecretMap(secrets), rest.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func confServe(tb testing.TB, h http.Handler) string {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// confRecords selects a top-level array member of a body.
func confRecords(member string) rest.RecordsFunc {
	return func(_ context.Context, body any) ([]any, error) {
		m, ok := body.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("body is %T, not an object", body)
		}
		arr, _ := m[member].([]any)
		return arr, nil
	}
}

// confCase is one system under test: how to start its fake, a cheap
// authenticated read, and a write it refuses.
type confCase struct {
	name   string
	start  func(tb testing.TB) confFake
	read   func() *rest.Call
	refuse func() *rest.Call
	// refusedStatus is what the fake answers refuse with.
	refusedStatus int
}

func confCases() []confCase {
	cs := []confCase{{
		name: "primero",
		start: func(tb testing.TB) confFake {
			s := primero.New(primero.Options{Cases: 3 * confPer, Seed: 3})
			tb.Cleanup(s.Close)
			return confFake{name: "primero", url: confServe(tb, s), counters: s.Counters(), expire: s.ExpireTokens, login: "POST /api/v2/tokens"}
		},
		read: func() *rest.Call {
			return &rest.Call{Method: http.MethodGet, Path: "/api/v2/cases", Query: map[string][]string{"per": {"1"}}, Idempotent: true}
		},
		// A subform row key outside the form: Primero's 422.
		refuse: func() *rest.Call {
			return &rest.Call{Method: http.MethodPost, Path: "/api/v2/cases",
				Body: map[string]any{"data": map[string]any{"module_id": "primeromodule-cp", "services_section": []any{map[string]any{"no_such_field": "x"}}}}}
		},
		refusedStatus: http.StatusUnprocessableEntity,
	}, {
		name: "oscar",
		start: func(tb testing.TB) confFake {
			s := oscar.New(oscar.Options{Clients: 12, Seed: 3})
			return confFake{name: "oscar", url: confServe(tb, s), counters: s.Counters(), expire: s.ExpireTokens, login: "POST /api/v1/admin_auth/sign_in"}
		},
		read: func() *rest.Call {
			return &rest.Call{Method: http.MethodGet, Path: "/api/v1/organizations/clients", Idempotent: true}
		},
		// An upsert without organization_name.
		refuse: func() *rest.Call {
			return &rest.Call{Method: http.MethodPost, Path: "/api/v1/organizations/clients/upsert", Idempotent: true,
				Body: map[string]any{"organization": map[string]any{"external_id": "conf-1"}}}
		},
		refusedStatus: http.StatusUnprocessableEntity,
	}}
	cs = append(cs, confCase{
		name: "ping",
		start: func(tb testing.TB) confFake {
			s := ping.New(ping.Options{Interventions: 23, Seed: 3, PageSize: 5})
			return confFake{name: "ping", url: confServe(tb, s), counters: s.Counters(), expire: s.ExpireTokens, login: "POST " + ping.TokenPath}
		},
		read: func() *rest.Call {
			return &rest.Call{Method: http.MethodPost, Path: ping.RetrievePath, Idempotent: true, Body: confPingRetrieve(ping.SHPPendingInterventions)}
		},
		// PING has no 422: what it cannot act on is a 400 with its own
		// message, here an unknown shipping process.
		refuse: func() *rest.Call {
			return &rest.Call{Method: http.MethodPost, Path: ping.RetrievePath, Idempotent: true, Body: confPingRetrieve("SHP-0000")}
		},
		refusedStatus: http.StatusBadRequest,
	})
	return cs
}

func confPingRetrieve(shp string) map[string]any {
	return map[string]any{"ShippingProcessId": shp, "PartnerId": ping.DefaultPartnerID, "InteropID": ping.DefaultInteropID, "APIVersion": "V3"}
}

// TestConformance_Auth: each shipped auth logs in once, its credentials
// carry later calls (Primero's bearer token, OSCaR's sent-back header set,
// PING's bearer token plus subscription key), and a refused password is an
// auth failure.
func TestConformance_Auth(t *testing.T) {
	plan := confPlan(t)
	for _, tc := range confCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.start(t)
			c := confClient(t, plan, f, confSecrets)
			for i := range 3 {
				resp, err := c.Do(t.Context(), tc.read())
				if err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				if resp.Status != http.StatusOK {
					t.Fatalf("call %d: status %d", i+1, resp.Status)
				}
			}
			if n := f.counters.Requests()[f.login]; n != 1 {
				t.Errorf("%s logged in %d times for three calls, want 1", tc.name, n)
			}

			bad := map[string]string{}
			for k, v := range confSecrets {
				bad[k] = v
			}
			for _, k := range []string{"PRIMERO_PASSWORD", "OSCAR_PASSWORD", "PING_PASSWORD"} {
				bad[k] = "wrong-" + bad[k]
			}
			_, err := confClient(t, plan, f, bad).Do(t.Context(), tc.read())
			if got := engine.ClassOf(err); got != engine.ClassAuth {
				t.Errorf("wrong password: class %q (%v), want auth", got, err)
			}
			if err != nil && strings.Contains(err.Error(), "wrong-") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	t.Run("ping-subscription-key", func(t *testing.T) {
		var tc confCase
		for _, c := range confCases() {
			if c.name == "ping" {
				tc = c
			}
		}
		f := tc.start(t)
		bad := map[string]string{}
		for k, v := range confSecrets {
			bad[k] = v
		}
		bad["PING_SUBSCRIPTION_KEY"] = strings.Repeat("0", 32)
		_, err := confClient(t, plan, f, bad).Do(t.Context(), tc.read())
		var re *engine.RemoteError
		if !errors.As(err, &re) || re.Status != http.StatusUnauthorized {
			t.Errorf("wrong subscription key: %v, want the gateway's 401", err)
		}
	})
}

// TestConformance_ReloginAfterExpiry: when the fake expires every token,
// the next call logs in again once and succeeds.
func TestConformance_ReloginAfterExpiry(t *testing.T) {
	plan := confPlan(t)
	for _, tc := range confCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.start(t)
			c := confClient(t, plan, f, confSecrets)
			if _, err := c.Do(t.Context(), tc.read()); err != nil {
				t.Fatal(err)
			}
			f.expire()
			for i := range 2 {
				if _, err := c.Do(t.Context(), tc.read()); err != nil {
					t.Fatalf("call %d after expiry: %v", i+1, err)
				}
			}
			if n := f.counters.Requests()[f.login]; n != 2 {
				t.Errorf("logins = %d, want 2 (one, then one after the expiry)", n)
			}
		})
	}
}

// TestConformance_PrimeroPages: a listing with several pages of per
// confPer reads every case once, agrees with the fake's total, and asks
// for each page once.
func TestConformance_PrimeroPages(t *testing.T) {
	plan := confPlan(t)
	const cases = 3*confPer + 2
	s := primero.New(primero.Options{Cases: cases, Seed: 5})
	t.Cleanup(s.Close)
	f := confFake{name: "primero", url: confServe(t, s), counters: s.Counters()}
	c := confClient(t, plan, f, confSecrets)

	seen := map[string]int{}
	pages := 0
	err := c.List(t.Context(), &rest.Call{Method: http.MethodGet, Path: "/api/v2/cases", Records: confRecords("data"), Idempotent: true},
		func(p *engine.Page) error {
			pages++
			if p.Number != pages {
				t.Errorf("page numbered %d, want %d", p.Number, pages)
			}
			if p.Total != cases {
				t.Errorf("page %d announces total %d, want %d", p.Number, p.Total, cases)
			}
			if len(p.Records) > confPer {
				t.Errorf("page %d has %d records, more than per %d", p.Number, len(p.Records), confPer)
			}
			for _, r := range p.Records {
				id, _ := r.(map[string]any)["id"].(string)
				seen[id]++
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	want := (cases + confPer - 1) / confPer
	if pages != want {
		t.Errorf("%d pages, want %d", pages, want)
	}
	if len(seen) != cases || len(s.Cases()) != cases {
		t.Errorf("read %d distinct cases, the fake holds %d, want %d", len(seen), len(s.Cases()), cases)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("case %s read %d times", id, n)
		}
	}
	if got := f.counters.Requests()["GET /api/v2/cases"]; got != int64(want) {
		t.Errorf("the fake served %d listing requests, want %d", got, want)
	}
}

// TestConformance_PingCursor: PING's body_cursor paging (PagingCookie and
// PageNumber sent back in the body) walks every pending intervention once.
func TestConformance_PingCursor(t *testing.T) {
	plan := confPlan(t)
	const rows, size = 23, 5
	s := ping.New(ping.Options{Interventions: rows, Seed: 7, PageSize: size})
	f := confFake{name: "ping", url: confServe(t, s), counters: s.Counters()}
	c := confClient(t, plan, f, confSecrets)
	seen := map[string]int{}
	pages := 0
	err := c.List(t.Context(), &rest.Call{Method: http.MethodPost, Path: ping.RetrievePath, Body: confPingRetrieve(ping.SHPPendingInterventions),
		Records: confRecords("Data"), Idempotent: true}, func(p *engine.Page) error {
		pages++
		for _, r := range p.Records {
			seen[fmt.Sprint(r.(map[string]any)["progres_lpinterventionid"])]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (rows + size - 1) / size; pages != want {
		t.Errorf("%d pages, want %d", pages, want)
	}
	if len(seen) != rows {
		t.Errorf("read %d distinct interventions, want %d: %v", len(seen), rows, seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("intervention %s read %d times", id, n)
		}
	}
}

// TestConformance_Refused: a write or request the fake refuses (422, or
// PING's 400) is a permanent failure carrying the status and the server's
// own message, is not retried, and is not marked maybe-applied.
func TestConformance_Refused(t *testing.T) {
	plan := confPlan(t)
	for _, tc := range confCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.start(t)
			c := confClient(t, plan, f, confSecrets)
			call := tc.refuse()
			_, err := c.Do(t.Context(), call)
			var re *engine.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *engine.RemoteError", err)
			}
			if re.Status != tc.refusedStatus || re.Class != engine.ClassPermanent || re.MaybeApplied {
				t.Errorf("status %d class %q maybe-applied %v, want %d permanent false: %v", re.Status, re.Class, re.MaybeApplied, tc.refusedStatus, err)
			}
			if re.Msg == "" {
				t.Errorf("no server message in %v", err)
			}
			if n := f.counters.Requests()[call.Method+" "+call.Path]; n != 1 {
				t.Errorf("the refused request was sent %d times, want 1", n)
			}
		})
	}
}
