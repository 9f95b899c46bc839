package primero

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"casesync/internal/fakes/faults"
)

// Auth modes (primero.md §0). The default serves both kinds of client.
const (
	AuthBasicJWT  = "basic+jwt"  // JWT login (≤ v2.10) and HTTP Basic on every call
	AuthBasicOnly = "basic-only" // ≥ v2.11: login gives a cookie session, no token
)

// Options configure a fake Primero. The zero value is a working server with
// no seeded cases.
type Options struct {
	Cases int    // number of seeded synthetic cases (deterministic from Seed)
	Seed  uint64 // drives the synthetic cases, ids and token keys
	// MoSVY seeds the Primero of Cambodia's MoSVY: every synthetic case is
	// one of the Cambodia kinds (no UNHCR case), and cases carry protection
	// concerns and disability types from Primero's default lookups.
	MoSVY     bool
	CasesFrom []map[string]any // seed from these Primero case records instead of Cases; each may carry "referrals": [...]
	// AddCases are case records added after Cases or CasesFrom (e.g. the
	// cases a deployment's webhook fixtures name).
	AddCases []map[string]any
	// Users are extra users, added after the defaults (integration user,
	// province managers mgr*, agency users agency-<org>-user, UNHCR and test
	// users); a user with a default's name replaces it.
	Users []User
	// Orgs are the OSCaR organisations the Cambodia seeds refer cases to;
	// each gets an agency agency-<org> and a user agency-<org>-user.
	// Default cif, fco, mtp: the OSCaR fake's tenants.
	Orgs            []string
	Login, Password string        // integration credentials; defaults "openfn_cp_user" / "primero-pass"
	PerCap          int           // cap on per for lists; default 1000
	LegacyUncapped  bool          // serve any per, as Primero did before v2.10.3
	TokenTTL        time.Duration // JWT lifetime, default 1h
	AuthMode        string        // AuthBasicJWT (default) or AuthBasicOnly
	ForwardURL      string        // data forwarding: case.create/update/post webhooks POSTed here
	Webhooks        []Webhook     // further webhooks, with their auth
	Hostname        string        // "hostname" in webhook bodies; default "primero.fake"
	AutoName        bool          // rebuild "name" from its parts on save (an instance setting)
	Faults          faults.Config
	Now             func() time.Time // clock; default time.Now
	NewID           func() string    // UUID source; default a stream derived from Seed
	// LoginThrottle is how many logins a user name may make in a clock
	// minute before 429 (Rack::Attack): default 6, as rack_attack.rb;
	// negative, none (a harness starting many short-lived clients at once).
	LoginThrottle int
}

// User is a Primero user account.
type User struct {
	UserName string
	Password string // default Options.Password
	FullName string
	Email    string
	Phone    string
	Position string
	Agency   string // agency unique_id, e.g. "agency-cif"
	// Role is a seeded role's unique_id: role-integration, role-cp-admin,
	// role-cp-manager, role-cp-caseworker (the default),
	// role-agency-recipient, role-agency-reader, role-restricted-reader,
	// role-no-case-access or role-gbv-caseworker. New panics on another.
	Role       string
	Location   string   // location code
	UserGroups []string // user group unique_ids
	Disabled   bool
}

// user is a User with the server's bookkeeping.
type user struct {
	User
	id       int
	role     *role
	agency   *agency
	failed   int
	lockedAt time.Time
}

