package ping

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"casesync/internal/fakes/faults"
)

// ErrNotFound is returned by test hooks given an id the fake does not hold.
var ErrNotFound = errors.New("ping fake: record not found")

// maxBody bounds a request body; PING sits behind APIM, which has limits too.
const maxBody = 8 << 20

// Server is a fake PING: the B2C token endpoint, the APIM gateway checks
// and the retrieve, ingestion and status endpoints over one in-memory
// proGres store. It implements http.Handler; every method is safe for
// concurrent use.
type Server struct {
	opts    Options
	inj     *faults.Injector
	handler http.Handler
	newID   func() string

	mu            sync.Mutex
	tokens        map[string]time.Time // access token -> expiry
	keyRevoked    bool
	interventions []*intervention
	autoDecided   int // referrals decided by AutoDecide, for its mix
	byIntervID    map[string]*intervention
	referrals     []*referral
	byReferralID  map[string]*referral
	txs           map[string]*transaction
	txOrder       []*transaction // unfinished ones in creation order, so records are created in send order
	ingested      map[string][]map[string]any
	log           []LoggedRequest
	nextSeq       int
	failNext      []int // statuses of the next API answers, oldest first
	truncateNext  int
	gen           *seeder // for AddIntervention's defaults
}

// LoggedRequest is one entry of the fake's request log.
type LoggedRequest struct {
	Method, Path      string
	ShippingProcessID string // "" when the body had none or was not read
	PageNumber        int    // the PageNumber sent, 0 when absent
	Status            int    // HTTP status answered
}

// maxLog bounds the request log; a 10,000-record demo must not grow it forever.
const maxLog = 20000

// New returns a fake PING seeded from opts.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		opts:         opts,
		inj:          faults.New(opts.Faults),
		newID:        opts.NewID,
		tokens:       map[string]time.Time{},
		byIntervID:   map[string]*intervention{},
		byReferralID: map[string]*referral{},
		txs:          map[string]*transaction{},
		ingested:     map[string][]map[string]any{},
	}
	if s.newID == nil {
		s.newID = newIDSource(opts.Seed, streamRuntime).next
	}
	gi := &seeder{rng: newIDSource(opts.Seed, streamInterventions).rng, opts: opts}
	for _, in := range gi.interventions(opts.Interventions) {
		s.addIntervention(in)
	}
	for i, t := range opts.Transferred {
		in := gi.intervention(opts.Interventions + i)
		in.ID, in.Number, in.BusinessUnit = strings.ToLower(t.ID), t.Number, strings.ToLower(t.BusinessUnit)
		in.TransferStatus, in.TransferStatusDate = TransferPendingAck, in.StartDate
		s.addIntervention(in)
	}
	gd := &seeder{rng: newIDSource(opts.Seed, streamDecisions).rng, opts: opts}
	for _, r := range gd.decisions(opts.Decisions) {
		s.addReferral(r)
	}
	s.gen = gi
	s.handler = s.inj.Wrap(http.HandlerFunc(s.serve))
	return s
}

func (s *Server) addIntervention(in *intervention) {
	s.nextSeq++
	in.seq = s.nextSeq
	s.interventions = append(s.interventions, in)
	s.byIntervID[in.ID] = in
}

func (s *Server) addReferral(r *referral) {
	s.nextSeq++
	r.seq = s.nextSeq
	s.referrals = append(s.referrals, r)
	s.byReferralID[r.ID] = r
}

// ServeHTTP serves the token endpoint and the PING API behind the fault switches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults returns the fault switchboard in front of every endpoint.
func (s *Server) Faults() *faults.Injector { return s.inj }

// Counters returns the ground-truth counters: requests per endpoint, writes
// by kind ("SHP-2748 update", "SHP-2748 noop", "SHP-2284 update",
// "SHP-2284 noop", "SHP-2731 create"), and Duplicates (a referral created
// for a Primero service that already has one, or a note added twice).
func (s *Server) Counters() *faults.Counters { return s.inj.Counters() }

// answer is what an endpoint handler decides; serve writes and logs it.
type answer struct {
	status int
	body   any    // marshalled as JSON unless raw is set
	raw    []byte // a body built by hand (string-encoded status Data)
	header http.Header
	shp    string
	page   int
}

// envelope is PING's response shape, used on every API answer (ping.md §3).
type envelope struct {
	Data             any            `json:"Data"`
	ErrorMessage     *string        `json:"ErrorMessage"`
	RecordCount      *int           `json:"RecordCount"`
	SPHTransactionID *string        `json:"SPHTransactionId"`
	PagingSummary    *pagingSummary `json:"PagingSummary"`
}

