package rest_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/mapping"
)

// TestPathHolesAreOneSegment: a record key in a path hole is escaped as one
// path segment, so "../" and "?" in it cannot reach another endpoint with
// the connector's credentials; {raw …} inserts a value as it is, for a spec
// that means it; query values are encoded.
func TestPathHolesAreOneSegment(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		mu.Unlock()
		writeJSON(w, 200, map[string]any{"data": map[string]any{"id": "x"}})
	})
	tpl := func(src string) *mapping.Template {
		tp, err := mapping.CompileTemplate(src, mapping.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	tests := []struct {
		path  string
		query []engine.QueryParam
		key   any
		want  string
	}{
		{"/api/v2/cases/{$key}", nil, "../../../__fake/requests?x=", "/api/v2/cases/..%2F..%2F..%2F__fake%2Frequests%3Fx=?"},
		{"/api/v2/cases/{$key}", nil, "..", "/api/v2/cases/%2E%2E?"},
		{"/api/v2/cases/{$key}/referrals", nil, ".", "/api/v2/cases/%2E/referrals?"},
		{"/api/v2/cases/{$key}", nil, "a b#c%2Fd", "/api/v2/cases/a%20b%23c%252Fd?"},
		{"/api/v2/cases/{$key}", nil, "https://evil.example/x", "/api/v2/cases/https:%2F%2Fevil.example%2Fx?"},
		{"/api/v2/cases/{$key}", nil, 1234, "/api/v2/cases/1234?"},
		{"/api/{raw $key}", nil, "v2/cases/7", "/api/v2/cases/7?"},
		{"/search", []engine.QueryParam{{Name: "q", Value: tpl("{$key}")}}, "a&b=c d", "/search?q=a%26b%3Dc+d"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			pl := &engine.Pipeline{Name: "p", Source: engine.PipelineSource{Connector: "api",
				Get: &engine.Request{Method: "GET", Path: tpl(tc.path), Query: tc.query}}}
			plan := &engine.Plan{Connectors: map[string]*engine.Connector{"api": connector(srv.URL)}, Pipelines: map[string]*engine.Pipeline{"p": pl}}
			pool, err := rest.NewPool(plan, secretMap{}, rest.Options{Sleep: (&sleeps{}).Sleep})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			src, err := pool.Source(pl)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			seen = nil
			mu.Unlock()
			if _, err := src.Get(context.Background(), &mapping.Vars{Key: tc.key}); err != nil {
				t.Fatalf("Get: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 || seen[0] != tc.want {
				t.Errorf("the server saw %q, want %q", seen, tc.want)
			}
		})
	}
}
