package primero_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"casesync/internal/fakes/faults"
	"casesync/internal/fakes/primero"

	"github.com/google/go-cmp/cmp"
)

func TestServer_ScriptedFaults(t *testing.T) {
	tests := []struct {
		name   string
		fault  primero.Fault
		status int
		check  func(t *testing.T, r reply)
	}{
		{"500 with the envelope", primero.Fault{Kind: primero.Fault500}, 500, func(t *testing.T, r reply) {
			e := errorOf(t, r)
			if e["status"] != float64(500) || e["resource"] != "/api/v2/cases" {
				t.Errorf("error = %v", e)
			}
		}},
		{"503 configuration lock", primero.Fault{Kind: primero.Fault503}, 503, func(t *testing.T, r reply) {
			want := map[string]any{"status": float64(503), "resource": "/api/v2/cases", "message": "Service Unavailable", "detail": "Retry-After: 60"}
			if diff := cmp.Diff(want, errorOf(t, r)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if r.header.Get("Retry-After") != "60" {
				t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
			}
		}},
		{"429 with Retry-After N", primero.Fault{Kind: primero.Fault429, RetryAfter: 7}, 429, func(t *testing.T, r reply) {
			if r.header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
			}
		}},
		{"SQL error: 200, empty, total 0", primero.Fault{Kind: primero.FaultSQLError}, 200, func(t *testing.T, r reply) {
			if diff := cmp.Diff(map[string]any{"total": float64(0), "per": float64(20), "page": float64(1)}, r.json(t)["metadata"]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(r.list(t)) != 0 {
				t.Errorf("data not empty")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, primero.Options{Cases: 5})
			s.InjectFault(primero.Fault{Method: "GET", Path: "/api/v2/cases", Kind: tc.fault.Kind, RetryAfter: tc.fault.RetryAfter, Times: 1})
			r := call(t, srv, "GET", "/api/v2/cases", "openfn_cp_user", nil)
			wantStatus(t, r, tc.status)
			tc.check(t, r)
			// Times: 1, so the next call is served.
			wantStatus(t, call(t, srv, "GET", "/api/v2/cases", "openfn_cp_user", nil), http.StatusOK)
		})
	}
}

func TestServer_FaultSkipTimesAndMatching(t *testing.T) {
	s, srv := start(t, primero.Options{Cases: 3})
	s.InjectFault(primero.Fault{Method: "GET", Path: "/api/v2/cases/*/referrals", Kind: primero.Fault500, Skip: 1, Times: 2})
	id := s.Cases()[0]["id"].(string)
	var got []int
	for i := 0; i < 4; i++ {
		got = append(got, call(t, srv, "GET", "/api/v2/cases/"+id+"/referrals", "openfn_cp_user", nil).status)
	}
	if diff := cmp.Diff([]int{200, 500, 500, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	// Other paths and methods are untouched.
	wantStatus(t, call(t, srv, "GET", "/api/v2/cases/"+id, "openfn_cp_user", nil), http.StatusOK)
	s.ClearFaults()
	s.InjectFault(primero.Fault{Kind: primero.Fault500, Rate: 0.5})
	fails := 0
	for i := 0; i < 100; i++ {
		if call(t, srv, "GET", "/health", "", nil).status == 500 {
			fails++
		}
	}
	if fails == 0 || fails == 100 {
		t.Errorf("rate 0.5 failed %d of 100", fails)
	}
}

func TestServer_ConfigLockAndSQLErrorSwitches(t *testing.T) {
	s, srv := start(t, primero.Options{Cases: 5})
	s.SetConfigLock(true)
	for _, p := range []string{"/api/v2/cases", "/api/v2/users"} {
		r := call(t, srv, "GET", p, "openfn_cp_user", nil)
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") != "60" {
			t.Errorf("%s Retry-After = %q", p, r.header.Get("Retry-After"))
		}
	}
	wantStatus(t, call(t, srv, "POST", "/api/v2/tokens", "", `{"user":{"user_name":"openfn_cp_user","password":"primero-pass"}}`), http.StatusServiceUnavailable)
	wantStatus(t, call(t, srv, "GET", "/health", "", nil), http.StatusServiceUnavailable)
	s.SetConfigLock(false)
	wantStatus(t, call(t, srv, "GET", "/health", "", nil), http.StatusNoContent)

	s.SetSQLError(true)
	for _, p := range []string{"/api/v2/cases", "/api/v2/users"} {
		r := call(t, srv, "GET", p, "openfn_cp_user", nil)
		wantStatus(t, r, http.StatusOK)
		if got := r.json(t)["metadata"].(map[string]any)["total"]; got != float64(0) || len(r.list(t)) != 0 {
			t.Errorf("%s: total %v, %d items", p, got, len(r.list(t)))
		}
	}
	s.SetSQLError(false)
	if got, total := listIDs(t, srv, "openfn_cp_user", ""); len(got) != 5 || total != 5 {
		t.Errorf("after the switch: %d items, total %v", len(got), total)
	}
}

func TestServer_DroppedConnections(t *testing.T) {
	tests := []struct {
		name string
		kind primero.FaultKind
		// headers is whether the client sees a status before the failure.
		headers bool
	}{
		{"before headers", primero.FaultDropBeforeHeaders, false},
		{"mid-body", primero.FaultDropMidBody, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, primero.Options{Cases: 30})
			s.InjectFault(primero.Fault{Path: "/api/v2/cases", Kind: tc.kind, Times: 1})
			req, _ := http.NewRequest("GET", srv.URL+"/api/v2/cases?per=30", nil)
			req.SetBasicAuth("openfn_cp_user", pass)
			resp, err := srv.Client().Do(req)
			if !tc.headers {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d; want a transport error", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("headers not received: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.ContentLength <= 0 {
				t.Fatalf("status %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
			}
			if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("reading the body: %v, want unexpected EOF", err)
			}
		})
	}
}

func TestServer_FaultExpireTokenAndLatency(t *testing.T) {
	s, srv := start(t, primero.Options{})
	tok := bearerLogin(t, srv, "openfn_cp_user")
	s.InjectFault(primero.Fault{Path: "/api/v2/cases", Kind: primero.FaultExpireToken, Times: 1})
	r := callWith(t, srv, "GET", "/api/v2/cases", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
	wantStatus(t, r, http.StatusUnauthorized)

	s.InjectFault(primero.Fault{Path: "/api/v2/users", Kind: primero.FaultLatency, Latency: time.Hour, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v2/users", nil)
	req.SetBasicAuth("openfn_cp_user", pass)
	if resp, err := srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a request held for an hour answered %d", resp.StatusCode)
	}
	wantStatus(t, call(t, srv, "GET", "/api/v2/users", "openfn_cp_user", nil), http.StatusOK)
}

func TestServer_SharedInjectorAndCounters(t *testing.T) {
	s, srv := start(t, primero.Options{Faults: faults.Config{Rate500: 1}})
	wantStatus(t, call(t, srv, "GET", "/api/v2/cases", "openfn_cp_user", nil), http.StatusInternalServerError)
	if got := s.Counters().Injected500.Load(); got != 1 {
		t.Errorf("Injected500 = %d", got)
	}
	s.Faults().Set(faults.Config{})
	id := create(t, srv, nil)["id"].(string)
	wantStatus(t, call(t, srv, "PATCH", "/api/v2/cases/"+id, "openfn_cp_user", map[string]any{"data": map[string]any{"name_other": "x"}}), http.StatusOK)
	reqs := s.Counters().Requests()
	if reqs["GET /api/v2/cases"] != 1 || reqs["POST /api/v2/cases"] != 1 || reqs["PATCH /api/v2/cases/"+id] != 1 {
		t.Errorf("requests = %v", reqs)
	}
	if diff := cmp.Diff(map[string]int64{"create": 1, "update": 1}, s.Counters().Writes()); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	log := s.Requests()
	var got []string
	for _, r := range log {
		got = append(got, r.Method+" "+r.User+" "+http.StatusText(r.Status))
	}
	// The injector answers before the fake, so its 500 never reaches the log.
	want := []string{"POST openfn_cp_user OK", "PATCH openfn_cp_user OK"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request log (-want +got):\n%s", diff)
	}
}
