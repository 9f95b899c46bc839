package his

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"casesync/internal/fakes/faults"
)

// The credentials the fake accepts by default.
const (
	DefaultEmail    = "his.integration@example.org"
	DefaultPassword = "his-pass"
)

// Options seed the fake.
type Options struct {
	// People adds this many generated patients after the fixed ones.
	People   int
	Seed     uint64
	Email    string
	Password string
	Faults   faults.Config
	// TokenTTL is the ttl the login answers, in seconds (LoopBack's
	// default is two weeks).
	TokenTTL int
}

// Server is a fake HIS. It implements http.Handler; every method is safe
// for concurrent use.
type Server struct {
	opts    Options
	inj     *faults.Injector
	handler http.Handler

	mu     sync.Mutex
	people map[string]*Person
	tokens map[string]bool
	nextID int
	// found and missing count findOne answers by outcome.
	found, missing int
}

// New returns a fake HIS seeded from opts.
func New(opts Options) *Server {
	if opts.Email == "" {
		opts.Email = DefaultEmail
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 1209600
	}
	s := &Server{opts: opts, inj: faults.New(opts.Faults), people: map[string]*Person{}, tokens: map[string]bool{}}
	for _, p := range append(Patients(), generated(opts.People, opts.Seed)...) {
		s.people[p.CID()] = p
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /Users/login", s.login)
	mux.HandleFunc("GET /people/findOne", s.findOne)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		lbError(w, http.StatusNotFound, "Error", "Shared class \"\" has no method handling "+r.Method+" "+r.URL.Path, "")
	})
	s.handler = s.inj.Wrap(mux)
	return s
}

// ServeHTTP serves the HIS API behind the fault switches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults returns the fault switchboard in front of every endpoint.
func (s *Server) Faults() *faults.Injector { return s.inj }

// Counters returns the ground-truth counters: requests per endpoint and
// "login" and "findOne found" / "findOne not_found" under Writes (HIS is
// read-only; these are what the demo compares with the engine's enrich
// outcomes).
func (s *Server) Counters() *faults.Counters { return s.inj.Counters() }

// AddPerson adds (or replaces) a patient.
func (s *Server) AddPerson(p *Person) {
	s.mu.Lock()
	s.people[p.CID()] = p
	s.mu.Unlock()
}

// RevokeTokens forgets every issued token, as a restarted HIS does.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	clear(s.tokens)
	s.mu.Unlock()
}