// Server is the fake Primero v2 API. It implements http.Handler; every
// method is safe for concurrent use.
//
// Lifecycle: 1. New; 2. serve it (httptest.NewServer(s)); 3. Close, which
// waits for webhook deliveries in flight. The owner of the Server calls
// Close; calling it twice is safe.
type Server struct {
	opts    Options
	cat     *catalog
	gen     *generator
	inj     *faults.Injector
	handler http.Handler
	jwtKey  []byte

	mu sync.RWMutex
	// writes counts the changes made under mu (lock) that a listing can
	// see: a remembered listing (listed) holds while it is unchanged.
	writes     int64
	records    []*record // ascending (created, id); lists walk it backwards
	byID       map[string]*record
	ident      map[string]map[string][]*record // identifier field -> value -> records
	refByID    map[string]*transition
	users      []*user
	userByName map[string]*user
	agencies   []*agency
	agencyByID map[string]*agency
	webhooks   []*webhookDef
	lastStamp  int64
	idRNG      *rand.Rand
	authRNG    *rand.Rand
	contentN   map[[16]byte]int // contentID's count of each content seen
	deliveries []Delivery

	// The clock offset and the two switches are read on paths that already
	// hold mu, so they are atomics rather than fields under it.
	offset   atomic.Int64
	locked   atomic.Bool
	sqlError atomic.Bool

	authMu   sync.Mutex        // never held together with mu
	tokens   map[string]string // jti -> "" (live) or the 401 text it now gets
	sessions map[string]*session
	throttle map[string]int // lower-cased user name + minute -> login POSTs

	listMu sync.Mutex
	listed *listMemo

	logMu    sync.Mutex
	reqLog   []Request
	rules    []*faultRule
	ruleRand *rand.Rand

	// sending counts the webhook deliveries in flight. Not a WaitGroup:
	// WaitDeliveries waits while a case update may queue more, and a
	// WaitGroup's Add from zero must not race its Wait.
	sending   inflight
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// New builds a fake Primero seeded from opts.
func New(opts Options) *Server {
	if opts.Login == "" {
		opts.Login = "openfn_cp_user"
	}
	if opts.Password == "" {
		opts.Password = "primero-pass"
	}
	if opts.PerCap <= 0 {
		opts.PerCap = 1000
	}
	if opts.LoginThrottle == 0 {
		opts.LoginThrottle = loginThrottle
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.AuthMode == "" {
		opts.AuthMode = AuthBasicJWT
	}
	if len(opts.Orgs) == 0 {
		opts.Orgs = []string{"cif", "fco", "mtp"}
	}
	if opts.Hostname == "" {
		opts.Hostname = "primero.fake"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, cat: loadCatalog(), inj: faults.New(opts.Faults)}
	mac := hmac.New(sha256.New, []byte("primero-fake-jwt"))
	binary.Write(mac, binary.LittleEndian, opts.Seed)
	s.jwtKey = mac.Sum(nil)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.reset()
	s.handler = s.inj.Wrap(s.routes())
	return s
}

// reset (re)builds every piece of mutable state from the options.
func (s *Server) reset() {
	// authMu and mu are never held together.
	s.authMu.Lock()
	s.tokens = map[string]string{}
	s.sessions = map[string]*session{}
	s.throttle = map[string]int{}
	s.authMu.Unlock()

	s.lock()
	defer s.mu.Unlock()
	s.idRNG = rand.New(rand.NewPCG(s.opts.Seed, 0x1d5))
	s.authRNG = rand.New(rand.NewPCG(s.opts.Seed, 0xa17))
	s.contentN = map[[16]byte]int{}
	s.records = nil
	s.byID = map[string]*record{}
	s.ident = map[string]map[string][]*record{}
	s.refByID = map[string]*transition{}
	s.lastStamp = 0
	s.offset.Store(0)
	s.locked.Store(false)
	s.sqlError.Store(false)
	s.deliveries = nil
	s.agencies = slices.Clone(s.cat.agencies)
	s.agencyByID = map[string]*agency{}
	for _, a := range s.agencies {
		s.agencyByID[a.UniqueID] = a
	}
	s.users, s.userByName = nil, map[string]*user{}
	for _, us := range s.cat.userSeeds {
		s.addUser(User{
			UserName: us.UserName, FullName: us.FullName, Agency: us.Agency, Role: us.Role, Location: us.Location,
			Position: us.Position, UserGroups: us.UserGroups, Disabled: us.Disabled,
			Email: us.UserName + "@primero.fake", Phone: fmt.Sprintf("0120%06d", len(s.users)+1),
		})
	}
	for _, org := range s.opts.Orgs {
		if s.agencyByID["agency-"+org] == nil {
			a := &agency{UniqueID: "agency-" + org, AgencyCode: strings.ToUpper(org), Name: strings.ToUpper(org), id: len(s.agencies) + 1}
			s.agencies = append(s.agencies, a)
			s.agencyByID[a.UniqueID] = a
		}
		if _, ok := s.userByName["agency-"+org+"-user"]; !ok {
			s.addUser(User{UserName: "agency-" + org + "-user", FullName: strings.ToUpper(org) + " referral inbox",
				Agency: "agency-" + org, Role: "role-agency-recipient", Location: "KH", Position: "agency focal point",
				UserGroups: []string{"usergroup-agency-" + org}, Email: "agency-" + org + "-user@primero.fake"})
		}
	}
	if _, ok := s.userByName[s.opts.Login]; !ok {
		s.addUser(User{UserName: s.opts.Login, FullName: "Integration", Agency: "agency-unicef", Role: "role-integration", Location: "KH"})
	}
	for _, u := range s.opts.Users {
		s.addUser(u)
	}
	s.webhooks = nil
	if s.opts.ForwardURL != "" {
		s.webhooks = append(s.webhooks, &webhookDef{Webhook: Webhook{
			URL: s.opts.ForwardURL, Events: []string{EventCaseCreate, EventCaseUpdate, EventCasePost}, Role: "role-integration",
		}, id: 1})
	}
	for _, w := range s.opts.Webhooks {
		s.webhooks = append(s.webhooks, &webhookDef{Webhook: w, id: len(s.webhooks) + 1})
	}

	gm := map[string]*user{}
	for _, u := range s.users {
		gm[u.UserName] = u
	}
	s.gen = &generator{seed: s.opts.Seed, cat: s.cat, users: gm, orgs: s.opts.Orgs, mosvy: s.opts.MoSVY}
	if len(s.opts.CasesFrom) > 0 {
		for _, c := range s.opts.CasesFrom {
			s.importCase(c)
		}
	} else {
		s.seedSynthetic(s.opts.Cases)
	}
	for _, c := range s.opts.AddCases {
		s.importCase(c)
	}
	sort.Slice(s.records, func(i, j int) bool { return recordLess(s.records[i], s.records[j]) })
	for _, r := range s.records {
		s.lastStamp = max(s.lastStamp, r.updated)
	}
}

func (s *Server) addUser(u User) {
	if u.Password == "" {
		u.Password = s.opts.Password
	}
	if u.Role == "" {
		u.Role = "role-cp-caseworker"
	}
	rl := s.cat.roles[u.Role]
	if rl == nil {
		panic("primero fake: user " + u.UserName + " has unknown role " + u.Role)
	}
	ag := s.agencyByID[u.Agency]
	if ag == nil && u.Agency != "" {
		ag = &agency{UniqueID: u.Agency, AgencyCode: u.Agency, Name: u.Agency, id: len(s.agencies) + 1}
		s.agencies = append(s.agencies, ag)
		s.agencyByID[ag.UniqueID] = ag
	}
	if old := s.userByName[u.UserName]; old != nil {
		old.User, old.role, old.agency = u, rl, ag
		return
	}
	nu := &user{User: u, id: len(s.users) + 1, role: rl, agency: ag}
	s.users = append(s.users, nu)
	s.userByName[u.UserName] = nu
}

// ServeHTTP serves the Primero API behind the fault switches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults returns the shared fault switchboard wrapped around the handler.
func (s *Server) Faults() *faults.Injector { return s.inj }

// Counters returns the request, write and duplicate counts: the fake's own
// record of what clients did.
func (s *Server) Counters() *faults.Counters { return s.inj.Counters() }

// Close stops webhook deliveries and waits for those in flight. It is safe
// to call twice.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
	})
	s.sending.wait()
}

