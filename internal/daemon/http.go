package daemon

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"casesync/engine"
	"casesync/engine/spec"
)

// The daemon's HTTP API:
//
//	GET  /healthz                 the process is up
//	GET  /readyz                  a plan is loaded and the state is open
//	GET  /status                  JSON: pipelines, cursors, runs, queues, reloads   (admin)
//	GET  /metrics                 Prometheus text format                           (admin)
//	GET  /                        read-only HTML status page for admins            (admin)
//	POST /pipelines/{name}/run    start a manual run (202, 404, 409)               (admin)
//	POST <trigger.inbox.path>     webhook deliveries of each inbox                 (inbox)
//
// engine run serves the inbox and the admin endpoints on separate
// listeners (InboxHandler, AdminHandler), so the inbox can be exposed to a
// sender while the admin side stays on loopback or behind a token. Inbox
// paths come from the running plan, so a reload adds and removes them
// without restarting the server.

// Handler serves everything on one listener, the admin endpoints guarded
// by o.
func (d *Daemon) Handler(o AdminOptions) http.Handler { return d.handler(true, true, o) }

// InboxHandler serves the inboxes, /healthz and /readyz.
func (d *Daemon) InboxHandler() http.Handler { return d.handler(true, false, AdminOptions{}) }

// AdminHandler serves the admin endpoints, /healthz and /readyz.
func (d *Daemon) AdminHandler(o AdminOptions) http.Handler { return d.handler(false, true, o) }

func (d *Daemon) handler(inboxes, admin bool, o AdminOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !d.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	if admin {
		g := o.guard
		mux.Handle("GET /status", g(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st, err := d.Status(r.Context())
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, st)
		})))
		mux.Handle("GET /metrics", g(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			d.m.reg.WriteTo(w)
		})))
		// A browser on the admin's machine must not be tricked into starting
		// runs by another site: refuse cross-origin POSTs.
		mux.Handle("POST /pipelines/{name}/run", g(http.NewCrossOriginProtection().Handler(http.HandlerFunc(d.serveManualRun))))
		mux.Handle("GET /{$}", g(http.HandlerFunc(d.servePage)))
	}
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inboxes {
			if in, ok := d.cur.Load().inboxes[r.URL.Path]; ok {
				d.serveInbox(w, r, in)
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
}

// reservedPath reports whether an inbox path would shadow an endpoint.
func reservedPath(p string) bool {
	switch p {
	case "/", "/healthz", "/readyz", "/status", "/metrics":
		return true
	}
	return strings.HasPrefix(p, "/pipelines/")
}

func (d *Daemon) serveManualRun(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := d.Trigger(name, "manual", false)
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "started", "pipeline": name})
	case errors.Is(err, errUnknown):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrRunning):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error(), "pipeline": name})
	case errors.Is(err, ErrManualOff):
		writeJSON(w, http.StatusForbidden, map[string]string{"error": err.Error(), "pipeline": name})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Status is the /status document.
type Status struct {
	Deployment string           `json:"deployment"`
	SpecHash   string           `json:"spec_hash"`
	LoadedAt   time.Time        `json:"loaded_at"`
	Started    time.Time        `json:"started"`
	Ready      bool             `json:"ready"`
	Reloads    int64            `json:"reloads"`
	Failures   int64            `json:"reload_failures"`
	LastError  *ReloadError     `json:"last_reload_error"`
	Pipelines  []PipelineStatus `json:"pipelines"`
}

// ReloadError is the last rejected reload, with the problems' positions.
type ReloadError struct {
	At       time.Time     `json:"at"`
	Error    string        `json:"error"`
	Problems spec.Problems `json:"problems,omitempty"`
	Paths    []string      `json:"paths,omitempty"`
}

