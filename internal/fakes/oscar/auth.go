package oscar

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Authentication as devise_token_auth 0.1.43 does it for the api_admin_user
// mapping: a header set (access-token, client, uid) per sign-in, valid for
// the token lifespan, at most ten per user.

type adminUser struct {
	id     int
	email  string
	tokens map[string]*authToken // by client id
}

type authToken struct {
	token     string
	expiry    int64 // unix seconds, what the expiry header carries
	lastToken string
	rotatedAt time.Time
}

// userJSON is token_validation_response: the AdminUser minus its tokens.
func (u *adminUser) json() map[string]any {
	return map[string]any{
		"id": u.id, "email": u.email, "provider": "email", "uid": u.email,
		"first_name": "API", "last_name": "User", "token": nil, "role": "viewer",
	}
}

// newSecret is SecureRandom.urlsafe_base64: 16 bytes, 22 characters. It is
// drawn from a seeded source so a demo run is repeatable; these headers
// guard nothing real.
func (s *Server) newSecret() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], s.tokenRNG.Uint64())
	binary.LittleEndian.PutUint64(b[8:], s.tokenRNG.Uint64())
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) setAuthHeaders(w http.ResponseWriter, clientID string, t *authToken) {
	h := w.Header()
	h.Set("access-token", t.token)
	h.Set("token-type", "Bearer")
	h.Set("client", clientID)
	h.Set("expiry", strconv.FormatInt(t.expiry, 10))
	h.Set("uid", s.user.email)
}

// signInParams reads email and password from a JSON body, a form body or
// the query string, as Rails' params would.
func signInParams(r *http.Request) (email, password string) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var p struct {
			Email    any `json:"email"`
			Password any `json:"password"`
		}
		if json.NewDecoder(r.Body).Decode(&p) == nil {
			email, _ = p.Email.(string)
			password, _ = p.Password.(string)
		}
	} else if r.ParseForm() == nil {
		email, password = r.Form.Get("email"), r.Form.Get("password")
	}
	q := r.URL.Query()
	if email == "" {
		email = q.Get("email")
	}
	if password == "" {
		password = q.Get("password")
	}
	return email, password
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	email, password := signInParams(r)
	// Devise keeps e-mail case-insensitive and strips whitespace.
	if strings.ToLower(strings.TrimSpace(email)) != s.user.email || password != s.opts.Password {
		s.reply(w, http.StatusUnauthorized, map[string]any{"success": false, "errors": []string{msgBadLogin}})
		return
	}
	s.authMu.Lock()
	clientID := s.newSecret()
	t := &authToken{token: s.newSecret(), expiry: s.Now().Add(s.opts.TokenLifespan).Unix()}
	s.user.tokens[clientID] = t
	// clean_old_tokens: the entry with the earliest expiry goes first, so a
	// worker that signed in eleven sign-ins ago finds its headers dead.
	for len(s.user.tokens) > maxDevices {
		oldest := ""
		for id, x := range s.user.tokens {
			if oldest == "" || x.expiry < s.user.tokens[oldest].expiry ||
				(x.expiry == s.user.tokens[oldest].expiry && id < oldest) {
				oldest = id
			}
		}
		delete(s.user.tokens, oldest)
	}
	s.setAuthHeaders(w, clientID, t)
	s.authMu.Unlock()
	s.reply(w, http.StatusOK, map[string]any{"data": s.user.json()})
}

// authHeaders reads access-token, client and uid from the headers, falling
// back to query parameters of the same names. devise_token_auth calls a
// missing client "default".
func authHeaders(r *http.Request) (token, clientID, uid string) {
	get := func(k string) string {
		if v := r.Header.Get(k); v != "" {
			return v
		}
		return r.URL.Query().Get(k)
	}
	token, clientID, uid = get("access-token"), get("client"), get("uid")
	if clientID == "" {
		clientID = "default"
	}
	return token, clientID, uid
}

// authenticate checks the header set; on success it writes the auth
// headers to w (the same ones, or new ones when rotating) and returns the
// client id.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	token, clientID, uid := authHeaders(r)
	if token == "" || uid != s.user.email {
		return "", false
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	t := s.user.tokens[clientID]
	if t == nil {
		return "", false
	}
	now := s.Now()
	current := t.token == token && t.expiry > now.Unix()
	reused := s.opts.RotateHeaders && t.lastToken != "" && t.lastToken == token && now.Before(t.rotatedAt.Add(rotateGrace))
	if !current && !reused {
		return "", false
	}
	if s.opts.RotateHeaders {
		t.lastToken, t.rotatedAt = t.token, now
		t.token = s.newSecret()
		t.expiry = now.Add(s.opts.TokenLifespan).Unix()
	}
	// Without rotation the gem's extend_batch_buffer echoes the same set.
	s.setAuthHeaders(w, clientID, t)
	return clientID, true
}

func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authenticate(w, r); !ok {
			s.reply(w, http.StatusUnauthorized, map[string]any{"errors": []string{msgSignInFirst}})
			return
		}
		h(w, r)
	}
}

// optionalAuth guards the endpoints the real server leaves open: only
// StrictAuth makes it check.
func (s *Server) optionalAuth(h http.HandlerFunc) http.HandlerFunc {
	if !s.opts.StrictAuth {
		return h
	}
	return s.authed(h)
}

func (s *Server) validateToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r); !ok {
		s.reply(w, http.StatusUnauthorized, map[string]any{"success": false, "errors": []string{msgBadToken}})
		return
	}
	s.reply(w, http.StatusOK, map[string]any{"success": true, "data": s.user.json()})
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	token, clientID, uid := authHeaders(r)
	s.authMu.Lock()
	t := s.user.tokens[clientID]
	ok := token != "" && uid == s.user.email && t != nil && t.token == token && t.expiry > s.Now().Unix()
	if ok {
		delete(s.user.tokens, clientID)
	}
	s.authMu.Unlock()
	if !ok {
		s.reply(w, http.StatusNotFound, map[string]any{"success": false, "errors": []string{msgNotLoggedIn}})
		return
	}
	s.reply(w, http.StatusOK, map[string]any{"success": true})
}

// ExpireTokens invalidates every header set now, as a server-side sign-out
// or a password change would: the next authenticated call gets a 401.
func (s *Server) ExpireTokens() {
	s.authMu.Lock()
	clear(s.user.tokens)
	s.authMu.Unlock()
}

// HeaderSets returns how many header sets (devise clients) the API user
// holds; at most ten.
func (s *Server) HeaderSets() int {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	return len(s.user.tokens)
}
