package primero

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path"
	"strconv"
	"time"
)

// Request is one entry of the fake's request log.
type Request struct {
	Method string
	Path   string
	Query  string
	User   string // authenticated user name, "" when authentication failed
	Status int
}

// FaultKind names a scripted failure.
type FaultKind int

// The scripted failures of primero.md §11. The faults.Injector adds the
// probabilistic ones (latency, generic 500s, 429s, dropped connections).
const (
	Fault500               FaultKind = iota + 1 // 500 with Primero's error envelope
	Fault503                                    // 503 + Retry-After: 60, the configuration lock
	Fault429                                    // 429 + Retry-After: N, as a proxy in front of Primero would send
	FaultDropBeforeHeaders                      // connection closed before any byte of the answer
	FaultDropMidBody                            // headers and half the body, then the connection closes
	FaultSQLError                               // listings answer 200 with data [] and total 0
	FaultExpireToken                            // every token expires before the request is served
	FaultLatency                                // the answer is delayed by Latency
)

// Fault scripts a failure for requests matching Method and Path.
type Fault struct {
	Method     string        // "" matches any method
	Path       string        // path.Match pattern such as "/api/v2/cases/*/referrals"; "" matches any
	Kind       FaultKind     // what happens
	Skip       int           // let this many matching requests through first
	Times      int           // then fail this many; 0 means every one after Skip
	Rate       float64       // if > 0, each eligible request fails with this probability
	RetryAfter int           // seconds for Fault429; default 1
	Latency    time.Duration // for FaultLatency
}

type faultRule struct {
	Fault
	seen, fired int
}

// InjectFault adds a scripted failure. Rules are checked in the order added;
// the first that fires decides.
func (s *Server) InjectFault(f Fault) {
	s.logMu.Lock()
	s.rules = append(s.rules, &faultRule{Fault: f})
	s.logMu.Unlock()
}

// ClearFaults removes every scripted failure.
func (s *Server) ClearFaults() {
	s.logMu.Lock()
	s.rules = nil
	s.logMu.Unlock()
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return append([]Request(nil), s.reqLog...)
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.logMu.Lock()
	s.reqLog = nil
	s.logMu.Unlock()
}

const maxLog = 100_000

type ctxKey int

const (
	ctxUser ctxKey = iota
	ctxSQLError
)

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// bufferWriter holds a whole answer so that a mid-body drop can send part
// of it.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }
func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("GET /api/v2/primero", s.handleInstance)
	mux.HandleFunc("POST /api/v2/tokens", s.unlocked(s.handleLogin))
	mux.HandleFunc("DELETE /api/v2/tokens", s.handleLogout)

	mux.HandleFunc("GET /api/v2/cases", s.api(s.handleListCases))
	mux.HandleFunc("POST /api/v2/cases", s.api(s.handleCreateCase))
	mux.HandleFunc("GET /api/v2/cases/{id}", s.api(s.handleShowCase))
	mux.HandleFunc("PATCH /api/v2/cases/{id}", s.api(s.handleUpdateCase))
	mux.HandleFunc("DELETE /api/v2/cases/{id}", s.api(s.handleDisableCase))
	mux.HandleFunc("POST /api/v2/cases/{id}/sync", s.api(s.handleSync))
	mux.HandleFunc("POST /api/v2/cases/referrals", s.api(s.handleBulkReferrals))
	mux.HandleFunc("GET /api/v2/cases/{id}/referrals", s.api(s.listTransitions(typeReferral)))
	mux.HandleFunc("POST /api/v2/cases/{id}/referrals", s.api(s.handleCreateReferral))
	mux.HandleFunc("PATCH /api/v2/cases/{id}/referrals/{rid}", s.api(s.handleRespondTransition(typeReferral)))
	mux.HandleFunc("DELETE /api/v2/cases/{id}/referrals/{rid}", s.api(s.handleRevokeReferral))
	mux.HandleFunc("GET /api/v2/cases/{id}/transfers", s.api(s.listTransitions(typeTransfer)))
	mux.HandleFunc("POST /api/v2/cases/{id}/transfers", s.api(s.handleCreateTransfer))
	mux.HandleFunc("PATCH /api/v2/cases/{id}/transfers/{rid}", s.api(s.handleRespondTransition(typeTransfer)))
	mux.HandleFunc("GET /api/v2/cases/{id}/assigns", s.api(s.listTransitions(typeAssign)))
	mux.HandleFunc("POST /api/v2/cases/{id}/assigns", s.api(s.handleAssign))
	mux.HandleFunc("GET /api/v2/cases/{id}/transitions", s.api(s.listTransitions("")))

	mux.HandleFunc("GET /api/v2/users", s.api(s.handleListUsers))
	mux.HandleFunc("GET /api/v2/users/refer-to", s.api(s.handleReferTo))
	mux.HandleFunc("GET /api/v2/users/{id}", s.api(s.handleShowUser))
	mux.HandleFunc("GET /api/v2/agencies", s.api(s.handleAgencies))
	mux.HandleFunc("GET /api/v2/locations", s.api(s.handleLocations))
	mux.HandleFunc("GET /api/v2/lookups", s.api(s.handleLookups))
	mux.HandleFunc("GET /api/v2/forms", s.api(s.handleForms))
	mux.HandleFunc("GET /api/v2/primero_modules", s.api(s.handleModules))
	mux.HandleFunc("GET /api/v2/webhooks", s.api(s.handleListWebhooks))
	mux.HandleFunc("POST /api/v2/webhooks", s.api(s.handleCreateWebhook))
	mux.HandleFunc("DELETE /api/v2/webhooks/{id}", s.api(s.handleDeleteWebhook))

	s.hookRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		notFound(w, r, fmt.Sprintf("No route matches [%s] %q", r.Method, r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(mux, w, r) })
}

