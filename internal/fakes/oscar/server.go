package oscar

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"casesync/internal/fakes/faults"
)

// Defaults for Options.
const (
	DefaultEmail         = "api.user@example.org"
	DefaultPassword      = "oscar-pass"
	DefaultTokenLifespan = 7 * 24 * time.Hour
	// ExternalSystem is the name of the external system the API user is
	// bound to (its ExternalSystem.token is the user's e-mail). Referrals
	// exchanged with casesync carry it as ngo_name and referred_from.
	ExternalSystem = "MoSVY"
	// NonIntegratedTenant is a tenant that exists (upserts to it work) but
	// is not marked integrated, so GET clients never walks it.
	NonIntegratedTenant = "demo"
	// maxDevices is devise_token_auth's max_number_of_devices.
	maxDevices = 10
	// rotateGrace is devise_token_auth's batch_request_buffer_throttle: the
	// previous token still works this long after a rotation.
	rotateGrace = 5 * time.Second
)

// BaseTime anchors the seed data: every seeded created_at/updated_at lies
// before it, so goldens do not move with the wall clock.
var BaseTime = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// Options configures a fake OSCaR. The zero value is a server with no
// clients, the default API user and the tenants cif, fco and mtp.
type Options struct {
	Clients       int    // seeded synthetic clients (deterministic from Seed)
	Seed          uint64 // seed for the synthetic data and for generated ids and tokens
	Email         string // API user; default DefaultEmail
	Password      string // default DefaultPassword
	Orgs          []string
	TokenLifespan time.Duration // default one week
	// RotateHeaders makes every authenticated answer carry a new
	// access-token; the previous one keeps working for a short grace. The
	// real server does not rotate.
	RotateHeaders bool
	// StrictAuth requires the auth headers on referrals/update_statuses and
	// clients/check_duplication, which the real server leaves open.
	StrictAuth bool
	// AutoAccept accepts every referral created by upsert at the next GET
	// clients (not inside the upsert call), as an NGO user would: a
	// pending one creates the client with the referral's global_id; one
	// for a client the NGO already has is marked Accepted on it.
	AutoAccept bool
	// Clean seeds none of the designed clients of doc.go (an unknown
	// province, junk dates of birth, one global_id in two NGOs, …): every
	// client is drawn like the rest, so a demo runs clean. Tests of the
	// refusal paths keep the default.
	Clean  bool
	Faults faults.Config
	// Now is the clock; default time.Now. Advance shifts it.
	Now func() time.Time
}

// Server is a fake OSCaR interop API v1. It implements http.Handler and is
// safe for concurrent use.
type Server struct {
	opts    Options
	inj     *faults.Injector
	handler http.Handler
	cat     *catalog
	offset  atomic.Int64 // Advance, in nanoseconds

	authMu   sync.Mutex
	user     adminUser
	tokenRNG *rand.Rand // guarded by authMu

	mu         sync.RWMutex
	tenants    []*tenant   // integrated tenants in Orgs order, then the non-integrated one
	toAccept   []*referral // AutoAccept's queue, accepted at the next GET clients
	byShort    map[string]*tenant
	identities map[string]*identity
	rng        *rand.Rand // generated ids and slugs; guarded by mu

	cutMu     sync.Mutex
	cutBodies int
}

