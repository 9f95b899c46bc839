package primero

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Devise's failure texts (primero.md §2). Clients should match on the
// status; the texts are here so that logs look like the real ones.
const (
	msgSignIn         = "You need to sign in or sign up before continuing."
	msgInvalid        = "Invalid User name or password."
	msgLocked         = "Your account is locked."
	msgInactive       = "Your account is not activated yet."
	msgSessionExpired = "Your session expired. Please sign in again to continue."
	msgJWTExpired     = "Signature has expired"
	msgJWTRevoked     = "revoked token"
	msgJWTBad         = "Signature verification failed"
)

const (
	maxFailedAttempts = 6
	lockDuration      = 30 * time.Minute
	loginThrottle     = 6 // POSTs per minute per user name (rack_attack.rb)
	sessionTTL        = 60 * time.Minute
)

type session struct {
	user     string
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// ExpireTokens makes every JWT issued so far answer 401 on its next use, as
// if it had expired; a client must log in again.
func (s *Server) ExpireTokens() {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	for jti := range s.tokens {
		s.tokens[jti] = msgJWTExpired
	}
	for id := range s.sessions {
		delete(s.sessions, id)
	}
}

// checkPassword runs Devise's lockable rules for one authentication
// attempt. Callers hold s.mu for writing.
func (s *Server) checkPassword(u *user, pass string, now time.Time) (ok bool, msg string) {
	if !u.lockedAt.IsZero() && now.Sub(u.lockedAt) >= lockDuration {
		u.lockedAt, u.failed = time.Time{}, 0
	}
	if !u.lockedAt.IsZero() {
		return false, msgLocked
	}
	if !hmac.Equal([]byte(pass), []byte(u.Password)) {
		u.failed++
		if u.failed >= maxFailedAttempts {
			u.lockedAt = now
			return false, msgLocked
		}
		return false, msgInvalid
	}
	if u.Disabled {
		return false, msgInactive
	}
	u.failed = 0
	return true, ""
}

// authenticate resolves the caller of an API request, or writes the 401
// (or CSRF 403) and returns nil.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) *user {
	now := s.now()
	authz := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(authz, "Basic "):
		name, pass, ok := r.BasicAuth()
		if !ok {
			unauthorized(w, msgInvalid)
			return nil
		}
		s.mu.Lock()
		u := s.userByName[name]
		var good bool
		msg := msgInvalid
		if u != nil {
			good, msg = s.checkPassword(u, pass, now)
		}
		s.mu.Unlock()
		if !good {
			unauthorized(w, msg)
			return nil
		}
		return u
	case strings.HasPrefix(authz, "Bearer ") && s.opts.AuthMode == AuthBasicJWT:
		u, msg := s.verifyJWT(strings.TrimPrefix(authz, "Bearer "), now)
		if u == nil {
			unauthorized(w, msg)
			return nil
		}
		return u
	}
	if c, err := r.Cookie("_app_session"); err == nil && s.opts.AuthMode == AuthBasicOnly {
		s.authMu.Lock()
		ss := s.sessions[c.Value]
		expired := ss != nil && (now.Sub(ss.lastSeen) > sessionTTL || now.Sub(ss.created) > sessionTTL)
		if expired {
			delete(s.sessions, c.Value)
		} else if ss != nil {
			ss.lastSeen = now
		}
		s.authMu.Unlock()
		if ss == nil || expired {
			unauthorized(w, msgSessionExpired)
			return nil
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get("X-CSRF-Token") != ss.csrf {
			writeErrors(w, r, http.StatusForbidden, "Can't verify CSRF token authenticity.", nil)
			return nil
		}
		s.mu.RLock()
		u := s.userByName[ss.user]
		s.mu.RUnlock()
		if u == nil || u.Disabled {
			unauthorized(w, msgSessionExpired)
			return nil
		}
		return u
	}
	unauthorized(w, msgSignIn)
	return nil
}