type pagingSummary struct {
	PagingCookie           *string `json:"PagingCookie"`
	PageNumber             int     `json:"PageNumber"`
	IsMoreRecordsAvailable bool    `json:"IsMoreRecordsAvailable"`
}

func ptr[T any](v T) *T { return &v }

// badRequest is PING's answer to a body it cannot act on [contract].
func (s *Server) badRequest(msg string) answer {
	return answer{status: http.StatusBadRequest, body: envelope{
		ErrorMessage:     ptr(msg),
		SPHTransactionID: ptr(s.newID()),
	}}
}

// apim is an answer produced by the API Management gateway, whose bodies
// have their own shape.
func apim(status int, msg string) answer {
	return answer{status: status, body: map[string]any{"statusCode": status, "message": msg}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == TokenPath {
		s.write(w, r, s.token(r))
		return
	}
	route, partner := matchRoute(r.URL.Path)
	if route == nil || r.Method != http.MethodPost {
		// APIM matches an operation by method and path before anything else.
		s.write(w, r, apim(http.StatusNotFound, "Resource not found"))
		return
	}
	if a, ok := s.injected(); ok {
		s.write(w, r, a)
		return
	}
	if a, ok := s.gateway(r); !ok {
		s.write(w, r, a)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.write(w, r, answer{status: http.StatusUnsupportedMediaType, body: envelope{
			ErrorMessage: ptr("Content-Type must be application/json"),
		}})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		s.write(w, r, s.badRequest("The request body could not be read"))
		return
	}
	if len(body) > maxBody {
		s.write(w, r, s.badRequest("The request body is too large"))
		return
	}
	s.write(w, r, route(s, partner, body))
}

type routeFunc func(s *Server, partner string, body []byte) answer

func matchRoute(path string) (routeFunc, string) {
	switch path {
	case RetrievePath:
		return (*Server).retrieve, ""
	case CheckStatusPath:
		return (*Server).checkStatus, ""
	}
	rest, ok := strings.CutPrefix(path, IngestionPathPrefix)
	if !ok {
		return nil, ""
	}
	partner, op, ok := strings.Cut(rest, "/")
	if !ok || partner == "" {
		return nil, ""
	}
	switch op {
	case "data":
		return (*Server).ingestSync, partner
	case "asyncdata":
		return (*Server).ingestAsync, partner
	}
	return nil, ""
}

// injected answers from the one-shot fault queue filled by FailNext.
func (s *Server) injected() (answer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failNext) == 0 {
		return answer{}, false
	}
	st := s.failNext[0]
	s.failNext = s.failNext[1:]
	a := apim(st, http.StatusText(st))
	if st == http.StatusTooManyRequests {
		a = apim(st, "Rate limit is exceeded. Try again in 1 seconds.")
		a.header = http.Header{"Retry-After": {"1"}}
	}
	return a, true
}

func (s *Server) write(w http.ResponseWriter, r *http.Request, a answer) {
	buf := a.raw
	if buf == nil {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		// PING's bodies carry HTML (descriptions) unescaped.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(a.body); err != nil {
			a.status = http.StatusInternalServerError
			b.Reset()
			b.WriteString(`{"statusCode":500,"message":"Internal server error"}`)
		}
		buf = b.Bytes()
	}
	s.mu.Lock()
	if len(s.log) >= maxLog {
		// Copy, so the dropped half's backing array can be freed.
		s.log = append([]LoggedRequest(nil), s.log[len(s.log)-maxLog/2:]...)
	}
	s.log = append(s.log, LoggedRequest{r.Method, r.URL.Path, a.shp, a.page, a.status})
	truncate := false
	if s.truncateNext > 0 && r.URL.Path != TokenPath {
		s.truncateNext--
		truncate = true
	}
	s.mu.Unlock()

	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(a.status)
	if truncate {
		// The answer is decided and any write applied; only the reply is
		// lost halfway, which is what makes a client's retry a duplicate.
		w.Write(buf[:len(buf)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	w.Write(buf)
}

// FailNext makes the next n API calls (not token requests) answer status
// with an APIM-shaped body, before any check or write: 503 for an
// unavailable backend, 429 (with Retry-After: 1) for a quota, and so on.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, status)
	}
}

// TruncateNext makes the next n API answers stop halfway through the body
// and drop the connection. Unlike a faults drop, the request has been fully
// handled: a write it carried has been applied.
func (s *Server) TruncateNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncateNext += n
}

// RequestLog returns a copy of the request log, oldest first (the most
// recent entries when it grew past its bound).
func (s *Server) RequestLog() []LoggedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LoggedRequest(nil), s.log...)
}
