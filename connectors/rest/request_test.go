package rest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/internal/version"
)

type seen struct {
	method, path string
	query        url.Values
	header       http.Header
	body         map[string]any
}

func capture(t *testing.T, into *seen) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*into = seen{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone()}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &into.body); err != nil {
				t.Errorf("body is not JSON: %v", err)
			}
		}
		writeJSON(w, 201, map[string]any{"id": "new-1"})
	})
	return mux
}

func TestDo_BuildsTheRequest(t *testing.T) {
	var got seen
	srv := serve(t, capture(t, &got).ServeHTTP)
	c, _ := newClient(t, connector(srv.URL+"/base/", func(c *engine.Connector) {
		c.Spec.Headers = map[string]engine.Text{"X-Tenant": {Value: "t1"}, "X-Key": {Secret: "API_KEY"}}
	}), testSecrets)
	resp, err := c.Do(t.Context(), &rest.Call{
		Method: "post", Path: "/api/items?fixed=1",
		Query:  url.Values{"since": {"2024-01-01T00:00:00+07:00.."}},
		Header: map[string]engine.Text{"X-Call": {Secret: "PASSWORD"}, "X-Tenant": {Value: "t2"}},
		Body:   map[string]any{"data": map[string]any{"name": "x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || resp.Body.(map[string]any)["id"] != "new-1" {
		t.Errorf("response = %+v", resp)
	}
	if got.method != "POST" || got.path != "/base/api/items" {
		t.Errorf("request line = %s %s", got.method, got.path)
	}
	wantQ := url.Values{"fixed": {"1"}, "since": {"2024-01-01T00:00:00+07:00.."}}
	if diff := cmp.Diff(wantQ, got.query); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	for k, v := range map[string]string{
		"X-Tenant": "t2", "X-Key": "key-12345", "X-Call": "pa55-word",
		"Content-Type": "application/json", "Accept": "application/json",
		"User-Agent": version.Get().UserAgent(),
	} {
		if g := got.header.Get(k); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if _, err := c.Do(t.Context(), &rest.Call{Path: "/x", Header: map[string]engine.Text{"X": {Secret: "UNSET"}}}); engine.ClassOf(err) != engine.ClassConfig {
		t.Errorf("missing call secret: err = %v, want a config error", err)
	}
}

func TestDo_NormalizesBodies(t *testing.T) {
	body := func() map[string]any {
		return map[string]any{"a": nil, "b": "x", "n": map[string]any{"c": nil, "d": 1.0},
			"l": []any{map[string]any{"e": nil}, nil}}
	}
	tests := []struct {
		name string
		norm engine.NormalizeSpec
		want map[string]any
	}{
		{"as written", engine.NormalizeSpec{}, body()},
		{"null_as_empty_string", engine.NormalizeSpec{NullAsEmptyString: true},
			map[string]any{"a": "", "b": "x", "n": map[string]any{"c": "", "d": 1.0}, "l": []any{map[string]any{"e": ""}, nil}}},
		{"drop_nulls", engine.NormalizeSpec{DropNulls: true},
			map[string]any{"b": "x", "n": map[string]any{"d": 1.0}, "l": []any{map[string]any{}, nil}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got seen
			srv := serve(t, capture(t, &got).ServeHTTP)
			c, _ := newClient(t, connector(srv.URL, func(c *engine.Connector) { c.Spec.Normalize = tc.norm }), nil)
			in := body()
			if _, err := c.Do(t.Context(), &rest.Call{Method: "PUT", Path: "/x", Body: in}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.body); diff != "" {
				t.Errorf("sent body (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(body(), in); diff != "" {
				t.Errorf("caller's body was modified (-want +got):\n%s", diff)
			}
		})
	}
}