// New returns a fake OSCaR seeded from opts.
func New(opts Options) *Server {
	if opts.Email == "" {
		opts.Email = DefaultEmail
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if len(opts.Orgs) == 0 {
		opts.Orgs = []string{"cif", "fco", "mtp"}
	}
	if opts.TokenLifespan <= 0 {
		opts.TokenLifespan = DefaultTokenLifespan
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:       opts,
		inj:        faults.New(opts.Faults),
		cat:        loadCatalog(),
		byShort:    map[string]*tenant{},
		identities: map[string]*identity{},
		rng:        rand.New(rand.NewPCG(opts.Seed, 0x05ca7)),
	}
	s.user = adminUser{id: 7, email: strings.ToLower(opts.Email), tokens: map[string]*authToken{}}
	s.tokenRNG = rand.New(rand.NewPCG(opts.Seed, 0x70ce2))
	names := append([]string(nil), opts.Orgs...)
	if !contains(names, NonIntegratedTenant) {
		names = append(names, NonIntegratedTenant)
	}
	for i, n := range names {
		t := &tenant{
			id:          46 + i,
			short:       n,
			full:        strings.ToUpper(n) + " Organization",
			integrated:  contains(opts.Orgs, n),
			addressCode: tenantAddressCode(i),
			nextRID:     1000,
		}
		s.tenants = append(s.tenants, t)
		s.byShort[n] = t
	}
	s.seed(opts.Clients)
	s.handler = s.withHTMLFaults(s.inj.Wrap(http.HandlerFunc(s.route)))
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults returns the fault switchboard; Set on it changes faults live.
func (s *Server) Faults() *faults.Injector { return s.inj }

// Counters returns the request, write and duplicate counters. They record
// what API clients did, so the test hooks (Accept, Touch, …) do not count.
// Write kinds: "referral.create", "client.update", "referral.status" and
// "client.link". A duplicate is a referral created for an external_id that
// already has one with the same services in that tenant, unless both
// upserts named different service uuids (two referrals, see saveReferral).
func (s *Server) Counters() *faults.Counters { return s.inj.Counters() }

// Now is the server's clock: Options.Now plus every Advance.
func (s *Server) Now() time.Time {
	return s.opts.Now().Add(time.Duration(s.offset.Load())).UTC()
}

// Advance moves the server's clock forward by d (token expiry, updated_at).
func (s *Server) Advance(d time.Duration) { s.offset.Add(int64(d)) }

// CutNextBodies makes the next n JSON answers stop half-way through the
// body and drop the connection, after the handler has done its work (a
// write is applied, its answer lost). Dropping before the headers is the
// faults.Config.RateDrop switch.
func (s *Server) CutNextBodies(n int) {
	s.cutMu.Lock()
	s.cutBodies = n
	s.cutMu.Unlock()
}

func (s *Server) takeCut() bool {
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	if s.cutBodies > 0 {
		s.cutBodies--
		return true
	}
	return false
}

type routeKey struct {
	method, path string
}

// route dispatches like Rails' routes.rb: an unknown path or method is a 404
// page, and a ".json" format suffix is accepted.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if p, ok := r.Context().Value(reachedKey{}).(*atomic.Bool); ok {
		p.Store(true)
	}
	path := strings.TrimSuffix(strings.TrimSuffix(r.URL.Path, ".json"), "/")
	var h func(http.ResponseWriter, *http.Request)
	switch (routeKey{r.Method, path}) {
	case routeKey{"POST", "/api/v1/admin_auth/sign_in"}:
		h = s.signIn
	case routeKey{"DELETE", "/api/v1/admin_auth/sign_out"}:
		h = s.signOut
	case routeKey{"GET", "/api/v1/admin_auth/validate_token"}:
		h = s.validateToken
	case routeKey{"GET", "/api/v1/organizations/clients"}:
		h = s.authed(s.getClients)
	case routeKey{"POST", "/api/v1/organizations/clients/upsert"}:
		h = s.authed(s.upsert)
	case routeKey{"PUT", "/api/v1/organizations/clients/update_links"}:
		h = s.authed(s.updateLinks)
	case routeKey{"PUT", "/api/v1/organizations/referrals/update_statuses"}:
		h = s.optionalAuth(s.updateStatuses)
	case routeKey{"GET", "/api/v1/organizations/clients/check_duplication"}:
		h = s.optionalAuth(s.checkDuplication)
	case routeKey{"GET", "/api/v1/organizations"}, routeKey{"GET", "/api/v1/organizations/listing"}:
		h = s.organizations
	default:
		writeHTML(w, http.StatusNotFound, page404)
		return
	}
	h(w, r)
}

// reply writes v as JSON. Bodies are built in full before writing, so the
// store lock is never held while a slow client reads.
func (s *Server) reply(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeHTML(w, http.StatusInternalServerError, page500)
		return
	}
	s.replyBytes(w, code, b.Bytes())
}

func (s *Server) replyBytes(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if s.takeCut() {
		w.WriteHeader(code)
		w.Write(body[:len(body)/2])
		http.NewResponseController(w).Flush()
		// ErrAbortHandler closes the connection without logging: the client
		// sees a body shorter than Content-Length.
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(code)
	w.Write(body)
}

// fail500 is the Rails exception page: a NoMethodError, a bad tenant
// switch or an unparseable date. It is HTML, never JSON.
func fail500(w http.ResponseWriter) { writeHTML(w, http.StatusInternalServerError, page500) }

type reachedKey struct{}

// withHTMLFaults turns the switchboard's injected 500 into the HTML page a
// Rails or proxy 500 would carry. The switchboard answers JSON, which would
// let a client get away with parsing every 500 as JSON. Requests that
// reached the fake's own handler pass through untouched.
func (s *Server) withHTMLFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached := new(atomic.Bool)
		r = r.WithContext(context.WithValue(r.Context(), reachedKey{}, reached))
		next.ServeHTTP(&htmlFaultWriter{ResponseWriter: w, reached: reached}, r)
	})
}

type htmlFaultWriter struct {
	http.ResponseWriter
	reached *atomic.Bool
	swallow bool
}

func (h *htmlFaultWriter) WriteHeader(code int) {
	if code == http.StatusInternalServerError && !h.reached.Load() {
		h.swallow = true
		hd := h.ResponseWriter.Header()
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Content-Length", strconv.Itoa(len(page500)))
		h.ResponseWriter.WriteHeader(code)
		h.ResponseWriter.Write([]byte(page500))
		return
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *htmlFaultWriter) Write(b []byte) (int, error) {
	if h.swallow {
		return len(b), nil
	}
	return h.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, hijack).
func (h *htmlFaultWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Flush and Hijack are found by type assertion in the switchboard, which
// does not use ResponseController.
func (h *htmlFaultWriter) Flush() { http.NewResponseController(h.ResponseWriter).Flush() }

func (h *htmlFaultWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}
