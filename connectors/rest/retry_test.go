package rest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/connectors/rest"
	"casesync/engine"
)

func TestDo_ResilienceAndClasses(t *testing.T) {
	retryDate := newFakeClock().Now().Add(30 * time.Second).Format(http.TimeFormat)
	block := func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection only once the body is read.
		io.Copy(io.Discard, r.Body)
		select { // hold the request until the client gives up on it
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	tests := []struct {
		name string
		call rest.Call
		// respond answers the n-th request (1-based).
		respond  func(w http.ResponseWriter, r *http.Request, n int)
		timeout  time.Duration
		wantReqs int32
		// wantSleeps are exact waits; maxSleep bounds jittered ones.
		wantSleeps []time.Duration
		maxSleep   time.Duration
		nSleeps    int
		wantErr    *engine.RemoteError // nil: success; Err is not compared
	}{
		{
			name: "500 then 200 on GET is retried",
			call: rest.Call{Method: "GET", Path: "/x"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeJSON(w, 500, map[string]any{"error": "boom"})
					return
				}
				writeJSON(w, 200, map[string]any{"ok": true})
			},
			wantReqs: 2, maxSleep: 100 * time.Millisecond, nSleeps: 1,
		},
		{
			name: "500 on a non-idempotent POST is not repeated",
			call: rest.Call{Method: "POST", Path: "/x", Body: map[string]any{"a": 1}},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 500, map[string]any{"errors": []any{map[string]any{"status": 500, "message": "Internal error", "detail": "PG::UniqueViolation: Key (name)=(Jane)"}}})
			},
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassRetryable, Status: 500, Method: "POST", Path: "/x", Msg: "Internal error", MaybeApplied: true},
		},
		{
			name: "500 on an idempotent POST is retried",
			call: rest.Call{Method: "POST", Path: "/x", Body: map[string]any{"a": 1}, Idempotent: true},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n < 3 {
					w.WriteHeader(502)
					return
				}
				writeJSON(w, 200, map[string]any{})
			},
			wantReqs: 3, maxSleep: 200 * time.Millisecond, nSleeps: 2,
		},
		{
			name: "500 every time exhausts the attempts",
			call: rest.Call{Path: "/x"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 500, map[string]any{"message": "down"})
			},
			wantReqs: 4, maxSleep: 800 * time.Millisecond, nSleeps: 3,
			wantErr: &engine.RemoteError{Class: engine.ClassRetryable, Status: 500, Method: "GET", Path: "/x", Msg: "down"},
		},
		{
			name: "429 with Retry-After seconds",
			call: rest.Call{Method: "POST", Path: "/x", Body: map[string]any{}},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", "7")
					writeJSON(w, 429, map[string]any{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 7 seconds."})
					return
				}
				writeJSON(w, 200, map[string]any{})
			},
			wantReqs: 2, wantSleeps: []time.Duration{7 * time.Second},
		},
		{
			name: "429 with Retry-After as an HTTP date",
			call: rest.Call{Path: "/x"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", retryDate)
					w.WriteHeader(429)
					return
				}
				writeJSON(w, 200, map[string]any{})
			},
			wantReqs: 2, wantSleeps: []time.Duration{30 * time.Second},
		},
		{
			name: "429 without Retry-After backs off",
			call: rest.Call{Path: "/x"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Content-Type", "text/plain")
					w.WriteHeader(429)
					w.Write([]byte("Retry later\n"))
					return
				}
				writeJSON(w, 200, map[string]any{})
			},
			wantReqs: 2, maxSleep: 100 * time.Millisecond, nSleeps: 1,
		},
		{
			name: "Retry-After beyond the cap is handed to the runner",
			call: rest.Call{Path: "/x"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(429)
			},
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassRetryable, Status: 429, Method: "GET", Path: "/x", RetryAfter: time.Hour},
		},
		{
			name: "503 with Retry-After on a POST is retried",
			call: rest.Call{Method: "POST", Path: "/x", Body: map[string]any{}},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", "60")
					writeJSON(w, 503, map[string]any{"errors": []any{map[string]any{"status": 503, "message": "Service Unavailable", "detail": "Retry-After: 60"}}})
					return
				}
				writeJSON(w, 200, map[string]any{})
			},
			wantReqs: 2, wantSleeps: []time.Duration{60 * time.Second},
		},
		{
			name: "503 without Retry-After on a POST is retried: the server did not act",
			call: rest.Call{Method: "POST", Path: "/x", Body: map[string]any{}},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeJSON(w, 503, map[string]any{"error": "down for maintenance"})
					return
				}
				writeJSON(w, 200, map[string]any{})
			},
			wantReqs: 2, nSleeps: 1, maxSleep: time.Minute,
		},
		{
			name: "502 on a POST is not repeated: the upstream may have acted",
			call: rest.Call{Method: "POST", Path: "/x", Body: map[string]any{}},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 502, map[string]any{"error": "bad gateway"})
			},
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassRetryable, Status: 502, Method: "POST", Path: "/x", Msg: "bad gateway", MaybeApplied: true},
		},
		{
			name: "connection reset on GET is retried",
			call: rest.Call{Path: "/x"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					resetConn(w)
					return
				}
				writeJSON(w, 200, map[string]any{})
			},
			wantReqs: 2, maxSleep: 100 * time.Millisecond, nSleeps: 1,
		},
		{
			name: "connection reset on a non-idempotent POST may have applied",
			call: rest.Call{Method: "POST", Path: "/x", Body: map[string]any{"a": 1}},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				resetConn(w)
			},
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassRetryable, Method: "POST", Path: "/x", MaybeApplied: true},
		},
		{
			name: "timeout on GET is retried",
			call: rest.Call{Path: "/x"}, timeout: 100 * time.Millisecond,
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					block(w, r)
					return
				}
				writeJSON(w, 200, map[string]any{})
			},
			wantReqs: 2, maxSleep: 100 * time.Millisecond, nSleeps: 1,
		},
		{
			name: "timeout on a non-idempotent PUT may have applied",
			call: rest.Call{Method: "PUT", Path: "/x", Body: map[string]any{}}, timeout: 100 * time.Millisecond,
			respond:  func(w http.ResponseWriter, r *http.Request, n int) { block(w, r) },
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassRetryable, Method: "PUT", Path: "/x", Msg: "no response within 100ms", MaybeApplied: true},
		},
		{
			name: "404 is permanent and keeps the server's message",
			call: rest.Call{Path: "/api/v2/cases/abc"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 404, map[string]any{"errors": []any{map[string]any{"status": 404, "resource": "/api/v2/cases/abc", "message": "Not Found", "detail": "Couldn't find Child with 'id'=abc"}}})
			},
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassPermanent, Status: 404, Method: "GET", Path: "/api/v2/cases/abc", Msg: "Not Found: Couldn't find Child with … =…"},
		},
		{
			name: "422 keeps the JSON-pointer list, not the record",
			call: rest.Call{Method: "POST", Path: "/cases", Body: map[string]any{"data": map[string]any{"name": "Jane", "age": "x"}}},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 422, map[string]any{"errors": []any{map[string]any{"status": 422, "message": "Invalid Record JSON", "detail": []any{"/age", "/services_section/0/unique_id"}}}})
			},
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassPermanent, Status: 422, Method: "POST", Path: "/cases", Msg: "Invalid Record JSON: /age, /services_section/0/unique_id"},
		},
		{
			name: "403 is an auth failure",
			call: rest.Call{Path: "/x"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 403, map[string]any{"errors": []any{map[string]any{"status": 403, "message": "Forbidden"}}})
			},
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassAuth, Status: 403, Method: "GET", Path: "/x", Msg: "Forbidden"},
		},
		{
			name: "401 with static credentials is an auth failure at once",
			call: rest.Call{Path: "/x"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 401, map[string]any{"statusCode": 401, "message": "Access denied due to invalid subscription key."})
			},
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassAuth, Status: 401, Method: "GET", Path: "/x", Msg: "Access denied due to invalid subscription key."},
		},
		{
			name: "a 2xx that is not JSON is permanent",
			call: rest.Call{Path: "/x"},
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html><body>Sign in</body></html>"))
			},
			wantReqs: 1,
			wantErr:  &engine.RemoteError{Class: engine.ClassPermanent, Status: 200, Method: "GET", Path: "/x", Msg: "non-JSON response"},
		},
		{
			name:     "204 has no body",
			call:     rest.Call{Method: "DELETE", Path: "/x"},
			respond:  func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(204) },
			wantReqs: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reqs atomic.Int32
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) { tc.respond(w, r, int(reqs.Add(1))) })
			c, sl := newClient(t, connector(srv.URL, func(c *engine.Connector) {
				if tc.timeout > 0 {
					c.Timeout = tc.timeout
				}
			}), nil)
			call := tc.call
			resp, err := c.Do(t.Context(), &call)
			if got := reqs.Load(); got != tc.wantReqs {
				t.Errorf("server saw %d requests, want %d", got, tc.wantReqs)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if resp.Status/100 != 2 {
					t.Errorf("status %d", resp.Status)
				}
			} else {
				re := remoteErr(t, err)
				got := *re
				// The decoded body is for classify rules; its content is
				// the server's, tested in classify's own tests.
				got.Err, got.Body = nil, nil
				if diff := cmp.Diff(*tc.wantErr, got); diff != "" {
					t.Errorf("error (-want +got):\n%s\n(%v)", diff, err)
				}
			}
			waits := sl.Waits()
			if tc.wantSleeps != nil {
				if diff := cmp.Diff(tc.wantSleeps, waits); diff != "" {
					t.Errorf("waits (-want +got):\n%s", diff)
				}
			} else if len(waits) != tc.nSleeps {
				t.Errorf("waits = %v, want %d", waits, tc.nSleeps)
			}
			for _, d := range waits {
				if tc.maxSleep > 0 && (d < 0 || d > tc.maxSleep) {
					t.Errorf("backoff wait %v outside [0, %v]", d, tc.maxSleep)
				}
			}
			if st := c.Stats(); st.Requests != int64(tc.wantReqs) || st.Retries != int64(len(waits)) {
				t.Errorf("stats: %+v; want %d requests, %d retries", st, tc.wantReqs, len(waits))
			}
		})
	}
}