// serve logs the request and applies the scripted faults around mux.
func (s *Server) serve(mux http.Handler, w http.ResponseWriter, r *http.Request) {
	var who string
	r = r.WithContext(context.WithValue(r.Context(), ctxUser, &who))
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.logMu.Lock()
		if len(s.reqLog) < maxLog {
			s.reqLog = append(s.reqLog, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, User: who, Status: sw.status})
		}
		s.logMu.Unlock()
	}()
	rule := s.matchRule(r)
	if rule == nil {
		mux.ServeHTTP(sw, r)
		return
	}
	switch rule.Kind {
	case Fault500:
		writeErrors(sw, r, http.StatusInternalServerError, "injected fault: internal server error", nil)
	case Fault503:
		lockedResponse(sw, r)
	case Fault429:
		ra := rule.RetryAfter
		if ra <= 0 {
			ra = 1
		}
		sw.Header().Set("Retry-After", strconv.Itoa(ra))
		sw.Header().Set("Content-Type", "text/plain")
		sw.WriteHeader(http.StatusTooManyRequests)
		sw.Write([]byte("Too Many Requests\n"))
	case FaultDropBeforeHeaders:
		sw.status = -1
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case FaultDropMidBody:
		buf := &bufferWriter{header: sw.Header()}
		mux.ServeHTTP(buf, r)
		b := buf.body.Bytes()
		sw.Header().Set("Content-Length", strconv.Itoa(len(b)))
		sw.WriteHeader(buf.status)
		sw.Write(b[:len(b)/2])
		sw.Flush()
		// The server closes the connection when a handler aborts, so the
		// client sees a body shorter than its Content-Length.
		panic(http.ErrAbortHandler)
	case FaultSQLError:
		mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxSQLError, true)))
	case FaultExpireToken:
		s.ExpireTokens()
		mux.ServeHTTP(sw, r)
	case FaultLatency:
		t := time.NewTimer(rule.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		mux.ServeHTTP(sw, r)
	default:
		mux.ServeHTTP(sw, r)
	}
}

func (s *Server) matchRule(r *http.Request) *faultRule {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	for _, rl := range s.rules {
		if rl.Method != "" && rl.Method != r.Method {
			continue
		}
		if rl.Path != "" {
			if ok, _ := path.Match(rl.Path, r.URL.Path); !ok {
				continue
			}
		}
		rl.seen++
		if rl.seen <= rl.Skip {
			continue
		}
		if rl.Times > 0 && rl.fired >= rl.Times {
			continue
		}
		if rl.Rate > 0 && s.ruleRoll() >= rl.Rate {
			continue
		}
		rl.fired++
		return rl
	}
	return nil
}

// ruleRoll is only called with logMu held.
func (s *Server) ruleRoll() float64 {
	if s.ruleRand == nil {
		s.ruleRand = rand.New(rand.NewPCG(s.opts.Seed, 0xfa17))
	}
	return s.ruleRand.Float64()
}

func lockedResponse(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "60")
	writeErrors(w, r, http.StatusServiceUnavailable, "Service Unavailable", "Retry-After: 60")
}

// unlocked answers 503 while the configuration lock is on.
func (s *Server) unlocked(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.locked.Load() {
			lockedResponse(w, r)
			return
		}
		h(w, r)
	}
}

// api authenticates the caller, then serves h.
func (s *Server) api(h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return s.unlocked(func(w http.ResponseWriter, r *http.Request) {
		u := s.authenticate(w, r)
		if u == nil {
			return
		}
		if p, ok := r.Context().Value(ctxUser).(*string); ok {
			*p = u.UserName
		}
		h(w, r, u)
	})
}

func (s *Server) sqlBroken(r *http.Request) bool {
	v, _ := r.Context().Value(ctxSQLError).(bool)
	return v || s.sqlError.Load()
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.locked.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleInstance(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
		"sandbox_ui": false, "config_ui": "full", "locales": []string{"en"}, "base_language": "en",
		"primero_version": "2.11.0-fake", "agencies_logo_options": []any{}, "reporting_location_config": map[string]any{
			"field_key": "owned_by_location", "admin_level": 1,
		},
	}})
}
