package rest_test

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
)

// The rate limit holds at the server: 20 requests at 50/s (burst 1) span
// at least 19/50 s. Only the lower bound on the span is asserted (a loaded
// machine is slower, never faster), within the 10% band.
func TestLimits_RateHeldAtServer(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		writeJSON(w, 200, map[string]any{})
	})
	c, _ := newClient(t, connector(srv.URL, func(c *engine.Connector) {
		c.Spec.RateLimit = &engine.RateLimitSpec{PerSecond: 50, Burst: 1}
		c.Spec.Concurrency = 8
	}), nil)
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := c.Do(t.Context(), &rest.Call{Path: "/x"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(arrivals) != n {
		t.Fatalf("server saw %d requests, want %d", len(arrivals), n)
	}
	span := arrivals[len(arrivals)-1].Sub(arrivals[0])
	rate := float64(n-1) / span.Seconds()
	if rate > 50*1.1 {
		t.Errorf("observed %.1f req/s over %v, limit 50/s (+10%%)", rate, span)
	}
}

// The concurrency cap is never exceeded, counted at the server.
func TestLimits_ConcurrencyCapAtServer(t *testing.T) {
	var inflight, peak atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond) // server latency, so requests overlap
		inflight.Add(-1)
		writeJSON(w, 200, map[string]any{})
	})
	c, _ := newClient(t, connector(srv.URL, func(c *engine.Connector) { c.Spec.Concurrency = 3 }), nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.Do(t.Context(), &rest.Call{Path: "/x"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p < 1 || p > 3 {
		t.Errorf("peak in-flight requests at the server = %d, want 1..3", p)
	}
}

// Every pipeline using a connector gets the same Client from the Pool, so
// they share its login, rate limit and concurrency cap.
func TestPool(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{}) })
	plan := &engine.Plan{Connectors: map[string]*engine.Connector{
		"cases":    connector(srv.URL, func(c *engine.Connector) { c.Name = "cases" }),
		"services": connector(srv.URL, func(c *engine.Connector) { c.Name = "" }),
	}}
	p, err := rest.NewPool(plan, nil, rest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Get("cases") != p.Get("cases") || p.Get("cases") == p.Get("services") {
		t.Error("Get must return one shared client per connector")
	}
	if p.Get("nope") != nil {
		t.Error("Get of an unknown connector must be a nil interface")
	}
	if _, err := p.Get("services").Do(t.Context(), &rest.Call{Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if len(st) != 2 || st[0].Connector != "cases" || st[1].Connector != "services" || st[1].Requests != 1 {
		t.Errorf("Stats = %+v", st)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Get("cases").Do(t.Context(), &rest.Call{Path: "/x"}); !errors.Is(err, rest.ErrClosed) {
		t.Errorf("Do after Close: %v, want ErrClosed", err)
	}

	bad := &engine.Plan{Connectors: map[string]*engine.Connector{
		"keyed": connector(srv.URL, func(c *engine.Connector) {
			c.Auth.Spec = engine.AuthSpec{Header: &engine.HeaderAuth{Value: engine.Text{Secret: "MISSING_KEY"}}}
		}),
	}}
	if _, err := rest.NewPool(bad, secretMap{}, rest.Options{}); err == nil || engine.ClassOf(err) != engine.ClassConfig {
		t.Errorf("NewPool with a missing secret: err = %v, want a config error", err)
	}
}