// A request that never connected certainly did not apply, so even a
// non-idempotent write is retried.
func TestDo_DialErrorRetriesEvenAWrite(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there now
	c, sl := newClient(t, connector(base), nil)
	_, err := c.Do(t.Context(), &rest.Call{Method: "POST", Path: "/x", Body: map[string]any{}})
	re := remoteErr(t, err)
	if re.MaybeApplied || re.Class != engine.ClassRetryable {
		t.Errorf("err = %+v, want retryable and not MaybeApplied", re)
	}
	if n := len(sl.Waits()); n != 3 {
		t.Errorf("retries = %d, want 3 (max_attempts 4)", n)
	}
	if st := c.Stats(); st.Requests != 4 {
		t.Errorf("requests = %d, want 4", st.Requests)
	}
}

func TestDo_CallerCancelStopsRetrying(t *testing.T) {
	var reqs atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { reqs.Add(1); w.WriteHeader(500) })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c, _ := newClient(t, connector(srv.URL), nil, func(o *rest.Options) {
		o.Sleep = func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() }
	})
	_, err := c.Do(ctx, &rest.Call{Path: "/x"})
	if !errors.Is(err, context.Canceled) || reqs.Load() != 1 {
		t.Errorf("err = %v after %d requests; want context.Canceled after 1", err, reqs.Load())
	}
}