// PipelineStatus is one pipeline in /status.
type PipelineStatus struct {
	Name          string      `json:"name"`
	Description   string      `json:"description,omitempty"`
	Cron          string      `json:"cron,omitempty"`
	After         []string    `json:"after,omitempty"`
	InboxPath     string      `json:"inbox_path,omitempty"`
	Manual        bool        `json:"manual"`
	NextRun       *time.Time  `json:"next_run,omitempty"`
	Running       *RunningRun `json:"running,omitempty"`
	Cursor        string      `json:"cursor,omitempty"`
	CursorUpdated *time.Time  `json:"cursor_updated,omitempty"`
	LastRun       *LastRun    `json:"last_run,omitempty"`
	RetryQueued   int         `json:"retry_queued"`
	RetryParked   int         `json:"retry_parked"`
	InboxPending  *int64      `json:"inbox_pending,omitempty"`
}

// RunningRun is a run in flight.
type RunningRun struct {
	Trigger  string    `json:"trigger"`
	Started  time.Time `json:"started"`
	SpecHash string    `json:"spec_hash"`
}

// LastRun is a pipeline's latest run.
type LastRun struct {
	ID       int64         `json:"id"`
	Trigger  string        `json:"trigger"`
	Status   string        `json:"status"`
	Started  time.Time     `json:"started"`
	Finished *time.Time    `json:"finished,omitempty"`
	SpecHash string        `json:"spec_hash"`
	Counts   engine.Counts `json:"counts"`
	Error    string        `json:"error,omitempty"`
}

// Status reads the running plan, the state and the schedule.
func (d *Daemon) Status(ctx context.Context) (*Status, error) {
	b := d.cur.Load()
	stats, err := d.cfg.State.Stats(ctx)
	if err != nil {
		return nil, err
	}
	next := d.NextRuns()
	d.mu.Lock()
	ri := d.reloadInfo
	d.mu.Unlock()
	st := &Status{Deployment: b.plan.Name, SpecHash: b.plan.Hash, LoadedAt: ri.loadedAt, Started: d.started, Ready: d.Ready(),
		Reloads: ri.count, Failures: ri.failures}
	if ri.lastErr != "" {
		st.LastError = &ReloadError{At: ri.lastErrAt, Error: ri.lastErr, Problems: ri.problems, Paths: ri.lastPaths}
	}
	names := slices.Clone(b.plan.Order)
	for name := range stats {
		if _, ok := b.plan.Pipelines[name]; !ok {
			names = append(names, name) // known to the state, gone from the spec
		}
	}
	for _, name := range names {
		ps := PipelineStatus{Name: name}
		if p, ok := b.plan.Pipelines[name]; ok {
			t := p.Spec.Trigger
			ps.Description, ps.Cron, ps.After, ps.Manual = p.Spec.Description, t.Cron, t.After, t.Manual
			if p.Inbox != nil {
				ps.InboxPath = p.Inbox.Path
				n := d.slot(name).pending.Load()
				ps.InboxPending = &n
			}
		}
		if t, ok := next[name]; ok {
			ps.NextRun = &t
		}
		if ri := d.slot(name).running.Load(); ri != nil {
			ps.Running = &RunningRun{Trigger: ri.Trigger, Started: ri.Started, SpecHash: ri.Hash}
		}
		if s, ok := stats[name]; ok {
			if s.HasCursor {
				ps.Cursor = s.Cursor
				t := s.CursorUpdated
				ps.CursorUpdated = &t
			}
			if s.HasRun {
				r := s.LastRun
				lr := &LastRun{ID: r.ID, Trigger: r.Trigger, Status: r.Status, Started: r.Started, SpecHash: r.SpecHash, Counts: r.Counts, Error: r.Error}
				if !r.Finished.IsZero() {
					f := r.Finished
					lr.Finished = &f
				}
				ps.LastRun = lr
			}
			ps.RetryQueued, ps.RetryParked = s.Queued, s.Parked
		}
		st.Pipelines = append(st.Pipelines, ps)
	}
	return st, nil
}

//go:embed status.html
var pageHTML string

var pageTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
}).Parse(pageHTML))

func (d *Daemon) servePage(w http.ResponseWriter, r *http.Request) {
	st, err := d.Status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, st); err != nil {
		d.log.Warn("render status page", "error", err)
	}
}
