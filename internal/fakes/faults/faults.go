// Package faults is the switchboard every fake server shares: injected
// latency, 500s, 429s with Retry-After, dropped connections, slow bodies, and
// the request/write counters that tests use as ground truth.
//
// It knows nothing of the engine: a fake must not share the engine's bugs.
package faults

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one set of fault switches. The zero value injects nothing.
type Config struct {
	Latency time.Duration // added to every request
	Jitter  time.Duration // uniform extra latency in [0, Jitter)
	Rate500 float64       // share of requests answered with a server error, 0..1
	// Status500 is the status of those server errors (default 500; 503
	// models a server down for maintenance, which promises nothing ran).
	Status500  int
	Rate429    float64       // share of requests answered 429
	RetryAfter int           // seconds sent in Retry-After with a 429 (default 1)
	RateDrop   float64       // share of connections closed without an answer
	SlowBody   time.Duration // pause between the headers and the body
	// RetryAfterHeader, when set, is sent verbatim as Retry-After instead
	// of RetryAfter's whole seconds. The header has no sub-second form, so
	// "0" is how a test has a client honour it without waiting a second.
	RetryAfterHeader string
	// Seed makes the random choices repeatable; 0 means a fixed default.
	Seed uint64
	// Methods, when set, limits the faults to requests with one of these
	// methods (a target whose writes fail while its listings answer).
	Methods []string
}

// Injector applies a Config to an http.Handler and counts what it sees.
// Every method is safe for concurrent use.
type Injector struct {
	cfg     atomic.Pointer[Config]
	mu      sync.Mutex
	rng     *rand.Rand
	counts  Counters
	enabled atomic.Bool
}

// New returns an Injector with cfg in force.
func New(cfg Config) *Injector {
	in := &Injector{}
	in.Set(cfg)
	return in
}

// Set replaces the fault switches; requests already in flight keep the old ones.
func (in *Injector) Set(cfg Config) {
	c := cfg
	in.cfg.Store(&c)
	seed := cfg.Seed
	if seed == 0 {
		seed = 42
	}
	in.mu.Lock()
	in.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	in.mu.Unlock()
}

// Get returns the switches in force.
func (in *Injector) Get() Config { return *in.cfg.Load() }

// Counters returns the live counters.
func (in *Injector) Counters() *Counters { return &in.counts }

func (in *Injector) roll() float64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.Float64()
}

// Wrap returns h behind the fault switches. Faults are decided before h runs,
// so an injected 500 or a dropped connection never reaches the fake's store:
// the write did not happen, exactly as a client must assume it may not have.
func (in *Injector) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := in.Get()
		in.counts.request(r.Method + " " + r.URL.Path)
		if len(cfg.Methods) > 0 && !slices.Contains(cfg.Methods, r.Method) {
			h.ServeHTTP(w, r)
			return
		}
		if d := cfg.Latency + jitter(in, cfg.Jitter); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if cfg.RateDrop > 0 && in.roll() < cfg.RateDrop {
			in.counts.Dropped.Add(1)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if cfg.Rate500 > 0 && in.roll() < cfg.Rate500 {
			in.counts.Injected500.Add(1)
			w.Header().Set("Content-Type", "application/json")
			st := cfg.Status500
			if st == 0 {
				st = http.StatusInternalServerError
			}
			w.WriteHeader(st)
			w.Write([]byte(`{"error":"injected fault"}`))
			return
		}
		if cfg.Rate429 > 0 && in.roll() < cfg.Rate429 {
			in.counts.Injected429.Add(1)
			ra := cfg.RetryAfter
			if ra <= 0 {
				ra = 1
			}
			hdr := strconv.Itoa(ra)
			if cfg.RetryAfterHeader != "" {
				hdr = cfg.RetryAfterHeader
			}
			w.Header().Set("Retry-After", hdr)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"statusCode":429,"message":"Rate limit is exceeded."}`))
			return
		}
		if cfg.SlowBody > 0 {
			w = &slowWriter{ResponseWriter: w, pause: cfg.SlowBody}
		}
		h.ServeHTTP(w, r)
	})
}

func jitter(in *Injector, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(in.roll() * float64(max))
}

type slowWriter struct {
	http.ResponseWriter
	pause  time.Duration
	paused bool
}

func (s *slowWriter) Write(b []byte) (int, error) {
	if !s.paused {
		s.paused = true
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(s.pause)
	}
	return s.ResponseWriter.Write(b)
}

// Counters are the fake's own record of what clients did: tests assert on
// them, never on what the client believes it did.
type Counters struct {
	mu          sync.Mutex
	requests    map[string]int64
	writes      map[string]int64
	served      map[string]int64
	Dropped     atomic.Int64
	Injected500 atomic.Int64
	Injected429 atomic.Int64
	Duplicates  atomic.Int64 // creates whose business key already existed
}

func (c *Counters) request(endpoint string) {
	c.mu.Lock()
	if c.requests == nil {
		c.requests = map[string]int64{}
	}
	c.requests[endpoint]++
	c.mu.Unlock()
}

// Write counts one applied write under kind (e.g. "create", "update").
func (c *Counters) Write(kind string) {
	c.mu.Lock()
	if c.writes == nil {
		c.writes = map[string]int64{}
	}
	c.writes[kind]++
	c.mu.Unlock()
}

// Served counts n records sent in one page of the listing endpoint
// ("GET /api/v2/cases"): what a reader of the listing actually received.
func (c *Counters) Served(endpoint string, n int) {
	c.mu.Lock()
	if c.served == nil {
		c.served = map[string]int64{}
	}
	c.served[endpoint] += int64(n)
	c.mu.Unlock()
}

// ServedRecords returns a copy of the per-endpoint listed-record counts.
func (c *Counters) ServedRecords() map[string]int64 { return c.copy(&c.served) }

// Requests returns a copy of the per-endpoint request counts ("GET /api/v2/cases").
func (c *Counters) Requests() map[string]int64 { return c.copy(&c.requests) }

// Writes returns a copy of the applied-write counts by kind.
func (c *Counters) Writes() map[string]int64 { return c.copy(&c.writes) }

// TotalWrites is the sum of every applied write.
func (c *Counters) TotalWrites() int64 {
	var n int64
	for _, v := range c.Writes() {
		n += v
	}
	return n
}

func (c *Counters) copy(m *map[string]int64) map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(*m))
	for k, v := range *m {
		out[k] = v
	}
	return out
}

// Reset zeroes every counter.
func (c *Counters) Reset() {
	c.mu.Lock()
	c.requests, c.writes, c.served = nil, nil, nil
	c.mu.Unlock()
	c.Dropped.Store(0)
	c.Injected500.Store(0)
	c.Injected429.Store(0)
	c.Duplicates.Store(0)
}