type jwtClaims struct {
	Sub string `json:"sub"`
	Scp string `json:"scp"`
	Aud any    `json:"aud"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
}

var b64 = base64.RawURLEncoding

func (s *Server) signJWT(c jwtClaims) string {
	head := b64.EncodeToString([]byte(`{"alg":"HS256"}`))
	body, _ := json.Marshal(c)
	msg := head + "." + b64.EncodeToString(body)
	mac := hmac.New(sha256.New, s.jwtKey)
	mac.Write([]byte(msg))
	return msg + "." + b64.EncodeToString(mac.Sum(nil))
}

func (s *Server) verifyJWT(tok string, now time.Time) (*user, string) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, "Not enough or too many segments"
	}
	mac := hmac.New(sha256.New, s.jwtKey)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, msgJWTBad
	}
	body, err := b64.DecodeString(parts[1])
	var c jwtClaims
	if err != nil || json.Unmarshal(body, &c) != nil {
		return nil, msgJWTBad
	}
	if now.Unix() >= c.Exp {
		return nil, msgJWTExpired
	}
	s.authMu.Lock()
	state, ok := s.tokens[c.Jti]
	s.authMu.Unlock()
	if !ok {
		return nil, msgJWTRevoked
	}
	if state != "" {
		return nil, state
	}
	id, _ := strconv.Atoi(c.Sub)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id < 1 || id > len(s.users) || s.users[id-1].Disabled {
		return nil, msgInvalid
	}
	return s.users[id-1], ""
}

// loginParams reads user[user_name] and user[password] from a JSON or form
// body.
func loginParams(r *http.Request, body []byte) (name, pass string) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		q, _ := url.ParseQuery(string(body))
		return q.Get("user[user_name]"), q.Get("user[password]")
	}
	var in struct {
		User struct {
			UserName string `json:"user_name"`
			Password string `json:"password"`
		} `json:"user"`
	}
	json.Unmarshal(body, &in)
	return in.User.UserName, in.User.Password
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	name, pass := loginParams(r, body)
	now := s.now()
	if name != "" && s.opts.LoginThrottle > 0 {
		key := strings.Join(strings.Fields(strings.ToLower(name)), "")
		window := strconv.FormatInt(now.Unix()/60, 10)
		s.authMu.Lock()
		for k := range s.throttle {
			if !strings.HasSuffix(k, "|"+window) {
				delete(s.throttle, k)
			}
		}
		s.throttle[key+"|"+window]++
		n := s.throttle[key+"|"+window]
		s.authMu.Unlock()
		if n > s.opts.LoginThrottle {
			// Rack::Attack's default throttled response: no JSON and no
			// Retry-After, so a client cannot tell how long to wait.
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, "Retry later\n")
			return
		}
	}
	var u *user
	if name == "" {
		if authz := r.Header.Get("Authorization"); s.opts.AuthMode == AuthBasicJWT && strings.HasPrefix(authz, "Bearer ") {
			var msg string
			if u, msg = s.verifyJWT(strings.TrimPrefix(authz, "Bearer "), now); u == nil {
				unauthorized(w, msg)
				return
			}
		} else {
			unauthorized(w, msgSignIn)
			return
		}
	} else {
		s.mu.Lock()
		u = s.userByName[name]
		good, msg := false, msgInvalid
		if u != nil {
			good, msg = s.checkPassword(u, pass, now)
		}
		s.mu.Unlock()
		if !good {
			unauthorized(w, msg)
			return
		}
	}
	if s.opts.AuthMode == AuthBasicOnly {
		s.mu.Lock()
		sid, csrf := s.authID(), s.authID()
		s.mu.Unlock()
		s.authMu.Lock()
		// From v2.11 a new login signs the user out everywhere else.
		for id, ss := range s.sessions {
			if ss.user == u.UserName {
				delete(s.sessions, id)
			}
		}
		s.sessions[sid] = &session{user: u.UserName, csrf: csrf, created: now, lastSeen: now}
		s.authMu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "_app_session", Value: sid, Path: "/", HttpOnly: true})
		http.SetCookie(w, &http.Cookie{Name: "CSRF-TOKEN", Value: csrf, Path: "/"})
		writeJSON(w, http.StatusOK, map[string]any{"id": u.id, "user_name": u.UserName, "group_permission": u.role.GroupPermission})
		return
	}
	s.mu.Lock()
	jti := s.authID()
	s.mu.Unlock()
	tok := s.signJWT(jwtClaims{Sub: strconv.Itoa(u.id), Scp: "user", Iat: now.Unix(), Exp: now.Add(s.opts.TokenTTL).Unix(), Jti: jti})
	s.authMu.Lock()
	s.tokens[jti] = ""
	s.authMu.Unlock()
	w.Header().Set("Authorization", "Bearer "+tok)
	http.SetCookie(w, &http.Cookie{Name: "primero_token", Value: tok, Path: "/", HttpOnly: true})
	writeJSON(w, http.StatusOK, map[string]any{"id": u.id, "user_name": u.UserName, "token": tok})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if authz := r.Header.Get("Authorization"); strings.HasPrefix(authz, "Bearer ") {
		parts := strings.Split(strings.TrimPrefix(authz, "Bearer "), ".")
		if len(parts) == 3 {
			if body, err := b64.DecodeString(parts[1]); err == nil {
				var c jwtClaims
				if json.Unmarshal(body, &c) == nil {
					s.authMu.Lock()
					if _, ok := s.tokens[c.Jti]; ok {
						s.tokens[c.Jti] = msgJWTRevoked
					}
					s.authMu.Unlock()
				}
			}
		}
	}
	if c, err := r.Cookie("_app_session"); err == nil {
		s.authMu.Lock()
		delete(s.sessions, c.Value)
		s.authMu.Unlock()
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}