// lbError writes LoopBack's error envelope.
func lbError(w http.ResponseWriter, status int, name, msg, code string) {
	e := map[string]any{"statusCode": status, "name": name, "message": msg}
	if code != "" {
		e["code"] = code
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email    string `json:"email"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
		lbError(w, http.StatusBadRequest, "SyntaxError", "Unexpected token in JSON", "")
		return
	}
	user := body.Email
	if user == "" {
		user = body.Username
	}
	if user != s.opts.Email || body.Password != s.opts.Password {
		lbError(w, http.StatusUnauthorized, "Error", "login failed", "LOGIN_FAILED")
		return
	}
	s.mu.Lock()
	s.nextID++
	sum := sha256.Sum256([]byte(fmt.Sprintf("his-token-%d-%d", s.opts.Seed, s.nextID)))
	tok := hex.EncodeToString(sum[:])[:64]
	s.tokens[tok] = true
	s.mu.Unlock()
	s.inj.Counters().Write("login")
	writeJSON(w, http.StatusOK, map[string]any{"id": tok, "ttl": s.opts.TokenTTL, "created": "2024-01-01T00:00:00.000Z", "userId": 1})
}

// token is the request's access token: the access_token query parameter,
// else the Authorization header (bare, as LoopBack expects it).
func token(r *http.Request) string {
	if t := r.URL.Query().Get("access_token"); t != "" {
		return t
	}
	return strings.TrimSpace(r.Header.Get("Authorization"))
}

// filter is the part of a LoopBack filter findOne honours.
type filter struct {
	Where   map[string]any `json:"where"`
	Include any            `json:"include"`
}

type include struct {
	relation string
	order    string // "vstdate DESC" etc.
	limit    int
}

func parseIncludes(v any) ([]include, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []include{{relation: x}}, nil
	case []any:
		var out []include
		for _, e := range x {
			in, err := parseIncludes(e)
			if err != nil {
				return nil, err
			}
			out = append(out, in...)
		}
		return out, nil
	case map[string]any:
		rel, _ := x["relation"].(string)
		if rel == "" {
			return nil, fmt.Errorf("include object needs a relation")
		}
		in := include{relation: rel}
		if sc, ok := x["scope"].(map[string]any); ok {
			in.order, _ = sc["order"].(string)
			if l, ok := sc["limit"].(float64); ok {
				in.limit = int(l)
			}
		}
		return []include{in}, nil
	}
	return nil, fmt.Errorf("include must be a string, an object or a list")
}

func (s *Server) findOne(w http.ResponseWriter, r *http.Request) {
	tok := token(r)
	s.mu.Lock()
	ok := tok != "" && s.tokens[tok]
	s.mu.Unlock()
	if !ok {
		lbError(w, http.StatusUnauthorized, "Error", "Authorization Required", "AUTHORIZATION_REQUIRED")
		return
	}
	var f filter
	if raw := r.URL.Query().Get("filter"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &f); err != nil {
			lbError(w, http.StatusBadRequest, "SyntaxError", "Unexpected token in JSON at position 0", "")
			return
		}
	}
	incs, err := parseIncludes(f.Include)
	if err != nil {
		lbError(w, http.StatusBadRequest, "Error", err.Error(), "")
		return
	}
	for _, in := range incs {
		if in.relation != "interventions" && in.relation != "riskmodel" {
			lbError(w, http.StatusBadRequest, "Error", fmt.Sprintf("Relation %q is not defined for Person model", in.relation), "INVALID_INCLUSION_FILTER")
			return
		}
	}
	cid, _ := f.Where["cid"].(string)
	s.mu.Lock()
	p := s.people[cid]
	var out map[string]any
	if p != nil && cid != "" {
		out = render(p, incs)
	}
	s.mu.Unlock()
	if out == nil {
		s.inj.Counters().Write("findOne not_found")
		lbError(w, http.StatusNotFound, "Error", "Unknown \"Person\" id \"undefined\".", "MODEL_NOT_FOUND")
		return
	}
	s.inj.Counters().Write("findOne found")
	writeJSON(w, http.StatusOK, out)
}

// render is the person as findOne answers with incs embedded. Callers
// hold s.mu.
func render(p *Person, incs []include) map[string]any {
	out := make(map[string]any, len(p.Fields)+2)
	for k, v := range p.Fields {
		out[k] = v
	}
	for _, in := range incs {
		switch in.relation {
		case "riskmodel":
			out["riskmodel"] = p.RiskModel
		case "interventions":
			visits := append([]map[string]any(nil), p.Visits...)
			orderVisits(visits, in.order)
			if in.limit > 0 && len(visits) > in.limit {
				visits = visits[:in.limit]
			}
			list := make([]any, len(visits))
			for i, v := range visits {
				list[i] = v
			}
			out["interventions"] = list
		}
	}
	return out
}

// orderVisits sorts by "vstdate DESC|ASC" (then vsttime); undated visits
// sort as the smallest value.
func orderVisits(v []map[string]any, order string) {
	field, dir, _ := strings.Cut(strings.TrimSpace(order), " ")
	if field == "" {
		return
	}
	desc := strings.EqualFold(strings.TrimSpace(dir), "DESC")
	key := func(m map[string]any) string {
		d, _ := m[field].(string)
		if d == "" {
			return ""
		}
		t, _ := m["vsttime"].(string)
		return d + " " + t
	}
	sort.SliceStable(v, func(i, j int) bool {
		if desc {
			return key(v[i]) > key(v[j])
		}
		return key(v[i]) < key(v[j])
	})
}
