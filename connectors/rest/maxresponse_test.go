package rest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"casesync/connectors/rest"
	"casesync/engine"
)

// TestMaxResponseBytes: a body past the connector's limit fails its
// request with a permanent error that names the setting, whether the
// server declares its length or streams it; one within the limit decodes.
func TestMaxResponseBytes(t *testing.T) {
	big := `{"data": "` + strings.Repeat("x", 300<<10) + `"}`
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/chunked" {
			// No Content-Length: the limit must hold while reading.
			w.Header().Set("Transfer-Encoding", "chunked")
			for i := 0; i < len(big); i += 4096 {
				fmt.Fprint(w, big[i:min(i+4096, len(big))])
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		fmt.Fprint(w, big)
	})
	tests := []struct {
		name  string
		limit int64
		path  string
		want  string
	}{
		{"declared length past the limit", 64 << 10, "/sized", "response larger than connectors.remote.max_response_bytes (65536 bytes)"},
		{"streamed past the limit", 64 << 10, "/chunked", "response larger than connectors.remote.max_response_bytes (65536 bytes)"},
		{"within the limit", 1 << 20, "/chunked", ""},
		{"default limit", 0, "/sized", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newClient(t, connector(srv.URL, func(c *engine.Connector) { c.Spec.MaxResponseBytes = tc.limit }), secretMap{})
			resp, err := c.Do(context.Background(), &rest.Call{Path: tc.path})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if s, _ := resp.Body.(map[string]any)["data"].(string); len(s) != 300<<10 {
					t.Errorf("decoded %d bytes of data", len(s))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Do = %v, want %q", err, tc.want)
			}
			if classOf(err) != engine.ClassPermanent {
				t.Errorf("class %v, want permanent: the same request brings the same body", classOf(err))
			}
		})
	}
}