// inflight counts work in flight; wait returns once none is.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle *sync.Cond // on mu; nil until first waited on
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	if f.n--; f.n == 0 && f.idle != nil {
		f.idle.Broadcast()
	}
	f.mu.Unlock()
}

func (f *inflight) wait() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.idle == nil {
		f.idle = sync.NewCond(&f.mu)
	}
	for f.n > 0 {
		f.idle.Wait()
	}
}

// Reset puts the server back to its seeded state: cases, users, tokens,
// clock offset and the delivery log. Counters and the request log are
// kept; reset them through Counters().Reset and ResetRequests.
func (s *Server) Reset() { s.reset() }

// now is the fake's clock: Options.Now plus whatever Advance added.
func (s *Server) now() time.Time {
	return s.opts.Now().Add(time.Duration(s.offset.Load())).UTC()
}

// Now returns the fake's current time.
func (s *Server) Now() time.Time { return s.now() }

// Advance moves the fake's clock forward by d: tokens expire, login
// throttle windows and lockouts pass.
func (s *Server) Advance(d time.Duration) { s.offset.Add(int64(d)) }

// SetConfigLock switches the "locked for a configuration update" state:
// while on, API calls answer 503 with Retry-After: 60 and /health 503.
func (s *Server) SetConfigLock(on bool) { s.locked.Store(on) }

// SetSQLError switches the SQL-error mode: case and user listings answer
// 200 with empty data and total 0, as Primero does when a filter breaks
// its query.
func (s *Server) SetSQLError(on bool) { s.sqlError.Store(on) }

// newID returns a fresh lower-case UUID. Callers hold s.mu.
func (s *Server) newID() string {
	if s.opts.NewID != nil {
		return s.opts.NewID()
	}
	return randUUID(s.idRNG)
}

// authID returns a fresh UUID for a token or session, from its own stream:
// how often a client logs in must not change the ids records get.
// Callers hold s.mu.
func (s *Server) authID() string {
	return randUUID(s.authRNG)
}

// contentID returns the UUID of a record created through the API, derived
// from the seed, what kind of id it is and what was posted (the n-th
// identical post gets the n-th id), not from arrival order. Real Primero
// ids are random and opaque; deriving them keeps them opaque while two runs
// that create the same records in a different order (retries reorder
// creates) end with the same ids, which is what lets a test compare them.
// Callers hold s.mu.
func (s *Server) contentID(kind string, content any) string {
	if s.opts.NewID != nil {
		return s.opts.NewID()
	}
	b, _ := json.Marshal(content) // map keys sorted: a canonical form
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00", s.opts.Seed, kind)
	h.Write(b)
	var key [16]byte
	copy(key[:], h.Sum(nil))
	n := s.contentN[key]
	s.contentN[key] = n + 1
	fmt.Fprintf(h, "\x00%d", n)
	sum := h.Sum(nil)
	return randUUID(rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[0:8]), binary.LittleEndian.Uint64(sum[8:16]))))
}
