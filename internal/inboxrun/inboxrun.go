// Package inboxrun runs a deployment's webhook inboxes in process: the
// daemon with its inbox handler on a loopback listener, for the demo, the
// bench and the tests of inbox-driven deployments. It knows the daemon and
// the wiring, not any system.
package inboxrun

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/internal/daemon"
	"casesync/internal/state"
	"casesync/internal/wire"
)

// Options configure a Runner.
type Options struct {
	Plan    *engine.Plan
	Secrets engine.Secrets
	// StatePath is the state file (created when missing).
	StatePath string
	Log       *slog.Logger
	// REST are the connectors' options (Observe, Sleep in tests).
	REST rest.Options
}

// Runner is a running daemon serving the plan's inboxes.
type Runner struct {
	// URL is the inboxes' base URL (http://127.0.0.1:port).
	URL   string
	Store *state.Store

	d      *daemon.Daemon
	srv    *http.Server
	cancel context.CancelFunc
	done   chan error

	mu        sync.Mutex
	processed map[string]int // deliveries processed, by pipeline
	accepted  map[string]int // deliveries accepted (stored), by pipeline
	calls     map[string]int // connector calls, by connector
	results   []*engine.RunResult
	changed   chan struct{}
}

// Start opens the state, starts the daemon and listens on a loopback port.
func Start(o Options) (*Runner, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	st, err := state.Open(o.StatePath)
	if err != nil {
		return nil, err
	}
	r := &Runner{Store: st, processed: map[string]int{}, accepted: map[string]int{}, calls: map[string]int{}, changed: make(chan struct{}, 1), done: make(chan error, 1)}
	r.d, err = daemon.New(daemon.Config{
		Plan: o.Plan,
		Load: func() (*engine.Plan, error) { return o.Plan, nil },
		Open: func(p *engine.Plan, observe func(string, string, time.Duration)) (*wire.Deployment, error) {
			ro := o.REST
			ro.Observe = func(conn, call string, d time.Duration) {
				if call == "do" {
					r.mu.Lock()
					r.calls[conn]++
					r.mu.Unlock()
				}
				observe(conn, call, d)
			}
			return wire.Open(p, wire.Options{State: st, Secrets: o.Secrets, Log: o.Log, REST: ro})
		},
		Secrets:    o.Secrets,
		State:      st,
		Log:        o.Log,
		InboxBatch: 10,
		OnEvent:    r.onEvent,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, err
	}
	r.URL = "http://" + ln.Addr().String()
	r.srv = &http.Server{Handler: r.d.InboxHandler(), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.d.Run(ctx) }()
	return r, nil
}

func (r *Runner) onEvent(ev daemon.Event) {
	r.mu.Lock()
	switch ev.Kind {
	case daemon.EventInboxProcessed:
		r.processed[ev.Pipeline] += ev.N
	case daemon.EventInboxAccepted:
		r.accepted[ev.Pipeline] += ev.N
	case daemon.EventRunFinished:
		if ev.Result != nil {
			r.results = append(r.results, ev.Result)
		}
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Post sends one delivery and returns the inbox's status code.
func (r *Runner) Post(ctx context.Context, path string, header http.Header, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// WaitProcessed waits until pipeline has processed at least n deliveries
// in all, or timeout passes.
func (r *Runner) WaitProcessed(ctx context.Context, pipeline string, n int, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		r.mu.Lock()
		got := r.processed[pipeline]
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-r.changed:
		case <-t.C:
			return fmt.Errorf("%s processed %d deliveries of %d within %s", pipeline, got, n, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Settle waits until pipeline has processed every delivery it accepted,
// and the senders are quiet: quiet blocks until a sender has delivered
// what it queued (a webhook fired by one of the engine's own writes
// arrives after the run that wrote), and is called again after each wait.
func (r *Runner) Settle(ctx context.Context, pipeline string, quiet func(), timeout time.Duration) error {
	for {
		quiet()
		r.mu.Lock()
		want := r.accepted[pipeline]
		r.mu.Unlock()
		if err := r.WaitProcessed(ctx, pipeline, want, timeout); err != nil {
			return err
		}
		quiet()
		r.mu.Lock()
		again := r.accepted[pipeline]
		r.mu.Unlock()
		if again == want {
			return nil
		}
	}
}

// Calls is how many requests each connector made (logins aside).
func (r *Runner) Calls() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.calls))
	for k, v := range r.calls {
		out[k] = v
	}
	return out
}

// Admin serves the daemon's admin endpoints (/status, /metrics) for r.
func (r *Runner) Admin(req *http.Request) *http.Response {
	rec := httptest.NewRecorder()
	r.d.AdminHandler(daemon.AdminOptions{}).ServeHTTP(rec, req)
	return rec.Result()
}

// Results are the runs finished so far, oldest first.
func (r *Runner) Results() []*engine.RunResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*engine.RunResult(nil), r.results...)
}

// Close stops the daemon (draining its runs), the listener and the state.
func (r *Runner) Close() error {
	r.cancel()
	err := <-r.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx)
	if cerr := r.Store.Close(); err == nil {
		err = cerr
	}
	return err
}
