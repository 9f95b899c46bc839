package daemon

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
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
