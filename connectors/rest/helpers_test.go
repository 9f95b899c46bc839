package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/mapping"
)

// secretMap is engine.Secrets from a map.
type secretMap map[string]string

func (s secretMap) Secret(name string) (string, bool) { v, ok := s[name]; return v, ok }

// fakeClock is a Clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 8, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// sleeps records the waits a client asks for and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// connector is a plan connector pointed at base with test-friendly limits.
func connector(base string, edit ...func(*engine.Connector)) *engine.Connector {
	c := &engine.Connector{
		Name:       "remote",
		Spec:       engine.ConnectorSpec{BaseURL: base, Concurrency: 4, Retry: engine.RetrySpec{MaxAttempts: 4}},
		Timeout:    5 * time.Second,
		Backoff:    100 * time.Millisecond,
		MaxBackoff: time.Second,
	}
	for _, e := range edit {
		e(c)
	}
	return c
}

// newClient builds a client with a fixed seed and recorded sleeps.
func newClient(tb testing.TB, c *engine.Connector, secrets engine.Secrets, opts ...func(*rest.Options)) (*rest.Client, *sleeps) {
	tb.Helper()
	s := &sleeps{}
	o := rest.Options{Rand: rand.New(rand.NewPCG(1, 2)), Sleep: s.Sleep, Clock: newFakeClock()}
	for _, e := range opts {
		e(&o)
	}
	cl, err := rest.New(c, secrets, o)
	if err != nil {
		tb.Fatalf("rest.New: %v", err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl, s
}

func serve(tb testing.TB, h http.HandlerFunc) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// resetConn drops the connection with a TCP reset, without a response.
func resetConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func jq(src string) *mapping.JQ { return mapping.MustJQ(src) }

func classOf(err error) engine.Class { return engine.ClassOf(err) }

func remoteErr(tb testing.TB, err error) *engine.RemoteError {
	tb.Helper()
	re, ok := asRemote(err)
	if !ok {
		tb.Fatalf("want *engine.RemoteError, got %T: %v", err, err)
	}
	return re
}

func asRemote(err error) (*engine.RemoteError, bool) {
	var re *engine.RemoteError
	ok := errors.As(err, &re)
	return re, ok
}
