package primero_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"casesync/internal/fakes/primero"
)

const pass = "primero-pass"

// fixedNow is the test clock: after every seeded timestamp, so writes sort
// after seeds.
var fixedNow = time.Date(2025, 7, 15, 9, 30, 0, 0, time.UTC)

func fixedClock() time.Time { return fixedNow }

// start serves a fake Primero for one test.
func start(tb testing.TB, opts primero.Options) (*primero.Server, *httptest.Server) {
	tb.Helper()
	if opts.Now == nil {
		opts.Now = fixedClock
	}
	s := primero.New(opts)
	srv := httptest.NewServer(s)
	tb.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return s, srv
}

// reply is one HTTP answer.
type reply struct {
	status int
	header http.Header
	raw    []byte
}

// json decodes the body into a generic value.
func (r reply) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.raw, &m); err != nil {
		tb.Fatalf("body is not a JSON object (%v): %s", err, r.raw)
	}
	return m
}

func (r reply) data(tb testing.TB) map[string]any {
	tb.Helper()
	d, ok := r.json(tb)["data"].(map[string]any)
	if !ok {
		tb.Fatalf("no data object in %s", r.raw)
	}
	return d
}

func (r reply) list(tb testing.TB) []map[string]any {
	tb.Helper()
	arr, ok := r.json(tb)["data"].([]any)
	if !ok {
		tb.Fatalf("no data list in %s", r.raw)
	}
	out := make([]map[string]any, len(arr))
	for i, x := range arr {
		out[i] = x.(map[string]any)
	}
	return out
}

// call sends a request as user (HTTP Basic with the default password);
// user "" sends no credentials. body is marshalled unless it is a string.
func call(tb testing.TB, srv *httptest.Server, method, path, user string, body any) reply {
	tb.Helper()
	return callWith(tb, srv, method, path, body, func(r *http.Request) {
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
	})
}

func callWith(tb testing.TB, srv *httptest.Server, method, path string, body any, edit func(*http.Request)) reply {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if edit != nil {
		edit(req)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, raw: raw}
}

func wantStatus(tb testing.TB, r reply, want int) {
	tb.Helper()
	if r.status != want {
		tb.Fatalf("status = %d, want %d; body %s", r.status, want, r.raw)
	}
}

// errorOf returns the single entry of an error envelope.
func errorOf(tb testing.TB, r reply) map[string]any {
	tb.Helper()
	errs, ok := r.json(tb)["errors"].([]any)
	if !ok || len(errs) != 1 {
		tb.Fatalf("want one error in the envelope, got %s", r.raw)
	}
	return errs[0].(map[string]any)
}

// fixture reads a file of this package: a copy of a real API body under
// testdata/ (origins in testdata/README.md) or an embedded config/ file.
func fixture(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.FromSlash(rel))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func fixtureJSON(tb testing.TB, rel string, v any) {
	tb.Helper()
	if err := json.Unmarshal(fixture(tb, rel), v); err != nil {
		tb.Fatalf("%s: %v", rel, err)
	}
}

// newCase is a minimal valid Cambodia case body.
func newCase(extra map[string]any) map[string]any {
	d := map[string]any{
		"module_id": "primeromodule-cp", "name_first": "Tovi", "name_last": "Rasok", "sex": "female",
		"age": 9, "date_of_birth": "2016-02-01", "consent_for_services": true, "disclosure_other_orgs": true,
	}
	for k, v := range extra {
		d[k] = v
	}
	return map[string]any{"data": d}
}

// create posts a case as the integration user and returns its data.
func create(tb testing.TB, srv *httptest.Server, extra map[string]any) map[string]any {
	tb.Helper()
	r := call(tb, srv, "POST", "/api/v2/cases", "openfn_cp_user", newCase(extra))
	wantStatus(tb, r, http.StatusOK)
	return r.data(tb)
}

func ids(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i], _ = it["id"].(string)
	}
	return out
}
