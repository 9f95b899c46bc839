package ping_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/faults"
	"casesync/internal/fakes/ping"
)

// rawPost sends an API call and returns the status, headers and body, or
// the transport error, without failing: the faults are the point.
func (c *client) rawPost(ctx context.Context, path string, body any) (int, http.Header, []byte, error) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ocp-Apim-Subscription-Key", c.key)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func TestServer_Faults(t *testing.T) {
	retrieve := retrieveBody(ping.SHPPendingInterventions)
	tests := []struct {
		name       string
		cfg        faults.Config
		failNext   int // FailNext(1, failNext) when set
		wantSt     int
		wantBody   map[string]any
		wantHeader string // Retry-After
		wantErr    bool
	}{
		{"500", faults.Config{Rate500: 1}, 0, http.StatusInternalServerError, map[string]any{"error": "injected fault"}, "", false},
		{"429 with Retry-After", faults.Config{Rate429: 1, RetryAfter: 7}, 0, http.StatusTooManyRequests,
			map[string]any{"statusCode": 429.0, "message": "Rate limit is exceeded."}, "7", false},
		{"503 from the backend", faults.Config{}, http.StatusServiceUnavailable, http.StatusServiceUnavailable,
			map[string]any{"statusCode": 503.0, "message": "Service Unavailable"}, "", false},
		{"429 from APIM quota", faults.Config{}, http.StatusTooManyRequests, http.StatusTooManyRequests,
			map[string]any{"statusCode": 429.0, "message": "Rate limit is exceeded. Try again in 1 seconds."}, "1", false},
		{"connection dropped before headers", faults.Config{RateDrop: 1}, 0, 0, nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, ping.Options{Interventions: 2})
			srv.Faults().Set(tc.cfg)
			if tc.failNext != 0 {
				srv.FailNext(1, tc.failNext)
			}
			st, hdr, body, err := c.rawPost(t.Context(), ping.RetrievePath, retrieve)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if srv.Counters().Dropped.Load() != 1 {
					t.Errorf("Dropped = %d", srv.Counters().Dropped.Load())
				}
				return
			}
			var got map[string]any
			json.Unmarshal(body, &got)
			if st != tc.wantSt {
				t.Errorf("status %d, want %d", st, tc.wantSt)
			}
			if diff := cmp.Diff(tc.wantBody, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if hdr.Get("Retry-After") != tc.wantHeader {
				t.Errorf("Retry-After %q, want %q", hdr.Get("Retry-After"), tc.wantHeader)
			}
			// Switched off again, the next call goes through.
			srv.Faults().Set(faults.Config{})
			if st, _, _, err := c.rawPost(t.Context(), ping.RetrievePath, retrieve); err != nil || st != http.StatusOK {
				t.Errorf("after the fault: %d %v", st, err)
			}
		})
	}

	t.Run("latency holds the answer back", func(t *testing.T) {
		srv, c := start(t, ping.Options{})
		srv.Faults().Set(faults.Config{Latency: time.Minute})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		// No body: net/http only notices a client hanging up once the body
		// is read, and the delay comes first; with a body the server (and
		// the test's Close) would sit out the whole minute.
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+ping.RetrievePath, nil)
		req.Header.Set("Ocp-Apim-Subscription-Key", c.key)
		if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the client's deadline", err)
		}
	})

	t.Run("connection dropped mid-body after the write", func(t *testing.T) {
		srv, c := start(t, ping.Options{Interventions: 2})
		id := srv.Pending()[0]["progres_lpinterventionid"].(string)
		srv.TruncateNext(1)
		st, _, _, err := c.rawPost(t.Context(), ingestPath(ping.DefaultPartnerID, "data"),
			syncBody(ping.SHPTransferStatus, ackItem(id, "125080002")))
		if err == nil {
			t.Fatalf("status %d and a whole body, want a cut-off body", st)
		}
		if st != http.StatusOK {
			t.Errorf("headers said %d, want 200 before the cut", st)
		}
		// The reply was lost but the write happened: a retry must be harmless.
		if n := len(srv.Pending()); n != 1 {
			t.Errorf("%d pending, want 1: the acknowledgement was applied", n)
		}
		if got := c.ingest(ping.SHPTransferStatus, ackItem(id, "125080002")); got[0] != ping.StateSucceeded {
			t.Errorf("retry: %v", got)
		}
		if w := srv.Counters().Writes(); !cmp.Equal(w, map[string]int64{"SHP-2748 update": 1, "SHP-2748 noop": 1}) {
			t.Errorf("writes %v", w)
		}
	})

	t.Run("requests are counted per endpoint", func(t *testing.T) {
		srv, c := start(t, ping.Options{})
		srv.FailNext(1, http.StatusServiceUnavailable)
		for range 3 {
			c.rawPost(t.Context(), ping.RetrievePath, retrieve)
		}
		got := srv.Counters().Requests()
		want := map[string]int64{"POST " + ping.TokenPath: 1, "POST " + ping.RetrievePath: 3}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("requests (-want +got):\n%s", diff)
		}
	})
}
